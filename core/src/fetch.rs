//! HTTP: one client per vault (rustls with the `ring` provider and Mozilla's roots compiled in,
//! HTTP/2 where offered, connection reuse), per-request connect and idle-read timeouts, and
//! response checks: status classes, `Content-Length` and `Content-Range` honoured, bodies that end
//! early reported as such.
//!
//! Retrying is the caller's job, because a retried segment must restart its decryptor and its
//! file too: [`FetchError::class`] tells it whether to, and [`Retry`] (the one retry policy every
//! loop uses: sources, pieces, files, VOD API calls) counts the attempts and waits between them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderName, HeaderValue};

/// Request headers.
pub use reqwest::header::HeaderMap;
use url::Url;

use crate::hls::media::ByteRange;

/// Timeouts and identity of the HTTP client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before it is abandoned and retried.
    pub read_timeout: Duration,
    /// `User-Agent` when the asset does not set one.
    pub user_agent: String,
    /// Extra trusted root certificates (DER), e.g. a corporate CA.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(20),
            user_agent: concat!("vodvault/", env!("CARGO_PKG_VERSION")).to_owned(),
            extra_roots: Vec::new(),
        }
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request for transient failures (transport errors, 5xx, 429, short bodies).
    pub attempts: u32,
    /// First backoff delay; doubles per attempt, with jitter.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// A failed request.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// Connection failure, reset, idle timeout, or a body cut short by the transport.
    #[error("network error: {0}")]
    Transport(String),
    /// A non-success status.
    #[error("HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// The body ended before `Content-Length` (or the requested range) was delivered.
    #[error("response ended after {received} of {expected} bytes")]
    Short {
        /// Bytes promised.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The server answered a range request with a different range.
    #[error("server returned the wrong range: {0}")]
    RangeMismatch(String),
    /// The body is larger than the caller accepts (playlists, keys).
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The request could not be built (bad header, unsupported URL scheme, redirect loop).
    #[error("request failed: {0}")]
    Request(String),
}

/// What a caller should do about a [`FetchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry after a backoff (or the server's `Retry-After`).
    Transient {
        /// The server's requested delay.
        retry_after: Option<Duration>,
    },
    /// 401, 403 or 410: the (signed) URL expired; get a fresh one.
    Expired,
    /// Retrying will not help.
    Fatal,
}

impl FetchError {
    /// How to react.
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Transport(_) | FetchError::Short { .. } => ErrorClass::Transient { retry_after: None },
            FetchError::Status { status, retry_after } => match status {
                401 | 403 | 410 => ErrorClass::Expired,
                408 | 425 | 429 | 500..=599 => ErrorClass::Transient { retry_after: *retry_after },
                _ => ErrorClass::Fatal,
            },
            FetchError::RangeMismatch(_) | FetchError::TooLarge { .. } | FetchError::Request(_) => ErrorClass::Fatal,
        }
    }
}

/// The retries of one operation under a [`RetryPolicy`]: every retrying loop in vodvault counts
/// and waits through one.
#[derive(Debug)]
pub(crate) struct Retry<'a> {
    policy: &'a RetryPolicy,
    failures: u32,
}

impl<'a> Retry<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        Self { policy, failures: 0 }
    }

    /// After a transient failure: waits the policy's delay (or the server's `Retry-After`, capped)
    /// and returns `true`, or returns `false` at once when the attempts are used up.
    pub(crate) async fn again(&mut self, retry_after: Option<Duration>) -> bool {
        if self.failures + 1 >= self.policy.attempts {
            return false;
        }
        tokio::time::sleep(retry_delay(self.policy, self.failures, retry_after)).await;
        self.failures += 1;
        true
    }

    /// Progress was made: the attempts start over.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The delay before retry number `attempt` (0 for the first retry): exponential with "equal
/// jitter" (half fixed, half random), or the server's `Retry-After` capped by the policy.
fn retry_delay(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(policy.max_retry_after);
    }
    let exp = policy.base_delay.saturating_mul(1u32 << attempt.min(16)).min(policy.max_delay);
    let mut r = [0u8; 4];
    let frac = match crate::crypto::fill_random(&mut r) {
        Ok(()) => f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    exp.mul_f64(0.5 + 0.5 * frac)
}

fn parse_retry_after(v: &HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(s).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Converts app-supplied headers; rejects invalid names and values.
///
/// # Errors
/// [`FetchError::Request`] naming the bad header (never its value, which may be a secret).
pub fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, FetchError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| FetchError::Request(format!("invalid header name {name:?}")))?;
        let v = HeaderValue::from_str(value.trim())
            .map_err(|_| FetchError::Request(format!("invalid value for header {name:?}")))?;
        map.append(n, v);
    }
    Ok(map)
}

/// The vault's HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    /// Media and playlists: no read timeout of its own (a body held back by the rate cap is not
    /// a stalled server); [`Http::open`] times each read of the network instead.
    client: reqwest::Client,
    /// API calls (ApsaraVideo VOD), with reqwest's read timeout.
    api: reqwest::Client,
    read_timeout: Duration,
    limit: Arc<RateLimit>,
}

/// A cap on the bytes per second of every body read through the client, shared by all of them:
/// each chunk that arrives books the next slot of time its size needs (first come, first
/// served, so connections share the rate evenly) and waits for it, so the rate is smooth, not
/// bursts and silences. A reader that waits stops reading its socket, and the sender slows down.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    /// Bytes per second; 0: no cap.
    rate: std::sync::atomic::AtomicU64,
    /// Bumped whenever the cap changes: waiting readers book again under the new one.
    generation: std::sync::atomic::AtomicU64,
    /// When the bytes booked so far have had their time.
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimit {
    /// How far the schedule may lag behind now: a connection that was idle gets at most this
    /// much time's worth at once.
    const SLACK: Duration = Duration::from_millis(50);

    /// How often a waiting reader looks whether the cap changed.
    const RECHECK: Duration = Duration::from_millis(100);

    pub(crate) fn set(&self, bytes_per_sec: Option<u64>) {
        // A new schedule from now: what was booked under the old cap does not hold up the new.
        *self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.rate.store(bytes_per_sec.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.rate.load(std::sync::atomic::Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Waits until `n` more bytes fit under the cap (booking again if the cap changes
    /// meanwhile).
    async fn take(&self, n: usize) {
        'book: loop {
            let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
            let Some(rate) = self.get() else { return };
            let until = {
                let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = tokio::time::Instant::now();
                let earliest = now.checked_sub(Self::SLACK).unwrap_or(now);
                let start = next.map_or(earliest, |t| t.max(earliest));
                let until = start + Duration::from_secs_f64(n as f64 / rate as f64);
                *next = Some(until);
                until
            };
            loop {
                let now = tokio::time::Instant::now();
                if now >= until {
                    return;
                }
                tokio::time::sleep_until(until.min(now + Self::RECHECK)).await;
                if self.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
                    continue 'book;
                }
            }
        }
    }
}

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What to fetch.
    pub url: &'a Url,
    /// The asset's headers (Referer, User-Agent, custom), sent on this request and every
    /// redirect.
    pub headers: &'a HeaderMap,
    /// Only these bytes.
    pub range: Option<ByteRange>,
    /// Only the bytes from this offset to the end (resuming a file).
    pub from: Option<u64>,
    /// With `range`: only if the resource still has this validator (ETag or Last-Modified).
    pub if_range: Option<&'a str>,
    /// A `HEAD` request.
    pub head: bool,
    /// Not held to the vault's rate cap (a paused asset's pieces a player waits for).
    pub unlimited: bool,
}

impl<'a> Request<'a> {
    /// A plain GET.
    pub fn get(url: &'a Url, headers: &'a HeaderMap) -> Self {
        Self { url, headers, range: None, from: None, if_range: None, head: false, unlimited: false }
    }
}

impl Http {
    /// Builds the client.
    ///
    /// # Errors
    /// [`FetchError::Request`] if the TLS configuration cannot be built.
    pub fn new(config: &HttpConfig) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for der in &config.extra_roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| FetchError::Request(format!("extra root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Request(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let builder = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .connect_timeout(config.connect_timeout)
                .user_agent(config.user_agent.clone())
                // Our Referer (an asset header) must survive redirects; reqwest would replace it.
                .referer(false)
                .redirect(reqwest::redirect::Policy::limited(10))
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
        };
        let client = builder().build().map_err(|e| FetchError::Request(format!("HTTP client: {e}")))?;
        let api = builder()
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|e| FetchError::Request(format!("HTTP client: {e}")))?;
        Ok(Self { client, api, read_timeout: config.read_timeout, limit: Arc::new(RateLimit::default()) })
    }

    /// The cap on bytes per second of every download (`None`: none), changeable at any time.
    pub(crate) fn rate_limit(&self) -> &RateLimit {
        &self.limit
    }

    /// The client for API calls that are not media fetches (with a read timeout of its own).
    pub(crate) fn api_client(&self) -> &reqwest::Client {
        &self.api
    }

    /// Sends `req` and returns the response body, checked: success status, the requested range
    /// (a `200` to a range request is trimmed to the range), and the length promised.
    ///
    /// # Errors
    /// A [`FetchError`]; see [`FetchError::class`].
    pub async fn open(&self, req: Request<'_>) -> Result<Body, FetchError> {
        let method = if req.head { reqwest::Method::HEAD } else { reqwest::Method::GET };
        let mut rb = self.client.request(method, req.url.clone()).headers(req.headers.clone());
        if let Some(r) = req.range {
            rb = rb.header(header::RANGE, r.http_range());
        } else if let Some(from) = req.from {
            rb = rb.header(header::RANGE, format!("bytes={from}-"));
        }
        if let (Some(v), true) = (req.if_range, req.range.is_some() || req.from.is_some()) {
            rb = rb.header(header::IF_RANGE, v);
        }
        // Every wait on the network is bounded (reqwest's own read timeout would also count the
        // time a body spends held back by the rate cap).
        let resp = tokio::time::timeout(self.read_timeout, rb.send())
            .await
            .map_err(|_| FetchError::Transport("no response within the read timeout".into()))?
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = resp.headers().get(header::RETRY_AFTER).and_then(parse_retry_after);
            return Err(FetchError::Status { status, retry_after });
        }
        let headers = resp.headers();
        let content_length =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let validator = headers
            .get(header::ETAG)
            .filter(|v| !v.as_bytes().starts_with(b"W/"))
            .or_else(|| headers.get(header::LAST_MODIFIED))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let accept_ranges = headers
            .get(header::ACCEPT_RANGES)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("bytes"));
        let final_url = resp.url().clone();
        let mut body = Body {
            limit: (!req.unlimited && !req.head).then(|| Arc::clone(&self.limit)),
            read_timeout: self.read_timeout,
            resp: Some(resp),
            skip: 0,
            expected: content_length,
            received: 0,
            delivered: 0,
            total_size: content_length,
            validator,
            content_type,
            accept_ranges,
            partial: status == 206,
            final_url,
        };
        if let Some(r) = req.range {
            if status == 206 {
                let (start, end, total, cr) = body.content_range()?;
                if start != r.offset || end < r.offset + r.length.saturating_sub(1) {
                    return Err(FetchError::RangeMismatch(format!("asked for {}, got {cr:?}", r.http_range())));
                }
                body.total_size = total;
                body.expected = Some(r.length);
            } else if req.if_range.is_none() {
                // 200: the server ignores ranges and sends the whole resource; keep the window.
                body.skip = r.offset;
                body.expected = Some(r.length);
                if let Some(cl) = content_length
                    && cl < r.offset + r.length
                {
                    return Err(FetchError::Short { expected: r.offset + r.length, received: cl });
                }
            }
            // 200 to a request with If-Range: the resource changed (or ranges are unsupported);
            // this is the whole new resource, and `partial == false` tells the caller to restart.
        } else if let (Some(from), 206) = (req.from, status) {
            let (start, end, total, cr) = body.content_range()?;
            if start != from || total.is_some_and(|t| end + 1 != t) {
                return Err(FetchError::RangeMismatch(format!("asked for bytes={from}-, got {cr:?}")));
            }
            body.total_size = total;
            body.expected = Some(end + 1 - start);
        }
        Ok(body)
    }

    /// GETs a small resource (playlist, key) whole, retrying transient failures per `policy`.
    /// Returns the bytes and the final URL after redirects (relative URIs resolve against it).
    ///
    /// # Errors
    /// The last [`FetchError`] once retries are exhausted or the error is not transient;
    /// [`FetchError::TooLarge`] past `limit` bytes.
    pub async fn get_small(
        &self,
        url: &Url,
        headers: &HeaderMap,
        limit: u64,
        policy: &RetryPolicy,
    ) -> Result<(Bytes, Url), FetchError> {
        self.get_small_range(url, headers, None, limit, policy).await
    }

    /// [`Http::get_small`] of only `range` (a DASH segment index, say) when it is given.
    ///
    /// # Errors
    /// As [`Http::get_small`].
    pub async fn get_small_range(
        &self,
        url: &Url,
        headers: &HeaderMap,
        range: Option<ByteRange>,
        limit: u64,
        policy: &RetryPolicy,
    ) -> Result<(Bytes, Url), FetchError> {
        let mut retry = Retry::new(policy);
        loop {
            let res = async {
                // Playlists, keys and segment indexes are small and gate everything else: not held
                // to the rate cap.
                let mut body = self.open(Request { range, unlimited: true, ..Request::get(url, headers) }).await?;
                if body.expected.is_some_and(|n| n > limit) {
                    return Err(FetchError::TooLarge { limit });
                }
                let mut out = Vec::new();
                while let Some(chunk) = body.chunk().await? {
                    if out.len() as u64 + chunk.len() as u64 > limit {
                        return Err(FetchError::TooLarge { limit });
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok((Bytes::from(out), body.final_url.clone()))
            }
            .await;
            match res {
                Err(e) => match e.class() {
                    ErrorClass::Transient { retry_after } if retry.again(retry_after).await => {}
                    _ => return Err(e),
                },
                ok => return ok,
            }
        }
    }
}

fn transport(e: reqwest::Error) -> FetchError {
    if e.is_redirect() || e.is_builder() {
        return FetchError::Request(error_chain(&e));
    }
    FetchError::Transport(error_chain(&e))
}

/// The error and its sources on one line, without URLs (they may carry signatures).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.without_url_ref();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(&format!(" for url ({u})"), "").replace(u.as_str(), &crate::identity::redact(u));
        }
        s
    }
}

/// `bytes start-end/total` (total may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((s.trim().parse().ok()?, e.trim().parse().ok()?, total))
}

/// A response body being read, with the checks of [`Http::open`] applied.
#[derive(Debug)]
pub struct Body {
    resp: Option<reqwest::Response>,
    /// The rate cap its bytes are held to, if any.
    limit: Option<Arc<RateLimit>>,
    /// The longest wait for the next bytes from the network.
    read_timeout: Duration,
    /// Bytes still to drop from the front (a `200` answer to a range request).
    skip: u64,
    /// Bytes the caller must receive, when known.
    expected: Option<u64>,
    received: u64,
    delivered: u64,
    /// Size of the whole resource, when known (`Content-Length` of a 200, total of a 206).
    pub total_size: Option<u64>,
    /// `ETag` (strong) or `Last-Modified`, for `If-Range` on resume.
    pub validator: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Accept-Ranges: bytes`.
    pub accept_ranges: bool,
    /// The server answered `206 Partial Content`.
    pub partial: bool,
    /// The URL after redirects.
    pub final_url: Url,
}

impl Body {
    /// The parsed `Content-Range` of a 206 (start, end, total) and its text.
    fn content_range(&self) -> Result<(u64, u64, Option<u64>, String), FetchError> {
        let cr = self
            .resp
            .as_ref()
            .and_then(|r| r.headers().get(header::CONTENT_RANGE))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default();
        let (start, end, total) =
            parse_content_range(&cr).ok_or_else(|| FetchError::RangeMismatch(format!("Content-Range {cr:?}")))?;
        Ok((start, end, total, cr))
    }

    /// The next piece of the body; `None` at its end.
    ///
    /// # Errors
    /// [`FetchError::Transport`] when the connection fails or stalls, [`FetchError::Short`] when
    /// it ends before the promised length.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        loop {
            if self.expected.is_some_and(|n| self.delivered >= n) {
                // Everything asked for has arrived: stop reading (a 200 to a range request may
                // carry much more).
                self.resp = None;
                return Ok(None);
            }
            let Some(resp) = self.resp.as_mut() else {
                return Ok(None);
            };
            let next = tokio::time::timeout(self.read_timeout, resp.chunk())
                .await
                .map_err(|_| FetchError::Transport("no data within the read timeout".into()))?
                .map_err(transport)?;
            let Some(mut bytes) = next else {
                self.resp = None;
                if let Some(n) = self.expected
                    && self.delivered < n
                {
                    return Err(FetchError::Short { expected: n, received: self.delivered });
                }
                return Ok(None);
            };
            self.received += bytes.len() as u64;
            if self.skip > 0 {
                let drop = self.skip.min(bytes.len() as u64) as usize;
                self.skip -= drop as u64;
                bytes = bytes.slice(drop..);
            }
            if let Some(n) = self.expected {
                let room = (n - self.delivered) as usize;
                if bytes.len() > room {
                    bytes.truncate(room);
                }
            }
            if bytes.is_empty() {
                continue;
            }
            self.delivered += bytes.len() as u64;
            if let Some(limit) = &self.limit {
                limit.take(bytes.len()).await;
            }
            return Ok(Some(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let s = |status| FetchError::Status { status, retry_after: None }.class();
        assert_eq!(s(403), ErrorClass::Expired);
        assert_eq!(s(410), ErrorClass::Expired);
        assert_eq!(s(401), ErrorClass::Expired);
        assert_eq!(s(404), ErrorClass::Fatal);
        assert_eq!(s(503), ErrorClass::Transient { retry_after: None });
        assert_eq!(s(429), ErrorClass::Transient { retry_after: None });
        assert_eq!(FetchError::Short { expected: 2, received: 1 }.class(), ErrorClass::Transient { retry_after: None });
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 0..6 {
            let d = retry_delay(&p, attempt, None);
            let cap = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
        }
        assert_eq!(retry_delay(&p, 0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(retry_delay(&p, 0, Some(Duration::from_secs(999))), p.max_retry_after);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, Some(1000))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn bad_headers_are_named_without_values() {
        let err = header_map(&[("X-Token".into(), "secret\nvalue".into())]).unwrap_err();
        assert!(err.to_string().contains("X-Token") && !err.to_string().contains("secret"));
    }
}
