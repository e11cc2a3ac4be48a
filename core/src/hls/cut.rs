//! A time range of a media playlist: the same playlist with only the segments that overlap the
//! range, every state they depend on kept (the key and the initialization section in force, the
//! media sequence number that implicit AES-128 IVs are made from, explicit byte-range offsets).

use super::attrs::Attrs;
use super::media::{Encryption, MediaPlaylist};
use super::vars::{VarSource, Variables};

/// Tags of the playlist as a whole; every other tag belongs to the segment whose URI follows it
/// (`EXTINF`, `EXT-X-KEY`, `EXT-X-MAP`, `EXT-X-DATERANGE`, cue tags, …).
const PLAYLIST_TAGS: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXT-X-DEFINE",
    "#EXT-X-ENDLIST",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-ALLOW-CACHE",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-PART-INF",
];

/// A key in force: its KEYFORMAT, its position among the tags, its line.
type KeyLine<'a> = (String, usize, &'a str);
/// The initialization section in force: its position, its line, the keys in force where it is.
type MapLine<'a> = (usize, &'a str, Vec<KeyLine<'a>>);

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
    let out = cut_text(text, pl, first, last)?;
    check(&out, pl, first, last)?;
    Ok(out)
}

/// The text of segments `first..last` of `pl` (parsed from `text`), unchecked.
fn cut_text(text: &str, pl: &MediaPlaylist, first: usize, last: usize) -> Result<String, CutError> {
    let first_seg = &pl.segments[first];
    let mut out = String::with_capacity(text.len());
    let mut block: Vec<&str> = Vec::new();
    // State from the segments left out before the first kept one, each with its position: the
    // last key per KEYFORMAT, and the last initialization section with the keys in force where
    // it appears (an init section after a key is encrypted with it).
    let mut keys: Vec<KeyLine<'_>> = Vec::new();
    let mut map: Option<MapLine<'_>> = None;
    let mut position = 0usize;
    let mut discontinuities = 0u64;
    let mut index = 0usize;
    let (mut wrote_sequence, mut ended) = (false, false);
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
                    if is(tag, "#EXT-X-KEY") {
                        let format = key_format(tag, &pl.variables);
                        keys.retain(|(f, _, _)| *f != format);
                        keys.push((format, position, tag));
                    } else if is(tag, "#EXT-X-MAP") {
                        map = Some((position, tag, keys.clone()));
                    } else if *tag == "#EXT-X-DISCONTINUITY" {
                        discontinuities += 1;
                    }
                }
            } else if index < last {
                if index == first {
                    out.push_str(&state_before(&keys, map.as_ref(), &block, &pl.variables));
                }
                for tag in &block {
                    // The first segment kept starts a new discontinuity sequence: its own
                    // DISCONTINUITY tag is counted in the header instead.
                    if index == first && *tag == "#EXT-X-DISCONTINUITY" {
                        discontinuities += 1;
                        continue;
                    }
                    match (is(tag, "#EXT-X-BYTERANGE"), seg.byte_range) {
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
        if !line.starts_with("#EXT") {
            // A comment.
        } else if !PLAYLIST_TAGS.contains(&name) {
            block.push(line);
        } else if name == "#EXT-X-MEDIA-SEQUENCE" {
            out.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", first_seg.msn));
            wrote_sequence = true;
        } else if name == "#EXT-X-DISCONTINUITY-SEQUENCE" {
            // Written once the discontinuities left out are counted (below).
        } else {
            ended |= name == "#EXT-X-ENDLIST";
            out.push_str(line);
            out.push('\n');
        }
    }
    if index != pl.segments.len() {
        return Err(CutError::Mismatch);
    }
    if !wrote_sequence && first_seg.msn != 0 {
        out = insert_after_header(&out, &format!("#EXT-X-MEDIA-SEQUENCE:{}", first_seg.msn));
    }
    let seq = pl.discontinuity_sequence + discontinuities;
    if seq != 0 {
        out = insert_after_header(&out, &format!("#EXT-X-DISCONTINUITY-SEQUENCE:{seq}"));
    }
    if !ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(out)
}

/// The state the first kept segment (whose own tags are `block`) needs from the segments left
/// out: the initialization section in force, after the keys in force where it appeared, then
/// the keys in force now (less those its own tags replace, when they do not precede its own
/// initialization section).
fn state_before(keys: &[KeyLine<'_>], map: Option<&MapLine<'_>>, block: &[&str], vars: &Variables) -> String {
    let own_map = block.iter().position(|t| is(t, "#EXT-X-MAP"));
    let own_keys: Vec<String> = block
        .iter()
        .enumerate()
        .filter(|(i, t)| is(t, "#EXT-X-KEY") && own_map.is_none_or(|m| *i < m))
        .map(|(_, t)| key_format(t, vars))
        .collect();
    let mut lines: Vec<&str> = Vec::new();
    let mut emitted: Vec<usize> = Vec::new();
    if let (Some((_, tag, at_map)), None) = (map, own_map) {
        let mut before = at_map.clone();
        before.sort_by_key(|(_, p, _)| *p);
        for (_, p, k) in &before {
            lines.push(k);
            emitted.push(*p);
        }
        lines.push(tag);
    }
    let mut now: Vec<&KeyLine<'_>> =
        keys.iter().filter(|(f, p, _)| !emitted.contains(p) && !own_keys.contains(f)).collect();
    now.sort_by_key(|(_, p, _)| *p);
    lines.extend(now.iter().map(|(_, _, k)| *k));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Checks that the cut playlist holds exactly the kept segments as the source had them: media
/// sequence numbers, URIs, durations, byte ranges, keys and IVs, initialization sections.
fn check(out: &str, pl: &MediaPlaylist, first: usize, last: usize) -> Result<(), CutError> {
    let got = MediaPlaylist::parse(out, VarSource::Stored(&pl.variables)).map_err(|_| CutError::Mismatch)?;
    let key_uri = |p: &MediaPlaylist, e: &Encryption| match e {
        Encryption::None => None,
        Encryption::Aes128 { key, iv } => Some((p.keys.get(*key).map(|k| k.uri.clone()), *iv)),
    };
    let map_of = |p: &MediaPlaylist, m: Option<usize>| {
        m.and_then(|i| p.maps.get(i)).map(|m| (m.uri.clone(), m.byte_range, key_uri(p, &m.encryption)))
    };
    let same = got.segments.len() == last - first
        && got.segments.iter().zip(&pl.segments[first..last]).all(|(a, b)| {
            (a.msn, &a.uri, a.byte_range, a.duration, a.gap) == (b.msn, &b.uri, b.byte_range, b.duration, b.gap)
                && key_uri(&got, &a.encryption) == key_uri(pl, &b.encryption)
                && map_of(&got, a.map) == map_of(pl, b.map)
        });
    if same { Ok(()) } else { Err(CutError::Mismatch) }
}

/// Whether `line` is the tag `name` (not merely a tag whose name starts the same).
fn is(line: &str, name: &str) -> bool {
    line.split_once(':').map_or(line, |(n, _)| n) == name
}

/// The `KEYFORMAT` of an `EXT-X-KEY` line, read as the parser reads it (variables substituted);
/// one that cannot be read is its own format (it then matches no other, and the cut's check
/// refuses a playlist read differently).
fn key_format(tag: &str, vars: &Variables) -> String {
    let value = tag.split_once(':').map_or("", |(_, a)| a);
    let mut budget = usize::MAX;
    let Some(mut attrs) = Attrs::parse(value) else {
        return format!("unreadable {tag}");
    };
    if attrs.substitute(vars, &mut budget).is_err() {
        return format!("unreadable {tag}");
    }
    attrs.get("KEYFORMAT").unwrap_or("identity").to_owned()
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
    fn an_init_section_keeps_the_key_it_was_encrypted_with() {
        // KEY1, MAP (encrypted with KEY1), a segment, KEY2, the segment kept.
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0x1\n\
            #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\na.mp4\n#EXT-X-KEY:METHOD=AES-128,URI=\"k2\",IV=0x2\n#EXTINF:4,\nb.mp4\n\
            #EXT-X-MAP:URI=\"init2.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"k3\"\n#EXTINF:4,\nc.mp4\n#EXT-X-ENDLIST\n";
        let pl = parse(text);
        for (from, to) in [(4.0, 8.0), (8.0, 12.0), (4.0, 12.0)] {
            let cut = cut(text, &pl, from, to).unwrap();
            let got = parse(&cut);
            let first = (from / 4.0) as usize;
            for (a, b) in got.segments.iter().zip(&pl.segments[first..]) {
                let (ma, mb) = (&got.maps[a.map.unwrap()], &pl.maps[b.map.unwrap()]);
                assert_eq!(ma.uri, mb.uri);
                let uri = |p: &MediaPlaylist, e: &Encryption| match e {
                    Encryption::Aes128 { key, .. } => Some(p.keys[*key].uri.clone()),
                    Encryption::None => None,
                };
                assert_eq!(uri(&got, &ma.encryption), uri(&pl, &mb.encryption), "{cut}");
                assert_eq!(uri(&got, &a.encryption), uri(&pl, &b.encryption), "{cut}");
            }
        }
    }

    #[test]
    fn tags_of_left_out_segments_stay_with_them() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-CUE-OUT:DURATION=4\n#EXTINF:4,\nb.ts\n\
            #EXT-X-CUE-IN\n#EXTINF:4,\nc.ts\n#EXT-X-ENDLIST\n";
        let pl = parse(text);
        let cut = cut(text, &pl, 8.0, 12.0).unwrap();
        assert!(!cut.contains("CUE-OUT") && cut.contains("CUE-IN"), "{cut}");
        assert_eq!(parse(&cut).segments.len(), 1);
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
