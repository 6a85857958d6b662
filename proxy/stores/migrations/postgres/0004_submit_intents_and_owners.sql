-- Write-ahead submit intents, replica heartbeats and who holds a reservation.
-- An intent is written before a paid submit is sent upstream and removed in the same
-- transaction that records its outcome (the job, an `unknown` record, or a release).
CREATE TABLE submit_intents (
    intent_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    job JSONB NOT NULL,
    idempotency_scope TEXT,
    idempotency_key TEXT,
    reservation_id TEXT,
    slot_reservation_id TEXT
);
CREATE INDEX submit_intents_owner ON submit_intents (owner);
CREATE INDEX submit_intents_key ON submit_intents (idempotency_scope, idempotency_key);

-- Each running proxy process; one whose heartbeat is older than the lease is gone.
CREATE TABLE replicas (
    replica_id TEXT PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);

-- The replica holding a reservation for a request in progress; NULL once a ledger row
-- (a job or an `unknown` record) holds it.
ALTER TABLE budget_reservations ADD COLUMN owner TEXT;
ALTER TABLE budget_reservations ADD COLUMN created_at DOUBLE PRECISION;
CREATE INDEX budget_reservations_owner ON budget_reservations (owner) WHERE owner IS NOT NULL;
-- Retention of closed reservations goes by creation time.
CREATE INDEX budget_reservations_created ON budget_reservations (created_at);

-- The per-key concurrency slot a job holds until it is terminal.
ALTER TABLE jobs ADD COLUMN slot_reservation_id TEXT;

-- Which request holds an idempotency claim (its internal id) and on which replica, so that
-- resolving a claim never touches a newer claim of the same key, and a dead replica's
-- claims that never reached an intent are freed by the recovery sweep.
ALTER TABLE idempotency_keys ADD COLUMN claim_id TEXT;
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
CREATE INDEX idempotency_keys_owner ON idempotency_keys (owner) WHERE owner IS NOT NULL;
