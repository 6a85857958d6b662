-- Virtual keys (hashed at rest) and budgets with atomic reservations.
CREATE TABLE virtual_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT,
    team TEXT,
    project TEXT,
    upstream_key_ref TEXT,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX virtual_keys_team ON virtual_keys (team);

-- One row per budget scope ("team:growth", "global", ...) and window (day/month start).
CREATE TABLE budget_windows (
    scope_key TEXT NOT NULL,
    window_start REAL NOT NULL,
    limit_micros INTEGER NOT NULL,
    spent_micros INTEGER NOT NULL DEFAULT 0,
    reserved_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope_key, window_start)
);

CREATE TABLE budget_reservations (
    reservation_id TEXT PRIMARY KEY,
    scopes TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    state TEXT NOT NULL,
    final_micros INTEGER
);
