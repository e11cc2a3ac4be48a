//! Resolving sources into a plan, creating assets, and running downloads.
//!
//! Data flows one way: source → plan (rows in the catalog) → fetch → seal/store → commit.

mod job;
mod progress;
pub(crate) mod vod;

use std::fs::File;
use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use crate::catalog::{
    AssetKind, AssetRow, AssetState, Mode, RenditionRole, RenditionRow, SegmentKind, SegmentRow, now_ms,
};
use crate::error::{Error, FailureReason, Result};
use crate::fetch::{ErrorClass, FetchError, Request, header_map, retry_delay};
use crate::hls::master::{self, MasterPlaylist, PlaylistKind, Rendition, RenditionKind, Variant, playlist_kind};
use crate::hls::media::{LocalNames, MediaPlaylist, PlaylistError};
use crate::hls::vars::{VarSource, Variables};
use crate::identity;
use crate::keys::ContentKey;
use crate::sniff::{self, Content};
use crate::vault::{AudioChoice, DownloadRequest, Inner, Prepared, SubtitleChoice};

pub(crate) use job::{retry_images, run_job};

/// Largest playlist accepted.
const PLAYLIST_LIMIT: u64 = 16 << 20;

/// A source as fetched and classified.
pub(crate) enum Resolved {
    Master { master: MasterPlaylist, base: Url },
    Media { text: String, playlist: MediaPlaylist, base: Url },
    File { size: Option<u64>, content_type: Option<String>, accept_ranges: bool, validator: Option<String>, url: Url },
}

pub(crate) fn parse_url(url: &str) -> Result<Url> {
    let u = Url::parse(url.trim()).map_err(|e| Error::InvalidRequest(format!("bad URL: {e}")))?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        s => Err(Error::InvalidRequest(format!("unsupported URL scheme {s:?} (http and https only)"))),
    }
}

/// The vault's default headers overridden by the asset's.
pub(crate) fn merged_headers(inner: &Inner, own: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = header_map(&inner.config.default_headers)?;
    let own = header_map(own)?;
    for name in own.keys() {
        map.remove(name);
    }
    for (name, value) in &own {
        map.append(name, value.clone());
    }
    Ok(map)
}

/// Fetches `url` and tells what it is by its content, retrying transient failures.
pub(crate) async fn resolve(inner: &Inner, url: &Url, headers: &HeaderMap) -> Result<Resolved> {
    let policy = &inner.config.retry;
    let mut attempt = 0;
    loop {
        match resolve_once(inner, url, headers).await {
            Err(Error::Fetch(e)) if attempt + 1 < policy.attempts => match e.class() {
                ErrorClass::Transient { retry_after } => {
                    tokio::time::sleep(retry_delay(policy, attempt, retry_after)).await;
                    attempt += 1;
                }
                _ => return Err(Error::Fetch(e)),
            },
            other => return other,
        }
    }
}

/// What a source URL is, from its first bytes: an HLS playlist (read whole and parsed), a DASH
/// manifest (refused for now), a media file, or anything else (refused, saying what it is),
/// whatever its `Content-Type` or extension says.
async fn resolve_once(inner: &Inner, url: &Url, headers: &HeaderMap) -> Result<Resolved> {
    let mut body = inner.http.open(Request::get(url, headers)).await?;
    let mut head = Vec::new();
    let mut complete = false;
    while head.len() < sniff::HEAD_LEN {
        match body.chunk().await? {
            Some(c) => head.extend_from_slice(&c),
            None => {
                complete = true;
                break;
            }
        }
    }
    match sniff::identify(&head, complete) {
        Content::Media(_) => Ok(Resolved::File {
            size: body.total_size,
            content_type: body.content_type.clone(),
            accept_ranges: body.accept_ranges,
            validator: body.validator.clone(),
            url: body.final_url.clone(),
        }),
        Content::Dash => {
            Err(Error::Unsupported("the source is a DASH manifest (MPD); DASH is not supported yet".into()))
        }
        Content::NotMedia(what) => {
            Err(Error::BadSource(format!("the source URL returned {what}, not an HLS playlist or a media file")))
        }
        Content::Hls => {
            if !complete {
                while let Some(c) = body.chunk().await? {
                    if head.len() as u64 + c.len() as u64 > PLAYLIST_LIMIT {
                        return Err(Error::Fetch(FetchError::TooLarge { limit: PLAYLIST_LIMIT }));
                    }
                    head.extend_from_slice(&c);
                }
            }
            let base = body.final_url.clone();
            let text = playlist_text(head, "the source playlist")?;
            let source = VarSource::Fetched { url: &base, imports: None };
            match playlist_kind(&text) {
                PlaylistKind::Master => Ok(Resolved::Master { master: MasterPlaylist::parse(&text, source)?, base }),
                PlaylistKind::Media => {
                    let playlist = MediaPlaylist::parse(&text, source)?;
                    Ok(Resolved::Media { text, playlist, base })
                }
            }
        }
    }
}

/// A playlist's bytes as text; `what` names it in the error.
fn playlist_text(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        Error::Playlist(PlaylistError::Invalid { line, reason: format!("{what} is not UTF-8 text") })
    })
}

pub(crate) async fn prepare(inner: &Inner, url: &str, headers: &[(String, String)]) -> Result<Prepared> {
    let url = parse_url(url)?;
    let headers = merged_headers(inner, headers)?;
    Ok(match resolve(inner, &url, &headers).await? {
        Resolved::Master { master, .. } => {
            // URIs are shown without their query: it may hold signatures, or tokens that
            // EXT-X-DEFINE put there.
            let no_query = |u: &str| u.split(['?', '#']).next().unwrap_or(u).to_owned();
            Prepared::Hls {
                master: true,
                variants: master.variants.into_iter().map(|v| Variant { uri: no_query(&v.uri), ..v }).collect(),
                renditions: master
                    .renditions
                    .into_iter()
                    .map(|r| Rendition { uri: r.uri.as_deref().map(no_query), ..r })
                    .collect(),
                duration_secs: None,
                segments: None,
            }
        }
        Resolved::Media { playlist, .. } => Prepared::Hls {
            master: false,
            variants: vec![Variant::with_bandwidth(identity::redact(&url), 0)],
            renditions: Vec::new(),
            duration_secs: Some(playlist.duration()),
            segments: Some(playlist.segments.len()),
        },
        Resolved::File { size, content_type, accept_ranges, .. } => {
            Prepared::File { size, content_type, accept_ranges }
        }
    })
}

fn media_only_variant(url: &Url) -> Variant {
    Variant::with_bandwidth(url.to_string(), 0)
}

/// One media playlist to download, resolved.
pub(crate) struct ChosenRendition {
    pub role: RenditionRole,
    pub url: Url,
    pub attrs: serde_json::Value,
}

/// The chosen variant and renditions of an HLS source.
pub(crate) struct Choice {
    pub variant: Variant,
    pub renditions: Vec<ChosenRendition>,
}

fn pick_renditions<'a>(group: Vec<&'a Rendition>, langs: Option<&[String]>, default_only: bool) -> Vec<&'a Rendition> {
    let with_uri: Vec<&Rendition> = group.into_iter().filter(|r| r.uri.is_some()).collect();
    if default_only {
        return with_uri
            .iter()
            .find(|r| r.default)
            .or_else(|| with_uri.iter().find(|r| r.autoselect))
            .or_else(|| with_uri.first())
            .map(|r| vec![*r])
            .unwrap_or_default();
    }
    match langs {
        None => with_uri,
        Some(l) => with_uri
            .into_iter()
            .filter(|r| r.language.as_deref().is_some_and(|x| l.iter().any(|w| w.eq_ignore_ascii_case(x))))
            .collect(),
    }
}

pub(crate) fn choose(resolved: &Resolved, request: &DownloadRequest) -> Result<Choice> {
    match resolved {
        Resolved::Media { base, .. } => Ok(Choice {
            variant: media_only_variant(base),
            renditions: vec![ChosenRendition {
                role: RenditionRole::Video,
                url: base.clone(),
                attrs: serde_json::json!({}),
            }],
        }),
        Resolved::Master { master, base } => {
            let vi = master::select_variant(&master.variants, request.quality);
            let variant = master.variants[vi].clone();
            let join = |uri: &str| {
                base.join(uri).map_err(|e| Error::InvalidRequest(format!("bad URI in master playlist: {e}")))
            };
            let mut renditions = vec![ChosenRendition {
                role: RenditionRole::Video,
                url: join(&variant.uri)?,
                attrs: serde_json::to_value(&variant).unwrap_or_default(),
            }];
            let audio_group = master.group(RenditionKind::Audio, variant.audio_group.as_deref());
            let audio = match &request.audio {
                AudioChoice::Default => pick_renditions(audio_group, None, true),
                AudioChoice::All => pick_renditions(audio_group, None, false),
                AudioChoice::Languages(l) => pick_renditions(audio_group, Some(l), false),
                AudioChoice::None => Vec::new(),
            };
            let subs_group = master.group(RenditionKind::Subtitles, variant.subtitles_group.as_deref());
            let subs = match &request.subtitles {
                SubtitleChoice::All => pick_renditions(subs_group, None, false),
                SubtitleChoice::Languages(l) => pick_renditions(subs_group, Some(l), false),
                SubtitleChoice::None => Vec::new(),
            };
            for (role, r) in audio
                .into_iter()
                .map(|r| (RenditionRole::Audio, r))
                .chain(subs.into_iter().map(|r| (RenditionRole::Subtitles, r)))
            {
                let uri = r.uri.as_deref().unwrap_or_default();
                renditions.push(ChosenRendition {
                    role,
                    url: join(uri)?,
                    attrs: serde_json::to_value(r).unwrap_or_default(),
                });
            }
            Ok(Choice { variant, renditions })
        }
        Resolved::File { .. } => Err(Error::InvalidRequest("not an HLS source".into())),
    }
}

/// The identity of an HLS choice: the source and every chosen playlist, without signatures.
fn hls_identity(source: &Url, choice: &Choice) -> String {
    let mut id = identity::strip_signature(source);
    for r in &choice.renditions {
        id.push('|');
        id.push_str(&identity::strip_signature(&r.url));
    }
    id
}

pub(crate) fn sanitize_ext(uri: &str, fallback: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) if (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            ext.to_ascii_lowercase()
        }
        _ => fallback.to_owned(),
    }
}

/// Names of a rendition's files, relative to its directory.
pub(crate) struct RenditionNames<'a> {
    pub playlist: &'a MediaPlaylist,
    pub role: RenditionRole,
}

impl RenditionNames<'_> {
    fn fallback(&self) -> &'static str {
        match self.role {
            RenditionRole::Subtitles => "vtt",
            RenditionRole::Audio if self.playlist.maps.is_empty() => "aac",
            _ if !self.playlist.maps.is_empty() => "m4s",
            _ => "ts",
        }
    }
}

impl LocalNames for RenditionNames<'_> {
    fn segment(&self, index: usize) -> String {
        let uri = self.playlist.segments.get(index).map_or("", |s| s.uri.as_str());
        format!("seg-{index:05}.{}", sanitize_ext(uri, self.fallback()))
    }
    fn map(&self, index: usize) -> String {
        let uri = self.playlist.maps.get(index).map_or("", |m| m.uri.as_str());
        format!("init-{index}.{}", sanitize_ext(uri, "mp4"))
    }
}

pub(crate) fn rendition_dir(role: RenditionRole, idx: u32) -> String {
    match role {
        RenditionRole::Video => "video".into(),
        RenditionRole::Audio => format!("audio-{idx}"),
        RenditionRole::Subtitles => format!("subtitles-{idx}"),
        RenditionRole::File => String::new(),
    }
}

/// Rows for one rendition's segments.
pub(crate) fn segment_rows(idx: u32, role: RenditionRole, dir: &str, pl: &MediaPlaylist) -> Vec<SegmentRow> {
    let names = RenditionNames { playlist: pl, role };
    let mut rows = Vec::with_capacity(pl.maps.len() + pl.segments.len());
    let used = pl.used_maps();
    for (mi, m) in pl.maps.iter().enumerate().filter(|(mi, _)| used[*mi]) {
        rows.push(SegmentRow {
            rendition: idx,
            kind: SegmentKind::Init,
            idx: mi as u32,
            msn: None,
            uri: identity::strip_uri_signature(&m.uri),
            range: m.byte_range.map(|r| (r.offset, r.length)),
            file: format!("{dir}/{}", names.map(mi)),
            size: None,
            sha256: None,
            resume_offset: 0,
            done: false,
        });
    }
    for (si, s) in pl.segments.iter().enumerate() {
        rows.push(SegmentRow {
            rendition: idx,
            kind: SegmentKind::Media,
            idx: si as u32,
            msn: Some(s.msn),
            uri: identity::strip_uri_signature(&s.uri),
            range: s.byte_range.map(|r| (r.offset, r.length)),
            file: format!("{dir}/{}", names.segment(si)),
            size: if s.gap { Some(0) } else { None },
            sha256: None,
            resume_offset: 0,
            // A segment the source marks unavailable (EXT-X-GAP) is kept as a gap, not fetched.
            done: s.gap,
        });
    }
    rows
}

fn progressive_ext(content_type: Option<&str>, url: &Url) -> String {
    let by_type = match content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        Some(t) if t == "video/mp4" => Some("mp4"),
        Some(t) if t == "audio/mp4" || t == "audio/x-m4a" => Some("m4a"),
        Some(t) if t == "audio/mpeg" => Some("mp3"),
        Some(t) if t == "video/webm" => Some("webm"),
        Some(t) if t == "video/x-matroska" => Some("mkv"),
        Some(t) if t == "video/quicktime" => Some("mov"),
        Some(t) if t == "audio/aac" => Some("aac"),
        _ => None,
    };
    by_type.map_or_else(|| sanitize_ext(url.path(), "bin"), str::to_owned)
}

/// Estimated stored bytes of an HLS choice: exact for clear byte-range playlists, otherwise
/// bandwidth × duration.
fn hls_expected(choice: &Choice, playlists: &[MediaPlaylist]) -> (Option<u64>, bool) {
    let all_ranged_clear = playlists.iter().all(|p| {
        p.segments.iter().all(|s| s.byte_range.is_some() && s.encryption == crate::hls::media::Encryption::None)
            && p.maps.iter().all(|m| m.byte_range.is_some() && m.encryption == crate::hls::media::Encryption::None)
    });
    if all_ranged_clear {
        let total: u64 = playlists
            .iter()
            .map(|p| {
                p.segments.iter().filter(|s| !s.gap).filter_map(|s| s.byte_range).map(|r| r.length).sum::<u64>()
                    + p.maps
                        .iter()
                        .zip(p.used_maps())
                        .filter(|(_, used)| *used)
                        .filter_map(|(m, _)| m.byte_range)
                        .map(|r| r.length)
                        .sum::<u64>()
            })
            .sum();
        return (Some(total), true);
    }
    let bw = choice.variant.average_bandwidth.unwrap_or(choice.variant.bandwidth);
    if bw == 0 {
        return (None, false);
    }
    let duration = playlists.first().map_or(0.0, MediaPlaylist::duration);
    (Some((bw as f64 * duration / 8.0) as u64), false)
}

/// Everything the catalog needs for a new (or restarted) asset.
pub(crate) struct NewPlan {
    pub kind: AssetKind,
    pub identity: String,
    pub renditions: Vec<RenditionRow>,
    pub segments: Vec<SegmentRow>,
    pub expected: (Option<u64>, bool),
    pub duration: Option<f64>,
}

pub(crate) async fn plan(inner: &Inner, request: &DownloadRequest, url: &Url, headers: &HeaderMap) -> Result<NewPlan> {
    let resolved = resolve(inner, url, headers).await?;
    if let Resolved::File { size, content_type, validator, url: final_url, .. } = &resolved {
        let identity = request.identity.clone().unwrap_or_else(|| identity::strip_signature(url));
        let file = format!("media.{}", progressive_ext(content_type.as_deref(), final_url));
        let attrs = serde_json::json!({ "size": size, "content_type": content_type });
        return Ok(NewPlan {
            kind: AssetKind::Progressive,
            identity,
            renditions: vec![RenditionRow {
                idx: 0,
                kind: RenditionRole::File,
                dir: String::new(),
                url: final_url.to_string(),
                uri: identity::strip_signature(final_url),
                attrs: attrs.to_string(),
                playlist: None,
                validator: validator.clone(),
                variables: None,
            }],
            segments: vec![SegmentRow {
                rendition: 0,
                kind: SegmentKind::File,
                idx: 0,
                msn: None,
                uri: identity::strip_signature(final_url),
                range: None,
                file,
                size: None,
                sha256: None,
                resume_offset: 0,
                done: false,
            }],
            expected: (*size, size.is_some()),
            duration: None,
        });
    }
    let choice = choose(&resolved, request)?;
    let mut renditions = Vec::new();
    let mut segments = Vec::new();
    let mut playlists = Vec::new();
    for (i, r) in choice.renditions.iter().enumerate() {
        let idx = i as u32;
        let (text, base, pl) = match &resolved {
            Resolved::Media { text, base, playlist } if i == 0 => (text.clone(), base.clone(), playlist.clone()),
            Resolved::Master { master, .. } => {
                fetch_playlist(inner, &r.url, headers, Some(&master.variables), &r.role.to_string()).await?
            }
            _ => fetch_playlist(inner, &r.url, headers, None, &r.role.to_string()).await?,
        };
        let dir = rendition_dir(r.role, idx);
        segments.extend(segment_rows(idx, r.role, &dir, &pl));
        renditions.push(RenditionRow {
            idx,
            kind: r.role,
            dir,
            url: base.to_string(),
            uri: identity::strip_signature(&r.url),
            attrs: r.attrs.to_string(),
            playlist: Some(text),
            validator: None,
            variables: (!pl.variables.is_empty()).then(|| pl.variables.to_json()),
        });
        playlists.push(pl);
    }
    let identity = request.identity.clone().unwrap_or_else(|| hls_identity(url, &choice));
    let expected = hls_expected(&choice, &playlists);
    let duration = playlists.first().map(MediaPlaylist::duration);
    Ok(NewPlan { kind: AssetKind::Hls, identity, renditions, segments, expected, duration })
}

/// Fetches a media playlist (a variant or rendition of a master, or the source itself after a
/// refresh) and parses it with the master's variables; anything that is not a media playlist is
/// refused, saying what it is. `what` names it in messages ("video", "audio", …).
pub(crate) async fn fetch_playlist(
    inner: &Inner,
    url: &Url,
    headers: &HeaderMap,
    imports: Option<&Variables>,
    what: &str,
) -> Result<(String, Url, MediaPlaylist)> {
    let (bytes, base) = inner.http.get_small(url, headers, PLAYLIST_LIMIT, &inner.config.retry).await?;
    let refused =
        |got: String| Error::BadSource(format!("the {what} playlist URL returned {got}, not a media playlist"));
    let head = &bytes[..bytes.len().min(sniff::HEAD_LEN)];
    match sniff::identify(head, head.len() == bytes.len()) {
        Content::Hls => {}
        Content::Dash => return Err(refused("a DASH manifest".into())),
        Content::Media(_) => return Err(refused("media".into())),
        Content::NotMedia(got) => return Err(refused(got.to_string())),
    }
    let text = playlist_text(bytes.to_vec(), &format!("the {what} playlist")).map_err(|e| match e {
        Error::Playlist(error) => Error::MediaPlaylist { which: what.to_owned(), error },
        other => other,
    })?;
    if playlist_kind(&text) == PlaylistKind::Master {
        return Err(refused("a master playlist".into()));
    }
    let pl = MediaPlaylist::parse(&text, VarSource::Fetched { url: &base, imports })
        .map_err(|error| Error::MediaPlaylist { which: what.to_owned(), error })?;
    Ok((text, base, pl))
}

/// Serialized request headers: a JSON list of pairs, sealed under the vault key.
pub(crate) fn seal_headers(inner: &Inner, id: &str, headers: &[(String, String)]) -> Result<Option<Vec<u8>>> {
    if headers.is_empty() {
        return Ok(None);
    }
    let json = zeroize::Zeroizing::new(serde_json::to_vec(headers).unwrap_or_default());
    Ok(Some(inner.kek.seal_blob(id.as_bytes(), &json)?))
}

pub(crate) fn open_headers(inner: &Inner, id: &str, sealed: Option<&[u8]>) -> Result<Vec<(String, String)>> {
    match sealed {
        None => Ok(Vec::new()),
        Some(s) => {
            let json = inner.kek.open_blob(id.as_bytes(), s)?;
            serde_json::from_slice(&json).map_err(|_| Error::Key(crate::keys::KeyError::Integrity))
        }
    }
}

/// The app-facing identity of a VOD asset, from its catalog JSON.
pub(crate) fn vod_identity(json: &str) -> Option<crate::vault::VodIdentity> {
    let s = vod::VodState::from_json(json)?;
    Some(crate::vault::VodIdentity {
        video_id: s.video_id,
        definition: s.definition,
        format: s.format,
        stream_type: s.stream_type,
        mezzanine: s.mezzanine,
        job_id: s.job_id,
    })
}

/// Creates the asset for `request` (or finds it), returning its id. The asset is `queued`.
pub(crate) async fn create(inner: &Inner, request: &DownloadRequest) -> Result<String> {
    if request.parallel == Some(0) {
        return Err(Error::InvalidRequest("parallel must be at least 1".into()));
    }
    let headers = merged_headers(inner, &request.headers)?;
    // A VOD video: VOD says which URL to download; the stream is the identity.
    let mut request = request.clone();
    let vod_source = match request.vod_request()? {
        Some(v) => {
            let resolved = vod::resolve(inner, &v, request.quality).await?;
            request.vod = Some(v);
            request.identity = Some(resolved.state.identity());
            if request.title.is_none() {
                request.title.clone_from(&resolved.title);
            }
            Some(resolved)
        }
        None => None,
    };
    let request = &request;
    let url = match &vod_source {
        Some(v) => v.url.clone(),
        None => parse_url(&request.url)?,
    };
    let mut plan = plan(inner, request, &url, &headers).await?;
    if let Some(v) = &vod_source
        && v.state.mezzanine
        && let Some(size) = v.state.size
    {
        plan.expected = (Some(size), true);
    }
    let id = identity::asset_id(&plan.identity);
    if let Some(existing) = inner.catalog.asset(&id).await? {
        if existing.mode != request.mode {
            return Err(Error::AlreadyExists { id, mode: existing.mode });
        }
        if matches!(existing.state, AssetState::Paused | AssetState::Failed | AssetState::Cancelled) {
            inner.catalog.set_source_url(&id, url.as_str()).await?;
            inner.requeue(&id).await?;
        }
        return Ok(id);
    }
    let (key_id, wrapped) = match request.mode {
        Mode::Encrypted => {
            let ck = ContentKey::generate()?;
            let w = ck.wrap(&inner.kek, id.as_bytes())?;
            (Some(inner.kek.key_id().to_string()), Some(w.as_bytes().to_vec()))
        }
        Mode::Normal => (None, None),
    };
    let now = now_ms();
    let row = AssetRow {
        id: id.clone(),
        identity: plan.identity.clone(),
        kind: plan.kind,
        mode: request.mode,
        source_url: url.to_string(),
        request: serde_json::to_string(request).unwrap_or_default(),
        title: request.title.clone(),
        metadata: request.metadata.clone(),
        headers: seal_headers(inner, &id, &request.headers)?,
        state: AssetState::Queued,
        failure: None,
        bytes_expected: plan.expected.0,
        expected_exact: plan.expected.1,
        bytes_done: 0,
        segments_total: plan.segments.len() as u64,
        segments_done: plan.segments.iter().filter(|s| s.done).count() as u64,
        duration_secs: plan.duration,
        key_id,
        wrapped_key: wrapped,
        entry: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
        offline_until: request.offline_until,
        vod: vod_source.as_ref().map(|v| v.state.to_json()),
    };
    let images = vod_source.map(|v| v.images).unwrap_or_default();
    inner.catalog.insert_asset(&row, &plan.renditions, &plan.segments, &images).await?;
    tracing::debug!(asset = %id, pieces = plan.segments.len(), "asset created");
    inner.emit_state(&id, AssetState::Queued, None);
    Ok(id)
}

/// Whether another process holds the asset's download lock.
pub(crate) fn is_locked_elsewhere(inner: &Inner, id: &str) -> bool {
    match File::options().create(true).truncate(false).write(true).open(inner.layout.lock_file(id)) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// Waits (up to 15 s) until no process holds the asset's lock.
pub(crate) async fn wait_unlocked(inner: &Inner, id: &str) {
    for _ in 0..300 {
        if !is_locked_elsewhere(inner, id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Turns a failure of a fetch into the asset's failure reason, naming what was fetched.
pub(crate) fn fetch_failure(what: &str, e: &FetchError) -> FailureReason {
    match e {
        FetchError::Status { status, .. } if matches!(e.class(), ErrorClass::Expired) => {
            FailureReason::UrlExpired { message: format!("{what}: HTTP {status} and no fresh URL") }
        }
        FetchError::Status { status, .. } => FailureReason::HttpStatus { status: *status, message: what.to_owned() },
        FetchError::Transport(m) => FailureReason::Network { message: format!("{what}: {m}") },
        FetchError::Short { .. } => FailureReason::Network { message: format!("{what}: {e}") },
        other => FailureReason::BadSource { message: format!("{what}: {other}") },
    }
}

/// A failure from resolving or planning, as an asset failure reason.
pub(crate) fn error_to_failure(what: &str, e: &Error) -> FailureReason {
    match e {
        Error::Fetch(f) => fetch_failure(what, f),
        Error::Playlist(PlaylistError::Unsupported(m)) | Error::Unsupported(m) => {
            FailureReason::Unsupported { message: m.clone() }
        }
        Error::Playlist(PlaylistError::Live) => FailureReason::Unsupported { message: format!("{what}: {e}") },
        Error::MediaPlaylist { error: PlaylistError::Unsupported(_) | PlaylistError::Live, .. } => {
            FailureReason::Unsupported { message: e.to_string() }
        }
        Error::MediaPlaylist { .. } => FailureReason::BadSource { message: e.to_string() },
        Error::Playlist(p) => FailureReason::BadSource { message: format!("{what}: {p}") },
        Error::BadSource(m) => FailureReason::BadSource { message: m.clone() },
        other => FailureReason::Storage { message: other.to_string() },
    }
}

impl From<FetchError> for FailureReason {
    fn from(e: FetchError) -> Self {
        fetch_failure("request", &e)
    }
}
