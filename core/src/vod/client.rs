//! Signed calls to the VOD API.
//!
//! Each call is a `POST /` with its parameters in the query string and an empty body (how
//! Alibaba Cloud's SDKs call RPC-style APIs), signed with method V3 or the RPC method. Errors
//! are classified by VOD's `Code`: throttling and server errors back off and retry (honouring
//! `Retry-After`), a reused nonce is retried with a new one, and credentials the API refuses are
//! renewed through the provider once before the call fails with [`VodError::Credentials`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::api::{Mezzanine, PlayInfoResponse, Snapshot, SnapshotPage, SnapshotType, VideoInfo};
use super::sign::{V3Request, rpc_signature, rpc_string_to_sign};
use super::{API_VERSION, Credentials, CredentialsProvider, CredentialsReason, SignatureMethod, VodConfig, VodError};
use crate::fetch::{Retry, RetryPolicy};
use crate::model::OutputType;

/// Largest API answer accepted.
const RESPONSE_LIMIT: usize = 8 << 20;

/// A VOD API client: configuration, the app's credentials provider and the credentials in use.
pub struct VodClient {
    http: reqwest::Client,
    config: VodConfig,
    retry: RetryPolicy,
    /// The provider, and how many times one was set (credentials are kept with the number of
    /// the provider that gave them, so a switch of provider is never undone by an answer of the
    /// previous one).
    provider: RwLock<(u64, Option<Arc<dyn CredentialsProvider>>)>,
    /// The credentials in use. Held only to read or replace them, never while the provider
    /// runs: calls with valid credentials never wait for a provider.
    current: std::sync::Mutex<Option<(u64, Credentials)>>,
    /// One question to the provider for credentials at a time when there are none (the others
    /// that need them wait for its answer instead of asking again).
    asking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for VodClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A call's failure before classification.
enum Failure {
    Transport(String),
    Api { status: u16, code: String, message: String, retry_after: Option<Duration> },
}

/// What to do about an API error code.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    Retry,
    NewNonce,
    Credentials,
    NotFound,
    Forbidden,
    Unsupported,
    Other,
}

fn classify(status: u16, code: &str) -> Class {
    match code {
        c if c.starts_with("Throttling") => Class::Retry,
        "ServiceUnavailable" | "ServiceUnAvailable" | "InternalError" => Class::Retry,
        "SignatureNonceUsed" => Class::NewNonce,
        c if c.starts_with("InvalidSecurityToken")
            || c.starts_with("InvalidAccessKeyId")
            || c == "MissingSecurityToken"
            || c == "SignatureDoesNotMatch"
            || c == "IncompleteSignature"
            || c.starts_with("InvalidTimeStamp") =>
        {
            Class::Credentials
        }
        "InvalidVideo.NotFound" | "InvalidFile.NotFound" | "InvalidVideo.NoneStream" | "NoSuchResource" => {
            Class::NotFound
        }
        "Forbidden.AliyunVoDEncryption" => Class::Unsupported,
        c if c.starts_with("Forbidden") || c.starts_with("OperationDenied") => Class::Forbidden,
        _ if status >= 500 => Class::Retry,
        _ => Class::Other,
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// UTC now as `yyyy-MM-ddTHH:mm:ssZ`.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn nonce() -> Result<String, VodError> {
    let mut b = [0u8; 16];
    crate::crypto::fill_random(&mut b).map_err(|e| VodError::Network(e.to_string()))?;
    Ok(hex::encode(b))
}

impl VodClient {
    /// A client with `http`'s connection pool.
    pub fn new(http: &crate::fetch::Http, config: VodConfig, retry: RetryPolicy) -> Self {
        Self {
            http: http.api_client().clone(),
            config,
            retry,
            provider: RwLock::new((0, None)),
            current: std::sync::Mutex::new(None),
            asking: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VodConfig {
        &self.config
    }

    /// Sets (or removes) the credentials provider; credentials in use are forgotten.
    pub fn set_provider(&self, provider: Option<Arc<dyn CredentialsProvider>>) {
        let mut p = self.provider.write().unwrap_or_else(PoisonError::into_inner);
        *p = (p.0 + 1, provider);
    }

    fn provider_number(&self) -> u64 {
        self.provider.read().unwrap_or_else(PoisonError::into_inner).0
    }

    /// Asks the provider, waiting at most `credentials_timeout`. The credentials come with the
    /// number of the provider that gave them; the error says why there are none.
    async fn ask(&self, reason: CredentialsReason) -> Result<(u64, Credentials), String> {
        let (number, provider) = self.provider.read().unwrap_or_else(PoisonError::into_inner).clone();
        let provider = provider.ok_or("no credentials provider is set")?;
        let limit = self.config.credentials_timeout;
        match tokio::time::timeout(limit, provider.credentials(reason)).await {
            Ok(Some(c)) => Ok((number, c)),
            Ok(None) => Err("the credentials provider gave none".into()),
            Err(_) => {
                tracing::warn!("the credentials provider did not answer within {limit:?}");
                Err(format!("the credentials provider did not answer within {} s", limit.as_secs_f64()))
            }
        }
    }

    /// The credentials to sign with: those in use, or new ones when there are none, they are
    /// about to expire, or another provider was set since.
    async fn credentials(&self) -> Result<Credentials, VodError> {
        if let Some(c) = self.valid() {
            return Ok(c);
        }
        let _asking = self.asking.lock().await;
        // Someone else may have asked meanwhile.
        if let Some(c) = self.valid() {
            return Ok(c);
        }
        let fresh = self.ask(CredentialsReason::Initial).await.map_err(VodError::NoCredentials)?;
        self.keep(fresh.clone());
        Ok(fresh.1)
    }

    /// The credentials in use, if they are the current provider's and not expired.
    fn valid(&self) -> Option<Credentials> {
        let number = self.provider_number();
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|(n, c)| *n == number && !c.expired(now_ms())).map(|(_, c)| c.clone())
    }

    /// Uses `fresh` from now on, unless another provider was set since it was asked.
    fn keep(&self, fresh: (u64, Credentials)) {
        if fresh.0 == self.provider_number() {
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
        }
    }

    /// Asks the provider for fresh credentials because the API refused the current ones with
    /// `code`. False if it gave none.
    async fn renew(&self, code: &str) -> bool {
        match self.ask(CredentialsReason::Rejected { code: code.to_owned() }).await {
            Ok(c) => {
                self.keep(c);
                true
            }
            Err(_) => false,
        }
    }

    /// A download URL of `asset_id` expired: gives the provider the chance to hand out fresh
    /// credentials before the vault asks VOD for fresh URLs (`None` keeps the current ones).
    /// Other calls go on with the current credentials meanwhile.
    pub async fn url_expired(&self, asset_id: &str) {
        if let Ok(c) = self.ask(CredentialsReason::UrlExpired { asset_id: asset_id.to_owned() }).await {
            self.keep(c);
        }
    }

    /// Calls `action` with `params`; returns the JSON answer.
    ///
    /// # Errors
    /// A [`VodError`] by VOD's error code.
    pub async fn call(&self, action: &str, params: &[(String, String)]) -> Result<serde_json::Value, VodError> {
        let endpoint = self.config.endpoint_url()?;
        let mut retry = Retry::new(&self.retry);
        let mut renewed = false;
        let mut nonces = 0;
        loop {
            let creds = self.credentials().await?;
            // Standard HLS encryption with a token-checking key service: VOD (with the CDN's
            // parameter pass-through) puts the token on the key URIs.
            let with_token;
            let params = match creds.hls_uri_token.as_deref() {
                Some(token) if action == "GetPlayInfo" => {
                    let config = serde_json::json!({ "MtsHlsUriToken": token.as_str() }).to_string();
                    with_token = [params, &[("PlayConfig".to_owned(), config)]].concat();
                    &with_token[..]
                }
                _ => params,
            };
            let failure = match self.send(&endpoint, action, params, &creds).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            match failure {
                Failure::Transport(m) => {
                    if !retry.again(None).await {
                        return Err(VodError::Network(m));
                    }
                }
                Failure::Api { status, code, message, retry_after } => {
                    let message = creds.scrub(&message);
                    tracing::debug!(action, status, code, "VOD API error");
                    match classify(status, &code) {
                        Class::Retry if retry.again(retry_after).await => {}
                        Class::Retry if code.starts_with("Throttling") => {
                            return Err(VodError::Throttled { code, message });
                        }
                        Class::NewNonce if nonces < 2 => nonces += 1,
                        Class::Credentials if !renewed && !code.starts_with("InvalidTimeStamp") => {
                            renewed = true;
                            if !self.renew(&code).await {
                                return Err(VodError::Credentials { code, message });
                            }
                        }
                        Class::Credentials if code.starts_with("InvalidTimeStamp") => {
                            return Err(VodError::Credentials {
                                code,
                                message: format!("{message} (is the device clock more than 15 minutes off?)"),
                            });
                        }
                        Class::Credentials => return Err(VodError::Credentials { code, message }),
                        Class::NotFound => return Err(VodError::NotFound { code, message }),
                        Class::Forbidden => return Err(VodError::Forbidden { code, message }),
                        Class::Unsupported => {
                            return Err(VodError::Unsupported(format!("unsupported encryption: {code}: {message}")));
                        }
                        Class::Retry | Class::NewNonce | Class::Other => {
                            return Err(VodError::Api { status, code, message });
                        }
                    }
                }
            }
        }
    }

    async fn send(
        &self,
        endpoint: &Url,
        action: &str,
        params: &[(String, String)],
        creds: &Credentials,
    ) -> Result<serde_json::Value, Failure> {
        let date = timestamp();
        let nonce = nonce().map_err(|e| Failure::Transport(e.to_string()))?;
        let token = creds.security_token.as_deref().map(String::as_str);
        let mut url = endpoint.clone();
        let mut headers = HeaderMap::new();
        let header = |n: &str, v: &str| {
            Ok::<_, Failure>((
                HeaderName::from_bytes(n.as_bytes()).map_err(|e| Failure::Transport(e.to_string()))?,
                HeaderValue::from_str(v).map_err(|_| Failure::Transport(format!("invalid value for header {n}")))?,
            ))
        };
        match self.config.signature {
            SignatureMethod::V3 => {
                let host = match endpoint.port() {
                    Some(p) => format!("{}:{p}", endpoint.host_str().unwrap_or_default()),
                    None => endpoint.host_str().unwrap_or_default().to_owned(),
                };
                let signed = V3Request {
                    method: "POST",
                    host: &host,
                    path: "/",
                    action,
                    version: API_VERSION,
                    query: params,
                    date: &date,
                    nonce: &nonce,
                    security_token: token,
                    body: b"",
                }
                .sign(&creds.access_key_id, creds.access_key_secret.as_bytes());
                // reqwest sends the same `host` itself.
                for (n, v) in signed.headers.iter().filter(|(n, _)| n != "host") {
                    let (n, v) = header(n, v)?;
                    headers.insert(n, v);
                }
                url.set_query(Some(&super::sign::canonical_query(params)));
            }
            SignatureMethod::Rpc => {
                let mut all: Vec<(String, String)> = params.to_vec();
                for (k, v) in [
                    ("Action", action),
                    ("Version", API_VERSION),
                    ("Format", "JSON"),
                    ("AccessKeyId", creds.access_key_id.as_str()),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce.as_str()),
                    ("Timestamp", date.as_str()),
                ] {
                    all.push((k.to_owned(), v.to_owned()));
                }
                if let Some(t) = token {
                    all.push(("SecurityToken".to_owned(), t.to_owned()));
                }
                let signature = rpc_signature(creds.access_key_secret.as_bytes(), &rpc_string_to_sign("POST", &all));
                all.push(("Signature".to_owned(), signature));
                url.set_query(Some(&super::sign::canonical_query(&all)));
            }
        }
        let (n, v) = header("accept", "application/json")?;
        headers.insert(n, v);
        let response = self
            .http
            .post(url)
            .headers(headers)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(|e| Failure::Transport(crate::fetch::error_chain(&e)))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(response).await?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return json.ok_or_else(|| Failure::Api {
                status,
                code: "BadResponse".into(),
                message: "the answer is not JSON".into(),
                retry_after: None,
            });
        }
        let field = |names: &[&str]| {
            json.as_ref().and_then(|j| names.iter().find_map(|n| j.get(*n).and_then(|v| v.as_str()).map(str::to_owned)))
        };
        Err(Failure::Api {
            status,
            code: field(&["Code", "code"]).unwrap_or_else(|| format!("HTTP{status}")),
            message: field(&["Message", "message"]).unwrap_or_else(|| format!("HTTP {status} without a VOD error")),
            retry_after,
        })
    }

    fn auth_timeout(&self) -> String {
        self.config.auth_timeout.as_secs().max(1).to_string()
    }

    /// `GetPlayInfo`: the video and its streams (filtered as given).
    ///
    /// # Errors
    /// As [`VodClient::call`].
    pub async fn get_play_info(
        &self,
        video_id: &str,
        formats: Option<&str>,
        definition: Option<&str>,
        stream_type: Option<&str>,
        output_type: OutputType,
    ) -> Result<PlayInfoResponse, VodError> {
        let mut params = vec![
            ("VideoId".to_owned(), video_id.to_owned()),
            ("OutputType".to_owned(), output_type.as_str().to_owned()),
            ("AuthTimeout".to_owned(), self.auth_timeout()),
        ];
        for (k, v) in [("Formats", formats), ("Definition", definition), ("StreamType", stream_type)] {
            if let Some(v) = v {
                params.push((k.to_owned(), v.to_owned()));
            }
        }
        let json = self.call("GetPlayInfo", &params).await?;
        PlayInfoResponse::from_json(json).map_err(|e| VodError::BadResponse(format!("GetPlayInfo: {e}")))
    }

    /// `GetMezzanineInfo`: the source file.
    ///
    /// # Errors
    /// As [`VodClient::call`].
    pub async fn get_mezzanine_info(&self, video_id: &str, output_type: OutputType) -> Result<Mezzanine, VodError> {
        let params = vec![
            ("VideoId".to_owned(), video_id.to_owned()),
            ("OutputType".to_owned(), output_type.as_str().to_owned()),
            ("AuthTimeout".to_owned(), self.auth_timeout()),
        ];
        let json = self.call("GetMezzanineInfo", &params).await?;
        Mezzanine::from_json(json).map_err(|e| VodError::BadResponse(format!("GetMezzanineInfo: {e}")))
    }

    /// `GetVideoInfo`: title, cover, duration.
    ///
    /// # Errors
    /// As [`VodClient::call`].
    pub async fn get_video_info(&self, video_id: &str) -> Result<VideoInfo, VodError> {
        let json = self.call("GetVideoInfo", &[("VideoId".to_owned(), video_id.to_owned())]).await?;
        VideoInfo::from_json(json).map_err(|e| VodError::BadResponse(format!("GetVideoInfo: {e}")))
    }

    /// `ListSnapshots` of one type, every page.
    ///
    /// # Errors
    /// As [`VodClient::call`].
    pub async fn list_snapshots(&self, video_id: &str, kind: SnapshotType) -> Result<Vec<Snapshot>, VodError> {
        const PAGE: u64 = 100;
        let mut out = Vec::new();
        for page in 1..=100u64 {
            let params = vec![
                ("VideoId".to_owned(), video_id.to_owned()),
                ("SnapshotType".to_owned(), kind.api_name().to_owned()),
                ("AuthTimeout".to_owned(), self.config.auth_timeout.as_secs().max(3600).to_string()),
                ("PageSize".to_owned(), PAGE.to_string()),
                ("PageNo".to_owned(), page.to_string()),
            ];
            let json = self.call("ListSnapshots", &params).await?;
            let p = SnapshotPage::from_json(json).map_err(|e| VodError::BadResponse(format!("ListSnapshots: {e}")))?;
            let got = p.snapshots.len() as u64;
            out.extend(p.snapshots);
            if got < PAGE || out.len() as u64 >= p.total {
                break;
            }
        }
        Ok(out)
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transport(crate::fetch::error_chain(&e)))? {
        if body.len() + chunk.len() > RESPONSE_LIMIT {
            return Err(Failure::Api {
                status: 0,
                code: "BadResponse".into(),
                message: "the answer is too large".into(),
                retry_after: None,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_decisions() {
        assert_eq!(classify(400, "Throttling.User"), Class::Retry);
        assert_eq!(classify(503, "ServiceUnavailable"), Class::Retry);
        assert_eq!(classify(502, "Whatever"), Class::Retry);
        assert_eq!(classify(400, "SignatureNonceUsed"), Class::NewNonce);
        assert_eq!(classify(400, "InvalidSecurityToken.Expired"), Class::Credentials);
        assert_eq!(classify(404, "InvalidAccessKeyId.NotFound"), Class::Credentials);
        assert_eq!(classify(404, "InvalidVideo.NotFound"), Class::NotFound);
        assert_eq!(classify(404, "InvalidVideo.NoneStream"), Class::NotFound);
        assert_eq!(classify(403, "Forbidden.IllegalStatus"), Class::Forbidden);
        assert_eq!(classify(403, "Forbidden.AliyunVoDEncryption"), Class::Unsupported);
        assert_eq!(classify(400, "InvalidParameter"), Class::Other);
    }

    #[test]
    fn timestamps_are_utc_iso_8601() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
