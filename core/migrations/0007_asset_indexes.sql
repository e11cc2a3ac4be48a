-- vodvault catalog, schema 7: indexes for vaults with many assets. The scheduler reads the
-- queued assets four times a second while downloads run, eviction looks for expired ones, and
-- every new download sums what the assets store and still expect (the space and quota check);
-- without these, each is a scan of every asset's whole row.
CREATE INDEX assets_by_state ON assets (state, created_at, id);
CREATE INDEX assets_by_expiry ON assets (offline_until) WHERE offline_until IS NOT NULL;
CREATE INDEX assets_sizes ON assets (state, bytes_expected, bytes_done);
