//! Sources: fetching what an app points at and telling what it is by its content (an HLS master
//! or media playlist, a progressive file, an ApsaraVideo VOD video), then choosing what to
//! download from it. No catalog, no files: what a source is and offers.

pub(crate) mod dash;
pub(crate) mod vod;

use reqwest::header::HeaderMap;
use url::Url;

use crate::error::{Error, Result};
use crate::fetch::{ErrorClass, FetchError, Http, Request, Retry, RetryPolicy, header_map};
use crate::hls::cut::CutError;
use crate::hls::master::{MasterPlaylist, PlaylistKind, Rendition, RenditionKind, Variant, playlist_kind};
use crate::hls::media::{MediaPlaylist, PlaylistError};
use crate::hls::vars::{VarSource, Variables};
use crate::identity;
use crate::model::{AudioChoice, DownloadRequest, Prepared, RenditionRole, SubtitleChoice, TimeRange, TrackRules};
use crate::sniff::{self, Content};
use crate::vod::VodClient;

/// Where sources come from: the vault's HTTP client, retry policy and default headers, and the
/// ApsaraVideo VOD API client.
pub(crate) struct Source {
    pub(crate) http: Http,
    pub(crate) retry: RetryPolicy,
    pub(crate) default_headers: Vec<(String, String)>,
    pub(crate) vod: VodClient,
}

/// Largest playlist accepted.
const PLAYLIST_LIMIT: u64 = 16 << 20;

/// A source as fetched and classified.
pub(crate) enum Resolved {
    Master { master: MasterPlaylist, base: Url },
    Media { text: String, playlist: MediaPlaylist, base: Url },
    Dash { mpd: crate::dash::Mpd, base: Url },
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
pub(crate) fn merged_headers(src: &Source, own: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = header_map(&src.default_headers)?;
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
pub(crate) async fn resolve(src: &Source, url: &Url, headers: &HeaderMap) -> Result<Resolved> {
    let mut retry = Retry::new(&src.retry);
    loop {
        match resolve_once(src, url, headers).await {
            Err(Error::Fetch(e)) => match e.class() {
                ErrorClass::Transient { retry_after } if retry.again(retry_after).await => {}
                _ => return Err(Error::Fetch(e)),
            },
            other => return other,
        }
    }
}

/// What a source URL is, from its first bytes: an HLS playlist or a DASH manifest (read whole
/// and parsed), a media file, or anything else (refused, saying what it is), whatever its
/// `Content-Type` or extension says.
async fn resolve_once(src: &Source, url: &Url, headers: &HeaderMap) -> Result<Resolved> {
    let mut body = src.http.open(Request::get(url, headers)).await?;
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
        Content::NotMedia(what) => Err(Error::BadSource(format!(
            "the source URL returned {what}, not an HLS playlist, a DASH manifest or a media file"
        ))),
        Content::Dash => {
            read_rest(&mut body, &mut head, complete).await?;
            let base = body.final_url.clone();
            let text = playlist_text(head, "the MPD")?;
            let mpd = crate::dash::Mpd::parse(&text, &base).map_err(dash::mpd_error)?;
            Ok(Resolved::Dash { mpd, base })
        }
        Content::Hls => {
            read_rest(&mut body, &mut head, complete).await?;
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

/// The rest of a manifest whose first bytes are `head`, up to [`PLAYLIST_LIMIT`].
async fn read_rest(body: &mut crate::fetch::Body, head: &mut Vec<u8>, complete: bool) -> Result<()> {
    if !complete {
        while let Some(c) = body.chunk().await? {
            if head.len() as u64 + c.len() as u64 > PLAYLIST_LIMIT {
                return Err(Error::Fetch(FetchError::TooLarge { limit: PLAYLIST_LIMIT }));
            }
            head.extend_from_slice(&c);
        }
    }
    Ok(())
}

/// A playlist's bytes as text; `what` names it in the error.
fn playlist_text(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        Error::Playlist(PlaylistError::Invalid { line, reason: format!("{what} is not UTF-8 text") })
    })
}

pub(crate) async fn prepare(src: &Source, url: &str, headers: &[(String, String)]) -> Result<Prepared> {
    let url = parse_url(url)?;
    let headers = merged_headers(src, headers)?;
    Ok(match resolve(src, &url, &headers).await? {
        Resolved::Master { master, base } => {
            // URIs are shown without their query: it may hold signatures, or tokens that
            // EXT-X-DEFINE put there.
            let no_query = |u: &str| u.split(['?', '#']).next().unwrap_or(u).to_owned();
            // The duration, from the first variant's playlist (every variant has it), gives
            // each variant's estimated size. Only a playlist on the master's own host is asked
            // (listing a source talks to that host alone; `preview` fetches what a download
            // would); one that cannot be read leaves the sizes unknown.
            let first = match master.variants.first().map(|v| base.join(&v.uri)) {
                Some(Ok(u))
                    if u.host_str() == base.host_str() && u.port_or_known_default() == base.port_or_known_default() =>
                {
                    fetch_playlist(src, &u, &headers, Some(&master.variables), "video").await.ok()
                }
                _ => None,
            };
            let duration = first.as_ref().map(|f| f.playlist.duration());
            let variant_bytes = master
                .variants
                .iter()
                .map(|v| {
                    let bw = v.average_bandwidth.unwrap_or(v.bandwidth);
                    duration.filter(|_| bw > 0).map(|d| (bw as f64 * d / 8.0) as u64)
                })
                .collect();
            Prepared::Hls {
                variant_bytes,
                bytes_exact: false,
                master: true,
                variants: master.variants.into_iter().map(|v| Variant { uri: no_query(&v.uri), ..v }).collect(),
                renditions: master
                    .renditions
                    .into_iter()
                    .map(|r| Rendition { uri: r.uri.as_deref().map(no_query), ..r })
                    .collect(),
                duration_secs: duration,
                segments: first.map(|f| f.playlist.segments.len()),
            }
        }
        Resolved::Media { playlist, .. } => Prepared::Hls {
            // Exact when every piece is a clear byte range; otherwise there is no bandwidth to
            // estimate from (`preview` says the same).
            variant_bytes: vec![ranged_size(&playlist)],
            bytes_exact: ranged_size(&playlist).is_some(),
            master: false,
            variants: vec![Variant::with_bandwidth(identity::redact(&url), 0)],
            renditions: Vec::new(),
            duration_secs: Some(playlist.duration()),
            segments: Some(playlist.segments.len()),
        },
        Resolved::Dash { mpd, .. } => dash::prepare(src, &mpd, &headers).await,
        Resolved::File { size, content_type, accept_ranges, .. } => {
            Prepared::File { size, content_type, accept_ranges }
        }
    })
}

/// The size of a media playlist whose every piece is a byte range in the clear.
pub(crate) fn ranged_size(pl: &MediaPlaylist) -> Option<u64> {
    let clear = |e: &crate::hls::media::Encryption| *e == crate::hls::media::Encryption::None;
    let segments = pl.segments.iter().filter(|s| !s.gap);
    let maps = pl.maps.iter().zip(pl.used_maps()).filter(|(_, used)| *used).map(|(m, _)| m);
    let mut total = 0u64;
    for (range, enc) in
        segments.map(|s| (s.byte_range, &s.encryption)).chain(maps.map(|m| (m.byte_range, &m.encryption)))
    {
        total = total.checked_add(range.filter(|_| clear(enc))?.length)?;
    }
    Some(total)
}

fn media_only_variant(url: &Url) -> Variant {
    Variant::with_bandwidth(url.to_string(), 0)
}

/// One media playlist to download, resolved.
pub(crate) struct ChosenRendition {
    pub role: RenditionRole,
    pub url: Url,
    pub attrs: serde_json::Value,
    /// For a DASH source: which representation the track is, in each period.
    pub dash: Option<dash::DashTrack>,
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
                dash: None,
            }],
        }),
        Resolved::Master { master, base } => {
            let rules = request.rules.clone().unwrap_or_default();
            // The variants the device decodes and shows, then the one `quality` picks of them.
            let fit: Vec<usize> = (0..master.variants.len()).filter(|i| rules.accepts(&master.variants[*i])).collect();
            if fit.is_empty() {
                return Err(Error::InvalidRequest(format!(
                    "no variant the track rules accept (offered: {})",
                    crate::model::offered(master.variants.iter())
                )));
            }
            let fitting: Vec<Variant> = fit.iter().map(|i| master.variants[*i].clone()).collect();
            let variant = fitting[request.quality.pick(&fitting)].clone();
            let join = |uri: &str| {
                base.join(uri).map_err(|e| Error::InvalidRequest(format!("bad URI in master playlist: {e}")))
            };
            let mut renditions = vec![ChosenRendition {
                role: RenditionRole::Video,
                url: join(&variant.uri)?,
                attrs: serde_json::to_value(&variant).unwrap_or_default(),
                dash: None,
            }];
            let audio_group = master.group(RenditionKind::Audio, variant.audio_group.as_deref());
            let by_rules = rules.pick_audio(&audio_group);
            let audio = match &request.audio {
                _ if by_rules.is_some() => by_rules.unwrap_or_default(),
                AudioChoice::Default => pick_renditions(audio_group, None, true),
                AudioChoice::All => pick_renditions(audio_group, None, false),
                AudioChoice::Languages(l) => pick_renditions(audio_group, Some(l), false),
                AudioChoice::None => Vec::new(),
            };
            let subs_group = master.group(RenditionKind::Subtitles, variant.subtitles_group.as_deref());
            let subs = match &request.subtitles {
                _ if !rules.subtitle_languages.is_empty() => subs_group
                    .into_iter()
                    .filter(|r| {
                        r.uri.is_some() && TrackRules::wants_language(&rules.subtitle_languages, r.language.as_deref())
                    })
                    .collect(),
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
                    dash: None,
                });
            }
            Ok(Choice { variant, renditions })
        }
        Resolved::Dash { mpd, base } => dash::choose(mpd, base, request),
        Resolved::File { .. } => Err(Error::InvalidRequest("not an HLS or DASH source".into())),
    }
}

/// The media playlist of each chosen rendition, in order: fetched (HLS, with the master's
/// variables), the source itself (a media playlist), or made from the MPD (DASH).
/// With a time `range` (HLS only), each keeps only the segments that overlap it.
pub(crate) async fn playlists(
    src: &Source,
    resolved: &Resolved,
    choice: &mut Choice,
    headers: &HeaderMap,
    range: Option<TimeRange>,
) -> Result<Vec<Fetched>> {
    if range.is_some() && matches!(resolved, Resolved::Dash { .. }) {
        // The local MPD repeats the source's periods and timelines, which a cut would break.
        return Err(Error::InvalidRequest("a time range is for HLS streams; DASH is downloaded whole".into()));
    }
    let fetched = all_playlists(src, resolved, choice, headers).await?;
    let Some(range) = range else {
        return Ok(fetched);
    };
    let (start, end) = range.secs();
    fetched
        .into_iter()
        .zip(&choice.renditions)
        .map(|(f, r)| {
            let text = crate::hls::cut::cut(&f.text, &f.playlist, start, end).map_err(|e| match e {
                CutError::Empty { .. } => Error::InvalidRequest(format!("the range {range}, {} track: {e}", r.role)),
                CutError::Mismatch => Error::BadSource(format!("the {} playlist: {e}", r.role)),
            })?;
            let playlist = MediaPlaylist::parse(&text, VarSource::Stored(&f.playlist.variables))
                .map_err(|error| Error::MediaPlaylist { which: format!("{} (cut to {range})", r.role), error })?;
            Ok(Fetched { text, base: f.base, playlist })
        })
        .collect()
}

async fn all_playlists(
    src: &Source,
    resolved: &Resolved,
    choice: &mut Choice,
    headers: &HeaderMap,
) -> Result<Vec<Fetched>> {
    if let Resolved::Dash { mpd, base } = resolved {
        return dash::playlists(src, mpd, base, choice, headers).await;
    }
    let mut fetched = Vec::with_capacity(choice.renditions.len());
    for (i, r) in choice.renditions.iter().enumerate() {
        let f = match resolved {
            Resolved::Media { text, base, playlist } if i == 0 => {
                Fetched { text: text.clone(), base: base.clone(), playlist: playlist.clone() }
            }
            Resolved::Master { master, .. } => {
                fetch_playlist(src, &r.url, headers, Some(&master.variables), &r.role.to_string()).await?
            }
            _ => fetch_playlist(src, &r.url, headers, None, &r.role.to_string()).await?,
        };
        fetched.push(f);
    }
    Ok(fetched)
}

/// A chosen rendition's media playlist: its text, the URL it came from (after redirects) and the
/// playlist parsed from it.
pub(crate) struct Fetched {
    pub text: String,
    pub base: Url,
    pub playlist: MediaPlaylist,
}

/// Fetches a media playlist (a variant or rendition of a master, or the source itself after a
/// refresh) and parses it with the master's variables; anything that is not a media playlist is
/// refused, saying what it is. `what` names it in messages ("video", "audio", …).
pub(crate) async fn fetch_playlist(
    src: &Source,
    url: &Url,
    headers: &HeaderMap,
    imports: Option<&Variables>,
    what: &str,
) -> Result<Fetched> {
    let (bytes, base) = src.http.get_small(url, headers, PLAYLIST_LIMIT, &src.retry).await?;
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
    Ok(Fetched { text, base, playlist: pl })
}
