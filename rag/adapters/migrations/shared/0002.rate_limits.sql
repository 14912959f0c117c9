-- Rate limits shared by every worker and machine: one row per counted request, kept for a
-- minute (the sliding window); `at` is epoch seconds from the workers' clocks.
CREATE TABLE rate_hits (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL,           -- "session:ip:10.0.0.1", "auth:auth:10.0.0.1", ...
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_hits_key ON rate_hits(key, at);
CREATE INDEX rate_hits_at ON rate_hits(at);
