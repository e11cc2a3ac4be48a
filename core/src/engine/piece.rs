//! One piece of an HLS download: where it comes from, fetching it (with its key, retried by
//! kind of failure), and writing it off the runtime — decrypted, checked, sealed or hashed, made
//! durable — with players that watch meanwhile given its bytes as they arrive.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use url::Url;

use crate::catalog::SegmentRow;
use crate::error::fetch_failure;
use crate::fetch::{ErrorClass, FetchError, Request, Retry};
use crate::hls::aes128::{Aes128Key, CbcStreamDecryptor, HlsCryptoError};
use crate::hls::media::{ByteRange, Encryption};
use crate::live::{LiveAsset, Tap};
use crate::model::{FailureReason, RenditionRole, SegmentKind};
use crate::seal::Durability;
use crate::sniff::{self, Content, MediaKind, NotMedia, SniffError, Sniffer};
use crate::store::{self, PieceWriter, StoreError};

use super::hls::Plan;
use super::lock::blocking;
use super::progress::Tracker;
use super::refresh::refresh;
use super::{AttemptError, Ctx, JobResult, Stop, storage};

/// A piece fully received and checked, being made durable (fdatasync, rename), waiting to be
/// committed.
pub(super) struct Finished {
    pub(super) rendition: u32,
    pub(super) kind: SegmentKind,
    pub(super) idx: u32,
    pub(super) file: String,
    pub(super) durable: tokio::task::JoinHandle<Result<Durable, StoreError>>,
}
/// A piece stored under its final name, and whether a player was waiting for it.
pub(super) struct Durable {
    pub(super) piece: store::StoredPiece,
    pub(super) for_playback: bool,
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
pub(super) struct KeyCache {
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

pub(super) fn describe(seg: &SegmentRow, plan: &Plan) -> String {
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
pub(super) async fn fetch_piece(
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
            Err(e) => {
                // A player waiting for the piece is told (503) rather than kept waiting.
                ctx.live.failed(&seg.file);
                e
            }
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
/// Players watching meanwhile get the plaintext as it is written (`tap`), and are told when the
/// piece is stored or the attempt fails (`live`).
#[allow(clippy::too_many_arguments)]
fn write_piece(
    writer: PieceWriter,
    mut dec: Option<CbcStreamDecryptor>,
    role: RenditionRole,
    mut feed: mpsc::Receiver<Feed>,
    verdict: tokio::sync::oneshot::Sender<Result<(), AttemptError>>,
    tracker: Arc<Tracker>,
    tap: Arc<Tap>,
    (live, file): (Arc<LiveAsset>, String),
) -> Result<Durable, StoreError> {
    struct Sink {
        writer: PieceWriter,
        sniff: Sniffer,
        written: u64,
        tracker: Arc<Tracker>,
        tap: Arc<Tap>,
        live: Arc<LiveAsset>,
    }
    impl Sink {
        fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
            self.writer.write(data)?;
            self.sniff.update(data);
            self.written += data.len() as u64;
            self.tracker.written(data.len() as u64);
            self.tap.push(data, self.live.watched());
            Ok(())
        }
    }
    let mut sink = Sink { writer, sniff: Sniffer::new(), written: 0, tracker, tap, live: Arc::clone(&live) };
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
    let Sink { writer, written, tracker, tap, .. } = sink;
    if let Err(e) = checked {
        // Delete the partial file before reporting: on a full disk its space is what lets the
        // catalog record the pieces that did complete.
        drop(writer);
        tracker.abandoned(written);
        live.failed(&file);
        let _ = verdict.send(Err(e));
        return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
    }
    // Complete under a name that proves it whole before the network side moves on: a process
    // killed from here on leaves a piece the next run keeps instead of fetching it again.
    let complete = match writer.complete() {
        Ok(c) => c,
        Err(e) => {
            tracker.abandoned(written);
            live.failed(&file);
            let _ = verdict.send(Err(AttemptError::Store(e)));
            return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
        }
    };
    // Every byte is checked: a player reading the tap gets the end of the piece now.
    tap.end(true);
    let _ = verdict.send(Ok(()));
    match complete.persist(Durability::FileSynced) {
        Ok(piece) => Ok(Durable { piece, for_playback: live.stored(&file) }),
        Err(e) => {
            tracker.abandoned(written);
            live.failed(&file);
            Err(e)
        }
    }
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
    let request = Request { range, unlimited: !ctx.rate_capped(), ..Request::get(&url, &ctx.headers) };
    let mut body = deps.source.http.open(request).await?;
    let (layout, id, file, mode, key, options) =
        (deps.layout.clone(), ctx.id.clone(), seg.file.clone(), ctx.mode, ctx.key.clone(), ctx.seal_options());
    let (feed, fed) = mpsc::channel(FEED_DEPTH);
    let (verdict_tx, verdict_rx) = tokio::sync::oneshot::channel();
    let tracker = Arc::clone(tracker);
    let tap = ctx.live.start(&seg.file);
    let live = Arc::clone(&ctx.live);
    let durable = blocking(ctx, move || {
        let writer = match PieceWriter::create(&layout, &id, &file, mode, key.as_deref(), options) {
            Ok(w) => w,
            Err(e) => {
                live.failed(&file);
                let _ = verdict_tx.send(Err(AttemptError::Store(e)));
                return Err(StoreError::Io(std::io::Error::other("piece abandoned")));
            }
        };
        write_piece(writer, dec, role, fed, verdict_tx, tracker, tap, (live, file))
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
        Ok(Ok(())) => {
            Ok(Finished { rendition: seg.rendition, kind: seg.kind, idx: seg.idx, file: seg.file.clone(), durable })
        }
        Ok(Err(e)) => {
            let _ = durable.await;
            Err(e)
        }
        Err(_) => Err(AttemptError::Store(StoreError::Io(std::io::Error::other("piece writer failed")))),
    }
}
/// Video and audio segments must be MPEG-TS, ISO BMFF or packed audio; subtitle segments
/// WebVTT, TTML or ISO BMFF (IMSC in fMP4). Anything else is refused, saying what it is.
pub(super) fn check_content(role: RenditionRole, sniff: &Sniffer) -> Result<(), SniffError> {
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
