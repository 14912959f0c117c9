"""Watch a folder and re-sync after file-system events settle (debounced)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


class _Debouncer(FileSystemEventHandler):
    def __init__(self, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self.last_event = 0.0
        self.pending = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        name = Path(str(event.src_path)).name
        if event.is_directory or name.startswith("."):
            return
        self.last_event = time.monotonic()
        self.pending.set()


def watch_folder(
    path: Path,
    on_change: Callable[[], None],
    *,
    debounce_s: float = 1.0,
    stop: threading.Event | None = None,
) -> None:
    """Call `on_change` once per burst of edits under `path`, until `stop` is set or Ctrl-C."""
    handler = _Debouncer(debounce_s)
    observer = Observer()
    observer.schedule(handler, str(path), recursive=True)
    observer.start()
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            if not handler.pending.wait(timeout=0.2):
                continue
            if time.monotonic() - handler.last_event < debounce_s:
                continue
            handler.pending.clear()
            try:
                on_change()
            except Exception:  # a bad edit must not stop the watcher
                log.exception("sync after change failed")
    finally:
        observer.stop()
        observer.join()
