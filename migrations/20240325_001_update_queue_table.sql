-- Retries for the processing queue: how often an entry was tried, why it last failed, and
-- when it last changed. One column an ALTER, the form both SQLite and PostgreSQL accept.
ALTER TABLE processing_queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

ALTER TABLE processing_queue ADD COLUMN last_error TEXT;

ALTER TABLE processing_queue ADD COLUMN updated_at TEXT;

-- Workers pick entries by status.
CREATE INDEX idx_processing_queue_status ON processing_queue (status);

-- Deleting a hash looks its entries up by hash_id (neither database indexes a foreign key
-- by itself).
CREATE INDEX idx_processing_queue_hash_id ON processing_queue (hash_id);
