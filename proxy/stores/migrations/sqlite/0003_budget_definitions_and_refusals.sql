-- Key expiry and concurrency caps, job reservations, budget definitions, refusals.
ALTER TABLE virtual_keys ADD COLUMN expires_at REAL;
ALTER TABLE virtual_keys ADD COLUMN max_concurrent_jobs INTEGER;

-- The budget reservation a job holds until it is settled or released.
ALTER TABLE jobs ADD COLUMN reservation_id TEXT;

-- Operator-defined budgets; their spend lives in budget_windows ("budget:<name>").
CREATE TABLE budgets (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('key', 'team', 'project', 'global')),
    subject TEXT,
    "window" TEXT NOT NULL CHECK ("window" IN ('day', 'month', 'lifetime')),
    limit_micros INTEGER NOT NULL,
    hard INTEGER NOT NULL CHECK (hard IN (0, 1)),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- Requests refused by a guard (budget, cap, key state), for reports.
CREATE TABLE refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    caller TEXT,
    team TEXT,
    project TEXT,
    model TEXT,
    reason TEXT NOT NULL,
    estimated_cost_micros INTEGER
);
CREATE INDEX refusals_at ON refusals (at);
