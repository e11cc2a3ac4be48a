//! Images stored with an asset (VOD covers, snapshots, sprites, WebVTT thumbnail tracks): extras
//! that never fail the media.

use std::collections::HashMap;

use std::sync::Arc;

use url::Url;

use crate::catalog::ImageRow;
use crate::error::{Error, fetch_failure};
use crate::fetch::ErrorClass;
use crate::model::{AssetState, Event, FailureReason, ImageKind};
use crate::seal::SealOptions;
use crate::sniff::{self, Content, MediaKind, Sniffer};
use crate::source::vod::{self as vodsrc};
use crate::store::{self};

use super::adopt::{Accept, adopt};
use super::lock::{Hold, blocking};
use super::{
    Ctx, Deps, JobResult, Stop, catalog_stop, check_on_disk, check_still_running, context, storage, store_stop,
};

/// Tries the missing images of a completed asset again (its media stays playable meanwhile);
/// returns how many are still missing. Images stored or still failing are recorded as they go,
/// with an [`Event::ImageMissing`] for each that fails again.
///
/// # Errors
/// `Error::Busy` when another job holds the asset, `Error::Failed` for a
/// failure that is not an image's own (storage I/O, the catalog, the content key).
pub(crate) async fn retry_images(deps: &Arc<Deps>, id: &str) -> crate::error::Result<usize> {
    let Some(hold) = Hold::acquire(deps, id).await? else {
        return Err(Error::Busy(id.to_owned()));
    };
    let stopped = |stop: Stop| match stop {
        Stop::Failed(reason) | Stop::Restart(reason) => Error::Failed(reason),
        Stop::External | Stop::Held => Error::InvalidState {
            id: id.to_owned(),
            state: AssetState::Completed,
            action: "retry its images (it changed meanwhile)",
        },
    };
    let row = deps.catalog.asset(id).await?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let ctx = Arc::new(context(deps, row, AssetState::Completed, hold).map_err(stopped)?);
    let r = images(&ctx).await;
    ctx.hold.idle().await;
    r.map_err(stopped)?;
    Ok(deps.catalog.images(id).await?.iter().filter(|i| !i.done).count())
}
/// Largest image (or thumbnail track) accepted.
const IMAGE_LIMIT: u64 = 32 << 20;
/// Current image URLs, replaced together when they expire.
struct ImageUrls {
    generation: u64,
    urls: HashMap<(ImageKind, u32), String>,
    /// Fresh sets fetched since an image was last stored.
    fruitless: u32,
}
/// Stores the asset's pending images (VOD covers, snapshots, sprites, WebVTT thumbnail tracks),
/// each sealed or plain like the rest of the asset. Expired image URLs are replaced with fresh
/// ones from VOD. Images are extras: one that still cannot be fetched is recorded as missing,
/// with its reason (and an event), and the asset completes without it; a resume of the completed
/// asset tries it again. Only a pause or a cancel stops the phase.
pub(super) async fn images(ctx: &Arc<Ctx>) -> JobResult {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let mut rows = ctx.deps.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    if adopt_images(ctx, &rows).await? > 0 {
        rows = ctx.deps.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    }
    let pending: Vec<ImageRow> = rows.iter().filter(|i| !i.done).cloned().collect();
    if pending.is_empty() {
        return verify_images(ctx, &rows).await;
    }
    // Thumbnail tracks point at sprites: stored ones are referred to by their local names.
    let sprites: Arc<Vec<(String, String)>> = Arc::new(
        rows.iter().filter(|i| i.kind == ImageKind::Sprite).map(|i| (i.uri.clone(), i.file.clone())).collect(),
    );
    let urls = Arc::new(tokio::sync::Mutex::new(ImageUrls {
        generation: 0,
        urls: rows.iter().map(|i| ((i.kind, i.idx), i.url.clone())).collect(),
        fruitless: 0,
    }));
    futures_util::stream::iter(pending)
        .map(|img| {
            let (ctx, urls, sprites) = (Arc::clone(ctx), Arc::clone(&urls), Arc::clone(&sprites));
            async move {
                check_still_running(&ctx).await?;
                match store_image(&ctx, &urls, &sprites, &img).await {
                    // What kept the image from being fetched or stored leaves it missing;
                    // failures of the vault itself (I/O, keys) stop the job.
                    Err(Stop::Failed(reason))
                        if !matches!(
                            reason,
                            FailureReason::Storage { .. }
                                | FailureReason::KeyMismatch { .. }
                                | FailureReason::SourceChanged { .. }
                        ) =>
                    {
                        image_missing(&ctx, &img, reason).await
                    }
                    other => other,
                }
            }
        })
        .buffer_unordered(ctx.parallel)
        .try_collect::<Vec<()>>()
        .await?;
    check_still_running(ctx).await?;
    let rows = ctx.deps.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    verify_images(ctx, &rows).await
}
/// Keeps the images an earlier process stored but did not record ([`adopt`]); returns how many.
async fn adopt_images(ctx: &Ctx, rows: &[ImageRow]) -> JobResult<usize> {
    let pending: Vec<&ImageRow> = rows.iter().filter(|i| !i.done).collect();
    let files = pending
        .iter()
        .map(|img| {
            let wanted = if img.kind == ImageKind::WebVtt { MediaKind::WebVtt } else { MediaKind::Image };
            (img.file.clone(), Box::new(move |s: &Sniffer| s.content() == Content::Media(wanted)) as Accept)
        })
        .collect();
    let found = adopt(ctx, files).await?;
    for (i, piece) in &found {
        let img = pending[*i];
        ctx.deps
            .catalog
            .commit_image(&ctx.id, img.kind, img.idx, piece.size, piece.sha256.as_deref())
            .await
            .map_err(catalog_stop)?;
    }
    Ok(found.len())
}
/// Records that an image could not be fetched, and tells the app.
async fn image_missing(ctx: &Ctx, img: &ImageRow, reason: FailureReason) -> JobResult {
    tracing::warn!(asset = %ctx.id, "{} is missing: {reason}", img.file);
    ctx.deps
        .catalog
        .fail_image(&ctx.id, img.kind, img.idx, &reason.to_json().map_err(|e| storage("failure record", e))?)
        .await
        .map_err(catalog_stop)?;
    ctx.deps.events.emit(Event::ImageMissing {
        id: ctx.id.clone(),
        kind: img.kind,
        index: img.idx,
        file: img.file.clone(),
        reason,
    });
    Ok(())
}
async fn store_image(
    ctx: &Ctx,
    urls: &tokio::sync::Mutex<ImageUrls>,
    sprites: &[(String, String)],
    img: &ImageRow,
) -> JobResult {
    let deps = &ctx.deps;
    let what = format!("image {}", img.file);
    let mut refreshes = 0;
    let (bytes, url) = loop {
        let (generation, url) = {
            let u = urls.lock().await;
            (u.generation, u.urls.get(&(img.kind, img.idx)).cloned().unwrap_or_else(|| img.url.clone()))
        };
        let parsed = Url::parse(&url)
            .map_err(|e| FailureReason::BadSource { message: format!("{what}: its URL does not parse ({e})") })?;
        match deps.source.http.get_small(&parsed, &ctx.headers, IMAGE_LIMIT, &deps.source.retry).await {
            Ok((bytes, _)) => break (bytes, url),
            Err(e) if e.class() == ErrorClass::Expired && refreshes < 2 => {
                let Some(vod) = &ctx.vod else {
                    return Err(Stop::Failed(fetch_failure(&what, &e)));
                };
                refreshes += 1;
                let mut u = urls.lock().await;
                if u.generation == generation {
                    // A refusal fresh URLs do not cure (hotlink protection, say) fails once,
                    // not once per image.
                    if u.fruitless >= 2 {
                        return Err(Stop::Failed(fetch_failure(&what, &e)));
                    }
                    u.fruitless += 1;
                    deps.source.vod.url_expired(&ctx.id).await;
                    let video_id = vod.lock().await.video_id.clone();
                    let fresh = vodsrc::fresh_image_urls(&deps.source, &video_id)
                        .await
                        .map_err(|e| Stop::Failed(vodsrc::failure(&e)))?;
                    deps.catalog.update_image_urls(&ctx.id, &fresh).await.map_err(catalog_stop)?;
                    for (kind, idx, url) in fresh {
                        u.urls.insert((kind, idx), url);
                    }
                    u.generation += 1;
                }
            }
            Err(e) => return Err(Stop::Failed(fetch_failure(&what, &e))),
        }
    };
    let (wanted, expected) = match img.kind {
        ImageKind::WebVtt => (MediaKind::WebVtt, "a WebVTT track"),
        _ => (MediaKind::Image, "a JPEG, PNG, GIF or WebP image"),
    };
    match sniff::identify(&bytes, true) {
        Content::Media(k) if k == wanted => {}
        got => {
            let got = match got {
                Content::Media(k) => k.to_string(),
                Content::NotMedia(what) => what.to_string(),
                Content::Hls => "an HLS playlist".into(),
                Content::Dash => "a DASH manifest".into(),
            };
            return Err(Stop::Failed(FailureReason::BadSource {
                message: format!("{what}: got {got}, not {expected}"),
            }));
        }
    }
    let data = if img.kind == ImageKind::WebVtt {
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| FailureReason::BadSource { message: format!("{what}: not UTF-8 text") })?;
        vodsrc::localize_vtt(&text, &url, sprites).into_bytes()
    } else {
        bytes.to_vec()
    };
    let (layout, id, file, mode, key) =
        (deps.layout.clone(), ctx.id.clone(), img.file.clone(), ctx.mode, ctx.key.clone());
    let stored = blocking(ctx, move || store::write_small(&layout, &id, &file, mode, key.as_deref(), &data))
        .await
        .map_err(|e| storage("internal error", e))?
        .map_err(|e| store_stop(ctx, &what, e))?;
    deps.catalog
        .commit_image(&ctx.id, img.kind, img.idx, stored.size, stored.sha256.as_deref())
        .await
        .map_err(catalog_stop)?;
    urls.lock().await.fruitless = 0;
    Ok(())
}
/// Every image row is stored, with its file of the size recorded, or recorded as missing.
async fn verify_images(ctx: &Ctx, rows: &[ImageRow]) -> JobResult {
    let mut files = Vec::with_capacity(rows.len());
    for i in rows {
        if !i.done && i.failure.is_some() {
            continue;
        }
        let size = i
            .size
            .filter(|_| i.done)
            .ok_or_else(|| Stop::Failed(FailureReason::Storage { message: format!("{} is not stored", i.file) }))?;
        // Images are small files, sealed with the default chunk size (`store::write_small`).
        files.push((i.file.clone(), size, SealOptions::default().chunk_size));
    }
    check_on_disk(ctx, files).await
}
