//! HLS downloads: workers fetch pieces in parallel (each one as `piece` says), a piece a player
//! waits for at once and the queue moved to where the player is; a committer makes finished
//! pieces durable in batches and records them. For a paused or failed asset a player watches,
//! only what players ask for is fetched.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use crate::catalog::{AssetRow, DoneSegment, RenditionRow, SegmentRow};
use crate::hls::media::MediaPlaylist;
use crate::model::{Event, FailureReason, RenditionRole, SegmentKind};
use crate::plan::{LOCAL_MPD, LocalRendition, local_playlists, stored_playlist};
use crate::sniff::Sniffer;
use crate::store::{self, StoreError};

use super::adopt::{Accept, adopt};
use super::lock::blocking;
use super::piece::{Durable, Finished, KeyCache, check_content, fetch_piece};
use super::progress::Tracker;
use super::refresh::refresh;
use super::{Ctx, JobResult, Stop, catalog_stop, check_still_running, load, storage, verify_stored};

pub(super) struct RPlan {
    pub(super) idx: u32,
    pub(super) role: RenditionRole,
    pub(super) dir: String,
    pub(super) base: Url,
    pub(super) attrs: String,
    pub(super) playlist: MediaPlaylist,
}
pub(super) type Plan = RwLock<Vec<RPlan>>;
fn load_plan(rows: &[RenditionRow]) -> JobResult<Vec<RPlan>> {
    rows.iter()
        .map(|r| {
            let playlist = match r.playlist {
                None => return Err(FailureReason::Storage { message: "missing playlist".into() }.into()),
                Some(_) => stored_playlist(r).map_err(|message| FailureReason::BadSource { message })?,
            };
            let base = Url::parse(&r.url)
                .map_err(|e| FailureReason::Storage { message: format!("bad URL in catalog: {e}") })?;
            Ok(RPlan { idx: r.idx, role: r.kind, dir: r.dir.clone(), base, attrs: r.attrs.clone(), playlist })
        })
        .collect()
}
pub(super) async fn hls(ctx: &Arc<Ctx>) -> JobResult {
    let deps = &ctx.deps;
    {
        let (_, rows, segs) = load(ctx).await?;
        if adopt_finished(ctx, &rows, &segs).await? > 0 {
            tracing::debug!(asset = %ctx.id, "kept pieces an earlier process finished");
        }
    }
    let (asset, rows, segs) = load(ctx).await?;
    let plan: Arc<Plan> = Arc::new(RwLock::new(load_plan(&rows)?));
    let (done_bytes, done_count) = stored(&segs);
    if ctx.vod.is_some() && segs.iter().any(|s| !s.done) && (done_count > 0 || ctx.urls_expired()) {
        // Resuming a VOD download: fresh URLs, and a check that it is still the same transcode.
        refresh(ctx, Some(&plan), ctx.generation.load(Ordering::SeqCst), 0).await?;
    }
    let tracker = tracker(ctx, &asset, &segs);
    // The rows move into the queue: a 6-hour stream has 10,800 of them (issue 14).
    let mut pending: VecDeque<SegmentRow> = segs.into_iter().filter(|s| !s.done).collect();
    pending.shrink_to_fit(); // a resume keeps room only for what is left
    drop(rows);
    if !pending.is_empty() {
        // Check free space against what is still expected, before fetching anything.
        let (expected, _) = tracker.expected();
        let remaining = expected.map_or(0, |e| e.saturating_sub(done_bytes));
        let needed = remaining + remaining / 20;
        let root = deps.layout.root().to_owned();
        let available = blocking(ctx, move || store::available_space(&root))
            .await
            .map_err(|e| storage("internal error", e))?
            .map_err(|e| storage("free space", e))?;
        if needed > available {
            return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
        }
        tracing::debug!(asset = %ctx.id, pieces = pending.len(), "fetching");
        run_workers(ctx, &plan, &tracker, pending, Order::Download).await?;
        tracing::debug!(asset = %ctx.id, "every piece committed");
    }
    finish_hls(ctx, &plan, &tracker).await
}
/// For a paused or failed asset that a player is watching: fetches the pieces the player asks
/// for, and nothing else, until no player watches. The asset's state is left as it is.
pub(super) async fn for_players(ctx: &Arc<Ctx>) -> JobResult {
    let (asset, rows, segs) = load(ctx).await?;
    let plan: Arc<Plan> = Arc::new(RwLock::new(load_plan(&rows)?));
    let tracker = tracker(ctx, &asset, &segs);
    let pending: VecDeque<SegmentRow> = segs.into_iter().filter(|s| !s.done).collect();
    run_workers(ctx, &plan, &tracker, pending, Order::PlayersOnly).await
}
/// Bytes and pieces of `segs` that are stored.
fn stored(segs: &[SegmentRow]) -> (u64, u64) {
    let done = segs.iter().filter(|s| s.done);
    (done.clone().filter_map(|s| s.size).sum(), done.count() as u64)
}
/// The progress of a job over `segs`, starting from what is stored.
fn tracker(ctx: &Ctx, asset: &AssetRow, segs: &[SegmentRow]) -> Arc<Tracker> {
    // Gaps (EXT-X-GAP, a DASH track absent from a period) are done with no bytes.
    let gaps = segs.iter().filter(|s| s.done && s.kind == SegmentKind::Media && s.size == Some(0)).count();
    Arc::new(
        Tracker::new(
            ctx.deps.events.clone(),
            ctx.id.clone(),
            segs.len() as u64,
            stored(segs),
            (asset.bytes_expected, asset.expected_exact),
        )
        .with_empty_segments(gaps as u64),
    )
}
/// What a job's workers fetch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Every pending piece, those players ask for first.
    Download,
    /// Only what players ask for, while one watches; a piece that fails is the player's to
    /// ask for again (it got a 503), not the end of the job.
    PlayersOnly,
}
/// Keeps the pieces an earlier process finished but did not record ([`adopt`]), committing them
/// like fetched ones. Returns how many.
async fn adopt_finished(ctx: &Ctx, rows: &[RenditionRow], segs: &[SegmentRow]) -> JobResult<usize> {
    let pending: Vec<(&SegmentRow, RenditionRole)> = segs
        .iter()
        .filter(|s| !s.done)
        .filter_map(|s| rows.iter().find(|r| r.idx == s.rendition).map(|r| (s, r.kind)))
        .collect();
    let files = pending
        .iter()
        .map(|(s, role)| {
            let role = *role;
            (s.file.clone(), Box::new(move |sn: &Sniffer| check_content(role, sn).is_ok()) as Accept)
        })
        .collect();
    let adopted: Vec<DoneSegment> = adopt(ctx, files)
        .await?
        .into_iter()
        .map(|(i, found)| DoneSegment {
            rendition: pending[i].0.rendition,
            kind: pending[i].0.kind,
            idx: pending[i].0.idx,
            size: found.size,
            sha256: found.sha256,
        })
        .collect();
    if !adopted.is_empty() {
        ctx.deps.catalog.commit_segments(&ctx.id, &adopted).await.map_err(catalog_stop)?;
    }
    Ok(adopted.len())
}
async fn run_workers(
    ctx: &Arc<Ctx>,
    plan: &Arc<Plan>,
    tracker: &Arc<Tracker>,
    pending: VecDeque<SegmentRow>,
    order: Order,
) -> JobResult {
    let workers_n = match order {
        Order::Download => ctx.parallel.min(pending.len()).max(1),
        Order::PlayersOnly => 0,
    };
    let queue = Arc::new(Mutex::new(pending));
    let keys = Arc::new(KeyCache::default());
    let (tx, rx) = mpsc::channel::<Finished>(256);
    // Pieces that are durable but whose rows are not committed yet (the commit failed, e.g.
    // SQLite found the disk full): committed once more after the workers stop.
    let uncommitted: Uncommitted = Arc::new(Mutex::new(Vec::new()));
    // The committer is this function's own future, not a task: when the job stops (or is
    // stopped), it stops with it, and nothing is recorded after the job is gone.
    let committer = committer(Arc::clone(ctx), Arc::clone(tracker), rx, Arc::clone(&uncommitted));
    tokio::pin!(committer);
    let mut workers = JoinSet::new();
    // A piece a player waits for is fetched at once by a worker of its own; so is each piece
    // asked for before this job started.
    let totals: HashMap<u32, usize> = plan
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|r| (r.idx, r.playlist.segments.len()))
        .collect();
    let spawn_wanted = |workers: &mut JoinSet<JobResult>| {
        let wanted = ctx.live.wanted();
        if wanted.is_empty() {
            return;
        }
        let taken = jump_to(&mut queue.lock().unwrap_or_else(PoisonError::into_inner), &wanted, &totals);
        for seg in taken {
            tracing::debug!(asset = %ctx.id, "{} asked for by a player", seg.file);
            let (ctx, plan, tracker, keys, tx, queue) = (
                Arc::clone(ctx),
                Arc::clone(plan),
                Arc::clone(tracker),
                Arc::clone(&keys),
                tx.clone(),
                Arc::clone(&queue),
            );
            workers.spawn(async move {
                let finished = match fetch_piece(&ctx, &plan, &keys, &tracker, &seg).await {
                    // Fetching for players, a piece that fails is the player's 503; it stays
                    // in the queue for the player's next request.
                    Err(Stop::Failed(reason)) if order == Order::PlayersOnly => {
                        tracing::debug!(asset = %ctx.id, "{} for a player: {reason}", seg.file);
                        queue.lock().unwrap_or_else(PoisonError::into_inner).push_front(seg);
                        return Ok(());
                    }
                    other => other?,
                };
                tx.send(finished).await.map_err(|_| Stop::External)
            });
        }
    };
    spawn_wanted(&mut workers);
    for _ in 0..workers_n {
        let (ctx, plan, tracker, queue, keys, tx) =
            (Arc::clone(ctx), Arc::clone(plan), Arc::clone(tracker), Arc::clone(&queue), Arc::clone(&keys), tx.clone());
        workers.spawn(async move {
            loop {
                // Held back by the scheduler: finish nothing new (pieces under way are recorded).
                if ctx.draining() {
                    return Ok(());
                }
                let Some(seg) = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front() else {
                    return Ok(());
                };
                let finished = fetch_piece(&ctx, &plan, &keys, &tracker, &seg).await?;
                if tx.send(finished).await.is_err() {
                    return Err(Stop::External);
                }
            }
        });
    }

    let mut failure: Option<Stop> = None;
    let mut committer_result = None;
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    while failure.is_none() {
        tokio::select! {
            () = ctx.live.want_signal() => spawn_wanted(&mut workers),
            // Fetching for players ends when none watches and nothing asked for is under way.
            _ = idle.tick(), if order == Order::PlayersOnly => {
                if workers.is_empty() && !ctx.live.watched() {
                    break;
                }
            }
            next = workers.join_next(), if order == Order::Download || !workers.is_empty() => match next {
                None => {
                    tracing::debug!(asset = %ctx.id, "every piece received");
                    break;
                }
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(stop))) => failure = Some(stop),
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => failure = Some(storage("internal error", e)),
            },
            r = &mut committer, if committer_result.is_none() => {
                if let Err(stop) = r {
                    failure = Some(stop);
                }
                committer_result = Some(());
            }
        }
    }
    drop(tx);
    workers.abort_all();
    while workers.join_next().await.is_some() {}
    // The aborted workers' writers see their feeds close and give up; finished pieces the
    // committer will not record become durable (and are adopted by the next run).
    ctx.hold.idle().await;
    // Commit what finished before the failure: nothing stored is lost.
    if committer_result.is_none() {
        let r = committer.await;
        if failure.is_none() {
            r?;
        }
    }
    // The workers are stopped and their partial files deleted; on a full disk the catalog's
    // reserve is released too: that space is what lets these rows (and the failure) be recorded.
    // Nothing durable is forgotten.
    if matches!(failure, Some(Stop::Failed(FailureReason::StorageFull { .. }))) {
        let layout = ctx.deps.layout.clone();
        let _ = blocking(ctx, move || store::release_reserve(&layout)).await;
    }
    let pending = std::mem::take(&mut *uncommitted.lock().unwrap_or_else(PoisonError::into_inner));
    if !pending.is_empty() {
        match ctx.deps.catalog.commit_segments(&ctx.id, &pending).await {
            Ok(()) => {
                let bytes: u64 = pending.iter().map(|d| d.size).sum();
                tracker.committed(bytes, pending.len() as u64, bytes);
            }
            Err(e) => {
                tracing::warn!(asset = %ctx.id, "{} stored pieces could not be recorded: {e}", pending.len())
            }
        }
    }
    match failure {
        Some(stop) => Err(stop),
        None if order == Order::Download
            && ctx.draining()
            && !queue.lock().unwrap_or_else(PoisonError::into_inner).is_empty() =>
        {
            Err(Stop::Held)
        }
        None => Ok(()),
    }
}
/// Takes the pieces players wait for out of `queue`, and moves the rest of the queue to where
/// the player is: init sections first, then every rendition's pieces from the same point in
/// the presentation as the (last) wanted piece, then what that skipped. `totals` is each
/// rendition's number of media segments.
fn jump_to(queue: &mut VecDeque<SegmentRow>, wanted: &[String], totals: &HashMap<u32, usize>) -> Vec<SegmentRow> {
    let mut taken = Vec::new();
    let mut at: Option<f64> = None;
    queue.retain(|s| {
        if wanted.contains(&s.file) {
            if s.kind == SegmentKind::Media {
                let total = totals.get(&s.rendition).copied().unwrap_or(1).max(1);
                at = Some(s.idx as f64 / total as f64);
            }
            taken.push(s.clone());
            false
        } else {
            true
        }
    });
    if let Some(at) = at {
        let rank = |s: &SegmentRow| match s.kind {
            SegmentKind::Init => 0,
            _ => {
                let total = totals.get(&s.rendition).copied().unwrap_or(1).max(1);
                if s.idx as f64 + 1.0 > at * total as f64 { 1 } else { 2 }
            }
        };
        queue.make_contiguous().sort_by_key(rank);
    }
    taken
}
/// Makes finished pieces durable and commits them in batches; watches for the asset's state
/// being changed by someone else.
type Uncommitted = Arc<Mutex<Vec<DoneSegment>>>;
async fn committer(
    ctx: Arc<Ctx>,
    tracker: Arc<Tracker>,
    mut rx: mpsc::Receiver<Finished>,
    uncommitted: Uncommitted,
) -> JobResult {
    let mut batch: Vec<Finished> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_check = Instant::now();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(f) => {
                    batch.push(f);
                    if batch.len() >= 64 {
                        flush(&ctx, &tracker, &mut batch, &uncommitted).await?;
                    }
                }
                None => return flush(&ctx, &tracker, &mut batch, &uncommitted).await,
            },
            _ = tick.tick() => {
                flush(&ctx, &tracker, &mut batch, &uncommitted).await?;
                if last_check.elapsed() >= Duration::from_millis(500) {
                    last_check = Instant::now();
                    check_still_running(&ctx).await?;
                }
            }
        }
    }
}
/// Waits for the batch's pieces to be durable, makes their renames durable, and commits them in
/// one transaction. A piece that failed does not stop the others from being recorded: the
/// failure is returned after they are.
async fn flush(ctx: &Ctx, tracker: &Tracker, batch: &mut Vec<Finished>, uncommitted: &Uncommitted) -> JobResult {
    if batch.is_empty() {
        return Ok(());
    }
    let mut done = Vec::with_capacity(batch.len());
    let mut paths = Vec::with_capacity(batch.len());
    let mut played = Vec::new();
    let mut failed = None;
    for f in batch.drain(..) {
        match f.durable.await {
            Ok(Ok(Durable { piece, for_playback })) => {
                if for_playback {
                    played.push(f.file);
                }
                paths.push(piece.path);
                done.push(DoneSegment {
                    rendition: f.rendition,
                    kind: f.kind,
                    idx: f.idx,
                    size: piece.size,
                    sha256: piece.sha256,
                });
            }
            Ok(Err(StoreError::Full)) => {
                failed.get_or_insert_with(|| ctx.storage_full(0));
            }
            Ok(Err(e)) => {
                failed.get_or_insert_with(|| storage("storing a piece", e));
            }
            Err(e) => {
                failed.get_or_insert_with(|| storage("internal error", e));
            }
        }
    }
    if !paths.is_empty() {
        // One fsync per directory makes the batch's renames durable.
        match blocking(ctx, move || store::sync_dirs(&paths)).await {
            Ok(Ok(())) => {}
            Ok(Err(StoreError::Full)) => return Err(ctx.storage_full(0)),
            Ok(Err(e)) => return Err(storage("syncing directories", e)),
            Err(e) => return Err(storage("internal error", e)),
        }
    }
    let done = {
        let mut u = uncommitted.lock().unwrap_or_else(PoisonError::into_inner);
        u.extend(done);
        u.clone()
    };
    if !done.is_empty() {
        #[cfg(feature = "testing")]
        crate::testing::commit_delay(ctx.deps.layout.root()).await;
        ctx.deps.catalog.commit_segments(&ctx.id, &done).await.map_err(catalog_stop)?;
        uncommitted.lock().unwrap_or_else(PoisonError::into_inner).clear();
        let bytes: u64 = done.iter().map(|d| d.size).sum();
        tracker.committed(bytes, done.len() as u64, bytes);
        ctx.fruitless.store(0, Ordering::Relaxed);
    }
    for file in played {
        ctx.deps.events.emit(Event::FetchedForPlayback { id: ctx.id.clone(), file });
    }
    match failed {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}
async fn finish_hls(ctx: &Ctx, plan: &Plan, tracker: &Tracker) -> JobResult {
    let deps = &ctx.deps;
    let playlists = {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        let renditions: Vec<LocalRendition<'_>> = p
            .iter()
            .map(|r| LocalRendition { role: r.role, dir: &r.dir, attrs: &r.attrs, playlist: &r.playlist })
            .collect();
        local_playlists(&renditions, tracker.committed_totals().0)
    };
    let (layout, id, mode, key) = (deps.layout.clone(), ctx.id.clone(), ctx.mode, ctx.key.clone());
    let names: Vec<String> = playlists.iter().map(|(n, _)| n.clone()).collect();
    let written = blocking(ctx, move || {
        for (name, text) in &playlists {
            store::write_small(&layout, &id, name, mode, key.as_deref(), text.as_bytes())?;
        }
        Ok::<_, StoreError>(())
    });
    written.await.map_err(|e| storage("internal error", e))?.map_err(|e| match e {
        StoreError::Full => ctx.storage_full(0),
        other => storage("writing playlists", other),
    })?;
    verify_stored(ctx).await?;
    let entry = if names.iter().any(|n| n == LOCAL_MPD) { LOCAL_MPD } else { "index.m3u8" };
    deps.catalog.set_entry(&ctx.id, entry).await.map_err(catalog_stop)?;
    let (bytes, _) = tracker.committed_totals();
    deps.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
    tracker.set_expected(Some(bytes), true);
    tracker.emit(true);
    Ok(())
}
