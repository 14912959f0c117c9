"""SIGTERM stops `kefu serve` within seconds even while an upload is being embedded, and the
index it leaves is whole: the store answers afterwards with every document at its old or new
version (issue: a large upload used to keep the server alive for minutes after SIGTERM)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ingest.service import build_ingestor
from rag.container import Container
from rag.ports import Embedder
from tests.conftest import free_port, make_settings, wait_healthy

POLICY = "# Returns\n\nYou can return any unused item within 30 days of delivery.\n"


def long_document() -> bytes:
    """A catalogue note long enough that embedding it takes minutes on the real model."""
    parts = ["# Care guide\n"]
    for i in range(3000):
        parts.append(
            f"\n## Item {i}\n\nWash item {i} by hand in warm water with mild soap, dry it at "
            f"once with a soft cloth and store it away from direct sunlight; batch {i} ships "
            f"in recycled paper.\n"
        )
    return "".join(parts).encode()


def test_sigterm_stops_the_server_mid_upload_and_keeps_the_index_whole(
    tmp_path: Path, embedder: Embedder
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "returns.md").write_text(POLICY, encoding="utf-8")
    data = tmp_path / "data"
    c = Container(make_settings(data), embedder=embedder)  # the model the server will load

    assert build_ingestor(c).sync(kb).ok
    before = c.index.document_count()
    c.index.close()

    key = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATA_DIR": str(data),
        "KEFU_LLM__PROVIDER": "none",
        "KEFU_COMMERCE__PROVIDER": "none",
        "KEFU_SERVER__ADMIN_API_KEY": key,
        "KEFU_INGEST__EMBED_BATCH": "4",
    }
    kefu = Path(sys.executable).with_name("kefu")
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [str(kefu), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, proc, log, timeout_s=300)
            auth = {"Authorization": f"Bearer {key}"}
            r = httpx.post(
                f"{base}/v1/admin/ingest",
                files={"files": ("care.md", long_document(), "text/markdown")},
                headers=auth,
                timeout=60,
            )
            assert r.status_code == 202, r.text
            job = r.json()["job_id"]
            while True:  # wait until the job is embedding
                status = httpx.get(f"{base}/v1/admin/jobs/{job}", headers=auth, timeout=30)
                assert status.json()["status"] in {"queued", "running"}, status.text
                if status.json()["status"] == "running":
                    break
                time.sleep(0.2)
            time.sleep(2)
            proc.send_signal(signal.SIGTERM)
            # generous for a loaded machine; before the fix the job ran on for minutes
            code = proc.wait(timeout=45)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code is not None
    after = Container(make_settings(data), embedder=embedder)
    # the job was stopped mid-way: the upload did not land (a document is added whole or not
    # at all), and the old policy is still there
    assert after.index.document_count() == before
    assert after.index.chunk_count() <= after.vectors.count()
    found = after.retriever.search("how many days do I have to return an item?")
    assert any("30 days" in h.chunk.text for h in found.hits)
    after.index.close()
