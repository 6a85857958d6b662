-- Which API door a job came through ('modellix': /api/v1/...; 'openai': /v1/videos), the id
-- that door shows for it (api_ref: 'video_<intent id>' for OpenAI videos, NULL otherwise),
-- what the client asked in that door's own terms (api_request: JSON, e.g. model, prompt,
-- seconds, size) and when its owner removed it from their views (hidden_at; the ledger keeps
-- the row for finance).
ALTER TABLE jobs ADD COLUMN api TEXT NOT NULL DEFAULT 'modellix';
ALTER TABLE jobs ADD COLUMN api_ref TEXT;
ALTER TABLE jobs ADD COLUMN api_request TEXT;
ALTER TABLE jobs ADD COLUMN hidden_at DOUBLE PRECISION;
CREATE UNIQUE INDEX jobs_api_ref ON jobs (api_ref) WHERE api_ref IS NOT NULL;
CREATE INDEX jobs_api_caller ON jobs (caller, api, submitted_at) WHERE api_ref IS NOT NULL;
