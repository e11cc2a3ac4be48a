//! vodvault for Kotlin, Swift and Python, through uniffi.
//!
//! A thin layer over `vodvault-core`: every exported function converts its arguments, calls
//! core, and converts the result. The crate owns a multi-threaded tokio runtime; every async
//! export runs on it, so the vault's background work (the download queue, the playback server)
//! keeps running between calls, and dropping an exported future (a cancelled Kotlin coroutine)
//! aborts its work. Swift does not drop futures on task cancellation: long waits return when the
//! asset stops, and `ListenerHandle.cancel()` stops event delivery explicitly.

#![allow(clippy::needless_pass_by_value)] // uniffi passes arguments by value

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use vodvault_core as core;

uniffi::setup_scaffolding!();

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vodvault")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("vodvault cannot start its runtime: {e}"))
});

/// A task on the crate's runtime that is aborted when its future is dropped.
struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Spawned<T> {
    type Output = Result<T, VaultError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.map_err(|_| VaultError::Cancelled))
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Spawned<T> {
    Spawned(RUNTIME.spawn(f))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a call failed. Each variant is a decision an app makes; none carries a secret.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum VaultError {
    /// The network failed (after retries): try again later.
    #[error("network: {details}")]
    Network {
        /// What failed.
        details: String,
    },
    /// The source URL expired and no fresh one was available: get a new URL.
    #[error("URL expired: {details}")]
    UrlExpired {
        /// Details.
        details: String,
    },
    /// The device is full: free space, then resume.
    #[error("storage full: {details}")]
    StorageFull {
        /// Details.
        details: String,
    },
    /// The key file is not valid (damaged, not a key file, another app's, a newer version).
    #[error("invalid key file: {details}")]
    InvalidKeyFile {
        /// Which problem.
        details: String,
    },
    /// The vault (or an asset) belongs to another key file.
    #[error("key mismatch: {details}")]
    KeyMismatch {
        /// Which key ids.
        details: String,
    },
    /// Stored data failed verification: it was modified or damaged.
    #[error("integrity: {details}")]
    Integrity {
        /// Which file.
        details: String,
    },
    /// No such asset (or file).
    #[error("not found: {details}")]
    NotFound {
        /// What.
        details: String,
    },
    /// The source is of a kind vodvault does not download (live, DRM, SAMPLE-AES, a DASH
    /// manifest, a delta or I-frame-only playlist).
    #[error("unsupported source: {details}")]
    UnsupportedSource {
        /// Why.
        details: String,
    },
    /// The source sent something that is not a playlist or media (an HTML error page served
    /// with 200, JSON, text, nothing), or a playlist that breaks the rules (a malformed tag, an
    /// undefined variable): what, and where.
    #[error("bad source: {details}")]
    BadSource {
        /// What arrived instead, from which URL role.
        details: String,
    },
    /// The asset's offline period is over.
    #[error("expired for offline playback: {details}")]
    OfflineExpired {
        /// When.
        details: String,
    },
    /// The request is malformed, or does not apply to the asset in its state.
    #[error("invalid request: {details}")]
    InvalidRequest {
        /// Details.
        details: String,
    },
    /// ApsaraVideo VOD refused the credentials (expired or invalid STS token, unknown
    /// AccessKey), or the credentials provider gave none: get fresh ones, then retry or resume.
    #[error("VOD credentials: {details}")]
    Credentials {
        /// VOD's code and message (never the credentials).
        details: String,
    },
    /// The ApsaraVideo VOD API refused the request (the video is not playable yet, forbidden,
    /// an API error).
    #[error("VOD {code}: {details}")]
    VodApi {
        /// VOD's error code, e.g. `Forbidden.IllegalStatus`.
        code: String,
        /// VOD's message.
        details: String,
    },
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Anything else.
    #[error("{details}")]
    Other {
        /// Details.
        details: String,
    },
}

impl From<core::FailureReason> for VaultError {
    fn from(r: core::FailureReason) -> Self {
        let message = r.to_string();
        use core::FailureReason as F;
        match r {
            F::HttpStatus { status: 404, .. } => VaultError::NotFound { details: message },
            F::Network { .. } | F::HttpStatus { .. } => VaultError::Network { details: message },
            F::UrlExpired { .. } => VaultError::UrlExpired { details: message },
            F::StorageFull { .. } => VaultError::StorageFull { details: message },
            F::BadSource { .. } | F::Unsupported { .. } | F::SourceChanged { .. } => {
                VaultError::UnsupportedSource { details: message }
            }
            F::KeyMismatch { .. } => VaultError::KeyMismatch { details: message },
            F::Storage { .. } => VaultError::Other { details: message },
            F::Credentials { .. } => VaultError::Credentials { details: message },
            F::Vod { code, .. } => VaultError::VodApi { code, details: message },
        }
    }
}

impl From<core::vod::VodError> for VaultError {
    fn from(e: core::vod::VodError) -> Self {
        use core::vod::VodError as V;
        let details = e.to_string();
        match e {
            V::NoCredentials(_) | V::Credentials { .. } => VaultError::Credentials { details },
            V::NotFound { .. } | V::NoMatch(_) => VaultError::NotFound { details },
            V::Unsupported(_) => VaultError::UnsupportedSource { details },
            V::Network(_) | V::Throttled { .. } => VaultError::Network { details },
            V::Config(_) => VaultError::InvalidRequest { details },
            V::Forbidden { code, .. } | V::Api { code, .. } => VaultError::VodApi { code, details },
            V::BadResponse(_) => VaultError::VodApi { code: "BadResponse".into(), details },
        }
    }
}

impl From<core::Error> for VaultError {
    fn from(e: core::Error) -> Self {
        use core::Error as E;
        let message = e.to_string();
        match e {
            E::Failed(reason) => reason.into(),
            E::NotFound(_) => VaultError::NotFound { details: message },
            E::KeyFile(_) => VaultError::InvalidKeyFile { details: message },
            E::KeyMismatch { .. } | E::Key(core::KeyError::KeyMismatch { .. }) => {
                VaultError::KeyMismatch { details: message }
            }
            E::Key(_) | E::Seal(_) | E::Integrity { .. } => VaultError::Integrity { details: message },
            E::Fetch(f) => match (f.class(), &f) {
                (core::fetch::ErrorClass::Expired, _) => VaultError::UrlExpired { details: message },
                (_, core::fetch::FetchError::Status { status: 404, .. }) => VaultError::NotFound { details: message },
                _ => VaultError::Network { details: message },
            },
            // Live, DRM, SAMPLE-AES, DASH: what vodvault does not download; a broken playlist, an
            // undefined variable or something that is not a playlist at all: a bad source.
            E::Playlist(p) | E::MediaPlaylist { error: p, .. }
                if matches!(
                    p,
                    core::hls::media::PlaylistError::Live | core::hls::media::PlaylistError::Unsupported(_)
                ) =>
            {
                VaultError::UnsupportedSource { details: message }
            }
            E::Unsupported(_) => VaultError::UnsupportedSource { details: message },
            E::Playlist(_) | E::MediaPlaylist { .. } | E::BadSource(_) => VaultError::BadSource { details: message },
            E::StorageFull => VaultError::StorageFull { details: message },
            E::Expired { .. } => VaultError::OfflineExpired { details: message },
            E::InvalidRequest(_)
            | E::AlreadyExists { .. }
            | E::InvalidState { .. }
            | E::NotPlayable { .. }
            | E::Busy(_) => VaultError::InvalidRequest { details: message },
            E::Closed | E::Catalog(_) | E::Io(_) => VaultError::Other { details: message },
            E::Vod(v) => v.into(),
        }
    }
}

impl From<core::KeyFileError> for VaultError {
    fn from(e: core::KeyFileError) -> Self {
        VaultError::InvalidKeyFile { details: e.to_string() }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for VaultError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        VaultError::Other { details: format!("callback failed: {}", e.reason) }
    }
}

type Result<T, E = VaultError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// Records and enums

/// A request header.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HttpHeader {
    /// Name, e.g. `Referer`.
    pub name: String,
    /// Value.
    pub value: String,
}

fn headers(h: Vec<HttpHeader>) -> Vec<(String, String)> {
    h.into_iter().map(|h| (h.name, h.value)).collect()
}

/// Where the app's key file comes from.
#[derive(uniffi::Enum)]
pub enum KeyFileSource {
    /// Its bytes (e.g. from app resources or the Keychain/Keystore).
    Bytes {
        /// The key file.
        bytes: Vec<u8>,
    },
    /// A file path.
    Path {
        /// Absolute path.
        path: String,
    },
}

impl std::fmt::Debug for KeyFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFileSource::Bytes { bytes } => write!(f, "Bytes({} bytes)", bytes.len()),
            KeyFileSource::Path { path } => write!(f, "Path({path:?})"),
        }
    }
}

impl KeyFileSource {
    fn read(self) -> Result<Vec<u8>> {
        match self {
            KeyFileSource::Bytes { bytes } => Ok(bytes),
            KeyFileSource::Path { path } => std::fs::read(&path)
                .map_err(|e| VaultError::InvalidKeyFile { details: format!("cannot read {path}: {e}") }),
        }
    }
}

/// How to open a vault.
#[derive(Debug, uniffi::Record)]
pub struct VaultConfig {
    /// The vault directory: an absolute path in the app's sandbox.
    pub dir: String,
    /// The app's key file.
    pub key_file: KeyFileSource,
    /// The app id the key file is bound to (Android package name / iOS bundle id).
    pub app_id: String,
    /// Assets downloading at once.
    #[uniffi(default = 3)]
    pub max_parallel_assets: u32,
    /// Concurrent requests per asset.
    #[uniffi(default = 6)]
    pub max_parallel_requests: u32,
    /// Headers sent with every request.
    #[uniffi(default = [])]
    pub default_headers: Vec<HttpHeader>,
    /// Resume queued and interrupted downloads as soon as the vault opens.
    #[uniffi(default = true)]
    pub autostart: bool,
    /// Where the ApsaraVideo VOD API is, for `vod:<VideoId>` sources (`null`: the public
    /// endpoint of `cn-shanghai`, signature V3).
    #[uniffi(default = None)]
    pub vod: Option<VodConfig>,
}

/// How requests to the ApsaraVideo VOD API are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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

impl From<VodConfig> for core::vod::VodConfig {
    fn from(c: VodConfig) -> Self {
        core::vod::VodConfig {
            region: c.region,
            endpoint: c.endpoint,
            signature: match c.signature {
                None | Some(VodSignature::V3) => core::vod::SignatureMethod::V3,
                Some(VodSignature::Rpc) => core::vod::SignatureMethod::Rpc,
            },
            auth_timeout: std::time::Duration::from_secs(u64::from(c.auth_timeout_secs.max(1))),
            credentials_timeout: std::time::Duration::from_secs(u64::from(c.credentials_timeout_secs.max(1))),
        }
    }
}

/// Where ApsaraVideo VOD should point the URLs it hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum CredentialsReason {
    /// It has none (or they passed `expires_at_ms`).
    Initial,
    /// VOD refused the current ones with this code (e.g. `InvalidSecurityToken.Expired`).
    Rejected {
        /// VOD's error code.
        code: String,
    },
    /// A download's URLs expired; the vault is about to ask VOD for fresh ones. Return fresh
    /// credentials, or `null` to keep the current ones.
    UrlExpired {
        /// The asset.
        asset_id: String,
    },
}

/// One stream of a VOD video.
#[derive(Debug, Clone, uniffi::Record)]
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
#[derive(Debug, Clone, uniffi::Record)]
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

/// Which VOD stream an asset is: its identity (never a URL).
#[derive(Debug, Clone, uniffi::Record)]
pub struct VodIdentity {
    /// Video id.
    pub video_id: String,
    /// Definition (`OD` for the source file).
    pub definition: String,
    /// Format.
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// The source file.
    pub mezzanine: bool,
    /// The transcode job.
    pub job_id: Option<String>,
}

/// What an image stored with an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ImageKind {
    /// The cover.
    Cover,
    /// A snapshot at an interval.
    Snapshot,
    /// A sprite (thumbnails tiled in one image).
    Sprite,
    /// A frame sprites are made of.
    SpriteOriginal,
    /// A WebVTT thumbnail track pointing at the sprites.
    WebVtt,
}

/// An image stored with an asset: read it with `openReader(assetId, file)` or at a playback
/// session's `baseUrl() + file`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AssetImage {
    /// Kind.
    pub kind: ImageKind,
    /// Position among images of its kind (1-based).
    pub index: u32,
    /// Its name within the asset, e.g. `images/cover.jpg`.
    pub file: String,
    /// Stored.
    pub stored: bool,
    /// Bytes, once stored.
    pub size: Option<u64>,
    /// Why it is missing: it could not be fetched and the asset completed without it
    /// (`resume` on the completed asset tries again).
    pub missing: Option<DownloadFailure>,
}

impl From<core::catalog::ImageKind> for ImageKind {
    fn from(k: core::catalog::ImageKind) -> Self {
        use core::catalog::ImageKind as K;
        match k {
            K::Cover => ImageKind::Cover,
            K::Snapshot => ImageKind::Snapshot,
            K::Sprite => ImageKind::Sprite,
            K::SpriteOriginal => ImageKind::SpriteOriginal,
            K::WebVtt => ImageKind::WebVtt,
        }
    }
}

/// How an asset is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StorageMode {
    /// Plain files and a local playlist any player can open.
    Normal,
    /// Every byte sealed for this app only.
    Encrypted,
}

impl From<StorageMode> for core::Mode {
    fn from(m: StorageMode) -> Self {
        match m {
            StorageMode::Normal => core::Mode::Normal,
            StorageMode::Encrypted => core::Mode::Encrypted,
        }
    }
}

impl From<core::Mode> for StorageMode {
    fn from(m: core::Mode) -> Self {
        match m {
            core::Mode::Normal => StorageMode::Normal,
            core::Mode::Encrypted => StorageMode::Encrypted,
        }
    }
}

/// Which audio renditions to download with an HLS variant.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum AudioSelection {
    /// The variant's default audio.
    Default,
    /// Every audio rendition of the variant.
    All,
    /// Those in these languages.
    Languages {
        /// BCP 47 tags, e.g. `en`.
        languages: Vec<String>,
    },
    /// None.
    None,
}

/// Which subtitle renditions to download with an HLS variant.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SubtitleSelection {
    /// Every subtitle rendition of the variant.
    All,
    /// Those in these languages.
    Languages {
        /// BCP 47 tags.
        languages: Vec<String>,
    },
    /// None.
    None,
}

/// What to download.
#[derive(Debug, uniffi::Record)]
pub struct DownloadRequest {
    /// HLS playlist or progressive file URL.
    pub url: String,
    /// Storage mode.
    pub mode: StorageMode,
    /// `best`, `worst`, a height (`720p`) or a bandwidth ceiling (`800k`).
    #[uniffi(default = "best")]
    pub quality: String,
    /// Audio renditions (`null`: the variant's default audio).
    #[uniffi(default = None)]
    pub audio: Option<AudioSelection>,
    /// Subtitle renditions (`null`: all of them).
    #[uniffi(default = None)]
    pub subtitles: Option<SubtitleSelection>,
    /// Headers for every request of this asset (stored sealed).
    #[uniffi(default = [])]
    pub headers: Vec<HttpHeader>,
    /// Display title.
    #[uniffi(default = None)]
    pub title: Option<String>,
    /// The app's own data, returned as is.
    #[uniffi(default = None)]
    pub metadata: Option<String>,
    /// A stable identity chosen by the app (e.g. a video id) instead of the URL.
    #[uniffi(default = None)]
    pub identity: Option<String>,
    /// Concurrent requests for this asset.
    #[uniffi(default = None)]
    pub parallel: Option<u32>,
    /// Playable offline only until this time (Unix ms).
    #[uniffi(default = None)]
    pub offline_until_ms: Option<i64>,
    /// For `vod:<VideoId>` URLs: definition, format, source file, images.
    #[uniffi(default = None)]
    pub vod: Option<VodOptions>,
}

impl TryFrom<DownloadRequest> for core::DownloadRequest {
    type Error = VaultError;
    fn try_from(r: DownloadRequest) -> Result<Self> {
        let mut c = core::DownloadRequest::new(&r.url);
        c.mode = r.mode.into();
        c.quality = r.quality.parse().map_err(|details| VaultError::InvalidRequest { details })?;
        c.audio = match r.audio.unwrap_or(AudioSelection::Default) {
            AudioSelection::Default => core::vault::AudioChoice::Default,
            AudioSelection::All => core::vault::AudioChoice::All,
            AudioSelection::Languages { languages } => core::vault::AudioChoice::Languages(languages),
            AudioSelection::None => core::vault::AudioChoice::None,
        };
        c.subtitles = match r.subtitles.unwrap_or(SubtitleSelection::All) {
            SubtitleSelection::All => core::vault::SubtitleChoice::All,
            SubtitleSelection::Languages { languages } => core::vault::SubtitleChoice::Languages(languages),
            SubtitleSelection::None => core::vault::SubtitleChoice::None,
        };
        c.headers = headers(r.headers);
        c.title = r.title;
        c.metadata = r.metadata;
        c.identity = r.identity;
        c.parallel = r.parallel.map(|p| p as usize);
        c.offline_until = r.offline_until_ms;
        if let Some(v) = r.vod {
            let video_id = core::vod::parse_source(&r.url)
                .ok_or_else(|| VaultError::InvalidRequest { details: "VOD options need a vod:<VideoId> URL".into() })?;
            c.vod = Some(core::vod::VodRequest {
                video_id: video_id.to_owned(),
                definition: v.definition,
                format: v.format,
                stream_type: v.stream_type,
                output_type: match v.output_type {
                    None | Some(VodOutputType::Cdn) => core::vod::OutputType::Cdn,
                    Some(VodOutputType::Oss) => core::vod::OutputType::Oss,
                },
                mezzanine: v.mezzanine,
                images: v.images,
            });
        }
        Ok(c)
    }
}

/// A variant stream of an HLS source.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VariantInfo {
    /// URI as written.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// Average bits per second.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// Width in pixels.
    pub width: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// `AUDIO` group.
    pub audio_group: Option<String>,
    /// `SUBTITLES` group.
    pub subtitles_group: Option<String>,
}

/// The kind of an alternative rendition.
#[derive(Debug, Clone, Copy, uniffi::Enum)]
pub enum RenditionKind {
    /// Audio.
    Audio,
    /// Subtitles.
    Subtitles,
    /// Video (another angle).
    Video,
    /// In-band closed captions.
    ClosedCaptions,
}

/// An `EXT-X-MEDIA` rendition of an HLS source.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RenditionInfo {
    /// Kind.
    pub kind: RenditionKind,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `DEFAULT=YES`.
    pub is_default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `URI` (absent when carried in the variant's stream).
    pub uri: Option<String>,
}

/// What a source offers.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SourceInfo {
    /// An HLS source.
    Hls {
        /// A master playlist (else a media playlist).
        master: bool,
        /// Variants.
        variants: Vec<VariantInfo>,
        /// Renditions.
        renditions: Vec<RenditionInfo>,
        /// For a media playlist: duration in seconds.
        duration_secs: Option<f64>,
        /// For a media playlist: segments.
        segments: Option<u64>,
    },
    /// A progressive file.
    File {
        /// Size in bytes.
        size: Option<u64>,
        /// `Content-Type`.
        content_type: Option<String>,
        /// Resumable (the server accepts ranges).
        accept_ranges: bool,
    },
    /// An ApsaraVideo VOD video.
    Vod {
        /// Video id.
        video_id: String,
        /// Title.
        title: Option<String>,
        /// Seconds.
        duration_secs: Option<f64>,
        /// VOD's status (`Normal` when playable).
        status: Option<String>,
        /// Every stream (definition × format × stream type), with why any cannot be stored.
        streams: Vec<VodStream>,
        /// The source file, when the credentials may read it.
        mezzanine: Option<VodMezzanine>,
    },
}

impl From<core::Prepared> for SourceInfo {
    fn from(p: core::Prepared) -> Self {
        match p {
            core::Prepared::Hls { master, variants, renditions, duration_secs, segments } => SourceInfo::Hls {
                master,
                variants: variants
                    .into_iter()
                    .map(|v| VariantInfo {
                        uri: v.uri,
                        bandwidth: v.bandwidth,
                        average_bandwidth: v.average_bandwidth,
                        codecs: v.codecs,
                        width: v.width,
                        height: v.height,
                        frame_rate: v.frame_rate,
                        audio_group: v.audio_group,
                        subtitles_group: v.subtitles_group,
                    })
                    .collect(),
                renditions: renditions
                    .into_iter()
                    .map(|r| {
                        use core::hls::master::RenditionKind as K;
                        RenditionInfo {
                            kind: match r.kind {
                                K::Audio => RenditionKind::Audio,
                                K::Subtitles => RenditionKind::Subtitles,
                                K::Video => RenditionKind::Video,
                                K::ClosedCaptions => RenditionKind::ClosedCaptions,
                            },
                            group_id: r.group_id,
                            name: r.name,
                            language: r.language,
                            is_default: r.default,
                            autoselect: r.autoselect,
                            uri: r.uri,
                        }
                    })
                    .collect(),
                duration_secs,
                segments: segments.map(|s| s as u64),
            },
            core::Prepared::File { size, content_type, accept_ranges } => {
                SourceInfo::File { size, content_type, accept_ranges }
            }
            core::Prepared::Vod { video_id, title, duration_secs, status, streams, mezzanine } => SourceInfo::Vod {
                video_id,
                title,
                duration_secs,
                status,
                streams: streams
                    .into_iter()
                    .map(|s| VodStream {
                        definition: s.definition,
                        format: s.format,
                        stream_type: s.stream_type,
                        bitrate_kbps: s.bitrate_kbps,
                        size: s.size,
                        width: s.width,
                        height: s.height,
                        duration_secs: s.duration_secs,
                        fps: s.fps,
                        encrypted: s.encrypted,
                        encrypt_type: s.encrypt_type,
                        job_id: s.job_id,
                        unsupported: s.unsupported,
                    })
                    .collect(),
                mezzanine: mezzanine.map(|m| VodMezzanine {
                    size: m.size,
                    crc64: m.crc64,
                    width: m.width,
                    height: m.height,
                    duration_secs: m.duration_secs,
                    file_name: m.file_name,
                }),
            },
        }
    }
}

/// Where an asset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AssetState {
    /// Waiting for a download slot.
    Queued,
    /// Being downloaded.
    Downloading,
    /// Paused by the app.
    Paused,
    /// Stopped by an error (see `failure`).
    Failed,
    /// Stored and verified.
    Completed,
    /// Stopped for good (its files deleted).
    Cancelled,
}

impl From<core::AssetState> for AssetState {
    fn from(s: core::AssetState) -> Self {
        use core::AssetState as S;
        match s {
            S::Queued => AssetState::Queued,
            S::Downloading => AssetState::Downloading,
            S::Paused => AssetState::Paused,
            S::Failed => AssetState::Failed,
            S::Completed => AssetState::Completed,
            S::Cancelled => AssetState::Cancelled,
        }
    }
}

/// Why a download stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FailureKind {
    /// The network kept failing.
    Network,
    /// An error status retrying does not fix (404, …).
    HttpStatus,
    /// The URL expired and no fresh one was available.
    UrlExpired,
    /// The device is full.
    StorageFull,
    /// The source sent bad media.
    BadSource,
    /// The source uses something not supported.
    Unsupported,
    /// The source changed.
    SourceChanged,
    /// Local storage failed.
    Storage,
    /// The asset belongs to another key file.
    KeyMismatch,
    /// VOD refused the credentials, or none were given.
    Credentials,
    /// The VOD API refused the request.
    VodApi,
}

/// A download failure: its kind, and a message naming the piece.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DownloadFailure {
    /// Kind.
    pub kind: FailureKind,
    /// What failed, and where.
    pub message: String,
}

impl From<core::FailureReason> for DownloadFailure {
    fn from(r: core::FailureReason) -> Self {
        use core::FailureReason as F;
        let kind = match &r {
            F::Network { .. } => FailureKind::Network,
            F::HttpStatus { .. } => FailureKind::HttpStatus,
            F::UrlExpired { .. } => FailureKind::UrlExpired,
            F::StorageFull { .. } => FailureKind::StorageFull,
            F::BadSource { .. } => FailureKind::BadSource,
            F::Unsupported { .. } => FailureKind::Unsupported,
            F::SourceChanged { .. } => FailureKind::SourceChanged,
            F::Storage { .. } => FailureKind::Storage,
            F::KeyMismatch { .. } => FailureKind::KeyMismatch,
            F::Credentials { .. } => FailureKind::Credentials,
            F::Vod { .. } => FailureKind::VodApi,
        };
        DownloadFailure { kind, message: r.to_string() }
    }
}

/// An asset.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AssetInfo {
    /// Stable id.
    pub id: String,
    /// State.
    pub state: AssetState,
    /// Storage mode.
    pub mode: StorageMode,
    /// `true` for HLS, `false` for a progressive file.
    pub is_hls: bool,
    /// Title.
    pub title: Option<String>,
    /// App metadata.
    pub metadata: Option<String>,
    /// Source URL without its query.
    pub source: String,
    /// Bytes stored.
    pub bytes_done: u64,
    /// Bytes expected.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact.
    pub expected_exact: bool,
    /// Pieces stored.
    pub segments_done: u64,
    /// Pieces in all.
    pub segments_total: u64,
    /// Duration, seconds.
    pub duration_secs: Option<f64>,
    /// Key id of the key file wrapping the asset's key (Encrypted mode).
    pub key_id: Option<String>,
    /// Why it failed.
    pub failure: Option<DownloadFailure>,
    /// Normal mode, completed: the file a player opens.
    pub path: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub completed_at_ms: Option<i64>,
    /// Playable offline until (Unix ms).
    pub offline_until_ms: Option<i64>,
    /// For a VOD asset: which stream it is.
    pub vod: Option<VodIdentity>,
}

impl From<core::AssetInfo> for AssetInfo {
    fn from(a: core::AssetInfo) -> Self {
        AssetInfo {
            id: a.id,
            state: a.state.into(),
            mode: a.mode.into(),
            is_hls: a.kind == core::AssetKind::Hls,
            title: a.title,
            metadata: a.metadata,
            source: a.source,
            bytes_done: a.bytes_done,
            bytes_expected: a.bytes_expected,
            expected_exact: a.expected_exact,
            segments_done: a.segments_done,
            segments_total: a.segments_total,
            duration_secs: a.duration_secs,
            key_id: a.key_id,
            failure: a.failure.map(Into::into),
            path: a.path.map(|p| p.display().to_string()),
            created_at_ms: a.created_at,
            completed_at_ms: a.completed_at,
            offline_until_ms: a.offline_until,
            vod: a.vod.map(|v| VodIdentity {
                video_id: v.video_id,
                definition: v.definition,
                format: v.format,
                stream_type: v.stream_type,
                mezzanine: v.mezzanine,
                job_id: v.job_id,
            }),
        }
    }
}

/// Download progress of one asset: monotonic, about ten a second at most.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DownloadProgress {
    /// The asset.
    pub asset_id: String,
    /// Bytes stored.
    pub bytes_done: u64,
    /// Bytes expected.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact (else an estimate).
    pub expected_exact: bool,
    /// Pieces stored.
    pub segments_done: u64,
    /// Pieces in all.
    pub segments_total: u64,
    /// Bytes per second.
    pub speed_bps: f64,
    /// Seconds to go.
    pub eta_secs: Option<f64>,
}

/// What a key file says about itself (never its secret).
#[derive(Debug, Clone, uniffi::Record)]
pub struct KeyFileInfo {
    /// Format version.
    pub version: u16,
    /// The app id it is bound to.
    pub app_id: String,
    /// Key id (a fingerprint).
    pub key_id: String,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
}

impl From<core::KeyFileInfo> for KeyFileInfo {
    fn from(i: core::KeyFileInfo) -> Self {
        KeyFileInfo { version: i.version, app_id: i.app_id, key_id: i.key_id.to_string(), created_unix: i.created_unix }
    }
}

/// What the refresh hook is asked.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RefreshRequest {
    /// The asset.
    pub asset_id: String,
    /// The expired source URL.
    pub source_url: String,
    /// The status that reported it (401, 403 or 410).
    pub status: u16,
    /// The asset's title.
    pub title: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Foreign traits

/// Receives the vault's events. Implemented by the app; called on a background thread, in order.
#[uniffi::export(foreign)]
pub trait VaultListener: Send + Sync {
    /// Download progress.
    fn on_progress(&self, progress: DownloadProgress);
    /// An asset changed state (`failure` set when it failed).
    fn on_state_changed(&self, asset_id: String, state: AssetState, failure: Option<DownloadFailure>);
    /// An asset was removed.
    fn on_removed(&self, asset_id: String);
    /// A stored file failed verification while being read or served.
    fn on_integrity_failure(&self, asset_id: String, file: String);
    /// An image of an asset could not be fetched; the asset completes without it (`image.missing`
    /// says why), and `resume` on the completed asset tries again.
    fn on_image_missing(&self, asset_id: String, image: AssetImage);
}

/// Supplies a fresh source URL when a signed one expires. Implemented by the app; called on a
/// background thread (it may block, e.g. to ask the app's backend). Return `null`/`nil`/`None`
/// to give up: the asset then fails with `UrlExpired`.
#[uniffi::export(foreign)]
pub trait UrlRefresher: Send + Sync {
    /// A fresh URL for the same content.
    fn refresh_url(&self, request: RefreshRequest) -> Option<String>;
}

/// Supplies ApsaraVideo VOD credentials (typically STS tokens from the app's server).
/// Implemented by the app; called on a background thread (it may block). Return `null`/`nil`/
/// `None` to give none: the call or download then fails with `Credentials` (resumable).
#[uniffi::export(foreign)]
pub trait CredentialsProvider: Send + Sync {
    /// Credentials for `reason`.
    fn credentials(&self, reason: CredentialsReason) -> Option<VodCredentials>;
}

struct Provider(Arc<dyn CredentialsProvider>);

impl core::vod::CredentialsProvider for Provider {
    fn credentials(
        &self,
        reason: core::vod::CredentialsReason,
    ) -> Pin<Box<dyn Future<Output = Option<core::vod::Credentials>> + Send + '_>> {
        let foreign = Arc::clone(&self.0);
        Box::pin(async move {
            use core::vod::CredentialsReason as R;
            let reason = match reason {
                R::Initial => CredentialsReason::Initial,
                R::Rejected { code } => CredentialsReason::Rejected { code },
                R::UrlExpired { asset_id } => CredentialsReason::UrlExpired { asset_id },
            };
            let c = tokio::task::spawn_blocking(move || foreign.credentials(reason)).await.ok().flatten()?;
            let mut creds =
                core::vod::Credentials::new(&c.access_key_id, &c.access_key_secret, c.security_token.as_deref())
                    .with_hls_uri_token(c.hls_uri_token.as_deref());
            creds.expires_at = c.expires_at_ms;
            Some(creds)
        })
    }
}

struct Refresher(Arc<dyn UrlRefresher>);

impl core::UrlRefresher for Refresher {
    fn refresh(&self, r: core::RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        let foreign = Arc::clone(&self.0);
        Box::pin(async move {
            let request =
                RefreshRequest { asset_id: r.asset_id, source_url: r.source_url, status: r.status, title: r.title };
            tokio::task::spawn_blocking(move || foreign.refresh_url(request)).await.ok().flatten()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

/// Stops delivering events to a listener: on `cancel()` or when dropped.
#[derive(uniffi::Object)]
pub struct ListenerHandle(tokio::task::AbortHandle);

#[uniffi::export]
impl ListenerHandle {
    /// Stops delivery.
    pub fn cancel(&self) {
        self.0.abort();
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A playback session: its URL serves the asset to any player until `revoke()`, or until the
/// session object is released (Kotlin `close()`/`use {}`, Swift deinit, Python garbage
/// collection).
#[derive(uniffi::Object)]
pub struct PlaybackSession(core::playback::PlaybackSession);

#[uniffi::export]
impl PlaybackSession {
    /// The URL a player opens.
    pub fn url(&self) -> String {
        self.0.url().to_owned()
    }
    /// The base URL every file of the asset is under.
    pub fn base_url(&self) -> String {
        self.0.base_url().to_owned()
    }
    /// Revokes the session now: its URLs answer 404.
    pub fn revoke(&self) {
        self.0.close();
    }
}

/// Random access to one stored file of a completed asset, for a custom player data source
/// (ExoPlayer `DataSource`, AVFoundation `AVAssetResourceLoaderDelegate`).
#[derive(uniffi::Object)]
pub struct AssetReader(core::playback::AssetReader);

#[uniffi::export]
impl AssetReader {
    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// MIME type.
    pub fn content_type(&self) -> String {
        self.0.content_type().to_owned()
    }
    /// The plain file path (Normal mode only).
    pub fn plain_path(&self) -> Option<String> {
        self.0.plain_path().map(|p| p.display().to_string())
    }
    /// Up to `length` bytes from `offset` (fewer at the end of the file, none past it).
    ///
    /// # Errors
    /// `Integrity` if the bytes fail verification.
    pub fn read_at(&self, offset: u64, length: u32) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; length as usize];
        let n = self.0.read_at(offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// An open vault: a folder, its catalog, and the download queue. Call `shutdown()` when done
/// (then release it: Kotlin `close()`).
#[derive(uniffi::Object)]
pub struct Vault(core::Vault);

#[uniffi::export]
impl Vault {
    /// Opens (creating and migrating) the vault.
    ///
    /// # Errors
    /// `InvalidKeyFile` (damaged, another app's), `KeyMismatch` (the vault has another key file).
    #[uniffi::constructor]
    pub async fn open(config: VaultConfig) -> Result<Arc<Self>> {
        let key = config.key_file.read()?;
        let mut c = core::VaultConfig::new(PathBuf::from(config.dir), key, &config.app_id);
        c.max_parallel_assets = config.max_parallel_assets as usize;
        c.max_parallel_requests = config.max_parallel_requests as usize;
        c.default_headers = headers(config.default_headers);
        c.autostart = config.autostart;
        if let Some(vod) = config.vod {
            c.vod = vod.into();
        }
        let vault = spawn(core::Vault::open(c)).await??;
        Ok(Arc::new(Self(vault)))
    }

    /// The key id of the vault's key file.
    pub fn key_id(&self) -> String {
        self.0.key_id().to_string()
    }

    /// What a source offers, before downloading.
    pub async fn prepare(&self, url: String, headers: Vec<HttpHeader>) -> Result<SourceInfo> {
        let v = self.0.clone();
        Ok(spawn(async move { v.prepare(&url, &self::headers(headers)).await }).await??.into())
    }

    /// Queues a download; returns the asset id at once.
    pub async fn download(&self, request: DownloadRequest) -> Result<String> {
        let (v, request) = (self.0.clone(), core::DownloadRequest::try_from(request)?);
        Ok(spawn(async move { v.download(request).await }).await??)
    }

    /// Waits until the asset completes (returning it) or stops otherwise (an error saying why).
    pub async fn wait(&self, asset_id: String) -> Result<AssetInfo> {
        let v = self.0.clone();
        Ok(spawn(async move { v.wait(&asset_id).await }).await??.into())
    }

    /// Pauses a download (what is stored is kept).
    pub async fn pause(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.pause(&asset_id).await }).await??)
    }

    /// Resumes a paused, failed or cancelled download.
    pub async fn resume(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.resume(&asset_id).await }).await??)
    }

    /// Stops a download for good, deleting its files (its record stays, `cancelled`).
    pub async fn cancel(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.cancel(&asset_id).await }).await??)
    }

    /// Deletes an asset: files and record.
    pub async fn remove(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.remove(&asset_id).await }).await??)
    }

    /// Pauses every download.
    pub async fn pause_all(&self) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.pause_all().await }).await??)
    }

    /// Resumes every paused, failed or interrupted download; returns their ids.
    pub async fn resume_all(&self) -> Result<Vec<String>> {
        let v = self.0.clone();
        Ok(spawn(async move { v.resume_all().await }).await??)
    }

    /// Deletes every asset.
    pub async fn remove_all(&self) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.remove_all().await }).await??)
    }

    /// Every asset, oldest first.
    pub async fn assets(&self) -> Result<Vec<AssetInfo>> {
        let v = self.0.clone();
        Ok(spawn(async move { v.assets().await }).await??.into_iter().map(Into::into).collect())
    }

    /// One asset.
    pub async fn asset(&self, asset_id: String) -> Result<AssetInfo> {
        let v = self.0.clone();
        Ok(spawn(async move { v.asset(&asset_id).await }).await??.into())
    }

    /// Delivers events to `listener` until the returned handle is cancelled or dropped.
    pub fn add_listener(&self, listener: Arc<dyn VaultListener>) -> Arc<ListenerHandle> {
        let mut rx = self.0.subscribe();
        let task = RUNTIME.spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let l = Arc::clone(&listener);
                // Foreign code may block: never on the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || match event {
                    core::Event::Progress(p) => l.on_progress(DownloadProgress {
                        asset_id: p.id,
                        bytes_done: p.bytes_done,
                        bytes_expected: p.bytes_expected,
                        expected_exact: p.expected_exact,
                        segments_done: p.segments_done,
                        segments_total: p.segments_total,
                        speed_bps: p.speed_bps,
                        eta_secs: p.eta_secs,
                    }),
                    core::Event::State { id, state, failure } => {
                        l.on_state_changed(id, state.into(), failure.map(Into::into));
                    }
                    core::Event::Removed { id } => l.on_removed(id),
                    core::Event::IntegrityFailed { id, file } => l.on_integrity_failure(id, file),
                    core::Event::ImageMissing { id, kind, index, file, reason } => {
                        let image = AssetImage {
                            kind: kind.into(),
                            index,
                            file,
                            stored: false,
                            size: None,
                            missing: Some(reason.into()),
                        };
                        l.on_image_missing(id, image);
                    }
                    core::Event::Restarted { .. } => {}
                })
                .await;
            }
        });
        Arc::new(ListenerHandle(task.abort_handle()))
    }

    /// Sets (or clears) the hook that supplies fresh URLs when signed ones expire.
    pub fn set_refresher(&self, refresher: Option<Arc<dyn UrlRefresher>>) {
        self.0.set_refresher(refresher.map(|r| Arc::new(Refresher(r)) as Arc<dyn core::UrlRefresher>));
    }

    /// Sets (or clears) the source of ApsaraVideo VOD credentials.
    pub fn set_credentials_provider(&self, provider: Option<Arc<dyn CredentialsProvider>>) {
        self.0.set_credentials_provider(
            provider.map(|p| Arc::new(Provider(p)) as Arc<dyn core::vod::CredentialsProvider>),
        );
    }

    /// The images stored (or to be stored) with an asset: VOD covers, snapshots, sprites and
    /// WebVTT thumbnail tracks.
    pub async fn images(&self, asset_id: String) -> Result<Vec<AssetImage>> {
        let v = self.0.clone();
        let images = spawn(async move { v.images(&asset_id).await }).await??;
        Ok(images
            .into_iter()
            .map(|i| AssetImage {
                kind: i.kind.into(),
                index: i.index,
                file: i.file,
                stored: i.stored,
                size: i.size,
                missing: i.missing.map(Into::into),
            })
            .collect())
    }

    /// Serves a completed asset on 127.0.0.1; returns a session whose URL players open.
    pub async fn play(&self, asset_id: String) -> Result<Arc<PlaybackSession>> {
        let v = self.0.clone();
        Ok(Arc::new(PlaybackSession(spawn(async move { v.play(&asset_id).await }).await??)))
    }

    /// The names of every stored file of a completed asset.
    pub async fn files(&self, asset_id: String) -> Result<Vec<String>> {
        let v = self.0.clone();
        Ok(spawn(async move { v.files(&asset_id).await }).await??)
    }

    /// Opens one stored file of a completed asset for random access.
    pub async fn open_reader(&self, asset_id: String, name: String) -> Result<Arc<AssetReader>> {
        let v = self.0.clone();
        Ok(Arc::new(AssetReader(spawn(async move { v.open_reader(&asset_id, &name).await }).await??)))
    }

    /// Checks every stored file of an asset; returns those that fail (empty: all verified).
    pub async fn verify(&self, asset_id: String) -> Result<Vec<String>> {
        let v = self.0.clone();
        Ok(spawn(async move { v.verify(&asset_id).await }).await??)
    }

    /// Sets (or with `null` removes) the time (Unix ms) until which an asset plays offline.
    pub async fn set_offline_until(&self, asset_id: String, until_ms: Option<i64>) -> Result<()> {
        let v = self.0.clone();
        Ok(spawn(async move { v.set_offline_until(&asset_id, until_ms).await }).await??)
    }

    /// Stops this process's downloads (they resume next time the vault opens) and closes the
    /// catalog. The vault cannot be used afterwards.
    pub async fn shutdown(&self) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.close().await }).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Key files

/// Checks a key file's integrity and returns what it says about itself (never its secret).
///
/// # Errors
/// `InvalidKeyFile` naming the problem.
#[uniffi::export]
pub fn inspect_key_file(key_file: Vec<u8>) -> Result<KeyFileInfo> {
    Ok(core::KeyFile::inspect(&key_file)?.into())
}

/// Checks that a key file is intact and bound to `app_id`.
///
/// # Errors
/// `InvalidKeyFile` naming the problem (another app's key file included).
#[uniffi::export]
pub fn validate_key_file(key_file: Vec<u8>, app_id: String) -> Result<KeyFileInfo> {
    Ok(core::KeyFile::from_bytes(&key_file, &app_id)?.info().clone().into())
}

/// Makes a new key file for `app_id` (apps normally ship one made with `vodvault-keytool`).
///
/// # Errors
/// `InvalidKeyFile` for an invalid app id.
#[uniffi::export]
pub fn generate_key_file(app_id: String) -> Result<Vec<u8>> {
    Ok(core::KeyFile::generate(&app_id)?.to_bytes().to_vec())
}

/// Moves a closed vault to a new key file: every asset's key is re-wrapped, no media is
/// re-encrypted. Returns the new key id.
///
/// # Errors
/// `InvalidKeyFile`, `KeyMismatch` (the old key file is not the vault's).
#[uniffi::export]
pub async fn rotate_vault_key(
    dir: String,
    app_id: String,
    old_key_file: Vec<u8>,
    new_key_file: Vec<u8>,
) -> Result<String> {
    let id = spawn(async move {
        core::Vault::rotate_key_file(std::path::Path::new(&dir), &app_id, &old_key_file, &new_key_file).await
    })
    .await??;
    Ok(id.to_string())
}
