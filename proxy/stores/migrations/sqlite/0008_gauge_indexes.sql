-- The gauges every replica reads every few seconds, served from indexes alone.
-- Open jobs by model, and the stale ones: a small partial index, never the table.
CREATE INDEX jobs_open_models ON jobs (pinned_slug, stale) WHERE terminal_at IS NULL;
-- Spend by team, project and model over a window: the window's rows, read from the index.
CREATE INDEX jobs_spend ON jobs (submitted_at, team, project, pinned_slug, estimated_cost_micros, final_cost_micros);
