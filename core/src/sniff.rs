//! Telling bytes apart by content, never by `Content-Type` or extension: what a source URL is
//! (an HLS playlist, a DASH manifest, a media file, or something else such as an error page),
//! and whether downloaded (and decrypted) bytes are the media they claim to be, so an error
//! page, a wrong key or a truncated response is caught at the piece that has it.

use std::fmt;

/// How many leading bytes [`identify`] looks at; callers pass at least this many when the body
/// is that long.
pub const HEAD_LEN: usize = 4096;

/// A media (or image, or subtitle) format, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// MPEG-2 transport stream.
    Ts,
    /// ISO BMFF: MP4, MOV, fMP4 segments and init sections.
    Mp4,
    /// Packed audio: ADTS AAC, MP3, AC-3 / E-AC-3, optionally after an ID3 tag.
    PackedAudio,
    /// FLAC.
    Flac,
    /// Ogg (Vorbis, Opus, Theora).
    Ogg,
    /// Matroska or WebM.
    Matroska,
    /// Flash video.
    Flv,
    /// RIFF media: AVI or WAVE.
    Riff,
    /// WebVTT subtitles or thumbnail tracks.
    WebVtt,
    /// TTML subtitles (an XML document whose root is `tt`).
    Ttml,
    /// A JPEG, PNG, GIF or WebP image.
    Image,
}

/// What a body that is not media looks like, for messages that say what arrived instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMedia {
    /// Nothing at all (or only white space).
    Empty,
    /// An HTML page: an error, login or captive-portal page served with 200.
    Html,
    /// A JSON document (an API error, typically).
    Json,
    /// An XML document, with its root element (an S3/OSS `<Error>`, say).
    Xml(String),
    /// An HLS playlist where media was expected.
    Playlist,
    /// Text that looks like a playlist but lacks the `#EXTM3U` header.
    PlaylistWithoutHeader,
    /// Other text.
    Text,
    /// Binary data in no format we know, with its first bytes in hex.
    Unknown(String),
}

impl fmt::Display for NotMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotMedia::Empty => f.write_str("empty"),
            NotMedia::Html => f.write_str("an HTML page"),
            NotMedia::Json => f.write_str("a JSON document"),
            NotMedia::Xml(root) => write!(f, "an XML document (<{root}>)"),
            NotMedia::Playlist => f.write_str("an HLS playlist"),
            NotMedia::PlaylistWithoutHeader => f.write_str("text that looks like a playlist but has no #EXTM3U header"),
            NotMedia::Text => f.write_str("text"),
            NotMedia::Unknown(hex) => write!(f, "data in no known media format (starts with {hex})"),
        }
    }
}

/// What a body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An HLS playlist: `#EXTM3U` after an optional BOM, blank lines and `#` comment lines.
    Hls,
    /// A DASH manifest: an XML document whose root element is `MPD`.
    Dash,
    /// A media file (or image, or subtitles).
    Media(MediaKind),
    /// Anything else.
    NotMedia(NotMedia),
}

/// Tells what a body is from its first bytes (pass [`HEAD_LEN`] of them, or the whole body if it
/// is shorter). `complete` says whether `head` is the whole body: a transport stream needs two
/// packet syncs, so a short complete body cannot be one.
pub fn identify(head: &[u8], complete: bool) -> Content {
    // Text in UTF-16 (an error page, say) is what its text is, and never a playlist or media:
    // both must be UTF-8. Its byte-order mark would otherwise pass for an MPEG audio sync.
    if let Some(text) = utf16_text(head) {
        return match classify_text(&text) {
            c @ Content::NotMedia(_) => c,
            _ => Content::NotMedia(NotMedia::Text),
        };
    }
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if h.trim_ascii().is_empty() {
        return Content::NotMedia(NotMedia::Empty);
    }
    // Text is never binary media, even when it happens to start like it ("ID3…", or a reply
    // with "free" at bytes 4 to 8): the text formats are told apart as text.
    if let Some(text) = text_prefix(h) {
        return classify_text(text);
    }
    match binary_media(h, complete) {
        Some(kind) => Content::Media(kind),
        None => Content::NotMedia(NotMedia::Unknown(hex::encode(&h[..h.len().min(8)]))),
    }
}

/// What a text body is: an HLS playlist, WebVTT or TTML, or what it looks like otherwise.
fn classify_text(text: &str) -> Content {
    if is_hls(text) {
        return Content::Hls;
    }
    let t = text.trim_start();
    if t.is_empty() {
        return Content::NotMedia(NotMedia::Empty);
    }
    if t.starts_with("WEBVTT") {
        return Content::Media(MediaKind::WebVtt);
    }
    if t.starts_with('<') {
        return match markup_root(t) {
            Root::Html => Content::NotMedia(NotMedia::Html),
            Root::Element(name) if name == "MPD" => Content::Dash,
            Root::Element(name) if name == "tt" => Content::Media(MediaKind::Ttml),
            Root::Element(name) => Content::NotMedia(NotMedia::Xml(name)),
            Root::Unknown => Content::NotMedia(NotMedia::Xml("?".into())),
        };
    }
    if t.starts_with('{') || t.starts_with('[') {
        return Content::NotMedia(NotMedia::Json);
    }
    if t.contains("#EXTINF") || t.contains("#EXT-X-") {
        return Content::NotMedia(NotMedia::PlaylistWithoutHeader);
    }
    Content::NotMedia(NotMedia::Text)
}

/// The text of a UTF-16 body (little- or big-endian, told by its byte-order mark).
fn utf16_text(h: &[u8]) -> Option<String> {
    let big = match h.get(..2) {
        Some([0xFF, 0xFE]) => false,
        Some([0xFE, 0xFF]) => true,
        _ => return None,
    };
    let units = h[2..]
        .chunks_exact(2)
        .map(|c| if big { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) });
    Some(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
}

/// Binary formats, by magic numbers and (for MPEG-TS and ISO BMFF) structure.
fn binary_media(h: &[u8], complete: bool) -> Option<MediaKind> {
    if is_ts(h, complete) {
        return Some(MediaKind::Ts);
    }
    if h.len() >= 8 && BOX_TYPES.iter().chain(&QT_ATOMS).any(|t| &h[4..8] == *t) {
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        // 0: to the end; 1: a 64-bit size follows; otherwise at least the header.
        if size == 0 || size == 1 || size >= 8 {
            return Some(MediaKind::Mp4);
        }
    }
    if h.starts_with(b"ID3") && h.len() >= 10 {
        return Some(MediaKind::PackedAudio);
    }
    if is_mpeg_audio(h) {
        return Some(MediaKind::PackedAudio);
    }
    if h.starts_with(&[0x0B, 0x77]) && h.len() >= 6 {
        return Some(MediaKind::PackedAudio);
    }
    if h.starts_with(b"fLaC") {
        return Some(MediaKind::Flac);
    }
    if h.starts_with(b"OggS") {
        return Some(MediaKind::Ogg);
    }
    if h.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(MediaKind::Matroska);
    }
    if h.starts_with(b"FLV\x01") {
        return Some(MediaKind::Flv);
    }
    if h.len() >= 12 && &h[..4] == b"RIFF" {
        return match &h[8..12] {
            b"AVI " | b"WAVE" => Some(MediaKind::Riff),
            b"WEBP" => Some(MediaKind::Image),
            _ => None,
        };
    }
    if is_image(h) {
        return Some(MediaKind::Image);
    }
    None
}

/// An ADTS header (12-bit sync, layer 0, a valid sampling-frequency index) or an MPEG audio frame
/// header (11-bit sync, no reserved version, layer, bit rate or sampling rate). The reserved
/// values keep a UTF-16 byte-order mark (`FF FE`) followed by text from passing for MP3.
fn is_mpeg_audio(h: &[u8]) -> bool {
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return false;
    }
    if h[1] & 0xF6 == 0xF0 {
        return (h[2] >> 2) & 0x0F < 13; // ADTS
    }
    let (version, layer) = ((h[1] >> 3) & 3, (h[1] >> 1) & 3);
    let (bitrate, rate) = (h[2] >> 4, (h[2] >> 2) & 3);
    version != 1 && layer != 0 && bitrate != 15 && rate != 3
}

/// JPEG, PNG or GIF by magic number (WebP is a RIFF form, above).
fn is_image(h: &[u8]) -> bool {
    h.starts_with(&[0xFF, 0xD8, 0xFF]) || h.starts_with(b"\x89PNG\r\n\x1a\n") || h.starts_with(b"GIF8")
}

/// A transport stream: a sync byte at the start of every 188-byte packet in `h`, and at least two
/// of them (one `G` is not a video).
fn is_ts(h: &[u8], complete: bool) -> bool {
    if h.first() != Some(&0x47) {
        return false;
    }
    if h.len() <= TS_PACKET as usize {
        // A lone packet is a transport stream only if it is exactly the whole body.
        return complete && h.len() == TS_PACKET as usize;
    }
    h.iter().step_by(TS_PACKET as usize).all(|&b| b == 0x47)
}

/// The longest prefix of `h` that is text: valid UTF-8 (a character cut at the end is allowed)
/// with no control characters but white space.
fn text_prefix(h: &[u8]) -> Option<&str> {
    let s = match std::str::from_utf8(h) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() && h.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&h[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0C')).then_some(s)
}

/// `#EXTM3U` after blank lines and `#` comment lines (lines that start with `#` but not
/// `#EXT`). A tag before the header, or any other line, means it is not a playlist.
fn is_hls(text: &str) -> bool {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(rest) = l.strip_prefix("#EXTM3U") {
            return rest.trim().is_empty();
        }
        if l.starts_with('#') && !l.starts_with("#EXT") {
            continue;
        }
        return false;
    }
    false
}

/// The position of the `#EXTM3U` header line in a playlist (0-based line index), if it has one.
pub fn hls_header_line(text: &str) -> Option<usize> {
    for (i, line) in text.lines().enumerate() {
        let l = line.trim().trim_start_matches('\u{feff}');
        if l.is_empty() || (l.starts_with('#') && !l.starts_with("#EXT")) {
            continue;
        }
        return l.strip_prefix("#EXTM3U").filter(|r| r.trim().is_empty()).map(|_| i);
    }
    None
}

enum Root {
    Html,
    Element(String),
    Unknown,
}

const HTML_ELEMENTS: [&str; 22] = [
    "html", "head", "body", "title", "meta", "script", "style", "link", "div", "p", "h1", "h2", "h3", "h4", "h5", "h6",
    "center", "pre", "table", "span", "a", "br",
];

/// The root element of a markup document (skipping the XML declaration, processing
/// instructions, comments and a DOCTYPE), namespace prefix removed.
fn markup_root(mut t: &str) -> Root {
    loop {
        t = t.trim_start();
        if let Some(rest) = t.strip_prefix("<?") {
            match rest.find("?>") {
                Some(e) => t = &rest[e + 2..],
                None => return Root::Unknown,
            }
        } else if let Some(rest) = t.strip_prefix("<!--") {
            match rest.find("-->") {
                Some(e) => t = &rest[e + 3..],
                None => return Root::Unknown,
            }
        } else if let Some(rest) = t.strip_prefix("<!") {
            if rest.get(..12).is_some_and(|d| d.eq_ignore_ascii_case("doctype html")) {
                return Root::Html;
            }
            match rest.find('>') {
                Some(e) => t = &rest[e + 1..],
                None => return Root::Unknown,
            }
        } else if let Some(rest) = t.strip_prefix('<') {
            let name: String =
                rest.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').take(64).collect();
            let local = name.rsplit(':').next().unwrap_or(&name).to_owned();
            if local.is_empty() {
                return Root::Unknown;
            }
            if HTML_ELEMENTS.iter().any(|e| e.eq_ignore_ascii_case(&local)) {
                return Root::Html;
            }
            return Root::Element(local);
        } else {
            return Root::Unknown;
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaKind::Ts => "an MPEG-TS stream",
            MediaKind::Mp4 => "an MP4 (ISO BMFF) file",
            MediaKind::PackedAudio => "packed audio",
            MediaKind::Flac => "FLAC audio",
            MediaKind::Ogg => "an Ogg stream",
            MediaKind::Matroska => "a Matroska/WebM file",
            MediaKind::Flv => "an FLV file",
            MediaKind::Riff => "a RIFF (AVI/WAVE) file",
            MediaKind::WebVtt => "WebVTT text",
            MediaKind::Ttml => "a TTML document",
            MediaKind::Image => "an image",
        })
    }
}

/// Why bytes are not acceptable media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// Not media at all: says what arrived instead.
    #[error("got {0}, not media")]
    NotMedia(NotMedia),
    /// Media of a kind this piece cannot be (an image where video was expected, say).
    #[error("got {0} where {1} was expected")]
    WrongKind(MediaKind, &'static str),
    /// A transport stream whose packets lose sync.
    #[error("MPEG-TS sync byte missing at offset {0}")]
    TsSync(usize),
    /// ISO BMFF boxes that do not add up.
    #[error("MP4 box structure broken at offset {0}")]
    Boxes(usize),
}

/// Incremental checker fed with the decrypted bytes as they are stored. Both structural walks
/// (TS packet sync, MP4 box sizes) run on every byte; the first bytes decide which applies.
#[derive(Debug, Default)]
pub struct Sniffer {
    head: Vec<u8>,
    len: u64,
    ts_bad: Option<u64>,
    box_start: u64,
    box_hdr: [u8; 16],
    box_hdr_len: usize,
    /// Where the next box starts; `u64::MAX` after a box of size 0 ("to the end").
    box_next: u64,
    box_bad: Option<u64>,
}

const TS_PACKET: u64 = 188;
const BOX_TYPES: [&[u8; 4]; 14] = [
    b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"sidx", b"emsg", b"prft", b"free", b"skip", b"uuid", b"ssix",
    b"meta", b"pdin",
];
/// QuickTime files may start with these atoms instead of `ftyp`.
const QT_ATOMS: [&[u8; 4]; 2] = [b"wide", b"pnot"];

impl Sniffer {
    /// A fresh checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        let take = (HEAD_LEN - self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..take]);
        let base = self.len;
        let end = base + data.len() as u64;
        if self.ts_bad.is_none() {
            let mut k = base.div_ceil(TS_PACKET) * TS_PACKET;
            while k < end {
                if data[(k - base) as usize] != 0x47 {
                    self.ts_bad = Some(k);
                    break;
                }
                k += TS_PACKET;
            }
        }
        let mut i = 0usize;
        while self.box_bad.is_none() && i < data.len() {
            let abs = base + i as u64;
            if self.box_hdr_len == 0 {
                if abs < self.box_next {
                    i += (self.box_next - abs).min((data.len() - i) as u64) as usize;
                    continue;
                }
                self.box_start = abs;
            }
            let want = if self.box_hdr_len >= 8 && self.size32() == 1 { 16 } else { 8 };
            let n = (want - self.box_hdr_len).min(data.len() - i);
            self.box_hdr[self.box_hdr_len..self.box_hdr_len + n].copy_from_slice(&data[i..i + n]);
            self.box_hdr_len += n;
            i += n;
            if self.box_hdr_len < want {
                continue;
            }
            let size = match self.size32() {
                1 if want == 8 => continue, // read the 64-bit size next
                1 => u64::from_be_bytes(self.box_hdr[8..16].try_into().unwrap_or([0; 8])),
                0 => u64::MAX - self.box_start,
                s => u64::from(s),
            };
            if size < want as u64 {
                self.box_bad = Some(self.box_start);
            }
            self.box_next = self.box_start.saturating_add(size);
            self.box_hdr_len = 0;
        }
        self.len = end;
    }

    fn size32(&self) -> u32 {
        u32::from_be_bytes([self.box_hdr[0], self.box_hdr[1], self.box_hdr[2], self.box_hdr[3]])
    }

    /// Bytes fed so far.
    #[cfg(feature = "fuzzing")]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// What the bytes fed so far are (from their first [`HEAD_LEN`] bytes alone).
    pub fn content(&self) -> Content {
        identify(&self.head, self.len == self.head.len() as u64)
    }

    /// The verdict once every byte has been fed: the media kind, with the structure of a
    /// transport stream or an ISO BMFF file checked to the last byte.
    ///
    /// # Errors
    /// A [`SniffError`] saying what is wrong, or what arrived instead of media.
    pub fn finish(&self) -> Result<MediaKind, SniffError> {
        let kind = match self.content() {
            Content::Media(kind) => kind,
            // A transport stream that loses sync early is reported as such.
            Content::NotMedia(NotMedia::Unknown(_)) if self.head.first() == Some(&0x47) && self.ts_bad.is_some() => {
                return Err(SniffError::TsSync(self.ts_bad.unwrap_or(0) as usize));
            }
            Content::Hls => return Err(SniffError::NotMedia(NotMedia::Playlist)),
            Content::Dash => return Err(SniffError::NotMedia(NotMedia::Xml("MPD".into()))),
            Content::NotMedia(what) => return Err(SniffError::NotMedia(what)),
        };
        match kind {
            MediaKind::Ts => {
                if let Some(at) = self.ts_bad {
                    return Err(SniffError::TsSync(at as usize));
                }
            }
            MediaKind::Mp4 => {
                let bad = self.box_bad.or_else(|| {
                    let complete = self.box_hdr_len == 0 && (self.box_next == self.len || self.box_next == u64::MAX);
                    (!complete).then_some(self.box_start)
                });
                if let Some(at) = bad {
                    return Err(SniffError::Boxes(at as usize));
                }
            }
            _ => {}
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &[u8], piece: usize) -> Result<MediaKind, SniffError> {
        let mut s = Sniffer::new();
        for c in data.chunks(piece.max(1)) {
            s.update(c);
        }
        s.finish()
    }

    fn ts(packets: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..packets {
            let mut p = vec![0u8; 188];
            p[0] = 0x47;
            v.extend(p);
        }
        v
    }

    fn mp4() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(16u32.to_be_bytes());
        v.extend(b"styp");
        v.extend([0u8; 8]);
        v.extend(24u32.to_be_bytes());
        v.extend(b"moof");
        v.extend([0u8; 16]);
        v.extend(1u32.to_be_bytes()); // 64-bit size
        v.extend(b"mdat");
        v.extend(20u64.to_be_bytes());
        v.extend([0u8; 4]);
        v
    }

    #[test]
    fn accepts_real_shapes_in_any_split() {
        for piece in [1, 3, 7, 16, 100, 10_000] {
            assert_eq!(check(&ts(5), piece), Ok(MediaKind::Ts), "piece {piece}");
            assert_eq!(check(&mp4(), piece), Ok(MediaKind::Mp4), "piece {piece}");
            assert_eq!(check(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", piece), Ok(MediaKind::WebVtt));
            assert_eq!(check(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf1", piece), Ok(MediaKind::PackedAudio));
        }
    }

    #[test]
    fn rejects_broken_media_and_says_what_arrived() {
        let mut bad = ts(5);
        bad[188 * 3] = 0x00;
        assert_eq!(check(&bad, 50), Err(SniffError::TsSync(188 * 3)));
        let mut cut = mp4();
        cut.truncate(cut.len() - 2);
        assert!(matches!(check(&cut, 5), Err(SniffError::Boxes(_))));
        assert_eq!(check(b"<!DOCTYPE html><html>403</html>", 4), Err(SniffError::NotMedia(NotMedia::Html)));
        assert_eq!(check(b"", 4), Err(SniffError::NotMedia(NotMedia::Empty)));
        assert!(matches!(check(&[0x12u8; 40], 4), Err(SniffError::NotMedia(NotMedia::Unknown(_)))));
        // A short body that starts with 'G' is text, not a transport stream.
        assert_eq!(check(b"Gateway Timeout", 4), Err(SniffError::NotMedia(NotMedia::Text)));
        assert_eq!(check(b"#EXTM3U\n#EXTINF:4,\na.ts\n", 4).unwrap_err().to_string(), "got an HLS playlist, not media");
    }

    #[test]
    fn sources_told_apart_by_content() {
        let id = |b: &[u8]| identify(b, true);
        assert_eq!(id(b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n"), Content::Hls);
        assert_eq!(id(b"\xEF\xBB\xBF\r\n\n# made by a packager\n#\n#EXTM3U\n"), Content::Hls);
        assert_eq!(id(b"  \n#EXTM3U   \n"), Content::Hls);
        assert_eq!(id(b"#EXT-X-VERSION:3\n#EXTM3U\n"), Content::NotMedia(NotMedia::PlaylistWithoutHeader));
        assert_eq!(id(b"#EXTM3UX\n#EXTINF:4,\na.ts\n"), Content::NotMedia(NotMedia::PlaylistWithoutHeader));
        assert_eq!(id(b""), Content::NotMedia(NotMedia::Empty));
        assert_eq!(id(b" \r\n\t"), Content::NotMedia(NotMedia::Empty));
        assert_eq!(id(b"this is not a playlist <html>"), Content::NotMedia(NotMedia::Text));
        assert_eq!(id(b"\n<!doctype HTML>\n<title>x</title>"), Content::NotMedia(NotMedia::Html));
        assert_eq!(id(b"<h1>502 Bad Gateway</h1>"), Content::NotMedia(NotMedia::Html));
        assert_eq!(id(b"{\"error\":\"expired\"}"), Content::NotMedia(NotMedia::Json));
        assert_eq!(
            id(b"<?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code></Error>"),
            Content::NotMedia(NotMedia::Xml("Error".into()))
        );
        assert_eq!(
            id(b"<?xml version=\"1.0\"?>\n<!-- packager -->\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\">"),
            Content::Dash
        );
        assert_eq!(id(b"<mpd:MPD xmlns:mpd=\"urn:mpeg:dash:schema:mpd:2011\">"), Content::Dash);
        assert_eq!(
            id(b"<?xml version=\"1.0\"?><tt xmlns=\"http://www.w3.org/ns/ttml\">"),
            Content::Media(MediaKind::Ttml)
        );
        assert_eq!(id(&ts(3)), Content::Media(MediaKind::Ts));
        assert_eq!(id(&ts(1)), Content::Media(MediaKind::Ts), "a whole body of one packet");
        assert_eq!(identify(&ts(1)[..100], false), Content::NotMedia(NotMedia::Unknown("4700000000000000".into())));
        assert_eq!(id(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"), Content::Media(MediaKind::Mp4));
        assert_eq!(id(b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat"), Content::Media(MediaKind::Mp4));
        assert_eq!(id(b"ID3\x04\x00\x00\x00\x00\x00\x0f"), Content::Media(MediaKind::PackedAudio));
        assert_eq!(id(b"\xFF\xF1\x50\x80\x02\x1F\xFC"), Content::Media(MediaKind::PackedAudio));
        assert_eq!(id(b"\xFF\xFB\x90\x64"), Content::Media(MediaKind::PackedAudio));
        assert_eq!(id(b"fLaC\x00\x00\x00\x22"), Content::Media(MediaKind::Flac));
        assert_eq!(id(b"OggS\x00\x02"), Content::Media(MediaKind::Ogg));
        assert_eq!(id(b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81"), Content::Media(MediaKind::Matroska));
        assert_eq!(id(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"), Content::Media(MediaKind::Image));
        assert_eq!(id(b"RIFF\x10\x00\x00\x00WEBPVP8 "), Content::Media(MediaKind::Image));
        assert_eq!(id(b"\x89PNG\r\n\x1a\n\x00"), Content::Media(MediaKind::Image));
        assert_eq!(id(b"\xEF\xBB\xBFWEBVTT\n"), Content::Media(MediaKind::WebVtt));
        assert!(matches!(id(b"\x1f\x8b\x08\x00\x00\x00"), Content::NotMedia(NotMedia::Unknown(_))));
        assert!(matches!(id(b"PK\x03\x04zip"), Content::NotMedia(NotMedia::Unknown(_))));
        // A UTF-16 page (its byte-order mark looks like an MPEG audio sync) is not MP3.
        assert_eq!(id(b"\xFF\xFE<\x00h\x00t\x00m\x00l\x00>\x00"), Content::NotMedia(NotMedia::Html));
        assert_eq!(id(b"\xFF\xFE{\x00\"\x00a\x00\"\x00}\x00"), Content::NotMedia(NotMedia::Json));
        assert_eq!(id(b"\xFE\xFF\x00#\x00E\x00X\x00T\x00M\x003\x00U"), Content::NotMedia(NotMedia::Text));
        // Text that happens to start like binary media is text.
        assert_eq!(id(b"ID3 tags are not supported here"), Content::NotMedia(NotMedia::Text));
        assert_eq!(id(b"Not free: quota exceeded"), Content::NotMedia(NotMedia::Text));
        // A UTF-8 character cut by the end of the head is still text.
        assert_eq!(
            identify("plain text é".as_bytes().split_last().unwrap().1, false),
            Content::NotMedia(NotMedia::Text)
        );
    }

    #[test]
    fn messages_are_one_line_and_say_what_arrived() {
        assert_eq!(NotMedia::Html.to_string(), "an HTML page");
        assert_eq!(NotMedia::Empty.to_string(), "empty");
        assert_eq!(NotMedia::Xml("Error".into()).to_string(), "an XML document (<Error>)");
    }
}
