//! A fake ApsaraVideo VOD API (version 2017-03-21) on 127.0.0.1, strict the way VOD is.
//!
//! Every request's signature is checked with this module's own implementation of the
//! algorithms (RustCrypto HMAC-SHA256/HMAC-SHA1 here, `ring` in the client): method V3
//! (`Authorization: ACS3-HMAC-SHA256 …`) and the RPC method (`Signature` in the query).
//! Like VOD, it refuses a date more than 15 minutes off (`InvalidTimeStamp.Expired`), a reused
//! nonce (`SignatureNonceUsed`), an unknown AccessKey (`InvalidAccessKeyId.NotFound`), an
//! expired or mismatched STS token (`InvalidSecurityToken.*`) and a wrong signature
//! (`SignatureDoesNotMatch`, quoting the string it signed, as VOD does).
//!
//! It answers `GetPlayInfo`, `GetMezzanineInfo`, `GetVideoInfo` and `ListSnapshots` for the
//! videos a test adds, with URLs on the test [`Origin`] signed with CDN type A that expire
//! quickly (`AuthTimeout`, capped by [`FakeVod::cap_url_ttl`]). JSON types follow real
//! responses: `Size`, `Width`, `Height`, `Encrypt` are numbers; `Bitrate`, `Duration`, `Fps`
//! strings; `CRC64` a decimal string.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::origin::Origin;

/// One stream (a transcode) of a fake video.
#[derive(Debug, Clone)]
pub struct Stream {
    /// `LD`, `SD`, `HD`, …
    pub definition: String,
    /// `m3u8`, `mp4`, `flv`, …
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Path on the origin (a media playlist or a file).
    pub path: String,
    /// The transcode job.
    pub job_id: String,
    /// `None`, `HLSEncryption` or `AliyunVoDEncryption`.
    pub encrypt_type: Option<String>,
    /// Pixels.
    pub height: u64,
    /// Kbit/s.
    pub bitrate: f64,
}

impl Stream {
    /// A clear stream.
    pub fn new(definition: &str, format: &str, path: &str, job_id: &str, height: u64, bitrate: f64) -> Self {
        Self {
            definition: definition.into(),
            format: format.into(),
            stream_type: "video".into(),
            path: path.into(),
            job_id: job_id.into(),
            encrypt_type: None,
            height,
            bitrate,
        }
    }

    /// The same, encrypted with `kind` at the source.
    pub fn encrypted(mut self, kind: &str) -> Self {
        self.encrypt_type = Some(kind.into());
        self
    }
}

/// A fake video.
#[derive(Debug, Clone)]
pub struct Video {
    /// Title.
    pub title: String,
    /// `Normal` when playable.
    pub status: String,
    /// Seconds.
    pub duration: f64,
    /// Transcodes.
    pub streams: Vec<Stream>,
    /// The source file's path on the origin, and a CRC-64 to report instead of the real one.
    pub mezzanine: Option<(String, Option<u64>)>,
    /// Whether it has a cover, snapshots, a sprite and a thumbnail track (`vod-images/`).
    pub images: bool,
}

impl Video {
    /// A playable video with these streams, without images or source file.
    pub fn new(title: &str, streams: Vec<Stream>) -> Self {
        Self { title: title.into(), status: "Normal".into(), duration: 8.0, streams, mezzanine: None, images: false }
    }
}

/// An AccessKey the fake knows.
#[derive(Debug, Clone)]
struct Key {
    secret: String,
    token: Option<String>,
    expires: Option<u64>,
}

/// STS credentials the fake issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sts {
    /// AccessKeyId (`STS.…`).
    pub access_key_id: String,
    /// AccessKeySecret.
    pub access_key_secret: String,
    /// SecurityToken.
    pub security_token: String,
}

/// One API call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GetPlayInfo`, …
    pub action: String,
    /// `V3` or `RPC`.
    pub signature: &'static str,
    /// The AccessKeyId used.
    pub access_key_id: String,
    /// Operation parameters.
    pub params: HashMap<String, String>,
    /// Error code answered (`None`: success).
    pub error: Option<String>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Key>,
    nonces: HashSet<String>,
    videos: HashMap<String, Video>,
    throttle: u32,
    denied: HashSet<String>,
    url_ttl_cap: Option<Duration>,
    calls: Vec<Call>,
    serial: u64,
}

/// A running fake VOD API; stops when dropped.
pub struct FakeVod {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVod {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        s.push_str(&hex::encode(Sha256::digest(format!("{t}{}", s.len()).as_bytes())));
    }
    s.truncate(n);
    s
}

impl FakeVod {
    /// Serves the API on an ephemeral port of 127.0.0.1, handing out URLs on `origin` (which
    /// must require signatures: [`Origin::require_signature`]).
    pub async fn start(origin: Arc<Origin>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let s = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (s, o) = (Arc::clone(&s), Arc::clone(&origin));
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, Arc::clone(&s), Arc::clone(&o)));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The endpoint to configure (`VodConfig::endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Accepts a long-term AccessKey.
    pub fn add_key(&self, id: &str, secret: &str) {
        self.state.lock().unwrap().keys.insert(id.into(), Key { secret: secret.into(), token: None, expires: None });
    }

    /// Issues STS credentials valid for `ttl` (whole seconds). (Over HTTP, `GET /sts?ttl=SECS`
    /// does the same, as an app's own STS server would, for tests in other languages.)
    pub fn issue_sts(&self, ttl: Duration) -> Sts {
        issue(&mut self.state.lock().unwrap(), ttl)
    }

    /// The videos the tests use: `v-multi` (LD/HD m3u8 with standard HLS encryption, SD mp4,
    /// an flv and a proprietary-encrypted 2K stream; images), `v-locked` (proprietary encryption
    /// only), `v-source` (a source file) and `v-bad-crc` (a source file whose CRC-64 VOD reports
    /// wrongly).
    pub fn add_sample_videos(&self) {
        self.add_video(
            "v-multi",
            Video {
                images: true,
                ..Video::new(
                    "A film",
                    vec![
                        Stream::new("LD", "m3u8", "hls-aes/low/index.m3u8", "job-ld", 90, 90.0)
                            .encrypted("HLSEncryption"),
                        Stream::new("HD", "m3u8", "hls-aes/high/index.m3u8", "job-hd", 180, 320.0)
                            .encrypted("HLSEncryption"),
                        Stream::new("SD", "mp4", "progressive/sample.mp4", "job-sd", 144, 200.0),
                        Stream::new("SD", "flv", "progressive/sample.mp4", "job-flv", 144, 200.0),
                        Stream::new("2K", "m3u8", "hls-aes/high/index.m3u8", "job-2k", 1440, 4000.0)
                            .encrypted("AliyunVoDEncryption"),
                    ],
                )
            },
        );
        self.add_video(
            "v-locked",
            Video::new(
                "Locked",
                vec![
                    Stream::new("HD", "m3u8", "hls-aes/high/index.m3u8", "job-x", 180, 320.0)
                        .encrypted("AliyunVoDEncryption"),
                ],
            ),
        );
        self.add_video(
            "v-source",
            Video { mezzanine: Some(("progressive/sample.mp4".into(), None)), ..Video::new("Source", vec![]) },
        );
        self.add_video(
            "v-bad-crc",
            Video { mezzanine: Some(("progressive/sample.mp4".into(), Some(42))), ..Video::new("Bad", vec![]) },
        );
    }

    /// Adds (or replaces) a video.
    pub fn add_video(&self, id: &str, video: Video) {
        self.state.lock().unwrap().videos.insert(id.into(), video);
    }

    /// Transcodes a stream again: same definition and format, new job and content.
    pub fn retranscode(&self, id: &str, definition: &str, format: &str, path: &str, job_id: &str) {
        let mut s = self.state.lock().unwrap();
        let v = s.videos.get_mut(id).expect("video");
        let st = v.streams.iter_mut().find(|x| x.definition == definition && x.format == format).expect("stream");
        st.path = path.into();
        st.job_id = job_id.into();
    }

    /// Answers the next `n` calls with `Throttling.User`.
    pub fn throttle_next(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Refuses `action` as VOD refuses a RAM policy that does not allow it (`Forbidden.RAM`):
    /// credentials that may play but not, say, list snapshots.
    pub fn deny(&self, action: &str) {
        self.state.lock().unwrap().denied.insert(action.to_owned());
    }

    /// URLs expire after at most this long, whatever `AuthTimeout` asks.
    pub fn cap_url_ttl(&self, ttl: Duration) {
        self.state.lock().unwrap().url_ttl_cap = Some(ttl);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

fn issue(s: &mut State, ttl: Duration) -> Sts {
    s.serial += 1;
    let sts = Sts {
        access_key_id: format!("STS.{}{}", s.serial, random_hex(12)),
        access_key_secret: random_hex(30),
        security_token: format!("CAIS{}", random_hex(40)),
    };
    s.keys.insert(
        sts.access_key_id.clone(),
        Key {
            secret: sts.access_key_secret.clone(),
            token: Some(sts.security_token.clone()),
            expires: Some(now() + ttl.as_secs()),
        },
    );
    sts
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn answer(status: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"RequestId": random_hex(8), "HostId": "vod.cn-shanghai.aliyuncs.com", "Code": code, "Message": message,
               "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}")}),
    )
}

/// RFC 3986 encoding as Alibaba Cloud signs it (written here independently of the client).
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

fn canonical_query(params: &[(String, String)]) -> String {
    let mut p: Vec<(String, String)> = params.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    p.sort();
    p.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Seconds since the epoch of `yyyy-MM-ddTHH:mm:ssZ`.
fn parse_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

struct Authenticated {
    action: String,
    signature: &'static str,
    access_key_id: String,
    params: HashMap<String, String>,
}

/// Checks the request's signature, date, nonce and credentials.
fn authenticate(
    state: &mut State,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<Authenticated, (u16, Value)> {
    if let Some(auth) = headers.get("authorization").filter(|a| a.starts_with("ACS3-HMAC-SHA256 ")) {
        // Method V3.
        let fields: HashMap<&str, &str> =
            auth["ACS3-HMAC-SHA256 ".len()..].split(',').filter_map(|kv| kv.trim().split_once('=')).collect();
        let (Some(key_id), Some(signed), Some(sig)) =
            (fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature"))
        else {
            return Err(error(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            ));
        };
        let signed: Vec<&str> = signed.split(';').collect();
        for required in
            ["host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"]
        {
            if !headers.contains_key(required) || !signed.contains(&required) {
                return Err(error(400, "IncompleteSignature", &format!("{required} is not signed.")));
            }
        }
        if headers.keys().any(|h| h.starts_with("x-acs-") && !signed.contains(&h.as_str())) {
            return Err(error(400, "IncompleteSignature", "Every x-acs- header must be signed."));
        }
        if headers["x-acs-content-sha256"] != hex::encode(Sha256::digest(body)) {
            return Err(error(400, "IncompleteSignature", "x-acs-content-sha256 does not match the body."));
        }
        check_time_and_nonce(state, &headers["x-acs-date"], &headers["x-acs-signature-nonce"])?;
        let key = check_key(state, key_id, headers.get("x-acs-security-token").map(String::as_str))?;
        let mut sorted = signed.clone();
        sorted.sort_unstable();
        let canonical_headers: String =
            sorted.iter().map(|h| format!("{h}:{}\n", headers.get(*h).map_or("", |v| v.trim()))).collect();
        let canonical = format!(
            "{method}\n{path}\n{}\n{canonical_headers}\n{}\n{}",
            canonical_query(query),
            sorted.join(";"),
            headers["x-acs-content-sha256"]
        );
        let to_sign = format!("ACS3-HMAC-SHA256\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let mut mac = Hmac::<Sha256>::new_from_slice(key.secret.as_bytes()).unwrap();
        mac.update(to_sign.as_bytes());
        if hex::encode(mac.finalize().into_bytes()) != *sig {
            return Err(error(
                400,
                "SignatureDoesNotMatch",
                &format!("Specified signature is not matched with our calculation. server string to sign is:{to_sign}"),
            ));
        }
        if headers.get("x-acs-version").map(String::as_str) != Some("2017-03-21") {
            return Err(error(400, "InvalidVersion", "Specified parameter Version is not valid."));
        }
        Ok(Authenticated {
            action: headers["x-acs-action"].clone(),
            signature: "V3",
            access_key_id: (*key_id).to_owned(),
            params: query.iter().cloned().collect(),
        })
    } else {
        // The RPC method: everything in the query (and a form body).
        let mut all: Vec<(String, String)> = query.to_vec();
        if !body.is_empty() {
            all.extend(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        let map: HashMap<String, String> = all.iter().cloned().collect();
        let get = |k: &str| map.get(k).cloned();
        let (Some(sig), Some(key_id), Some(ts), Some(nonce)) =
            (get("Signature"), get("AccessKeyId"), get("Timestamp"), get("SignatureNonce"))
        else {
            return Err(error(
                400,
                "MissingParameter",
                "Signature, AccessKeyId, Timestamp and SignatureNonce are mandatory.",
            ));
        };
        if get("SignatureMethod").as_deref() != Some("HMAC-SHA1") || get("SignatureVersion").as_deref() != Some("1.0") {
            return Err(error(400, "InvalidSignatureMethod", "Specified signature method is not valid."));
        }
        check_time_and_nonce(state, &ts, &nonce)?;
        let key = check_key(state, &key_id, get("SecurityToken").as_deref())?;
        let unsigned: Vec<(String, String)> = all.iter().filter(|(k, _)| k != "Signature").cloned().collect();
        let to_sign = format!("{method}&{}&{}", enc("/"), enc(&canonical_query(&unsigned)));
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{}&", key.secret).as_bytes()).unwrap();
        mac.update(to_sign.as_bytes());
        if base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) != sig {
            return Err(error(
                400,
                "SignatureDoesNotMatch",
                &format!("Specified signature is not matched with our calculation. server string to sign is:{to_sign}"),
            ));
        }
        if get("Version").as_deref() != Some("2017-03-21") {
            return Err(error(400, "InvalidVersion", "Specified parameter Version is not valid."));
        }
        let common = [
            "Signature",
            "AccessKeyId",
            "Timestamp",
            "SignatureNonce",
            "SignatureMethod",
            "SignatureVersion",
            "SecurityToken",
            "Version",
            "Action",
            "Format",
        ];
        Ok(Authenticated {
            action: get("Action").unwrap_or_default(),
            signature: "RPC",
            access_key_id: key_id,
            params: map.into_iter().filter(|(k, _)| !common.contains(&k.as_str())).collect(),
        })
    }
}

fn check_time_and_nonce(state: &mut State, date: &str, nonce: &str) -> Result<(), (u16, Value)> {
    let Some(t) = parse_date(date) else {
        return Err(error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."));
    };
    if t.abs_diff(now()) > 15 * 60 {
        return Err(error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
    }
    if !state.nonces.insert(nonce.to_owned()) {
        return Err(error(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    Ok(())
}

fn check_key(state: &State, key_id: &str, token: Option<&str>) -> Result<Key, (u16, Value)> {
    let Some(key) = state.keys.get(key_id) else {
        return Err(error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."));
    };
    match (&key.token, token) {
        (None, _) => {}
        (Some(_), None) => {
            return Err(error(400, "MissingSecurityToken", "SecurityToken is mandatory for this action."));
        }
        (Some(want), Some(got)) if want != got => {
            return Err(error(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            ));
        }
        _ => {}
    }
    if key.expires.is_some_and(|e| now() >= e) {
        return Err(error(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."));
    }
    Ok(key.clone())
}

/// Bytes a stream stores: the file, or the sum of a media playlist's segments.
fn stream_size(origin: &Origin, path: &str) -> u64 {
    let file = origin.root().join(path);
    if path.ends_with(".m3u8") {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let dir = file.parent().unwrap().to_owned();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| std::fs::metadata(dir.join(l.trim())).ok())
            .map(|m| m.len())
            .sum()
    } else {
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
    }
}

/// CRC-64/ECMA as OSS computes it (bitwise, written here independently of the client's).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = !0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    !crc
}

const IMAGES: &[(&str, &[&str])] = &[
    ("CoverSnapshot", &["vod-images/cover.jpg"]),
    ("NormalSnapshot", &["vod-images/snapshot-1.jpg", "vod-images/snapshot-2.jpg", "vod-images/snapshot-3.jpg"]),
    ("SpriteSnapshot", &["vod-images/sprite-1.jpg"]),
    (
        "SpriteOriginSnapshot",
        &[
            "vod-images/sprite-origin-1.jpg",
            "vod-images/sprite-origin-2.jpg",
            "vod-images/sprite-origin-3.jpg",
            "vod-images/sprite-origin-4.jpg",
        ],
    ),
    ("WebVttSnapshot", &["vod-images/thumbnails.vtt"]),
];

fn respond(state: &mut State, origin: &Origin, a: &Authenticated) -> (u16, Value) {
    let p = |k: &str| a.params.get(k).cloned();
    let Some(video_id) = p("VideoId") else {
        return error(400, "MissingVideoId", "VideoId is mandatory for this action.");
    };
    let Some(video) = state.videos.get(&video_id).cloned() else {
        return error(404, "InvalidVideo.NotFound", "The video does not exist.");
    };
    let ttl = p("AuthTimeout").and_then(|t| t.parse::<u64>().ok()).unwrap_or(3600);
    let ttl = state.url_ttl_cap.map_or(ttl, |cap| ttl.min(cap.as_secs()).max(1));
    let url = |path: &str| origin.signed_url(path, Duration::from_secs(ttl));
    let cover = video.images.then(|| url("vod-images/cover.jpg"));
    match a.action.as_str() {
        "GetPlayInfo" => {
            if video.status != "Normal" {
                return error(
                    403,
                    "Forbidden.IllegalStatus",
                    &format!("Status of the video is illegal. Current Status is {}.", video.status),
                );
            }
            let csv = |k: &str| p(k).map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>());
            let (formats, definitions, types) = (csv("Formats"), csv("Definition"), csv("StreamType"));
            let matching: Vec<&Stream> = video
                .streams
                .iter()
                .filter(|s| formats.as_ref().is_none_or(|f| f.contains(&s.format.to_ascii_lowercase())))
                .filter(|s| definitions.as_ref().is_none_or(|d| d.contains(&s.definition.to_ascii_lowercase())))
                .filter(|s| types.as_ref().is_none_or(|t| t.contains(&s.stream_type)))
                .collect();
            if matching.is_empty() {
                return error(
                    404,
                    "InvalidVideo.NoneStream",
                    &format!(
                        "The video has no stream to play for the request parameter 'Formats: {}, Definition: {}, StreamType: {}'.",
                        p("Formats").unwrap_or_default(),
                        p("Definition").unwrap_or_default(),
                        p("StreamType").unwrap_or_default()
                    ),
                );
            }
            if p("ResultType").as_deref() != Some("Multiple")
                && matching.iter().all(|s| s.encrypt_type.as_deref() == Some("AliyunVoDEncryption"))
            {
                return error(
                    403,
                    "Forbidden.AliyunVoDEncryption",
                    "Currently only the AliyunVoDEncryption stream exists, you must use the Aliyun player to play or set the value of ResultType to Multiple.",
                );
            }
            // PlayConfig's MtsHlsUriToken rides on the playlist URL; the CDN (parameter
            // pass-through, see Origin::require_hls_uri_token) puts it on the key URIs.
            let token = p("PlayConfig")
                .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                .and_then(|c| c["MtsHlsUriToken"].as_str().map(str::to_owned));
            let play_url = |s: &Stream| match &token {
                Some(t) if s.format == "m3u8" => {
                    let t: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
                    format!("{}&MtsHlsUriToken={t}", url(&s.path))
                }
                _ => url(&s.path),
            };
            let list: Vec<Value> = matching
                .iter()
                .map(|s| {
                    let mut v = json!({
                        "Format": s.format, "StreamType": s.stream_type, "Definition": s.definition,
                        "PlayURL": play_url(s), "Size": stream_size(origin, &s.path),
                        "Width": s.height * 16 / 9, "Height": s.height, "Bitrate": format!("{:.3}", s.bitrate),
                        "Duration": format!("{:.4}", video.duration), "Fps": "25", "JobId": s.job_id,
                        "Status": "Normal", "NarrowBandType": "0", "Encrypt": i32::from(s.encrypt_type.is_some()),
                        "CreationTime": "2026-11-01T08:00:00Z", "ModificationTime": "2026-11-01T08:00:00Z",
                    });
                    if let Some(t) = &s.encrypt_type {
                        v["EncryptType"] = json!(t);
                    }
                    v
                })
                .collect();
            let mut base = json!({"VideoId": video_id, "Title": video.title, "Duration": format!("{:.3}", video.duration),
                                  "Status": video.status, "MediaType": "video", "CreationTime": "2026-11-01T08:00:00Z"});
            if let Some(c) = cover {
                base["CoverURL"] = json!(c);
            }
            (200, json!({"RequestId": random_hex(8), "VideoBase": base, "PlayInfoList": {"PlayInfo": list}}))
        }
        "GetMezzanineInfo" => {
            let Some((path, crc_override)) = &video.mezzanine else {
                return error(404, "InvalidFile.NotFound", "The file does not exist.");
            };
            let data = std::fs::read(origin.root().join(path)).unwrap_or_default();
            let crc = crc_override.unwrap_or_else(|| crc64(&data));
            (
                200,
                json!({"RequestId": random_hex(8), "Mezzanine": {
                    "VideoId": video_id, "FileURL": url(path), "FileName": path.rsplit('/').next(),
                    "Size": data.len(), "CRC64": crc.to_string(), "Width": 320, "Height": 180,
                    "Duration": format!("{:.4}", video.duration), "Bitrate": "800.0000", "Fps": "25.0000",
                    "Status": "Normal", "OutputType": p("OutputType").unwrap_or_else(|| "oss".into()),
                    "CreationTime": "2026-11-01T08:00:00Z"}}),
            )
        }
        "GetVideoInfo" => {
            let mut v = json!({"VideoId": video_id, "Title": video.title, "Duration": video.duration,
                               "Status": video.status, "Size": 1_000_000, "CreationTime": "2026-11-01T08:00:00Z",
                               "Snapshots": {"Snapshot": cover.iter().collect::<Vec<_>>()}});
            if let Some(c) = &cover {
                v["CoverURL"] = json!(c);
            }
            (200, json!({"RequestId": random_hex(8), "Video": v}))
        }
        "ListSnapshots" => {
            let kind = p("SnapshotType").unwrap_or_default();
            let Some((_, paths)) = IMAGES.iter().find(|(k, _)| *k == kind) else {
                return error(400, "InvalidParameter", "The specified parameter SnapshotType is not valid.");
            };
            let paths: &[&str] = if video.images { paths } else { &[] };
            let size: usize = p("PageSize").and_then(|s| s.parse().ok()).unwrap_or(20).clamp(1, 100);
            let page: usize = p("PageNo").and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
            let list: Vec<Value> = paths
                .iter()
                .enumerate()
                .skip((page - 1) * size)
                .take(size)
                .map(|(i, path)| json!({"Index": i + 1, "Url": url(path)}))
                .collect();
            (
                200,
                json!({"RequestId": random_hex(8), "MediaSnapshot": {"Total": paths.len(), "JobId": "snap-job",
                    "CreationTime": "2026-11-01T08:00:00Z", "Regular": "",
                    "Snapshots": {"Snapshot": list}}}),
            )
        }
        other => error(
            404,
            "InvalidApi.NotFound",
            &format!("Specified api {other} is not found, please check your url and method."),
        ),
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    origin: Arc<Origin>,
) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    let mut s = state.lock().unwrap();
    if path == "/sts" {
        // The app's own STS server, for tests in other languages.
        let ttl = query.iter().find(|(k, _)| k == "ttl").and_then(|(_, v)| v.parse().ok()).unwrap_or(3600);
        let sts = issue(&mut s, Duration::from_secs(ttl));
        return Ok(answer(
            200,
            &json!({"AccessKeyId": sts.access_key_id, "AccessKeySecret": sts.access_key_secret,
                    "SecurityToken": sts.security_token}),
        ));
    }
    let (status, value, call) = match authenticate(&mut s, &method, &path, &query, &headers, &body) {
        Err((status, value)) => (status, value, None),
        Ok(a) => {
            let (status, value) = if s.throttle > 0 {
                s.throttle -= 1;
                error(400, "Throttling.User", "Request was denied due to user flow control.")
            } else if s.denied.contains(&a.action) {
                error(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")
            } else {
                respond(&mut s, &origin, &a)
            };
            (status, value, Some(a))
        }
    };
    let code = value.get("Code").and_then(Value::as_str).map(str::to_owned);
    let call = call.map_or_else(
        || Call {
            action: headers.get("x-acs-action").cloned().unwrap_or_default(),
            signature: if headers.contains_key("authorization") { "V3" } else { "RPC" },
            access_key_id: String::new(),
            params: HashMap::new(),
            error: code.clone(),
        },
        |a| Call {
            action: a.action,
            signature: a.signature,
            access_key_id: a.access_key_id,
            params: a.params,
            error: code.clone(),
        },
    );
    s.calls.push(call);
    Ok(answer(status, &value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_crc() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("2023-10-26T10:22:32Z"), Some(1_698_315_752));
        assert_eq!(parse_date("2023-10-26 10:22:32"), None);
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }
}
