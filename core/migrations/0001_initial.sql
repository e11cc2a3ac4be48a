-- vodvault catalog, schema 1. Never edit a migration once released: add a new one.

-- Facts about the vault itself: which key file it is bound to, when it was made.
CREATE TABLE vault_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE assets (
    id             TEXT PRIMARY KEY NOT NULL,  -- hash of identity
    identity       TEXT NOT NULL UNIQUE,       -- source without signatures + chosen rendition
    kind           TEXT NOT NULL CHECK (kind IN ('hls', 'progressive')),
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
    completed_at   INTEGER
) STRICT;

-- What was chosen: the video variant, audio/subtitle renditions, or the progressive file.
CREATE TABLE renditions (
    asset_id  TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('video', 'audio', 'subtitles', 'file')),
    dir       TEXT NOT NULL,                   -- relative directory of its files
    url       TEXT NOT NULL,                   -- media playlist or file URL (may be signed)
    uri       TEXT NOT NULL,                   -- the same without signature parameters
    attrs     TEXT NOT NULL,                   -- JSON attributes (bandwidth, language, ...)
    playlist  TEXT,                            -- the source media playlist as last fetched
    validator TEXT,                            -- progressive: ETag / Last-Modified
    PRIMARY KEY (asset_id, idx)
) STRICT;

-- Every piece to fetch. A row is 'done' only after its file is durable on disk.
CREATE TABLE segments (
    asset_id      TEXT NOT NULL,
    rendition     INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('init', 'media', 'file')),
    idx           INTEGER NOT NULL,            -- position in the playlist
    msn           INTEGER,                     -- media sequence number
    uri           TEXT NOT NULL,               -- as in the playlist, without signatures
    range_offset  INTEGER,
    range_length  INTEGER,
    file          TEXT NOT NULL,               -- relative path
    size          INTEGER,                     -- stored plaintext bytes
    sha256        TEXT,                        -- Normal mode: digest of the stored file
    resume_offset INTEGER NOT NULL DEFAULT 0,  -- progressive: bytes durable so far
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    PRIMARY KEY (asset_id, rendition, kind, idx),
    FOREIGN KEY (asset_id, rendition) REFERENCES renditions (asset_id, idx) ON DELETE CASCADE
) STRICT;

CREATE INDEX segments_by_state ON segments (asset_id, state);
