-- vodvault catalog, schema 5.

-- JSON object: a progressive file downloaded in byte-range pieces — the piece size, the file's
-- length and validator (ETag or Last-Modified) every piece was checked against, and the pieces
-- that are durable. NULL for a file downloaded on one connection, and for HLS pieces.
ALTER TABLE segments ADD COLUMN pieces TEXT;
