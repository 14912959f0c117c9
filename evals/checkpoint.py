"""Resuming an interrupted run: results are appended to a JSONL checkpoint as they are
scored; its header holds the run's fingerprint and canary."""

from __future__ import annotations

import json
from pathlib import Path

from evals.dataset import EvalError
from evals.results import CaseResult


def _checkpoint_lines(path: Path) -> tuple[str | None, list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    fp = header.get("fingerprint") if isinstance(header, dict) else None
    return (str(fp) if fp is not None else None), lines[1:]


def checkpoint_canary(path: Path) -> str | None:
    """The canary of the interrupted run at `path`, so a resumed run keeps judging leaks of
    the same canary its earlier cases were asked with."""
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        return None
    found = header.get("canary") if isinstance(header, dict) else None
    return str(found) if found else None


def checkpoint_matches(path: Path, fingerprint: str) -> bool:
    """Whether the checkpoint at `path` (if any) was written by a run with this fingerprint."""
    return not path.exists() or _checkpoint_lines(path)[0] == fingerprint


def read_checkpoint(path: Path, fingerprint: str) -> dict[str, CaseResult]:
    """Results of an interrupted run with the same fingerprint (a half-written last line, from
    a crash mid-write, is ignored)."""
    if not path.exists():
        return {}
    found, lines = _checkpoint_lines(path)
    if found != fingerprint:
        raise EvalError(
            f"{path} holds results of a different run (dataset, slice, model or store differ); "
            "delete it or pass --fresh"
        )
    done: dict[str, CaseResult] = {}
    for line in lines:
        try:
            r = CaseResult.from_dict(json.loads(line))
        except (ValueError, TypeError):
            continue
        done[r.id] = r
    return done
