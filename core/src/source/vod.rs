//! VOD sources in the engine: turning a video id into the URL to download and the images to
//! store with it, and getting fresh URLs when they expire, checking that the stream is still the
//! same transcode.

use serde::{Deserialize, Serialize};
use url::Url;

use super::Source;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::hls::master::Variant;
use crate::identity;
use crate::model::{
    FailureReason, ImageKind, Prepared, Quality, TrackRules, VodMezzanineInfo, VodRequest, VodStreamInfo, codec_family,
};
use crate::vod::api::{PlayInfo, SnapshotType};
use crate::vod::{VodClient, VodError};

/// What the catalog keeps of a VOD asset (the `assets.vod` JSON): its identity and what the API
/// last said about the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VodState {
    pub video_id: String,
    pub definition: String,
    pub format: String,
    pub stream_type: String,
    #[serde(default)]
    pub mezzanine: bool,
    /// The transcode job of the stream (its identity at VOD).
    pub job_id: Option<String>,
    /// Bytes, as VOD reports them.
    pub size: Option<u64>,
    /// Mezzanine: CRC-64/ECMA of the file.
    pub crc64: Option<u64>,
    /// When to ask for fresh URLs (Unix ms): a little before the ones VOD handed out expire.
    pub expires_at: i64,
}

impl VodState {
    /// The asset's identity: the stream, not its URL.
    pub fn identity(&self) -> String {
        if self.mezzanine {
            format!("vod:{}/mezzanine", self.video_id)
        } else {
            format!("vod:{}/{}/{}/{}", self.video_id, self.definition, self.format, self.stream_type)
        }
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// What the app is told identifies the asset.
    pub fn app_identity(self) -> crate::model::VodIdentity {
        crate::model::VodIdentity {
            video_id: self.video_id,
            definition: self.definition,
            format: self.format,
            stream_type: self.stream_type,
            mezzanine: self.mezzanine,
            job_id: self.job_id,
        }
    }
}

/// A VOD source resolved into what to download.
pub(crate) struct Resolved {
    pub url: Url,
    pub state: VodState,
    pub title: Option<String>,
    /// Images to store with it: kind, position, URL.
    pub images: Vec<(ImageKind, u32, String)>,
}

fn vod_error(e: VodError) -> Error {
    Error::Vod(e)
}

fn client(src: &Source) -> &VodClient {
    &src.vod
}

/// When URLs handed out now should be replaced: a fifth of their lifetime (at most 30 s) before
/// they expire.
fn expires_at(src: &Source) -> i64 {
    let life = i64::try_from(client(src).config().auth_timeout.as_millis()).unwrap_or(i64::MAX / 4);
    now_ms() + life - (life / 5).min(30_000)
}

fn stream_info(p: &PlayInfo) -> VodStreamInfo {
    VodStreamInfo {
        definition: p.definition.clone(),
        format: p.format.clone(),
        stream_type: p.stream_type.clone(),
        bitrate_kbps: p.bitrate,
        size: p.size,
        width: p.width,
        height: p.height,
        duration_secs: p.duration,
        fps: p.fps,
        encrypted: p.encrypt,
        encrypt_type: p.encrypt_type.clone(),
        job_id: p.job_id.clone(),
        unsupported: p.unsupported_reason(),
    }
}

/// What a video offers: its streams (with why any cannot be stored) and, when the credentials
/// allow it, its source file.
pub(crate) async fn prepare(src: &Source, video_id: &str) -> Result<Prepared> {
    check_id(video_id)?;
    let vod = client(src);
    let info = match vod.get_play_info(video_id, None, None, None, Default::default()).await {
        Ok(i) => i,
        // Only proprietary-encrypted streams: say so, as a typed refusal.
        Err(e) => return Err(vod_error(e)),
    };
    let mezzanine = match vod.get_mezzanine_info(video_id, Default::default()).await {
        Ok(m) => Some(VodMezzanineInfo {
            size: m.size,
            crc64: m.crc64,
            width: m.width,
            height: m.height,
            duration_secs: m.duration,
            file_name: m.file_name,
        }),
        Err(e) => {
            // Many apps' credentials may only play: the source file is optional here.
            tracing::debug!("GetMezzanineInfo: {e}");
            None
        }
    };
    Ok(Prepared::Vod {
        video_id: video_id.to_owned(),
        title: info.video.title.clone(),
        duration_secs: info.video.duration,
        status: info.video.status.clone(),
        streams: info.streams.iter().map(stream_info).collect(),
        mezzanine,
    })
}

fn check_id(video_id: &str) -> Result<()> {
    if crate::model::valid_video_id(video_id) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!("invalid VOD video id {video_id:?}")))
    }
}

fn format_rank(format: &str) -> u8 {
    match format.to_ascii_lowercase().as_str() {
        "m3u8" => 0,
        "mp4" => 1,
        "mpd" => 2,
        "mp3" | "m4a" => 3,
        _ => 4,
    }
}

/// The video streams the device decodes and shows (`CodecName`, `HDRType`) by `rules`, and every
/// audio stream (`StreamType` audio: VOD names no audio codec worth filtering by); all of them
/// without codec or range rules.
fn by_rules(streams: &[PlayInfo], rules: Option<&TrackRules>) -> Result<Vec<PlayInfo>> {
    let Some(rules) = rules.filter(|r| !r.codecs.is_empty() || !r.ranges.is_empty()) else {
        return Ok(streams.to_vec());
    };
    let as_variant = |s: &PlayInfo| {
        let mut v = Variant::with_bandwidth(String::new(), 0);
        v.codecs = s.codec_name.as_deref().map(codec_family);
        v.video_range = match s.hdr_type.as_deref().map(|h| h.trim().to_ascii_lowercase()) {
            Some(h) if h == "hlg" => Some("HLG".into()),
            Some(h) if h.starts_with("dolby") => {
                v.codecs = Some("dvh1".into());
                None
            }
            Some(h) if h.starts_with("hdr") => Some("PQ".into()),
            _ => None,
        };
        v
    };
    let kept: Vec<PlayInfo> = streams
        .iter()
        .filter(|s| !s.stream_type.eq_ignore_ascii_case("video") || rules.accepts(&as_variant(s)))
        .cloned()
        .collect();
    if kept.is_empty() && !streams.is_empty() {
        let offered: Vec<String> = streams
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {}",
                    s.definition,
                    s.format,
                    s.codec_name.as_deref().unwrap_or("?"),
                    s.hdr_type.as_deref().unwrap_or("SDR")
                )
            })
            .collect();
        return Err(Error::InvalidRequest(format!(
            "no VOD stream the track rules accept (offered: {})",
            offered.join(", ")
        )));
    }
    Ok(kept)
}

/// Picks the stream for `request` among `streams`: the asked stream type (video if offered),
/// format (m3u8, then mp4, then mpd, then audio formats) and definition (exact) or quality.
fn choose<'a>(streams: &'a [PlayInfo], request: &VodRequest, quality: Quality) -> Result<&'a PlayInfo, VodError> {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let wanted_type = request.stream_type.clone().unwrap_or_else(|| {
        if streams.iter().any(|s| eq(&s.stream_type, "video")) { "video".into() } else { "audio".into() }
    });
    let mut candidates: Vec<&PlayInfo> = streams
        .iter()
        .filter(|s| eq(&s.stream_type, &wanted_type))
        .filter(|s| request.format.as_deref().is_none_or(|f| eq(&s.format, f)))
        .filter(|s| request.definition.as_deref().is_none_or(|d| eq(&s.definition, d)))
        .filter(|s| s.status.as_deref().is_none_or(|st| eq(st, "Normal")))
        .collect();
    if candidates.is_empty() {
        let offered: Vec<String> =
            streams.iter().map(|s| format!("{} {} {}", s.definition, s.format, s.stream_type)).collect();
        return Err(VodError::NoMatch(format!(
            "no {wanted_type} stream{}{} (VOD offers: {})",
            request.format.as_deref().map(|f| format!(" in {f}")).unwrap_or_default(),
            request.definition.as_deref().map(|d| format!(" at definition {d}")).unwrap_or_default(),
            if offered.is_empty() { "nothing".into() } else { offered.join(", ") }
        )));
    }
    let storable: Vec<&PlayInfo> = candidates.iter().copied().filter(|s| s.unsupported_reason().is_none()).collect();
    if storable.is_empty() {
        let why = candidates[0].unsupported_reason().unwrap_or_default();
        return Err(VodError::Unsupported(format!("{} {}: {why}", candidates[0].definition, candidates[0].format)));
    }
    candidates = storable;
    let best_format = candidates.iter().map(|s| format_rank(&s.format)).min().unwrap_or(0);
    candidates.retain(|s| format_rank(&s.format) == best_format);
    let variants: Vec<Variant> = candidates
        .iter()
        .map(|s| {
            let mut v = Variant::with_bandwidth(String::new(), s.bitrate.map_or(0, |b| (b * 1000.0) as u64));
            v.height = s.height;
            v
        })
        .collect();
    Ok(candidates[quality.pick(&variants)])
}

/// Resolves a VOD request: asks VOD for the stream (or the source file) and lists its images.
/// `rules` filter the streams by codec and dynamic range first.
pub(crate) async fn resolve(
    src: &Source,
    request: &VodRequest,
    quality: Quality,
    rules: Option<&TrackRules>,
) -> Result<Resolved> {
    check_id(&request.video_id)?;
    let vod = client(src);
    let (url, state, mut title) = if request.mezzanine {
        let m = vod.get_mezzanine_info(&request.video_id, request.output_type).await.map_err(vod_error)?;
        let url = parse(&m.file_url.0)?;
        let state = VodState {
            video_id: request.video_id.clone(),
            definition: "OD".into(),
            format: identity::sanitize_ext(url.path(), "mp4"),
            stream_type: "video".into(),
            mezzanine: true,
            job_id: None,
            size: m.size,
            crc64: m.crc64,
            expires_at: expires_at(src),
        };
        (url, state, None)
    } else {
        let info = vod
            .get_play_info(
                &request.video_id,
                request.format.as_deref(),
                request.definition.as_deref(),
                request.stream_type.as_deref(),
                request.output_type,
            )
            .await
            .map_err(vod_error)?;
        let streams = by_rules(&info.streams, rules)?;
        let s = choose(&streams, request, quality).map_err(vod_error)?;
        let state = VodState {
            video_id: request.video_id.clone(),
            definition: s.definition.clone(),
            format: s.format.to_ascii_lowercase(),
            stream_type: s.stream_type.clone(),
            mezzanine: false,
            job_id: s.job_id.clone(),
            size: s.size,
            crc64: None,
            expires_at: expires_at(src),
        };
        (parse(&s.play_url.0)?, state, info.video.title)
    };
    let images = if request.images {
        match image_list(vod, &request.video_id).await {
            Ok((list, video_title)) => {
                title = title.or(video_title);
                list
            }
            // Credentials that may play but not read the video's details: the media is what
            // was asked for; the images are a bonus.
            Err(e @ VodError::Forbidden { .. }) => {
                tracing::debug!("no images: {e}");
                Vec::new()
            }
            Err(e) => return Err(vod_error(e)),
        }
    } else {
        Vec::new()
    };
    Ok(Resolved { url, state, title, images })
}

fn parse(url: &str) -> Result<Url> {
    vod_url(url).map_err(Error::Vod)
}

/// A URL VOD handed out: absolute http(s), or a `BadResponse`.
fn vod_url(url: &str) -> Result<Url, VodError> {
    super::parse_url(url).map_err(|_| VodError::BadResponse("VOD gave an invalid URL".into()))
}

/// The video's images: cover, snapshots, sprites, sprite originals and WebVTT tracks, each with
/// its position; and the title `GetVideoInfo` gives.
async fn image_list(
    vod: &VodClient,
    video_id: &str,
) -> Result<(Vec<(ImageKind, u32, String)>, Option<String>), VodError> {
    let mut out = Vec::new();
    let info = vod.get_video_info(video_id).await?;
    if let Some(cover) = info.cover_url.as_ref().filter(|u| !u.0.is_empty()) {
        out.push((ImageKind::Cover, 1, cover.0.clone()));
    }
    for (api, kind) in [
        (SnapshotType::Normal, ImageKind::Snapshot),
        (SnapshotType::Sprite, ImageKind::Sprite),
        (SnapshotType::SpriteOrigin, ImageKind::SpriteOriginal),
        (SnapshotType::WebVtt, ImageKind::WebVtt),
    ] {
        let list = match vod.list_snapshots(video_id, api).await {
            Ok(l) => l,
            // A video without snapshots of a type, or credentials that may not list them.
            Err(VodError::NotFound { .. }) => Vec::new(),
            Err(e @ VodError::Forbidden { .. }) => {
                tracing::debug!("no {kind:?} images: {e}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for (i, s) in list.into_iter().enumerate() {
            let idx = if s.index > 0 { u32::try_from(s.index).unwrap_or(u32::MAX) } else { i as u32 + 1 };
            if !out.iter().any(|(k, n, _)| *k == kind && *n == idx) {
                out.push((kind, idx, s.url.0));
            }
        }
    }
    Ok((out, info.title))
}

/// Fresh URLs for an image list: by kind and position.
pub(crate) async fn fresh_image_urls(src: &Source, video_id: &str) -> Result<Vec<(ImageKind, u32, String)>, VodError> {
    Ok(image_list(client(src), video_id).await?.0)
}

/// A fresh URL for a VOD asset.
pub(crate) struct Refreshed {
    pub url: Url,
    pub state: VodState,
    /// Why the download must start over (the transcode or the file changed).
    pub changed: Option<String>,
}

/// Asks VOD again for the asset's stream (first giving the app the chance to hand out fresh
/// credentials) and checks it is the same transcode: same job and size (mezzanine: size and
/// CRC-64).
pub(crate) async fn refresh(
    src: &Source,
    asset_id: &str,
    old: &VodState,
    output: crate::model::OutputType,
) -> Result<Refreshed, VodError> {
    let vod = client(src);
    vod.url_expired(asset_id).await;
    let mut state = old.clone();
    state.expires_at = expires_at(src);
    if old.mezzanine {
        let m = vod.get_mezzanine_info(&old.video_id, output).await?;
        let url = vod_url(&m.file_url.0)?;
        state.size = m.size.or(old.size);
        state.crc64 = m.crc64.or(old.crc64);
        let changed = (differs(&old.size, &m.size) || differs(&old.crc64, &m.crc64)).then(|| {
            format!(
                "the source file changed at VOD (size {} → {}, CRC-64 {} → {})",
                show(old.size),
                show(m.size),
                show(old.crc64),
                show(m.crc64)
            )
        });
        return Ok(Refreshed { url, state, changed });
    }
    let info = vod
        .get_play_info(&old.video_id, Some(&old.format), Some(&old.definition), Some(&old.stream_type), output)
        .await?;
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let same_kind: Vec<&PlayInfo> = info
        .streams
        .iter()
        .filter(|s| {
            eq(&s.definition, &old.definition) && eq(&s.format, &old.format) && eq(&s.stream_type, &old.stream_type)
        })
        .collect();
    let s = same_kind
        .iter()
        .find(|s| s.status.as_deref().is_none_or(|st| eq(st, "Normal")))
        .or_else(|| same_kind.first())
        .ok_or_else(|| {
            VodError::NoMatch(format!(
                "VOD no longer offers the {} {} {} stream of video {}",
                old.definition, old.format, old.stream_type, old.video_id
            ))
        })?;
    if let Some(why) = s.unsupported_reason() {
        return Err(VodError::Unsupported(why));
    }
    let url = vod_url(&s.play_url.0)?;
    let changed = (differs(&old.job_id, &s.job_id) || differs(&old.size, &s.size)).then(|| {
        format!(
            "the {} {} stream was transcoded again at VOD (job {} → {}, size {} → {})",
            old.definition,
            old.format,
            old.job_id.as_deref().unwrap_or("?"),
            s.job_id.as_deref().unwrap_or("?"),
            show(old.size),
            show(s.size)
        )
    });
    state.job_id = s.job_id.clone().or_else(|| old.job_id.clone());
    state.size = s.size.or(old.size);
    Ok(Refreshed { url, state, changed })
}

/// Whether VOD now says something else: a value it leaves out this time is not a change.
fn differs<T: PartialEq>(old: &Option<T>, new: &Option<T>) -> bool {
    matches!((old, new), (Some(a), Some(b)) if a != b)
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}

/// A VOD API failure as an asset's failure reason.
pub(crate) fn failure(e: &VodError) -> FailureReason {
    match e {
        VodError::NoCredentials(m) => FailureReason::Credentials { message: m.clone() },
        VodError::Credentials { code, message } => FailureReason::Credentials { message: format!("{code}: {message}") },
        VodError::Unsupported(m) => FailureReason::Unsupported { message: m.clone() },
        VodError::Network(m) => FailureReason::Network { message: format!("VOD API: {m}") },
        // Still throttled after backing off: try again later, as for the network.
        VodError::Throttled { code, message } => {
            FailureReason::Network { message: format!("VOD API throttled: {code}: {message}") }
        }
        VodError::NotFound { code, message }
        | VodError::Forbidden { code, message }
        | VodError::Api { code, message, .. } => FailureReason::Vod { code: code.clone(), message: message.clone() },
        VodError::NoMatch(m) => FailureReason::Vod { code: "NoMatch".into(), message: m.clone() },
        VodError::BadResponse(m) => FailureReason::Vod { code: "BadResponse".into(), message: m.clone() },
        VodError::Config(m) => FailureReason::Vod { code: "Config".into(), message: m.clone() },
    }
}

/// Rewrites the cue payloads of a WebVTT thumbnail track that point at sprites stored with the
/// asset so they point at the stored files (relative to the track, which is in the same
/// directory), keeping any `#xywh=` fragment.
pub(crate) fn localize_vtt(text: &str, track_url: &str, sprites: &[(String, String)]) -> String {
    let base = Url::parse(track_url).ok();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let (target, fragment) = match body.split_once('#') {
            Some((t, f)) => (t, Some(f)),
            None => (body, None),
        };
        let resolved = if body.contains("-->") || body.trim().is_empty() {
            None
        } else {
            base.as_ref().and_then(|b| b.join(target.trim()).ok())
        };
        let local = resolved.and_then(|u| {
            let key = identity::strip_signature(&u);
            sprites
                .iter()
                .find(|(uri, _)| *uri == key)
                .map(|(_, file)| file.rsplit('/').next().unwrap_or(file).to_owned())
        });
        match local {
            Some(name) => {
                out.push_str(&name);
                if let Some(f) = fragment {
                    out.push('#');
                    out.push_str(f);
                }
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// VOD answers as the engine uses them (`fuzzing::vod_answer`): parsed, a stream chosen for
/// several requests (always one of those offered), images listed and named, a thumbnail track
/// rewritten.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_answer(data: &[u8]) -> Vec<(ImageKind, u32, String)> {
    use crate::vod::api::{Mezzanine, PlayInfoResponse, SnapshotPage, VideoInfo};
    if let Ok(text) = std::str::from_utf8(data) {
        let sprites = [("https://cdn.example.com/v/sprite-1.jpg".to_owned(), "images/sprite-00001.jpg".to_owned())];
        let out = localize_vtt(text, "https://cdn.example.com/v/thumbs.vtt?auth_key=1-0-0-x", &sprites);
        assert_eq!(out.lines().count(), text.lines().count(), "a thumbnail track keeps its lines");
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return Vec::new() };
    if let Ok(p) = PlayInfoResponse::from_json(v.clone()) {
        for s in &p.streams {
            let _ = s.unsupported_reason();
            let _ = stream_info(s);
        }
        for (format, definition) in [(None, None), (Some("m3u8"), Some("HD")), (Some("mp4"), None)] {
            let mut r = VodRequest::new("v");
            r.format = format.map(Into::into);
            r.definition = definition.map(Into::into);
            for q in [Quality::Best, Quality::Worst, Quality::Height(480), Quality::MaxBandwidth(1_000_000)] {
                if let Ok(s) = choose(&p.streams, &r, q) {
                    assert!(p.streams.iter().any(|x| std::ptr::eq(x, s)));
                }
            }
        }
    }
    let _ = Mezzanine::from_json(v.clone());
    let mut images = Vec::new();
    if let Ok(info) = VideoInfo::from_json(v.clone())
        && let Some(c) = &info.cover_url
    {
        images.push((ImageKind::Cover, 1, c.0.clone()));
    }
    if let Ok(page) = SnapshotPage::from_json(v) {
        for (i, s) in page.snapshots.into_iter().enumerate() {
            images.push((ImageKind::Snapshot, i as u32 + 1, s.url.0));
        }
    }
    images
}

/// A VOD asset's stored state, read back (`fuzzing::stored_json`).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_state(text: &str) {
    if let Some(s) = VodState::from_json(text) {
        assert!(s.to_json().is_ok_and(|j| VodState::from_json(&j).is_some()), "a VOD state round-trips");
        let _ = s.identity();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(def: &str, format: &str, height: u64, bitrate: f64) -> PlayInfo {
        PlayInfo {
            play_url: crate::vod::api::SignedUrl(format!("https://cdn.example.com/{def}.{format}?auth_key=1-0-0-x")),
            definition: def.into(),
            format: format.into(),
            stream_type: "video".into(),
            bitrate: Some(bitrate),
            height: Some(height),
            status: Some("Normal".into()),
            ..PlayInfo::default()
        }
    }

    #[test]
    fn track_rules_filter_streams_by_codec_name_and_hdr_type() {
        let with = |def: &str, codec: &str, hdr: Option<&str>, bitrate: f64| {
            let mut s = stream(def, "m3u8", 2160, bitrate);
            s.codec_name = Some(codec.into());
            s.hdr_type = hdr.map(Into::into);
            s
        };
        let streams = vec![
            with("4K", "H.265", Some("HDR10"), 9000.0),
            with("2K", "H.265", None, 6000.0),
            with("HD", "H.264", Some("SDR"), 3000.0),
            with("8K", "H.265", Some("DolbyVision"), 20000.0),
        ];
        let pick = |rules: TrackRules| {
            by_rules(&streams, Some(&rules))
                .map(|s| choose(&s, &VodRequest::new("v"), Quality::Best).unwrap().definition.clone())
        };
        use crate::model::DynamicRange::*;
        let r = |codecs: &[&str], ranges: &[crate::model::DynamicRange]| TrackRules {
            codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
            ranges: ranges.to_vec(),
            ..Default::default()
        };
        assert_eq!(pick(r(&["avc1"], &[])).unwrap(), "HD");
        assert_eq!(pick(r(&["hvc1"], &[Sdr])).unwrap(), "2K");
        assert_eq!(pick(r(&["hev1"], &[Sdr, Hdr10])).unwrap(), "4K");
        assert_eq!(pick(r(&["hvc1", "dvh1"], &[])).unwrap(), "8K");
        assert!(matches!(pick(r(&["av01"], &[])), Err(Error::InvalidRequest(m)) if m.contains("4K m3u8 H.265 HDR10")));
        assert_eq!(by_rules(&streams, None).unwrap().len(), 4);
    }

    #[test]
    fn choosing_a_stream() {
        let streams = vec![
            stream("LD", "m3u8", 360, 400.0),
            stream("HD", "m3u8", 720, 1500.0),
            stream("HD", "mp4", 720, 1500.0),
            stream("SD", "flv", 540, 800.0),
        ];
        let r = VodRequest::new("v");
        assert_eq!(choose(&streams, &r, Quality::Best).unwrap().definition, "HD");
        assert_eq!(choose(&streams, &r, Quality::Best).unwrap().format, "m3u8", "m3u8 first");
        assert_eq!(choose(&streams, &r, Quality::Worst).unwrap().definition, "LD");
        assert_eq!(choose(&streams, &r, Quality::Height(480)).unwrap().definition, "LD");
        let mp4 = VodRequest { format: Some("mp4".into()), ..VodRequest::new("v") };
        assert_eq!(choose(&streams, &mp4, Quality::Best).unwrap().format, "mp4");
        let ld = VodRequest { definition: Some("ld".into()), ..VodRequest::new("v") };
        assert_eq!(choose(&streams, &ld, Quality::Best).unwrap().definition, "LD");
        let fourk = VodRequest { definition: Some("4K".into()), ..VodRequest::new("v") };
        let e = choose(&streams, &fourk, Quality::Best).unwrap_err();
        assert!(matches!(&e, VodError::NoMatch(m) if m.contains("at definition 4K") && m.contains("HD m3u8")), "{e}");
        let flv = VodRequest { format: Some("flv".into()), ..VodRequest::new("v") };
        assert!(matches!(choose(&streams, &flv, Quality::Best), Err(VodError::Unsupported(m)) if m.contains("flv")));
        let mut locked = stream("HD", "m3u8", 720, 1500.0);
        locked.encrypt = true;
        locked.encrypt_type = Some("AliyunVoDEncryption".into());
        let e = choose(&[locked], &r, Quality::Best).unwrap_err();
        assert!(
            matches!(&e, VodError::Unsupported(m) if m.contains("unsupported encryption AliyunVoDEncryption")),
            "{e}"
        );
    }

    #[test]
    fn identity_is_the_stream_not_the_url() {
        let s = VodState {
            video_id: "v1".into(),
            definition: "HD".into(),
            format: "m3u8".into(),
            stream_type: "video".into(),
            mezzanine: false,
            job_id: Some("j".into()),
            size: Some(1),
            crc64: None,
            expires_at: 0,
        };
        assert_eq!(s.identity(), "vod:v1/HD/m3u8/video");
        assert_eq!(VodState { mezzanine: true, ..s.clone() }.identity(), "vod:v1/mezzanine");
        assert_eq!(VodState::from_json(&s.to_json().unwrap()), Some(s));
    }

    #[test]
    fn vtt_points_at_stored_sprites() {
        let vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nhttps://cdn.example.com/v/sprite-1.jpg?auth_key=9-0-0-x#xywh=0,0,160,90\n\n\
                   00:00:05.000 --> 00:00:10.000\nsprite-1.jpg#xywh=160,0,160,90\r\n\n00:00:10.000 --> 00:00:15.000\nhttps://elsewhere/x.jpg#xywh=0,0,1,1\n";
        let sprites = vec![("https://cdn.example.com/v/sprite-1.jpg".to_owned(), "images/sprite-00001.jpg".to_owned())];
        let out = localize_vtt(vtt, "https://cdn.example.com/v/thumbs.vtt?auth_key=9-0-0-y", &sprites);
        assert_eq!(
            out,
            "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nsprite-00001.jpg#xywh=0,0,160,90\n\n\
             00:00:05.000 --> 00:00:10.000\nsprite-00001.jpg#xywh=160,0,160,90\r\n\n00:00:10.000 --> 00:00:15.000\nhttps://elsewhere/x.jpg#xywh=0,0,1,1\n"
        );
    }
}
