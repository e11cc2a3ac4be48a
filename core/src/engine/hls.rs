//! HLS downloads: workers fetch pieces in parallel, each decrypted, checked and written off the
//! runtime; a committer makes finished pieces durable in batches and records them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use crate::catalog::{DoneSegment, RenditionRow, SegmentRow};
use crate::error::fetch_failure;
use crate::fetch::{ErrorClass, FetchError, Request, Retry};
use crate::hls::aes128::{Aes128Key, CbcStreamDecryptor, HlsCryptoError};
use crate::hls::master::{Rendition, Variant, write_local_master};
use crate::hls::media::{ByteRange, Encryption, MediaPlaylist, write_local_playlist};
use crate::hls::vars::{VarSource, Variables};
use crate::model::{FailureReason, RenditionRole, SegmentKind};
use crate::plan::RenditionNames;
use crate::seal::Durability;
use crate::sniff::{self, Content, MediaKind, NotMedia, SniffError, Sniffer};
use crate::store::{self, PieceWriter, StoreError};

use super::adopt::{Accept, adopt};
use super::lock::blocking;
use super::progress::Tracker;
use super::refresh::refresh;
use super::{AttemptError, Ctx, JobResult, Stop, catalog_stop, check_still_running, load, storage, verify_stored};

pub(super) struct RPlan {
    pub(super) idx: u32,
    pub(super) role: RenditionRole,
    pub(super) dir: String,
    pub(super) base: Url,
    pub(super) attrs: String,
    pub(super) playlist: MediaPlaylist,
}
pub(super) type Plan = RwLock<Vec<RPlan>>;
/// A piece fully received and checked, being made durable (fdatasync, rename), waiting to be
/// committed.
struct Finished {
    rendition: u32,
    kind: SegmentKind,
    idx: u32,
    durable: tokio::task::JoinHandle<Result<store::StoredPiece, StoreError>>,
}
type KeyCell = Arc<tokio::sync::OnceCell<Aes128Key>>;
/// Largest key response read (to say what it is when it is not a key).
const KEY_LIMIT: u64 = 64 * 1024;
/// Why `bytes` are not an AES-128 key, saying what they are.
fn key_refusal(bytes: &[u8]) -> String {
    match sniff::identify(bytes, true) {
        Content::NotMedia(NotMedia::Unknown(_)) | Content::Media(_) => {
            format!("the key is {} bytes, not 16", bytes.len())
        }
        Content::NotMedia(NotMedia::Text) => {
            format!("the key URL returned text ({} bytes), not a 16-byte key", bytes.len())
        }
        Content::NotMedia(what) => format!("the key URL returned {what}, not a 16-byte key"),
        Content::Hls => "the key URL returned an HLS playlist, not a 16-byte key".into(),
        Content::Dash => "the key URL returned a DASH manifest, not a 16-byte key".into(),
    }
}
/// Keys fetched once per (rendition, key) and shared by the workers.
#[derive(Default)]
struct KeyCache {
    cells: Mutex<HashMap<(u32, usize), KeyCell>>,
}
impl KeyCache {
    async fn get(&self, ctx: &Ctx, plan: &Plan, rendition: u32, key: usize) -> Result<Aes128Key, AttemptError> {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cells.entry((rendition, key)).or_default())
        };
        let url = {
            let p = plan.read().unwrap_or_else(PoisonError::into_inner);
            let r = &p[rendition as usize];
            let uri = &r.playlist.keys[key].uri;
            r.base.join(uri).map_err(|e| AttemptError::Content(format!("bad key URI: {e}")))?
        };
        let got = cell
            .get_or_try_init(|| async {
                let deps = &ctx.deps;
                let (bytes, _) =
                    deps.source.http.get_small(&url, &ctx.headers, KEY_LIMIT, &deps.source.retry).await.map_err(
                        |e| match e {
                            FetchError::TooLarge { limit } => AttemptError::Content(format!(
                                "the key URL returned more than {limit} bytes, not a 16-byte key"
                            )),
                            other => AttemptError::Fetch(other),
                        },
                    )?;
                Aes128Key::from_bytes(&bytes).map_err(|_| AttemptError::Content(key_refusal(&bytes)))
            })
            .await?;
        Ok(got.clone())
    }

    fn invalidate(&self, rendition: u32, key: usize) {
        self.cells.lock().unwrap_or_else(PoisonError::into_inner).remove(&(rendition, key));
    }
}
fn load_plan(rows: &[RenditionRow]) -> JobResult<Vec<RPlan>> {
    rows.iter()
        .map(|r| {
            let text =
                r.playlist.as_deref().ok_or_else(|| FailureReason::Storage { message: "missing playlist".into() })?;
            let vars = r.variables.as_deref().and_then(Variables::from_json).unwrap_or_default();
            let playlist = MediaPlaylist::parse(text, VarSource::Stored(&vars))
                .map_err(|e| FailureReason::BadSource { message: e.to_string() })?;
            let base = Url::parse(&r.url)
                .map_err(|e| FailureReason::Storage { message: format!("bad URL in catalog: {e}") })?;
            Ok(RPlan { idx: r.idx, role: r.kind, dir: r.dir.clone(), base, attrs: r.attrs.clone(), playlist })
        })
        .collect()
}
fn describe(seg: &SegmentRow, plan: &Plan) -> String {
    let role = plan
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(seg.rendition as usize)
        .map_or(RenditionRole::Video, |r| r.role);
    match (seg.kind, seg.msn) {
        (SegmentKind::Init, _) => format!("{role} init section {}", seg.idx),
        (_, Some(msn)) => format!("{role} segment {} (media sequence {msn})", seg.idx),
        _ => format!("{role} segment {}", seg.idx),
    }
}
pub(super) async fn hls(ctx: &Arc<Ctx>) -> JobResult {
    let deps = &ctx.deps;
    let (_, rows, segs) = load(ctx).await?;
    if adopt_finished(ctx, &rows, &segs).await? > 0 {
        tracing::debug!(asset = %ctx.id, "kept pieces an earlier process finished");
    }
    let (asset, rows, segs) = load(ctx).await?;
    let plan: Arc<Plan> = Arc::new(RwLock::new(load_plan(&rows)?));
    let done_bytes: u64 = segs.iter().filter(|s| s.done).filter_map(|s| s.size).sum();
    let done_count = segs.iter().filter(|s| s.done).count() as u64;
    if ctx.vod.is_some() && segs.iter().any(|s| !s.done) && (done_count > 0 || ctx.urls_expired()) {
        // Resuming a VOD download: fresh URLs, and a check that it is still the same transcode.
        refresh(ctx, Some(&plan), ctx.generation.load(Ordering::SeqCst), 0).await?;
    }
    let tracker = Arc::new(Tracker::new(
        deps.events.clone(),
        ctx.id.clone(),
        segs.len() as u64,
        (done_bytes, done_count),
        (asset.bytes_expected, asset.expected_exact),
    ));
    let pending: VecDeque<SegmentRow> = segs.iter().filter(|s| !s.done).cloned().collect();
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
        run_workers(ctx, &plan, &tracker, pending).await?;
        tracing::debug!(asset = %ctx.id, "every piece committed");
    }
    finish_hls(ctx, &plan, &tracker).await
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
) -> JobResult {
    let workers_n = ctx.parallel.min(pending.len()).max(1);
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
    for _ in 0..workers_n {
        let (ctx, plan, tracker, queue, keys, tx) =
            (Arc::clone(ctx), Arc::clone(plan), Arc::clone(tracker), Arc::clone(&queue), Arc::clone(&keys), tx.clone());
        workers.spawn(async move {
            loop {
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
    drop(tx);

    let mut failure: Option<Stop> = None;
    let mut committer_result = None;
    while failure.is_none() {
        tokio::select! {
            next = workers.join_next() => match next {
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
        None => Ok(()),
    }
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
    let mut failed = None;
    for f in batch.drain(..) {
        match f.durable.await {
            Ok(Ok(piece)) => {
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
    match failed {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}
/// Where a piece comes from.
fn piece_source(
    plan: &Plan,
    seg: &SegmentRow,
) -> Result<(Url, Option<ByteRange>, Encryption, RenditionRole), AttemptError> {
    let p = plan.read().unwrap_or_else(PoisonError::into_inner);
    let r = p.get(seg.rendition as usize).ok_or_else(|| AttemptError::Content("unknown rendition".into()))?;
    let (uri, range, enc) = match seg.kind {
        SegmentKind::Init => {
            let m = r
                .playlist
                .maps
                .get(seg.idx as usize)
                .ok_or_else(|| AttemptError::Content("unknown init section".into()))?;
            (&m.uri, m.byte_range, m.encryption)
        }
        _ => {
            let s = r
                .playlist
                .segments
                .get(seg.idx as usize)
                .ok_or_else(|| AttemptError::Content("unknown segment".into()))?;
            (&s.uri, s.byte_range, s.encryption)
        }
    };
    let url = r.base.join(uri).map_err(|e| AttemptError::Content(format!("bad URI: {e}")))?;
    Ok((url, range, enc, r.role))
}
async fn fetch_piece(
    ctx: &Arc<Ctx>,
    plan: &Arc<Plan>,
    keys: &KeyCache,
    tracker: &Arc<Tracker>,
    seg: &SegmentRow,
) -> JobResult<Finished> {
    let mut retry = Retry::new(&ctx.deps.source.retry);
    let mut content_failures = 0u32;
    loop {
        let generation = ctx.generation.load(Ordering::SeqCst);
        if ctx.urls_expired() {
            refresh(ctx, Some(plan), generation, 0).await?;
            continue;
        }
        let err = match attempt(ctx, plan, keys, tracker, seg).await {
            Ok(f) => return Ok(f),
            Err(e) => e,
        };
        match err {
            AttemptError::Fetch(e) => match e.class() {
                ErrorClass::Transient { retry_after } if retry.again(retry_after).await => {
                    tracing::debug!(asset = %ctx.id, "{}: {e}; retried", describe(seg, plan));
                }
                ErrorClass::Expired => {
                    let status = match e {
                        FetchError::Status { status, .. } => status,
                        _ => 403,
                    };
                    refresh(ctx, Some(plan), generation, status).await?;
                }
                _ => return Err(Stop::Failed(fetch_failure(&describe(seg, plan), &e))),
            },
            AttemptError::Content(msg) => {
                content_failures += 1;
                let key = match piece_source(plan, seg) {
                    Ok((_, _, Encryption::Aes128 { key, .. }, _)) => Some(key),
                    _ => None,
                };
                match (content_failures, key) {
                    (1, _) => {}
                    (2, Some(k)) => keys.invalidate(seg.rendition, k),
                    (2, None) => {}
                    _ => {
                        let again = if key.is_some() { "the segment and its key again" } else { "the segment again" };
                        return Err(Stop::Failed(FailureReason::BadSource {
                            message: format!("{}: {msg} (after fetching {again})", describe(seg, plan)),
                        }));
                    }
                }
                tracing::debug!(asset = %ctx.id, "{}: {msg}; fetching again", describe(seg, plan));
            }
            AttemptError::Store(StoreError::Full) => {
                tracing::debug!(asset = %ctx.id, "{}: no space left", describe(seg, plan));
                // What is still to store, as best known now (refined from the pieces done).
                let (expected, _) = tracker.expected();
                let (done, _) = tracker.committed_totals();
                return Err(ctx.storage_full(expected.map_or(0, |e| e.saturating_sub(done))));
            }
            AttemptError::Store(e) => return Err(storage(&describe(seg, plan), e)),
            AttemptError::Stopped => return Err(Stop::External),
            AttemptError::Catalog(m) => return Err(storage("catalog", m)),
            AttemptError::Changed => {
                let message = format!("{} changed on the server", describe(seg, plan));
                return Err(Stop::Restart(FailureReason::SourceChanged { message }));
            }
        }
    }
}
/// What the network side hands the piece's writer.
enum Feed {
    Data(bytes::Bytes),
    /// The body is complete.
    End,
}
/// Chunks buffered between a piece's network side and its writer: bounded, so memory does not
/// grow with segment size.
const FEED_DEPTH: usize = 16;
/// Writes one piece off the async runtime: creates its file, decrypts, checks and seals or
/// hashes what the network side feeds it, tells the network side the verdict as soon as the
/// content checks are done, then makes the piece durable (fdatasync, rename) while the network
/// side moves on. File creation, page-cache writes (which can sleep when flash is slow) and the
/// cipher work never block the threads that read sockets.
#[allow(clippy::too_many_arguments)]
fn write_piece(
    writer: PieceWriter,
    mut dec: Option<CbcStreamDecryptor>,
    role: RenditionRole,
    mut feed: mpsc::Receiver<Feed>,
    verdict: tokio::sync::oneshot::Sender<Result<(), AttemptError>>,
    tracker: Arc<Tracker>,
) -> Result<store::StoredPiece, StoreError> {
    struct Sink {
        writer: PieceWriter,
        sniff: Sniffer,
        written: u64,
        tracker: Arc<Tracker>,
    }
    impl Sink {
        fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
            self.writer.write(data)?;
            self.sniff.update(data);
            self.written += data.len() as u64;
            self.tracker.written(data.len() as u64);
            Ok(())
        }
    }
    let mut sink = Sink { writer, sniff: Sniffer::new(), written: 0, tracker };
    let mut plain = Vec::with_capacity(64 * 1024);
    // The first bytes as received, to say what arrived when it is not ciphertext at all.
    let mut raw_head = Vec::new();
    let checked: Result<(), AttemptError> = (|| {
        loop {
            match feed.blocking_recv() {
                Some(Feed::Data(chunk)) => match &mut dec {
                    Some(d) => {
                        let take = (sniff::HEAD_LEN - raw_head.len()).min(chunk.len());
                        raw_head.extend_from_slice(&chunk[..take]);
                        plain.clear();
                        d.update(&chunk, &mut plain);
                        sink.write(&plain)?;
                    }
                    None => sink.write(&chunk)?,
                },
                Some(Feed::End) => break,
                // The network side gave up (its error is the one reported).
                None => return Err(AttemptError::Stopped),
            }
        }
        if let Some(d) = dec.take() {
            plain.clear();
            d.finish(&mut plain).map_err(|e: HlsCryptoError| {
                let complete = raw_head.len() < sniff::HEAD_LEN;
                match sniff::identify(&raw_head, complete) {
                    Content::NotMedia(what) if !matches!(what, NotMedia::Unknown(_)) => {
                        AttemptError::Content(format!("got {what}, not AES-128 ciphertext"))
                    }
                    _ => AttemptError::Content(e.to_string()),
                }
            })?;
            sink.write(&plain)?;
        }
        check_content(role, &sink.sniff).map_err(|e| AttemptError::Content(e.to_string()))
    })();
    let Sink { writer, written, tracker, .. } = sink;
    if let Err(e) = checked {
        // Delete the partial file before reporting: on a full disk its space is what lets the
        // catalog record the pieces that did complete.
        drop(writer);
        tracker.abandoned(written);
        let _ = verdict.send(Err(e));
        return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
    }
    // Complete under a name that proves it whole before the network side moves on: a process
    // killed from here on leaves a piece the next run keeps instead of fetching it again.
    let complete = match writer.complete() {
        Ok(c) => c,
        Err(e) => {
            tracker.abandoned(written);
            let _ = verdict.send(Err(AttemptError::Store(e)));
            return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
        }
    };
    let _ = verdict.send(Ok(()));
    complete.persist(Durability::FileSynced).inspect_err(|_| tracker.abandoned(written))
}
async fn attempt(
    ctx: &Ctx,
    plan: &Plan,
    keys: &KeyCache,
    tracker: &Arc<Tracker>,
    seg: &SegmentRow,
) -> Result<Finished, AttemptError> {
    let (url, range, enc, role) = piece_source(plan, seg)?;
    let dec = match enc {
        Encryption::Aes128 { key, iv } => {
            Some(CbcStreamDecryptor::new(&keys.get(ctx, plan, seg.rendition, key).await?, iv))
        }
        Encryption::None => None,
    };
    let deps = &ctx.deps;
    let request = Request { range, ..Request::get(&url, &ctx.headers) };
    let mut body = deps.source.http.open(request).await?;
    let (layout, id, file, mode, key, options) =
        (deps.layout.clone(), ctx.id.clone(), seg.file.clone(), ctx.mode, ctx.key.clone(), ctx.seal_options());
    let (feed, fed) = mpsc::channel(FEED_DEPTH);
    let (verdict_tx, verdict_rx) = tokio::sync::oneshot::channel();
    let tracker = Arc::clone(tracker);
    let durable = blocking(ctx, move || {
        let writer = match PieceWriter::create(&layout, &id, &file, mode, key.as_deref(), options) {
            Ok(w) => w,
            Err(e) => {
                let _ = verdict_tx.send(Err(AttemptError::Store(e)));
                return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
            }
        };
        write_piece(writer, dec, role, fed, verdict_tx, tracker)
    });
    let received: Result<(), FetchError> = async {
        while let Some(chunk) = body.chunk().await? {
            if feed.send(Feed::Data(chunk)).await.is_err() {
                break; // the writer stopped; its verdict says why
            }
        }
        let _ = feed.send(Feed::End).await;
        Ok(())
    }
    .await;
    if let Err(e) = received {
        drop(feed); // the writer sees the feed close and abandons the piece
        let _ = durable.await;
        return Err(AttemptError::Fetch(e));
    }
    drop(feed);
    match verdict_rx.await {
        Ok(Ok(())) => Ok(Finished { rendition: seg.rendition, kind: seg.kind, idx: seg.idx, durable }),
        Ok(Err(e)) => {
            let _ = durable.await;
            Err(e)
        }
        Err(_) => Err(AttemptError::Store(StoreError::Io(std::io::Error::other("piece writer failed")))),
    }
}
/// Video and audio segments must be MPEG-TS, ISO BMFF or packed audio; subtitle segments
/// WebVTT, TTML or ISO BMFF (IMSC in fMP4). Anything else is refused, saying what it is.
fn check_content(role: RenditionRole, sniff: &Sniffer) -> Result<(), SniffError> {
    let kind = sniff.finish()?;
    let fits = match role {
        RenditionRole::Subtitles => matches!(kind, MediaKind::WebVtt | MediaKind::Ttml | MediaKind::Mp4),
        _ => matches!(kind, MediaKind::Ts | MediaKind::Mp4 | MediaKind::PackedAudio),
    };
    let wanted = match role {
        RenditionRole::Subtitles => "subtitles",
        RenditionRole::Audio => "audio",
        _ => "video",
    };
    if fits { Ok(()) } else { Err(SniffError::WrongKind(kind, wanted)) }
}
async fn finish_hls(ctx: &Ctx, plan: &Plan, tracker: &Tracker) -> JobResult {
    let deps = &ctx.deps;
    let (rendition_playlists, master) = {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        let mut lists = Vec::new();
        for r in p.iter() {
            let names = RenditionNames { playlist: &r.playlist, role: r.role };
            lists.push((format!("{}/index.m3u8", r.dir), write_local_playlist(&r.playlist, &names)));
        }
        (lists, local_master(&p, tracker))
    };
    let (layout, id, mode, key) = (deps.layout.clone(), ctx.id.clone(), ctx.mode, ctx.key.clone());
    let written = blocking(ctx, move || {
        for (name, text) in rendition_playlists.iter().chain(std::iter::once(&("index.m3u8".to_owned(), master))) {
            store::write_small(&layout, &id, name, mode, key.as_deref(), text.as_bytes())?;
        }
        Ok::<_, StoreError>(())
    });
    written.await.map_err(|e| storage("internal error", e))?.map_err(|e| match e {
        StoreError::Full => ctx.storage_full(0),
        other => storage("writing playlists", other),
    })?;
    verify_stored(ctx).await?;
    deps.catalog.set_entry(&ctx.id, "index.m3u8").await.map_err(catalog_stop)?;
    let (bytes, _) = tracker.committed_totals();
    deps.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
    tracker.set_expected(Some(bytes), true);
    tracker.emit(true);
    Ok(())
}
fn local_master(p: &[RPlan], tracker: &Tracker) -> String {
    let video = &p[0];
    let variant: Variant = serde_json::from_str(&video.attrs).unwrap_or_else(|_| {
        // A media playlist given directly: its bandwidth is what was stored per second.
        let (bytes, _) = tracker.committed_totals();
        let secs = video.playlist.duration().max(0.001);
        Variant::with_bandwidth(String::new(), ((bytes as f64 * 8.0 / secs) as u64).max(1))
    });
    let renditions: Vec<(Rendition, Option<String>)> = p[1..]
        .iter()
        .filter_map(|r| {
            serde_json::from_str::<Rendition>(&r.attrs).ok().map(|rend| (rend, Some(format!("{}/index.m3u8", r.dir))))
        })
        .collect();
    let refs: Vec<(&Rendition, Option<String>)> = renditions.iter().map(|(r, u)| (r, u.clone())).collect();
    let version = p.iter().map(|r| r.playlist.version).max().unwrap_or(3);
    let independent = p.iter().all(|r| r.playlist.independent_segments);
    write_local_master(version, independent, &variant, &format!("{}/index.m3u8", video.dir), &refs)
}
