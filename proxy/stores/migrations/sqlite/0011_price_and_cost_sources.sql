-- Where each job's price came from and what its final cost is. price_source: 'operator' (the
-- operator's pricing.models), 'upstream_list' (the upstream model list's display price) or
-- 'unpriced'; estimate_low/high_micros: the range the estimate lies in (a min/max list price,
-- or a duration bounded by pricing.input_bound_seconds, estimate_bounded); cost_source:
-- 'charge' (the upstream's billing.amount) or 'estimate' (no charge was given).
ALTER TABLE jobs ADD COLUMN price_source TEXT;
ALTER TABLE jobs ADD COLUMN estimate_low_micros INTEGER;
ALTER TABLE jobs ADD COLUMN estimate_high_micros INTEGER;
ALTER TABLE jobs ADD COLUMN estimate_bounded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cost_source TEXT;
