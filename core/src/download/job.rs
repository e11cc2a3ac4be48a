//! Running one asset's download.
//!
//! HLS: up to `parallel` workers take pending pieces from a queue; each piece is fetched,
//! decrypted (AES-128) in memory as it arrives, checked (TS sync, MP4 boxes, padding, length),
//! and written to a temporary file (plain or sealed) that is renamed into place. A committer
//! makes finished pieces durable in batches (fdatasync off the download path, then one catalog
//! transaction), so no fsync stalls a worker and no row says "done" before its file is durable.
//!
//! Failures by kind: transient ones back off and retry; 401/403/410 ask the refresh hook for a
//! fresh URL, re-read the playlists and match segments by media sequence number; a piece whose
//! content is bad is fetched again, then fetched again with its key fetched again, then fails the
//! asset with a reason naming it. Nothing is ever skipped.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use reqwest::header::HeaderMap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use super::progress::Tracker;
use super::vod::{self as vodsrc, VodState};
use super::{
    RenditionNames, choose, error_to_failure, fetch_failure, fetch_playlist, merged_headers, open_headers, parse_url,
    plan, resolve,
};
use crate::catalog::{
    AssetKind, AssetRow, AssetState, DoneSegment, ImageKind, ImageRow, Mode, RenditionRole, RenditionRow, SegmentKind,
    SegmentRow, now_ms,
};
use crate::error::FailureReason;
use crate::fetch::{ErrorClass, FetchError, Request, retry_delay};
use crate::hls::aes128::{Aes128Key, CbcStreamDecryptor, HlsCryptoError};
use crate::hls::master::{Rendition, Variant, write_local_master};
use crate::hls::media::{ByteRange, Encryption, MediaPlaylist, write_local_playlist};
use crate::hls::vars::{VarSource, Variables};
use crate::keys::{ContentKey, KeyError, WrappedKey};
use crate::seal::{self, Durability, HEADER_LEN, SealOptions, SealWriter, TAG_LEN};
use crate::sniff::{self, Content, MediaKind, NotMedia, SniffError, Sniffer};
use crate::store::{self, PieceWriter, StoreError};
use crate::vault::{DownloadRequest, Event, Inner, RefreshRequest};

/// Why a job stopped before completing.
#[derive(Debug)]
enum Stop {
    /// The asset fails with this reason.
    Failed(FailureReason),
    /// Someone else changed the asset's state (pause, cancel, remove — here or in another
    /// process); leave the state alone.
    External,
    /// The source changed under the download: start over cleanly.
    Restart(FailureReason),
}

impl From<FailureReason> for Stop {
    fn from(r: FailureReason) -> Self {
        Stop::Failed(r)
    }
}

type JobResult<T = ()> = Result<T, Stop>;

/// A catalog failure; a full disk is reported as such (`available` is filled in by `run_job`).
fn catalog_stop(e: crate::catalog::CatalogError) -> Stop {
    if e.is_storage_full() {
        Stop::Failed(FailureReason::StorageFull { needed: 0, available: 0 })
    } else {
        storage("catalog", e)
    }
}

fn storage(what: &str, e: impl std::fmt::Display) -> Stop {
    Stop::Failed(FailureReason::Storage { message: format!("{what}: {e}") })
}

/// A job's hold on its asset: the lock file (one process per asset, D14), shared with every
/// blocking task the job starts, so that the asset stays locked until the last of them is done
/// (even when the job itself is aborted), and counted, so that the job can wait for them before
/// it starts over or returns. No piece writer outlives its job's hold.
struct Hold {
    _lock: std::fs::File,
    busy: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// A blocking task's share of its job's [`Hold`].
struct Ticket(Arc<Hold>);

impl Hold {
    /// Takes the asset's lock; `None` when another job (here or in another process) holds it.
    fn take(inner: &Inner, id: &str) -> std::io::Result<Option<Arc<Self>>> {
        let lock =
            std::fs::File::options().create(true).truncate(false).write(true).open(inner.layout.lock_file(id))?;
        if lock.try_lock().is_err() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self { _lock: lock, busy: Default::default(), idle: tokio::sync::Notify::new() })))
    }

    fn ticket(self: &Arc<Self>) -> Ticket {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Ticket(Arc::clone(self))
    }

    /// Waits until no blocking task of the job is running.
    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Runs `f` on the blocking pool under the job's hold.
fn blocking<T: Send + 'static>(ctx: &Ctx, f: impl FnOnce() -> T + Send + 'static) -> tokio::task::JoinHandle<T> {
    let ticket = ctx.hold.ticket();
    tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        f()
    })
}

/// What an asset's job shares between its tasks.
struct Ctx {
    inner: Arc<Inner>,
    id: String,
    mode: Mode,
    title: Option<String>,
    request: DownloadRequest,
    headers: HeaderMap,
    key: Option<Arc<ContentKey>>,
    parallel: usize,
    source_url: Mutex<String>,
    refresh_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Refreshes since the last committed piece.
    fruitless: AtomicU32,
    /// A VOD asset: its stream and what the API last said.
    vod: Option<tokio::sync::Mutex<VodState>>,
    /// A VOD asset: when to ask for fresh URLs before they expire (Unix ms; `i64::MAX` if never).
    vod_refresh_at: AtomicI64,
    /// The state the asset is in while this job runs: `downloading`, or `completed` while its
    /// missing images are tried again.
    running: AssetState,
    /// The asset's lock, shared with the job's blocking tasks.
    hold: Arc<Hold>,
}

impl Ctx {
    /// Whether the asset's VOD URLs are past their lifetime (`AuthTimeout`).
    fn urls_expired(&self) -> bool {
        now_ms() >= self.vod_refresh_at.load(Ordering::SeqCst)
    }

    fn seal_options(&self) -> SealOptions {
        SealOptions { chunk_size: self.inner.config.chunk_size }
    }

    fn storage_full(&self, needed: u64) -> Stop {
        let available = store::available_space(self.inner.layout.root()).unwrap_or(0);
        Stop::Failed(FailureReason::StorageFull { needed, available })
    }
}

/// Runs asset `id` to completion, failure or stop, and records the outcome.
pub(crate) async fn run_job(inner: Arc<Inner>, id: String) {
    // A bug must not leave the asset "downloading" forever: a panic fails it, typed.
    let result = match std::panic::AssertUnwindSafe(run(&inner, &id)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(Stop::Failed(FailureReason::Storage {
            message: "internal error (a bug in vodvault); the download can be resumed".into(),
        })),
    };
    match result {
        Ok(()) => {
            match inner.catalog.transition(&id, &[AssetState::Downloading], AssetState::Completed, None).await {
                Ok(true) => {
                    // If a full disk used up the catalog's reserve, there may be room again.
                    store::ensure_reserve(&inner.layout);
                    inner.emit_state(&id, AssetState::Completed, None);
                }
                Ok(false) => {}
                // Not recorded, so not complete: it finishes (quickly) next time it runs.
                Err(e) => {
                    let reason = FailureReason::Storage { message: format!("recording completion: {e}") };
                    inner.emit_state(&id, AssetState::Failed, Some(reason));
                }
            }
        }
        Err(Stop::Failed(mut reason)) => {
            if matches!(reason, FailureReason::StorageFull { .. }) {
                // Room to record the failure (see `store::ensure_reserve`).
                store::release_reserve(&inner.layout);
            }
            if let FailureReason::StorageFull { available, .. } = &mut reason
                && *available == 0
            {
                *available = store::available_space(inner.layout.root()).unwrap_or(0);
            }
            let json = reason.to_json();
            match inner.catalog.transition(&id, &[AssetState::Downloading], AssetState::Failed, Some(&json)).await {
                Ok(true) => {
                    tracing::warn!(asset = %id, "download failed: {reason}");
                    inner.emit_state(&id, AssetState::Failed, Some(reason));
                }
                Ok(false) => {}
                // The failure could not be recorded (a full disk, say): still tell this process.
                Err(e) => {
                    tracing::error!(asset = %id, "download failed: {reason}; recording it failed too: {e}");
                    inner.emit_state(&id, AssetState::Failed, Some(reason));
                }
            }
        }
        Err(Stop::External | Stop::Restart(_)) => {}
    }
    inner.jobs.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    inner.wake.notify_one();
}

async fn run(inner: &Arc<Inner>, id: &str) -> JobResult {
    // One process per asset: the lock is held for the whole job, and by its blocking tasks.
    let Some(hold) = Hold::take(inner, id).map_err(|e| storage("lock file", e))? else {
        return Err(Stop::External);
    };
    match inner.catalog.transition(id, &[AssetState::Queued], AssetState::Downloading, None).await {
        Ok(true) => {}
        Ok(false) => return Err(Stop::External),
        Err(e) => return Err(storage("catalog", e)),
    }
    inner.emit_state(id, AssetState::Downloading, None);
    let row = inner.catalog.asset(id).await.map_err(catalog_stop)?.ok_or(Stop::External)?;
    let ctx = Arc::new(context(inner, row, AssetState::Downloading, hold)?);
    let result = loop {
        let r = match ctx_kind(&ctx).await {
            AssetKind::Hls => hls(&ctx).await,
            AssetKind::Progressive => progressive(&ctx).await,
        };
        // Images (VOD covers, snapshots, sprites, thumbnail tracks) complete the asset.
        let r = match r {
            Ok(()) => images(&ctx).await,
            other => other,
        };
        match r {
            Err(Stop::Restart(reason)) => {
                tracing::warn!(asset = %id, "restarting: {reason}");
                // No piece of the old plan may land in the new one.
                ctx.hold.idle().await;
                restart(&ctx).await?;
                inner.emit(Event::Restarted { id: id.to_owned(), reason });
            }
            other => break other,
        }
    };
    ctx.hold.idle().await;
    result
}

/// Tries the missing images of a completed asset again (its media stays playable meanwhile);
/// returns how many are still missing. Images stored or still failing are recorded as they go,
/// with an [`Event::ImageMissing`] for each that fails again.
///
/// # Errors
/// [`crate::Error::Busy`] when another job holds the asset, [`crate::Error::Failed`] for a
/// failure that is not an image's own (storage I/O, the catalog, the content key).
pub(crate) async fn retry_images(inner: &Arc<Inner>, id: &str) -> crate::Result<usize> {
    let Some(hold) = Hold::take(inner, id)? else {
        return Err(crate::Error::Busy(id.to_owned()));
    };
    let stopped = |stop: Stop| match stop {
        Stop::Failed(reason) | Stop::Restart(reason) => crate::Error::Failed(reason),
        Stop::External => crate::Error::InvalidState {
            id: id.to_owned(),
            state: AssetState::Completed,
            action: "retry its images (it changed meanwhile)",
        },
    };
    let row = inner.catalog.asset(id).await?.ok_or_else(|| crate::Error::NotFound(id.to_owned()))?;
    let ctx = Arc::new(context(inner, row, AssetState::Completed, hold).map_err(stopped)?);
    let r = images(&ctx).await;
    ctx.hold.idle().await;
    r.map_err(stopped)?;
    Ok(inner.catalog.images(id).await?.iter().filter(|i| !i.done).count())
}

async fn ctx_kind(ctx: &Ctx) -> AssetKind {
    match ctx.inner.catalog.asset(&ctx.id).await {
        Ok(Some(r)) => r.kind,
        _ => AssetKind::Hls,
    }
}

fn context(inner: &Arc<Inner>, row: AssetRow, running: AssetState, hold: Arc<Hold>) -> JobResult<Ctx> {
    let request: DownloadRequest = serde_json::from_str(&row.request)
        .map_err(|_| FailureReason::Storage { message: "unreadable request in catalog".into() })?;
    let own = open_headers(inner, &row.id, row.headers.as_deref())
        .map_err(|e| FailureReason::KeyMismatch { message: format!("stored headers: {e}") })?;
    let headers = merged_headers(inner, &own).map_err(|e| FailureReason::Storage { message: e.to_string() })?;
    let key = match row.mode {
        Mode::Normal => None,
        Mode::Encrypted => {
            let wrapped = row
                .wrapped_key
                .as_deref()
                .ok_or_else(|| FailureReason::KeyMismatch { message: "encrypted asset without content key".into() })?;
            let wrapped =
                WrappedKey::from_bytes(wrapped).map_err(|e| FailureReason::KeyMismatch { message: e.to_string() })?;
            Some(wrapped.unwrap(&inner.kek, row.id.as_bytes()).map_err(|e| match e {
                KeyError::KeyMismatch { .. } => FailureReason::KeyMismatch { message: e.to_string() },
                other => FailureReason::KeyMismatch { message: format!("content key: {other}") },
            })?)
        }
    };
    let parallel = request.parallel.unwrap_or(inner.config.max_parallel_requests).max(1);
    let vod = row.vod.as_deref().and_then(VodState::from_json);
    let vod_refresh_at = AtomicI64::new(vod.as_ref().map_or(i64::MAX, |v| v.expires_at));
    Ok(Ctx {
        inner: Arc::clone(inner),
        id: row.id,
        mode: row.mode,
        title: row.title,
        request,
        headers,
        key: key.map(Arc::new),
        parallel,
        source_url: Mutex::new(row.source_url),
        refresh_lock: tokio::sync::Mutex::new(()),
        generation: AtomicU64::new(0),
        fruitless: AtomicU32::new(0),
        vod: vod.map(tokio::sync::Mutex::new),
        vod_refresh_at,
        running,
        hold,
    })
}

/// Starts over: deletes stored pieces and plans again from the (current) source.
async fn restart(ctx: &Ctx) -> JobResult {
    let inner = &ctx.inner;
    let url = parse_url(&ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner))
        .map_err(|e| FailureReason::BadSource { message: e.to_string() })?;
    let new = plan(inner, &ctx.request, &url, &ctx.headers).await.map_err(|e| error_to_failure("source", &e))?;
    let dir = inner.layout.asset_dir(&ctx.id);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(storage("removing old files", e));
    }
    inner
        .catalog
        .replace_plan(&ctx.id, &new.renditions, &new.segments, new.expected.0, new.expected.1, new.duration)
        .await
        .map_err(catalog_stop)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HLS

struct RPlan {
    idx: u32,
    role: RenditionRole,
    dir: String,
    base: Url,
    attrs: String,
    playlist: MediaPlaylist,
}

type Plan = RwLock<Vec<RPlan>>;

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

enum AttemptError {
    Fetch(FetchError),
    Content(String),
    Store(StoreError),
    /// The asset's state was changed by someone else.
    Stopped,
}

impl From<FetchError> for AttemptError {
    fn from(e: FetchError) -> Self {
        AttemptError::Fetch(e)
    }
}

impl From<StoreError> for AttemptError {
    fn from(e: StoreError) -> Self {
        AttemptError::Store(e)
    }
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
                let inner = &ctx.inner;
                let (bytes, _) =
                    inner.http.get_small(&url, &ctx.headers, KEY_LIMIT, &inner.config.retry).await.map_err(
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

/// The asset's rows, as the catalog has them now.
async fn load(ctx: &Ctx) -> JobResult<(AssetRow, Vec<RenditionRow>, Vec<SegmentRow>)> {
    let catalog = &ctx.inner.catalog;
    let asset = catalog.asset(&ctx.id).await.map_err(catalog_stop)?.ok_or(Stop::External)?;
    let renditions = catalog.renditions(&ctx.id).await.map_err(catalog_stop)?;
    let segments = catalog.segments(&ctx.id).await.map_err(catalog_stop)?;
    Ok((asset, renditions, segments))
}

async fn hls(ctx: &Arc<Ctx>) -> JobResult {
    let inner = &ctx.inner;
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
        Arc::clone(inner),
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
        let available = store::available_space(inner.layout.root()).map_err(|e| storage("free space", e))?;
        if needed > available {
            return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
        }
        tracing::debug!(asset = %ctx.id, pieces = pending.len(), "fetching");
        run_workers(ctx, &plan, &tracker, pending).await?;
        tracing::debug!(asset = %ctx.id, "every piece committed");
    }
    finish_hls(ctx, &plan, &tracker).await
}

/// A content check for a finished file found on resume.
type Accept = Box<dyn Fn(&Sniffer) -> bool + Send>;

/// Keeps what an earlier process finished but was killed before recording, among `files` (the
/// logical names of pending pieces or images, each with its content check): files at their
/// final names, or complete beside them ([`store::finished_piece`]: a sealed file verifies whole,
/// a plain one is hashed and must match the digest its name carries), that pass the same content
/// check as a fetched piece. Returns the index in `files` of each one kept, with what it holds;
/// their renames are durable. `.done` files not kept are deleted.
async fn adopt(ctx: &Ctx, files: Vec<(String, Accept)>) -> JobResult<Vec<(usize, store::FinishedPiece)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let (layout, id, mode, key) = (ctx.inner.layout.clone(), ctx.id.clone(), ctx.mode, ctx.key.clone());
    blocking(ctx, move || -> Result<Vec<(usize, store::FinishedPiece)>, StoreError> {
        let mut done_names: HashMap<std::path::PathBuf, Vec<String>> = HashMap::new();
        let mut kept = Vec::new();
        let mut paths = Vec::new();
        for (i, (file, accept)) in files.into_iter().enumerate() {
            let dest = layout.file(&id, &file, mode);
            let dir = dest.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let names = done_names.entry(dir.clone()).or_insert_with(|| store::done_files(&dir));
            if let Some(found) = store::finished_piece(&layout, &id, &file, mode, key.as_deref(), names, &*accept)? {
                paths.push(dest);
                kept.push((i, found));
            }
        }
        for (dir, names) in &done_names {
            for n in names {
                let _ = std::fs::remove_file(dir.join(n));
            }
        }
        store::sync_dirs(&paths)?;
        Ok(kept)
    })
    .await
    .map_err(|e| storage("internal error", e))?
    .map_err(|e| match e {
        StoreError::Full => ctx.storage_full(0),
        other => storage("checking what was stored before a restart", other),
    })
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
        ctx.inner.catalog.commit_segments(&ctx.id, &adopted).await.map_err(catalog_stop)?;
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
    let mut committer = tokio::spawn(committer(Arc::clone(ctx), Arc::clone(tracker), rx, Arc::clone(&uncommitted)));
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
            res = &mut committer, if committer_result.is_none() => {
                let r = res.unwrap_or_else(|e| Err(storage("internal error", e)));
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
        let r = committer.await.unwrap_or_else(|e| Err(storage("internal error", e)));
        if failure.is_none() {
            r?;
        }
    }
    // The workers are stopped and their partial files deleted; on a full disk the catalog's
    // reserve is released too: that space is what lets these rows (and the failure) be recorded.
    // Nothing durable is forgotten.
    if matches!(failure, Some(Stop::Failed(FailureReason::StorageFull { .. }))) {
        store::release_reserve(&ctx.inner.layout);
    }
    let pending = std::mem::take(&mut *uncommitted.lock().unwrap_or_else(PoisonError::into_inner));
    if !pending.is_empty() {
        match ctx.inner.catalog.commit_segments(&ctx.id, &pending).await {
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

/// Whether the asset is still in the state this job runs in (`downloading`, or `completed` for
/// a retry of its missing images): another process (or a call here) may have paused,
/// cancelled or removed it.
async fn check_still_running(ctx: &Ctx) -> JobResult {
    match ctx.inner.catalog.state(&ctx.id).await {
        Ok(Some(s)) if s == ctx.running => Ok(()),
        Ok(_) => Err(Stop::External),
        Err(e) => Err(storage("catalog", e)),
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
        ctx.inner.catalog.commit_segments(&ctx.id, &done).await.map_err(catalog_stop)?;
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
    let policy = &ctx.inner.config.retry;
    let mut transient = 0u32;
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
                ErrorClass::Transient { retry_after } if transient + 1 < policy.attempts => {
                    tracing::debug!(asset = %ctx.id, "{}: {e}; retrying", describe(seg, plan));
                    tokio::time::sleep(retry_delay(policy, transient, retry_after)).await;
                    transient += 1;
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
    let inner = &ctx.inner;
    let request = Request { range, ..Request::get(&url, &ctx.headers) };
    let mut body = inner.http.open(request).await?;
    let (layout, id, file, mode, key, options) =
        (inner.layout.clone(), ctx.id.clone(), seg.file.clone(), ctx.mode, ctx.key.clone(), ctx.seal_options());
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

/// Gets a fresh source URL from the app and re-reads the playlists. Only one refresh runs at a
/// time; workers that saw the same expired generation share it.
async fn refresh(ctx: &Ctx, plan: Option<&Plan>, seen: u64, status: u16) -> JobResult {
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
            let hook = ctx.inner.refresher().ok_or_else(|| expired("no refresh hook is set"))?;
            let current = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let fresh = hook
                .refresh(RefreshRequest {
                    asset_id: ctx.id.clone(),
                    source_url: current,
                    status,
                    title: ctx.title.clone(),
                })
                .await
                .ok_or_else(|| expired("the refresh hook gave no new URL"))?;
            parse_url(&fresh).map_err(|_| expired("the refresh hook returned an invalid URL"))?
        }
    };
    tracing::info!(asset = %ctx.id, "source refreshed");
    if let Some(plan) = plan {
        if let Err(stop) = refresh_plan(ctx, plan, &url).await {
            if matches!(stop, Stop::Restart(_)) {
                // Start over from the fresh source, not the expired one.
                ctx.inner.catalog.set_source_url(&ctx.id, url.as_str()).await.map_err(catalog_stop)?;
                *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = url.to_string();
            }
            return Err(stop);
        }
    } else {
        ctx.inner.catalog.update_rendition_source(&ctx.id, 0, url.as_str(), None).await.map_err(catalog_stop)?;
    }
    ctx.inner.catalog.set_source_url(&ctx.id, url.as_str()).await.map_err(catalog_stop)?;
    *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = url.to_string();
    ctx.generation.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Asks VOD for the asset's stream again (the app may hand out fresh credentials first). A
/// different transcode restarts the download from it.
async fn fresh_vod_url(ctx: &Ctx, vod: &tokio::sync::Mutex<VodState>) -> JobResult<Url> {
    let mut state = vod.lock().await;
    let output = ctx.request.vod.as_ref().map(|v| v.output_type).unwrap_or_default();
    let r =
        vodsrc::refresh(&ctx.inner, &ctx.id, &state, output).await.map_err(|e| Stop::Failed(vodsrc::failure(&e)))?;
    ctx.inner.catalog.set_vod(&ctx.id, &r.state.to_json()).await.map_err(catalog_stop)?;
    ctx.vod_refresh_at.store(r.state.expires_at, Ordering::SeqCst);
    *state = r.state;
    if let Some(why) = r.changed {
        ctx.inner.catalog.set_source_url(&ctx.id, r.url.as_str()).await.map_err(catalog_stop)?;
        *ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner) = r.url.to_string();
        return Err(Stop::Restart(FailureReason::SourceChanged { message: why }));
    }
    Ok(r.url)
}

/// Re-reads the playlists from a fresh source and matches them to the plan by media sequence
/// number; a different timeline restarts the download.
async fn refresh_plan(ctx: &Ctx, plan: &Plan, url: &Url) -> JobResult {
    let inner = &ctx.inner;
    let resolved = resolve(inner, url, &ctx.headers).await.map_err(|e| error_to_failure("refreshed source", &e))?;
    let choice = choose(&resolved, &ctx.request).map_err(|e| error_to_failure("refreshed source", &e))?;
    let mut updates = Vec::new();
    {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        if choice.renditions.len() != p.len() {
            return Err(Stop::Restart(FailureReason::SourceChanged {
                message: "the refreshed source offers different renditions".into(),
            }));
        }
        for (old, new) in p.iter().zip(&choice.renditions) {
            let same = old.role == new.role
                && (crate::identity::strip_signature(&new.url) == crate::identity::strip_signature(&old.base)
                    || serde_json::from_str::<serde_json::Value>(&old.attrs).is_ok_and(|a| a == new.attrs));
            if !same {
                return Err(Stop::Restart(FailureReason::SourceChanged {
                    message: format!("the refreshed source's {} rendition is different", old.role),
                }));
            }
            updates.push((old.idx, old.role, new.url.clone()));
        }
    }
    let imports = match &resolved {
        super::Resolved::Master { master, .. } => Some(&master.variables),
        _ => None,
    };
    let mut fetched = Vec::new();
    for (idx, role, purl) in updates {
        let (text, base, pl) = match (&resolved, idx) {
            (super::Resolved::Media { text, base, playlist }, 0) => (text.clone(), base.clone(), playlist.clone()),
            _ => fetch_playlist(inner, &purl, &ctx.headers, imports, &role.to_string())
                .await
                .map_err(|e| error_to_failure("refreshed playlist", &e))?,
        };
        fetched.push((idx, text, base, pl));
    }
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
        inner.catalog.update_rendition_source(&ctx.id, idx, base.as_str(), playlist).await.map_err(catalog_stop)?;
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

async fn finish_hls(ctx: &Ctx, plan: &Plan, tracker: &Tracker) -> JobResult {
    let inner = &ctx.inner;
    let key = ctx.key.as_deref();
    let (rendition_playlists, master) = {
        let p = plan.read().unwrap_or_else(PoisonError::into_inner);
        let mut lists = Vec::new();
        for r in p.iter() {
            let names = RenditionNames { playlist: &r.playlist, role: r.role };
            lists.push((format!("{}/index.m3u8", r.dir), write_local_playlist(&r.playlist, &names)));
        }
        (lists, local_master(&p, tracker))
    };
    for (name, text) in rendition_playlists.iter().chain(std::iter::once(&("index.m3u8".to_owned(), master))) {
        store::write_small(&inner.layout, &ctx.id, name, ctx.mode, key, text.as_bytes()).map_err(|e| match e {
            StoreError::Full => ctx.storage_full(text.len() as u64),
            other => storage("writing playlists", other),
        })?;
    }
    verify_stored(ctx).await?;
    inner.catalog.set_entry(&ctx.id, "index.m3u8").await.map_err(catalog_stop)?;
    let (bytes, _) = tracker.committed_totals();
    inner.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
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

/// Completed means verified: every piece is committed and its file on disk has the size the
/// catalog records.
async fn verify_stored(ctx: &Ctx) -> JobResult {
    let segs = ctx.inner.catalog.segments(&ctx.id).await.map_err(catalog_stop)?;
    for s in &segs {
        if !s.done {
            return Err(Stop::Failed(FailureReason::Storage { message: format!("{} is not stored", s.file) }));
        }
        let size = s.size.unwrap_or(0);
        if s.kind == SegmentKind::Media && size == 0 {
            continue; // a gap
        }
        check_on_disk(ctx, &s.file, size, ctx.inner.config.chunk_size)?;
    }
    Ok(())
}

/// The stored `file` holds `size` bytes of plaintext: its length on disk is that (Normal mode)
/// or that sealed in chunks of `chunk_size` (Encrypted mode).
fn check_on_disk(ctx: &Ctx, file: &str, size: u64, chunk_size: u32) -> JobResult {
    let expected = match ctx.mode {
        Mode::Normal => size,
        Mode::Encrypted => seal::sealed_len(size, chunk_size),
    };
    match std::fs::metadata(ctx.inner.layout.file(&ctx.id, file, ctx.mode)) {
        Ok(m) if m.len() == expected => Ok(()),
        Ok(m) => Err(Stop::Failed(FailureReason::Storage {
            message: format!("{file} has {} bytes on disk, expected {expected}", m.len()),
        })),
        Err(e) => Err(storage(file, e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Progressive

#[allow(clippy::large_enum_variant)] // one per progressive download
enum FileWriter {
    Plain { file: std::io::BufWriter<std::fs::File>, digest: ring::digest::Context, len: u64 },
    Sealed(Box<SealWriter<std::fs::File>>),
}

impl FileWriter {
    fn len(&self) -> u64 {
        match self {
            FileWriter::Plain { len, .. } => *len,
            FileWriter::Sealed(w) => w.plaintext_len(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        match self {
            FileWriter::Plain { file, digest, len } => {
                file.write_all(data)?;
                digest.update(data);
                *len += data.len() as u64;
                Ok(())
            }
            FileWriter::Sealed(w) => Ok(w.append(data)?),
        }
    }

    /// Flushes and syncs what is on disk; returns the plaintext bytes that are durable.
    fn checkpoint(&mut self) -> Result<u64, StoreError> {
        match self {
            FileWriter::Plain { file, len, .. } => {
                file.flush()?;
                file.get_ref().sync_data()?;
                Ok(*len)
            }
            FileWriter::Sealed(w) => {
                w.get_ref().sync_data()?;
                Ok(w.chunks_written() * u64::from(w.chunk_size()))
            }
        }
    }
}

/// What every plaintext byte of a progressive file passes through, in order (a kept prefix is
/// fed again on resume): the content check, and the CRC-64 of a VOD source file.
struct FileChecks {
    sniff: Sniffer,
    crc: Option<crate::vod::crc64::Crc64>,
}

impl FileChecks {
    fn new(crc: bool) -> Self {
        Self { sniff: Sniffer::new(), crc: crc.then(Default::default) }
    }

    fn update(&mut self, data: &[u8]) {
        self.sniff.update(data);
        if let Some(c) = &mut self.crc {
            c.update(data);
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.crc.is_some());
    }
}

fn open_part(
    ctx: &Ctx,
    part: &std::path::Path,
    resume_at: u64,
    sniff: &mut FileChecks,
) -> Result<FileWriter, StoreError> {
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let context = store::seal_context(&ctx.id, &progressive_name(part, ctx.mode));
    match (ctx.mode, ctx.key.as_deref()) {
        (Mode::Normal, _) => {
            let mut file = std::fs::File::options().create(true).truncate(false).read(true).write(true).open(part)?;
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            let keep = resume_at.min(file.metadata()?.len());
            file.set_len(keep)?;
            // Re-read what is kept: for the digest and the content check.
            file.seek(SeekFrom::Start(0))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut left = keep;
            while left > 0 {
                let n = file.read(&mut buf[..(left.min(1 << 20)) as usize])?;
                if n == 0 {
                    break;
                }
                digest.update(&buf[..n]);
                sniff.update(&buf[..n]);
                left -= n as u64;
            }
            file.seek(SeekFrom::End(0))?;
            Ok(FileWriter::Plain { file: std::io::BufWriter::with_capacity(256 * 1024, file), digest, len: keep })
        }
        (Mode::Encrypted, Some(key)) => {
            let chunk = u64::from(ctx.inner.config.chunk_size);
            let chunks = resume_at / chunk;
            if chunks > 0
                && let Ok(mut file) = std::fs::File::options().read(true).write(true).open(part)
            {
                let mut header = [0u8; HEADER_LEN];
                let sealed_keep = HEADER_LEN as u64 + chunks * (chunk + TAG_LEN as u64);
                if file.metadata()?.len() >= sealed_keep && file.read_exact(&mut header).is_ok() {
                    // Verify what is kept (it was written before a crash) and feed the checker.
                    if verify_sealed_prefix(part, key, &context, chunks, sniff).is_ok() {
                        file.set_len(sealed_keep)?;
                        file.seek(SeekFrom::End(0))?;
                        if let Ok(w) = SealWriter::resume(file, key, &context, &header, chunks) {
                            return Ok(FileWriter::Sealed(Box::new(w)));
                        }
                    }
                }
            }
            sniff.reset();
            let file = std::fs::File::create(part)?;
            Ok(FileWriter::Sealed(Box::new(SealWriter::new(file, key, &context, ctx.seal_options())?)))
        }
        (Mode::Encrypted, None) => Err(StoreError::Io(std::io::Error::other("encrypted asset without content key"))),
    }
}

/// Decrypts and verifies the first `chunks` chunks of a partial sealed file, feeding their
/// plaintext to the content checker.
fn verify_sealed_prefix(
    part: &std::path::Path,
    key: &ContentKey,
    context: &[u8],
    chunks: u64,
    sniff: &mut FileChecks,
) -> Result<(), StoreError> {
    let file = std::fs::File::open(part)?;
    let reader = seal::PartialReader::new(&file, key, context)?;
    let mut buf = vec![0u8; reader.chunk_size() as usize + TAG_LEN];
    for i in 0..chunks {
        sniff.update(reader.decrypt_chunk(i, &mut buf)?);
    }
    Ok(())
}

fn progressive_name(part: &std::path::Path, mode: Mode) -> String {
    let name = part.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".part").unwrap_or(&name).to_owned();
    match mode {
        Mode::Encrypted => name.strip_suffix(store::SEALED_SUFFIX).unwrap_or(&name).to_owned(),
        Mode::Normal => name,
    }
}

async fn progressive(ctx: &Arc<Ctx>) -> JobResult {
    let inner = &ctx.inner;
    let (asset, rends, segs) = load(ctx).await?;
    let (Some(seg), Some(rend)) = (segs.first(), rends.first()) else {
        return Err(Stop::Failed(FailureReason::Storage { message: "progressive asset without a file row".into() }));
    };
    let tracker = Tracker::new(
        Arc::clone(inner),
        ctx.id.clone(),
        1,
        (seg.resume_offset, 0),
        (asset.bytes_expected, asset.expected_exact),
    );
    if !seg.done {
        if ctx.vod.is_some() && (seg.resume_offset > 0 || ctx.urls_expired()) {
            // Resuming a VOD download: a fresh URL, and a check that it is still the same file.
            refresh(ctx, None, ctx.generation.load(Ordering::SeqCst), 0).await?;
        }
        let rends = ctx.inner.catalog.renditions(&ctx.id).await.map_err(catalog_stop)?;
        let rend = rends.first().unwrap_or(rend);
        download_file(ctx, seg, rend, &tracker, asset.bytes_expected).await?;
    }
    inner.catalog.set_entry(&ctx.id, &seg.file).await.map_err(catalog_stop)?;
    verify_stored(ctx).await?;
    let (bytes, _) = tracker.committed_totals();
    inner.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
    tracker.set_expected(Some(bytes), true);
    tracker.emit(true);
    Ok(())
}

async fn download_file(
    ctx: &Arc<Ctx>,
    seg: &SegmentRow,
    rend: &RenditionRow,
    tracker: &Tracker,
    expected: Option<u64>,
) -> JobResult {
    let inner = &ctx.inner;
    let dest = inner.layout.file(&ctx.id, &seg.file, ctx.mode);
    let part =
        dest.with_file_name(format!("{}.part", dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let mut validator = rend.validator.clone();
    let mut url = Url::parse(&rend.url).map_err(|e| storage("catalog URL", e))?;
    if let Some(needed) = expected {
        let needed = needed.saturating_sub(seg.resume_offset);
        let available = store::available_space(inner.layout.root()).map_err(|e| storage("free space", e))?;
        if needed + needed / 20 > available {
            return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
        }
    }
    // Resume only with a validator: without one, a changed file could not be detected.
    let resume_at = if validator.is_some() { seg.resume_offset } else { 0 };
    // A VOD source file is checked against the size and CRC-64 VOD reports.
    let mezzanine = match &ctx.vod {
        Some(v) => Some(v.lock().await.clone()).filter(|s| s.mezzanine),
        None => None,
    };
    let mut sniff = FileChecks::new(mezzanine.as_ref().is_some_and(|m| m.crc64.is_some()));
    let mut writer =
        open_part(ctx, &part, resume_at, &mut sniff).map_err(|e| store_stop(ctx, "opening the file", e))?;
    tracker.set_committed(writer.len(), 0);
    let policy = &inner.config.retry;
    let mut transient = 0u32;
    let mut last_checkpoint = writer.len();
    let mut stored_at_last_failure = writer.len();
    loop {
        let generation = ctx.generation.load(Ordering::SeqCst);
        if ctx.urls_expired() {
            refresh(ctx, None, generation, 0).await?;
            let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
            url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
            continue;
        }
        let start = writer.len();
        let if_range = validator.clone().filter(|_| start > 0);
        let request = Request {
            from: (start > 0).then_some(start),
            if_range: if_range.as_deref(),
            ..Request::get(&url, &ctx.headers)
        };
        let result: Result<(), AttemptError> = async {
            let mut body = inner.http.open(request).await?;
            if start > 0 && !body.partial {
                // The file changed (If-Range failed) or the server ignores ranges: start over
                // cleanly with what this response carries.
                tracing::info!(asset = %ctx.id, "source file changed or cannot resume; starting over");
                sniff.reset();
                writer = open_part(ctx, &part, 0, &mut sniff)?;
                last_checkpoint = 0;
                tracker.set_committed(0, 0);
                inner
                    .catalog
                    .set_resume_point(&ctx.id, 0, None)
                    .await
                    .map_err(|e| AttemptError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))?;
                inner.emit(Event::Restarted {
                    id: ctx.id.clone(),
                    reason: FailureReason::SourceChanged { message: "the file changed on the server".into() },
                });
            }
            if body.validator.is_some() {
                validator = body.validator.clone();
            }
            if let Some(total) = body.total_size {
                tracker.set_expected(Some(total), true);
            }
            // From the first byte, the file's start is held back until it is known to be media:
            // an error page served with 200 is never written as the film.
            let mut head = (writer.len() == 0).then(Vec::new);
            let mut ended = false;
            while !ended {
                let chunk = match (body.chunk().await?, &mut head) {
                    (Some(c), Some(h)) => {
                        h.extend_from_slice(&c);
                        if h.len() < sniff::HEAD_LEN {
                            continue;
                        }
                        check_file_head(h, false)?;
                        bytes::Bytes::from(std::mem::take(h))
                    }
                    (Some(c), None) => c,
                    (None, Some(h)) => {
                        check_file_head(h, true)?;
                        ended = true;
                        bytes::Bytes::from(std::mem::take(h))
                    }
                    (None, None) => break,
                };
                if head.as_ref().is_some_and(Vec::is_empty) {
                    head = None;
                }
                writer.write(&chunk)?;
                sniff.update(&chunk);
                tracker.written(chunk.len() as u64);
                if writer.len().saturating_sub(last_checkpoint) >= inner.config.checkpoint_bytes {
                    let durable = writer.checkpoint()?;
                    inner
                        .catalog
                        .set_resume_point(&ctx.id, durable, validator.as_deref())
                        .await
                        .map_err(|e| AttemptError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))?;
                    tracker.set_committed(durable, writer.len() - durable);
                    last_checkpoint = writer.len();
                    // Progress: fresh URLs are fruitless only when nothing is stored between them.
                    ctx.fruitless.store(0, Ordering::Relaxed);
                    check_still_running(ctx).await.map_err(|_| AttemptError::Stopped)?;
                }
            }
            Ok(())
        }
        .await;
        // A long file may lose its connection many times: the retry budget is per stretch
        // without progress, not per file.
        if writer.len() > stored_at_last_failure {
            transient = 0;
            stored_at_last_failure = writer.len();
        }
        match result {
            Ok(()) => break,
            Err(AttemptError::Fetch(e)) => match e.class() {
                ErrorClass::Transient { retry_after } if transient + 1 < policy.attempts => {
                    tokio::time::sleep(retry_delay(policy, transient, retry_after)).await;
                    transient += 1;
                }
                ErrorClass::Expired => {
                    refresh(ctx, None, generation, status_of(&e)).await?;
                    let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
                }
                _ => return Err(Stop::Failed(fetch_failure("the file", &e))),
            },
            Err(AttemptError::Stopped) => return Err(Stop::External),
            Err(AttemptError::Content(m)) => {
                if writer.len() == 0 {
                    // Refused at its first bytes: leave nothing behind.
                    drop(writer);
                    let _ = std::fs::remove_file(&part);
                }
                return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {m}") }));
            }
            Err(AttemptError::Store(e)) => return Err(store_stop(ctx, "the file", e)),
        }
    }
    // A media format we recognise, and well formed where we can tell (TS packets, MP4 boxes);
    // a file that is not is discarded, never kept or resumed from.
    if let Err(e) = sniff.sniff.finish() {
        drop(writer);
        let _ = std::fs::remove_file(&part);
        inner.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
        return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {e}") }));
    }
    if let Some(m) = &mezzanine {
        let got_size = writer.len();
        let got_crc = sniff.crc.take().map(crate::vod::crc64::Crc64::finish);
        let size_bad = m.size.is_some_and(|s| s != got_size);
        let crc_bad = matches!((m.crc64, got_crc), (Some(want), Some(got)) if want != got);
        if size_bad || crc_bad {
            // Never keep (or resume) a file that is not the source file.
            drop(writer);
            let _ = std::fs::remove_file(&part);
            inner.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
            let message = if size_bad {
                format!("the source file has {got_size} bytes, VOD says {}; it was discarded", m.size.unwrap_or(0))
            } else {
                format!(
                    "the source file's CRC-64 is {}, VOD says {}; it was discarded",
                    got_crc.unwrap_or(0),
                    m.crc64.unwrap_or(0)
                )
            };
            return Err(Stop::Failed(FailureReason::BadSource { message }));
        }
    }
    // Complete: seal the last chunk, make it durable, move it into place, commit.
    let (size, sha256) = match writer {
        FileWriter::Plain { file, digest, len } => {
            let file = file.into_inner().map_err(|e| storage("the file", e.into_error()))?;
            file.sync_data().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            (len, Some(hex::encode(digest.finish())))
        }
        FileWriter::Sealed(w) => {
            let (file, summary) = w.finish().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            file.sync_data().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            (summary.plaintext_len, None)
        }
    };
    std::fs::rename(&part, &dest).map_err(|e| storage("the file", e))?;
    seal::sync_parent_dir(&dest).map_err(|e| storage("the file", e))?;
    let done = DoneSegment { rendition: 0, kind: SegmentKind::File, idx: 0, size, sha256 };
    inner.catalog.commit_segments(&ctx.id, &[done]).await.map_err(catalog_stop)?;
    tracker.set_committed(size, 0);
    tracker.committed(0, 1, 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Images

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
async fn images(ctx: &Arc<Ctx>) -> JobResult {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let mut rows = ctx.inner.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    if adopt_images(ctx, &rows).await? > 0 {
        rows = ctx.inner.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    }
    let pending: Vec<ImageRow> = rows.iter().filter(|i| !i.done).cloned().collect();
    if pending.is_empty() {
        return verify_images(ctx, &rows);
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
    let rows = ctx.inner.catalog.images(&ctx.id).await.map_err(catalog_stop)?;
    verify_images(ctx, &rows)
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
        ctx.inner
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
    ctx.inner.catalog.fail_image(&ctx.id, img.kind, img.idx, &reason.to_json()).await.map_err(catalog_stop)?;
    ctx.inner.emit(Event::ImageMissing {
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
    let inner = &ctx.inner;
    let what = format!("image {}", img.file);
    let mut refreshes = 0;
    let (bytes, url) = loop {
        let (generation, url) = {
            let u = urls.lock().await;
            (u.generation, u.urls.get(&(img.kind, img.idx)).cloned().unwrap_or_else(|| img.url.clone()))
        };
        let parsed = Url::parse(&url)
            .map_err(|e| FailureReason::BadSource { message: format!("{what}: its URL does not parse ({e})") })?;
        match inner.http.get_small(&parsed, &ctx.headers, IMAGE_LIMIT, &inner.config.retry).await {
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
                    inner.vod.url_expired(&ctx.id).await;
                    let video_id = vod.lock().await.video_id.clone();
                    let fresh = vodsrc::fresh_image_urls(inner, &video_id)
                        .await
                        .map_err(|e| Stop::Failed(vodsrc::failure(&e)))?;
                    inner.catalog.update_image_urls(&ctx.id, &fresh).await.map_err(catalog_stop)?;
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
        (inner.layout.clone(), ctx.id.clone(), img.file.clone(), ctx.mode, ctx.key.clone());
    let stored = blocking(ctx, move || store::write_small(&layout, &id, &file, mode, key.as_deref(), &data))
        .await
        .map_err(|e| storage("internal error", e))?
        .map_err(|e| store_stop(ctx, &what, e))?;
    inner
        .catalog
        .commit_image(&ctx.id, img.kind, img.idx, stored.size, stored.sha256.as_deref())
        .await
        .map_err(catalog_stop)?;
    urls.lock().await.fruitless = 0;
    Ok(())
}

/// Every image row is stored, with its file of the size recorded, or recorded as missing.
fn verify_images(ctx: &Ctx, rows: &[ImageRow]) -> JobResult {
    for i in rows {
        if !i.done && i.failure.is_some() {
            continue;
        }
        let size = i
            .size
            .filter(|_| i.done)
            .ok_or_else(|| Stop::Failed(FailureReason::Storage { message: format!("{} is not stored", i.file) }))?;
        // Images are small files, sealed with the default chunk size (`store::write_small`).
        check_on_disk(ctx, &i.file, size, SealOptions::default().chunk_size)?;
    }
    Ok(())
}

/// The first bytes of a progressive file (all of them, if it is that short) must be media.
fn check_file_head(head: &[u8], complete: bool) -> Result<(), AttemptError> {
    match sniff::identify(head, complete) {
        Content::Media(_) => Ok(()),
        Content::Hls => Err(AttemptError::Content("got an HLS playlist, not the file".into())),
        Content::Dash => Err(AttemptError::Content("got a DASH manifest, not the file".into())),
        Content::NotMedia(what) => Err(AttemptError::Content(format!("got {what}, not media"))),
    }
}

fn status_of(e: &FetchError) -> u16 {
    match e {
        FetchError::Status { status, .. } => *status,
        _ => 0,
    }
}

fn store_stop(ctx: &Ctx, what: &str, e: StoreError) -> Stop {
    match e {
        StoreError::Full => ctx.storage_full(0),
        other => storage(what, other),
    }
}
