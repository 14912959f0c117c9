"""Schema-driven fuzzing: every operation of the app's own OpenAPI document, with valid and
invalid requests generated from it (schemathesis), must never get a server error.

The app is the real one (`create_app(container)`) over a store of its own (two of the sample
store's documents, real embedder, real Chroma: uploads, erasures and handoff changes land
there), without a model (the extractive path). Every request carries the admin key, so the
agent and admin operations are fuzzed behind their authentication too. Bounded and
reproducible: a fixed number of examples per operation, derandomised generation, no example
database.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from rag.container import Container
from rag.ports import Embedder
from server.app import create_app
from tests.conftest import SAMPLE_STORE, make_settings

KEY = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = 25
DOCS = ["docs/customs/canada.md", "docs/customs/uk.md"]
SERVER = {
    "admin_api_key": KEY,
    "rate_per_session": 100_000,
    "rate_per_ip": 100_000,
    "docs": True,  # /openapi.json, which production mode switches off
}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Any]:
    from ingest.service import build_ingestor

    tmp = tmp_path_factory.mktemp("fuzz")
    data, kb = tmp / "data", tmp / "kb"
    for doc in DOCS:
        (kb / doc).parent.mkdir(parents=True, exist_ok=True)
        (kb / doc).write_text((SAMPLE_STORE / doc).read_text("utf-8"), "utf-8")
    settings = make_settings(
        data,
        llm={"provider": "none"},
        server=SERVER,
    )
    container = Container(settings, embedder=embedder)
    assert build_ingestor(container).sync(kb).ok
    app = create_app(container)
    with TestClient(app):  # runs the lifespan: the app's state is built once for the module
        yield _started(app)


def _started(app: FastAPI) -> Any:
    """The started app without its lifespan: schemathesis runs an app's lifespan around every
    request it sends, and the shutdown closes the store (as a real shutdown must)."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi


# The operations come from the app's own OpenAPI document, built without starting it (nothing
# is loaded at collection); the requests go to the started app of `fuzz_app`. (Plain pytest
# parametrisation: schemathesis' own pytest integration does not name the cases under pytest 9.)
# Loading the document runs the app's lifespan, which opens a store: a throw-away folder, never
# the working directory (removed when the interpreter exits).
_SCHEMA_DATA = tempfile.TemporaryDirectory(prefix="kefu-fuzz-schema-")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(
        settings=make_settings(Path(_SCHEMA_DATA.name), llm={"provider": "none"}, server=SERVER)
    ),
)
# an operation the document describes wrongly fails the collection, it is not skipped
OPERATIONS = [
    result.ok() if isinstance(result, Ok) else pytest.fail(str(result.err()))
    for result in schema.get_all_operations()
]


@pytest.mark.parametrize(
    "operation", OPERATIONS, ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS]
)
def test_no_server_errors(operation: Any, fuzz_app: Any) -> None:
    seen: list[int] = []  # status codes, for the checks at the end
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),  # requests the schema allows
        operation.as_strategy(GenerationMode.NEGATIVE),  # and requests it does not
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def no_server_error(case: Any) -> None:
        response = case.call(app=fuzz_app, headers=AUTH)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
        )
        assert "Traceback" not in response.text
        if response.status_code >= 400:
            body = response.json()
            assert body["error"], body
            assert body["message"], body

    no_server_error()
    # the requests got past authentication (the admin key), and valid chat messages an answer
    assert any(code not in (401, 403) for code in seen), seen
    if operation.path == "/v1/chat":
        assert 200 in seen, seen
