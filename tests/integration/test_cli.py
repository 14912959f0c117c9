"""The `kefu` command as a seller uses it: JSON for scripts, one clear line on mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kefu.cli import app
from tests.conftest import SAMPLE_STORE

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))
    kb = tmp_path / "kb"
    (kb / "customs").mkdir(parents=True)
    shutil.copy(SAMPLE_STORE / "docs" / "customs" / "canada.md", kb / "customs" / "canada.md")
    shutil.copy(SAMPLE_STORE / "docs" / "other" / "gift-cards.txt", kb / "gift-cards.txt")
    return kb


def test_sync_list_stats_search_remove(env: Path) -> None:
    r = runner.invoke(app, ["ingest", "sync", str(env), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert sorted(report["added"]) == ["customs/canada.md", "gift-cards.txt"]

    again = json.loads(runner.invoke(app, ["ingest", "sync", str(env), "--json"]).stdout)
    assert again["chunks_embedded"] == 0
    assert len(again["unchanged"]) == 2

    listed = json.loads(runner.invoke(app, ["ingest", "list", "--json"]).stdout)
    assert {d["doc_id"] for d in listed} == {"customs/canada.md", "gift-cards.txt"}
    stats = json.loads(runner.invoke(app, ["ingest", "stats", "--json"]).stdout)
    assert stats["documents"] == 2
    assert stats["chunks"] == stats["vectors"] > 0
    assert stats["embedding_model"] == "embeddinggemma-300m"

    r = runner.invoke(app, ["search", "Quels frais de douane pour le Canada ?", "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert found["hits"][0]["doc_id"] == "customs/canada.md"

    r = runner.invoke(app, ["ingest", "remove", "gift-cards.txt", "--json"])
    assert json.loads(r.stdout) == {"removed": ["gift-cards.txt"]}
    listed = json.loads(runner.invoke(app, ["ingest", "list", "--json"]).stdout)
    assert [d["doc_id"] for d in listed] == ["customs/canada.md"]


def test_add_single_file_and_store_option(env: Path, tmp_path: Path) -> None:
    f = tmp_path / "extra.md"
    f.write_text("---\ntitle: Pets\n---\nWe do not ship live animals.\n", encoding="utf-8")
    r = runner.invoke(app, ["ingest", "add", str(f), "--store", "second", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == ["extra.md"]
    default = json.loads(runner.invoke(app, ["ingest", "list", "--json"]).stdout)
    assert default == []


def test_skipped_files_give_a_nonzero_exit_and_name_the_file(env: Path) -> None:
    (env / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    r = runner.invoke(app, ["ingest", "sync", str(env)])
    assert r.exit_code == 1
    assert "broken.pdf" in r.output
    listed = json.loads(runner.invoke(app, ["ingest", "list", "--json"]).stdout)
    assert len(listed) == 2  # the good files were ingested


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "sync", "/no/such/folder"], "is not a folder"),
        (["ingest", "remove", "nope.md"], "no document 'nope.md'"),
        (["models", "pull", "gpt-17"], "unknown model"),
    ],
)
def test_user_mistakes_print_one_line_and_exit_2(env: Path, args: list[str], message: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_models_list_shows_the_packaged_models() -> None:
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0
    names = {m["name"] for m in json.loads(r.stdout)}
    assert {"embeddinggemma-300m", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"} <= names
