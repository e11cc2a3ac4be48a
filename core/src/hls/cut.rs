//! A time range of a media playlist: the same playlist with only the segments that overlap the
//! range, every state they depend on kept (the key and the initialization section in force, the
//! media sequence number that implicit AES-128 IVs are made from, explicit byte-range offsets).

use super::media::MediaPlaylist;

/// Segment tags: they belong to the segment whose URI follows them.
const SEGMENT_TAGS: &[&str] = &[
    "#EXTINF",
    "#EXT-X-BYTERANGE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-GAP",
    "#EXT-X-BITRATE",
    "#EXT-X-DATERANGE",
    "#EXT-X-KEY",
    "#EXT-X-MAP",
];

/// Why a range cannot be cut.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CutError {
    /// No segment overlaps the range.
    #[error("the range {start:.3}–{end:.3} s holds no segment (the stream is {duration:.3} s long)")]
    Empty {
        /// Start, seconds.
        start: f64,
        /// End, seconds.
        end: f64,
        /// The playlist's duration, seconds.
        duration: f64,
    },
    /// The text does not hold the segments `pl` was parsed from.
    #[error("the playlist text does not match its parsed segments")]
    Mismatch,
}

/// Which segments of `pl` overlap `[start, end)` seconds (from the playlist's start): the
/// indexes of the first and one past the last.
///
/// # Errors
/// [`CutError::Empty`] when none does.
pub fn overlapping(pl: &MediaPlaylist, start: f64, end: f64) -> Result<(usize, usize), CutError> {
    let mut t = 0.0;
    let (mut first, mut last) = (None, 0);
    for (i, s) in pl.segments.iter().enumerate() {
        let (a, b) = (t, t + s.duration);
        t = b;
        // A zero-length segment at the start of the range belongs to it.
        if a < end && (b > start || (s.duration == 0.0 && a >= start)) {
            first.get_or_insert(i);
            last = i + 1;
        }
    }
    match first {
        Some(f) => Ok((f, last)),
        None => Err(CutError::Empty { start, end, duration: t }),
    }
}

/// The text of `pl` (parsed from `text`) with only the segments that overlap `[start, end)`
/// seconds. Tags of the playlist (version, target duration, variables, …) are kept; the media
/// sequence starts at the first segment kept; the key and initialization section in force at
/// that segment are repeated before it; every byte range gets its offset.
///
/// # Errors
/// [`CutError`].
pub fn cut(text: &str, pl: &MediaPlaylist, start: f64, end: f64) -> Result<String, CutError> {
    let (first, last) = overlapping(pl, start, end)?;
    let first_seg = &pl.segments[first];
    let mut out = String::with_capacity(text.len());
    let mut block: Vec<&str> = Vec::new();
    // State from the segments left out before the first kept one: the last key per KEYFORMAT
    // and the last initialization section.
    // Each with its position, to repeat them in their order (a map after a key is encrypted).
    let mut keys: Vec<(String, usize, &str)> = Vec::new();
    let mut map: Option<(usize, &str)> = None;
    let mut position = 0usize;
    let mut discontinuities = 0u64;
    let mut index = 0usize;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            let Some(seg) = pl.segments.get(index) else {
                return Err(CutError::Mismatch);
            };
            if index < first {
                for tag in &block {
                    position += 1;
                    if tag.starts_with("#EXT-X-KEY") {
                        let format = key_format(tag);
                        keys.retain(|(f, _, _)| *f != format);
                        keys.push((format, position, tag));
                    } else if tag.starts_with("#EXT-X-MAP") {
                        map = Some((position, tag));
                    } else if *tag == "#EXT-X-DISCONTINUITY" {
                        discontinuities += 1;
                    }
                }
            } else if index < last {
                if index == first {
                    // Less what the segment's own tags replace.
                    let own_keys: Vec<String> =
                        block.iter().filter(|t| t.starts_with("#EXT-X-KEY")).map(|t| key_format(t)).collect();
                    let own_map = block.iter().any(|t| t.starts_with("#EXT-X-MAP"));
                    let mut state: Vec<(usize, &str)> =
                        keys.iter().filter(|(f, _, _)| !own_keys.contains(f)).map(|(_, p, k)| (*p, *k)).collect();
                    state.extend(map.filter(|_| !own_map));
                    state.sort_unstable();
                    for (_, line) in state {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                for tag in &block {
                    // The first segment kept starts a new discontinuity sequence: its own
                    // DISCONTINUITY tag is counted in the header instead.
                    if index == first && *tag == "#EXT-X-DISCONTINUITY" {
                        discontinuities += 1;
                        continue;
                    }
                    match (tag.starts_with("#EXT-X-BYTERANGE"), seg.byte_range) {
                        (true, Some(r)) => out.push_str(&format!("#EXT-X-BYTERANGE:{}@{}", r.length, r.offset)),
                        _ => out.push_str(tag),
                    }
                    out.push('\n');
                }
                out.push_str(line);
                out.push('\n');
            }
            block.clear();
            index += 1;
            continue;
        }
        let name = line.split_once(':').map_or(line, |(n, _)| n);
        if SEGMENT_TAGS.contains(&name) {
            block.push(line);
        } else if name == "#EXT-X-MEDIA-SEQUENCE" {
            out.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", first_seg.msn));
        } else if name == "#EXT-X-DISCONTINUITY-SEQUENCE" {
            // Written once the discontinuities left out are counted (below).
        } else if line.starts_with("#EXT") && (index < last || name == "#EXT-X-ENDLIST") {
            out.push_str(line);
            out.push('\n');
        }
    }
    if index != pl.segments.len() {
        return Err(CutError::Mismatch);
    }
    if !out.contains("#EXT-X-MEDIA-SEQUENCE:") && first_seg.msn != 0 {
        out = insert_after_header(&out, &format!("#EXT-X-MEDIA-SEQUENCE:{}", first_seg.msn));
    }
    let seq = pl.discontinuity_sequence + discontinuities;
    if seq != 0 {
        out = insert_after_header(&out, &format!("#EXT-X-DISCONTINUITY-SEQUENCE:{seq}"));
    }
    if !out.contains("#EXT-X-ENDLIST") {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(out)
}

fn key_format(tag: &str) -> String {
    let attrs = tag.split_once(':').map_or("", |(_, a)| a);
    attrs
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("KEYFORMAT="))
        .map_or_else(|| "identity".to_owned(), |v| v.trim_matches('"').to_owned())
}

fn insert_after_header(text: &str, line: &str) -> String {
    match text.find('\n') {
        Some(i) => format!("{}\n{line}{}", &text[..i], &text[i..]),
        None => format!("{text}\n{line}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::media::Encryption;
    use crate::hls::vars::VarSource;

    fn parse(text: &str) -> MediaPlaylist {
        MediaPlaylist::parse(text, VarSource::Nothing).unwrap()
    }

    const PL: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:10\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n\
        #EXT-X-BYTERANGE:100@0\n#EXTINF:4,\nall.mp4\n#EXT-X-BYTERANGE:100\n#EXTINF:4,\nall.mp4\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=AES-128,URI=\"k2\"\n#EXTINF:4,\nc.mp4\n#EXTINF:4,\nd.mp4\n\
        #EXTINF:4,\ne.mp4\n#EXT-X-ENDLIST\n";

    #[test]
    fn the_segments_that_overlap_are_kept_with_the_state_they_need() {
        let pl = parse(PL);
        // 5–13 s: segments 1 (4–8), 2 (8–12), 3 (12–16).
        let text = cut(PL, &pl, 5.0, 13.0).unwrap();
        let got = parse(&text);
        assert_eq!(got.segments.len(), 3);
        for (a, b) in got.segments.iter().zip(&pl.segments[1..4]) {
            assert_eq!((a.msn, &a.uri, a.byte_range, a.duration), (b.msn, &b.uri, b.byte_range, b.duration));
            assert_eq!(a.encryption, b.encryption, "same key and IV (from the media sequence number)");
        }
        assert_eq!(got.media_sequence, 11);
        assert!(got.segments[0].map.is_some(), "the initialization section in force is kept");
        assert!(text.contains("#EXT-X-BYTERANGE:100@100"), "the implied offset is written: {text}");
        assert!(got.segments[1].discontinuity && !got.segments[0].discontinuity);
        assert!(matches!(got.segments[2].encryption, Encryption::Aes128 { .. }));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert!(!text.contains("e.mp4"));
    }

    #[test]
    fn a_range_that_starts_after_a_discontinuity_counts_it() {
        let pl = parse(PL);
        let text = cut(PL, &pl, 9.0, 100.0).unwrap();
        let got = parse(&text);
        assert_eq!(got.segments.len(), 3);
        assert_eq!(got.discontinuity_sequence, 1);
        assert_eq!(got.media_sequence, 12);
        assert!(text.contains("URI=\"k2\""), "{text}");
        assert!(!text.contains("URI=\"k1\""), "the key no longer in force is not repeated: {text}");
    }

    #[test]
    fn a_range_past_the_end_is_refused_and_the_whole_range_is_the_playlist() {
        let pl = parse(PL);
        assert!(matches!(cut(PL, &pl, 20.0, 30.0), Err(CutError::Empty { .. })));
        assert!(matches!(cut(PL, &pl, 30.0, 40.0), Err(CutError::Empty { duration, .. }) if duration == 20.0));
        let all = parse(&cut(PL, &pl, 0.0, f64::INFINITY).unwrap());
        assert_eq!(all.segments, pl.segments);
        // Boundaries: a range ending exactly where a segment starts does not take it.
        assert_eq!(overlapping(&pl, 4.0, 8.0), Ok((1, 2)));
        assert_eq!(overlapping(&pl, 3.999, 8.001), Ok((0, 3)));
    }
}
