-- Which proxy key uploaded each media file (the File API): a proxy key lists and deletes only
-- its own files, though every upload goes upstream with the one shared upstream key.
CREATE TABLE media_files (
    file_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    team TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX media_files_key ON media_files (key_id);
