-- Job ledger, watcher scheduling and idempotency keys.
-- Times are REAL epoch seconds (UTC); money is INTEGER micro-dollars.
CREATE TABLE jobs (
    task_id TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    team TEXT,
    project TEXT,
    alias TEXT,
    pinned_slug TEXT NOT NULL,
    input_hash TEXT,
    correlation_id TEXT,
    request_id TEXT,
    idempotency_key TEXT,
    price_table_version TEXT,
    estimated_cost_micros INTEGER,
    final_cost_micros INTEGER,
    status TEXT NOT NULL,
    upstream_attempts INTEGER NOT NULL DEFAULT 1,
    traceparent TEXT,
    submitted_by TEXT,
    submitted_at REAL NOT NULL,
    first_processing_at REAL,
    terminal_at REAL,
    history TEXT NOT NULL DEFAULT '[]',
    last_seen_status TEXT,
    client_polls INTEGER NOT NULL DEFAULT 0,
    watcher_polls INTEGER NOT NULL DEFAULT 0,
    last_client_poll_at REAL,
    output_urls TEXT NOT NULL DEFAULT '[]',
    error_reason TEXT,
    next_poll_at REAL,
    lease_owner TEXT,
    lease_expires_at REAL,
    watcher_attempts INTEGER NOT NULL DEFAULT 0,
    stale INTEGER NOT NULL DEFAULT 0
);
-- The watcher's queue: only watched, non-terminal jobs have next_poll_at.
CREATE INDEX jobs_due ON jobs (next_poll_at) WHERE next_poll_at IS NOT NULL;
-- Jobs in flight (expiry, in-flight gauges).
CREATE INDEX jobs_open ON jobs (submitted_at) WHERE terminal_at IS NULL;
-- Operator listing and spend reports.
CREATE INDEX jobs_submitted ON jobs (submitted_at, task_id);
CREATE INDEX jobs_team_submitted ON jobs (team, submitted_at);
CREATE INDEX jobs_status_submitted ON jobs (status, submitted_at);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    response_status INTEGER,
    response_headers TEXT,
    response_body BLOB,
    task_id TEXT,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
