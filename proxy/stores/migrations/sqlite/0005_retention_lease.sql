-- Named leases: one holder at a time across replicas (the retention round uses "retention").
-- A lease is free once expires_at has passed; its holder renews it by writing a later expiry.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
