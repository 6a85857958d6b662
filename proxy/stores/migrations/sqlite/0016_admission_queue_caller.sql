-- One caller's submits the admission queue holds unsent (GET /v1/videos lists them beside the
-- ledger's): found by the caller and the row's state.
CREATE INDEX admission_queue_caller ON admission_queue (caller, state);
