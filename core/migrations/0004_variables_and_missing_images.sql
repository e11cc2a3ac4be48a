-- vodvault catalog, schema 4.

-- JSON object (name -> value): the EXT-X-DEFINE variables a rendition's playlist was read with,
-- including those it imported from its master playlist or took from its URL's query, so that the
-- stored playlist can be read again (after a restart) without its master or its URL.
ALTER TABLE renditions ADD COLUMN variables TEXT;

-- JSON failure reason of an image that could not be fetched (state stays 'pending'): the asset
-- completes without it, and a resume of the completed asset tries it again.
ALTER TABLE images ADD COLUMN failure TEXT;
