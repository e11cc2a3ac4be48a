//! Media playlists (RFC 8216 §4.3.2–4.3.3) with the semantics downloaders get wrong made explicit:
//! the key and initialization section in force for every segment, its media sequence number,
//! resolved byte ranges.
//!
//! This is our own parser rather than m3u8-rs's: m3u8-rs keeps one pending `EXT-X-KEY` per
//! segment (a second KEYFORMAT overwrites the first) and attaches keys and maps only to the next
//! segment, which is exactly what §4.3.2.4 and §4.3.2.5 forbid (see docs/design.md, D7).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::aes128::{HlsCryptoError, Iv};
use super::master::Expansion;
use super::vars::{VarSource, Variables};

/// Why a media playlist cannot be downloaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlaylistError {
    /// Not an HLS playlist (no `#EXTM3U` header).
    #[error("not an HLS playlist (missing #EXTM3U)")]
    NotAPlaylist,
    /// No `EXT-X-ENDLIST`: a live (or still growing) stream.
    #[error("live playlist (no EXT-X-ENDLIST): only complete (VOD) streams can be downloaded")]
    Live,
    /// A feature we do not download, with the reason.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The playlist breaks RFC 8216 at `line`.
    #[error("invalid playlist at line {line}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A variable reference (`{$name}`) with no `EXT-X-DEFINE` before it.
    #[error("invalid playlist at line {line}: undefined variable {{${name}}} (no EXT-X-DEFINE before it)")]
    UndefinedVariable {
        /// 1-based line number.
        line: usize,
        /// The variable's name.
        name: String,
    },
}

fn invalid(line: usize, reason: impl Into<String>) -> PlaylistError {
    PlaylistError::Invalid { line, reason: reason.into() }
}

/// A byte range of a resource, offset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
}

impl ByteRange {
    /// A range whose end fits in a signed 64-bit file offset (what SQLite, `lseek` and HTTP
    /// servers can address); `None` past it.
    pub fn new(offset: u64, length: u64) -> Option<ByteRange> {
        let end = offset.checked_add(length)?;
        (end <= i64::MAX as u64).then_some(ByteRange { offset, length })
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }

    /// The value of an HTTP `Range` header for this range.
    pub fn http_range(&self) -> String {
        format!("bytes={}-{}", self.offset, self.offset + self.length.saturating_sub(1))
    }
}

/// How a segment or initialization section is encrypted at the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// In the clear.
    None,
    /// `METHOD=AES-128`: AES-128-CBC of the whole resource with PKCS7 padding.
    Aes128 {
        /// Index into [`MediaPlaylist::keys`].
        key: usize,
        /// The IV in force (explicit, or the media sequence number for segments).
        iv: Iv,
    },
}

/// A media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number: `EXT-X-MEDIA-SEQUENCE` + position in the playlist.
    pub msn: u64,
    /// URI as written (relative to the playlist's URL, or absolute).
    pub uri: String,
    /// `EXTINF` duration, seconds.
    pub duration: f64,
    /// `EXTINF` title.
    pub title: String,
    /// `EXT-X-BYTERANGE`, resolved.
    pub byte_range: Option<ByteRange>,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// The key in force.
    pub encryption: Encryption,
    /// Index into [`MediaPlaylist::maps`] of the initialization section in force.
    pub map: Option<usize>,
    /// `EXT-X-GAP`: the source declares this segment unavailable.
    pub gap: bool,
    /// `EXT-X-PROGRAM-DATE-TIME`, verbatim.
    pub program_date_time: Option<String>,
}

/// A media initialization section (`EXT-X-MAP`).
#[derive(Debug, Clone, PartialEq)]
pub struct InitSection {
    /// URI as written.
    pub uri: String,
    /// `BYTERANGE`, resolved (offset 0 when omitted).
    pub byte_range: Option<ByteRange>,
    /// The key in force where the tag appears (§4.3.2.4).
    pub encryption: Encryption,
}

/// A source key (`METHOD=AES-128`, KEYFORMAT identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// URI as written.
    pub uri: String,
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION` (1 when absent).
    pub version: u32,
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// `EXT-X-PLAYLIST-TYPE`.
    pub playlist_type: Option<String>,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `EXT-X-START`, attribute list verbatim.
    pub start: Option<String>,
    /// The segments in order.
    pub segments: Vec<Segment>,
    /// Initialization sections, in order of appearance.
    pub maps: Vec<InitSection>,
    /// Distinct AES-128 keys, in order of first use.
    pub keys: Vec<KeyRef>,
    /// `EXT-X-DEFINE` variables, as resolved (stored with the plan, so that the playlist can be
    /// read again without its master or its URL).
    pub variables: Variables,
}

#[derive(Debug, Clone)]
enum KeyState {
    None,
    Aes128 { key: usize, iv: Option<Iv> },
    Other { method: String },
}

const IDENTITY: &str = "identity";

impl MediaPlaylist {
    /// Parses a media playlist and checks that it can be downloaded: complete (`EXT-X-ENDLIST`,
    /// or `EXT-X-PLAYLIST-TYPE:VOD`), no `SAMPLE-AES` or DRM-only key formats, explicit IVs for
    /// encrypted initialization sections, byte ranges that can be resolved, every variable
    /// defined (`IMPORT` and `QUERYPARAM` values from `source`).
    ///
    /// # Errors
    /// A [`PlaylistError`] naming the tag, the line and the reason.
    pub fn parse(text: &str, source: VarSource<'_>) -> Result<Self, PlaylistError> {
        let header = crate::sniff::hls_header_line(text).ok_or(PlaylistError::NotAPlaylist)?;
        let lines = text.lines().enumerate().skip(header + 1);
        let mut pl = MediaPlaylist {
            version: 1,
            target_duration: 0,
            media_sequence: 0,
            discontinuity_sequence: 0,
            playlist_type: None,
            independent_segments: false,
            start: None,
            segments: Vec::new(),
            maps: Vec::new(),
            keys: Vec::new(),
            variables: Variables::default(),
        };
        let mut end_list = false;
        // KEYFORMAT → key in force.
        let mut keys: BTreeMap<String, (KeyState, usize)> = BTreeMap::new();
        let mut current_map: Option<usize> = None;
        // Pending per-segment tags.
        let mut extinf: Option<(f64, String)> = None;
        let mut pending_range: Option<(u64, Option<u64>, usize)> = None;
        let mut discontinuity = false;
        let mut gap = false;
        let mut pdt: Option<String> = None;
        // The end of the previous segment's sub-range and its URI, for `@o`-less byte ranges.
        let mut last_range: Option<(String, u64)> = None;
        let mut expand = Expansion::new();

        for (i, raw) in lines {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with('#') {
                let (duration, title) = extinf.take().ok_or_else(|| invalid(n, "segment URI without #EXTINF"))?;
                let line = &*expand.uri(&pl.variables, line, n)?;
                let byte_range = match pending_range.take() {
                    None => None,
                    Some((length, offset, tag_line)) => {
                        let offset = match (offset, &last_range) {
                            (Some(offset), _) => offset,
                            (None, Some((uri, end))) if uri == line => *end,
                            (None, _) => {
                                return Err(invalid(
                                    tag_line,
                                    "EXT-X-BYTERANGE without @offset must follow a sub-range of the same URI (§4.3.2.2)",
                                ));
                            }
                        };
                        Some(ByteRange::new(offset, length).ok_or_else(|| {
                            invalid(tag_line, "EXT-X-BYTERANGE ends past the largest file offset (2^63 - 1)")
                        })?)
                    }
                };
                last_range = byte_range.map(|r| (line.to_owned(), r.end()));
                let msn = pl.media_sequence + pl.segments.len() as u64;
                let encryption = effective(&keys, n, msn, false)?;
                pl.segments.push(Segment {
                    msn,
                    uri: line.to_owned(),
                    duration,
                    title,
                    byte_range,
                    discontinuity: std::mem::take(&mut discontinuity),
                    encryption,
                    map: current_map,
                    gap: std::mem::take(&mut gap),
                    program_date_time: pdt.take(),
                });
                continue;
            }
            let (tag, value) = match line.split_once(':') {
                Some((t, v)) => (t, v),
                None => (line, ""),
            };
            match tag {
                "#EXT-X-VERSION" => {
                    pl.version =
                        value.trim().parse().map_err(|_| invalid(n, format!("bad EXT-X-VERSION {value:?}")))?;
                }
                "#EXT-X-TARGETDURATION" => {
                    // Only a hint for players; a bad value is replaced by the longest segment.
                    pl.target_duration = value.trim().parse().unwrap_or(0);
                }
                "#EXT-X-MEDIA-SEQUENCE" => {
                    if !pl.segments.is_empty() {
                        return Err(invalid(n, "EXT-X-MEDIA-SEQUENCE after the first segment"));
                    }
                    // Not a decimal-integer (negative, say): 0, as hls.js takes it (docs/design.md,
                    // D30).
                    pl.media_sequence = value.trim().parse().unwrap_or(0);
                }
                "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                    pl.discontinuity_sequence = value
                        .trim()
                        .parse()
                        .map_err(|_| invalid(n, format!("bad EXT-X-DISCONTINUITY-SEQUENCE {:?}", value.trim())))?;
                }
                "#EXT-X-PLAYLIST-TYPE" => pl.playlist_type = Some(value.trim().to_owned()),
                "#EXT-X-DEFINE" => {
                    let attrs = super::attrs::Attrs::parse(value)
                        .ok_or_else(|| invalid(n, "EXT-X-DEFINE: malformed attribute list"))?;
                    pl.variables.define(&attrs, source, false).map_err(|e| invalid(n, format!("EXT-X-DEFINE: {e}")))?;
                }
                "#EXT-X-SKIP" => {
                    return Err(PlaylistError::Unsupported(format!(
                        "a delta update (EXT-X-SKIP at line {n}) leaves segments out"
                    )));
                }
                "#EXT-X-ENDLIST" => end_list = true,
                "#EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
                "#EXT-X-START" => pl.start = Some(value.trim().to_owned()),
                "#EXT-X-I-FRAMES-ONLY" => {
                    return Err(PlaylistError::Unsupported(format!(
                        "an I-frame-only playlist (EXT-X-I-FRAMES-ONLY at line {n}) is a trick-play track, not the media"
                    )));
                }
                "#EXT-X-STREAM-INF"
                | "#EXT-X-MEDIA"
                | "#EXT-X-I-FRAME-STREAM-INF"
                | "#EXT-X-SESSION-KEY"
                | "#EXT-X-SESSION-DATA"
                | "#EXT-X-CONTENT-STEERING" => {
                    return Err(invalid(
                        n,
                        format!("{} in a media playlist: it mixes master and media playlist tags", &tag[1..]),
                    ));
                }
                "#EXTM3U" => return Err(invalid(n, "a second #EXTM3U header")),
                "#EXTINF" => {
                    let (d, title) = value.split_once(',').unwrap_or((value, ""));
                    let bad = || invalid(n, format!("EXTINF: bad duration {:?}", d.trim()));
                    let duration: f64 = d.trim().parse().map_err(|_| bad())?;
                    if !duration.is_finite() || duration < 0.0 {
                        return Err(bad());
                    }
                    extinf = Some((duration, title.trim().to_owned()));
                }
                "#EXT-X-BYTERANGE" => {
                    let (len, off) =
                        parse_byterange(value).ok_or_else(|| invalid(n, format!("bad EXT-X-BYTERANGE {value:?}")))?;
                    pending_range = Some((len, off, n));
                }
                "#EXT-X-DISCONTINUITY" => discontinuity = true,
                "#EXT-X-GAP" => gap = true,
                "#EXT-X-PROGRAM-DATE-TIME" => pdt = Some(value.trim().to_owned()),
                "#EXT-X-KEY" => {
                    let attrs = expand.attrs("EXT-X-KEY", value, n, &pl.variables)?;
                    let format = attrs.get("KEYFORMAT").unwrap_or(IDENTITY).to_owned();
                    let method = attrs.get("METHOD").ok_or_else(|| invalid(n, "EXT-X-KEY without METHOD"))?;
                    let state = match method {
                        "NONE" => KeyState::None,
                        "AES-128" => {
                            let uri =
                                attrs.get("URI").ok_or_else(|| invalid(n, "EXT-X-KEY: METHOD=AES-128 without URI"))?;
                            let iv = attrs
                                .get("IV")
                                .map(Iv::parse)
                                .transpose()
                                .map_err(|e: HlsCryptoError| invalid(n, format!("EXT-X-KEY: {e}")))?;
                            let key = match pl.keys.iter().position(|k| k.uri == uri) {
                                Some(k) => k,
                                None => {
                                    pl.keys.push(KeyRef { uri: uri.to_owned() });
                                    pl.keys.len() - 1
                                }
                            };
                            KeyState::Aes128 { key, iv }
                        }
                        other => KeyState::Other { method: other.to_owned() },
                    };
                    keys.insert(format, (state, n));
                }
                "#EXT-X-MAP" => {
                    let attrs = expand.attrs("EXT-X-MAP", value, n, &pl.variables)?;
                    let uri = attrs.get("URI").ok_or_else(|| invalid(n, "EXT-X-MAP without URI"))?;
                    let byte_range = attrs
                        .get("BYTERANGE")
                        .map(|v| {
                            parse_byterange(v)
                                .and_then(|(length, offset)| ByteRange::new(offset.unwrap_or(0), length))
                                .ok_or_else(|| invalid(n, "EXT-X-MAP: bad BYTERANGE"))
                        })
                        .transpose()?;
                    let encryption = effective(&keys, n, 0, true)?;
                    pl.maps.push(InitSection { uri: uri.to_owned(), byte_range, encryption });
                    current_map = Some(pl.maps.len() - 1);
                }
                // Unknown tags and comments are ignored (§4.1).
                _ => {}
            }
        }
        // §4.3.3.5: a VOD playlist cannot change, so it is complete even without EXT-X-ENDLIST.
        let vod = pl.playlist_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("VOD"));
        if !end_list && !vod {
            return Err(PlaylistError::Live);
        }
        if pl.segments.is_empty() {
            return Err(invalid(header + 1, "no media segments"));
        }
        if pl.target_duration == 0 {
            pl.target_duration = pl.segments.iter().map(|s| s.duration.round() as u64).max().unwrap_or(1).max(1);
        }
        Ok(pl)
    }

    /// Which initialization sections apply to a segment. An `EXT-X-MAP` that no
    /// segment follows (replaced by the next one, or at the end) initialises nothing: it is not
    /// planned, fetched or written into the local playlist. (Indices stay those of the playlist,
    /// so that a stored plan reads back the same.)
    pub fn used_maps(&self) -> Vec<bool> {
        let mut used = vec![false; self.maps.len()];
        for m in self.segments.iter().filter_map(|s| s.map) {
            used[m] = true;
        }
        used
    }

    /// Total duration, seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

/// `<n>[@<o>]`.
fn parse_byterange(v: &str) -> Option<(u64, Option<u64>)> {
    let v = v.trim();
    match v.split_once('@') {
        Some((n, o)) => Some((n.trim().parse().ok()?, Some(o.trim().parse().ok()?))),
        None => Some((v.parse().ok()?, None)),
    }
}

/// The encryption in force for a segment (with its MSN for the implicit IV) or a map at `line`.
fn effective(
    keys: &BTreeMap<String, (KeyState, usize)>,
    line: usize,
    msn: u64,
    is_map: bool,
) -> Result<Encryption, PlaylistError> {
    match keys.get(IDENTITY) {
        Some((KeyState::Aes128 { key, iv }, _)) => {
            let iv = match (iv, is_map) {
                (Some(iv), _) => *iv,
                (None, false) => Iv::from_media_sequence(msn),
                (None, true) => {
                    return Err(invalid(line, "EXT-X-MAP encrypted with AES-128 needs an explicit IV (§4.3.2.5)"));
                }
            };
            Ok(Encryption::Aes128 { key: *key, iv })
        }
        Some((KeyState::Other { method }, at)) => Err(PlaylistError::Unsupported(format!(
            "METHOD={method} encryption (EXT-X-KEY at line {at}); only METHOD=AES-128 is supported"
        ))),
        Some((KeyState::None, _)) | None => {
            // A DRM key format in force with no identity key: the media is DRM-protected.
            if let Some((format, (state, at))) =
                keys.iter().find(|(f, (s, _))| f.as_str() != IDENTITY && !matches!(s, KeyState::None))
            {
                let method = match state {
                    KeyState::Other { method } => method.as_str(),
                    _ => "AES-128",
                };
                return Err(PlaylistError::Unsupported(format!(
                    "DRM-protected media (METHOD={method}, KEYFORMAT \"{format}\", EXT-X-KEY at line {at}); only clear \
                     and METHOD=AES-128 media are supported"
                )));
            }
            Ok(Encryption::None)
        }
    }
}

/// How [`write_local_playlist`] names the local copy of each resource.
pub trait LocalNames {
    /// The local URI of segment `index` (position in the playlist).
    fn segment(&self, index: usize) -> String;
    /// The local URI of initialization section `index`.
    fn map(&self, index: usize) -> String;
}

/// Writes the playlist a player opens from local storage: the same segments, durations,
/// discontinuities and initialization sections, every URI replaced by its local name, no
/// `EXT-X-KEY` (the media is stored decrypted) and no `EXT-X-BYTERANGE` (each sub-range is stored
/// as its own file).
pub fn write_local_playlist(pl: &MediaPlaylist, names: &dyn LocalNames) -> String {
    let mut out = String::with_capacity(64 + pl.segments.len() * 48);
    // EXT-X-MAP outside I-frame playlists needs version 6; float durations need 3.
    let version = pl.version.max(3).max(if pl.maps.is_empty() { 0 } else { 6 });
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:{version}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", pl.target_duration);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", pl.media_sequence);
    if pl.discontinuity_sequence != 0 {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", pl.discontinuity_sequence);
    }
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    if pl.independent_segments {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if let Some(start) = &pl.start {
        let _ = writeln!(out, "#EXT-X-START:{start}");
    }
    let mut map = None;
    for (i, s) in pl.segments.iter().enumerate() {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(pdt) = &s.program_date_time {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt}");
        }
        if s.map != map {
            if let Some(m) = s.map {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", names.map(m));
            }
            map = s.map;
        }
        let _ = writeln!(out, "#EXTINF:{},{}", fmt_duration(s.duration), s.title);
        if s.gap {
            out.push_str("#EXT-X-GAP\n");
        }
        let _ = writeln!(out, "{}", names.segment(i));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

fn fmt_duration(d: f64) -> String {
    let s = format!("{d:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<MediaPlaylist, PlaylistError> {
        MediaPlaylist::parse(s, VarSource::Nothing)
    }

    #[test]
    fn implicit_iv_is_the_media_sequence_number_of_each_segment() {
        // RFC 8216 §5.2: no IV attribute ⇒ IV = the segment's media sequence number.
        let pl = parse(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k2\",IV=0x0000000000000000000000000000ABCD\n#EXTINF:4,\nc.ts\n\
             #EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\nd.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let enc: Vec<_> = pl.segments.iter().map(|s| (s.msn, s.encryption)).collect();
        assert_eq!(enc[0], (7, Encryption::Aes128 { key: 0, iv: Iv::from_media_sequence(7) }));
        // §4.3.2.4: the key carries forward to the next segment too.
        assert_eq!(enc[1], (8, Encryption::Aes128 { key: 0, iv: Iv::from_media_sequence(8) }));
        assert_eq!(enc[2], (9, Encryption::Aes128 { key: 1, iv: Iv::from_media_sequence(0xABCD) }));
        assert_eq!(enc[3], (10, Encryption::None));
        assert_eq!(pl.keys, vec![KeyRef { uri: "k1".into() }, KeyRef { uri: "k2".into() }]);
    }

    #[test]
    fn a_drm_key_after_the_identity_key_does_not_hide_it() {
        // m3u8-rs keeps only the last KEY before a segment; here that would be FairPlay.
        let pl = parse(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k\",KEYFORMAT=\"identity\"\n\
             #EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
             #EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        assert!(matches!(pl.segments[0].encryption, Encryption::Aes128 { key: 0, .. }));
    }

    #[test]
    fn drm_only_sample_aes_and_unknown_methods_are_refused() {
        let drm = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(drm), Err(PlaylistError::Unsupported(m)) if m.contains("DRM")));
        let sample = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(sample), Err(PlaylistError::Unsupported(m)) if m.contains("SAMPLE-AES")));
    }

    #[test]
    fn live_playlists_are_refused() {
        let live = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n";
        assert_eq!(parse(live), Err(PlaylistError::Live));
        let event = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n";
        assert_eq!(parse(event), Err(PlaylistError::Live));
        // §4.3.3.5: a VOD playlist cannot change, so it is complete without EXT-X-ENDLIST.
        let vod = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n";
        assert_eq!(parse(vod).unwrap().segments.len(), 1);
    }

    #[test]
    fn variables_in_media_playlists() {
        let url = url::Url::parse("https://cdn.example.com/v/720p.m3u8?t=abc").unwrap();
        let mut master = Variables::default();
        master.insert("host", "https://edge.example.com");
        let text = "#EXTM3U\n#EXT-X-DEFINE:IMPORT=\"host\"\n#EXT-X-DEFINE:QUERYPARAM=\"t\"\n\
             #EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=AES-128,URI=\"{$host}/k?t={$t}\",IV=0x{$iv}\n\
             #EXTINF:4,\n{$host}/a.ts?t={$t}\n#EXT-X-ENDLIST\n";
        let text = text.replace("IV=0x{$iv}", "IV=0x1");
        let pl = MediaPlaylist::parse(&text, VarSource::Fetched { url: &url, imports: Some(&master) }).unwrap();
        assert_eq!(pl.segments[0].uri, "https://edge.example.com/a.ts?t=abc");
        assert_eq!(pl.keys[0].uri, "https://edge.example.com/k?t=abc");
        // Read again from what is stored, without the master or the URL: the same playlist.
        let again = MediaPlaylist::parse(&text, VarSource::Stored(&pl.variables)).unwrap();
        assert_eq!(again, pl);
        // IMPORT with no master, and a reference with no definition, are refused naming the line.
        assert!(matches!(parse(&text), Err(PlaylistError::Invalid { line: 2, .. })));
        let undefined = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{$x}.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(parse(undefined), Err(PlaylistError::UndefinedVariable { line: 4, name: "x".into() }));
    }

    #[test]
    fn packagers_quirks_accepted_and_refusals_naming_tag_and_line() {
        // Blank and comment lines before the header (line numbers stay the file's), no comma
        // after the duration, a bad media sequence (0, as hls.js takes it).
        let pl = parse("\n# packager\n#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-5\n#EXTINF:4\na.ts\n#EXT-X-ENDLIST\n").unwrap();
        assert_eq!((pl.segments[0].msn, pl.segments[0].duration), (0, 4.0));
        let e = parse("\n#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid playlist at line 3: EXT-X-STREAM-INF in a media playlist: it mixes master and media playlist tags"
        );
        let skip =
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        assert!(parse(skip).unwrap_err().to_string().contains("EXT-X-SKIP at line 3"));
        let drm = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        let msg = parse(drm).unwrap_err().to_string();
        assert!(msg.contains("METHOD=SAMPLE-AES") && msg.contains("line 3") && !msg.contains('\n'), "{msg}");
        assert_eq!(
            parse("#EXTM3U\n#EXTINF:x,\na.ts\n").unwrap_err().to_string(),
            "invalid playlist at line 2: EXTINF: bad duration \"x\""
        );
    }

    #[test]
    fn every_map_is_kept_and_encrypted_maps_need_an_iv() {
        let pl = parse(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init1.mp4\"\n\
             #EXTINF:4,\na.m4s\n#EXTINF:4,\nb.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\",BYTERANGE=\"700@0\"\n\
             #EXTINF:4,\nc.m4s\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        assert_eq!(pl.maps.len(), 2);
        assert_eq!(pl.segments.iter().map(|s| s.map).collect::<Vec<_>>(), vec![Some(0), Some(0), Some(1)]);
        assert_eq!(pl.maps[1].byte_range, Some(ByteRange { offset: 0, length: 700 }));
        assert!(pl.segments[2].discontinuity);

        let no_iv = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:4,\na.m4s\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(no_iv), Err(PlaylistError::Invalid { line: 4, .. })));
        let with_iv = no_iv.replace("URI=\"k\"", "URI=\"k\",IV=0x1");
        let pl = parse(&with_iv).unwrap();
        assert_eq!(pl.maps[0].encryption, Encryption::Aes128 { key: 0, iv: Iv::from_media_sequence(1) });
    }

    #[test]
    fn a_map_no_segment_follows_is_not_planned() {
        // Found by the hls_media fuzz target: a map at the end (or replaced before any segment)
        // was planned as a piece the local playlist never references.
        let pl = parse(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"unused.mp4\"\n#EXT-X-MAP:URI=\"a.mp4\"\n\
             #EXTINF:4,\na.m4s\n#EXT-X-MAP:URI=\"b.mp4\"\n#EXTINF:4,\nb.m4s\n#EXT-X-MAP:URI=\"end.mp4\"\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let used: Vec<_> =
            pl.used_maps().iter().zip(&pl.maps).filter(|(u, _)| **u).map(|(_, m)| m.uri.as_str()).collect();
        assert_eq!(used, ["a.mp4", "b.mp4"]);
        assert_eq!(pl.segments.iter().map(|s| s.map).collect::<Vec<_>>(), [Some(1), Some(2)]);
    }

    #[test]
    fn byte_ranges_continue_after_the_previous_sub_range() {
        let pl = parse(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-BYTERANGE:100@0\n#EXTINF:4,\nall.ts\n\
             #EXT-X-BYTERANGE:200\n#EXTINF:4,\nall.ts\n#EXT-X-BYTERANGE:50@1000\n#EXTINF:4,\nall.ts\n\
             #EXT-X-BYTERANGE:10\n#EXTINF:4,\nall.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let r: Vec<_> = pl.segments.iter().map(|s| s.byte_range.unwrap()).collect();
        assert_eq!(r[1], ByteRange { offset: 100, length: 200 });
        assert_eq!(r[3], ByteRange { offset: 1050, length: 10 });
        assert_eq!(r[0].http_range(), "bytes=0-99");
        // §4.3.2.2: no @o and no previous sub-range of the same URI → invalid.
        let bad = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-BYTERANGE:100@0\n#EXTINF:4,\na.ts\n#EXT-X-BYTERANGE:100\n#EXTINF:4,\nb.ts\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(bad), Err(PlaylistError::Invalid { line: 6, .. })));
        // A range that ends past what a file offset can address is refused, given or implied
        // (found by the hls_media fuzz target: the implied offset overflowed).
        let far = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-BYTERANGE:10@{}\n#EXTINF:4,\na.ts\n", i64::MAX - 5);
        assert!(matches!(parse(&(far + "#EXT-X-ENDLIST\n")), Err(PlaylistError::Invalid { line: 3, .. })));
        let implied =
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-BYTERANGE:10@{}\n#EXTINF:4,\na.ts\n", i64::MAX - 15);
        let implied = implied + "#EXT-X-BYTERANGE:10\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(&implied), Err(PlaylistError::Invalid { line: 6, .. })));
        let map = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"10@18446744073709551615\"\n#EXTINF:4,\na.mp4\n#EXT-X-ENDLIST\n";
        assert!(matches!(parse(map), Err(PlaylistError::Invalid { line: 3, .. })));
    }

    #[test]
    fn structural_errors_name_the_line() {
        assert_eq!(parse("<html>nope</html>"), Err(PlaylistError::NotAPlaylist));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\na.ts\n#EXT-X-ENDLIST\n"),
            Err(PlaylistError::Invalid { line: 3, .. })
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXTINF:abc,\na.ts\n#EXT-X-ENDLIST\n"),
            Err(PlaylistError::Invalid { line: 2, .. })
        ));
        assert!(matches!(parse("#EXTM3U\n#EXT-X-ENDLIST\n"), Err(PlaylistError::Invalid { .. })));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128\n#EXTINF:1,\na\n#EXT-X-ENDLIST\n"),
            Err(PlaylistError::Invalid { line: 2, .. })
        ));
    }

    struct Names;
    impl LocalNames for Names {
        fn segment(&self, i: usize) -> String {
            format!("seg-{i}.ts")
        }
        fn map(&self, i: usize) -> String {
            format!("init-{i}.mp4")
        }
    }

    #[test]
    fn local_playlist_drops_keys_and_ranges_and_keeps_maps_and_discontinuities() {
        let pl = parse(
            "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"https://k/key?token=1\",IV=0x1\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"10@0\"\n\
             #EXT-X-BYTERANGE:100@10\n#EXTINF:3.5,first\nall.mp4\n#EXT-X-DISCONTINUITY\n#EXTINF:4.0,\nb.mp4\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let local = write_local_playlist(&pl, &Names);
        assert_eq!(
            local,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:3.5,first\nseg-0.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:4,\nseg-1.ts\n#EXT-X-ENDLIST\n"
        );
        // And it parses back to the same timeline, in the clear.
        let back = parse(&local).unwrap();
        assert_eq!(back.segments.len(), 2);
        assert!(back.segments.iter().all(|s| s.encryption == Encryption::None));
        assert_eq!(back.segments[1].msn, 4);
    }
}
