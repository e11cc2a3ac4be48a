-- vodvault catalog, schema 3: ApsaraVideo VOD assets, and images stored with an asset (cover,
-- snapshots, sprites, WebVTT thumbnail tracks).

-- JSON: what identifies a VOD asset (video id, definition, format, stream type) and what was last
-- learned from the API (transcode job id and size, mezzanine CRC-64, when the URLs expire).
ALTER TABLE assets ADD COLUMN vod TEXT;

CREATE TABLE images (
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('cover', 'snapshot', 'sprite', 'sprite_original', 'webvtt')),
    idx      INTEGER NOT NULL,                -- position among images of its kind (1-based)
    url      TEXT NOT NULL,                   -- as last given (may be signed)
    uri      TEXT NOT NULL,                   -- the same without signature parameters
    file     TEXT NOT NULL,                   -- relative path (images/...)
    size     INTEGER,                         -- stored plaintext bytes
    sha256   TEXT,                            -- Normal mode: digest of the stored file
    state    TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    PRIMARY KEY (asset_id, kind, idx)
) STRICT;
