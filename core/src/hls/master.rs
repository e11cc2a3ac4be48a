//! Master playlists (RFC 8216 §4.3.4), parsed with m3u8-rs, and choosing what to download.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::media::PlaylistError;

/// What a fetched body is, told apart by content (never by extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// An HLS master playlist.
    Master,
    /// An HLS media playlist.
    Media,
    /// Anything else: a progressive file.
    Other,
}

/// Classifies the first bytes of a response.
pub fn classify(head: &[u8]) -> ContentKind {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed = text.trim_ascii_start();
    if !trimmed.starts_with(b"#EXTM3U") {
        return ContentKind::Other;
    }
    let is_master = |needle: &[u8]| trimmed.windows(needle.len()).any(|w| w == needle);
    if is_master(b"#EXT-X-STREAM-INF") || is_master(b"#EXT-X-MEDIA:") {
        ContentKind::Master
    } else {
        ContentKind::Media
    }
}

/// A variant stream (`EXT-X-STREAM-INF`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// URI as written.
    pub uri: String,
    /// Peak bits per second.
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
    /// `FORCED=YES`.
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
    /// Alternative renditions.
    pub renditions: Vec<Rendition>,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
}

impl MasterPlaylist {
    /// Parses a master playlist.
    ///
    /// # Errors
    /// [`PlaylistError::Invalid`] when m3u8-rs cannot parse it, or it has no variants.
    pub fn parse(text: &[u8]) -> Result<Self, PlaylistError> {
        let m = m3u8_rs::parse_master_playlist_res(text).map_err(|e| PlaylistError::Invalid {
            line: 0,
            reason: format!("master playlist: {}", first_line(&e.to_string())),
        })?;
        let variants: Vec<Variant> = m
            .variants
            .iter()
            .filter(|v| !v.is_i_frame)
            .map(|v| Variant {
                uri: v.uri.clone(),
                bandwidth: v.bandwidth,
                average_bandwidth: v.average_bandwidth,
                codecs: v.codecs.clone(),
                width: v.resolution.map(|r| r.width),
                height: v.resolution.map(|r| r.height),
                frame_rate: v.frame_rate,
                audio_group: v.audio.clone(),
                subtitles_group: v.subtitles.clone(),
                closed_captions: match &v.closed_captions {
                    Some(m3u8_rs::ClosedCaptionGroupId::GroupId(g)) => Some(g.clone()),
                    _ => None,
                },
            })
            .collect();
        if variants.is_empty() {
            return Err(PlaylistError::Invalid { line: 0, reason: "master playlist without variants".into() });
        }
        let renditions = m
            .alternatives
            .iter()
            .map(|a| Rendition {
                kind: match a.media_type {
                    m3u8_rs::AlternativeMediaType::Audio => RenditionKind::Audio,
                    m3u8_rs::AlternativeMediaType::Subtitles => RenditionKind::Subtitles,
                    m3u8_rs::AlternativeMediaType::Video => RenditionKind::Video,
                    _ => RenditionKind::ClosedCaptions,
                },
                group_id: a.group_id.clone(),
                name: a.name.clone(),
                language: a.language.clone(),
                default: a.default,
                autoselect: a.autoselect,
                forced: a.forced,
                uri: a.uri.clone(),
                channels: a.channels.clone(),
                characteristics: a.characteristics.clone(),
            })
            .collect();
        Ok(Self {
            version: m.version.map_or(1, |v| v as u32),
            variants,
            renditions,
            independent_segments: m.independent_segments,
        })
    }

    /// The renditions of `kind` in `group`.
    pub fn group(&self, kind: RenditionKind, group: Option<&str>) -> Vec<&Rendition> {
        match group {
            Some(g) => self.renditions.iter().filter(|r| r.kind == kind && r.group_id == g).collect(),
            None => Vec::new(),
        }
    }
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("");
    &line[..line.len().min(200)]
}

/// Which variant to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Highest bandwidth.
    Best,
    /// Lowest bandwidth.
    Worst,
    /// The tallest variant no taller than this many lines (else the shortest).
    Height(u64),
    /// The highest bandwidth not above this many bits per second (else the lowest).
    MaxBandwidth(u64),
}

impl std::str::FromStr for Quality {
    type Err = String;

    /// `best`, `worst`, `720p`, `800k`, `2m`, `1500000`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let num = |d: &str| d.parse::<u64>().map_err(|_| format!("bad quality {s:?}: use best, worst, 720p or 800k"));
        Ok(match t.as_str() {
            "best" => Quality::Best,
            "worst" => Quality::Worst,
            _ if t.ends_with('p') => Quality::Height(num(&t[..t.len() - 1])?),
            _ if t.ends_with('k') => Quality::MaxBandwidth(num(&t[..t.len() - 1])? * 1000),
            _ if t.ends_with('m') => Quality::MaxBandwidth(num(&t[..t.len() - 1])? * 1_000_000),
            _ => Quality::MaxBandwidth(num(&t)?),
        })
    }
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quality::Best => f.write_str("best"),
            Quality::Worst => f.write_str("worst"),
            Quality::Height(h) => write!(f, "{h}p"),
            Quality::MaxBandwidth(b) => write!(f, "{}k", b / 1000),
        }
    }
}

/// Picks the variant for `quality`; returns its index in `variants` (which must not be empty).
pub fn select_variant(variants: &[Variant], quality: Quality) -> usize {
    let by_bw = |i: &usize| (variants[*i].bandwidth, variants[*i].height.unwrap_or(0));
    let all = 0..variants.len();
    let pick = match quality {
        Quality::Best => all.max_by_key(by_bw),
        Quality::Worst => all.min_by_key(by_bw),
        Quality::Height(h) => all
            .clone()
            .filter(|&i| variants[i].height.is_some_and(|vh| vh <= h))
            .max_by_key(|i| (variants[*i].height, variants[*i].bandwidth))
            .or_else(|| all.min_by_key(|i| (variants[*i].height.unwrap_or(u64::MAX), variants[*i].bandwidth))),
        Quality::MaxBandwidth(b) => {
            all.clone().filter(|&i| variants[i].bandwidth <= b).max_by_key(by_bw).or_else(|| all.min_by_key(by_bw))
        }
    };
    pick.unwrap_or(0)
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
        let _ = write!(out, "#EXT-X-MEDIA:TYPE={kind},GROUP-ID=\"{}\",NAME=\"{}\"", r.group_id, r.name);
        if let Some(l) = &r.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let yes_no = |b: bool| if b { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={},AUTOSELECT={}", yes_no(r.default), yes_no(r.autoselect));
        if r.forced {
            out.push_str(",FORCED=YES");
        }
        if let Some(c) = &r.channels {
            let _ = write!(out, ",CHANNELS=\"{c}\"");
        }
        if let Some(c) = &r.characteristics {
            let _ = write!(out, ",CHARACTERISTICS=\"{c}\"");
        }
        if let Some(u) = uri {
            let _ = write!(out, ",URI=\"{u}\"");
        }
        out.push('\n');
    }
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth);
    if let Some(a) = variant.average_bandwidth {
        let _ = write!(out, ",AVERAGE-BANDWIDTH={a}");
    }
    if let Some(c) = &variant.codecs {
        let _ = write!(out, ",CODECS=\"{c}\"");
    }
    if let (Some(w), Some(h)) = (variant.width, variant.height) {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    if let Some(fr) = variant.frame_rate {
        let _ = write!(out, ",FRAME-RATE={fr:.3}");
    }
    let has = |k: RenditionKind| renditions.iter().any(|(r, _)| r.kind == k);
    if let (Some(g), true) = (&variant.audio_group, has(RenditionKind::Audio)) {
        let _ = write!(out, ",AUDIO=\"{g}\"");
    }
    if let (Some(g), true) = (&variant.subtitles_group, has(RenditionKind::Subtitles)) {
        let _ = write!(out, ",SUBTITLES=\"{g}\"");
    }
    if let (Some(g), true) = (&variant.closed_captions, has(RenditionKind::ClosedCaptions)) {
        let _ = write!(out, ",CLOSED-CAPTIONS=\"{g}\"");
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

    #[test]
    fn classify_by_content() {
        assert_eq!(classify(MASTER.as_bytes()), ContentKind::Master);
        assert_eq!(classify(b"\xEF\xBB\xBF#EXTM3U\n#EXTINF:1,\na.ts\n"), ContentKind::Media);
        assert_eq!(classify(b"\x00\x00\x00\x18ftypisom"), ContentKind::Other);
        assert_eq!(classify(b"<html>"), ContentKind::Other);
    }

    #[test]
    fn parses_variants_and_renditions() {
        let m = MasterPlaylist::parse(MASTER.as_bytes()).unwrap();
        assert_eq!(m.variants.len(), 3, "I-frame variant excluded");
        assert_eq!(m.variants[2].height, Some(1080));
        assert_eq!(m.variants[2].frame_rate, Some(29.97));
        assert_eq!(m.renditions.len(), 3);
        let audio = m.group(RenditionKind::Audio, m.variants[0].audio_group.as_deref());
        assert_eq!(audio.len(), 2);
        assert!(audio[0].default);
    }

    #[test]
    fn quality_selection() {
        let m = MasterPlaylist::parse(MASTER.as_bytes()).unwrap();
        let v = &m.variants;
        let q = |s: &str| select_variant(v, s.parse().unwrap());
        assert_eq!(q("best"), 2);
        assert_eq!(q("worst"), 0);
        assert_eq!(q("720p"), 1);
        assert_eq!(q("1000p"), 1);
        assert_eq!(q("240p"), 0, "nothing that short: the shortest");
        assert_eq!(q("3000k"), 1);
        assert_eq!(q("100k"), 0, "nothing that cheap: the cheapest");
        assert_eq!(q("5m"), 2);
        assert!("fast".parse::<Quality>().is_err());
        assert_eq!("720p".parse::<Quality>().unwrap().to_string(), "720p");
    }

    #[test]
    fn local_master_round_trips() {
        let m = MasterPlaylist::parse(MASTER.as_bytes()).unwrap();
        let audio = m.group(RenditionKind::Audio, Some("aud"));
        let subs = m.group(RenditionKind::Subtitles, Some("subs"));
        let text = write_local_master(
            4,
            false,
            &m.variants[1],
            "video/index.m3u8",
            &[(audio[0], Some("audio-0/index.m3u8".into())), (subs[0], Some("subtitles-0/index.m3u8".into()))],
        );
        let back = MasterPlaylist::parse(text.as_bytes()).unwrap();
        assert_eq!(back.variants.len(), 1);
        assert_eq!(back.variants[0].uri, "video/index.m3u8");
        assert_eq!(back.variants[0].height, Some(720));
        assert_eq!(back.renditions.len(), 2);
        assert_eq!(back.renditions[0].uri.as_deref(), Some("audio-0/index.m3u8"));
        assert!(back.renditions[0].default);
    }
}
