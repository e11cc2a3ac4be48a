//! Fresh URLs when signed ones expire: from the app's hook or from VOD, with the playlists read
//! again and matched to the plan by media sequence number.

use std::collections::HashMap;

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use url::Url;

use crate::error::error_to_failure;
use crate::hls::media::MediaPlaylist;
use crate::model::{FailureReason, RefreshRequest};
use crate::source::vod::{self as vodsrc, VodState};
use crate::source::{self, choose, parse_url, resolve};

use super::hls::Plan;
use super::{Ctx, JobResult, Stop, catalog_stop, storage};

/// Gets a fresh source URL from the app and re-reads the playlists. Only one refresh runs at a
/// time; workers that saw the same expired generation share it.
pub(super) async fn refresh(ctx: &Ctx, plan: Option<&Plan>, seen: u64, status: u16) -> JobResult {
    let _guard = ctx.refresh_lock.lock().await;
    if ctx.generation.load(Ordering::SeqCst) != seen {
        return Ok(());
    }
    if ctx.fruitless.fetch_add(1, Ordering::SeqCst) >= 3 {
        let what = if status == 0 { "URLs expired".to_owned() } else { format!("HTTP {status}") };
        return Err(Stop::Failed(FailureReason::UrlExpired {
            message: format!("{what} again after 3 fresh URLs without progress"),
        }));
    }
    let url = match &ctx.vod {
        Some(vod) => fresh_vod_url(ctx, vod).await?,
        None => {
            let expired = |m: &str| Stop::Failed(FailureReason::UrlExpired { message: format!("HTTP {status}; {m}") });
            let hook = ctx.deps.refresher.get().ok_or_else(|| expired("no refresh hook is set"))?;
            let current = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let asked = hook.refresh(RefreshRequest {
                asset_id: ctx.id.clone(),
                source_url: current,
                status,
                title: ctx.title.clone(),
            });
            // A hook that hangs fails the asset (resumable) instead of holding it forever.
            let limit = ctx.deps.settings.refresh_timeout;
            let fresh = tokio::time::timeout(limit, asked)
                .await
                .map_err(|_| expired(&format!("the refresh hook did not answer within {} s", limit.as_secs_f64())))?
                .ok_or_else(|| expired("the refresh hook gave no new URL"))?;
            parse_url(&fresh).map_err(|_| expired("the refresh hook returned an invalid URL"))?
        }
    };
    tracing::info!(asset = %ctx.id, "source refreshed");
    if let Some(plan) = plan {
        if let Err(stop) = refresh_plan(ctx, plan, &url).await {
            if matches!(stop, Stop::Restart(_)) {
                // Start over from the fresh source, not the expired one.
                ctx.deps.catalog.set_source_url(&ctx.id, url.as_str()).await.map_err(catalog_stop)?;
                *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = url.to_string();
            }
            return Err(stop);
        }
    } else {
        ctx.deps.catalog.update_rendition_source(&ctx.id, 0, url.as_str(), None).await.map_err(catalog_stop)?;
    }
    ctx.deps.catalog.set_source_url(&ctx.id, url.as_str()).await.map_err(catalog_stop)?;
    *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = url.to_string();
    ctx.generation.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
/// Asks VOD for the asset's stream again (the app may hand out fresh credentials first). A
/// different transcode restarts the download from it.
async fn fresh_vod_url(ctx: &Ctx, vod: &tokio::sync::Mutex<VodState>) -> JobResult<Url> {
    let mut state = vod.lock().await;
    let output = ctx.request.vod.as_ref().map(|v| v.output_type).unwrap_or_default();
    let r = vodsrc::refresh(&ctx.deps.source, &ctx.id, &state, output)
        .await
        .map_err(|e| Stop::Failed(vodsrc::failure(&e)))?;
    let json = r.state.to_json().map_err(|e| storage("VOD record", e))?;
    ctx.deps.catalog.set_vod(&ctx.id, &json).await.map_err(catalog_stop)?;
    ctx.vod_refresh_at.store(r.state.expires_at, Ordering::SeqCst);
    *state = r.state;
    if let Some(why) = r.changed {
        ctx.deps.catalog.set_source_url(&ctx.id, r.url.as_str()).await.map_err(catalog_stop)?;
        *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = r.url.to_string();
        return Err(Stop::Restart(FailureReason::SourceChanged { message: why }));
    }
    Ok(r.url)
}
/// Re-reads the playlists from a fresh source and matches them to the plan by media sequence
/// number; a different timeline restarts the download.
async fn refresh_plan(ctx: &Ctx, plan: &Plan, url: &Url) -> JobResult {
    let deps = &ctx.deps;
    let resolved =
        resolve(&deps.source, url, &ctx.headers).await.map_err(|e| error_to_failure("refreshed source", &e))?;
    let mut choice = choose(&resolved, &ctx.request).map_err(|e| error_to_failure("refreshed source", &e))?;
    let mut updates = Vec::new();
    {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        if choice.renditions.len() != p.len() {
            return Err(Stop::Restart(FailureReason::SourceChanged {
                message: "the refreshed source offers different renditions".into(),
            }));
        }
        for (old, new) in p.iter().zip(&choice.renditions) {
            let stored = serde_json::from_str::<serde_json::Value>(&old.attrs).ok();
            let same = old.role == new.role
                && match &new.dash {
                    // A DASH track: the same representation, whatever the MPD's URL now is (a
                    // path-signed CDN, another edge).
                    Some(track) => stored.as_ref().and_then(|a| a["dash"]["rep_id"].as_str()) == Some(&track.rep_id),
                    None => {
                        crate::identity::strip_signature(&new.url) == crate::identity::strip_signature(&old.base)
                            || stored.is_some_and(|a| a == new.attrs)
                    }
                };
            if !same {
                return Err(Stop::Restart(FailureReason::SourceChanged {
                    message: format!("the refreshed source's {} rendition is different", old.role),
                }));
            }
            updates.push(old.idx);
        }
    }
    let playlists = source::playlists(&deps.source, &resolved, &mut choice, &ctx.headers, ctx.request.range)
        .await
        .map_err(|e| error_to_failure("refreshed playlist", &e))?;
    let fetched: Vec<_> =
        updates.into_iter().zip(playlists).map(|(idx, f)| (idx, f.text, f.base, f.playlist)).collect();
    {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        for (idx, _, _, pl) in &fetched {
            let old = &p[*idx as usize].playlist;
            if let Some(why) = timeline_difference(old, pl) {
                return Err(Stop::Restart(FailureReason::SourceChanged {
                    message: format!("{} playlist: {why}", p[*idx as usize].role),
                }));
            }
        }
    }
    for (idx, text, base, pl) in fetched {
        let vars = pl.variables.to_json();
        let playlist = Some((text.as_str(), vars.as_str()));
        deps.catalog.update_rendition_source(&ctx.id, idx, base.as_str(), playlist).await.map_err(catalog_stop)?;
        let mut p = plan.write().unwrap_or_else(PoisonError::into_inner);
        p[idx as usize].base = base;
        p[idx as usize].playlist = pl;
    }
    Ok(())
}
/// Whether two versions of a media playlist describe the same pieces, matched by media sequence
/// number.
fn timeline_difference(old: &MediaPlaylist, new: &MediaPlaylist) -> Option<String> {
    if old.maps.len() != new.maps.len() {
        return Some("initialization sections differ".into());
    }
    let by_msn: HashMap<u64, &crate::hls::media::Segment> = new.segments.iter().map(|s| (s.msn, s)).collect();
    if new.segments.len() != old.segments.len() {
        return Some(format!("{} segments instead of {}", new.segments.len(), old.segments.len()));
    }
    for s in &old.segments {
        let Some(n) = by_msn.get(&s.msn) else {
            return Some(format!("media sequence {} is gone", s.msn));
        };
        if n.byte_range != s.byte_range || (n.duration - s.duration).abs() > 0.01 || n.map != s.map {
            return Some(format!("media sequence {} differs", s.msn));
        }
    }
    None
}
