//! Master playlists (RFC 8216 §4.3.4), and choosing what to download.
//!
//! Our own parser, like the media playlist's (docs/design.md, D7 and D30): it keeps every
//! rendition whatever attributes a packager adds (`FORCED` on audio, `CHARACTERISTICS`,
//! `CHANNELS`, `X-` attributes), substitutes `EXT-X-DEFINE` variables, and names the tag and line
//! of anything it refuses.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::attrs::Attrs;
use super::media::PlaylistError;
use super::vars::{MAX_EXPANSION, MAX_SUBSTITUTED, SubstError, VarSource, Variables};

/// Which kind of HLS playlist a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// A master (multivariant) playlist.
    Master,
    /// A media playlist.
    Media,
}

/// Tags only a master playlist has.
const MASTER_TAGS: [&str; 6] = [
    "#EXT-X-STREAM-INF",
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-MEDIA:",
    "#EXT-X-SESSION-DATA",
    "#EXT-X-SESSION-KEY",
    "#EXT-X-CONTENT-STEERING",
];

/// Tags only a media playlist has (RFC 8216 §4.3.2, §4.3.3): a master playlist with any of them
/// is refused (§4: a client MUST fail to parse a playlist that mixes them).
pub(crate) const MEDIA_TAGS: [&str; 13] = [
    "#EXTINF",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-BYTERANGE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-KEY",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-PART",
];

/// A master playlist has master-only tags (variants, renditions, session data and keys, content
/// steering); anything else is a media playlist. Either parser refuses the other's tags.
pub fn playlist_kind(text: &str) -> PlaylistKind {
    let master = text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("#EXT-X-") && MASTER_TAGS.iter().any(|t| l.starts_with(t))
    });
    if master { PlaylistKind::Master } else { PlaylistKind::Media }
}

/// A variant stream (`EXT-X-STREAM-INF`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// URI as written (variables substituted).
    pub uri: String,
    /// Peak bits per second (0 when the playlist does not say).
    pub bandwidth: u64,
    /// Average bits per second.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// Width in pixels.
    pub width: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// `AUDIO` group id.
    pub audio_group: Option<String>,
    /// `SUBTITLES` group id.
    pub subtitles_group: Option<String>,
    /// `CLOSED-CAPTIONS` group id (in-band captions: nothing to download).
    pub closed_captions: Option<String>,
    /// `VIDEO` group id (alternative angles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_group: Option<String>,
    /// `VIDEO-RANGE`: `SDR`, `PQ` or `HLG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<String>,
    /// `SUPPLEMENTAL-CODECS` (Dolby Vision over HDR10, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_codecs: Option<String>,
}

impl Variant {
    /// A variant known only by its URI and bandwidth (a media playlist given directly).
    pub fn with_bandwidth(uri: String, bandwidth: u64) -> Self {
        Self {
            uri,
            bandwidth,
            average_bandwidth: None,
            codecs: None,
            width: None,
            height: None,
            frame_rate: None,
            audio_group: None,
            subtitles_group: None,
            closed_captions: None,
            video_group: None,
            video_range: None,
            supplemental_codecs: None,
        }
    }
}

/// The kind of an `EXT-X-MEDIA` rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenditionKind {
    /// `TYPE=AUDIO`.
    Audio,
    /// `TYPE=SUBTITLES`.
    Subtitles,
    /// `TYPE=VIDEO` (alternative angles).
    Video,
    /// `TYPE=CLOSED-CAPTIONS`.
    ClosedCaptions,
}

/// An alternative rendition (`EXT-X-MEDIA`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// `TYPE`.
    pub kind: RenditionKind,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `DEFAULT=YES`.
    pub default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `FORCED=YES` (meaningful for subtitles; kept as written otherwise).
    pub forced: bool,
    /// `URI`; absent when the rendition is carried in the variant's own stream.
    pub uri: Option<String>,
    /// `CHANNELS`.
    pub channels: Option<String>,
    /// `CHARACTERISTICS`.
    pub characteristics: Option<String>,
}

/// A parsed master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPlaylist {
    /// `EXT-X-VERSION`.
    pub version: u32,
    /// Variant streams (I-frame variants excluded), in playlist order.
    pub variants: Vec<Variant>,
    /// How many `EXT-X-I-FRAME-STREAM-INF` (trick-play) variants there are; not downloaded.
    pub iframe_variants: usize,
    /// Alternative renditions, in playlist order.
    pub renditions: Vec<Rendition>,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `EXT-X-DEFINE` variables (media playlists may `IMPORT` them).
    pub variables: Variables,
}

fn invalid(line: usize, reason: impl Into<String>) -> PlaylistError {
    PlaylistError::Invalid { line, reason: reason.into() }
}

/// Variable substitution within one playlist, against its budget: what substitutions grow the
/// playlist by, together, is at most [`MAX_EXPANSION`].
pub(crate) struct Expansion {
    left: usize,
}

impl Expansion {
    pub(crate) fn new() -> Self {
        Self { left: MAX_EXPANSION }
    }

    fn error(line: usize, e: SubstError) -> PlaylistError {
        match e {
            SubstError::Undefined(name) => PlaylistError::UndefinedVariable { line, name },
            SubstError::TooLong => {
                invalid(line, format!("a variable makes a value longer than {} KiB", MAX_SUBSTITUTED >> 10))
            }
            SubstError::Budget => {
                invalid(line, format!("variables grow the playlist by more than {} MiB", MAX_EXPANSION >> 20))
            }
        }
    }

    /// A URI line with its variables substituted (what it grows by taken from the budget).
    pub(crate) fn uri<'s>(&mut self, vars: &Variables, s: &'s str, line: usize) -> Result<Cow<'s, str>, PlaylistError> {
        let out = vars.substitute(s).map_err(|e| Self::error(line, e))?;
        let grown = out.len().saturating_sub(s.len());
        self.left = self.left.checked_sub(grown).ok_or_else(|| Self::error(line, SubstError::Budget))?;
        Ok(out)
    }

    /// A tag's attribute list, parsed, with its variables substituted (each value's growth taken
    /// from the budget as it is made).
    pub(crate) fn attrs(
        &mut self,
        tag: &str,
        value: &str,
        line: usize,
        vars: &Variables,
    ) -> Result<Attrs, PlaylistError> {
        let mut attrs = Attrs::parse(value).ok_or_else(|| invalid(line, format!("{tag}: malformed attribute list")))?;
        attrs.substitute(vars, &mut self.left).map_err(|e| Self::error(line, e))?;
        Ok(attrs)
    }
}

fn yes(attrs: &Attrs, name: &str) -> bool {
    attrs.get(name).is_some_and(|v| v.eq_ignore_ascii_case("YES"))
}

fn opt(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn variant(attrs: &Attrs, uri: String, line: usize) -> Result<Variant, PlaylistError> {
    // BANDWIDTH is REQUIRED (§4.3.4.2), but players take variants without it; it only orders them.
    let bandwidth = match attrs.get("BANDWIDTH") {
        Some(b) => b.trim().parse().map_err(|_| invalid(line, format!("EXT-X-STREAM-INF: bad BANDWIDTH {b:?}")))?,
        None => 0,
    };
    let resolution = attrs.get("RESOLUTION").and_then(|r| {
        let (w, h) = r.split_once(['x', 'X'])?;
        Some((w.trim().parse::<u64>().ok()?, h.trim().parse::<u64>().ok()?))
    });
    let closed_captions =
        attrs.get("CLOSED-CAPTIONS").filter(|_| attrs.is_quoted("CLOSED-CAPTIONS")).map(str::to_owned);
    Ok(Variant {
        uri,
        bandwidth,
        average_bandwidth: attrs.get("AVERAGE-BANDWIDTH").and_then(|b| b.trim().parse().ok()),
        codecs: opt(attrs, "CODECS"),
        width: resolution.map(|r| r.0),
        height: resolution.map(|r| r.1),
        frame_rate: attrs
            .get("FRAME-RATE")
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f > 0.0),
        audio_group: opt(attrs, "AUDIO"),
        subtitles_group: opt(attrs, "SUBTITLES"),
        closed_captions,
        video_group: opt(attrs, "VIDEO"),
        video_range: opt(attrs, "VIDEO-RANGE"),
        supplemental_codecs: opt(attrs, "SUPPLEMENTAL-CODECS"),
    })
}

fn rendition(attrs: &Attrs, line: usize) -> Result<Option<Rendition>, PlaylistError> {
    let kind = match attrs.get("TYPE") {
        Some("AUDIO") => RenditionKind::Audio,
        Some("SUBTITLES") => RenditionKind::Subtitles,
        Some("VIDEO") => RenditionKind::Video,
        Some("CLOSED-CAPTIONS") => RenditionKind::ClosedCaptions,
        // A type from a later revision: nothing we know how to store, and nothing to lose.
        Some(_) => return Ok(None),
        None => return Err(invalid(line, "EXT-X-MEDIA without TYPE")),
    };
    let group_id = attrs.get("GROUP-ID").ok_or_else(|| invalid(line, "EXT-X-MEDIA without GROUP-ID"))?.to_owned();
    let language = opt(attrs, "LANGUAGE");
    // NAME is REQUIRED; without one, the language or the group names it.
    let name = opt(attrs, "NAME").or_else(|| language.clone()).unwrap_or_else(|| group_id.clone());
    Ok(Some(Rendition {
        kind,
        group_id,
        name,
        language,
        default: yes(attrs, "DEFAULT"),
        autoselect: yes(attrs, "AUTOSELECT"),
        forced: yes(attrs, "FORCED"),
        uri: opt(attrs, "URI").filter(|_| kind != RenditionKind::ClosedCaptions),
        channels: opt(attrs, "CHANNELS"),
        characteristics: opt(attrs, "CHARACTERISTICS"),
    }))
}

impl MasterPlaylist {
    /// Parses a master playlist, substituting `EXT-X-DEFINE` variables (`QUERYPARAM` from
    /// `source`'s URL).
    ///
    /// # Errors
    /// A [`PlaylistError`] naming the tag and the line: no `#EXTM3U` header, media segment tags,
    /// no variant, a malformed attribute list, an undefined variable.
    pub fn parse(text: &str, source: VarSource<'_>) -> Result<Self, PlaylistError> {
        let header = crate::sniff::hls_header_line(text).ok_or(PlaylistError::NotAPlaylist)?;
        let mut pl = MasterPlaylist {
            version: 1,
            variants: Vec::new(),
            iframe_variants: 0,
            renditions: Vec::new(),
            independent_segments: false,
            variables: Variables::default(),
        };
        // An EXT-X-STREAM-INF waiting for its URI line.
        let mut pending: Option<(Attrs, usize)> = None;
        let mut expand = Expansion::new();
        for (i, raw) in text.lines().enumerate().skip(header + 1) {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with('#') {
                // A URI line: the variant's, if one is waiting; a stray one is ignored, as
                // players do.
                if let Some((attrs, at)) = pending.take() {
                    let uri = expand.uri(&pl.variables, line, n)?;
                    pl.variants.push(variant(&attrs, uri.into_owned(), at)?);
                }
                continue;
            }
            let (tag, value) = line.split_once(':').unwrap_or((line, ""));
            if MEDIA_TAGS.contains(&tag) {
                let t = &tag[1..];
                return Err(invalid(n, format!("{t} in a master playlist: it mixes master and media playlist tags")));
            }
            match tag {
                "#EXT-X-STREAM-INF" => {
                    if let Some((_, at)) = pending {
                        return Err(invalid(at, "EXT-X-STREAM-INF without a URI line"));
                    }
                    pending = Some((expand.attrs("EXT-X-STREAM-INF", value, n, &pl.variables)?, n));
                }
                "#EXT-X-I-FRAME-STREAM-INF" => {
                    expand.attrs("EXT-X-I-FRAME-STREAM-INF", value, n, &pl.variables)?;
                    pl.iframe_variants += 1;
                }
                "#EXT-X-MEDIA" => {
                    let attrs = expand.attrs("EXT-X-MEDIA", value, n, &pl.variables)?;
                    if let Some(r) = rendition(&attrs, n)? {
                        pl.renditions.push(r);
                    }
                }
                "#EXT-X-DEFINE" => {
                    let attrs =
                        Attrs::parse(value).ok_or_else(|| invalid(n, "EXT-X-DEFINE: malformed attribute list"))?;
                    pl.variables.define(&attrs, source, true).map_err(|e| invalid(n, format!("EXT-X-DEFINE: {e}")))?;
                }
                "#EXT-X-VERSION" => {
                    pl.version =
                        value.trim().parse().map_err(|_| invalid(n, format!("bad EXT-X-VERSION {value:?}")))?;
                }
                "#EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
                "#EXTM3U" => return Err(invalid(n, "a second #EXTM3U header")),
                // SESSION-DATA, SESSION-KEY (the media playlists carry the keys that matter),
                // CONTENT-STEERING, START, unknown tags and comments (§4.1).
                _ => {}
            }
        }
        if let Some((_, at)) = pending {
            return Err(invalid(at, "EXT-X-STREAM-INF without a URI line"));
        }
        if pl.variants.is_empty() {
            return Err(invalid(header + 1, "master playlist without any EXT-X-STREAM-INF variant"));
        }
        Ok(pl)
    }

    /// The renditions of `kind` in `group`.
    pub fn group(&self, kind: RenditionKind, group: Option<&str>) -> Vec<&Rendition> {
        match group {
            Some(g) => self.renditions.iter().filter(|r| r.kind == kind && r.group_id == g).collect(),
            None => Vec::new(),
        }
    }
}

/// A value as a quoted string can hold it: without quotes or line breaks (which a quoted string
/// cannot contain) and without variable references (the local master defines no variables).
/// Packagers write such values unquoted; the same value is changed the same way everywhere, so
/// group ids still match.
fn q(value: &str) -> String {
    value.replace(['"', '\r', '\n'], "").replace("{$", "{ $")
}

/// Writes a local master playlist: one variant and the chosen renditions, each pointing at a
/// local media playlist.
pub fn write_local_master(
    version: u32,
    independent_segments: bool,
    variant: &Variant,
    variant_uri: &str,
    renditions: &[(&Rendition, Option<String>)],
) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{}\n", version.max(3));
    if independent_segments {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    for (r, uri) in renditions {
        let kind = match r.kind {
            RenditionKind::Audio => "AUDIO",
            RenditionKind::Subtitles => "SUBTITLES",
            RenditionKind::Video => "VIDEO",
            RenditionKind::ClosedCaptions => "CLOSED-CAPTIONS",
        };
        let _ = write!(out, "#EXT-X-MEDIA:TYPE={kind},GROUP-ID=\"{}\",NAME=\"{}\"", q(&r.group_id), q(&r.name));
        if let Some(l) = &r.language {
            let _ = write!(out, ",LANGUAGE=\"{}\"", q(l));
        }
        let yes_no = |b: bool| if b { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={},AUTOSELECT={}", yes_no(r.default), yes_no(r.autoselect));
        // FORCED is only allowed on subtitles (§4.3.4.1), whatever the source wrote.
        if r.forced && r.kind == RenditionKind::Subtitles {
            out.push_str(",FORCED=YES");
        }
        if let Some(c) = &r.channels {
            let _ = write!(out, ",CHANNELS=\"{}\"", q(c));
        }
        if let Some(c) = &r.characteristics {
            let _ = write!(out, ",CHARACTERISTICS=\"{}\"", q(c));
        }
        if let Some(u) = uri {
            let _ = write!(out, ",URI=\"{}\"", q(u));
        }
        out.push('\n');
    }
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth);
    if let Some(a) = variant.average_bandwidth {
        let _ = write!(out, ",AVERAGE-BANDWIDTH={a}");
    }
    if let Some(c) = &variant.codecs {
        let _ = write!(out, ",CODECS=\"{}\"", q(c));
    }
    if let (Some(w), Some(h)) = (variant.width, variant.height) {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    if let Some(fr) = variant.frame_rate {
        let _ = write!(out, ",FRAME-RATE={fr:.3}");
    }
    let has = |k: RenditionKind| renditions.iter().any(|(r, _)| r.kind == k);
    if let (Some(g), true) = (&variant.audio_group, has(RenditionKind::Audio)) {
        let _ = write!(out, ",AUDIO=\"{}\"", q(g));
    }
    if let (Some(g), true) = (&variant.subtitles_group, has(RenditionKind::Subtitles)) {
        let _ = write!(out, ",SUBTITLES=\"{}\"", q(g));
    }
    if let (Some(g), true) = (&variant.closed_captions, has(RenditionKind::ClosedCaptions)) {
        let _ = write!(out, ",CLOSED-CAPTIONS=\"{}\"", q(g));
    }
    let _ = writeln!(out, "\n{variant_uri}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:4\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"a/en.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=YES,URI=\"a/de.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,URI=\"s/en.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\"\nlow.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,AUDIO=\"aud\",SUBTITLES=\"subs\"\nmid.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO=\"aud\",SUBTITLES=\"subs\"\nhigh.m3u8\n\
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframes.m3u8\"\n";

    fn parse(text: &str) -> Result<MasterPlaylist, PlaylistError> {
        MasterPlaylist::parse(text, VarSource::Nothing)
    }

    #[test]
    fn kind_by_content() {
        assert_eq!(playlist_kind(MASTER), PlaylistKind::Master);
        assert_eq!(playlist_kind("\u{feff}#EXTM3U\n#EXTINF:1,\na.ts\n"), PlaylistKind::Media);
        assert_eq!(playlist_kind("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:1,\na.ts\n"), PlaylistKind::Media);
    }

    #[test]
    fn every_rendition_is_kept_whatever_attributes_packagers_add() {
        // FORCED on audio is not allowed by the RFC, but packagers write FORCED=NO; hls.js keeps
        // such a rendition, m3u8-rs dropped it (the offline copy had no audio).
        let text = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,CHANNELS=\"2\",URI=\"en.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"Français\",LANGUAGE=\"fr\",CHARACTERISTICS=\"public.accessibility.describes-video\",X-VENDOR=\"z\",URI=\"fr.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"s\",NAME=\"English (forced)\",LANGUAGE=\"en\",FORCED=YES,URI=\"sub.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"a\",SUBTITLES=\"s\",CLOSED-CAPTIONS=\"cc\",VIDEO-RANGE=PQ,X-FOO=1\nv.m3u8\n";
        let m = parse(text).unwrap();
        assert_eq!(m.renditions.len(), 4);
        let audio = m.group(RenditionKind::Audio, Some("a"));
        assert_eq!(audio.len(), 2);
        assert_eq!(audio[0].channels.as_deref(), Some("2"));
        assert_eq!(audio[1].characteristics.as_deref(), Some("public.accessibility.describes-video"));
        assert_eq!(m.variants[0].video_range.as_deref(), Some("PQ"));
        assert_eq!(m.variants[0].closed_captions.as_deref(), Some("cc"));
        // The local master says FORCED only where the RFC allows it.
        let local = write_local_master(
            3,
            false,
            &m.variants[0],
            "video/index.m3u8",
            &[(audio[0], Some("audio-1/index.m3u8".into())), (&m.renditions[2], Some("subtitles-2/index.m3u8".into()))],
        );
        assert_eq!(local.matches("FORCED=YES").count(), 1, "{local}");
        assert!(!local.lines().any(|l| l.contains("TYPE=AUDIO") && l.contains("FORCED")), "{local}");
    }

    #[test]
    fn the_local_master_quotes_what_packagers_left_unquoted() {
        // Found by the hls_master fuzz target: an unquoted NAME holding a quote, or a `{$`, broke
        // the local master (a quoted string cannot hold a quote; it has no variables).
        let text = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=a{$x},NAME=*fra\",URI=\"fr.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=a{$x},CODECS=avc1\"x\nv.m3u8\n";
        let m = parse(text).unwrap();
        let audio = m.group(RenditionKind::Audio, m.variants[0].audio_group.as_deref());
        let local =
            write_local_master(3, false, &m.variants[0], "video/index.m3u8", &[(audio[0], Some("a/i.m3u8".into()))]);
        let back = parse(&local).unwrap();
        assert_eq!(back.renditions[0].name, "*fra");
        assert_eq!(back.group(RenditionKind::Audio, back.variants[0].audio_group.as_deref()).len(), 1, "{local}");
    }

    #[test]
    fn variables_are_substituted_everywhere_they_may_appear() {
        let url = url::Url::parse("https://cdn.example.com/v/master.m3u8?auth=s3cr3t").unwrap();
        let text = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"https://edge.example.com\"\n\
            #EXT-X-DEFINE:QUERYPARAM=\"auth\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"{$host}/audio.m3u8?auth={$auth}\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"a\",CODECS=\"{$host}\"\n{$host}/v.m3u8?auth={$auth}\n";
        let m = MasterPlaylist::parse(text, VarSource::Fetched { url: &url, imports: None }).unwrap();
        assert_eq!(m.variants[0].uri, "https://edge.example.com/v.m3u8?auth=s3cr3t");
        assert_eq!(m.renditions[0].uri.as_deref(), Some("https://edge.example.com/audio.m3u8?auth=s3cr3t"));
        assert_eq!(m.variables.get("auth"), Some("s3cr3t"));
        let undefined = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{$nope}/v.m3u8\n";
        assert_eq!(parse(undefined), Err(PlaylistError::UndefinedVariable { line: 3, name: "nope".into() }));
        let import = "#EXTM3U\n#EXT-X-DEFINE:IMPORT=\"x\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n";
        assert!(matches!(parse(import), Err(PlaylistError::Invalid { line: 2, .. })));
    }

    #[test]
    fn refusals_name_the_tag_and_line_in_one_line() {
        let cases = [
            ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:4,\na.ts\n", 4, "EXTINF"),
            ("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", 2, "EXT-X-TARGETDURATION"),
            ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n", 2, "without a URI"),
            ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\nv.m3u8\n", 2, "BANDWIDTH"),
            ("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1\nv.m3u8\n", 2, "malformed"),
            ("#EXTM3U\n#EXT-X-MEDIA:GROUP-ID=\"a\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", 2, "TYPE"),
            ("#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID=\"x\",VALUE=\"y\"\n", 1, "without any EXT-X-STREAM-INF"),
        ];
        for (text, line, what) in cases {
            let e = parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("line {line}")) && msg.contains(what), "{text:?}: {msg}");
            assert!(!msg.contains('\n') && msg.len() < 200, "{msg}");
        }
        // Comments and blank lines before the header are fine (and do not shift line numbers).
        let m = parse("\n\n# made by x\n#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\nstray.m3u8\n").unwrap();
        assert_eq!(m.variants.len(), 1, "a stray URI line is ignored");
        assert_eq!(
            parse("\n#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXTINF:1,\n").unwrap_err().to_string(),
            "invalid playlist at line 4: EXTINF in a master playlist: it mixes master and media playlist tags"
        );
    }

    #[test]
    fn parses_variants_and_renditions() {
        let m = parse(MASTER).unwrap();
        assert_eq!(m.variants.len(), 3, "I-frame variant excluded");
        assert_eq!(m.variants[2].height, Some(1080));
        assert_eq!(m.variants[2].frame_rate, Some(29.97));
        assert_eq!(m.renditions.len(), 3);
        let audio = m.group(RenditionKind::Audio, m.variants[0].audio_group.as_deref());
        assert_eq!(audio.len(), 2);
        assert!(audio[0].default);
    }

    #[test]
    fn local_master_round_trips() {
        let m = parse(MASTER).unwrap();
        let audio = m.group(RenditionKind::Audio, Some("aud"));
        let subs = m.group(RenditionKind::Subtitles, Some("subs"));
        let text = write_local_master(
            4,
            false,
            &m.variants[1],
            "video/index.m3u8",
            &[(audio[0], Some("audio-0/index.m3u8".into())), (subs[0], Some("subtitles-0/index.m3u8".into()))],
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.variants.len(), 1);
        assert_eq!(back.variants[0].uri, "video/index.m3u8");
        assert_eq!(back.variants[0].height, Some(720));
        assert_eq!(back.renditions.len(), 2);
        assert_eq!(back.renditions[0].uri.as_deref(), Some("audio-0/index.m3u8"));
        assert!(back.renditions[0].default);
    }
}
