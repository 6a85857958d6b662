-- Several Modellix accounts behind one proxy: the account each job bills to (its name in
-- upstream.accounts; 'default' is upstream.api_key). NULL: a pass-through job, billed to the
-- caller's own key. Jobs recorded before accounts existed were sent with upstream.api_key
-- when a virtual key sent them ('default'); pass-through jobs stay NULL.
ALTER TABLE jobs ADD COLUMN account TEXT;
UPDATE jobs SET account = 'default' WHERE caller LIKE 'vk:%';
-- An account's upstream tasks in flight (its admission count).
CREATE INDEX jobs_account_open ON jobs (account, status) WHERE terminal_at IS NULL;

-- Balance reconciliation per account: the settlement journal names each row's account.
ALTER TABLE settlements ADD COLUMN account TEXT;
UPDATE settlements SET account = (SELECT j.account FROM jobs j WHERE j.task_id = settlements.task_id);

-- Queued submits wait for a free slot of their team and of their account.
ALTER TABLE admission_queue ADD COLUMN account TEXT;
UPDATE admission_queue SET account = 'default';
CREATE INDEX admission_queue_account ON admission_queue (account, enqueued_at) WHERE state = 'queued';

-- One row per account: locked by every admission decision of the account (PostgreSQL row
-- lock), before its team's row.
CREATE TABLE admission_accounts (
    account TEXT PRIMARY KEY,
    touched_at DOUBLE PRECISION NOT NULL
);
