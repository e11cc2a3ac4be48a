//! Progressive files: one file, fetched in order, resumable from durable checkpoints.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::lock::blocking;
use super::progress::Tracker;
use super::ranges::{Pieces, download_pieces, piece_size, probe};
use super::refresh::refresh;
use super::{
    AttemptError, Ctx, JobResult, Stop, catalog_stop, check_still_running, load, status_of, storage, store_stop,
    verify_stored,
};
use crate::catalog::{DoneSegment, RenditionRow, SegmentRow};
use crate::error::fetch_failure;
use crate::fetch::{ErrorClass, Request, Retry};
use crate::model::{Event, FailureReason, Mode, SegmentKind};
use crate::sniff::{self, Content, Sniffer};
use crate::source::vod::VodState;
use crate::store::{self, StoreError};
use crate::vod::crc64::Crc64;

/// What every plaintext byte of a progressive file passes through, in order (a kept prefix is
/// fed again on resume; a file in pieces is read back whole): the content check, and the CRC-64
/// of a VOD source file.
pub(super) struct FileChecks {
    sniff: Sniffer,
    crc: Option<Crc64>,
}
impl FileChecks {
    pub(super) fn new(crc: bool) -> Self {
        Self { sniff: Sniffer::new(), crc: crc.then(Default::default) }
    }

    /// Why the complete file of `len` bytes is not the file (not media, or not the VOD source
    /// file VOD describes), if it is not.
    pub(super) fn verdict(&mut self, len: u64, mezzanine: Option<&VodState>) -> Option<String> {
        if let Err(e) = self.sniff.finish() {
            return Some(format!("the file: {e}"));
        }
        let m = mezzanine?;
        let crc = self.crc.take().map(Crc64::finish);
        if m.size.is_some_and(|s| s != len) {
            Some(format!("the source file has {len} bytes, VOD says {}; it was discarded", m.size.unwrap_or(0)))
        } else if let (Some(want), Some(got)) = (m.crc64, crc)
            && want != got
        {
            Some(format!("the source file's CRC-64 is {got}, VOD says {want}; it was discarded"))
        } else {
            None
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        self.sniff.update(data);
        if let Some(c) = &mut self.crc {
            c.update(data);
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.crc.is_some());
    }
}

/// What the file's writer is asked to do.
enum Cmd {
    /// (Re)open the part keeping its first `keep` bytes if they verify; answers the length kept.
    Open { keep: u64, reply: oneshot::Sender<Result<u64, StoreError>> },
    /// Append.
    Data(bytes::Bytes),
    /// Make what is written durable; answers how much is.
    Checkpoint(oneshot::Sender<Result<u64, StoreError>>),
    /// Check the whole file and move it into place (or delete it if it is not the file).
    Finish(oneshot::Sender<Result<Finished, StoreError>>),
    /// Delete the part.
    Discard(oneshot::Sender<()>),
}

/// How a file ended.
enum Finished {
    Stored(store::StoredPiece),
    /// Not the file (not media, or not the VOD source file): deleted.
    Bad(String),
}

/// The file's writer: a thread of the job's blocking pool (holding the asset's lock) that does
/// every write, seal, check and sync of a progressive download, fed through a bounded channel so
/// that the network never waits on the disk, nor the runtime on either.
struct FileWriter {
    tx: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<()>,
    /// Plaintext bytes handed to the writer.
    len: u64,
}

/// Network chunks in flight to the writer.
const WRITER_DEPTH: usize = 32;

impl FileWriter {
    fn start(ctx: &Ctx, name: String, mezzanine: Option<VodState>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Cmd>(WRITER_DEPTH);
        let (layout, id, key, options) = (ctx.deps.layout.clone(), ctx.id.clone(), ctx.key.clone(), ctx.seal_options());
        let task = blocking(ctx, move || {
            let mut checks = FileChecks::new(mezzanine.as_ref().is_some_and(|m| m.crc64.is_some()));
            let mut out: Option<store::PartWriter> = None;
            let mut failed: Option<StoreError> = None;
            while let Some(cmd) = rx.blocking_recv() {
                match cmd {
                    Cmd::Open { keep, reply } => {
                        out = None;
                        failed = None;
                        checks.reset();
                        let each = &mut |b: &[u8]| checks.update(b);
                        let r = store::PartWriter::open(&layout, &id, &name, key.as_deref(), options, keep, each);
                        let r = r.map(|w| {
                            let len = w.len();
                            out = Some(w);
                            len
                        });
                        if matches!(r, Ok(0)) {
                            checks.reset();
                        }
                        let _ = reply.send(r);
                    }
                    Cmd::Data(b) => {
                        if failed.is_none()
                            && let Some(w) = &mut out
                        {
                            match w.write(&b) {
                                Ok(()) => checks.update(&b),
                                Err(e) => failed = Some(e),
                            }
                        }
                    }
                    Cmd::Checkpoint(reply) => {
                        let r = match (failed.take(), &mut out) {
                            (Some(e), _) => Err(e),
                            (None, Some(w)) => w.checkpoint(),
                            (None, None) => Err(StoreError::Io(std::io::Error::other("no file open"))),
                        };
                        let _ = reply.send(r);
                    }
                    Cmd::Finish(reply) => {
                        let r = match (failed.take(), out.take()) {
                            (Some(e), _) => Err(e),
                            (None, Some(w)) => finish(w, &mut checks, mezzanine.as_ref()),
                            (None, None) => Err(StoreError::Io(std::io::Error::other("no file open"))),
                        };
                        let _ = reply.send(r);
                    }
                    Cmd::Discard(reply) => {
                        if let Some(w) = out.take() {
                            w.discard();
                        }
                        let _ = reply.send(());
                    }
                }
            }
        });
        Self { tx, task, len: 0 }
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Io(std::io::Error::other("the file's writer stopped"));
        self.tx.send(cmd(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    /// Opens the part keeping what it can of its first `keep` bytes; returns the length kept.
    async fn open(&mut self, keep: u64) -> Result<u64, StoreError> {
        self.len = self.ask(|reply| Cmd::Open { keep, reply }).await??;
        Ok(self.len)
    }

    async fn write(&mut self, data: bytes::Bytes) -> Result<(), StoreError> {
        self.len += data.len() as u64;
        self.tx
            .send(Cmd::Data(data))
            .await
            .map_err(|_| StoreError::Io(std::io::Error::other("the file's writer stopped")))
    }

    async fn checkpoint(&mut self) -> Result<u64, StoreError> {
        self.ask(Cmd::Checkpoint).await?
    }

    async fn finish(self) -> Result<Finished, StoreError> {
        let r = self.ask(Cmd::Finish).await;
        self.stop().await;
        r?
    }

    /// Deletes the part and stops the writer.
    async fn discard(self) {
        let _ = self.ask(Cmd::Discard).await;
        self.stop().await;
    }

    async fn stop(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Checks a complete file (content, and size and CRC-64 for a VOD source file) and stores it, or
/// deletes it: a file that is not the file is never kept or resumed from.
fn finish(w: store::PartWriter, checks: &mut FileChecks, mezzanine: Option<&VodState>) -> Result<Finished, StoreError> {
    match checks.verdict(w.len(), mezzanine) {
        Some(message) => {
            w.discard();
            Ok(Finished::Bad(message))
        }
        None => Ok(Finished::Stored(w.finish()?)),
    }
}

pub(super) async fn progressive(ctx: &Arc<Ctx>) -> JobResult {
    let deps = &ctx.deps;
    let (asset, rends, segs) = load(ctx).await?;
    let (Some(seg), Some(rend)) = (segs.first(), rends.first()) else {
        return Err(Stop::Failed(FailureReason::Storage { message: "progressive asset without a file row".into() }));
    };
    let tracker = Arc::new(Tracker::new(
        deps.events.clone(),
        ctx.id.clone(),
        1,
        (seg.resume_offset, 0),
        (asset.bytes_expected, asset.expected_exact),
    ));
    if !seg.done {
        if ctx.vod.is_some() && (seg.resume_offset > 0 || ctx.urls_expired()) {
            // Resuming a VOD download: a fresh URL, and a check that it is still the same file.
            refresh(ctx, None, ctx.generation.load(Ordering::SeqCst), 0).await?;
        }
        let rends = ctx.deps.catalog.renditions(&ctx.id).await.map_err(catalog_stop)?;
        let rend = rends.first().unwrap_or(rend);
        match in_pieces(ctx, seg, rend, asset.bytes_expected).await? {
            Some((url, pieces)) => download_pieces(ctx, seg, url, pieces, &tracker, false).await?,
            None => download_file(ctx, seg, rend, &tracker, asset.bytes_expected).await?,
        }
    }
    deps.catalog.set_entry(&ctx.id, &seg.file).await.map_err(catalog_stop)?;
    verify_stored(ctx).await?;
    let (bytes, _) = tracker.committed_totals();
    deps.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
    tracker.set_expected(Some(bytes), true);
    tracker.emit(true);
    Ok(())
}
/// For a paused or failed asset a player watches: the pieces players ask for, when the file is
/// fetched in pieces (a file on one connection plays once complete).
pub(super) async fn for_players(ctx: &Arc<Ctx>) -> JobResult {
    let (asset, rends, segs) = load(ctx).await?;
    let (Some(seg), Some(rend)) = (segs.first(), rends.first()) else {
        return Ok(());
    };
    if seg.done {
        return Ok(());
    }
    let tracker = Arc::new(Tracker::new(
        ctx.deps.events.clone(),
        ctx.id.clone(),
        1,
        (0, 0),
        (asset.bytes_expected, asset.expected_exact),
    ));
    match in_pieces(ctx, seg, rend, asset.bytes_expected).await? {
        Some((url, pieces)) => download_pieces(ctx, seg, url, pieces, &tracker, true).await,
        None => Ok(()),
    }
}
/// Whether the file is fetched in byte-range pieces: as recorded when it already is, or when
/// the origin answers ranges with the file's length and a validator and the file is longer than
/// a piece (D40). A file resumed from a single-connection part goes on as it was.
async fn in_pieces(
    ctx: &Ctx,
    seg: &SegmentRow,
    rend: &RenditionRow,
    expected: Option<u64>,
) -> JobResult<Option<(Url, Pieces)>> {
    let url = Url::parse(&rend.url).map_err(|e| storage("catalog URL", e))?;
    let settings = &ctx.deps.settings;
    // Pieces recorded with a chunk size they do not fit (the vault's was changed) are fetched
    // again: their chunks could not be written where the format puts them.
    if let Some(p) = seg.pieces.as_deref().and_then(|j| serde_json::from_str::<Pieces>(j).ok())
        && p.piece.is_multiple_of(u64::from(settings.chunk_size))
    {
        return Ok(Some((url, p)));
    }
    if settings.piece_bytes == 0 || seg.resume_offset > 0 {
        return Ok(None);
    }
    let piece = piece_size(settings.piece_bytes, settings.chunk_size);
    if expected.is_some_and(|e| e <= piece) {
        return Ok(None); // one piece: nothing to fetch in parallel
    }
    // A failing probe is left to the single-connection path, which retries, refreshes and
    // reports by kind of failure.
    Ok(match probe(ctx, &url, piece).await {
        Ok(Some((len, validator))) => {
            Some((url, Pieces { piece, len, validator, done: std::collections::BTreeSet::new() }))
        }
        Ok(None) | Err(_) => None,
    })
}
async fn download_file(
    ctx: &Arc<Ctx>,
    seg: &SegmentRow,
    rend: &RenditionRow,
    tracker: &Tracker,
    expected: Option<u64>,
) -> JobResult {
    let deps = &ctx.deps;
    let mut validator = rend.validator.clone();
    let mut url = Url::parse(&rend.url).map_err(|e| storage("catalog URL", e))?;
    // Resume only with a validator: without one, a changed file could not be detected.
    let resume_at = if validator.is_some() { seg.resume_offset } else { 0 };
    if let Some(needed) = expected {
        let mut needed = needed.saturating_sub(resume_at);
        if ctx.mode == Mode::Encrypted {
            // A resumed part is sealed anew (D36): its kept bytes are written once more before
            // the old copy goes.
            needed += resume_at;
        }
        let root = deps.layout.root().to_owned();
        let available = blocking(ctx, move || store::available_space(&root))
            .await
            .map_err(|e| storage("free space", e))?
            .map_err(|e| storage("free space", e))?;
        if needed + needed / 20 > available {
            return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
        }
    }
    // A VOD source file is checked against the size and CRC-64 VOD reports.
    let mezzanine = match &ctx.vod {
        Some(v) => Some(v.lock().await.clone()).filter(|s| s.mezzanine),
        None => None,
    };
    let mut writer = FileWriter::start(ctx, seg.file.clone(), mezzanine);
    let kept = writer.open(resume_at).await.map_err(|e| store_stop(ctx, "opening the file", e))?;
    if kept < resume_at {
        deps.catalog.set_resume_point(&ctx.id, kept, validator.as_deref()).await.map_err(catalog_stop)?;
    }
    tracker.set_committed(kept, 0);
    let mut retry = Retry::new(&deps.source.retry);
    let mut last_checkpoint = writer.len;
    let mut stored_at_last_failure = writer.len;
    loop {
        let generation = ctx.generation.load(Ordering::SeqCst);
        if ctx.urls_expired() {
            refresh(ctx, None, generation, 0).await?;
            let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
            url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
            continue;
        }
        let start = writer.len;
        let if_range = validator.clone().filter(|_| start > 0);
        let request = Request {
            from: (start > 0).then_some(start),
            if_range: if_range.as_deref(),
            unlimited: !ctx.rate_capped(),
            ..Request::get(&url, &ctx.headers)
        };
        let result: Result<(), AttemptError> = async {
            let mut body = deps.source.http.open(request).await?;
            // A part of another version of the file must not be appended to this one: the
            // server ignored the range, or `If-Range` (it answered 206 with another validator).
            // (A resume always has a validator; an answer without one cannot be told apart.)
            let changed = body.partial && validator.is_some() && body.validator != validator;
            if start > 0 && changed {
                return Err(AttemptError::Changed);
            }
            if start > 0 && !body.partial {
                // The server sends the whole file: start over with it.
                tracing::info!(asset = %ctx.id, "source file changed or cannot resume; starting over");
                writer.open(0).await?;
                last_checkpoint = 0;
                tracker.set_committed(0, 0);
                deps.catalog
                    .set_resume_point(&ctx.id, 0, None)
                    .await
                    .map_err(|e| AttemptError::Catalog(e.to_string()))?;
                deps.events.emit(Event::Restarted {
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
            let mut head = (writer.len == 0).then(Vec::new);
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
                let n = chunk.len() as u64;
                writer.write(chunk).await?;
                tracker.written(n);
                if writer.len.saturating_sub(last_checkpoint) >= deps.settings.checkpoint_bytes {
                    let durable = writer.checkpoint().await?;
                    deps.catalog
                        .set_resume_point(&ctx.id, durable, validator.as_deref())
                        .await
                        .map_err(|e| AttemptError::Catalog(e.to_string()))?;
                    tracker.set_committed(durable, writer.len - durable);
                    last_checkpoint = writer.len;
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
        if writer.len > stored_at_last_failure {
            retry.reset();
            stored_at_last_failure = writer.len;
        }
        match result {
            Ok(()) => break,
            Err(AttemptError::Fetch(e)) => match e.class() {
                ErrorClass::Transient { retry_after } if retry.again(retry_after).await => {}
                ErrorClass::Expired => {
                    refresh(ctx, None, generation, status_of(&e)).await?;
                    let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
                }
                _ => return Err(Stop::Failed(fetch_failure("the file", &e))),
            },
            Err(AttemptError::Changed) => {
                // The server answered a resume with a part of another version of the file
                // (ignoring `If-Range`): none of it is used; start over.
                tracing::info!(asset = %ctx.id, "source file changed; starting over");
                validator = None;
                writer.open(0).await.map_err(|e| store_stop(ctx, "the file", e))?;
                deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
                last_checkpoint = 0;
                stored_at_last_failure = 0;
                tracker.set_committed(0, 0);
                deps.events.emit(Event::Restarted {
                    id: ctx.id.clone(),
                    reason: FailureReason::SourceChanged { message: "the file changed on the server".into() },
                });
            }
            Err(AttemptError::Stopped) => return Err(Stop::External),
            Err(AttemptError::Content(m)) => {
                if writer.len == 0 {
                    // Refused at its first bytes: leave nothing behind.
                    writer.discard().await;
                }
                return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {m}") }));
            }
            Err(AttemptError::Store(e)) => return Err(store_stop(ctx, "the file", e)),
            Err(AttemptError::Catalog(m)) => return Err(storage("catalog", m)),
        }
    }
    // Complete: checked whole, sealed to its last chunk, durable, in place; then committed.
    let stored = match writer.finish().await.map_err(|e| store_stop(ctx, "the file", e))? {
        Finished::Stored(p) => p,
        Finished::Bad(message) => {
            deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
            return Err(Stop::Failed(FailureReason::BadSource { message }));
        }
    };
    let size = stored.size;
    let done = DoneSegment { rendition: 0, kind: SegmentKind::File, idx: 0, size, sha256: stored.sha256 };
    deps.catalog.commit_segments(&ctx.id, &[done]).await.map_err(catalog_stop)?;
    tracker.set_committed(size, 0);
    tracker.committed(0, 1, 0);
    Ok(())
}
/// The first bytes of a progressive file (all of them, if it is that short) must be media.
pub(super) fn check_file_head(head: &[u8], complete: bool) -> Result<(), AttemptError> {
    match sniff::identify(head, complete) {
        Content::Media(_) => Ok(()),
        Content::Hls => Err(AttemptError::Content("got an HLS playlist, not the file".into())),
        Content::Dash => Err(AttemptError::Content("got a DASH manifest, not the file".into())),
        Content::NotMedia(what) => Err(AttemptError::Content(format!("got {what}, not media"))),
    }
}
