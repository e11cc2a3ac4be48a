//! ApsaraVideo VOD: where its API is, what to download of a video, and the app's credentials.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use vodvault_core as core;

use crate::runtime::HookThread;

/// How requests to the ApsaraVideo VOD API are signed.
pub type VodSignature = core::SignatureMethod;

/// How requests to the ApsaraVideo VOD API are signed.
#[uniffi::remote(Enum)]
pub enum VodSignature {
    /// `ACS3-HMAC-SHA256` (signature method V3), what Alibaba Cloud requires now.
    V3,
    /// The older RPC signature (HMAC-SHA1), for older deployments.
    Rpc,
}

/// The ApsaraVideo VOD API to ask for URLs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VodConfig {
    /// The storage region, e.g. `cn-shanghai`, `ap-southeast-1`.
    #[uniffi(default = "cn-shanghai")]
    pub region: String,
    /// An endpoint URL overriding the region's (private deployments, tests).
    #[uniffi(default = None)]
    pub endpoint: Option<String>,
    /// Signature method (`null`: V3).
    #[uniffi(default = None)]
    pub signature: Option<VodSignature>,
    /// How long the URLs VOD hands out should live (`AuthTimeout`); fresh ones are fetched
    /// when they expire either way.
    #[uniffi(default = 3600)]
    pub auth_timeout_secs: u32,
    /// How long the `CredentialsProvider` may take to answer before the call (or download)
    /// fails with `Credentials`.
    #[uniffi(default = 60)]
    pub credentials_timeout_secs: u32,
}

impl From<VodConfig> for core::VodConfig {
    fn from(c: VodConfig) -> Self {
        core::VodConfig {
            region: c.region,
            endpoint: c.endpoint,
            signature: c.signature.unwrap_or_default(),
            auth_timeout: std::time::Duration::from_secs(u64::from(c.auth_timeout_secs.max(1))),
            credentials_timeout: std::time::Duration::from_secs(u64::from(c.credentials_timeout_secs.max(1))),
        }
    }
}

/// Where ApsaraVideo VOD should point the URLs it hands out.
pub type VodOutputType = core::OutputType;

/// Where ApsaraVideo VOD should point the URLs it hands out.
#[uniffi::remote(Enum)]
pub enum VodOutputType {
    /// The CDN.
    Cdn,
    /// OSS.
    Oss,
}

/// What to download of an ApsaraVideo VOD video (the request's `url` is `vod:<VideoId>`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct VodOptions {
    /// `FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, … (`null`: the one `quality` picks).
    #[uniffi(default = None)]
    pub definition: Option<String>,
    /// `m3u8`, `mp4` or `mp3` (`null`: m3u8 if offered, else mp4, else mp3).
    #[uniffi(default = None)]
    pub format: Option<String>,
    /// `video` or `audio` (`null`: video if offered).
    #[uniffi(default = None)]
    pub stream_type: Option<String>,
    /// CDN or OSS URLs (`null`: CDN).
    #[uniffi(default = None)]
    pub output_type: Option<VodOutputType>,
    /// The source (mezzanine) file instead of a transcode, checked against its CRC-64.
    #[uniffi(default = false)]
    pub mezzanine: bool,
    /// Store the cover, snapshots, sprites and WebVTT thumbnails with the asset.
    #[uniffi(default = true)]
    pub images: bool,
}

impl VodOptions {
    pub(crate) fn into_core(self, video_id: &str) -> core::VodRequest {
        core::VodRequest {
            video_id: video_id.to_owned(),
            definition: self.definition,
            format: self.format,
            stream_type: self.stream_type,
            output_type: self.output_type.unwrap_or_default(),
            mezzanine: self.mezzanine,
            images: self.images,
        }
    }
}

/// ApsaraVideo VOD credentials: usually STS (temporary) ones from the app's server. The secret
/// and the token are never logged or shown.
#[derive(Clone, uniffi::Record)]
pub struct VodCredentials {
    /// AccessKeyId.
    pub access_key_id: String,
    /// AccessKeySecret.
    pub access_key_secret: String,
    /// STS security token.
    #[uniffi(default = None)]
    pub security_token: Option<String>,
    /// When they expire (Unix ms), if known: renewed a minute before.
    #[uniffi(default = None)]
    pub expires_at_ms: Option<i64>,
    /// Standard HLS encryption with a key service that checks tokens: the `MtsHlsUriToken`
    /// from the app's token service (renewed with the credentials).
    #[uniffi(default = None)]
    pub hls_uri_token: Option<String>,
}

impl std::fmt::Debug for VodCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Why the vault asks for VOD credentials.
pub type CredentialsReason = core::CredentialsReason;

/// Why the vault asks for VOD credentials.
#[uniffi::remote(Enum)]
pub enum CredentialsReason {
    /// It has none (or they passed `expires_at_ms`).
    Initial,
    /// VOD refused the current ones with this code (e.g. `InvalidSecurityToken.Expired`).
    Rejected { code: String },
    /// A download's URLs expired; the vault is about to ask VOD for fresh ones. Return fresh
    /// credentials, or `null` to keep the current ones.
    UrlExpired { asset_id: String },
}

/// Supplies ApsaraVideo VOD credentials (typically STS tokens from the app's server).
/// Implemented by the app; called on a thread of its own (it may block). Return `null`/`nil`/
/// `None` to give none: the call or download then fails with `Credentials` (resumable).
#[uniffi::export(foreign)]
pub trait CredentialsProvider: Send + Sync {
    /// Credentials for `reason`.
    fn credentials(&self, reason: CredentialsReason) -> Option<VodCredentials>;
}

/// The app's provider as core calls it: on a thread of its own.
pub(crate) struct Provider {
    hook: Arc<dyn CredentialsProvider>,
    thread: HookThread,
}

impl Provider {
    pub(crate) fn new(hook: Arc<dyn CredentialsProvider>) -> Self {
        Self { hook, thread: HookThread::new("credentials") }
    }
}

impl core::CredentialsProvider for Provider {
    fn credentials(
        &self,
        reason: core::CredentialsReason,
    ) -> Pin<Box<dyn Future<Output = Option<core::Credentials>> + Send + '_>> {
        let hook = Arc::clone(&self.hook);
        Box::pin(async move {
            let c = self.thread.call(move || hook.credentials(reason)).await.flatten()?;
            let mut creds = core::Credentials::new(&c.access_key_id, &c.access_key_secret, c.security_token.as_deref())
                .with_hls_uri_token(c.hls_uri_token.as_deref());
            creds.expires_at = c.expires_at_ms;
            Some(creds)
        })
    }
}

/// One stream of a VOD video.
pub type VodStream = core::VodStreamInfo;

/// One stream of a VOD video.
#[uniffi::remote(Record)]
pub struct VodStream {
    /// Definition.
    pub definition: String,
    /// Format.
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Bytes.
    pub size: Option<u64>,
    /// Pixels.
    pub width: Option<u64>,
    /// Pixels.
    pub height: Option<u64>,
    /// Seconds.
    pub duration_secs: Option<f64>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Encrypted at the source.
    pub encrypted: bool,
    /// `HLSEncryption` (downloadable) or `AliyunVoDEncryption` (not).
    pub encrypt_type: Option<String>,
    /// The transcode job.
    pub job_id: Option<String>,
    /// Why it cannot be downloaded (`null`: it can).
    pub unsupported: Option<String>,
}

/// A VOD video's source (mezzanine) file.
pub type VodMezzanine = core::VodMezzanineInfo;

/// A VOD video's source (mezzanine) file.
#[uniffi::remote(Record)]
pub struct VodMezzanine {
    /// Bytes.
    pub size: Option<u64>,
    /// CRC-64/ECMA.
    pub crc64: Option<u64>,
    /// Pixels.
    pub width: Option<u64>,
    /// Pixels.
    pub height: Option<u64>,
    /// Seconds.
    pub duration_secs: Option<f64>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
}
