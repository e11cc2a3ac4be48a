//! The download engine: running one asset's download, given a small context (the catalog, the
//! store, the source, the key, events and the refresh hook) and returning what happened. It never
//! touches the scheduler: the scheduler starts jobs and learns how they ended.
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

mod adopt;
mod create;
mod hls;
mod images;
mod lock;
mod piece;
mod progress;
mod progressive;
mod ranges;
mod refresh;

pub(crate) use create::{create, preview, requeue};
pub(crate) use images::retry_images;
pub(crate) use lock::{is_locked, wait_unlocked};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use reqwest::header::HeaderMap;

use crate::catalog::{AssetRow, Catalog, RenditionRow, SegmentRow};
use crate::clock::now_ms;
use crate::error::error_to_failure;
use crate::events::Events;
use crate::fetch::FetchError;
use crate::keys::{ContentKey, Kek, KeyError, WrappedKey};
use crate::live::{Live, LiveAsset};
use crate::model::{AssetKind, AssetState, DownloadRequest, Event, FailureReason, Mode, SegmentKind, UrlRefresher};
use crate::seal::{self, SealOptions};
use crate::source::vod::VodState;
use crate::source::{Source, merged_headers, parse_url};
use crate::store::{self, Layout, StoreError};
use create::open_headers;
use hls::hls;
use images::images;
use lock::{Hold, blocking};
use progressive::progressive;

/// What the engine needs from the vault, and nothing else.
pub(crate) struct Deps {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) layout: Layout,
    pub(crate) kek: Arc<Kek>,
    pub(crate) source: Source,
    pub(crate) settings: Settings,
    pub(crate) events: Events,
    pub(crate) refresher: Refresher,
    /// What players and downloads share about the assets they work on.
    pub(crate) live: Arc<Live>,
}

/// The vault's settings the engine uses.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Plaintext bytes per sealed chunk in Encrypted mode.
    pub(crate) chunk_size: u32,
    /// A progressive download makes its progress durable every this many bytes.
    pub(crate) checkpoint_bytes: u64,
    /// A progressive file is fetched in byte-range pieces of about this many bytes (0: on one
    /// connection).
    pub(crate) piece_bytes: u64,
    /// Concurrent requests per asset, unless the request says otherwise.
    pub(crate) max_parallel_requests: usize,
    /// How long the app's refresh hook may take.
    pub(crate) refresh_timeout: std::time::Duration,
}

/// The app's hook for fresh URLs, which it may set or clear at any time.
#[derive(Default)]
pub(crate) struct Refresher(std::sync::RwLock<Option<Arc<dyn UrlRefresher>>>);

impl Refresher {
    pub(crate) fn get(&self) -> Option<Arc<dyn UrlRefresher>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set(&self, hook: Option<Arc<dyn UrlRefresher>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = hook;
    }
}

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
    /// The scheduler held the download back (its requirements are not met): the pieces under
    /// way were finished and recorded, the rest waits; the asset is queued again.
    Held,
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
/// What an asset's job shares between its tasks.
struct Ctx {
    deps: Arc<Deps>,
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
    /// What players watching the asset share with this job.
    live: Arc<LiveAsset>,
    /// Set by the scheduler to hold the download back: take no new piece.
    drain: Arc<AtomicBool>,
}
impl Ctx {
    /// Whether the asset's VOD URLs are past their lifetime (`AuthTimeout`).
    fn urls_expired(&self) -> bool {
        now_ms() >= self.vod_refresh_at.load(Ordering::SeqCst)
    }

    /// Whether the job's fetches are held to the vault's rate cap: a download's are; those of a
    /// paused, failed or held-back (queued) asset a player watches (what the player waits for)
    /// are not.
    fn rate_capped(&self) -> bool {
        !matches!(self.running, AssetState::Paused | AssetState::Failed | AssetState::Queued)
    }

    /// Whether the scheduler holds this download back (no new piece is started).
    fn draining(&self) -> bool {
        self.drain.load(Ordering::SeqCst)
    }

    fn seal_options(&self) -> SealOptions {
        SealOptions { chunk_size: self.deps.settings.chunk_size }
    }

    /// The disk is full; how much is free is filled in when the failure is recorded (`run_job`).
    fn storage_full(&self, needed: u64) -> Stop {
        Stop::Failed(FailureReason::StorageFull { needed, available: 0 })
    }
}
/// How a job ended (already recorded in the catalog and announced).
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The asset is completed.
    Completed,
    /// The asset failed.
    Failed(FailureReason),
    /// Someone else changed the asset's state (pause, cancel, remove), or another job holds it.
    Stopped,
    /// Held back by the scheduler; queued again.
    Held,
}

/// Runs asset `id` to completion, failure or stop, and records the outcome.
/// Setting `drain` asks it to take no new piece: the pieces under way finish and are recorded,
/// and the asset is queued again ([`Outcome::Held`]).
pub(crate) async fn run_job(deps: Arc<Deps>, id: String, drain: Arc<AtomicBool>) -> Outcome {
    // A bug must not leave the asset "downloading" forever: a panic fails it, typed.
    let result = match std::panic::AssertUnwindSafe(run(&deps, &id, drain)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(Stop::Failed(FailureReason::Storage {
            message: "internal error (a bug in vodvault); the download can be resumed".into(),
        })),
    };
    match result {
        Ok(()) => {
            match deps.catalog.transition(&id, &[AssetState::Downloading], AssetState::Completed, None).await {
                Ok(true) => {
                    // If a full disk used up the catalog's reserve, there may be room again.
                    let layout = deps.layout.clone();
                    let _ = tokio::task::spawn_blocking(move || store::ensure_reserve(&layout)).await;
                    deps.events.state(&id, AssetState::Completed, None);
                    Outcome::Completed
                }
                Ok(false) => Outcome::Stopped,
                // Not recorded, so not complete: it finishes (quickly) next time it runs.
                Err(e) => {
                    let reason = FailureReason::Storage { message: format!("recording completion: {e}") };
                    deps.events.state(&id, AssetState::Failed, Some(reason.clone()));
                    Outcome::Failed(reason)
                }
            }
        }
        Err(Stop::Failed(mut reason)) => {
            if let FailureReason::StorageFull { available, .. } = &mut reason {
                // Room to record the failure (see `store::ensure_reserve`).
                let layout = deps.layout.clone();
                let free = tokio::task::spawn_blocking(move || {
                    store::release_reserve(&layout);
                    store::available_space(layout.root()).unwrap_or(0)
                });
                let free = free.await.unwrap_or(0);
                if *available == 0 {
                    *available = free;
                }
            }
            let json = reason.to_json().map_err(|e| tracing::error!(asset = %id, "recording the failure: {e}")).ok();
            match deps.catalog.transition(&id, &[AssetState::Downloading], AssetState::Failed, json.as_deref()).await {
                Ok(true) => {
                    tracing::warn!(asset = %id, "download failed: {reason}");
                    deps.events.state(&id, AssetState::Failed, Some(reason.clone()));
                    Outcome::Failed(reason)
                }
                Ok(false) => Outcome::Stopped,
                // The failure could not be recorded (a full disk, say): still tell this process.
                Err(e) => {
                    tracing::error!(asset = %id, "download failed: {reason}; recording it failed too: {e}");
                    deps.events.state(&id, AssetState::Failed, Some(reason.clone()));
                    Outcome::Failed(reason)
                }
            }
        }
        Err(Stop::External | Stop::Restart(_)) => Outcome::Stopped,
        Err(Stop::Held) => {
            match deps.catalog.transition(&id, &[AssetState::Downloading], AssetState::Queued, None).await {
                Ok(true) => Outcome::Held,
                Ok(false) => Outcome::Stopped,
                Err(e) => {
                    tracing::warn!(asset = %id, "holding the download back: {e}");
                    Outcome::Held
                }
            }
        }
    }
}
/// For a paused, failed or held-back (queued) asset a player watches: fetches only the pieces players ask for
/// (stored like any other, counted in its progress) until no player watches; its state stays as
/// it is. Returns [`Outcome::Stopped`] (a piece that cannot be fetched is the player's 503).
pub(crate) async fn run_for_players(deps: Arc<Deps>, id: String) -> Outcome {
    match std::panic::AssertUnwindSafe(for_players(&deps, &id)).catch_unwind().await {
        Ok(Ok(()) | Err(Stop::External | Stop::Restart(_) | Stop::Held)) => {}
        Ok(Err(Stop::Failed(reason))) => tracing::debug!(asset = %id, "fetching for a player stopped: {reason}"),
        Err(_) => tracing::error!(asset = %id, "fetching for a player: internal error (a bug in vodvault)"),
    }
    Outcome::Stopped
}
async fn for_players(deps: &Arc<Deps>, id: &str) -> JobResult {
    let Some(hold) = Hold::acquire(deps, id).await.map_err(|e| storage("lock file", e))? else {
        return Err(Stop::External);
    };
    let row = deps.catalog.asset(id).await.map_err(catalog_stop)?.ok_or(Stop::External)?;
    // Queued: held back by the scheduler (its requirements are not met).
    if !matches!(row.state, AssetState::Paused | AssetState::Failed | AssetState::Queued) {
        return Err(Stop::External);
    }
    let (state, kind) = (row.state, row.kind);
    let ctx = Arc::new(context(deps, row, state, hold)?);
    let result = match kind {
        AssetKind::Hls | AssetKind::Dash => hls::for_players(&ctx).await,
        AssetKind::Progressive => progressive::for_players(&ctx).await,
    };
    ctx.hold.idle().await;
    result
}
async fn run(deps: &Arc<Deps>, id: &str, drain: Arc<AtomicBool>) -> JobResult {
    // One process per asset: the lock is held for the whole job, and by its blocking tasks.
    let Some(hold) = Hold::acquire(deps, id).await.map_err(|e| storage("lock file", e))? else {
        return Err(Stop::External);
    };
    // Held back before it started: it stays queued, and says nothing.
    if drain.load(Ordering::SeqCst) {
        return Err(Stop::External);
    }
    match deps.catalog.transition(id, &[AssetState::Queued], AssetState::Downloading, None).await {
        Ok(true) => {}
        Ok(false) => return Err(Stop::External),
        Err(e) => return Err(storage("catalog", e)),
    }
    deps.events.state(id, AssetState::Downloading, None);
    let row = deps.catalog.asset(id).await.map_err(catalog_stop)?.ok_or(Stop::External)?;
    let mut ctx = context(deps, row, AssetState::Downloading, hold)?;
    ctx.drain = drain;
    let ctx = Arc::new(ctx);
    let mut restarts = 0;
    let result = loop {
        let r = match ctx_kind(&ctx).await {
            AssetKind::Hls | AssetKind::Dash => hls(&ctx).await,
            AssetKind::Progressive => progressive(&ctx).await,
        };
        // Images (VOD covers, snapshots, sprites, thumbnail tracks) complete the asset.
        let r = match r {
            Ok(()) => images(&ctx).await,
            other => other,
        };
        match r {
            // A source that changes again and again (a CDN whose edges disagree on a file's
            // validator, say) fails the asset instead of starting over for ever.
            Err(Stop::Restart(reason)) if restarts >= MAX_RESTARTS => break Err(Stop::Failed(reason)),
            Err(Stop::Restart(reason)) => {
                restarts += 1;
                tracing::warn!(asset = %id, "restarting: {reason}");
                ctx.live.new_version();
                // No piece of the old plan may land in the new one.
                ctx.hold.idle().await;
                restart(&ctx).await?;
                deps.events.emit(Event::Restarted { id: id.to_owned(), reason });
            }
            other => break other,
        }
    };
    ctx.hold.idle().await;
    result
}
/// Times one job starts over from a changed source before the asset fails (`source_changed`;
/// resuming it tries again).
const MAX_RESTARTS: u32 = 3;

async fn ctx_kind(ctx: &Ctx) -> AssetKind {
    match ctx.deps.catalog.asset(&ctx.id).await {
        Ok(Some(r)) => r.kind,
        _ => AssetKind::Hls,
    }
}
fn context(deps: &Arc<Deps>, row: AssetRow, running: AssetState, hold: Arc<Hold>) -> JobResult<Ctx> {
    let request: DownloadRequest = serde_json::from_str(&row.request)
        .map_err(|_| FailureReason::Storage { message: "unreadable request in catalog".into() })?;
    let own = open_headers(deps, &row.id, row.headers.as_deref())
        .map_err(|e| FailureReason::KeyMismatch { message: format!("stored headers: {e}") })?;
    let headers = merged_headers(&deps.source, &own).map_err(|e| FailureReason::Storage { message: e.to_string() })?;
    let key = match row.mode {
        Mode::Normal => None,
        Mode::Encrypted => {
            let wrapped = row
                .wrapped_key
                .as_deref()
                .ok_or_else(|| FailureReason::KeyMismatch { message: "encrypted asset without content key".into() })?;
            let wrapped =
                WrappedKey::from_bytes(wrapped).map_err(|e| FailureReason::KeyMismatch { message: e.to_string() })?;
            Some(wrapped.unwrap(&deps.kek, row.id.as_bytes()).map_err(|e| match e {
                KeyError::KeyMismatch { .. } => FailureReason::KeyMismatch { message: e.to_string() },
                other => FailureReason::KeyMismatch { message: format!("content key: {other}") },
            })?)
        }
    };
    let parallel = request.parallel.unwrap_or(deps.settings.max_parallel_requests).max(1);
    let vod = match row.vod.as_deref() {
        None => None,
        Some(json) => Some(VodState::from_json(json).ok_or_else(|| FailureReason::Storage {
            message: "the catalog's VOD record of this asset is unreadable".into(),
        })?),
    };
    let vod_refresh_at = AtomicI64::new(vod.as_ref().map_or(i64::MAX, |v| v.expires_at));
    let live = deps.live.asset(&row.id);
    Ok(Ctx {
        deps: Arc::clone(deps),
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
        live,
        drain: Arc::default(),
    })
}
/// Starts over: deletes stored pieces and plans again from the (current) source.
async fn restart(ctx: &Ctx) -> JobResult {
    let deps = &ctx.deps;
    let url = parse_url(&ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner))
        .map_err(|e| FailureReason::BadSource { message: e.to_string() })?;
    let new = create::plan_source(&deps.source, &ctx.request, &url, &ctx.headers)
        .await
        .map_err(|e| error_to_failure("source", &e))?;
    let dir = deps.layout.asset_dir(&ctx.id);
    let removed = blocking(ctx, move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    });
    removed.await.map_err(|e| storage("internal error", e))?.map_err(|e| storage("removing old files", e))?;
    deps.catalog
        .replace_plan(&ctx.id, &new.renditions, &new.segments, new.expected.0, new.expected.1, new.duration)
        .await
        .map_err(catalog_stop)?;
    Ok(())
}
enum AttemptError {
    Fetch(FetchError),
    Content(String),
    Store(StoreError),
    /// The catalog failed.
    Catalog(String),
    /// A resumed file changed on the server.
    Changed,
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
/// The asset's rows, as the catalog has them now.
async fn load(ctx: &Ctx) -> JobResult<(AssetRow, Vec<RenditionRow>, Vec<SegmentRow>)> {
    let catalog = &ctx.deps.catalog;
    let asset = catalog.asset(&ctx.id).await.map_err(catalog_stop)?.ok_or(Stop::External)?;
    let renditions = catalog.renditions(&ctx.id).await.map_err(catalog_stop)?;
    let segments = catalog.segments(&ctx.id).await.map_err(catalog_stop)?;
    Ok((asset, renditions, segments))
}
/// Whether the asset is still in the state this job runs in (`downloading`, or `completed` for
/// a retry of its missing images): another process (or a call here) may have paused,
/// cancelled or removed it.
async fn check_still_running(ctx: &Ctx) -> JobResult {
    match ctx.deps.catalog.state(&ctx.id).await {
        Ok(Some(s)) if s == ctx.running => Ok(()),
        Ok(_) => Err(Stop::External),
        Err(e) => Err(storage("catalog", e)),
    }
}
/// Completed means verified: every piece is committed and its file on disk has the size the
/// catalog records.
async fn verify_stored(ctx: &Ctx) -> JobResult {
    let segs = ctx.deps.catalog.segments(&ctx.id).await.map_err(catalog_stop)?;
    let mut files = Vec::with_capacity(segs.len());
    for s in segs {
        if !s.done {
            return Err(Stop::Failed(FailureReason::Storage { message: format!("{} is not stored", s.file) }));
        }
        let size = s.size.unwrap_or(0);
        if s.kind == SegmentKind::Media && size == 0 {
            continue; // a gap
        }
        files.push((s.file, size, ctx.deps.settings.chunk_size));
    }
    check_on_disk(ctx, files).await
}
/// Each stored `(file, size, chunk_size)` holds `size` bytes of plaintext: its length on disk is
/// that (Normal mode) or that sealed in chunks of `chunk_size` (Encrypted mode). On a blocking
/// thread: an asset may have thousands of files.
async fn check_on_disk(ctx: &Ctx, files: Vec<(String, u64, u32)>) -> JobResult {
    let (layout, id, mode) = (ctx.deps.layout.clone(), ctx.id.clone(), ctx.mode);
    blocking(ctx, move || {
        for (file, size, chunk_size) in files {
            let expected = match mode {
                Mode::Normal => size,
                Mode::Encrypted => seal::sealed_len(size, chunk_size),
            };
            match std::fs::metadata(layout.file(&id, &file, mode)) {
                Ok(m) if m.len() == expected => {}
                Ok(m) => {
                    return Err(Stop::Failed(FailureReason::Storage {
                        message: format!("{file} has {} bytes on disk, expected {expected}", m.len()),
                    }));
                }
                Err(e) => return Err(storage(&file, e)),
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| storage("internal error", e))?
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
