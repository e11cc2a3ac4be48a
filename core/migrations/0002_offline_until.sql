-- vodvault catalog, schema 2: an asset may be playable offline only until a time (Unix ms).
ALTER TABLE assets ADD COLUMN offline_until INTEGER;
