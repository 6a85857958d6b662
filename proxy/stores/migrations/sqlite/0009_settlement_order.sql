-- Settlements in commit order, so balance reconciliation counts each one exactly once.
-- A window of the ledger used to be "jobs whose terminal_at falls in it", but terminal_at is
-- taken before the settling transaction commits: a settlement that commits after a
-- reconciliation read past its terminal_at was never counted. Now every transaction that
-- settles spend appends one row here with the next value of the 'settlement' counter, taken
-- last in that transaction under the counter row's lock, so sequence order is commit order and
-- a reconciliation that has seen N has seen every settlement up to N.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE settlements (
    seq INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    team TEXT,
    micros INTEGER NOT NULL,
    settled_at REAL NOT NULL
);
CREATE INDEX settlements_settled_at ON settlements (settled_at);
-- The last settlement each reading has counted.
ALTER TABLE balance_readings ADD COLUMN settled_through INTEGER NOT NULL DEFAULT 0;
-- Upgrade: what settled since the newest reading is still to be counted, in terminal order.
INSERT INTO settlements (seq, task_id, team, micros, settled_at)
SELECT ROW_NUMBER() OVER (ORDER BY terminal_at, task_id), task_id, team, final_cost_micros,
       terminal_at
FROM jobs
WHERE status IN ('success', 'failed') AND final_cost_micros > 0
  AND terminal_at > (SELECT MAX(read_at) FROM balance_readings);
INSERT INTO counters (name, value)
SELECT 'settlement', COALESCE(MAX(seq), 0) FROM settlements;
