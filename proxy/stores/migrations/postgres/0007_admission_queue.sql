-- Admission queue: accepted submits (validated, priced, budget reserved, idempotency key
-- completed with the queued answer) waiting for a free upstream concurrency slot of their
-- team. The row holds the request's reservations (owner NULL: no replica) until it is
-- dispatched (they go to the job), or cancelled, expired or refused (released).
-- state: queued | dispatching (intent_id set, its intent in submit_intents) | dispatched
--        (task_id set) | unknown (task_id = the unknown: record) | failed | expired | cancelled
CREATE TABLE admission_queue (
    queue_id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    caller TEXT NOT NULL,
    state TEXT NOT NULL,
    enqueued_at DOUBLE PRECISION NOT NULL,
    not_before DOUBLE PRECISION NOT NULL,
    path TEXT NOT NULL,
    body BYTEA NOT NULL,
    headers TEXT NOT NULL,
    job TEXT NOT NULL,
    idempotency_scope TEXT,
    idempotency_key TEXT,
    reservation_id TEXT,
    slot_reservation_id TEXT,
    intent_id TEXT,
    task_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    dispatched_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    error TEXT
);
-- The dispatcher's work: queued rows, oldest first.
CREATE INDEX admission_queue_ready ON admission_queue (team, enqueued_at) WHERE state = 'queued';
-- Crash recovery of rows being dispatched, and purging of finished rows.
CREATE INDEX admission_queue_state ON admission_queue (state, finished_at);

-- One row per team: locked by every admission decision of the team (PostgreSQL row lock).
CREATE TABLE admission_teams (
    team TEXT PRIMARY KEY,
    touched_at DOUBLE PRECISION NOT NULL
);

-- Round robin across keys within a team: when each caller was last dispatched from the queue.
CREATE TABLE admission_turns (
    team TEXT NOT NULL,
    caller TEXT NOT NULL,
    last_dispatched_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (team, caller)
);

-- A team's jobs in flight (the admission count).
CREATE INDEX jobs_team_open ON jobs (team, status) WHERE terminal_at IS NULL;
