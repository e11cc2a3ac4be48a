//! The vault: a folder, its catalog, the download queue and the playback server, behind one
//! facade. Nothing imports this module.
//!
//! This file is long because it is the whole API an app calls, one documented method per
//! operation and its configuration; the work is done in the modules below it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use zeroize::Zeroizing;

use crate::Result;
use crate::catalog::{AssetRow, Catalog};
use crate::engine::{self, Deps, Refresher, Settings};
use crate::error::{Error, VaultError};
use crate::events::Events;
use crate::fetch::{Http, HttpConfig, RetryPolicy};
use crate::keyfile::{KeyFile, KeyId};
use crate::keys::{Kek, WrappedKey};
use crate::model::{
    AssetInfo, AssetState, Conditions, DownloadRequest, Event, FailureReason, ImageInfo, Mode, Prepared, Preview,
    Requirements, SpaceCheck, UrlRefresher,
};
use crate::playback::{Access, AssetReader, AssetView, Expiry, IntegritySink, PlaybackSession, Server, verify_files};
use crate::scheduler::{Gate, Scheduler};
use crate::seal::DEFAULT_CHUNK_SIZE;
use crate::source::vod::VodState;
use crate::source::{self, Source};
use crate::store::{self, Layout};
use crate::vod::{CredentialsProvider, VodClient, VodConfig};

/// How to open a vault.
#[derive(Clone)]
pub struct VaultConfig {
    /// The vault directory (absolute; created if missing).
    pub dir: PathBuf,
    /// The app's key file, as bytes.
    pub key_file: Zeroizing<Vec<u8>>,
    /// The app id the key file must be bound to.
    pub app_id: String,
    /// The SHA-256 (hex, colons allowed) of the certificate the running app is signed with:
    /// on Android from `PackageManager` (`GET_SIGNING_CERTIFICATES`); iOS passes none (the
    /// bundle id binds the key file). A key file bound to signing certificates opens only with
    /// one of them; one bound to none opens whatever this says.
    pub signing_cert_sha256: Option<String>,
    /// A cap on the bytes per second all downloads together fetch (`None`: none), shared evenly
    /// between their connections; [`Vault::set_max_rate`] changes it while the vault runs. What a player
    /// waits for from a paused asset is not held to it.
    pub max_rate: Option<u64>,
    /// What the device is like when the vault opens (network, power); until
    /// [`Vault::set_conditions`] says otherwise. The default holds nothing back (unmetered,
    /// charging): an app with requirements passes what it knows here, so that no queued
    /// download starts before it has said so.
    pub conditions: Conditions,
    /// What downloads require of the device (Wi-Fi only, charging, battery, free space kept);
    /// a download's own requirements replace these, free space kept included. Default: nothing
    /// but keeping 5% of the volume free, at least 200 MiB and at most 1 GiB.
    pub requirements: Requirements,
    /// Bytes the vault's assets may store in all (`None`: no quota). A download that would go
    /// past it is refused with [`VaultError::QuotaExceeded`]; one that reaches it midway (its
    /// size was an estimate) waits as `waiting_for_storage`.
    pub quota: Option<u64>,
    /// Remove assets whose offline period is over (past `offline_until`) by themselves: when
    /// the vault opens, and before a download is checked against the space and the quota.
    /// Off by default ([`Vault::evict_expired`] does it on request).
    pub evict_expired: bool,
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
    /// A progressive download on one connection makes its progress durable (a resume point)
    /// every this many bytes.
    pub checkpoint_bytes: u64,
    /// A progressive file is fetched in byte-range pieces of this many bytes (rounded down to
    /// whole chunks), up to `max_parallel_requests` at once, when its origin answers ranges with
    /// a validator; 0 fetches every file on one connection.
    pub piece_bytes: u64,
    /// Where the ApsaraVideo VOD API is (for `vod:` sources); credentials come from
    /// [`Vault::set_credentials_provider`].
    pub vod: VodConfig,
    /// How long the refresh hook ([`Vault::set_refresher`]) may take to answer; one that takes
    /// longer counts as giving no URL (the asset fails with `UrlExpired`, resumable).
    pub refresh_timeout: Duration,
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("dir", &self.dir)
            .field("key_file", &format_args!("({} bytes)", self.key_file.len()))
            .field("app_id", &self.app_id)
            .field("signing_cert_sha256", &self.signing_cert_sha256)
            .field("conditions", &self.conditions)
            .field("requirements", &self.requirements)
            .field("quota", &self.quota)
            .field("evict_expired", &self.evict_expired)
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
            signing_cert_sha256: None,
            max_rate: None,
            conditions: Conditions::default(),
            requirements: Requirements::default(),
            quota: None,
            evict_expired: false,
            max_parallel_assets: 3,
            max_parallel_requests: 6,
            default_headers: Vec::new(),
            http: HttpConfig::default(),
            retry: RetryPolicy::default(),
            autostart: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            checkpoint_bytes: 8 << 20,
            piece_bytes: 4 << 20,
            vod: VodConfig::default(),
            refresh_timeout: Duration::from_secs(60),
        }
    }
}

/// Shared state of an open vault: what the engine needs, the queue, and the playback server.
struct Inner {
    deps: Arc<Deps>,
    scheduler: Scheduler,
    /// The loopback playback server, started on first use.
    server: tokio::sync::OnceCell<Server>,
    closed: AtomicBool,
    /// [`VaultConfig::evict_expired`].
    evict_expired: bool,
}

impl Inner {
    fn catalog(&self) -> &Catalog {
        &self.deps.catalog
    }

    fn layout(&self) -> &Layout {
        &self.deps.layout
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
            .field("dir", &self.inner.layout().root())
            .field("key_id", &self.inner.deps.kek.key_id())
            .finish()
    }
}

/// The time range a stored request asked for (read only from requests that name one).
fn stored_range(request: &str) -> Option<crate::model::TimeRange> {
    #[derive(serde::Deserialize)]
    struct WithRange {
        range: Option<crate::model::TimeRange>,
    }
    if !request.contains("\"range\"") {
        return None;
    }
    serde_json::from_str::<WithRange>(request).ok()?.range
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
    /// [`VaultError::InvalidKeyFile`] for a bad key file or one of another app,
    /// [`VaultError::SignerMismatch`] when the key file is bound to signing certificates and
    /// `signing_cert_sha256` is not one of them,
    /// [`VaultError::KeyMismatch`] when the vault was created with another key file,
    /// [`VaultError::InvalidRequest`] for a relative directory or a bad configuration,
    /// [`VaultError::Storage`].
    pub async fn open(config: VaultConfig) -> Result<Self> {
        if !config.dir.is_absolute() {
            return Err(
                Error::InvalidRequest(format!("vault directory must be absolute: {}", config.dir.display())).into()
            );
        }
        if config.max_parallel_assets == 0 || config.max_parallel_requests == 0 {
            return Err(Error::InvalidRequest("parallelism must be at least 1".into()).into());
        }
        let key_file = KeyFile::from_bytes(&config.key_file, &config.app_id)?;
        key_file.check_signer(config.signing_cert_sha256.as_deref())?;
        let kek = Kek::derive(&key_file);
        let layout = Layout::new(config.dir.clone());
        let dirs = layout.clone();
        blocking(move || dirs.create()).await??;
        let catalog = Catalog::open(&layout.catalog()).await?;
        match catalog.meta(META_KEY_ID).await? {
            None => {
                catalog.set_meta(META_KEY_ID, &kek.key_id().to_string()).await?;
                catalog.set_meta(META_APP_ID, &config.app_id).await?;
            }
            Some(stored) if stored == kek.key_id().to_string() => {}
            Some(stored) => {
                catalog.close().await;
                let vault = KeyId::from_hex(&stored).ok_or_else(|| Error::Damaged(format!("its key id {stored:?}")))?;
                return Err(Error::KeyMismatch { vault, given: kek.key_id() }.into());
            }
        }
        let http = Http::new(&config.http).map_err(|e| Error::InvalidRequest(format!("HTTP configuration: {e}")))?;
        http.rate_limit().set(config.max_rate.filter(|r| *r > 0));
        let vod = VodClient::new(&http, config.vod.clone(), config.retry.clone());
        let source = Source { http, retry: config.retry.clone(), default_headers: config.default_headers.clone(), vod };
        let settings = Settings {
            chunk_size: config.chunk_size,
            checkpoint_bytes: config.checkpoint_bytes,
            piece_bytes: config.piece_bytes,
            max_parallel_requests: config.max_parallel_requests,
            refresh_timeout: config.refresh_timeout,
        };
        let deps = Arc::new(Deps {
            catalog: Arc::new(catalog),
            layout,
            kek: Arc::new(kek),
            source,
            settings,
            events: Events::new(),
            refresher: Refresher::default(),
            live: Arc::default(),
        });
        recover(&deps).await?;
        let scheduler = Scheduler::start(
            Arc::clone(&deps),
            config.max_parallel_assets,
            config.autostart,
            Gate { conditions: config.conditions, requirements: config.requirements, quota: config.quota },
        );
        let inner = Inner {
            deps,
            scheduler,
            server: tokio::sync::OnceCell::new(),
            closed: AtomicBool::new(false),
            evict_expired: config.evict_expired,
        };
        let vault = Self { inner: Arc::new(inner) };
        if config.evict_expired
            && let Err(e) = vault.evict_expired().await
        {
            tracing::warn!("evicting expired assets: {e}");
        }
        Ok(vault)
    }

    /// Moves a closed vault from one key file to another (key rotation): every asset's content
    /// key and stored headers are re-wrapped under the new key file, in one transaction; no media
    /// file is touched. Open it with the new key file afterwards. Returns the new key id.
    ///
    /// # Errors
    /// [`VaultError::InvalidKeyFile`] for either key file, [`VaultError::KeyMismatch`] when
    /// `old_key_file` is not the vault's key file, [`VaultError::Storage`] when a stored key does
    /// not open (nothing is changed).
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
                Some(stored) => {
                    let vault =
                        KeyId::from_hex(&stored).ok_or_else(|| Error::Damaged(format!("its key id {stored:?}")))?;
                    return Err(Error::KeyMismatch { vault, given: old.key_id() });
                }
                None => return Err(Error::InvalidRequest(format!("{} is not a vault", dir.display()))),
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
        Ok(result?)
    }

    /// The key id of the key file the vault belongs to.
    pub fn key_id(&self) -> KeyId {
        self.inner.deps.kek.key_id()
    }

    /// The vault directory.
    pub fn dir(&self) -> &std::path::Path {
        self.inner.layout().root()
    }

    /// Receives every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.deps.events.subscribe()
    }

    /// Caps the bytes per second all downloads together fetch (`None` or 0: no cap), from the
    /// next chunk of every running download on.
    pub fn set_max_rate(&self, bytes_per_sec: Option<u64>) {
        self.inner.deps.source.http.rate_limit().set(bytes_per_sec.filter(|r| *r > 0));
    }

    /// The cap on bytes per second, if any.
    pub fn max_rate(&self) -> Option<u64> {
        self.inner.deps.source.http.rate_limit().get()
    }

    /// Tells the vault what the device is like now (network, charging, battery: all three;
    /// [`Vault::set_network`] and [`Vault::set_power`] change one part). Downloads
    /// whose requirements these do not meet stop taking pieces at once (those under way get
    /// 0.7 s to finish, then are aborted) and wait in a `waiting_for_*` state; those they now
    /// allow start again by themselves. Nothing stored is lost.
    pub fn set_conditions(&self, conditions: Conditions) {
        self.inner.scheduler.set_gate(|g| g.conditions = conditions);
    }

    /// Changes only the network of the conditions (for an app whose network and battery news
    /// come from separate callbacks).
    pub fn set_network(&self, network: crate::model::Network) {
        self.inner.scheduler.set_gate(|g| g.conditions.network = network);
    }

    /// Changes only the power part of the conditions: charging, and whether the battery is low.
    pub fn set_power(&self, charging: bool, battery_low: bool) {
        self.inner.scheduler.set_gate(|g| {
            g.conditions.charging = charging;
            g.conditions.battery_low = battery_low;
        });
    }

    /// What the vault was last told about the device.
    pub fn conditions(&self) -> Conditions {
        self.inner.scheduler.gate().conditions
    }

    /// Changes what downloads require of the device (those with their own requirements keep
    /// them), applied at once as [`Vault::set_conditions`] is.
    pub fn set_requirements(&self, requirements: Requirements) {
        self.inner.scheduler.set_gate(|g| g.requirements = requirements);
    }

    /// Changes what one download requires of the device (`None`: the vault's requirements),
    /// applied at once as [`Vault::set_conditions`] is. Asking for a download again with other
    /// requirements does not change them; this does.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Storage`].
    pub async fn set_download_requirements(&self, id: &str, requirements: Option<Requirements>) -> Result<()> {
        self.ensure_open()?;
        let row = self.row(id).await?;
        let mut value: serde_json::Value =
            serde_json::from_str(&row.request).map_err(|e| VaultError::storage("the stored request", &e))?;
        value["requirements"] = serde_json::to_value(requirements).unwrap_or_default();
        self.inner.catalog().set_request(id, &value.to_string()).await?;
        self.inner.scheduler.requirements_changed(id);
        Ok(())
    }

    /// What downloads require of the device (unless a download says otherwise).
    pub fn requirements(&self) -> Requirements {
        self.inner.scheduler.gate().requirements
    }

    /// Sets (or removes) the vault's quota in bytes, applied at once.
    pub fn set_quota(&self, quota: Option<u64>) {
        self.inner.scheduler.set_gate(|g| g.quota = quota);
    }

    /// The vault's quota in bytes, if any.
    pub fn quota(&self) -> Option<u64> {
        self.inner.scheduler.gate().quota
    }

    /// Sets (or clears) the hook that supplies fresh URLs when signed ones expire.
    pub fn set_refresher(&self, refresher: Option<Arc<dyn UrlRefresher>>) {
        self.inner.deps.refresher.set(refresher);
    }

    /// Sets (or removes) the source of ApsaraVideo VOD credentials (STS tokens from the app's
    /// server, typically). The vault asks it when it has none, when VOD refuses them, and when
    /// a download's URLs expire.
    pub fn set_credentials_provider(&self, provider: Option<Arc<dyn CredentialsProvider>>) {
        self.inner.deps.source.vod.set_provider(provider);
    }

    /// What `url` offers: variants and renditions of an HLS source, size and type of a file, or
    /// the streams of a VOD video (`vod:<VideoId>`).
    ///
    /// # Errors
    /// [`VaultError::HttpStatus`], [`VaultError::Network`], [`VaultError::UrlExpired`],
    /// [`VaultError::BadSource`], [`VaultError::UnsupportedSource`] (live, DRM, DASH, …),
    /// [`VaultError::InvalidRequest`], and for VOD [`VaultError::Credentials`] and
    /// [`VaultError::VodApi`].
    pub async fn prepare(&self, url: &str, headers: &[(String, String)]) -> Result<Prepared> {
        self.ensure_open()?;
        match crate::model::parse_vod_source(url) {
            Some(id) => Ok(source::vod::prepare(&self.inner.deps.source, id).await?),
            None => Ok(source::prepare(&self.inner.deps.source, url, headers).await?),
        }
    }

    /// The images stored (or to be stored) with an asset: VOD covers, snapshots, sprites and
    /// WebVTT thumbnail tracks.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Storage`].
    pub async fn images(&self, id: &str) -> Result<Vec<ImageInfo>> {
        self.ensure_open()?;
        self.row(id).await?;
        Ok(self
            .inner
            .catalog()
            .images(id)
            .await?
            .into_iter()
            .map(|i| ImageInfo {
                kind: i.kind,
                index: i.idx,
                file: i.file,
                stored: i.done,
                size: i.size,
                missing: i.failure.as_deref().map(FailureReason::from_json),
            })
            .collect())
    }

    /// What downloading `request` would take (its size, or an estimate) against the space
    /// downloads may use (free space less what they keep free) and the vault's quota, without
    /// storing anything: what [`Vault::download`] checks before it creates an asset.
    ///
    /// # Errors
    /// As [`Vault::prepare`].
    pub async fn check_space(&self, request: &DownloadRequest) -> Result<SpaceCheck> {
        Ok(self.preview(request).await?.space)
    }

    /// What downloading `request` would store, without storing anything: the tracks its
    /// quality, choices and [`crate::TrackRules`] pick (after its time range), and
    /// [`Vault::check_space`]'s answer.
    ///
    /// # Errors
    /// As [`Vault::prepare`], and [`VaultError::InvalidRequest`] when the rules accept nothing.
    pub async fn preview(&self, request: &DownloadRequest) -> Result<Preview> {
        self.ensure_open()?;
        if self.inner.evict_expired {
            self.evict_expired().await?;
        }
        let scheduler = &self.inner.scheduler;
        Ok(engine::preview(&self.inner.deps, request, |own| scheduler.limits(own)).await?)
    }

    /// Adds a download to the queue and returns the asset id at once; [`Vault::wait`] for it.
    /// Asking again for an asset that exists returns its id (and queues it again if it is
    /// paused, failed or cancelled); nothing is downloaded twice.
    ///
    /// A new download whose size (or estimate and 5%) does not fit in the space downloads may
    /// use, or in the vault's quota, is refused before anything is stored; one that runs short
    /// of space midway waits (`waiting_for_storage`) or, if the disk fills up, fails with
    /// `storage_full`, keeping what it stored.
    ///
    /// # Errors
    /// As [`Vault::prepare`], [`VaultError::AlreadyExists`] when it exists in the other mode,
    /// [`VaultError::StorageFull`] (needed, available) and [`VaultError::QuotaExceeded`] (needed,
    /// used, quota) when it does not fit; failures of the download itself are reported on the
    /// asset, not here.
    pub async fn download(&self, request: DownloadRequest) -> Result<String> {
        self.ensure_open()?;
        if self.inner.evict_expired {
            self.evict_expired().await?;
        }
        let scheduler = &self.inner.scheduler;
        let id = engine::create(&self.inner.deps, &request, |own| scheduler.limits(own)).await?;
        self.start(&id).await?;
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.inner.scheduler.want(id);
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) { Err(Error::Closed.into()) } else { Ok(()) }
    }

    async fn row(&self, id: &str) -> Result<AssetRow> {
        self.inner.catalog().asset(id).await?.ok_or_else(|| VaultError::NotFound { id: id.to_owned() })
    }

    /// Stops an asset's download in this process, if it runs here, and waits until it has.
    async fn stop_job(&self, id: &str) {
        self.inner.scheduler.stop(id).await;
    }

    /// Pauses a queued or downloading asset. Stored pieces are kept; [`Vault::resume`]
    /// continues. A download running in another process on the same vault stops within a
    /// second.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::InvalidState`] if it is not queued or downloading,
    /// [`VaultError::Busy`] when a job (here or in another process) does not let go of it.
    pub async fn pause(&self, id: &str) -> Result<()> {
        self.ensure_open()?;
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
                return Err(Error::InvalidState { id, state, action: "pause" }.into());
            }
            let catalog = self.inner.catalog();
            if catalog.transition(id, &from, AssetState::Paused, None).await? {
                break;
            }
        }
        self.stop_job(id).await;
        engine::wait_unlocked(&self.inner.deps, id).await?;
        let dir = self.inner.layout().asset_dir(id);
        blocking(move || store::remove_temp_files(&dir)).await?;
        self.inner.deps.events.state(id, AssetState::Paused, None);
        Ok(())
    }

    /// Queues a paused, failed or cancelled asset again (a cancelled one starts over). Pieces
    /// already stored are not fetched again. For a completed asset with missing images (see
    /// [`ImageInfo::missing`]), tries those images again and returns when they are stored or
    /// recorded as missing again; the asset stays completed and playable throughout.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::InvalidState`] for a completed asset with nothing
    /// missing, [`VaultError::Busy`] when another process is busy with it.
    pub async fn resume(&self, id: &str) -> Result<()> {
        self.ensure_open()?;
        let row = self.row(id).await?;
        if row.state == AssetState::Completed {
            let missing = self.inner.catalog().images(id).await?.iter().any(|i| !i.done);
            if !missing {
                return Err(Error::InvalidState { id: id.to_owned(), state: row.state, action: "resume" }.into());
            }
            engine::retry_images(&self.inner.deps, id).await?;
            return Ok(());
        }
        self.resume_download(id, row.state).await
    }

    /// Queues an asset that is not completed again (if it is not queued already) and starts it.
    async fn resume_download(&self, id: &str, state: AssetState) -> Result<()> {
        if matches!(state, AssetState::Paused | AssetState::Failed | AssetState::Cancelled) {
            engine::requeue(&self.inner.deps, id).await?;
        }
        self.start(id).await
    }

    /// Resumes every paused or failed asset (and interrupted ones). Completed assets are left
    /// as they are: [`Vault::resume`] one to try its missing images again.
    ///
    /// # Errors
    /// [`VaultError::Storage`].
    pub async fn resume_all(&self) -> Result<Vec<String>> {
        self.ensure_open()?;
        let mut ids = Vec::new();
        for a in self.inner.catalog().assets().await? {
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
    /// [`VaultError::Storage`].
    pub async fn pause_all(&self) -> Result<()> {
        self.ensure_open()?;
        for a in self.inner.catalog().assets().await? {
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
    /// [`VaultError::NotFound`], [`VaultError::InvalidState`] for a completed asset,
    /// [`VaultError::Busy`] when a job (here or in another process) does not let go of it.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.ensure_open()?;
        // One conditional change: a download completing at this instant is not cancelled.
        let from = [AssetState::Queued, AssetState::Downloading, AssetState::Paused, AssetState::Failed];
        let from = [&from[..], &[AssetState::Cancelled]].concat();
        if !self.inner.catalog().transition(id, &from, AssetState::Cancelled, None).await? {
            let state = self.row(id).await?.state;
            return Err(Error::InvalidState { id: id.to_owned(), state, action: "cancel" }.into());
        }
        self.stop_job(id).await;
        engine::wait_unlocked(&self.inner.deps, id).await?;
        self.inner.catalog().reset_segments(id).await?;
        remove_dir(self.inner.layout().asset_dir(id)).await?;
        self.inner.deps.events.state(id, AssetState::Cancelled, None);
        Ok(())
    }

    /// Deletes an asset: its files and its catalog rows.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Busy`] as for [`Vault::cancel`].
    pub async fn remove(&self, id: &str) -> Result<()> {
        self.ensure_open()?;
        self.row(id).await?;
        // A job that sees this stops (here or in another process).
        let running = [AssetState::Queued, AssetState::Downloading];
        self.inner.catalog().transition(id, &running, AssetState::Cancelled, None).await?;
        self.stop_job(id).await;
        engine::wait_unlocked(&self.inner.deps, id).await?;
        // Rows first: a crash in between leaves orphan files (swept when the vault next opens),
        // never a row pointing at deleted files.
        self.inner.catalog().delete_asset(id).await?;
        remove_dir(self.inner.layout().asset_dir(id)).await?;
        let lock = self.inner.layout().lock_file(id);
        blocking(move || std::fs::remove_file(lock)).await?.ok();
        self.inner.deps.events.emit(Event::Removed { id: id.to_owned() });
        Ok(())
    }

    /// Removes every asset whose offline period is over (`offline_until` in the past), as
    /// [`Vault::remove`] does, and returns the ids removed. Best effort: one that cannot be
    /// removed now (another process holds it) is logged and stays for next time.
    ///
    /// # Errors
    /// [`VaultError::Closed`], [`VaultError::Storage`] when the catalog cannot be read.
    pub async fn evict_expired(&self) -> Result<Vec<String>> {
        self.ensure_open()?;
        let ids = self.inner.catalog().ids_expired(crate::clock::now_ms()).await?;
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            // Best effort: one that another process holds (busy) stays for next time.
            match self.remove(&id).await {
                Ok(()) => {
                    tracing::debug!(asset = %id, "evicted: its offline period is over");
                    removed.push(id);
                }
                Err(VaultError::NotFound { .. }) => {}
                Err(VaultError::Closed) => return Err(VaultError::Closed),
                Err(e) => tracing::warn!(asset = %id, "could not evict an expired asset: {e}"),
            }
        }
        Ok(removed)
    }

    /// Removes every asset.
    ///
    /// # Errors
    /// As [`Vault::remove`].
    pub async fn remove_all(&self) -> Result<()> {
        self.ensure_open()?;
        for a in self.inner.catalog().assets().await? {
            self.remove(&a.id).await?;
        }
        Ok(())
    }

    /// Every asset, oldest first.
    ///
    /// # Errors
    /// [`VaultError::Storage`].
    pub async fn assets(&self) -> Result<Vec<AssetInfo>> {
        self.ensure_open()?;
        Ok(self.inner.catalog().listing().await?.iter().map(|r| self.info(r)).collect())
    }

    /// One asset.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Storage`].
    pub async fn asset(&self, id: &str) -> Result<AssetInfo> {
        self.ensure_open()?;
        Ok(self.info(&self.row(id).await?))
    }

    fn info(&self, r: &AssetRow) -> AssetInfo {
        let dir = self.inner.layout().asset_dir(&r.id);
        let path = match (r.mode, r.state, &r.entry) {
            (Mode::Normal, AssetState::Completed, Some(e)) => Some(dir.join(e)),
            _ => None,
        };
        // A queued download held back is reported with why it waits.
        let state = match r.state {
            AssetState::Queued | AssetState::Downloading => {
                self.inner.scheduler.waiting(&r.id).map_or(r.state, |w| w.state())
            }
            other => other,
        };
        AssetInfo {
            id: r.id.clone(),
            state,
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
            failure: r.failure.as_deref().map(FailureReason::from_json),
            dir,
            path,
            created_at: r.created_at,
            completed_at: r.completed_at,
            offline_until: r.offline_until,
            vod: r.vod.as_deref().and_then(VodState::from_json).map(VodState::app_identity),
            range: stored_range(&r.request),
        }
    }

    /// Waits until the asset is completed (returning it) or stops otherwise.
    ///
    /// # Errors
    /// [`VaultError::Failed`] with the reason, [`VaultError::InvalidState`] when it was paused or
    /// cancelled, [`VaultError::NotFound`] when it was removed, [`VaultError::Closed`] when the
    /// vault closes.
    pub async fn wait(&self, id: &str) -> Result<AssetInfo> {
        self.ensure_open()?;
        let mut rx = self.subscribe();
        loop {
            // Closed meanwhile: say so (not what the closed catalog says).
            self.ensure_open()?;
            let row = self.inner.catalog().asset(id).await;
            self.ensure_open()?;
            let info = match row? {
                Some(r) => self.info(&r),
                None => return Err(Error::NotFound(id.to_owned()).into()),
            };
            match info.state {
                AssetState::Completed => return Ok(info),
                AssetState::Failed => {
                    return Err(failed(id, info.failure));
                }
                AssetState::Paused | AssetState::Cancelled => {
                    return Err(Error::InvalidState { id: id.to_owned(), state: info.state, action: "finish" }.into());
                }
                AssetState::Queued
                | AssetState::Downloading
                | AssetState::WaitingForNetwork
                | AssetState::WaitingForUnmetered
                | AssetState::WaitingForCharging
                | AssetState::WaitingForBattery
                | AssetState::WaitingForStorage => {}
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
                                return Err(failed(id, failure));
                            }
                            AssetState::Paused | AssetState::Cancelled => {
                                return Err(Error::InvalidState { id: id.to_owned(), state, action: "finish" }.into());
                            }
                            _ => break,
                        },
                        Ok(Event::Removed { id: eid }) if eid == id => return Err(Error::NotFound(id.to_owned()).into()),
                        Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed.into()),
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
    /// [`VaultError::NotFound`], [`VaultError::NotPlayable`] (not completed),
    /// [`VaultError::OfflineExpired`] (its offline period is over), [`VaultError::KeyMismatch`],
    /// [`VaultError::Integrity`] (its content key is damaged), [`VaultError::Storage`].
    pub async fn play(&self, id: &str) -> Result<PlaybackSession> {
        self.ensure_open()?;
        self.play_on_port(id, 0).await
    }

    /// As [`Vault::play`], binding the server to `port` if it is not running yet (0 = any).
    ///
    /// # Errors
    /// As [`Vault::play`]; [`VaultError::Storage`] if the port is taken.
    pub async fn play_on_port(&self, id: &str, port: u16) -> Result<PlaybackSession> {
        self.ensure_open()?;
        let d = &self.inner.deps;
        let view = AssetView::load(&d.catalog, &d.layout, &d.kek, id, Expiry::Enforce, Access::Play(&d.live)).await?;
        if !view.complete && self.row(id).await?.state == AssetState::Queued {
            // Playing it starts it: ahead of the rest of the queue.
            self.inner.scheduler.prefer(id);
        }
        let events = self.inner.deps.events.clone();
        let sink: IntegritySink = Arc::new(move |id: &str, file: &str| {
            events.emit(Event::IntegrityFailed { id: id.to_owned(), file: file.to_owned() });
        });
        let server = self.inner.server.get_or_try_init(|| Server::start(port, sink)).await?;
        Ok(server.open(view)?)
    }

    /// The logical names of every stored file of a completed asset (its playlists and pieces,
    /// or its one file), for [`Vault::open_reader`].
    ///
    /// # Errors
    /// As [`Vault::play`].
    pub async fn files(&self, id: &str) -> Result<Vec<String>> {
        self.ensure_open()?;
        let view = self.view(id, Expiry::Enforce).await?;
        let mut files: Vec<String> = view.files.into_iter().collect();
        files.sort();
        Ok(files)
    }

    /// Opens one stored file of a completed asset for random access (decrypting and verifying
    /// only what each read touches).
    ///
    /// # Errors
    /// As [`Vault::play`]; [`VaultError::NotFound`] for a name outside the asset;
    /// [`VaultError::Integrity`] if the file's header or last chunk fails verification.
    pub async fn open_reader(&self, id: &str, name: &str) -> Result<AssetReader> {
        self.ensure_open()?;
        let view = self.view(id, Expiry::Enforce).await?;
        let name = name.to_owned();
        Ok(blocking(move || view.open(&name)).await??)
    }

    /// Checks every stored file of a completed asset: every chunk of every sealed file, or every
    /// plain piece against the SHA-256 recorded when it was stored. Returns the files that fail,
    /// in name order (empty: all verified).
    ///
    /// # Errors
    /// As [`Vault::play`], except that an expired asset is still verified.
    pub async fn verify(&self, id: &str) -> Result<Vec<String>> {
        self.ensure_open()?;
        // Verifying is not playing: an expired asset is verified too.
        let view = self.view(id, Expiry::Ignore).await?;
        let mut digests: HashMap<String, String> = self
            .inner
            .catalog()
            .segments(id)
            .await?
            .into_iter()
            .filter_map(|s| s.sha256.map(|d| (s.file, d)))
            .collect();
        digests
            .extend(self.inner.catalog().images(id).await?.into_iter().filter_map(|i| i.sha256.map(|d| (i.file, d))));
        Ok(blocking(move || verify_files(&view, &digests)).await?)
    }

    /// Sets (or with `None` removes) the time until which an asset may be played offline.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Storage`].
    pub async fn set_offline_until(&self, id: &str, until: Option<i64>) -> Result<()> {
        self.ensure_open()?;
        self.row(id).await?;
        Ok(self.inner.catalog().set_offline_until(id, until).await?)
    }

    /// Stops downloads running in this process (they stay queued and continue next time the
    /// vault opens), the playback server (its sessions stop working) and closes the catalog;
    /// waits for each. Calls made after it fail with [`VaultError::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.scheduler.close().await;
        if let Some(server) = self.inner.server.get() {
            server.stop().await;
        }
        self.inner.catalog().close().await;
    }

    async fn view(&self, id: &str, expiry: Expiry) -> crate::error::Result<AssetView> {
        let d = &self.inner.deps;
        AssetView::load(&d.catalog, &d.layout, &d.kek, id, expiry, Access::Completed).await
    }
}

/// What waiting for a failed asset returns.
fn failed(id: &str, failure: Option<FailureReason>) -> VaultError {
    match failure {
        Some(reason) => VaultError::Failed { reason },
        None => VaultError::Storage { details: format!("asset {id} failed and the catalog has no reason for it") },
    }
}

/// After process death: whatever was downloading is queued again (a process still downloading
/// it holds its lock, and keeps going); folders of assets whose rows were deleted (a crash
/// during `remove`) and leftover temporary files are removed.
async fn recover(deps: &Deps) -> crate::error::Result<()> {
    let catalog = &deps.catalog;
    let downloading = catalog.ids_in_state(AssetState::Downloading).await?;
    let layout = deps.layout.clone();
    let interrupted =
        blocking(move || downloading.into_iter().filter(|id| !engine::is_locked(&layout, id)).collect::<Vec<_>>());
    for id in interrupted.await? {
        catalog.transition(&id, &[AssetState::Downloading], AssetState::Queued, None).await?;
    }
    // Rows always exist before an asset's first file is written, so a folder without one is
    // garbage.
    let known: HashSet<String> = catalog.ids().await?.into_iter().collect();
    let queued = catalog.ids_in_state(AssetState::Queued).await?;
    let layout = deps.layout.clone();
    blocking(move || {
        if let Ok(entries) = std::fs::read_dir(layout.root().join("assets")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) && !engine::is_locked(&layout, &name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        for id in queued.iter().filter(|id| !engine::is_locked(&layout, id)) {
            store::remove_temp_files(&layout.asset_dir(id));
        }
        store::ensure_reserve(&layout);
    })
    .await
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> crate::error::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("file work: {e}")))
}

/// Deletes a folder and everything in it (gone already: fine).
async fn remove_dir(dir: PathBuf) -> crate::error::Result<()> {
    blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(e)),
        _ => Ok(()),
    })
    .await?
}
