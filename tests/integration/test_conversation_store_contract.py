"""The ConversationStore contract: every adapter (SQLite file, PostgreSQL server) keeps
sessions, turns, handoffs, feedback, failed order checks, erasure and retention alike.

PostgreSQL is a real server (tests/pg.py); two store objects on one database stand for two
workers or machines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rag.conversations.types import Turn, attempt_key
from rag.errors import NotFound
from rag.ports import ConversationStore
from rag.settings import DatabaseSettings

Open = Callable[[], ConversationStore]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens the same store again on every call, as another worker would."""
    opened: list[ConversationStore] = []
    if request.param == "sqlite":
        from rag.adapters.sqlite_conversations import SqliteConversations

        def make() -> ConversationStore:
            return SqliteConversations(tmp_path / "conversations.sqlite3")
    else:
        from pydantic import SecretStr

        from rag.adapters.postgres_conversations import PostgresConversations

        dsn = request.getfixturevalue("pg_dsn")
        settings = DatabaseSettings(url=SecretStr(dsn), pool_max=4)

        def make() -> ConversationStore:
            return PostgresConversations(settings, store="default")

    def opener() -> ConversationStore:
        opened.append(make())
        return opened[-1]

    yield opener
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Open) -> ConversationStore:
    return opener()


def test_turns_come_back_in_order_with_their_session(store: ConversationStore) -> None:
    store.append("s1", Turn(role="user", content="¿Dónde está mi pedido?", language="es"))
    store.append(
        "s1",
        Turn(role="assistant", content="Dime el número.", language="es", meta={"mode": "order"}),
        customer_id="C-1",
        country="MX",
    )
    store.append("s1", Turn(role="user", content="#1042"))
    history = store.history("s1")
    assert [t.content for t in history] == ["¿Dónde está mi pedido?", "Dime el número.", "#1042"]
    assert history[1].meta == {"mode": "order"}
    assert history[0].created_at
    assert [t.content for t in store.history("s1", limit=2)] == ["Dime el número.", "#1042"]
    info = store.session("s1")
    assert info is not None
    # a later turn without them keeps what the session already knew
    assert (info["customer_id"], info["language"], info["country"]) == ("C-1", "es", "MX")
    assert store.session("nope") is None
    assert store.history("nope") == []


def test_state_is_per_session_and_replaced_whole(store: ConversationStore) -> None:
    assert store.state("s1") == {}
    store.set_state("s1", {"order": {"pending": "1042", "tries": 1}})
    store.set_state("s2", {"order": {"verified": ["7"]}})
    store.set_state("s1", {"order": {"verified": ["1042"]}})
    assert store.state("s1") == {"order": {"verified": ["1042"]}}
    assert store.state("s2") == {"order": {"verified": ["7"]}}


def test_handoff_lifecycle(store: ConversationStore) -> None:
    store.append("s1", Turn(role="assistant", content="?", meta={"mode": "dont_know"}))
    store.append("s1", Turn(role="assistant", content="?", meta={"mode": "fallback"}))
    store.append("s1", Turn(role="assistant", content="ok", meta={"mode": "knowledge"}))
    assert store.failures_since_handoff("s1") == 2
    hid = store.open_handoff("s1", reason="angry", language="es", summary="wants a refund")
    other = store.open_handoff("s2", reason="order", language="en", summary="late", customer_id="C")
    assert other != hid
    active = store.active_handoff("s1")
    assert active is not None
    assert (active["id"], active["status"], active["summary"]) == (hid, "open", "wants a refund")
    assert store.session("s2") is not None  # a handoff before any turn files the session
    store.set_handoff_status(hid, "claimed", agent="ana")
    assert [h["id"] for h in store.handoffs("open")] == [other]
    claimed = store.handoff(hid)
    assert claimed is not None
    assert (claimed["status"], claimed["agent"]) == ("claimed", "ana")
    store.set_handoff_status(hid, "resolved")
    resolved = store.handoff(hid)
    assert resolved is not None
    assert (resolved["status"], resolved["agent"]) == ("resolved", "ana")
    assert resolved["resolved_at"]
    assert store.active_handoff("s1") is None
    # back with the bot: old failures no longer count towards the next escalation
    assert store.failures_since_handoff("s1") == 0
    store.append("s1", Turn(role="assistant", content="?", meta={"mode": "dont_know"}))
    assert store.failures_since_handoff("s1") == 1
    assert [h["id"] for h in store.handoffs()] == [hid, other]
    with pytest.raises(NotFound):
        store.set_handoff_status(99999, "resolved")
    assert store.handoff(99999) is None


def test_feedback_and_stats(store: ConversationStore) -> None:
    with pytest.raises(NotFound):
        store.add_feedback("ghost", "up", None)
    for sid, lang in (("a", "en"), ("b", "en"), ("c", "zh"), ("d", None)):
        store.append(sid, Turn(role="user", content="hi", language=lang))
    store.add_feedback("a", "up", "quick")
    store.add_feedback("b", "down", None)
    store.add_feedback("c", "up", None)
    store.open_handoff("a", reason="x", language="en", summary="s")
    store.open_handoff("a", reason="y", language="en", summary="s")
    stats = store.stats()
    assert stats["conversations"] == 4
    assert stats["escalated_conversations"] == 1
    assert stats["escalation_rate"] == 0.25
    assert stats["resolution_rate"] == 0.75
    assert stats["open_handoffs"] == 2
    assert stats["by_language"] == {"en": 2, "zh": 1, "und": 1}
    assert stats["feedback"] == {"up": 2, "down": 1}


def test_failed_checks_lock_out_and_double(store: ConversationStore) -> None:
    key = attempt_key("order", "1042")
    kw = {"lock_s": 60.0, "max_lock_s": 150.0, "window_s": 3600.0}
    assert not store.record_failure({key: 3}, now=NOW, **kw)
    assert not store.record_failure({key: 3}, now=NOW, **kw)
    assert not store.locked([key], NOW)
    assert store.record_failure({key: 3}, now=NOW, **kw)  # the third failure locks
    assert store.locked([key, attempt_key("order", "1")], NOW + timedelta(seconds=59))
    assert not store.locked([key], NOW + timedelta(seconds=61))
    later = NOW + timedelta(seconds=100)
    for _ in range(2):
        assert not store.record_failure({key: 3}, now=later, **kw)
    assert store.record_failure({key: 3}, now=later, **kw)
    assert store.locked([key], later + timedelta(seconds=119))  # doubled: 120 s
    assert not store.locked([key], later + timedelta(seconds=121))
    again = later + timedelta(seconds=200)
    for _ in range(3):
        store.record_failure({key: 3}, now=again, **kw)
    assert store.locked([key], again + timedelta(seconds=149))  # capped at 150 s, not 240
    assert not store.locked([key], again + timedelta(seconds=151))
    # a quiet window wipes the slate: two failures a day apart do not add up
    other = attempt_key("order", "7")
    store.record_failure({other: 2}, now=NOW, **kw)
    assert not store.record_failure({other: 2}, now=NOW + timedelta(days=1), **kw)
    assert not store.locked([], NOW)


def test_failed_checks_add_up_across_workers(opener: Open) -> None:
    """Two workers counting failures at once: every failure counts, one lock-out begins."""
    workers = [opener(), opener()]
    key = attempt_key("order", "1042")

    def fail(i: int) -> bool:
        return workers[i % 2].record_failure(
            {key: 20}, now=NOW, lock_s=60, max_lock_s=60, window_s=3600
        )

    with ThreadPoolExecutor(8) as pool:
        began = list(pool.map(fail, range(20)))
    assert began.count(True) == 1
    assert workers[0].locked([key], NOW)
    assert workers[1].locked([key], NOW)


def test_a_turn_written_by_one_worker_is_read_by_another(opener: Open) -> None:
    one, two = opener(), opener()
    one.append("s1", Turn(role="user", content="hello"))
    hid = two.open_handoff("s1", reason="x", language="en", summary="s")
    assert [t.content for t in two.history("s1")] == ["hello"]
    active = one.active_handoff("s1")
    assert active is not None
    assert active["id"] == hid


def test_erasure_finds_the_shopper_by_what_they_wrote(store: ConversationStore) -> None:
    # filed under the customer id
    store.append("filed", Turn(role="user", content="hi"), customer_id="C-2002")
    store.set_state("filed", {"order": {"verified": ["1043"]}})
    store.add_feedback("filed", "up", None)
    store.open_handoff("filed", reason="x", language="en", summary="s", customer_id="c-2002")
    # an anonymous chat where the shopper wrote their e-mail and phone number
    store.append(
        "anon",
        Turn(role="user", content="I'm james.walker@example.co.uk, call +44 20 7946 0958"),
    )
    # another anonymous chat found only through the phone number written differently
    store.append("phone", Turn(role="user", content="my number is 020 7946 0958"))
    store.append("other", Turn(role="user", content="someone else entirely"))
    store.record_failure(
        {attempt_key("customer", "C-2002"): 5}, now=NOW, lock_s=60, max_lock_s=60, window_s=60
    )

    receipt = store.erase_customer("JAMES.WALKER@example.co.uk")
    assert receipt == {"sessions": 2, "turns": 2, "handoffs": 0}
    assert store.history("anon") == []
    assert store.history("phone") == []
    receipt = store.erase_customer("C-2002")
    assert receipt == {"sessions": 1, "turns": 1, "handoffs": 1}
    assert store.session("filed") is None
    assert store.state("filed") == {}
    assert store.stats()["feedback"] == {}
    assert [t.content for t in store.history("other")] == ["someone else entirely"]
    assert store.erase_customer("nobody@example.com") == {"sessions": 0, "turns": 0, "handoffs": 0}


def test_retention_purges_quiet_sessions_only(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.adapters.sql_conversations as sql

    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    with monkeypatch.context() as m:
        m.setattr(sql, "now_stamp", lambda: long_ago)
        store.append("old", Turn(role="user", content="last year"))
        store.open_handoff("old", reason="x", language="en", summary="s")
        store.set_state("old", {"order": {}})
    store.append("new", Turn(role="user", content="today"))
    assert store.purge_older_than(180) == {"sessions": 1}
    assert store.session("old") is None
    assert store.history("old") == []
    assert store.handoffs() == []
    assert store.state("old") == {}
    assert [t.content for t in store.history("new")] == ["today"]
    assert store.purge_older_than(180) == {"sessions": 0}


def test_a_database_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from rag.adapters.postgres_conversations import PostgresConversations
    from rag.errors import ConfigError, StoreUnavailable
    from tests.conftest import free_port

    down = f"postgresql://kefu@127.0.0.1:{free_port()}/kefu"
    with pytest.raises(StoreUnavailable, match="cannot migrate the database schema"):
        PostgresConversations(DatabaseSettings(url=SecretStr(down)), store="default")
    with pytest.raises(ConfigError, match="postgresql://user:password@host"):
        PostgresConversations(DatabaseSettings(url=SecretStr("host=db dbname=kefu")), store="x")
