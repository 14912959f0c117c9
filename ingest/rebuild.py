"""Rebuild a store from scratch without ever leaving it half-built.

The new index is built as the store's next generation (a new folder and Chroma collection)
while the current one keeps answering; the switch is one atomic rename of the CURRENT file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ingest.sync import Ingestor, Progress, SyncReport
from rag.container import Container, current_generation, set_generation
from rag.errors import IngestError
from rag.knowledge.index import read_meta
from rag.settings import Settings


def rebuild(
    settings: Settings,
    *,
    store: str | None,
    root: Path | None,
    build: Callable[[Container], Ingestor],
    progress: Progress | None = None,
) -> SyncReport:
    name = store or settings.store
    store_dir = settings.store_dir(name)
    old = current_generation(store_dir)
    old_dir = store_dir / f"gen-{old}"
    root = root or _last_root(old_dir)
    if root is None:
        raise IngestError("no folder given and none synced before: kefu ingest reindex PATH")
    new = old + 1
    shutil.rmtree(store_dir / f"gen-{new}", ignore_errors=True)  # an earlier failed rebuild
    c = Container(settings, store=name, generation=new)
    report = build(c).sync(root, progress=progress)
    set_generation(store_dir, new)
    shutil.rmtree(old_dir, ignore_errors=True)
    return report


def _last_root(gen_dir: Path) -> Path | None:
    value = read_meta(gen_dir / "manifest.sqlite3", "root")
    return Path(value) if value else None
