-- One store's conversations (schema kefu_store_<name>). Timestamps are ISO 8601 UTC text,
-- as in the SQLite store, so the shared queries compare them the same way on both engines.
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    customer_id TEXT,
    language TEXT,
    country TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sessions_customer ON sessions(customer_id);
CREATE INDEX sessions_updated ON sessions(updated_at);
CREATE TABLE turns (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    language TEXT,
    created_at TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX turns_session ON turns(session_id, id);
CREATE TABLE handoffs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    customer_id TEXT,
    reason TEXT NOT NULL,
    language TEXT,
    summary TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',   -- open | claimed | resolved
    agent TEXT,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_after_turn BIGINT  -- the session's last turn id when resolved
);
CREATE INDEX handoffs_session ON handoffs(session_id, status);
CREATE TABLE session_state (
    session_id TEXT PRIMARY KEY,  -- no foreign key: state may be written before the first turn
    state TEXT NOT NULL DEFAULT '{}',  -- small JSON: pending order checks, never PII
    updated_at TEXT NOT NULL
);
CREATE TABLE verification_attempts (
    key TEXT PRIMARY KEY,        -- sha256 of "order:1042", "customer:c-1", "client:10.0.0.1"
    failures INTEGER NOT NULL DEFAULT 0,
    lockouts INTEGER NOT NULL DEFAULT 0,   -- each lock-out doubles the next one
    locked_until TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    rating TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL
);
