//! The loopback HTTP server that players (AVPlayer, ExoPlayer, ffmpeg, VLC) open: one per vault,
//! bound to 127.0.0.1 on an ephemeral port, started on first use. Every session's URLs carry an
//! unguessable token, revoked when the session closes or is dropped; anything else gets `404`
//! and learns nothing. Each response is produced by a blocking task that reads and verifies
//! chunk by chunk into a small bounded channel, so a slow or vanished client only ever holds its
//! own task, and a chunk that fails verification ends the response before any of its bytes are
//! sent.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::blocks::{BLOCKING_THREADS, Body, IntegritySink, Load, Streaming, read_block, stream_body};
use super::reader::{AssetReader, AssetView};
use crate::error::{Error, Result};
use crate::live::{LiveAsset, PartialFile, Tap, TapRead, piece_name};
use crate::model::AssetKind;

/// An open playback session: its URL serves the asset until the session is closed or dropped.
pub struct PlaybackSession {
    url: String,
    base: String,
    hls: Option<String>,
    token: String,
    sessions: Weak<Sessions>,
}

impl fmt::Debug for PlaybackSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a capability: not printed.
        f.debug_struct("PlaybackSession").finish_non_exhaustive()
    }
}

impl PlaybackSession {
    /// The URL a player opens (the asset's playlist, or its file for a progressive asset).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The HLS master playlist of an HLS or DASH asset (for a DASH asset, the one made from its
    /// MPD: what AVPlayer opens); `None` for a progressive file.
    pub fn hls_url(&self) -> Option<&str> {
        self.hls.as_deref()
    }

    /// The session's base URL (`http://127.0.0.1:<port>/<token>/`): every file of the asset is
    /// under it by its logical name.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Revokes the session's token: its URLs answer 404 from now on.
    pub fn close(&self) {
        if let Some(s) = self.sessions.upgrade() {
            s.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
        }
    }
}

impl Drop for PlaybackSession {
    fn drop(&mut self) {
        self.close();
    }
}

type Sessions = Mutex<HashMap<String, Arc<AssetView>>>;

/// The vault's loopback server. It owns its accept loop and every connection: [`Server::stop`]
/// stops accepting, ends the connections and waits for them.
pub(crate) struct Server {
    addr: SocketAddr,
    sessions: Arc<Sessions>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Told when the server's thread has ended its connections.
    task: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Server {
    /// Binds 127.0.0.1 (`port` 0 = ephemeral) and serves sessions; `sink` is told of integrity
    /// failures.
    ///
    /// The server runs on a thread of its own (a single-threaded runtime with its own blocking
    /// pool), so that a player's requests never queue behind a download's network and file work
    /// on the vault's runtime: a player asking for the segment being downloaded gets its first
    /// bytes without waiting for the download to yield.
    pub(crate) async fn start(port: u16, sink: IntegritySink) -> Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let sessions: Arc<Sessions> = Arc::new(Mutex::new(HashMap::new()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (ended, task) = tokio::sync::oneshot::channel();
        let s = Arc::clone(&sessions);
        std::thread::Builder::new().name("vodvault-playback".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(BLOCKING_THREADS)
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, s, sink, stopped).await,
                        Err(e) => tracing::error!("playback server: {e}"),
                    }
                }),
                Err(e) => tracing::error!("playback server: no runtime: {e}"),
            }
            let _ = ended.send(());
        })?;
        Ok(Self { addr, sessions, stop, task: tokio::sync::Mutex::new(Some(task)) })
    }

    /// Stops accepting, ends every connection and waits until they are gone.
    pub(crate) async fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }

    /// Opens a session for `view`.
    pub(crate) fn open(&self, view: AssetView) -> Result<PlaybackSession> {
        let mut raw = [0u8; 16];
        crate::crypto::fill_random(&mut raw).map_err(crate::keys::KeyError::from)?;
        let token = hex::encode(raw);
        let base = format!("http://{}/{token}/", self.addr);
        let url = format!("{base}{}", view.entry);
        let hls = matches!(view.kind, AssetKind::Hls | AssetKind::Dash).then(|| format!("{base}index.m3u8"));
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), Arc::new(view));
        Ok(PlaybackSession { url, base, hls, token, sessions: Arc::downgrade(&self.sessions) })
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A single `Range` against a file of `len` bytes: `Some(Ok((start, end_exclusive)))`, or
/// `Some(Err(()))` when unsatisfiable, `None` to serve the whole file (no header, or one we do
/// not honour, such as several ranges).
pub(crate) fn parse_range(value: &str, len: u64) -> Option<std::result::Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() { len } else { b.parse::<u64>().ok()?.saturating_add(1).min(len) };
        if start >= len || end <= start {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(range))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    sessions: Arc<Sessions>,
    sink: IntegritySink,
    load: Load,
) -> std::result::Result<Response<Body>, std::convert::Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
    }
    let path = req.uri().path();
    let Some((token, name)) = path.trim_start_matches('/').split_once('/') else {
        return Ok(text(StatusCode::NOT_FOUND, "not found\n"));
    };
    let view = sessions.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned();
    // Unknown token, or a name outside the asset (including any traversal): the same 404.
    let Some(view) = view.filter(|v| v.files.contains(name)) else {
        return Ok(text(StatusCode::NOT_FOUND, "not found\n"));
    };
    if view.expired() {
        return Ok(text(StatusCode::FORBIDDEN, "expired for offline playback\n"));
    }
    if let Some(playlist) = view.generated.get(name) {
        // An incomplete asset's playlist, made when the session opened.
        let body = if req.method() == Method::HEAD { Bytes::new() } else { playlist.clone() };
        let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(super::content_type(name)));
        h.insert(header::CONTENT_LENGTH, header_value(&playlist.len().to_string()));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    let name = name.to_owned();
    // A piece under way is sent from its tap at once, without first looking on disk (a blocking
    // task, which waits for a core while the download keeps both busy).
    if let Some(tap) = view.live().and_then(|l| l.tap(&name))
        && req.method() == Method::GET
        && !req.headers().contains_key(header::RANGE)
    {
        return Ok(arriving(tap, super::content_type(&name)).await);
    }
    let (v, n) = (Arc::clone(&view), name.clone());
    let reader = match tokio::task::spawn_blocking(move || v.open(&n)).await {
        Ok(Ok(r)) => Arc::new(r),
        Ok(Err(Error::Integrity { id, file })) => {
            sink(&id, &file);
            return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored file failed verification\n"));
        }
        Ok(Err(Error::Io(e)))
            if e.kind() == std::io::ErrorKind::NotFound
                && view.live().is_some()
                && view.kind == AssetKind::Progressive =>
        {
            // A progressive file downloading in pieces: ranges from the pieces written.
            match wait_for_file(&view, &name).await {
                Waited::Stored(r) => Arc::new(r),
                Waited::Partial(part) => return Ok(partial(&req, view, name, part, &load).await),
                Waited::Damaged => {
                    sink(&view.id, &name);
                    return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored file failed verification\n"));
                }
                Waited::Arriving(_) | Waited::Unavailable => return Ok(unavailable()),
            }
        }
        Ok(Err(Error::Io(e))) if e.kind() == std::io::ErrorKind::NotFound && view.live().is_some() => {
            // Not stored yet: from the download, as it arrives or once it is stored.
            let streamable = req.method() == Method::GET && !req.headers().contains_key(header::RANGE);
            match wait_for_piece(&view, &name, streamable).await {
                Waited::Stored(r) => Arc::new(r),
                Waited::Arriving(tap) => return Ok(arriving(tap, super::content_type(&name)).await),
                Waited::Damaged => {
                    sink(&view.id, &name);
                    return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored file failed verification\n"));
                }
                Waited::Partial(_) | Waited::Unavailable => return Ok(unavailable()),
            }
        }
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found\n")),
    };
    let len = reader.len();
    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(Err(())) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
            r.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{len}")));
            return Ok(r);
        }
    };
    let body: Body = if req.method() == Method::HEAD || start == end {
        Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
    } else {
        // Read and verify the first block before answering: damage found now is a 500 with a
        // status the player understands; damage found later can only cut the response.
        let streaming = load.start();
        let (r, about) = (Arc::clone(&reader), streaming.block());
        let first = match tokio::task::spawn_blocking(move || read_block(&r, start, end, about)).await {
            Ok(Ok(block)) => block,
            Ok(Err(e)) => {
                if let Error::Integrity { id, file } = e {
                    tracing::error!(asset = %id, "stored file {file} failed verification");
                    sink(&id, &file);
                }
                return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored data failed verification\n"));
            }
            Err(_) => return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")),
        };
        stream_body(reader.clone(), first, start, end, sink, streaming)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(reader.content_type()));
    h.insert(header::CONTENT_LENGTH, header_value(&(end - start).to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, header_value(&format!("bytes {start}-{}/{len}", end - 1)));
    }
    Ok(r)
}

/// How long a request for a piece that is not stored yet waits for the download before it is
/// answered `503` (a player asks again after `Retry-After`).
const PIECE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// What waiting for a piece of an incomplete asset came to.
enum Waited {
    /// It is stored: read it from the vault.
    Stored(AssetReader),
    /// It is being fetched: its bytes as they arrive.
    Arriving(Arc<Tap>),
    /// It is stored but fails verification.
    Damaged,
    /// A progressive file downloading in pieces: read what is written, wait for the rest.
    Partial(Arc<dyn PartialFile>),
    /// It failed while being fetched, or did not come within [`PIECE_WAIT`].
    Unavailable,
}

/// Asks the download for piece `name` (it jumps the queue) and waits until it is stored, or
/// (`streamable`) until its bytes start arriving.
async fn wait_for_piece(view: &Arc<AssetView>, name: &str, streamable: bool) -> Waited {
    let Some(live) = view.live().cloned() else {
        return Waited::Unavailable;
    };
    let deadline = tokio::time::Instant::now() + PIECE_WAIT;
    let mut changed = live.subscribe();
    live.want(name);
    // A failure recorded before this request is an attempt the download is retrying: only a
    // failure seen while waiting is answered 503.
    let mut failed_before = live.has_failed(name);
    loop {
        changed.borrow_and_update();
        if streamable && let Some(tap) = live.tap(name) {
            return Waited::Arriving(tap);
        }
        let (v, n) = (Arc::clone(view), name.to_owned());
        match tokio::task::spawn_blocking(move || v.open(&n)).await {
            Ok(Ok(r)) => return Waited::Stored(r),
            Ok(Err(Error::Integrity { .. })) => return Waited::Damaged,
            _ => {}
        }
        let failed = live.has_failed(name);
        if failed && !failed_before {
            return Waited::Unavailable;
        }
        failed_before = failed;
        if !changed_or_tick(&mut changed, deadline).await {
            return Waited::Unavailable;
        }
    }
}

/// Waits until the download shows progressive file `name` (it does when its pieces start) or
/// stores it.
async fn wait_for_file(view: &Arc<AssetView>, name: &str) -> Waited {
    let Some(live) = view.live().cloned() else {
        return Waited::Unavailable;
    };
    let deadline = tokio::time::Instant::now() + PIECE_WAIT;
    let mut changed = live.subscribe();
    // A queued asset starts; a paused or failed one fetches what players ask for.
    live.wake_queue();
    loop {
        changed.borrow_and_update();
        if let Some(part) = live.part(name) {
            return Waited::Partial(part);
        }
        let (v, n) = (Arc::clone(view), name.to_owned());
        match tokio::task::spawn_blocking(move || v.open(&n)).await {
            Ok(Ok(r)) => return Waited::Stored(r),
            Ok(Err(Error::Integrity { .. })) => return Waited::Damaged,
            _ => {}
        }
        if !changed_or_tick(&mut changed, deadline).await {
            return Waited::Unavailable;
        }
    }
}

/// Where the bytes at a position of a progressive file that is downloading are.
enum Bytes_ {
    /// In the file being downloaded now: this many from the position.
    Part(Arc<dyn PartialFile>, u64),
    /// The file is stored whole.
    Stored,
}

/// Waits for a change the asset's download tells of, or 250 ms (a download in another process
/// tells nothing: what it stores is looked for again); `false` once `deadline` has passed.
async fn changed_or_tick(changed: &mut tokio::sync::watch::Receiver<u64>, deadline: tokio::time::Instant) -> bool {
    let until = deadline.min(tokio::time::Instant::now() + std::time::Duration::from_millis(250));
    let _ = tokio::time::timeout_at(until, changed.changed()).await;
    tokio::time::Instant::now() < deadline
}

/// Waits until the byte at `pos` of progressive file `name` is written (asking for its piece,
/// `pos / piece`: it jumps the queue), or the whole file is stored. `Err` when the piece fails
/// meanwhile or takes longer than [`PIECE_WAIT`].
async fn wait_bytes(
    view: &AssetView,
    live: &LiveAsset,
    name: &str,
    pos: u64,
    piece: u64,
) -> std::result::Result<Bytes_, ()> {
    let deadline = tokio::time::Instant::now() + PIECE_WAIT;
    let piece = piece_name(name, pos / piece);
    let mut changed = live.subscribe();
    let mut asked = false;
    let mut failed_before = live.has_failed(&piece);
    loop {
        changed.borrow_and_update();
        match live.readable(name, pos) {
            Some((part, n)) if n > 0 => return Ok(Bytes_::Part(part, n)),
            Some(_) => {}
            None => {
                if tokio::fs::metadata(view.layout.file(&view.id, name, view.mode)).await.is_ok() {
                    return Ok(Bytes_::Stored);
                }
            }
        }
        if !asked {
            live.want(&piece);
            failed_before = false;
            asked = true;
        }
        let failed = live.has_failed(&piece);
        if failed && !failed_before {
            return Err(());
        }
        failed_before = failed;
        if !changed_or_tick(&mut changed, deadline).await {
            return Err(());
        }
    }
}

/// Bytes served at once from a file that is downloading (at most up to the end of a piece).
const PARTIAL_BLOCK: u64 = 256 * 1024;

/// A `GET` or `HEAD` of a progressive file downloading in pieces: the full length is announced
/// (HEAD, `Content-Length`, `Content-Range`), the first piece of the range is waited for before
/// answering (a piece that fails: `503`), and every later one as the body reaches it, asking for
/// the next piece before it is needed.
async fn partial(
    req: &Request<hyper::body::Incoming>,
    view: Arc<AssetView>,
    name: String,
    part: Arc<dyn PartialFile>,
    load: &Load,
) -> Response<Body> {
    let len = part.len();
    let piece = part.piece().max(1);
    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(Err(())) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
            r.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{len}")));
            return r;
        }
    };
    let Some(live) = view.live().cloned() else {
        return unavailable();
    };
    let body: Body = if req.method() == Method::HEAD || start == end {
        Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
    } else {
        if wait_bytes(&view, &live, &name, start, piece).await.is_err() {
            return unavailable();
        }
        struct St {
            view: Arc<AssetView>,
            live: Arc<LiveAsset>,
            name: String,
            /// The source version the response started with: bytes of another never follow.
            version: u64,
            /// The stored file, once the download has stored it.
            stored: Option<Arc<AssetReader>>,
            pos: u64,
            over: bool,
            streaming: Streaming,
        }
        let version = live.version();
        let st = St {
            view: Arc::clone(&view),
            live,
            name: name.clone(),
            version,
            stored: None,
            pos: start,
            over: false,
            streaming: load.start(),
        };
        let stream = futures_util::stream::unfold(st, move |mut st| async move {
            if st.over || st.pos >= end {
                return None;
            }
            let k = st.pos / piece;
            let cut = |mut st: St, why: &str| {
                st.over = true;
                Some((Err(std::io::Error::other(why.to_owned())), st))
            };
            let from = match &st.stored {
                Some(_) => Bytes_::Stored,
                None => match wait_bytes(&st.view, &st.live, &st.name, st.pos, piece).await {
                    Ok(b) => b,
                    Err(()) => return cut(st, "the piece failed while being fetched"),
                },
            };
            if st.live.version() != st.version {
                return cut(st, "the file changed on the server while it was served");
            }
            // The next piece is asked for as this one starts being sent.
            if st.stored.is_none()
                && st.pos % piece == 0
                && (k + 1) * piece < end
                && st.live.available(&st.name, (k + 1) * piece) == 0
            {
                st.live.want(&piece_name(&st.name, k + 1));
            }
            let (pos, view, name, about) = (st.pos, Arc::clone(&st.view), st.name.clone(), st.streaming.block());
            let stored = st.stored.clone();
            let read = tokio::task::spawn_blocking(move || -> Result<(Bytes, Option<Arc<AssetReader>>)> {
                match from {
                    Bytes_::Part(part, available) => {
                        let n = PARTIAL_BLOCK.min(available).min((k + 1) * piece - pos).min(end - pos) as usize;
                        let mut buf = BytesMut::zeroed(n);
                        let got = part.read_at(pos, &mut buf)?;
                        buf.truncate(got);
                        Ok((buf.freeze(), None))
                    }
                    Bytes_::Stored => {
                        let reader = match stored {
                            Some(r) => r,
                            None => Arc::new(view.open(&name)?),
                        };
                        let block = read_block(&reader, pos, end, about)?;
                        Ok((block, Some(reader)))
                    }
                }
            })
            .await;
            match read {
                Ok(Ok((block, reader))) if !block.is_empty() => {
                    st.pos += block.len() as u64;
                    if reader.is_some() {
                        st.stored = reader;
                    }
                    Some((Ok(Frame::data(block)), st))
                }
                _ => cut(st, "reading the file failed"),
            }
        });
        BodyExt::boxed(StreamBody::new(stream))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(super::content_type(&name)));
    h.insert(header::CONTENT_LENGTH, header_value(&(end - start).to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, header_value(&format!("bytes {start}-{}/{len}", end - 1)));
    }
    r
}

fn unavailable() -> Response<Body> {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "not downloaded yet; try again\n");
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// A piece being fetched, sent as its bytes arrive (chunked: its length is known only at its
/// end). The status is sent once the first bytes are there; an attempt that fails before that
/// is a `503`. Bytes go out as they are decrypted and written; the checks that need the whole
/// piece (AES-128 padding, container structure, length) decide how the response ends: a piece
/// that fails them is cut short, so the player sees a failed request, never a whole wrong piece.
async fn arriving(tap: Arc<Tap>, content_type: &'static str) -> Response<Body> {
    let mut changed = tap.subscribe();
    let deadline = tokio::time::Instant::now() + PIECE_WAIT;
    loop {
        changed.borrow_and_update();
        match tap.read(0) {
            TapRead::Chunks(_) | TapRead::End => break,
            TapRead::Failed => return unavailable(),
            TapRead::Wait => {
                if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                    return unavailable();
                }
            }
        }
    }
    struct St {
        tap: Arc<Tap>,
        changed: tokio::sync::watch::Receiver<u64>,
        next: usize,
        over: bool,
    }
    let st = St { tap, changed, next: 0, over: false };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.over {
            return None;
        }
        loop {
            st.changed.borrow_and_update();
            match st.tap.read(st.next) {
                TapRead::Chunks(chunks) => {
                    st.next += chunks.len();
                    let data: Bytes = if chunks.len() == 1 {
                        chunks.into_iter().next().unwrap_or_default()
                    } else {
                        chunks.concat().into()
                    };
                    return Some((Ok(Frame::data(data)), st));
                }
                TapRead::End => return None,
                TapRead::Failed => {
                    st.over = true;
                    return Some((Err(std::io::Error::other("the piece failed while being fetched")), st));
                }
                TapRead::Wait => {
                    // A piece whose bytes stop coming (the engine's own read timeout is 20 s)
                    // ends the response rather than holding it for ever.
                    match tokio::time::timeout(PIECE_WAIT, st.changed.changed()).await {
                        Ok(Ok(())) => {}
                        _ => {
                            st.over = true;
                            return Some((Err(std::io::Error::other("the download stopped")), st));
                        }
                    }
                }
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// How long the server waits after accepting failed for want of resources.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Accepts connections until told to stop, each served by a task this loop owns; on stop, ends
/// them and waits for them. An accept error that is not about one connection (no file
/// descriptors left, say) is waited out ([`ACCEPT_RETRY`]) instead of retried at once.
async fn accept_loop(
    listener: TcpListener,
    sessions: Arc<Sessions>,
    sink: IntegritySink,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    // What this server streams: each response's block size follows it.
    let load = Load::default();
    // Out of file descriptors (EMFILE) or memory, accepting fails until connections close:
    // wait a little (200 ms) between tries instead of spinning, and say so once.
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if !failing {
                    tracing::warn!("playback server: accept failed: {e}; trying again every {ACCEPT_RETRY:?}");
                    failing = true;
                }
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                }
            }
        };
        if failing {
            tracing::info!("playback server: accepting again");
            failing = false;
        }
        if !peer.ip().is_loopback() {
            continue; // bound to 127.0.0.1, but never serve anyone else
        }
        let _ = tcp.set_nodelay(true);
        let (s, sink, load) = (Arc::clone(&sessions), Arc::clone(&sink), load.clone());
        connections.spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| handle(req, Arc::clone(&s), Arc::clone(&sink), load.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                .await;
        });
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Whether an accept error concerns one connection only (the next accept may well succeed).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset | K::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(Ok((0, 100))));
        assert_eq!(parse_range("bytes=900-", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=-100", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=-5000", 1000), Some(Ok((0, 1000))));
        assert_eq!(parse_range("bytes=990-5000", 1000), Some(Ok((990, 1000))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=5-2", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }
}
