//! The vault: a folder, its catalog, and the download queue.
//!
//! ```no_run
//! # async fn demo() -> vodvault_core::Result<()> {
//! use vodvault_core::vault::{DownloadRequest, Vault, VaultConfig};
//! let key = std::fs::read("app.vvkey")?;
//! let vault = Vault::open(VaultConfig::new("/data/app/vault".into(), key, "com.example.player")).await?;
//! let id = vault.download(DownloadRequest::new("https://cdn.example.com/v/master.m3u8")).await?;
//! let info = vault.wait(&id).await?;
//! println!("{} is {}", info.id, info.state);
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};
use zeroize::Zeroizing;

use crate::catalog::{AssetKind, AssetRow, AssetState, Catalog, Mode};
use crate::download;
use crate::error::{Error, FailureReason, Result};
use crate::fetch::{Http, HttpConfig, RetryPolicy};
use crate::hls::master::{Quality, Rendition, Variant};
use crate::keyfile::{KeyFile, KeyId};
use crate::keys::{Kek, WrappedKey};
use crate::seal::DEFAULT_CHUNK_SIZE;
use crate::store::{self, Layout};
use crate::vod::{CredentialsProvider, VodClient, VodConfig, VodRequest};

/// How to open a vault.
#[derive(Clone)]
pub struct VaultConfig {
    /// The vault directory (absolute; created if missing).
    pub dir: PathBuf,
    /// The app's key file, as bytes.
    pub key_file: Zeroizing<Vec<u8>>,
    /// The app id the key file must be bound to.
    pub app_id: String,
    /// Assets downloading at once.
    pub max_parallel_assets: usize,
    /// Concurrent requests per asset.
    pub max_parallel_requests: usize,
    /// Headers sent with every request of every asset (an asset's own headers override them).
    pub default_headers: Vec<(String, String)>,
    /// HTTP timeouts and TLS roots.
    pub http: HttpConfig,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Start downloading queued and interrupted assets as soon as the vault opens (what a
    /// mobile app wants after process death). Without it, only assets this process asks for
    /// (`download`, `resume`) run.
    pub autostart: bool,
    /// Plaintext bytes per sealed chunk in Encrypted mode.
    pub chunk_size: u32,
    /// A progressive download makes its progress durable (a resume point) every this many
    /// bytes.
    pub checkpoint_bytes: u64,
    /// Where the ApsaraVideo VOD API is (for `vod:` sources); credentials come from
    /// [`Vault::set_credentials_provider`].
    pub vod: VodConfig,
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("dir", &self.dir)
            .field("key_file", &format_args!("({} bytes)", self.key_file.len()))
            .field("app_id", &self.app_id)
            .field("max_parallel_assets", &self.max_parallel_assets)
            .field("max_parallel_requests", &self.max_parallel_requests)
            .field("default_headers", &header_names(&self.default_headers))
            .field("autostart", &self.autostart)
            .field("vod", &self.vod)
            .finish_non_exhaustive()
    }
}

fn header_names(h: &[(String, String)]) -> Vec<&str> {
    h.iter().map(|(n, _)| n.as_str()).collect()
}

impl VaultConfig {
    /// A configuration with the defaults: 3 assets and 6 requests per asset at once.
    pub fn new(dir: PathBuf, key_file: Vec<u8>, app_id: &str) -> Self {
        Self {
            dir,
            key_file: Zeroizing::new(key_file),
            app_id: app_id.to_owned(),
            max_parallel_assets: 3,
            max_parallel_requests: 6,
            default_headers: Vec::new(),
            http: HttpConfig::default(),
            retry: RetryPolicy::default(),
            autostart: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            checkpoint_bytes: 8 << 20,
            vod: VodConfig::default(),
        }
    }
}

/// Which audio renditions to download with an HLS variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioChoice {
    /// The variant's default audio rendition (if its audio is separate).
    #[default]
    Default,
    /// Every rendition of the variant's audio group in these languages.
    Languages(Vec<String>),
    /// Every rendition of the variant's audio group.
    All,
    /// None.
    None,
}

/// Which subtitle renditions to download with an HLS variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubtitleChoice {
    /// Every rendition of the variant's subtitle group.
    #[default]
    All,
    /// Those in these languages.
    Languages(Vec<String>),
    /// None.
    None,
}

/// What to download.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadRequest {
    /// Source URL: HLS master or media playlist, or a progressive file; or `vod:<VideoId>` for
    /// an ApsaraVideo VOD video (see `vod`).
    pub url: String,
    /// Storage mode.
    pub mode: Mode,
    /// Variant choice (HLS master playlists).
    pub quality: Quality,
    /// Audio renditions.
    pub audio: AudioChoice,
    /// Subtitle renditions.
    pub subtitles: SubtitleChoice,
    /// Headers for every request of this asset (Referer, User-Agent, cookies, …). Stored
    /// sealed under the vault key so they survive a restart.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// Display title.
    pub title: Option<String>,
    /// The app's own data (e.g. JSON), stored and returned as is.
    pub metadata: Option<String>,
    /// A stable identity chosen by the app (e.g. a video id) instead of the URL.
    pub identity: Option<String>,
    /// Concurrent requests for this asset, overriding the vault's setting.
    pub parallel: Option<usize>,
    /// Playable offline only until this time (Unix ms); afterwards `play` and the reader refuse
    /// it with [`Error::Expired`] (the app may extend it with [`Vault::set_offline_until`]).
    #[serde(default)]
    pub offline_until: Option<i64>,
    /// For a VOD video: definition, format, stream type, output type, mezzanine, images. With
    /// `url` = `vod:<VideoId>` and no options, the video's best stream and its images.
    #[serde(default)]
    pub vod: Option<VodRequest>,
}

impl fmt::Debug for DownloadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadRequest")
            .field("url", &crate::identity::redact_str(&self.url))
            .field("mode", &self.mode)
            .field("quality", &self.quality)
            .field("headers", &header_names(&self.headers))
            .field("title", &self.title)
            .field("vod", &self.vod)
            .finish_non_exhaustive()
    }
}

impl DownloadRequest {
    /// A VOD video's best stream, with its images, Normal mode.
    pub fn vod(video_id: &str) -> Self {
        let mut r = Self::new(&format!("vod:{}", video_id.trim()));
        r.vod = Some(VodRequest::new(video_id));
        r
    }

    /// The VOD part of the request: from `vod`, or from a `vod:<VideoId>` URL.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when `url` names another video than `vod`, or `vod` comes with
    /// an `http(s)` URL.
    pub fn vod_request(&self) -> Result<Option<VodRequest>> {
        let from_url = crate::vod::parse_source(&self.url);
        match (&self.vod, from_url) {
            (None, None) => Ok(None),
            (None, Some(id)) => Ok(Some(VodRequest::new(id))),
            (Some(v), Some(id)) if v.video_id.is_empty() => {
                Ok(Some(VodRequest { video_id: id.to_owned(), ..v.clone() }))
            }
            (Some(v), Some(id)) if v.video_id == id => Ok(Some(v.clone())),
            (Some(v), _) => Err(Error::InvalidRequest(format!(
                "VOD options for video {:?} need the URL vod:{}",
                v.video_id, v.video_id
            ))),
        }
    }

    /// Best quality, Normal mode, default audio and all subtitles.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            mode: Mode::Normal,
            quality: Quality::Best,
            audio: AudioChoice::Default,
            subtitles: SubtitleChoice::All,
            headers: Vec::new(),
            title: None,
            metadata: None,
            identity: None,
            parallel: None,
            offline_until: None,
            vod: None,
        }
    }
}

/// What a source offers, before anything is downloaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prepared {
    /// An HLS source.
    Hls {
        /// Whether the URL is a master playlist.
        master: bool,
        /// Variant streams (one, without attributes, for a media playlist); URIs without their
        /// query (signatures, tokens).
        variants: Vec<Variant>,
        /// `EXT-X-MEDIA` renditions, closed captions included (nothing to download for them).
        renditions: Vec<Rendition>,
        /// For a media playlist: its duration in seconds and segment count.
        duration_secs: Option<f64>,
        /// For a media playlist: segments.
        segments: Option<usize>,
    },
    /// A progressive file.
    File {
        /// Size in bytes, when the server says.
        size: Option<u64>,
        /// `Content-Type`.
        content_type: Option<String>,
        /// Whether the server accepts range requests (resumable).
        accept_ranges: bool,
    },
    /// An ApsaraVideo VOD video.
    Vod {
        /// The video id.
        video_id: String,
        /// Its title.
        title: Option<String>,
        /// Seconds.
        duration_secs: Option<f64>,
        /// VOD's status of the video (`Normal` when playable).
        status: Option<String>,
        /// Every stream VOD offers (definition × format × stream type).
        streams: Vec<VodStreamInfo>,
        /// The source file, when the credentials may read it.
        mezzanine: Option<VodMezzanineInfo>,
    },
}

/// One stream of a VOD video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VodStreamInfo {
    /// `FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, `SQ`, `HQ`, …
    pub definition: String,
    /// `m3u8`, `mp4`, `mp3`, …
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
    /// Whether it is encrypted at the source.
    pub encrypted: bool,
    /// `HLSEncryption` (downloadable) or `AliyunVoDEncryption` (not).
    pub encrypt_type: Option<String>,
    /// The transcode job.
    pub job_id: Option<String>,
    /// Why vodvault cannot store it, when it cannot.
    pub unsupported: Option<String>,
}

/// A VOD video's source (mezzanine) file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VodMezzanineInfo {
    /// Bytes.
    pub size: Option<u64>,
    /// CRC-64/ECMA, when VOD reports it.
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

/// What identifies a VOD asset: the stream, not its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VodIdentity {
    /// The video id.
    pub video_id: String,
    /// Definition (`OD` for the mezzanine).
    pub definition: String,
    /// Format.
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Whether it is the source file.
    pub mezzanine: bool,
    /// The transcode job it was downloaded from.
    pub job_id: Option<String>,
}

/// An image stored with an asset (VOD covers, snapshots, sprites, WebVTT thumbnails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// What it is.
    pub kind: crate::catalog::ImageKind,
    /// Position among images of its kind (1-based).
    pub index: u32,
    /// Its logical name: read it with [`Vault::open_reader`], or append it to a playback
    /// session's base URL.
    pub file: String,
    /// Whether it is stored.
    pub stored: bool,
    /// Bytes, once stored.
    pub size: Option<u64>,
    /// Why it is missing: it could not be fetched (after fresh URLs) and the asset completed
    /// without it; [`Vault::resume`] on the completed asset tries it again.
    pub missing: Option<FailureReason>,
}

/// An asset, as the app sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetInfo {
    /// Stable id.
    pub id: String,
    /// Where it is in its life.
    pub state: AssetState,
    /// Storage mode.
    pub mode: Mode,
    /// Source kind.
    pub kind: AssetKind,
    /// Display title.
    pub title: Option<String>,
    /// The app's data.
    pub metadata: Option<String>,
    /// Source URL without query string (signatures are not shown).
    pub source: String,
    /// Bytes stored and committed.
    pub bytes_done: u64,
    /// Bytes expected in all.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact (otherwise an estimate).
    pub expected_exact: bool,
    /// Pieces stored.
    pub segments_done: u64,
    /// Pieces in all.
    pub segments_total: u64,
    /// Duration in seconds, when known.
    pub duration_secs: Option<f64>,
    /// Key id of the key file wrapping the asset's content key (Encrypted mode).
    pub key_id: Option<String>,
    /// Why it failed.
    pub failure: Option<FailureReason>,
    /// The asset's directory.
    pub dir: PathBuf,
    /// Normal mode, completed: the file a player opens (`index.m3u8` or the media file).
    pub path: Option<PathBuf>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub completed_at: Option<i64>,
    /// Playable offline only until this time (Unix ms).
    pub offline_until: Option<i64>,
    /// For a VOD asset: which stream it is.
    pub vod: Option<VodIdentity>,
}

/// Download progress of one asset. Monotonic; at most about ten per second per asset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The asset.
    pub id: String,
    /// Bytes stored (including pieces being written).
    pub bytes_done: u64,
    /// Bytes expected in all.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact.
    pub expected_exact: bool,
    /// Pieces stored and committed.
    pub segments_done: u64,
    /// Pieces in all.
    pub segments_total: u64,
    /// Bytes per second over the last seconds.
    pub speed_bps: f64,
    /// Seconds to go at that speed.
    pub eta_secs: Option<f64>,
}

/// Something that happened in the vault.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Download progress.
    Progress(Progress),
    /// An asset changed state.
    State {
        /// The asset.
        id: String,
        /// Its new state.
        state: AssetState,
        /// Why, when it failed.
        failure: Option<FailureReason>,
    },
    /// A download started over from scratch, and why (its source changed).
    Restarted {
        /// The asset.
        id: String,
        /// Why.
        reason: FailureReason,
    },
    /// A stored file failed verification while being read or served (it was modified or
    /// damaged on disk); the read failed and no byte of it reached the player.
    IntegrityFailed {
        /// The asset.
        id: String,
        /// The file (logical name).
        file: String,
    },
    /// An asset was removed.
    Removed {
        /// The asset.
        id: String,
    },
    /// An image of an asset (a VOD cover, snapshot, sprite or thumbnail track) could not be
    /// fetched; the asset completes without it, and resuming the completed asset tries again.
    ImageMissing {
        /// The asset.
        id: String,
        /// What the image is.
        kind: crate::catalog::ImageKind,
        /// Its position among images of its kind (1-based).
        index: u32,
        /// Its logical name.
        file: String,
        /// Why it could not be fetched.
        reason: FailureReason,
    },
}

/// What the refresh hook is asked.
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    /// The asset.
    pub asset_id: String,
    /// Its source URL as last used (the expired one).
    pub source_url: String,
    /// The status that reported the expiry (401, 403 or 410).
    pub status: u16,
    /// The asset's title.
    pub title: Option<String>,
}

/// Supplies a fresh source URL when the current one expires. Return `None` to give up (the
/// asset then fails with [`FailureReason::UrlExpired`]).
pub trait UrlRefresher: Send + Sync {
    /// A fresh URL for the same content.
    fn refresh(&self, request: RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>>;
}

/// Which assets this process downloads.
#[derive(Debug)]
pub(crate) enum Scope {
    /// Everything queued.
    All,
    /// Only these.
    Only(HashSet<String>),
}

/// Shared state of an open vault.
pub(crate) struct Inner {
    pub(crate) layout: Layout,
    pub(crate) catalog: Catalog,
    pub(crate) kek: Kek,
    pub(crate) http: Http,
    pub(crate) config: VaultConfig,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) refresher: RwLock<Option<Arc<dyn UrlRefresher>>>,
    pub(crate) jobs: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    pub(crate) scope: Mutex<Scope>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) closed: AtomicBool,
    /// The loopback playback server, started on first use.
    pub(crate) server: tokio::sync::OnceCell<crate::playback::Server>,
    /// The ApsaraVideo VOD API client.
    pub(crate) vod: VodClient,
}

impl Inner {
    pub(crate) fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    pub(crate) fn emit_state(&self, id: &str, state: AssetState, failure: Option<FailureReason>) {
        self.emit(Event::State { id: id.to_owned(), state, failure });
    }

    /// Queues a paused, failed or cancelled asset again (clearing its failure).
    pub(crate) async fn requeue(&self, id: &str) -> Result<()> {
        let from = [AssetState::Paused, AssetState::Failed, AssetState::Cancelled];
        if self.catalog.transition(id, &from, AssetState::Queued, None).await? {
            self.emit_state(id, AssetState::Queued, None);
        }
        Ok(())
    }

    pub(crate) fn refresher(&self) -> Option<Arc<dyn UrlRefresher>> {
        self.refresher.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// An open vault. Cheap to clone; every clone is the same vault.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.inner.layout.root())
            .field("key_id", &self.inner.kek.key_id())
            .finish()
    }
}

const META_KEY_ID: &str = "key_id";
const META_APP_ID: &str = "app_id";

impl Vault {
    /// Opens (creating and migrating) the vault in `config.dir` with the app's key file.
    ///
    /// Assets that were downloading when the process died are queued again; leftover temporary
    /// files are removed. With `autostart`, queued assets start at once.
    ///
    /// # Errors
    /// [`Error::KeyFile`] for a bad key file or one of another app, [`Error::KeyMismatch`] when
    /// the vault was created with another key file, [`Error::Catalog`] / [`Error::Io`].
    pub async fn open(config: VaultConfig) -> Result<Self> {
        if !config.dir.is_absolute() {
            return Err(Error::InvalidRequest(format!("vault directory must be absolute: {}", config.dir.display())));
        }
        if config.max_parallel_assets == 0 || config.max_parallel_requests == 0 {
            return Err(Error::InvalidRequest("parallelism must be at least 1".into()));
        }
        let key_file = KeyFile::from_bytes(&config.key_file, &config.app_id)?;
        let kek = Kek::derive(&key_file);
        let layout = Layout::new(config.dir.clone());
        layout.create()?;
        let catalog = Catalog::open(&layout.catalog()).await?;
        match catalog.meta(META_KEY_ID).await? {
            None => {
                catalog.set_meta(META_KEY_ID, &kek.key_id().to_string()).await?;
                catalog.set_meta(META_APP_ID, &config.app_id).await?;
            }
            Some(stored) if stored == kek.key_id().to_string() => {}
            Some(stored) => {
                catalog.close().await;
                let vault = KeyId::from_hex(&stored).unwrap_or(KeyId([0; 8]));
                return Err(Error::KeyMismatch { vault, given: kek.key_id() });
            }
        }
        let http = Http::new(&config.http)?;
        let vod = VodClient::new(&http, config.vod.clone(), config.retry.clone());
        let (events, _) = broadcast::channel(1024);
        let scope = if config.autostart { Scope::All } else { Scope::Only(HashSet::new()) };
        let inner = Arc::new(Inner {
            layout,
            catalog,
            kek,
            http,
            config,
            events,
            refresher: RwLock::new(None),
            jobs: Mutex::new(HashMap::new()),
            scope: Mutex::new(scope),
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            server: tokio::sync::OnceCell::new(),
            vod,
        });
        // Process death: whatever was downloading is queued again (a process still downloading
        // it holds its lock, and keeps going).
        for id in inner.catalog.ids_in_state(AssetState::Downloading).await? {
            if !download::is_locked_elsewhere(&inner, &id) {
                inner.catalog.transition(&id, &[AssetState::Downloading], AssetState::Queued, None).await?;
            }
        }
        // Directories of assets whose rows were deleted (a crash during `remove`). Rows always
        // exist before an asset's first file is written, so a directory without one is garbage.
        let known: HashSet<String> = inner.catalog.assets().await?.into_iter().map(|a| a.id).collect();
        if let Ok(entries) = std::fs::read_dir(inner.layout.root().join("assets")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) && !download::is_locked_elsewhere(&inner, &name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        for id in inner.catalog.ids_in_state(AssetState::Queued).await? {
            if !download::is_locked_elsewhere(&inner, &id) {
                store::remove_temp_files(&inner.layout.asset_dir(&id));
            }
        }
        store::ensure_reserve(&inner.layout);
        tokio::spawn(scheduler(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Moves a closed vault from one key file to another (key rotation): every asset's content
    /// key and stored headers are re-wrapped under the new key file, in one transaction; no media
    /// file is touched. Open it with the new key file afterwards. Returns the new key id.
    ///
    /// # Errors
    /// [`Error::KeyFile`] for either key file, [`Error::KeyMismatch`] when `old_key_file` is not
    /// the vault's key file, [`Error::Key`] when a stored key does not open (nothing is changed).
    pub async fn rotate_key_file(
        dir: &std::path::Path,
        app_id: &str,
        old_key_file: &[u8],
        new_key_file: &[u8],
    ) -> Result<KeyId> {
        let old = Kek::derive(&KeyFile::from_bytes(old_key_file, app_id)?);
        let new = Kek::derive(&KeyFile::from_bytes(new_key_file, app_id)?);
        let catalog = Catalog::open(&Layout::new(dir.to_owned()).catalog()).await?;
        let result = async {
            match catalog.meta(META_KEY_ID).await? {
                Some(stored) if stored == old.key_id().to_string() => {}
                stored => {
                    let vault = stored.as_deref().and_then(KeyId::from_hex).unwrap_or(KeyId([0; 8]));
                    return Err(Error::KeyMismatch { vault, given: old.key_id() });
                }
            }
            let mut updates = Vec::new();
            for a in catalog.assets().await? {
                let wrapped = match &a.wrapped_key {
                    Some(w) => {
                        Some(WrappedKey::from_bytes(w)?.rewrap(&old, &new, a.id.as_bytes())?.as_bytes().to_vec())
                    }
                    None => None,
                };
                let headers = match &a.headers {
                    Some(h) => Some(new.seal_blob(a.id.as_bytes(), &old.open_blob(a.id.as_bytes(), h)?)?),
                    None => None,
                };
                updates.push(crate::catalog::Rekeyed { id: a.id, wrapped_key: wrapped, headers });
            }
            catalog.rekey(&updates, &new.key_id().to_string()).await?;
            Ok(new.key_id())
        }
        .await;
        catalog.close().await;
        result
    }

    /// The key id of the key file the vault belongs to.
    pub fn key_id(&self) -> KeyId {
        self.inner.kek.key_id()
    }

    /// The vault directory.
    pub fn dir(&self) -> &std::path::Path {
        self.inner.layout.root()
    }

    /// Receives every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Sets (or clears) the hook that supplies fresh URLs when signed ones expire.
    pub fn set_refresher(&self, refresher: Option<Arc<dyn UrlRefresher>>) {
        *self.inner.refresher.write().unwrap_or_else(PoisonError::into_inner) = refresher;
    }

    /// Sets (or removes) the source of ApsaraVideo VOD credentials (STS tokens from the app's
    /// server, typically). The vault asks it when it has none, when VOD refuses them, and when
    /// a download's URLs expire.
    pub fn set_credentials_provider(&self, provider: Option<Arc<dyn CredentialsProvider>>) {
        self.inner.vod.set_provider(provider);
    }

    /// What `url` offers: variants and renditions of an HLS source, size and type of a file, or
    /// the streams of a VOD video (`vod:<VideoId>`).
    ///
    /// # Errors
    /// [`Error::Fetch`], [`Error::Playlist`] (live, unsupported, invalid), [`Error::InvalidRequest`],
    /// [`Error::Vod`].
    pub async fn prepare(&self, url: &str, headers: &[(String, String)]) -> Result<Prepared> {
        match crate::vod::parse_source(url) {
            Some(id) => download::vod::prepare(&self.inner, id).await,
            None => download::prepare(&self.inner, url, headers).await,
        }
    }

    /// The images stored (or to be stored) with an asset: VOD covers, snapshots, sprites and
    /// WebVTT thumbnail tracks.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Catalog`].
    pub async fn images(&self, id: &str) -> Result<Vec<ImageInfo>> {
        self.row(id).await?;
        Ok(self
            .inner
            .catalog
            .images(id)
            .await?
            .into_iter()
            .map(|i| ImageInfo {
                kind: i.kind,
                index: i.idx,
                file: i.file,
                stored: i.done,
                size: i.size,
                missing: i.failure.as_deref().and_then(FailureReason::from_json),
            })
            .collect())
    }

    /// Adds a download to the queue and returns the asset id at once; [`Vault::wait`] for it.
    /// Asking again for an asset that exists returns its id (and queues it again if it is
    /// paused, failed or cancelled); nothing is downloaded twice.
    ///
    /// # Errors
    /// As [`Vault::prepare`], [`Error::AlreadyExists`] when it exists in the other mode,
    /// [`Error::StorageFull`]-like failures are reported on the asset, not here.
    pub async fn download(&self, request: DownloadRequest) -> Result<String> {
        self.ensure_open()?;
        let id = download::create(&self.inner, &request).await?;
        self.start(&id).await?;
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        if let Scope::Only(set) = &mut *self.inner.scope.lock().unwrap_or_else(PoisonError::into_inner) {
            set.insert(id.to_owned());
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) { Err(Error::Closed) } else { Ok(()) }
    }

    async fn row(&self, id: &str) -> Result<AssetRow> {
        self.inner.catalog.asset(id).await?.ok_or_else(|| Error::NotFound(id.to_owned()))
    }

    /// Stops an asset's download in this process, if it runs here, and waits until it has.
    async fn stop_job(&self, id: &str) {
        let handle = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
    }

    /// Pauses a queued or downloading asset. Stored pieces are kept; [`Vault::resume`]
    /// continues. A download running in another process on the same vault stops within a
    /// second.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidState`] if it is not queued or downloading.
    pub async fn pause(&self, id: &str) -> Result<()> {
        let from = [AssetState::Queued, AssetState::Downloading];
        // Mark first: the job, wherever it runs, sees the state and stops. The state may change
        // under us (the download completing or failing at this instant): then say what it is.
        loop {
            let row = self.row(id).await?;
            if row.state == AssetState::Paused {
                return Ok(());
            }
            if !from.contains(&row.state) {
                let (id, state) = (id.to_owned(), row.state);
                return Err(Error::InvalidState { id, state, action: "pause" });
            }
            let catalog = &self.inner.catalog;
            if catalog.transition(id, &from, AssetState::Paused, None).await? {
                break;
            }
        }
        self.stop_job(id).await;
        download::wait_unlocked(&self.inner, id).await;
        store::remove_temp_files(&self.inner.layout.asset_dir(id));
        self.inner.emit_state(id, AssetState::Paused, None);
        Ok(())
    }

    /// Queues a paused, failed or cancelled asset again (a cancelled one starts over). Pieces
    /// already stored are not fetched again. For a completed asset with missing images (see
    /// [`ImageInfo::missing`]), tries those images again and returns when they are stored or
    /// recorded as missing again; the asset stays completed and playable throughout.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidState`] for a completed asset with nothing missing,
    /// [`Error::Busy`] when another process is busy with it.
    pub async fn resume(&self, id: &str) -> Result<()> {
        self.ensure_open()?;
        let row = self.row(id).await?;
        if row.state == AssetState::Completed {
            let missing = self.inner.catalog.images(id).await?.iter().any(|i| !i.done);
            if !missing {
                return Err(Error::InvalidState { id: id.to_owned(), state: row.state, action: "resume" });
            }
            download::retry_images(&self.inner, id).await?;
            return Ok(());
        }
        self.resume_download(id, row.state).await
    }

    /// Queues an asset that is not completed again (if it is not queued already) and starts it.
    async fn resume_download(&self, id: &str, state: AssetState) -> Result<()> {
        if matches!(state, AssetState::Paused | AssetState::Failed | AssetState::Cancelled) {
            self.inner.requeue(id).await?;
        }
        self.start(id).await
    }

    /// Resumes every paused or failed asset (and interrupted ones). Completed assets are left
    /// as they are: [`Vault::resume`] one to try its missing images again.
    ///
    /// # Errors
    /// [`Error::Catalog`].
    pub async fn resume_all(&self) -> Result<Vec<String>> {
        self.ensure_open()?;
        let mut ids = Vec::new();
        for a in self.inner.catalog.assets().await? {
            if matches!(a.state, AssetState::Paused | AssetState::Failed | AssetState::Queued | AssetState::Downloading)
            {
                self.resume_download(&a.id, a.state).await?;
                ids.push(a.id);
            }
        }
        Ok(ids)
    }

    /// Pauses every queued or downloading asset.
    ///
    /// # Errors
    /// [`Error::Catalog`].
    pub async fn pause_all(&self) -> Result<()> {
        for a in self.inner.catalog.assets().await? {
            if matches!(a.state, AssetState::Queued | AssetState::Downloading) {
                self.pause(&a.id).await?;
            }
        }
        Ok(())
    }

    /// Stops an asset for good: deletes its stored pieces, keeps its record as `cancelled`
    /// (resume starts it over). A completed asset cannot be cancelled (remove it).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidState`] for a completed asset.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let row = self.row(id).await?;
        if row.state == AssetState::Completed {
            return Err(Error::InvalidState { id: id.to_owned(), state: row.state, action: "cancel" });
        }
        self.inner.catalog.set_state(id, AssetState::Cancelled, None).await?;
        self.stop_job(id).await;
        download::wait_unlocked(&self.inner, id).await;
        self.inner.catalog.reset_segments(id).await?;
        remove_dir(&self.inner.layout.asset_dir(id))?;
        self.inner.emit_state(id, AssetState::Cancelled, None);
        Ok(())
    }

    /// Deletes an asset: its files and its catalog rows.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn remove(&self, id: &str) -> Result<()> {
        let row = self.row(id).await?;
        if matches!(row.state, AssetState::Queued | AssetState::Downloading) {
            self.inner.catalog.set_state(id, AssetState::Cancelled, None).await?;
        }
        self.stop_job(id).await;
        download::wait_unlocked(&self.inner, id).await;
        // Rows first: a crash in between leaves orphan files (swept when the vault next opens),
        // never a row pointing at deleted files.
        self.inner.catalog.delete_asset(id).await?;
        remove_dir(&self.inner.layout.asset_dir(id))?;
        let _ = std::fs::remove_file(self.inner.layout.lock_file(id));
        self.inner.emit(Event::Removed { id: id.to_owned() });
        Ok(())
    }

    /// Removes every asset.
    ///
    /// # Errors
    /// As [`Vault::remove`].
    pub async fn remove_all(&self) -> Result<()> {
        for a in self.inner.catalog.assets().await? {
            self.remove(&a.id).await?;
        }
        Ok(())
    }

    /// Every asset, oldest first.
    ///
    /// # Errors
    /// [`Error::Catalog`].
    pub async fn assets(&self) -> Result<Vec<AssetInfo>> {
        Ok(self.inner.catalog.assets().await?.iter().map(|r| self.info(r)).collect())
    }

    /// One asset.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Catalog`].
    pub async fn asset(&self, id: &str) -> Result<AssetInfo> {
        Ok(self.info(&self.row(id).await?))
    }

    fn info(&self, r: &AssetRow) -> AssetInfo {
        let dir = self.inner.layout.asset_dir(&r.id);
        let path = match (r.mode, r.state, &r.entry) {
            (Mode::Normal, AssetState::Completed, Some(e)) => Some(dir.join(e)),
            _ => None,
        };
        AssetInfo {
            id: r.id.clone(),
            state: r.state,
            mode: r.mode,
            kind: r.kind,
            title: r.title.clone(),
            metadata: r.metadata.clone(),
            source: crate::identity::redact_str(&r.source_url),
            bytes_done: r.bytes_done,
            bytes_expected: r.bytes_expected,
            expected_exact: r.expected_exact,
            segments_done: r.segments_done,
            segments_total: r.segments_total,
            duration_secs: r.duration_secs,
            key_id: r.key_id.clone(),
            failure: r.failure.as_deref().and_then(FailureReason::from_json),
            dir,
            path,
            created_at: r.created_at,
            completed_at: r.completed_at,
            offline_until: r.offline_until,
            vod: r.vod.as_deref().and_then(download::vod_identity),
        }
    }

    /// Waits until the asset is completed (returning it) or stops otherwise.
    ///
    /// # Errors
    /// [`Error::Failed`] with the reason, [`Error::InvalidState`] when it was paused or
    /// cancelled, [`Error::NotFound`] when it was removed.
    pub async fn wait(&self, id: &str) -> Result<AssetInfo> {
        let mut rx = self.subscribe();
        loop {
            let info = match self.inner.catalog.asset(id).await? {
                Some(r) => self.info(&r),
                None => return Err(Error::NotFound(id.to_owned())),
            };
            match info.state {
                AssetState::Completed => return Ok(info),
                AssetState::Failed => {
                    let reason = info.failure.unwrap_or(FailureReason::Storage { message: "unknown".into() });
                    return Err(Error::Failed(reason));
                }
                AssetState::Paused | AssetState::Cancelled => {
                    return Err(Error::InvalidState { id: id.to_owned(), state: info.state, action: "finish" });
                }
                AssetState::Queued | AssetState::Downloading => {}
            }
            // Events from this process, or a poll for changes made by another.
            let deadline = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    ev = rx.recv() => match ev {
                        // The event itself is authoritative: its state may not have reached the
                        // catalog (a full disk).
                        Ok(Event::State { id: eid, state, failure }) if eid == id => match state {
                            AssetState::Failed => {
                                return Err(Error::Failed(failure.unwrap_or(FailureReason::Storage { message: "unknown".into() })));
                            }
                            AssetState::Paused | AssetState::Cancelled => {
                                return Err(Error::InvalidState { id: id.to_owned(), state, action: "finish" });
                            }
                            _ => break,
                        },
                        Ok(Event::Removed { id: eid }) if eid == id => return Err(Error::NotFound(id.to_owned())),
                        Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Serves a completed asset to players: starts the vault's loopback server (127.0.0.1, an
    /// ephemeral port) if needed and returns a session whose URL any player opens. The URL stops
    /// working when the session is closed or dropped.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::NotPlayable`] (not completed), [`Error::Expired`] (its
    /// offline period is over), [`Error::KeyMismatch`]-like key errors, [`Error::Io`].
    pub async fn play(&self, id: &str) -> Result<crate::playback::PlaybackSession> {
        self.play_on_port(id, 0).await
    }

    /// As [`Vault::play`], binding the server to `port` if it is not running yet (0 = any).
    ///
    /// # Errors
    /// As [`Vault::play`]; [`Error::Io`] if the port is taken.
    pub async fn play_on_port(&self, id: &str, port: u16) -> Result<crate::playback::PlaybackSession> {
        let view = crate::playback::AssetView::load(&self.inner, id).await?;
        let events = self.inner.events.clone();
        let server = self.inner.server.get_or_try_init(|| crate::playback::Server::start(port, events)).await?;
        server.open(view)
    }

    /// The logical names of every stored file of a completed asset (its playlists and pieces,
    /// or its one file), for [`Vault::open_reader`].
    ///
    /// # Errors
    /// As [`Vault::play`].
    pub async fn files(&self, id: &str) -> Result<Vec<String>> {
        let view = crate::playback::AssetView::load(&self.inner, id).await?;
        let mut files: Vec<String> = view.files.into_iter().collect();
        files.sort();
        Ok(files)
    }

    /// Opens one stored file of a completed asset for random access (decrypting and verifying
    /// only what each read touches).
    ///
    /// # Errors
    /// As [`Vault::play`]; [`Error::NotFound`] for a name outside the asset;
    /// [`Error::Integrity`] if the file's header or last chunk fails verification.
    pub async fn open_reader(&self, id: &str, name: &str) -> Result<crate::playback::AssetReader> {
        let view = crate::playback::AssetView::load(&self.inner, id).await?;
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || view.open(&name)).await.map_err(|e| Error::Io(std::io::Error::other(e)))?
    }

    /// Checks every stored file of a completed asset: every chunk of every sealed file, or every
    /// plain piece against the SHA-256 recorded when it was stored. Returns the files that fail,
    /// in name order (empty: all verified).
    ///
    /// # Errors
    /// As [`Vault::play`], except that an expired asset is still verified.
    pub async fn verify(&self, id: &str) -> Result<Vec<String>> {
        let view = match crate::playback::AssetView::load(&self.inner, id).await {
            Err(Error::Expired { .. }) => {
                // Verifying is not playing: look past the expiry.
                let until = self.inner.catalog.asset(id).await?.and_then(|a| a.offline_until);
                self.inner.catalog.set_offline_until(id, None).await?;
                let v = crate::playback::AssetView::load(&self.inner, id).await;
                self.inner.catalog.set_offline_until(id, until).await?;
                v?
            }
            other => other?,
        };
        let mut digests: HashMap<String, String> =
            self.inner.catalog.segments(id).await?.into_iter().filter_map(|s| s.sha256.map(|d| (s.file, d))).collect();
        digests.extend(self.inner.catalog.images(id).await?.into_iter().filter_map(|i| i.sha256.map(|d| (i.file, d))));
        tokio::task::spawn_blocking(move || crate::playback::verify_files(&view, &digests))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))
    }

    /// Sets (or with `None` removes) the time until which an asset may be played offline.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Catalog`].
    pub async fn set_offline_until(&self, id: &str, until: Option<i64>) -> Result<()> {
        self.row(id).await?;
        Ok(self.inner.catalog.set_offline_until(id, until).await?)
    }

    /// Stops downloads running in this process (they stay queued and continue next time the
    /// vault opens) and closes the catalog.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let handles: Vec<_> = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        for (id, h) in handles {
            h.abort();
            let _ = h.await;
            let _ = self.inner.catalog.transition(&id, &[AssetState::Downloading], AssetState::Queued, None).await;
        }
        self.inner.wake.notify_one();
        self.inner.catalog.close().await;
    }
}

fn remove_dir(dir: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Starts queued assets while there are free slots; wakes on demand and once a second (for
/// changes made by other processes).
async fn scheduler(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(queued) = inner.catalog.ids_in_state(AssetState::Queued).await {
            let mut jobs = inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.retain(|_, h| !h.is_finished());
            let scope = inner.scope.lock().unwrap_or_else(PoisonError::into_inner);
            for id in queued {
                if jobs.len() >= inner.config.max_parallel_assets {
                    break;
                }
                let wanted = match &*scope {
                    Scope::All => true,
                    Scope::Only(set) => set.contains(&id),
                };
                if wanted && !jobs.contains_key(&id) {
                    let handle = tokio::spawn(download::run_job(Arc::clone(&inner), id.clone()));
                    jobs.insert(id, handle);
                }
            }
        }
        // Wait without keeping the vault alive: a permit stored by `notify_one` is not lost.
        let wake = Arc::clone(&inner.wake);
        drop(inner);
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
    }
}
