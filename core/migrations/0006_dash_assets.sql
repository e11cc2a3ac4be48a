-- no-transaction
-- vodvault catalog, schema 6: DASH assets (kind 'dash').
--
-- SQLite cannot change a CHECK constraint in place, so `assets` is rebuilt (SQLite's own
-- procedure: https://www.sqlite.org/lang_altertable.html#otheralter): with foreign keys off, so
-- that dropping the old table does not cascade to the renditions, segments and images that refer
-- to it, and inside one transaction, so that a kill leaves either schema 5 or schema 6.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE assets_v6 (
    id             TEXT PRIMARY KEY NOT NULL,  -- hash of identity
    identity       TEXT NOT NULL UNIQUE,       -- source without signatures + chosen rendition
    kind           TEXT NOT NULL CHECK (kind IN ('hls', 'progressive', 'dash')),
    mode           TEXT NOT NULL CHECK (mode IN ('normal', 'encrypted')),
    source_url     TEXT NOT NULL,              -- as last given or refreshed (may be signed)
    request        TEXT NOT NULL,              -- JSON: what was asked for (quality, renditions)
    title          TEXT,
    metadata       TEXT,                       -- the app's own data, opaque to us
    headers        BLOB,                       -- request headers, sealed under the vault key
    state          TEXT NOT NULL CHECK (state IN
                       ('queued', 'downloading', 'paused', 'failed', 'completed', 'cancelled')),
    failure        TEXT,                       -- JSON failure reason when state = 'failed'
    bytes_expected INTEGER,
    expected_exact INTEGER NOT NULL DEFAULT 0,
    bytes_done     INTEGER NOT NULL DEFAULT 0, -- bytes of segments stored and committed
    segments_total INTEGER NOT NULL DEFAULT 0,
    segments_done  INTEGER NOT NULL DEFAULT 0,
    duration_secs  REAL,
    key_id         TEXT,                       -- key file that wraps the content key
    wrapped_key    BLOB,                       -- content key, wrapped (Encrypted mode)
    entry          TEXT,                       -- relative path a player opens
    created_at     INTEGER NOT NULL,           -- Unix ms
    updated_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    offline_until  INTEGER,                    -- Unix ms: playable offline until then
    vod            TEXT                        -- JSON: the ApsaraVideo VOD stream it is
) STRICT;
INSERT INTO assets_v6 (id, identity, kind, mode, source_url, request, title, metadata, headers, state, failure,
                       bytes_expected, expected_exact, bytes_done, segments_total, segments_done, duration_secs,
                       key_id, wrapped_key, entry, created_at, updated_at, completed_at, offline_until, vod)
    SELECT id, identity, kind, mode, source_url, request, title, metadata, headers, state, failure,
           bytes_expected, expected_exact, bytes_done, segments_total, segments_done, duration_secs,
           key_id, wrapped_key, entry, created_at, updated_at, completed_at, offline_until, vod
    FROM assets;
DROP TABLE assets;
ALTER TABLE assets_v6 RENAME TO assets;
COMMIT;
PRAGMA foreign_keys = ON;
