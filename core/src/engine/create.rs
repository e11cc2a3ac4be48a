//! Creating an asset: resolving its source, planning it, and recording it (with its content key
//! and sealed request headers) as `queued`.

use reqwest::header::HeaderMap;
use url::Url;

use super::Deps;
use crate::catalog::AssetRow;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::identity;
use crate::keys::ContentKey;
use crate::model::{
    AssetKind, AssetState, DownloadRequest, KeepFree, Mode, PickedTrack, Preview, Requirements, SegmentKind, SpaceCheck,
};
use crate::plan::{self, NewPlan};
use crate::source::{self, Resolved, Source};
use crate::store;

/// Resolves `url` and plans what to download of it: a progressive file, or the chosen variant
/// and renditions of an HLS source with their playlists.
pub(crate) async fn plan_source(
    src: &Source,
    request: &DownloadRequest,
    url: &Url,
    headers: &HeaderMap,
) -> Result<NewPlan> {
    let resolved = source::resolve(src, url, headers).await?;
    if let Some(range) = &request.range {
        range.check().map_err(Error::InvalidRequest)?;
    }
    if let Resolved::File { size, content_type, validator, url: final_url, .. } = &resolved {
        if request.range.is_some() {
            return Err(Error::InvalidRequest("a time range is for HLS and DASH streams, not a single file".into()));
        }
        let identity = request.identity.clone().unwrap_or_else(|| identity::strip_signature(url));
        return Ok(plan::progressive(identity, final_url, *size, content_type.as_deref(), validator.clone()));
    }
    let mut choice = source::choose(&resolved, request)?;
    let fetched = source::playlists(src, &resolved, &mut choice, headers, request.range).await?;
    let kind = if matches!(resolved, Resolved::Dash { .. }) { AssetKind::Dash } else { AssetKind::Hls };
    let mut plan = plan::hls(url, request.identity.clone(), kind, &choice, fetched);
    if let Some(range) = request.range {
        // Another part of the same stream is another asset.
        plan.identity.push_str(&format!("|range={range}"));
    }
    Ok(plan)
}

/// Queues a paused, failed or cancelled asset again (clearing its failure).
pub(crate) async fn requeue(deps: &Deps, id: &str) -> Result<()> {
    let from = [AssetState::Paused, AssetState::Failed, AssetState::Cancelled];
    if deps.catalog.transition(id, &from, AssetState::Queued, None).await? {
        deps.events.state(id, AssetState::Queued, None);
    }
    Ok(())
}

/// A request resolved and planned, nothing stored yet.
struct Planned {
    /// The request, completed (a VOD video's identity and title).
    request: DownloadRequest,
    url: Url,
    plan: NewPlan,
    vod_source: Option<source::vod::Resolved>,
}

/// Resolves and plans `request` (fetching its playlists or its file's headers, or asking VOD).
async fn planned(deps: &Deps, request: &DownloadRequest) -> Result<Planned> {
    if request.parallel == Some(0) {
        return Err(Error::InvalidRequest("parallel must be at least 1".into()));
    }
    let headers = source::merged_headers(&deps.source, &request.headers)?;
    // A VOD video: VOD says which URL to download; the stream is the identity.
    let mut request = request.clone();
    let vod_source = match request.vod_request().map_err(Error::InvalidRequest)? {
        Some(v) => {
            let resolved = source::vod::resolve(&deps.source, &v, request.quality, request.rules.as_ref()).await?;
            request.vod = Some(v);
            request.identity = Some(resolved.state.identity());
            if request.title.is_none() {
                request.title.clone_from(&resolved.title);
            }
            Some(resolved)
        }
        None => None,
    };
    let url = match &vod_source {
        Some(v) => v.url.clone(),
        None => source::parse_url(&request.url)?,
    };
    let mut plan = plan_source(&deps.source, &request, &url, &headers).await?;
    if let Some(v) = &vod_source
        && v.state.mezzanine
        && let Some(size) = v.state.size
    {
        plan.expected = (Some(size), true);
    }
    Ok(Planned { request, url, plan, vod_source })
}

/// Whether a download of `expected` bytes (`exact`, or an estimate that gets 5% more) fits: in
/// the free space less what downloads keep free, and in the quota.
pub(crate) async fn room(
    deps: &Deps,
    expected: (Option<u64>, bool),
    keep_free: KeepFree,
    quota: Option<u64>,
) -> Result<SpaceCheck> {
    let root = deps.layout.root().to_owned();
    let space = tokio::task::spawn_blocking(move || store::space(&root))
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    let keep = keep_free.on(space.total);
    // Other unfinished downloads will take what they still expect: it is not available, and it
    // counts against the quota.
    let pending = deps.catalog.bytes_pending().await?;
    let available = space.free.saturating_sub(keep).saturating_sub(pending);
    // What every asset stores is a sum over all of them: read only when there is a quota.
    let stored = if quota.is_some() { deps.catalog.bytes_stored().await? } else { 0 };
    let used = stored.saturating_add(pending);
    let needed = expected.0.map(|e| if expected.1 { e } else { e.saturating_add(e / 20) });
    // Of unknown size, it fits while anything does.
    let fits_space = needed.map_or(available > 0, |n| n <= available);
    let fits_quota = quota.is_none_or(|q| match needed {
        Some(n) => used.saturating_add(n) <= q,
        None => used < q,
    });
    Ok(SpaceCheck {
        needed,
        exact: expected.1,
        free: space.free,
        keep_free: keep,
        available,
        used,
        quota,
        fits_space,
        fits_quota,
    })
}

/// What a download would store and take, and whether it fits, without storing anything (see
/// [`crate::Vault::preview`]).
pub(crate) async fn preview(
    deps: &Deps,
    request: &DownloadRequest,
    limits: impl FnOnce(Option<&Requirements>) -> (KeepFree, Option<u64>),
) -> Result<Preview> {
    let p = planned(deps, request).await?;
    let (keep, quota) = limits(p.request.requirements.as_ref());
    let space = room(deps, p.plan.expected, keep, quota).await?;
    let tracks = p
        .plan
        .renditions
        .iter()
        .map(|r| {
            let attrs: serde_json::Value = serde_json::from_str(&r.attrs).unwrap_or_default();
            let text = |k: &str| attrs.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let number = |k: &str| attrs.get(k).and_then(serde_json::Value::as_u64);
            let rows = p.plan.segments.iter().filter(|s| s.rendition == r.idx && s.kind != SegmentKind::Init);
            let playlist = plan::stored_playlist(r).ok();
            PickedTrack {
                role: r.kind,
                name: text("name").or_else(|| text("label")),
                language: text("language").or_else(|| text("lang")),
                codecs: text("codecs"),
                bandwidth: number("bandwidth").filter(|b| *b > 0),
                height: number("height"),
                video_range: text("video_range"),
                channels: text("channels"),
                segments: rows.count() as u64,
                duration_secs: playlist.map(|pl| pl.duration()).or(p.plan.duration.filter(|_| r.idx == 0)),
            }
        })
        .collect();
    Ok(Preview { tracks, space })
}

/// Creates the asset for `request` (or finds it), returning its id. The asset is `queued`. A new
/// asset whose size (or estimate) does not fit in the space downloads may use, or in the quota,
/// is refused before anything is stored. `limits` gives what is kept free and the quota for a
/// download with these requirements of its own.
pub(crate) async fn create(
    deps: &Deps,
    request: &DownloadRequest,
    limits: impl FnOnce(Option<&Requirements>) -> (KeepFree, Option<u64>),
) -> Result<String> {
    let Planned { request, url, plan, vod_source } = planned(deps, request).await?;
    let request = &request;
    let id = identity::asset_id(&plan.identity);
    if let Some(existing) = deps.catalog.asset(&id).await? {
        if existing.mode != request.mode {
            return Err(Error::AlreadyExists { id, mode: existing.mode });
        }
        if matches!(existing.state, AssetState::Paused | AssetState::Failed | AssetState::Cancelled) {
            deps.catalog.set_source_url(&id, url.as_str()).await?;
            requeue(deps, &id).await?;
        }
        return Ok(id);
    }
    let (keep, quota) = limits(request.requirements.as_ref());
    let room = room(deps, plan.expected, keep, quota).await?;
    if let (false, Some(quota)) = (room.fits_quota, room.quota) {
        return Err(Error::QuotaExceeded { needed: room.needed, used: room.used, quota });
    }
    if !room.fits_space {
        return Err(Error::NoRoom { needed: room.needed, available: room.available });
    }
    let (key_id, wrapped) = match request.mode {
        Mode::Encrypted => {
            let ck = ContentKey::generate()?;
            let w = ck.wrap(&deps.kek, id.as_bytes())?;
            (Some(deps.kek.key_id().to_string()), Some(w.as_bytes().to_vec()))
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
        request: serde_json::to_string(request).map_err(|e| Error::InvalidRequest(format!("request: {e}")))?,
        title: request.title.clone(),
        metadata: request.metadata.clone(),
        headers: seal_headers(deps, &id, &request.headers)?,
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
        vod: vod_source.as_ref().map(|v| v.state.to_json()).transpose().map_err(std::io::Error::from)?,
    };
    let images = vod_source.map(|v| plan::image_rows(v.images)).unwrap_or_default();
    deps.catalog.insert_asset(&row, &plan.renditions, &plan.segments, &images).await?;
    tracing::debug!(asset = %id, pieces = plan.segments.len(), "asset created");
    deps.events.state(&id, AssetState::Queued, None);
    Ok(id)
}

pub(crate) fn seal_headers(deps: &Deps, id: &str, headers: &[(String, String)]) -> Result<Option<Vec<u8>>> {
    if headers.is_empty() {
        return Ok(None);
    }
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(headers).map_err(|e| Error::InvalidRequest(format!("headers: {e}")))?,
    );
    Ok(Some(deps.kek.seal_blob(id.as_bytes(), &json)?))
}

pub(crate) fn open_headers(deps: &Deps, id: &str, sealed: Option<&[u8]>) -> Result<Vec<(String, String)>> {
    match sealed {
        None => Ok(Vec::new()),
        Some(s) => {
            let json = deps.kek.open_blob(id.as_bytes(), s)?;
            serde_json::from_slice(&json).map_err(|_| Error::Key(crate::keys::KeyError::Integrity))
        }
    }
}
