-- The audit trail: one append-only row per mutating admin action, written in the same
-- transaction as the change. Rows are hash-chained: hash = sha256 over the canonical JSON of
-- the row's fields and prev_hash. seq is given by the appender (the chain head's plus one).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    origin TEXT NOT NULL,
    peer TEXT,
    request_id TEXT,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- The chain's one head row: appends lock it (PostgreSQL: FOR UPDATE), so replicas append
-- one at a time. The anchor is the last row retention pruned (seq 0: nothing pruned), where
-- verification starts.
CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL,
    pruned_at DOUBLE PRECISION
);
INSERT INTO audit_chain (id, head_seq, head_hash, anchor_seq, anchor_hash)
VALUES (1, 0, '', 0, '');

-- Named admin credentials with a role, stored as the SHA-256 of the token only.
CREATE TABLE admin_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    rotated_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX admin_tokens_active_name ON admin_tokens (name) WHERE revoked_at IS NULL;
