//! ApsaraVideo VOD sources: the app holds a video id and short-lived STS credentials, and the
//! vault asks the VOD API (version 2017-03-21, RPC style) for the URLs to download.
//!
//! - [`sign`]: request signatures (method V3 `ACS3-HMAC-SHA256`, and the older RPC HMAC-SHA1).
//! - [`VodClient`]: signed calls with typed errors; throttling backs off; credentials the API
//!   refuses as expired are renewed through the app's [`CredentialsProvider`] once.
//! - [`api`]: the calls a download needs (`GetPlayInfo`, `GetMezzanineInfo`, `GetVideoInfo`,
//!   `ListSnapshots`) and their answers.
//! - [`crc64`]: CRC-64/ECMA as OSS and VOD report it, to check mezzanine downloads.
//!
//! A VOD asset's identity is (video id, definition, format, stream type), never a URL.

pub mod api;
mod client;
pub mod crc64;
pub mod sign;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

pub use client::VodClient;

/// The VOD API version these calls use.
pub const API_VERSION: &str = "2017-03-21";

/// How requests to the VOD API are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMethod {
    /// `ACS3-HMAC-SHA256` in the `Authorization` header: what Alibaba Cloud now requires.
    #[default]
    V3,
    /// The older RPC signature (HMAC-SHA1, `SignatureVersion=1.0`, in the query), for older
    /// deployments.
    Rpc,
}

/// Where the VOD API is and how to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodConfig {
    /// The region of the videos' storage, e.g. `cn-shanghai`, `ap-southeast-1`.
    pub region: String,
    /// The API endpoint, overriding the region's (`https://vod.<region>.aliyuncs.com`): for
    /// private deployments and tests. A URL with scheme, e.g. `http://127.0.0.1:8080`.
    pub endpoint: Option<String>,
    /// How requests are signed.
    pub signature: SignatureMethod,
    /// How long the URLs VOD hands out should stay valid (`AuthTimeout`). The engine asks for
    /// fresh ones when they expire either way.
    pub auth_timeout: Duration,
    /// How long the credentials provider may take to answer. A provider that takes longer
    /// counts as giving none: the call fails with [`VodError::NoCredentials`] (a download stops
    /// with a `credentials` failure and can be resumed) instead of holding up every VOD call.
    pub credentials_timeout: Duration,
}

impl Default for VodConfig {
    fn default() -> Self {
        Self {
            region: "cn-shanghai".into(),
            endpoint: None,
            signature: SignatureMethod::V3,
            auth_timeout: Duration::from_secs(3600),
            credentials_timeout: Duration::from_secs(60),
        }
    }
}

impl VodConfig {
    /// The API endpoint: the override, or the region's public endpoint (as Alibaba Cloud's
    /// SDKs resolve it: `cn-hangzhou` is served from Shanghai).
    ///
    /// # Errors
    /// [`VodError::Config`] for a malformed endpoint or region.
    pub fn endpoint_url(&self) -> Result<Url, VodError> {
        let text = match &self.endpoint {
            Some(e) => e.trim().to_owned(),
            None => {
                let region = self.region.trim();
                if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(VodError::Config(format!("invalid region {region:?}")));
                }
                let region = if region == "cn-hangzhou" { "cn-shanghai" } else { region };
                format!("https://vod.{region}.aliyuncs.com/")
            }
        };
        let url = Url::parse(&text).map_err(|e| VodError::Config(format!("invalid VOD endpoint: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(VodError::Config("the VOD endpoint must be an http(s) URL".into()));
        }
        Ok(url)
    }
}

/// Credentials for the VOD API: an AccessKey pair, usually temporary (STS) with its security
/// token. The secret and the token are wiped on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct Credentials {
    /// AccessKeyId (`STS.…` for temporary credentials).
    pub access_key_id: String,
    /// AccessKeySecret.
    pub access_key_secret: Zeroizing<String>,
    /// STS security token.
    pub security_token: Option<Zeroizing<String>>,
    /// When they expire (Unix ms), when known: they are renewed a minute before.
    pub expires_at: Option<i64>,
    /// For videos with standard HLS encryption whose key service checks a token: the
    /// `MtsHlsUriToken` from the app's token service. It goes to `GetPlayInfo` (`PlayConfig`),
    /// and the CDN appends it to the key URIs of the playlists it serves.
    pub hls_uri_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"..")
            .field("security_token", &self.security_token.as_ref().map(|_| ".."))
            .field("expires_at", &self.expires_at)
            .field("hls_uri_token", &self.hls_uri_token.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Credentials {
    /// Long-term or temporary credentials.
    pub fn new(access_key_id: &str, access_key_secret: &str, security_token: Option<&str>) -> Self {
        Self {
            access_key_id: access_key_id.trim().to_owned(),
            access_key_secret: Zeroizing::new(access_key_secret.trim().to_owned()),
            security_token: security_token.map(|t| Zeroizing::new(t.trim().to_owned())).filter(|t| !t.is_empty()),
            expires_at: None,
            hls_uri_token: None,
        }
    }

    /// The same with an `MtsHlsUriToken` for HLS-encrypted videos (empty: none).
    #[must_use]
    pub fn with_hls_uri_token(mut self, token: Option<&str>) -> Self {
        self.hls_uri_token = token.map(|t| Zeroizing::new(t.trim().to_owned())).filter(|t| !t.is_empty());
        self
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| now_ms + 60_000 >= e)
    }

    /// Removes every credential from `text` (an API message may quote the string it signed).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.split("string to sign").next().unwrap_or(text).to_owned();
        for secret in [
            Some(self.access_key_secret.as_str()),
            self.security_token.as_deref().map(String::as_str),
            self.hls_uri_token.as_deref().map(String::as_str),
        ]
        .into_iter()
        .flatten()
        .filter(|s| s.len() >= 4)
        {
            out = out.replace(secret, "..");
        }
        out
    }
}

/// Why the vault asks the app for credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CredentialsReason {
    /// None yet (or the ones given have passed their `expires_at`).
    Initial,
    /// The VOD API refused the current ones (`InvalidSecurityToken.Expired`, …).
    Rejected {
        /// The API's error code.
        code: String,
    },
    /// A download URL expired: the vault is about to ask VOD for fresh URLs. Return fresh
    /// credentials, or `None` to keep the current ones.
    UrlExpired {
        /// The asset.
        asset_id: String,
    },
}

/// The app's source of VOD credentials (typically its own server, handing out STS tokens).
pub trait CredentialsProvider: Send + Sync {
    /// Returns credentials, or `None` to give up (the call or download fails with a typed
    /// credentials error and can be resumed later).
    fn credentials(&self, reason: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>>;
}

/// Fixed credentials (e.g. from environment variables).
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

impl CredentialsProvider for StaticCredentials {
    fn credentials(&self, _: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        let c = self.0.clone();
        Box::pin(async move { Some(c) })
    }
}

/// A failed VOD API call. Messages are VOD's own (with any quoted credential removed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VodError {
    /// No credentials provider is set, or it gave none.
    #[error("no VOD credentials: {0}")]
    NoCredentials(String),
    /// VOD refused the credentials (expired or invalid token, unknown AccessKey, signature
    /// mismatch, a clock more than 15 minutes off) and fresh ones did not help.
    #[error("VOD refused the credentials: {code}: {message}")]
    Credentials {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
    /// The video (or its source file, or a stream for the request) does not exist.
    #[error("not found in VOD: {code}: {message}")]
    NotFound {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
    /// VOD forbids it (the video is not playable yet, the definition is not allowed, …).
    #[error("VOD forbids it: {code}: {message}")]
    Forbidden {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
    /// Still throttled after backing off.
    #[error("VOD throttled the requests: {code}: {message}")]
    Throttled {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
    /// Another API error.
    #[error("VOD API error {code} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
    /// What VOD offers cannot be stored (proprietary encryption, a format we do not download).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// No rendition matches the request (definition, format, stream type).
    #[error("{0}")]
    NoMatch(String),
    /// The API could not be reached after retries.
    #[error("VOD API unreachable: {0}")]
    Network(String),
    /// The API answered something that is not a VOD response.
    #[error("unexpected VOD response: {0}")]
    BadResponse(String),
    /// The VOD configuration is invalid.
    #[error("VOD configuration: {0}")]
    Config(String),
}

/// Formats vodvault stores.
pub const STORABLE_FORMATS: &[&str] = &["m3u8", "mp4", "mpd", "mp3", "m4a"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let c = VodConfig { region: "ap-southeast-1".into(), ..VodConfig::default() };
        assert_eq!(c.endpoint_url().unwrap().as_str(), "https://vod.ap-southeast-1.aliyuncs.com/");
        let c = VodConfig { region: "cn-hangzhou".into(), ..VodConfig::default() };
        assert_eq!(c.endpoint_url().unwrap().host_str(), Some("vod.cn-shanghai.aliyuncs.com"));
        let c = VodConfig { endpoint: Some("http://127.0.0.1:9/".into()), ..VodConfig::default() };
        assert_eq!(c.endpoint_url().unwrap().port(), Some(9));
        assert!(VodConfig { region: "x/../y".into(), ..VodConfig::default() }.endpoint_url().is_err());
        assert!(VodConfig { endpoint: Some("ftp://h".into()), ..VodConfig::default() }.endpoint_url().is_err());
    }

    #[test]
    fn credentials_never_show_their_secrets() {
        let c = Credentials::new("STS.id", "s3cr3t-value", Some("token-value-xyz"))
            .with_hls_uri_token(Some("uri-token-abc"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("token-value") && dbg.contains("STS.id"), "{dbg}");
        assert!(!dbg.contains("uri-token") && dbg.contains("hls_uri_token"), "{dbg}");
        assert_eq!(c.scrub("key refused for MtsHlsUriToken=uri-token-abc"), "key refused for MtsHlsUriToken=..");
        assert_eq!(
            c.scrub(
                "Specified signature is not matched with our calculation. server string to sign is:POST&token-value-xyz"
            ),
            "Specified signature is not matched with our calculation. server "
        );
        assert_eq!(c.scrub("bad token token-value-xyz"), "bad token ..");
    }
}
