//! A real HTTP origin on 127.0.0.1 for the end-to-end tests: serves a directory with HTTP/1.1,
//! and can misbehave on purpose.
//!
//! - `Range` (single ranges: `a-b`, `a-`, `-n`), `HEAD`, `If-Range`, `206`/`416`, strong ETags.
//! - Referer enforcement: requests without the expected `Referer` get 403.
//! - Signed URLs as Alibaba Cloud CDN's URL signing type A makes them
//!   (`?auth_key={timestamp}-{rand}-{uid}-{md5("/path-timestamp-rand-uid-key")}`, expiring at the
//!   timestamp): unsigned, forged or expired requests get 403; playlists are rewritten on the way
//!   out so that every URI in them carries its own signature with the same expiry (as CDNs'
//!   "M3U8 rewrite" features do); an MPD gets a `BaseURL` under a token signing its directory
//!   (`/t/{auth_key}/dir/`, as CDNs that sign paths do).
//! - Faults, applied to the next N matching requests: an error status (with `Retry-After`),
//!   a reset before the response, a body cut short of its `Content-Length`, a stall, an HTML
//!   page instead of the content, a flipped byte.
//! - Throttling per connection, redirects (`/redirect/<path>`), and a log of every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, std::io::Error>;

/// A way to misbehave.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, if given).
    Status(u16, Option<u64>),
    /// Close the connection without answering.
    Reset,
    /// Send the headers (full `Content-Length`) and only this many body bytes, then close.
    Truncate(usize),
    /// Send the headers, then nothing for this long, then the body.
    Stall(Duration),
    /// Answer 200 with an HTML error page.
    HtmlPage,
    /// Flip the high bit of the byte 17 from the end: in an AES-128-CBC resource that flips
    /// the last plaintext byte (the PKCS7 pad length), so the padding is always invalid.
    Corrupt,
}

#[derive(Debug, Clone)]
struct Rule {
    path_contains: String,
    fault: Fault,
    /// Matching requests still to let through before misbehaving.
    skip: u32,
    remaining: u32,
}

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Path without query.
    pub path: String,
    /// Full query string.
    pub query: Option<String>,
    /// `GET` or `HEAD`.
    pub method: String,
    /// `Range` header.
    pub range: Option<String>,
    /// `Referer` header.
    pub referer: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Every header, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Status sent (0 for a reset).
    pub status: u16,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Logged>,
    referer: Option<String>,
    sign_secret: Option<String>,
    /// Signatures of an earlier generation are "expired".
    generation: u64,
    /// Keys need one of these `MtsHlsUriToken`s (when set).
    hls_uri_tokens: Option<Vec<String>>,
    /// Answer ranges whatever `If-Range` says (a broken CDN).
    ignore_if_range: bool,
    /// Give every version of a file the same `ETag` and `Last-Modified` (a broken CDN).
    constant_validators: bool,
    /// Body bytes handed to the connection so far, by the first component of the path.
    sent: HashMap<String, Arc<AtomicU64>>,
}

/// A running origin; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    rate: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Origin {
    /// Serves `root` on an ephemeral port of 127.0.0.1.
    pub async fn start(root: impl Into<PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let root = root.into();
        let state = Arc::new(Mutex::new(State::default()));
        let rate = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, rt, st) = (root.clone(), Arc::clone(&state), Arc::clone(&rate), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (r, s, rt) = (r.clone(), Arc::clone(&s), Arc::clone(&rt));
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, r.clone(), Arc::clone(&s), rt.load(Ordering::SeqCst)));
                    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        Self { addr, root, state, rate, stop, task }
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The served directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requires this `Referer` on every request.
    pub fn require_referer(&self, referer: &str) {
        self.state.lock().unwrap().referer = Some(referer.to_owned());
    }

    /// Requires a valid, unexpired `auth_key` on every request.
    pub fn require_signature(&self, secret: &str) {
        self.state.lock().unwrap().sign_secret = Some(secret.to_owned());
    }

    /// Requires `MtsHlsUriToken` = one of `tokens` on every key (`.key`) request, and does what
    /// Alibaba Cloud CDN's parameter pass-through for HLS encryption does: a playlist requested
    /// with `MtsHlsUriToken` gets it appended to the URIs of its `#EXT-X-KEY` tags.
    pub fn require_hls_uri_token(&self, tokens: &[&str]) {
        self.state.lock().unwrap().hls_uri_tokens = Some(tokens.iter().map(|t| (*t).to_owned()).collect());
    }

    /// A signed URL for `path`, valid for `ttl` (whole seconds, at least one).
    pub fn signed_url(&self, path: &str, ttl: Duration) -> String {
        let (secret, generation) = {
            let s = self.state.lock().unwrap();
            (s.sign_secret.clone().unwrap_or_default(), s.generation)
        };
        let expiry = now() + ttl.as_secs().max(1);
        let abs = format!("/{}", path.trim_start_matches('/'));
        format!("{}?auth_key={}", self.url(path), sign(&secret, &abs, expiry, generation))
    }

    /// Answers `Range` requests with `206` even when `If-Range` names another version of the
    /// file, as broken CDNs do.
    pub fn ignore_if_range(&self) {
        self.state.lock().unwrap().ignore_if_range = true;
    }

    /// Gives every version of a file the same `ETag` and `Last-Modified` (derived from its path
    /// alone), as broken CDNs do: a changed file cannot be told from the old one.
    pub fn constant_validators(&self) {
        self.state.lock().unwrap().constant_validators = true;
    }

    /// Expires every signature issued so far (as if their time had passed); new ones work.
    pub fn expire_signatures(&self) {
        self.state.lock().unwrap().generation += 1;
    }

    /// Body bytes handed to connections so far for paths under `dir` (the first component of
    /// the path, e.g. `"long"`), as they are sent.
    pub fn bytes_sent(&self, dir: &str) -> u64 {
        self.state.lock().unwrap().sent.get(dir).map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// Throttles every connection to `bytes_per_sec` (0 = unlimited).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Misbehaves on the next `times` requests whose path contains `path_contains`.
    pub fn fault(&self, path_contains: &str, fault: Fault, times: u32) {
        self.fault_after(path_contains, 0, fault, times);
    }

    /// Lets the next `skip` requests whose path contains `path_contains` through, then misbehaves
    /// on `times` more.
    pub fn fault_after(&self, path_contains: &str, skip: u32, fault: Fault, times: u32) {
        self.state.lock().unwrap().rules.push(Rule {
            path_contains: path_contains.to_owned(),
            fault,
            skip,
            remaining: times,
        });
    }

    /// Stops every fault set so far.
    pub fn clear_faults(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// How many GET requests reached `path` (exact path, no query) and got a 2xx.
    pub fn served(&self, path: &str) -> usize {
        let p = format!("/{}", path.trim_start_matches('/'));
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.path == p && l.method == "GET" && (200..300).contains(&l.status))
            .count()
    }

    /// How many requests reached `path`, whatever their outcome.
    pub fn requests_to(&self, path: &str) -> usize {
        let p = format!("/{}", path.trim_start_matches('/'));
        self.state.lock().unwrap().log.iter().filter(|l| l.path == p).count()
    }
}

/// A type-A `auth_key` for `path` (absolute, no query): `{timestamp}-{rand}-{uid}-{md5hash}` with
/// md5hash = md5("{path}-{timestamp}-{rand}-{uid}-{key}"). The timestamp is the expiry (a TTL of
/// 0); `rand` carries the signing generation (`g<N>`), so that [`Origin::expire_signatures`] can
/// expire every URL issued so far.
pub fn sign(secret: &str, path: &str, expiry: u64, generation: u64) -> String {
    type_a(path, expiry, &format!("g{generation}"), "0", secret)
}

/// Alibaba Cloud CDN URL signing type A: the `auth_key` value.
pub fn type_a(path: &str, timestamp: u64, rand: &str, uid: &str, key: &str) -> String {
    let hash = md5::Md5::digest(format!("{path}-{timestamp}-{rand}-{uid}-{key}").as_bytes());
    format!("{timestamp}-{rand}-{uid}-{}", hex::encode(hash))
}

fn auth_key(query: Option<&str>) -> Option<&str> {
    query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("auth_key=")))
}

fn check_signature(secret: &str, generation: u64, path: &str, query: Option<&str>) -> bool {
    let Some(key) = auth_key(query) else {
        return false;
    };
    let parts: Vec<&str> = key.splitn(4, '-').collect();
    let [ts, rand, _uid, _hash] = parts[..] else {
        return false;
    };
    let (Ok(expiry), Some(Ok(g))) = (ts.parse::<u64>(), rand.strip_prefix('g').map(str::parse::<u64>)) else {
        return false;
    };
    expiry >= now() && g >= generation && sign(secret, path, expiry, g) == key
}

/// `uri` (relative to the playlist at `base`, or absolute) as an absolute path without query.
fn resolve_path(base: &str, uri: &str) -> String {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    let joined = if let Some(rest) = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned())
    } else if uri.starts_with('/') {
        uri.to_owned()
    } else {
        format!("{}/{uri}", base.rsplit_once('/').map_or("", |(d, _)| d))
    };
    let mut out: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4" | "m4s") => "video/mp4",
        Some("vtt") => "text/vtt",
        Some("key") => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

/// Appends `MtsHlsUriToken={token}` to the URI of every `#EXT-X-KEY` tag.
fn pass_hls_uri_token(text: &str, token: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        match (line.starts_with("#EXT-X-KEY"), line.find("URI=\"")) {
            (true, Some(start)) => {
                let rest = &line[start + 5..];
                let end = rest.find('"').unwrap_or(rest.len());
                let sep = if rest[..end].contains('?') { '&' } else { '?' };
                out.push_str(&format!("{}{sep}MtsHlsUriToken={token}{}", &line[..start + 5 + end], &rest[end..]));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Appends an `auth_key` to every URI of a playlist (segment lines and `URI="…"` attributes).
/// `mpd` with an MPD-level `BaseURL` of `base` (before its first `Period`).
fn signed_mpd(mpd: &str, base: &str) -> String {
    match mpd.find("<Period") {
        Some(at) => format!("{}<BaseURL>{base}</BaseURL>\n\t{}", &mpd[..at], &mpd[at..]),
        None => mpd.to_owned(),
    }
}

fn rewrite_playlist(text: &str, sign_uri: impl Fn(&str) -> String) -> String {
    let add = |uri: &str| {
        let auth = sign_uri(uri);
        if uri.contains('?') { format!("{uri}&auth_key={auth}") } else { format!("{uri}?auth_key={auth}") }
    };
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.starts_with('#') {
            if let Some(start) = line.find("URI=\"") {
                let rest = &line[start + 5..];
                if let Some(end) = rest.find('"') {
                    out.push_str(&line[..start + 5]);
                    out.push_str(&add(&rest[..end]));
                    out.push_str(&rest[end..]);
                    out.push('\n');
                    continue;
                }
            }
            out.push_str(line);
        } else if !line.trim().is_empty() {
            out.push_str(&add(line.trim()));
        }
        out.push('\n');
    }
    out
}

fn parse_range(v: &str, len: u64) -> Option<Option<(u64, u64)>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole file
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (s, "") => (s.parse().ok()?, len.checked_sub(1)?),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(len.saturating_sub(1))),
    };
    if start >= len || start > end {
        return Some(None); // unsatisfiable
    }
    Some(Some((start, end)))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    rate: u64,
) -> Result<Response<Body>, std::io::Error> {
    // A directory token (`/t/{auth_key}/dir/file`): what a signed MPD's BaseURL names (see
    // `signed_mpd`). The token signs the directory; the request is for the file.
    let (path, dir_token) = match req.uri().path().strip_prefix("/t/").and_then(|r| r.split_once('/')) {
        Some((token, file)) => (format!("/{file}"), Some(token.to_owned())),
        None => (req.uri().path().to_owned(), None),
    };
    let query = req.uri().query().map(str::to_owned);
    let h = |n: header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let logged = Logged {
        path: path.clone(),
        query: query.clone(),
        method: req.method().to_string(),
        range: h(header::RANGE),
        referer: h(header::REFERER),
        user_agent: h(header::USER_AGENT),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        status: 0,
    };
    let (fault, referer, secret, generation, hls_uri_tokens, broken) = {
        let mut s = state.lock().unwrap();
        let mut fault = None;
        if let Some(rule) = s.rules.iter_mut().find(|r| r.remaining > 0 && path.contains(&r.path_contains)) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else {
                rule.remaining -= 1;
                fault = Some(rule.fault.clone());
            }
        }
        let broken = (s.ignore_if_range, s.constant_validators);
        (fault, s.referer.clone(), s.sign_secret.clone(), s.generation, s.hls_uri_tokens.clone(), broken)
    };
    let hls_uri_token = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "MtsHlsUriToken").map(|(_, v)| v.into_owned())
    });
    let finish = |resp: Response<Body>, mut logged: Logged| {
        logged.status = resp.status().as_u16();
        state.lock().unwrap().log.push(logged);
        Ok(resp)
    };

    if let Some(rest) = path.strip_prefix("/redirect/") {
        let mut r = full(StatusCode::FOUND, "");
        let loc = match &query {
            Some(q) => format!("/{rest}?{q}"),
            None => format!("/{rest}"),
        };
        r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&loc).unwrap());
        return finish(r, logged);
    }
    if let Some(want) = &referer
        && logged.referer.as_deref() != Some(want.as_str())
    {
        return finish(full(StatusCode::FORBIDDEN, "referer required"), logged);
    }
    let signed = |secret: &str| match &dir_token {
        Some(token) => {
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            check_signature(secret, generation, dir, Some(&format!("auth_key={token}")))
        }
        None => check_signature(secret, generation, &path, query.as_deref()),
    };
    if let Some(secret) = &secret
        && !signed(secret)
    {
        return finish(full(StatusCode::FORBIDDEN, "signature missing or expired"), logged);
    }
    if let Some(valid) = &hls_uri_tokens
        && path.ends_with(".key")
        && !hls_uri_token.as_ref().is_some_and(|t| valid.contains(t))
    {
        return finish(full(StatusCode::FORBIDDEN, "MtsHlsUriToken missing or invalid"), logged);
    }
    match &fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut r = full(StatusCode::from_u16(*code).unwrap(), "injected");
            if let Some(s) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*s));
            }
            return finish(r, logged);
        }
        Some(Fault::Reset) => {
            state.lock().unwrap().log.push(logged);
            // An error from the service makes hyper drop the connection unanswered.
            return Err(std::io::Error::other("injected reset"));
        }
        Some(Fault::HtmlPage) => {
            let mut r = full(StatusCode::OK, "<!DOCTYPE html><html><body><h1>403 Forbidden</h1></body></html>");
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return finish(r, logged);
        }
        _ => {}
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return finish(full(StatusCode::METHOD_NOT_ALLOWED, ""), logged);
    }
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return finish(full(StatusCode::NOT_FOUND, "not found"), logged);
    }
    let file = root.join(rel);
    let Ok(mut data) = tokio::fs::read(&file).await else {
        return finish(full(StatusCode::NOT_FOUND, "not found"), logged);
    };
    let meta = tokio::fs::metadata(&file).await.ok();
    let mtime = meta.and_then(|m| m.modified().ok()).unwrap_or(UNIX_EPOCH);
    if let Some(secret) = &secret
        && rel.ends_with(".m3u8")
        && let Some(auth) = auth_key(query.as_deref())
    {
        // Every URI gets its own signature, expiring with the playlist's.
        let mut parts = auth.splitn(3, '-');
        let expiry = parts.next().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        let g = parts.next().and_then(|r| r.strip_prefix('g')).and_then(|g| g.parse::<u64>().ok()).unwrap_or(0);
        let sign_uri = |uri: &str| sign(secret, &resolve_path(&path, uri), expiry, g);
        data = rewrite_playlist(&String::from_utf8_lossy(&data), sign_uri).into_bytes();
    }
    if let Some(secret) = &secret
        && rel.ends_with(".mpd")
        && let Some(auth) = auth_key(query.as_deref())
    {
        // Segments are reached through a BaseURL that carries a token for the MPD's directory,
        // expiring with the MPD's signature (as CDNs that sign paths do).
        let mut parts = auth.splitn(3, '-');
        let expiry = parts.next().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        let g = parts.next().and_then(|r| r.strip_prefix('g')).and_then(|g| g.parse::<u64>().ok()).unwrap_or(0);
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let token = sign(secret, dir, expiry, g);
        data = signed_mpd(&String::from_utf8_lossy(&data), &format!("/t/{token}{dir}")).into_bytes();
    }
    if let (Some(_), Some(token), true) = (&hls_uri_tokens, &hls_uri_token, rel.ends_with(".m3u8")) {
        let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        data = pass_hls_uri_token(&String::from_utf8_lossy(&data), &token).into_bytes();
    }
    if fault == Some(Fault::Corrupt) && data.len() >= 17 {
        let at = data.len() - 17;
        data[at] ^= 0x80;
    }
    let (ignore_if_range, constant_validators) = broken;
    let (etag, mtime) = if constant_validators {
        (
            format!("\"{}\"", hex::encode(&Sha256::digest(rel.as_bytes())[..8])),
            UNIX_EPOCH + Duration::from_secs(1 << 30),
        )
    } else {
        (format!("\"{}\"", hex::encode(&Sha256::digest(&data)[..8])), mtime)
    };
    let len = data.len() as u64;
    let if_range_ok = match h(header::IF_RANGE) {
        _ if ignore_if_range => true,
        None => true,
        Some(v) => v == etag || v == httpdate::fmt_http_date(mtime),
    };
    let mut status = StatusCode::OK;
    let mut window = (0u64, len);
    if let (Some(rv), true) = (logged.range.clone(), if_range_ok) {
        match parse_range(&rv, len) {
            Some(Some((a, b))) => {
                status = StatusCode::PARTIAL_CONTENT;
                window = (a, b + 1);
            }
            Some(None) => {
                let mut r = full(StatusCode::RANGE_NOT_SATISFIABLE, "");
                r.headers_mut()
                    .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).unwrap());
                return finish(r, logged);
            }
            None => {}
        }
    }
    let body_bytes = Bytes::from(data).slice(window.0 as usize..window.1 as usize);
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, body_bytes.len())
        .header(header::CONTENT_TYPE, content_type(rel))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(mtime));
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {}-{}/{len}", window.0, window.1 - 1));
    }
    let body: Body = if req.method() == Method::HEAD {
        Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
    } else {
        let top = rel.split('/').next().unwrap_or("").to_owned();
        let sent = Arc::clone(state.lock().unwrap().sent.entry(top).or_default());
        paced_body(body_bytes, rate, fault, sent)
    };
    finish(builder.body(body).unwrap(), logged)
}

/// The body in 16 KiB pieces, throttled to `rate` bytes/s, with the fault's truncation or stall;
/// `sent` counts the bytes as they go.
fn paced_body(data: Bytes, rate: u64, fault: Option<Fault>, sent: Arc<AtomicU64>) -> Body {
    const PIECE: usize = 16 * 1024;
    let limit = match fault {
        Some(Fault::Truncate(n)) => n.min(data.len()),
        _ => data.len(),
    };
    let truncated = limit < data.len();
    let stall = match fault {
        Some(Fault::Stall(d)) => Some(d),
        _ => None,
    };
    let pieces: Vec<Bytes> = (0..limit).step_by(PIECE).map(|i| data.slice(i..(i + PIECE).min(limit))).collect();
    let s = stream::iter(pieces.into_iter().enumerate())
        .then(move |(i, piece)| {
            let sent = Arc::clone(&sent);
            async move {
                if i == 0
                    && let Some(d) = stall
                {
                    tokio::time::sleep(d).await;
                }
                if rate > 0 {
                    tokio::time::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64)).await;
                }
                sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Frame::data(piece))
            }
        })
        .chain(stream::iter(truncated.then(|| Err(std::io::Error::other("injected truncation")))));
    BodyExt::boxed(StreamBody::new(s))
}

/// Per-path counts of successful GETs, for "nothing fetched twice" checks.
pub fn counts(log: &[Logged]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in log.iter().filter(|l| l.method == "GET" && (200..300).contains(&l.status)) {
        *m.entry(l.path.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Alibaba Cloud CDN's "Type A signing" documentation.
    #[test]
    fn type_a_matches_the_documented_example() {
        assert_eq!(
            type_a("/video/standard/1K.html", 1_444_435_200, "0", "0", "aliyuncdnexp1234"),
            "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f"
        );
    }

    #[test]
    fn playlist_uris_resolve_to_paths() {
        assert_eq!(resolve_path("/hls-aes/low/index.m3u8", "seg-0.ts"), "/hls-aes/low/seg-0.ts");
        assert_eq!(resolve_path("/hls-aes/low/index.m3u8", "../keys/k1.key"), "/hls-aes/keys/k1.key");
        assert_eq!(resolve_path("/a/b.m3u8", "http://h:1/x/y.ts?q"), "/x/y.ts");
    }
}
