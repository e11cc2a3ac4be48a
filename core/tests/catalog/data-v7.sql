-- The assets of data-v1.sql as schema 7 stores them (schema 7 adds indexes only: the same rows as
-- data-v6.sql), plus the new columns of schemas 2 to 5, two images and a DASH asset (schema 6).
INSERT INTO vault_meta (key, value) VALUES ('key_id', '0123456789abcdef'), ('app_id', 'com.example.player');

INSERT INTO assets (id, identity, kind, mode, source_url, request, title, metadata, headers, state, failure,
    bytes_expected, expected_exact, bytes_done, segments_total, segments_done, duration_secs, key_id,
    wrapped_key, entry, created_at, updated_at, completed_at, offline_until, vod)
VALUES
    ('aaaaaaaaaaaaaaaa', 'https://cdn.example.com/v/master.m3u8|https://cdn.example.com/v/hi.m3u8', 'hls',
     'encrypted', 'https://cdn.example.com/v/master.m3u8?auth_key=1-2-3',
     '{"url":"https://cdn.example.com/v/master.m3u8","mode":"encrypted","quality":"best","audio":"default","subtitles":"all","title":"Film","metadata":null,"identity":null,"parallel":null}',
     'Film', '{"season":1}', X'00112233', 'failed', '{"kind":"network","message":"video segment 2: reset"}',
     300000, 0, 200000, 3, 2, 12.0, '0123456789abcdef', X'01', NULL, 1764000000000, 1764000001000, NULL, NULL, NULL),
    ('bbbbbbbbbbbbbbbb', 'https://cdn.example.com/f.mp4', 'progressive', 'normal', 'https://cdn.example.com/f.mp4',
     '{"url":"https://cdn.example.com/f.mp4","mode":"normal","quality":"best","audio":"default","subtitles":"all","title":null,"metadata":null,"identity":null,"parallel":null}',
     NULL, NULL, NULL, 'completed', NULL, 5000, 1, 5000, 1, 1, NULL, NULL, NULL, 'media.mp4',
     1764000002000, 1764000003000, 1764000003000, 1900000000000,
     '{"video_id":"v1","definition":"OD","format":"mp4","stream_type":"video","mezzanine":true,"job_id":null,"size":5000,"crc64":42,"expires_at":0}');

INSERT INTO renditions (asset_id, idx, kind, dir, url, uri, attrs, playlist, validator, variables) VALUES
    ('aaaaaaaaaaaaaaaa', 0, 'video', 'video', 'https://cdn.example.com/v/hi.m3u8', 'https://cdn.example.com/v/hi.m3u8',
     '{"bandwidth":800000}', '#EXTM3U\n#EXT-X-ENDLIST\n', NULL, '{"token":"abc"}'),
    ('bbbbbbbbbbbbbbbb', 0, 'file', '', 'https://cdn.example.com/f.mp4', 'https://cdn.example.com/f.mp4',
     '{"size":5000}', NULL, '"etag-1"', NULL);

INSERT INTO segments (asset_id, rendition, kind, idx, msn, uri, range_offset, range_length, file, size, sha256,
    resume_offset, state, pieces) VALUES
    ('aaaaaaaaaaaaaaaa', 0, 'init', 0, NULL, 'init.mp4', 0, 700, 'video/init-0.mp4', 700, NULL, 700, 'done', NULL),
    ('aaaaaaaaaaaaaaaa', 0, 'media', 0, 100, 'seg-0.m4s', NULL, NULL, 'video/seg-00000.m4s', 199300, NULL, 199300, 'done', NULL),
    ('aaaaaaaaaaaaaaaa', 0, 'media', 1, 101, 'seg-1.m4s', NULL, NULL, 'video/seg-00001.m4s', NULL, NULL, 0, 'pending', NULL),
    ('bbbbbbbbbbbbbbbb', 0, 'file', 0, NULL, 'https://cdn.example.com/f.mp4', NULL, NULL, 'media.mp4', 5000,
     'deadbeef', 5000, 'done', '{"piece":4096,"len":5000,"validator":"\"etag-1\"","done":[0,1]}');

INSERT INTO images (asset_id, kind, idx, url, uri, file, size, sha256, state, failure) VALUES
    ('bbbbbbbbbbbbbbbb', 'cover', 1, 'https://cdn.example.com/c.jpg?auth_key=1-0-0-x', 'https://cdn.example.com/c.jpg',
     'images/cover.jpg', 900, 'cafe', 'done', NULL),
    ('bbbbbbbbbbbbbbbb', 'snapshot', 1, 'https://cdn.example.com/s.jpg', 'https://cdn.example.com/s.jpg',
     'images/snapshot-001.jpg', NULL, NULL, 'pending', '{"kind":"http_status","status":404,"message":"image images/snapshot-001.jpg"}');

INSERT INTO assets (id, identity, kind, mode, source_url, request, state, created_at, updated_at)
VALUES
    ('cccccccccccccccc', 'https://cdn.example.com/d/manifest.mpd', 'dash', 'normal', 'https://cdn.example.com/d/manifest.mpd',
     '{"url":"https://cdn.example.com/d/manifest.mpd","mode":"normal","quality":"best","audio":"default","subtitles":"all","title":null,"metadata":null,"identity":null,"parallel":null}',
     'queued', 1764000004000, 1764000004000);
