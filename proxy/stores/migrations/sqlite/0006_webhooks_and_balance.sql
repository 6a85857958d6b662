-- Completion webhooks and balance reconciliation.
-- A submit may name a callback URL; it is kept on the job.
ALTER TABLE jobs ADD COLUMN callback_url TEXT;

-- Ledger spend by terminal time (balance reconciliation windows).
CREATE INDEX jobs_terminal_at ON jobs (terminal_at) WHERE terminal_at IS NOT NULL;

-- Per-caller default callback URL set by the operator ("vk:<key id>" or "fp:<fingerprint>").
CREATE TABLE webhook_endpoints (
    caller TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- One row per terminal job with a callback, written in the transaction that made it terminal.
-- state: pending (next_attempt_at set) | delivered | dead (dead-lettered after max attempts).
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    caller TEXT NOT NULL,
    team TEXT,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT,
    lease_owner TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_state ON webhook_deliveries (state, created_at);

-- The last team balance read from the upstream, and the running reconciliation totals.
CREATE TABLE balance_readings (
    team TEXT PRIMARY KEY,
    balance_micros INTEGER NOT NULL,
    read_at REAL NOT NULL,
    first_read_at REAL NOT NULL,
    unexplained_micros INTEGER NOT NULL DEFAULT 0,
    topup_micros INTEGER NOT NULL DEFAULT 0,
    window_drop_micros INTEGER NOT NULL DEFAULT 0,
    window_ledger_micros INTEGER NOT NULL DEFAULT 0,
    window_unexplained_micros INTEGER NOT NULL DEFAULT 0
);
