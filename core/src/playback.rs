//! Playing what is stored: a random-access reader over any file of a completed asset, and the
//! loopback HTTP server that players (AVPlayer, ExoPlayer, ffmpeg, VLC) open.
//!
//! The reader decrypts and verifies only the chunks a read touches (Encrypted mode) or reads the
//! plain file (Normal mode). The server is one per vault, bound to 127.0.0.1 on an ephemeral port
//! and started on first use. Every session's URLs carry an unguessable token, revoked when the
//! session closes or is dropped; anything else gets `404` and learns nothing. Each response is
//! produced by a blocking task that reads and verifies chunk by chunk into a small bounded
//! channel, so a slow or vanished client only ever holds its own task, and a chunk that fails
//! verification ends the response before any of its bytes are sent.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::catalog::{AssetKind, AssetState, Mode, SegmentKind, now_ms};
use crate::error::{Error, Result};
use crate::keys::{ContentKey, WrappedKey};
use crate::seal::{ReadAt, SealError, SealedReader};
use crate::store;
use crate::vault::{Event, Inner};

/// What a player may read of one completed asset, with what it takes to read it.
pub(crate) struct AssetView {
    pub(crate) id: String,
    pub(crate) mode: Mode,
    pub(crate) key: Option<Arc<ContentKey>>,
    /// Logical names of every readable file.
    pub(crate) files: HashSet<String>,
    /// What a player opens first.
    pub(crate) entry: String,
    pub(crate) offline_until: Option<i64>,
    pub(crate) layout: store::Layout,
}

impl fmt::Debug for AssetView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetView").field("id", &self.id).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl AssetView {
    /// Builds the view of a completed, unexpired asset.
    pub(crate) async fn load(inner: &Inner, id: &str) -> Result<Self> {
        let row = inner.catalog.asset(id).await?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if row.state != AssetState::Completed {
            return Err(Error::NotPlayable { id: id.to_owned(), state: row.state });
        }
        if let Some(until) = row.offline_until
            && now_ms() >= until
        {
            return Err(Error::Expired { id: id.to_owned(), until });
        }
        let key = match row.mode {
            Mode::Normal => None,
            Mode::Encrypted => {
                let wrapped = row.wrapped_key.as_deref().ok_or(Error::Key(crate::keys::KeyError::Integrity))?;
                Some(Arc::new(WrappedKey::from_bytes(wrapped)?.unwrap(&inner.kek, id.as_bytes())?))
            }
        };
        let mut files = HashSet::new();
        for s in inner.catalog.segments(id).await? {
            // A gap (EXT-X-GAP) has no file.
            if !(s.kind == SegmentKind::Media && s.size == Some(0)) {
                files.insert(s.file);
            }
        }
        for i in inner.catalog.images(id).await? {
            if i.done {
                files.insert(i.file);
            }
        }
        if row.kind == AssetKind::Hls {
            files.insert("index.m3u8".to_owned());
            for r in inner.catalog.renditions(id).await? {
                files.insert(format!("{}/index.m3u8", r.dir));
            }
        }
        let entry = row.entry.unwrap_or_else(|| "index.m3u8".to_owned());
        Ok(Self {
            id: id.to_owned(),
            mode: row.mode,
            key,
            files,
            entry,
            offline_until: row.offline_until,
            layout: inner.layout.clone(),
        })
    }

    fn expired(&self) -> bool {
        self.offline_until.is_some_and(|until| now_ms() >= until)
    }

    /// Opens stored file `name` (blocking: it reads the header and verifies the last chunk).
    pub(crate) fn open(&self, name: &str) -> Result<AssetReader> {
        if !self.files.contains(name) {
            return Err(Error::NotFound(format!("{}/{name}", self.id)));
        }
        let path = self.layout.file(&self.id, name, self.mode);
        let integrity = |_| Error::Integrity { id: self.id.clone(), file: name.to_owned() };
        let source = match (&self.key, self.mode) {
            (Some(key), Mode::Encrypted) => {
                let file = File::open(&path)?;
                let context = store::seal_context(&self.id, name);
                Source::Sealed(Box::new(SealedReader::open(file, key, &context).map_err(|e| match e {
                    SealError::Io(io) => Error::Io(io),
                    other => integrity(other),
                })?))
            }
            _ => {
                let file = File::open(&path)?;
                let len = file.metadata()?.len();
                Source::Plain { file, len, path }
            }
        };
        Ok(AssetReader { asset: self.id.clone(), name: name.to_owned(), source })
    }
}

enum Source {
    Plain { file: File, len: u64, path: PathBuf },
    Sealed(Box<SealedReader<File>>),
}

/// Random access to one stored file of a completed asset: for apps that plug their own data
/// source into ExoPlayer (`DataSource`) or AVFoundation (`AVAssetResourceLoaderDelegate`).
/// Encrypted files are decrypted and verified chunk by chunk, only where a read touches them.
pub struct AssetReader {
    asset: String,
    name: String,
    source: Source,
}

impl fmt::Debug for AssetReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetReader").field("asset", &self.asset).field("name", &self.name).finish_non_exhaustive()
    }
}

impl AssetReader {
    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        match &self.source {
            Source::Plain { len, .. } => *len,
            Source::Sealed(r) => r.len(),
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's logical name in its asset (e.g. `video/seg-00003.ts`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its MIME type.
    pub fn content_type(&self) -> &'static str {
        content_type(&self.name)
    }

    /// The plain file on disk (Normal mode only).
    pub fn plain_path(&self) -> Option<&Path> {
        match &self.source {
            Source::Plain { path, .. } => Some(path),
            Source::Sealed(_) => None,
        }
    }

    /// Reads from `offset` into `buf`; fewer bytes only at the end of the file, 0 past it.
    ///
    /// # Errors
    /// [`Error::Integrity`] if a chunk the read touches fails verification (then no byte of
    /// `buf` is meaningful), [`Error::Io`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match &self.source {
            Source::Plain { file, len, .. } => {
                if offset >= *len {
                    return Ok(0);
                }
                let n = ((*len - offset) as usize).min(buf.len());
                file.read_exact_at(&mut buf[..n], offset)?;
                Ok(n)
            }
            Source::Sealed(r) => r.read_at(offset, buf).map_err(|e| match e {
                SealError::Io(io) => Error::Io(io),
                _ => Error::Integrity { id: self.asset.clone(), file: self.name.clone() },
            }),
        }
    }

    /// Plaintext bytes per verified chunk (reads aligned to it avoid decrypting a chunk twice);
    /// 1 MiB for plain files.
    fn block(&self) -> usize {
        match &self.source {
            Source::Plain { .. } => 1 << 20,
            Source::Sealed(r) => {
                let chunk = r.chunk_size() as usize;
                chunk * (1usize << 20).div_ceil(chunk)
            }
        }
    }
}

/// MIME type by extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s" | "mp4" | "m4v") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("aac") => "audio/aac",
        Some("mp3") => "audio/mpeg",
        Some("vtt") => "text/vtt",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mov") => "video/quicktime",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// An open playback session: its URL serves the asset until the session is closed or dropped.
pub struct PlaybackSession {
    url: String,
    base: String,
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

/// The vault's loopback server.
pub(crate) struct Server {
    addr: SocketAddr,
    sessions: Arc<Sessions>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

impl Server {
    /// Binds 127.0.0.1 (`port` 0 = ephemeral) and serves sessions; `events` receives integrity
    /// failures.
    pub(crate) async fn start(port: u16, events: tokio::sync::broadcast::Sender<Event>) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let sessions: Arc<Sessions> = Arc::new(Mutex::new(HashMap::new()));
        let s = Arc::clone(&sessions);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else { continue };
                if !peer.ip().is_loopback() {
                    continue; // bound to 127.0.0.1, but never serve anyone else
                }
                let _ = tcp.set_nodelay(true);
                let (s, events) = (Arc::clone(&s), events.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, Arc::clone(&s), events.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, sessions, task })
    }

    /// Opens a session for `view`.
    pub(crate) fn open(&self, view: AssetView) -> Result<PlaybackSession> {
        let mut raw = [0u8; 16];
        crate::crypto::fill_random(&mut raw).map_err(crate::keys::KeyError::from)?;
        let token = hex::encode(raw);
        let base = format!("http://{}/{token}/", self.addr);
        let url = format!("{base}{}", view.entry);
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), Arc::new(view));
        Ok(PlaybackSession { url, base, token, sessions: Arc::downgrade(&self.sessions) })
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
    events: tokio::sync::broadcast::Sender<Event>,
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
    let name = name.to_owned();
    let v = Arc::clone(&view);
    let reader = match tokio::task::spawn_blocking(move || v.open(&name)).await {
        Ok(Ok(r)) => Arc::new(r),
        Ok(Err(Error::Integrity { id, file })) => {
            let _ = events.send(Event::IntegrityFailed { id, file });
            return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored file failed verification\n"));
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
        let r = Arc::clone(&reader);
        let first = match tokio::task::spawn_blocking(move || read_block(&r, start, end)).await {
            Ok(Ok(block)) => block,
            Ok(Err(e)) => {
                if let Error::Integrity { id, file } = e {
                    tracing::error!(asset = %id, "stored file {file} failed verification");
                    let _ = events.send(Event::IntegrityFailed { id, file });
                }
                return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "stored data failed verification\n"));
            }
            Err(_) => return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")),
        };
        stream_body(reader.clone(), first, start, end, events)
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

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The block of `reader` that starts at `pos` (up to the next block boundary, so that every
/// later read is block aligned, and not past `end`), read and verified.
fn read_block(reader: &AssetReader, pos: u64, end: u64) -> Result<Bytes> {
    let block = reader.block() as u64;
    let next = ((pos / block) + 1) * block;
    let n = (next.min(end) - pos) as usize;
    let mut buf = BytesMut::zeroed(n);
    if reader.read_at(pos, &mut buf)? != n {
        return Err(Error::Io(std::io::Error::other("stored file shorter than expected")));
    }
    Ok(buf.freeze())
}

/// Bytes `start..end` of `reader` (the first block already read), the rest read and verified
/// block by block on a blocking task. A block that fails verification is never sent: the
/// stream ends with an error (the client sees the response cut short) and the vault reports it.
fn stream_body(
    reader: Arc<AssetReader>,
    first: Bytes,
    start: u64,
    end: u64,
    events: tokio::sync::broadcast::Sender<Event>,
) -> Body {
    let (tx, rx) = mpsc::channel::<std::result::Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut pos = start + first.len() as u64;
        if tx.blocking_send(Ok(Frame::data(first))).is_err() {
            return;
        }
        while pos < end {
            match read_block(&reader, pos, end) {
                Ok(buf) => {
                    pos += buf.len() as u64;
                    if tx.blocking_send(Ok(Frame::data(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    if let Error::Integrity { id, file } = e {
                        tracing::error!(asset = %id, "stored file {file} failed verification; response cut");
                        let _ = events.send(Event::IntegrityFailed { id, file });
                    }
                    let _ = tx.blocking_send(Err(std::io::Error::other("stored data failed verification")));
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Checks every stored file of an asset: every chunk of every sealed file (Encrypted), or every
/// piece against the SHA-256 recorded when it was stored (Normal). Returns the files that fail.
pub(crate) fn verify_files(view: &AssetView, digests: &HashMap<String, String>) -> Vec<String> {
    let mut names: Vec<&String> = view.files.iter().collect();
    names.sort();
    let mut bad = Vec::new();
    for name in names {
        let ok = match view.mode {
            Mode::Encrypted => view.open(name).is_ok_and(|r| {
                let mut buf = vec![0u8; r.block()];
                let mut pos = 0;
                loop {
                    match r.read_at(pos, &mut buf) {
                        Ok(0) => break true,
                        Ok(n) => pos += n as u64,
                        Err(_) => break false,
                    }
                }
            }),
            Mode::Normal => match digests.get(name) {
                Some(want) => store::hash_file(&view.layout.file(&view.id, name, Mode::Normal), |_| {})
                    .is_ok_and(|(_, got)| got == *want),
                // Playlists have no recorded digest: they must exist and parse as playlists.
                None => std::fs::read(view.layout.file(&view.id, name, Mode::Normal))
                    .is_ok_and(|data| data.starts_with(b"#EXTM3U")),
            },
        };
        if !ok {
            bad.push(name.clone());
        }
    }
    bad
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

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("video/seg-00001.ts"), "video/mp2t");
        assert_eq!(content_type("video/init-0.mp4"), "video/mp4");
        assert_eq!(content_type("subtitles-2/seg-00000.vtt"), "text/vtt");
        assert_eq!(content_type("media.bin"), "application/octet-stream");
        assert_eq!(content_type("images/cover.jpg"), "image/jpeg");
        assert_eq!(content_type("images/thumbnails-1.vtt"), "text/vtt");
    }
}
