"""Versioned prompt files (prompts/<task>/v<N>.toml), loaded by name, rendered with Jinja."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined

from rag.errors import ConfigError

_ENV = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@dataclass(frozen=True)
class Prompt:
    task: str
    version: int
    parts: dict[str, str]
    # how a translation prompt hands over the facts' figures: "as_written", or "placeholders"
    # ({0}, {1}, … replaced after the translation: rag/answer/masking.py)
    figures: str = "as_written"

    @property
    def id(self) -> str:
        return f"{self.task}@{self.version}"

    def render(self, part: str, **variables: Any) -> str:
        """Render one part; a missing variable is an error, never an empty string."""
        if part not in self.parts:
            raise ConfigError(f"prompt {self.id} has no part {part!r}")
        return _ENV.from_string(self.parts[part]).render(**variables).strip()


def available(task: str) -> list[int]:
    folder = files("prompts") / task
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name[1:-5])
        for p in folder.iterdir()
        if p.name.startswith("v") and p.name.endswith(".toml") and p.name[1:-5].isdigit()
    )


@lru_cache(maxsize=32)
def load_prompt(task: str, version: int | None = None) -> Prompt:
    """The prompt for `task` at `version` (default: the newest)."""
    versions = available(task)
    if not versions:
        raise ConfigError(f"no prompt files for task {task!r} under prompts/{task}/")
    v = version if version is not None else versions[-1]
    if v not in versions:
        raise ConfigError(f"prompt {task}@{v} does not exist; available: {versions}")
    raw = (files("prompts") / task / f"v{v}.toml").read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    parts = {k: str(val) for k, val in data.items() if k not in ("description", "figures")}
    figures = str(data.get("figures", "as_written"))
    if figures not in ("as_written", "placeholders"):
        raise ConfigError(f"prompt {task}@{v}: figures must be as_written or placeholders")
    return Prompt(task=task, version=v, parts=parts, figures=figures)
