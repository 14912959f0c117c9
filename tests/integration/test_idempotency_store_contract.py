"""The IdempotencyStore contract: every adapter (SQLite file, PostgreSQL server) claims a key
once, replays the response it kept, refuses the key for another request, frees it when the
request fails, dies or the key expires, and keeps callers' keys apart.

PostgreSQL is a real server (tests/pg.py); two store objects on one database (or one SQLite
file) stand for two workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.ports import IdempotencyStore, StoredResponse
from rag.settings import DatabaseSettings

Open = Callable[[], IdempotencyStore]
DAY = 24 * 3600.0
LEASE = 300.0
OK = StoredResponse(200, '{"reply":"Standard shipping takes 5 days."}', {"X-Session-Id": "s-1"})


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens the same store again on every call, as another worker would."""
    opened: list[IdempotencyStore] = []
    if request.param == "sqlite":
        from rag.adapters.sqlite_idempotency import SqliteIdempotency

        def make() -> IdempotencyStore:
            return SqliteIdempotency(tmp_path / "idempotency.sqlite3")
    else:
        from pydantic import SecretStr

        from rag.adapters.postgres_idempotency import PostgresIdempotency

        dsn = request.getfixturevalue("pg_dsn")
        settings = DatabaseSettings(url=SecretStr(dsn), pool_max=4)

        def make() -> IdempotencyStore:
            return PostgresIdempotency(settings)

    def opener() -> IdempotencyStore:
        opened.append(make())
        return opened[-1]

    yield opener
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Open) -> IdempotencyStore:
    return opener()


def test_a_finished_key_replays_its_response_on_every_worker(opener: Open) -> None:
    one, two = opener(), opener()
    claim = one.begin("chat:ip:10.0.0.1", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    assert claim.outcome == "run"
    assert claim.token
    one.finish("chat:ip:10.0.0.1", "k-1", claim.token, OK)
    for worker in (one, two, opener()):
        again = worker.begin("chat:ip:10.0.0.1", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
        assert again.outcome == "replay"
        assert again.response == OK


def test_a_key_used_for_another_request_is_refused(store: IdempotencyStore) -> None:
    claim = store.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    # refused while the first request runs, and after it finished
    assert store.begin("agents", "k-1", "fp-b", ttl_s=DAY, lease_s=LEASE).outcome == "mismatch"
    store.finish("agents", "k-1", claim.token, OK)
    assert store.begin("agents", "k-1", "fp-b", ttl_s=DAY, lease_s=LEASE).outcome == "mismatch"
    assert store.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE).outcome == "replay"


def test_a_retry_while_the_first_request_runs_is_told_so(opener: Open) -> None:
    one, two = opener(), opener()
    assert one.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE).outcome == "run"
    assert two.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE).outcome == "in_flight"


def test_a_failed_request_frees_its_key(store: IdempotencyStore) -> None:
    claim = store.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    store.release("agents", "k-1", claim.token)
    retry = store.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    assert retry.outcome == "run"
    assert retry.token != claim.token


def test_a_claim_left_by_a_dead_request_is_taken_over(opener: Open) -> None:
    one, two = opener(), opener()
    dead = one.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    # a lease of 0 s: the first claim is already older than it
    retry = two.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=0)
    assert retry.outcome == "run"
    two.finish("agents", "k-1", retry.token, OK)
    # the dead request's late finish or release changes nothing
    one.finish("agents", "k-1", dead.token, StoredResponse(500, "{}", {}))
    one.release("agents", "k-1", dead.token)
    replay = one.begin("agents", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    assert (replay.outcome, replay.response) == ("replay", OK)


def test_an_expired_key_is_free_again(store: IdempotencyStore) -> None:
    claim = store.begin("agents", "k-1", "fp-a", ttl_s=0, lease_s=LEASE)
    store.finish("agents", "k-1", claim.token, OK)
    # expired: even another request may use it now
    assert store.begin("agents", "k-1", "fp-b", ttl_s=DAY, lease_s=LEASE).outcome == "run"


def test_callers_keys_never_meet(store: IdempotencyStore) -> None:
    a = store.begin("chat:session:s-1", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE)
    b = store.begin("chat:session:s-2", "k-1", "fp-b", ttl_s=DAY, lease_s=LEASE)
    assert (a.outcome, b.outcome) == ("run", "run")
    store.finish("chat:session:s-1", "k-1", a.token, OK)
    store.finish("chat:session:s-2", "k-1", b.token, StoredResponse(201, "{}", {}))
    got = store.begin("chat:session:s-2", "k-1", "fp-b", ttl_s=DAY, lease_s=LEASE).response
    assert got == StoredResponse(201, "{}", {})


def test_one_of_many_simultaneous_retries_runs(opener: Open) -> None:
    workers = [opener(), opener()]

    def claim(i: int) -> str:
        worker = workers[i % 2]
        return worker.begin("chat:ip:10.0.0.1", "k-1", "fp-a", ttl_s=DAY, lease_s=LEASE).outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(claim, range(16)))
    assert outcomes.count("run") == 1
    assert outcomes.count("in_flight") == 15


def test_expired_keys_are_deleted(store: IdempotencyStore) -> None:
    """Keys do not pile up: each claim deletes its own expired key, and every so many claims
    sweep all expired keys (SWEEP_EVERY)."""
    from rag.adapters.sql_idempotency import SWEEP_EVERY

    for i in range(SWEEP_EVERY):
        c = store.begin("agents", f"old-{i}", "fp", ttl_s=0, lease_s=LEASE)
        store.finish("agents", f"old-{i}", c.token, OK)
    db = store._tx  # type: ignore[attr-defined]
    with db() as conn:
        left = conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0]
    # the sweep ran at the last claim, before that claim's own row was written
    assert left == 1
