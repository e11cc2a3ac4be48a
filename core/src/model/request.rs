//! What an app asks for: a download request, the variant and renditions it wants, and for an
//! ApsaraVideo VOD video, which stream.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::conditions::Requirements;
use super::rules::TrackRules;
use super::states::Mode;
use crate::hls::master::Variant;

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

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Best => f.write_str("best"),
            Quality::Worst => f.write_str("worst"),
            Quality::Height(h) => write!(f, "{h}p"),
            Quality::MaxBandwidth(b) => write!(f, "{}k", b / 1000),
        }
    }
}

/// Which audio renditions to download with an HLS variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioChoice {
    /// The variant's default audio rendition (if its audio is separate).
    #[default]
    Default,
    /// Every rendition of the variant's audio group in these languages.
    Languages(Vec<String>),
    /// Every rendition of the variant's audio group.
    All,
    /// None.
    None,
}

/// Which subtitle renditions to download with an HLS variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubtitleChoice {
    /// Every rendition of the variant's subtitle group.
    #[default]
    All,
    /// Those in these languages.
    Languages(Vec<String>),
    /// None.
    None,
}

impl Quality {
    /// Picks the variant this quality asks for; returns its index in `variants` (which must not
    /// be empty).
    pub fn pick(self, variants: &[Variant]) -> usize {
        let by_bw = |i: &usize| (variants[*i].bandwidth, variants[*i].height.unwrap_or(0));
        let all = 0..variants.len();
        let pick = match self {
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
}

/// What to download.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadRequest {
    /// Source URL: HLS master or media playlist, or a progressive file; or `vod:<VideoId>` for
    /// an ApsaraVideo VOD video (see `vod`).
    pub url: String,
    /// Storage mode.
    pub mode: Mode,
    /// Variant choice (HLS master playlists).
    pub quality: Quality,
    /// Audio renditions.
    pub audio: AudioChoice,
    /// Subtitle renditions.
    pub subtitles: SubtitleChoice,
    /// Headers for every request of this asset (Referer, User-Agent, cookies, …). Stored
    /// sealed under the vault key so they survive a restart.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// Display title.
    pub title: Option<String>,
    /// The app's own data (e.g. JSON), stored and returned as is.
    pub metadata: Option<String>,
    /// A stable identity chosen by the app (e.g. a video id) instead of the URL.
    pub identity: Option<String>,
    /// Concurrent requests for this asset, overriding the vault's setting.
    pub parallel: Option<usize>,
    /// Playable offline only until this time (Unix ms); afterwards `play` and the reader refuse
    /// it with [`crate::VaultError::OfflineExpired`] (the app may extend it with [`Vault::set_offline_until`]).
    #[serde(default)]
    pub offline_until: Option<i64>,
    /// For a VOD video: definition, format, stream type, output type, mezzanine, images. With
    /// `url` = `vod:<VideoId>` and no options, the video's best stream and its images.
    #[serde(default)]
    pub vod: Option<VodRequest>,
    /// What this download requires of the device, replacing the vault's requirements (see
    /// [`crate::Vault::set_requirements`]).
    #[serde(default)]
    pub requirements: Option<Requirements>,
    /// What the device decodes and the user's languages: variants by codecs and dynamic range
    /// before `quality` picks one, audio by language preference and channels, subtitles by
    /// language (these replace `audio` and `subtitles` when they say something about them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<TrackRules>,
    /// Only the part of an HLS stream between these times: the segments that overlap it (each
    /// track's own), with a local playlist of exactly those. Refused for DASH and single files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<TimeRange>,
}

/// A part of a stream, in milliseconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Start.
    pub start_ms: u64,
    /// End (`None`: to the end of the stream).
    pub end_ms: Option<u64>,
}

impl TimeRange {
    /// Start and end in seconds (the end `f64::INFINITY` when open).
    pub fn secs(&self) -> (f64, f64) {
        (self.start_ms as f64 / 1000.0, self.end_ms.map_or(f64::INFINITY, |e| e as f64 / 1000.0))
    }

    /// Checks that the range is not empty.
    ///
    /// # Errors
    /// Why it is empty.
    pub fn check(&self) -> Result<(), String> {
        match self.end_ms {
            Some(e) if e <= self.start_ms => {
                Err(format!("the range ends ({e} ms) before it starts ({} ms)", self.start_ms))
            }
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for TimeRange {
    type Err = String;

    /// `05:00-20:00`, `1:02:03.5-`, `90-120` (seconds), `-10:00` (from the start).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad range {s:?}: use START-END, e.g. 05:00-20:00 or 1:02:03-");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let ms = |t: &str| -> Result<Option<u64>, String> {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            let mut secs = 0.0f64;
            for part in t.split(':') {
                let v: f64 = part.parse().map_err(|_| bad())?;
                if !v.is_finite() || v < 0.0 {
                    return Err(bad());
                }
                secs = secs * 60.0 + v;
            }
            if t.split(':').count() > 3 {
                return Err(bad());
            }
            Ok(Some((secs * 1000.0).round() as u64))
        };
        let range = TimeRange { start_ms: ms(a)?.unwrap_or(0), end_ms: ms(b)? };
        range.check()?;
        Ok(range)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |ms: u64| {
            let (s, frac) = (ms / 1000, ms % 1000);
            let hms = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            if frac == 0 { hms } else { format!("{hms}.{frac:03}") }
        };
        write!(f, "{}-{}", t(self.start_ms), self.end_ms.map(t).unwrap_or_default())
    }
}

impl fmt::Debug for DownloadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadRequest")
            .field("url", &crate::identity::redact_str(&self.url))
            .field("mode", &self.mode)
            .field("quality", &self.quality)
            .field("headers", &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
            .field("title", &self.title)
            .field("vod", &self.vod)
            .finish_non_exhaustive()
    }
}

impl DownloadRequest {
    /// A VOD video's best stream, with its images, Normal mode.
    pub fn vod(video_id: &str) -> Self {
        let mut r = Self::new(&format!("vod:{}", video_id.trim()));
        r.vod = Some(VodRequest::new(video_id));
        r
    }

    /// The VOD part of the request: from `vod`, or from a `vod:<VideoId>` URL.
    ///
    /// # Errors
    /// Why it is invalid, when `url` names another video than `vod`, or `vod` comes with
    /// an `http(s)` URL.
    pub fn vod_request(&self) -> Result<Option<VodRequest>, String> {
        let from_url = parse_vod_source(&self.url);
        match (&self.vod, from_url) {
            (None, None) => Ok(None),
            (None, Some(id)) => Ok(Some(VodRequest::new(id))),
            (Some(v), Some(id)) if v.video_id.is_empty() => {
                Ok(Some(VodRequest { video_id: id.to_owned(), ..v.clone() }))
            }
            (Some(v), Some(id)) if v.video_id == id => Ok(Some(v.clone())),
            (Some(v), _) => Err(format!("VOD options for video {:?} need the URL vod:{}", v.video_id, v.video_id)),
        }
    }

    /// Best quality, Normal mode, default audio and all subtitles.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            mode: Mode::Normal,
            quality: Quality::Best,
            audio: AudioChoice::Default,
            subtitles: SubtitleChoice::All,
            headers: Vec::new(),
            title: None,
            metadata: None,
            identity: None,
            parallel: None,
            offline_until: None,
            vod: None,
            requirements: None,
            rules: None,
            range: None,
        }
    }
}

/// Where VOD should point the URLs it hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// The CDN (accelerated; URL signing type A).
    #[default]
    Cdn,
    /// OSS directly (signed OSS URLs).
    Oss,
}

impl OutputType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Cdn => "cdn",
            OutputType::Oss => "oss",
        }
    }
}

impl std::str::FromStr for OutputType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cdn" => Ok(OutputType::Cdn),
            "oss" => Ok(OutputType::Oss),
            other => Err(format!("output type {other:?}: use cdn or oss")),
        }
    }
}

/// What to download of a VOD video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VodRequest {
    /// The video id.
    pub video_id: String,
    /// A definition (`FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, `SQ`, `HQ`, …); `None`: the one
    /// the request's quality picks.
    pub definition: Option<String>,
    /// `m3u8`, `mp4` or `mp3`; `None`: m3u8 if offered (parallel segments), else mp4, else mp3.
    pub format: Option<String>,
    /// `video` or `audio`; `None`: video if offered.
    pub stream_type: Option<String>,
    /// CDN or OSS URLs.
    #[serde(default)]
    pub output_type: OutputType,
    /// The source (mezzanine) file instead of a transcode, checked against its CRC-64.
    #[serde(default)]
    pub mezzanine: bool,
    /// Whether to store the cover, snapshots, sprites and WebVTT thumbnails with the asset.
    #[serde(default = "yes")]
    pub images: bool,
}

fn yes() -> bool {
    true
}

impl VodRequest {
    /// The video's best transcode, with its images.
    pub fn new(video_id: &str) -> Self {
        Self { video_id: video_id.trim().to_owned(), images: true, ..Self::default() }
    }
}

/// A VOD source written as `vod:<VideoId>`: its video id.
pub fn parse_vod_source(text: &str) -> Option<&str> {
    let id = text.trim().strip_prefix("vod:")?;
    Some(id.trim())
}

/// Whether `id` looks like a VOD video id (letters, digits, `-` and `_`; at most 64).
pub fn valid_video_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_selection() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nmid.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080\nhigh.m3u8\n";
        let m = crate::hls::master::MasterPlaylist::parse(text, crate::hls::vars::VarSource::Nothing).unwrap();
        let v = &m.variants;
        let q = |s: &str| s.parse::<Quality>().unwrap().pick(v);
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
    fn sources() {
        assert_eq!(parse_vod_source("vod:abc123"), Some("abc123"));
        assert_eq!(parse_vod_source("https://x"), None);
        assert!(valid_video_id("5aed81b74ba84920be578cdfe004af4b"));
        assert!(!valid_video_id("a/b") && !valid_video_id(""));
    }
}
