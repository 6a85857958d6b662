-- The upstream's published request schemas (api_schema), one row per version seen, and the
-- pin per model: the version validation uses, the newest version the origin served, and when
-- each was set. pinned_hash <> latest_hash is a change waiting for an operator (policy hold).
CREATE TABLE schema_versions (
    slug TEXT NOT NULL,
    hash TEXT NOT NULL,
    document TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (slug, hash)
);
CREATE TABLE schema_pins (
    slug TEXT PRIMARY KEY,
    pinned_hash TEXT NOT NULL,
    latest_hash TEXT NOT NULL,
    pinned_at DOUBLE PRECISION NOT NULL,
    latest_at DOUBLE PRECISION NOT NULL,
    checked_at DOUBLE PRECISION NOT NULL,
    changes INTEGER NOT NULL DEFAULT 0
);
