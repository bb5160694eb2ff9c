-- Looking a hash up by value (exact matches, the near-duplicate search's candidates) and
-- listing the newest hashes first.
CREATE INDEX idx_hashes_hash ON hashes (hash);

CREATE INDEX idx_hashes_created_at ON hashes (created_at);
