//! Progressive files in byte-range pieces: when the origin answers ranges with the file's length
//! and a validator (ETag or Last-Modified), the file is cut into pieces fetched in parallel like
//! segments, each written at its offset as its chunks fill ([`RangeFile`]), each resumable from
//! its last whole chunk, and all checked against the one validator and length: an answer for
//! another version of the file starts the download over (`source_changed`). Durable pieces are
//! recorded in the catalog, so a resume (after a pause or a kill) fetches only the others. A
//! player waiting for a piece gets it first.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use super::lock::blocking;
use super::progress::Tracker;
use super::progressive::{FileChecks, check_file_head};
use super::refresh::refresh;
use super::{AttemptError, Ctx, JobResult, Stop, catalog_stop, check_still_running, status_of, storage, store_stop};
use crate::catalog::{DoneSegment, SegmentRow};
use crate::error::fetch_failure;
use crate::fetch::{ErrorClass, FetchError, Request, Retry};
use crate::hls::media::ByteRange;
use crate::live::piece_name;
use crate::model::{Event, FailureReason, SegmentKind};
use crate::sniff;
use crate::source::vod::VodState;
use crate::store::{RangeFile, Readable, StoreError};

/// What the catalog keeps of a file downloaded in pieces (`segments.pieces`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Pieces {
    /// Bytes per piece (the last may be shorter).
    pub(super) piece: u64,
    /// The file's length.
    pub(super) len: u64,
    /// The validator every piece was fetched against.
    pub(super) validator: String,
    /// Pieces that are durable.
    pub(super) done: BTreeSet<u64>,
}

impl Pieces {
    fn count(&self) -> u64 {
        self.len.div_ceil(self.piece)
    }

    fn range(&self, k: u64) -> (u64, u64) {
        (k * self.piece, ((k + 1) * self.piece).min(self.len))
    }

    fn done_bytes(&self) -> u64 {
        self.done.iter().map(|&k| self.range(k).1 - self.range(k).0).sum()
    }
}

/// Whether `url` can be fetched in pieces: its answer to `Range: bytes=0-0` has the file's length
/// and a validator. `None`: fetch it on one connection (no ranges, no validator, a file of one
/// piece or less).
pub(super) async fn probe(ctx: &Ctx, url: &Url, piece: u64) -> Result<Option<(u64, String)>, FetchError> {
    let request = Request { range: Some(ByteRange { offset: 0, length: 1 }), ..Request::get(url, &ctx.headers) };
    let body = ctx.deps.source.http.open(request).await?;
    Ok(match (body.partial, body.total_size, body.validator) {
        (true, Some(len), Some(v)) if len > piece => Some((len, v)),
        _ => None,
    })
}

/// The piece size: `wanted` rounded to whole chunks (at least one).
pub(super) fn piece_size(wanted: u64, chunk: u32) -> u64 {
    let c = u64::from(chunk);
    (wanted / c).max(1) * c
}

/// A piece being fetched: the bytes of it written so far (whole chunks) survive failed attempts,
/// so a retry asks for the rest only and no chunk is written twice.
struct Work {
    k: u64,
    have: u64,
}

/// Downloads the file in pieces (`state` as recorded, or new), then checks it whole and stores it.
/// With `players_only` (a paused or failed asset a player watches), fetches only the pieces
/// players ask for, until none watches, and leaves the file incomplete.
pub(super) async fn download_pieces(
    ctx: &Arc<Ctx>,
    seg: &SegmentRow,
    url: Url,
    mut state: Pieces,
    tracker: &Arc<Tracker>,
    players_only: bool,
) -> JobResult {
    let deps = &ctx.deps;
    // Free space for what is not stored yet (and, in Encrypted mode, for the kept pieces sealed
    // again into a new file before the old one goes).
    let mut needed = state.len - state.done_bytes();
    if ctx.key.is_some() {
        needed += state.done_bytes();
    }
    let root = deps.layout.root().to_owned();
    let available = blocking(ctx, move || crate::store::available_space(&root))
        .await
        .map_err(|e| storage("free space", e))?
        .map_err(|e| storage("free space", e))?;
    if needed + needed / 20 > available {
        return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
    }
    let keep: Vec<(u64, u64)> = state.done.iter().map(|&k| state.range(k)).collect();
    let (layout, id, name, key, options, len) =
        (deps.layout.clone(), ctx.id.clone(), seg.file.clone(), ctx.key.clone(), ctx.seal_options(), state.len);
    let opened = blocking(ctx, move || RangeFile::open(&layout, &id, &name, key.as_deref(), options, len, &keep));
    let (file, kept) =
        opened.await.map_err(|e| storage("internal error", e))?.map_err(|e| store_stop(ctx, "opening the file", e))?;
    let file = Arc::new(file);
    state.done = kept.iter().map(|&(a, _)| a / state.piece).collect();
    // Players read the written pieces meanwhile (until the job ends: then the stored file).
    let readable = Arc::new(Readable { file: Arc::clone(&file), piece: state.piece });
    let done: Vec<u64> = state.done.iter().copied().collect();
    ctx.live.set_part(&seg.file, Some(readable), &done);
    let _shown = Shown { ctx, file: seg.file.clone() };
    let json = serde_json::to_string(&state).map_err(|e| storage("pieces", e))?;
    deps.catalog.set_pieces(&ctx.id, &json, state.done_bytes(), &state.validator).await.map_err(catalog_stop)?;
    tracker.set_committed(state.done_bytes(), 0);

    let count = state.count();
    let pending: VecDeque<Work> = (0..count).filter(|k| !state.done.contains(k)).map(|k| Work { k, have: 0 }).collect();
    let queue = Arc::new(Mutex::new(pending));
    let shared = Arc::new(Shared { state: Mutex::new(state), file: Arc::clone(&file), name: seg.file.clone() });
    let (tx, mut rx) = mpsc::channel::<u64>(64);
    let mut workers = JoinSet::new();
    // A piece a player waits for (a seek, the `moov` at the end of an MP4) is fetched at once on
    // a worker of its own, and the queue moves on from there.
    let spawn_wanted = |workers: &mut JoinSet<JobResult>| {
        let prefix = format!("{}#", seg.file);
        let wanted: Vec<u64> = ctx.live.wanted().iter().filter_map(|w| w.strip_prefix(&prefix)?.parse().ok()).collect();
        let taken = jump_to(&mut queue.lock().unwrap_or_else(PoisonError::into_inner), &wanted, count);
        for work in taken {
            tracing::debug!(asset = %ctx.id, "piece {} asked for by a player", work.k);
            let (ctx, shared, tracker, tx, url, queue) = (
                Arc::clone(ctx),
                Arc::clone(&shared),
                Arc::clone(tracker),
                tx.clone(),
                url.clone(),
                Arc::clone(&queue),
            );
            workers.spawn(async move {
                let (k, mut work, mut url) = (work.k, work, url);
                match fetch_piece(&ctx, &shared, &tracker, &mut url, &mut work).await {
                    // Fetching for players, a piece that fails is the player's 503, not the end:
                    // it stays queued (with what it got) for the player's next request.
                    Err(Stop::Failed(reason)) if players_only => {
                        tracing::debug!(asset = %ctx.id, "piece {k} for a player: {reason}");
                        queue.lock().unwrap_or_else(PoisonError::into_inner).push_front(work);
                        return Ok(());
                    }
                    other => other?,
                }
                tx.send(k).await.map_err(|_| Stop::External)
            });
        }
    };
    spawn_wanted(&mut workers);
    for _ in 0..if players_only { 0 } else { ctx.parallel.max(1) } {
        let (ctx, queue, shared, tracker, tx, url) =
            (Arc::clone(ctx), Arc::clone(&queue), Arc::clone(&shared), Arc::clone(tracker), tx.clone(), url.clone());
        workers.spawn(async move {
            let mut url = url;
            loop {
                let Some(work) = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front() else {
                    return Ok(());
                };
                let k = work.k;
                let mut work = work;
                fetch_piece(&ctx, &shared, &tracker, &mut url, &mut work).await?;
                if tx.send(k).await.is_err() {
                    return Err(Stop::External);
                }
            }
        });
    }

    // Pieces are made durable and recorded in batches: every 250 ms, one fdatasync and one
    // catalog write for all pieces finished meanwhile.
    let mut finished: Vec<u64> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_check = Instant::now();
    let mut failure: Option<Stop> = None;
    // Until every worker is done (pieces they finished are still in `rx`: taken after).
    while failure.is_none() && (!workers.is_empty() || (players_only && ctx.live.watched())) {
        tokio::select! {
            () = ctx.live.want_signal() => spawn_wanted(&mut workers),
            Some(k) = rx.recv() => finished.push(k),
            next = workers.join_next(), if !workers.is_empty() => match next {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(stop))) => failure = Some(stop),
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => failure = Some(storage("internal error", e)),
            },
            _ = tick.tick() => {
                if let Err(stop) = record(ctx, &shared, tracker, &mut finished).await {
                    failure = Some(stop);
                }
                if last_check.elapsed() >= Duration::from_millis(500) {
                    last_check = Instant::now();
                    if let Err(stop) = check_still_running(ctx).await {
                        failure = Some(stop);
                    }
                }
            }
        }
    }
    drop(tx);
    workers.abort_all();
    while workers.join_next().await.is_some() {}
    ctx.hold.idle().await;
    while let Ok(k) = rx.try_recv() {
        finished.push(k);
    }
    // What finished before a failure is recorded: nothing stored is lost.
    let recorded = record(ctx, &shared, tracker, &mut finished).await;
    if let Some(stop) = failure {
        if matches!(stop, Stop::Failed(FailureReason::BadSource { .. })) {
            // Not the file (an error page where media should be): nothing of it is kept.
            drop(shared);
            let _ = blocking(ctx, move || file.discard()).await;
            ctx.deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
        }
        return Err(stop);
    }
    recorded?;
    drop(shared);
    if players_only {
        return Ok(());
    }
    finish(ctx, seg, file, tracker).await
}

struct Shared {
    state: Mutex<Pieces>,
    file: Arc<RangeFile>,
    /// The file's logical name.
    name: String,
}

/// Clears what players were shown of the file being downloaded, when the download ends.
struct Shown<'a> {
    ctx: &'a Ctx,
    file: String,
}

impl Drop for Shown<'_> {
    fn drop(&mut self) {
        self.ctx.live.set_part(&self.file, None, &[]);
    }
}

/// Takes the pieces players wait for out of `queue`, and moves the rest of the queue to where
/// the player is: the pieces after the (last) wanted one first, then what that skipped.
fn jump_to(queue: &mut VecDeque<Work>, wanted: &[u64], count: u64) -> Vec<Work> {
    let mut taken = Vec::new();
    let mut at = None;
    queue.retain(|w| {
        if wanted.contains(&w.k) {
            at = Some(w.k);
            taken.push(Work { k: w.k, have: w.have });
            false
        } else {
            true
        }
    });
    if let Some(at) = at.filter(|&a| a < count) {
        queue.make_contiguous().sort_by_key(|w| (w.k <= at, w.k));
    }
    taken
}

/// Makes the pieces in `finished` durable (one fdatasync) and records them.
async fn record(ctx: &Ctx, shared: &Arc<Shared>, tracker: &Tracker, finished: &mut Vec<u64>) -> JobResult {
    if finished.is_empty() {
        return Ok(());
    }
    let file = Arc::clone(&shared.file);
    blocking(ctx, move || file.sync())
        .await
        .map_err(|e| storage("internal error", e))?
        .map_err(|e| store_stop(ctx, "syncing the file", e))?;
    let (json, bytes, validator, new) = {
        let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let new: u64 = finished.iter().filter(|k| !st.done.contains(k)).map(|&k| st.range(k).1 - st.range(k).0).sum();
        st.done.extend(finished.drain(..));
        (serde_json::to_string(&*st).map_err(|e| storage("pieces", e))?, st.done_bytes(), st.validator.clone(), new)
    };
    ctx.deps.catalog.set_pieces(&ctx.id, &json, bytes, &validator).await.map_err(catalog_stop)?;
    // Recorded bytes move from "in flight" to "stored"; other pieces stay in flight.
    tracker.committed(new, 0, new);
    ctx.fruitless.store(0, Ordering::Relaxed);
    Ok(())
}

/// Fetches piece `work.k` to its end, retrying by kind of failure; every attempt asks for what is
/// still missing of it, against the file's validator.
async fn fetch_piece(ctx: &Arc<Ctx>, shared: &Shared, tracker: &Tracker, url: &mut Url, work: &mut Work) -> JobResult {
    let (start, end, validator, len) = {
        let st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = st.range(work.k);
        (a, b, st.validator.clone(), st.len)
    };
    let what = format!("the file (bytes {start}-{})", end - 1);
    let mut retry = Retry::new(&ctx.deps.source.retry);
    loop {
        let generation = ctx.generation.load(Ordering::SeqCst);
        if ctx.urls_expired() {
            refresh(ctx, None, generation, 0).await?;
            *url = fresh_url(ctx)?;
            continue;
        }
        let before = work.have;
        let result = attempt(ctx, &shared.file, tracker, url, start, end, &validator, len, work).await;
        if work.have > before {
            retry.reset();
        }
        if result.is_err() {
            // A player waiting for the piece is told (503) rather than kept waiting.
            ctx.live.failed(&piece_name(&shared.name, work.k));
        }
        match result {
            Ok(played) => {
                ctx.live.piece_progress(work.k, end - start);
                if played {
                    let file = piece_name(&shared.name, work.k);
                    ctx.deps.events.emit(Event::FetchedForPlayback { id: ctx.id.clone(), file });
                }
                return Ok(());
            }
            Err(AttemptError::Fetch(e)) => match e.class() {
                ErrorClass::Transient { retry_after } if retry.again(retry_after).await => {}
                ErrorClass::Expired => {
                    refresh(ctx, None, generation, status_of(&e)).await?;
                    *url = fresh_url(ctx)?;
                }
                _ => return Err(Stop::Failed(fetch_failure(&what, &e))),
            },
            Err(AttemptError::Changed) => {
                let message = "the file changed on the server".to_owned();
                return Err(Stop::Restart(FailureReason::SourceChanged { message }));
            }
            Err(AttemptError::Content(m)) => {
                return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {m}") }));
            }
            Err(AttemptError::Stopped) => return Err(Stop::External),
            Err(AttemptError::Store(e)) => return Err(store_stop(ctx, "the file", e)),
            Err(AttemptError::Catalog(m)) => return Err(storage("catalog", m)),
        }
    }
}

fn fresh_url(ctx: &Ctx) -> JobResult<Url> {
    let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))
}

/// One request for the rest of a piece. Chunks are written as they fill, on a blocking thread;
/// `work.have` says how far the piece got, whatever happens. Returns whether a player was
/// waiting for the piece.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    ctx: &Ctx,
    file: &Arc<RangeFile>,
    tracker: &Tracker,
    url: &Url,
    start: u64,
    end: u64,
    validator: &str,
    len: u64,
    work: &mut Work,
) -> Result<bool, AttemptError> {
    let from = start + work.have;
    let request = Request {
        range: Some(ByteRange { offset: from, length: end - from }),
        if_range: Some(validator),
        unlimited: !ctx.rate_capped(),
        ..Request::get(url, &ctx.headers)
    };
    let mut body = ctx.deps.source.http.open(request).await?;
    // Every piece must come from the same version of the file: a 200 (If-Range failed), another
    // length or another (or no) validator is another file.
    if !body.partial || body.total_size != Some(len) || body.validator.as_deref() != Some(validator) {
        return Err(AttemptError::Changed);
    }
    let chunk = u64::from(file.chunk_size());
    let (feed, mut fed) = mpsc::channel::<bytes::Bytes>(16);
    let writer_file = Arc::clone(file);
    // Players read each chunk as soon as it is written.
    let (live, k) = (Arc::clone(&ctx.live), work.k);
    // The writer returns how many bytes (whole chunks, or up to the end of the piece) it wrote.
    let writer = blocking(ctx, move || -> (u64, Result<(), StoreError>, bool) {
        let mut buf: Vec<u8> = Vec::with_capacity(chunk as usize + 16);
        let mut at = from;
        let mut written = 0u64;
        let mut played = false;
        while let Some(data) = fed.blocking_recv() {
            let mut data = &data[..];
            while !data.is_empty() {
                let want = ((at - at % chunk) + chunk).min(end) - at - buf.len() as u64;
                let take = (want as usize).min(data.len());
                buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if buf.len() as u64 == ((at / chunk + 1) * chunk).min(end) - at {
                    let n = buf.len() as u64;
                    if let Err(e) = writer_file.write_chunk(at, &mut buf) {
                        return (written, Err(e), played);
                    }
                    buf.clear();
                    at += n;
                    written += n;
                    if live.piece_progress(k, at - start) {
                        played = true;
                    }
                }
            }
        }
        (written, Ok(()), played)
    });
    // From the file's first byte, its head is held back until it is known to be media: an error
    // page served with 206 is never written as the film.
    let mut head = (from == 0).then(Vec::new);
    let mut received = 0u64;
    let result: Result<(), AttemptError> = async {
        while let Some(data) = body.chunk().await? {
            let data = match &mut head {
                Some(h) => {
                    h.extend_from_slice(&data);
                    if h.len() < sniff::HEAD_LEN && (h.len() as u64) < end - from {
                        continue;
                    }
                    check_file_head(h, false)?;
                    bytes::Bytes::from(std::mem::take(h))
                }
                None => data,
            };
            head = None;
            tracker.written(data.len() as u64);
            received += data.len() as u64;
            if feed.send(data).await.is_err() {
                break;
            }
        }
        if let Some(h) = head.take() {
            check_file_head(&h, true)?;
            tracker.written(h.len() as u64);
            received += h.len() as u64;
            let _ = feed.send(bytes::Bytes::from(h)).await;
        }
        Ok(())
    }
    .await;
    drop(feed);
    let (written, stored, played) =
        writer.await.map_err(|e| AttemptError::Store(StoreError::Io(std::io::Error::other(e))))?;
    work.have += written;
    // Bytes received but not written (a chunk cut short) will be fetched again.
    tracker.abandoned(received.saturating_sub(written));
    stored?;
    result?;
    if start + work.have < end {
        // The body ended early without an error (it is checked against its length): say so.
        return Err(AttemptError::Fetch(FetchError::Short { expected: end - from, received: written }));
    }
    Ok(played)
}

/// Reads the whole file back (every chunk verified), checks it is media (and, for a VOD source
/// file, its size and CRC-64), moves it into place and commits it.
async fn finish(ctx: &Ctx, seg: &SegmentRow, file: Arc<RangeFile>, tracker: &Tracker) -> JobResult {
    let mezzanine: Option<VodState> = match &ctx.vod {
        Some(v) => Some(v.lock().await.clone()).filter(|s| s.mezzanine),
        None => None,
    };
    let done = blocking(ctx, move || {
        let mut checks = FileChecks::new(mezzanine.as_ref().is_some_and(|m| m.crc64.is_some()));
        let stored = file.finish(&mut |b| checks.update(b))?;
        let bad = checks.verdict(file.len(), mezzanine.as_ref());
        if bad.is_some() {
            let _ = std::fs::remove_file(&stored.path);
        }
        Ok::<_, StoreError>((stored, bad))
    });
    let (stored, bad) =
        done.await.map_err(|e| storage("internal error", e))?.map_err(|e| store_stop(ctx, "the file", e))?;
    if let Some(message) = bad {
        ctx.deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
        return Err(Stop::Failed(FailureReason::BadSource { message }));
    }
    let size = stored.size;
    let done =
        DoneSegment { rendition: seg.rendition, kind: SegmentKind::File, idx: seg.idx, size, sha256: stored.sha256 };
    ctx.deps.catalog.commit_segments(&ctx.id, &[done]).await.map_err(catalog_stop)?;
    tracker.set_committed(size, 0);
    tracker.committed(0, 1, 0);
    Ok(())
}
