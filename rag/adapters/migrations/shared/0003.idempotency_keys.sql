-- Idempotency keys shared by every worker and machine: a retried POST (same key, same request)
-- gets the stored response instead of running twice. One row per key, deleted once expired.
CREATE TABLE idempotency_keys (
    id TEXT PRIMARY KEY,            -- sha256 of the scope and the client's key (no raw ids or IPs)
    fingerprint TEXT NOT NULL,      -- sha256 of the request: method, path, query, body
    token TEXT,                     -- the running request's claim; NULL once its response is kept
    status INTEGER,                 -- NULL while the request runs
    body TEXT,                      -- the response's JSON text
    headers TEXT,                   -- the response's headers worth replaying, as JSON
    started_at DOUBLE PRECISION NOT NULL,   -- epoch seconds on the database's clock
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys(expires_at);
