//! The vault object: every call runs on the crate's runtime.

use std::sync::Arc;

use vodvault_core as core;

use crate::asset::{AssetImage, AssetInfo};
use crate::conditions::{Conditions, Network, Requirements, SpaceCheck};
use crate::config::{HttpHeader, VaultConfig, headers};
use crate::errors::Result;
use crate::listener::{self, ListenerHandle, VaultListener};
use crate::playback::PlaybackSession;
use crate::reader::AssetReader;
use crate::request::{DownloadRequest, Refresher, UrlRefresher};
use crate::rules::Preview;
use crate::runtime::spawn;
use crate::source_info::SourceInfo;
use crate::vod::{CredentialsProvider, Provider};

/// An open vault: a folder, its catalog, and the download queue. Call `shutdown()` when done
/// (then release it: Kotlin `close()`).
#[derive(uniffi::Object)]
pub struct Vault(pub(crate) core::Vault);

#[uniffi::export]
impl Vault {
    /// Opens (creating and migrating) the vault.
    ///
    /// # Errors
    /// `InvalidKeyFile` (damaged, another app's), `SignerMismatch` (the key file is bound to
    /// signing certificates and `signingCertSha256` is not one of them), `KeyMismatch` (the vault
    /// has another key file).
    #[uniffi::constructor]
    pub async fn open(config: VaultConfig) -> Result<Arc<Self>> {
        let config = config.into_core()?;
        let vault = spawn(core::Vault::open(config)).await??;
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
        spawn(async move { v.download(request).await }).await?
    }

    /// Waits until the asset completes (returning it) or stops otherwise (`Failed` with the
    /// reason, `InvalidState` when paused or cancelled, `NotFound` when removed).
    pub async fn wait(&self, asset_id: String) -> Result<AssetInfo> {
        let v = self.0.clone();
        spawn(async move { v.wait(&asset_id).await }).await?
    }

    /// Pauses a download (what is stored is kept).
    pub async fn pause(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.pause(&asset_id).await }).await?
    }

    /// Resumes a paused, failed or cancelled download (for a completed asset with missing
    /// images: tries them again).
    pub async fn resume(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.resume(&asset_id).await }).await?
    }

    /// Stops a download for good, deleting its files (its record stays, `cancelled`).
    pub async fn cancel(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.cancel(&asset_id).await }).await?
    }

    /// Deletes an asset: files and record.
    pub async fn remove(&self, asset_id: String) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.remove(&asset_id).await }).await?
    }

    /// Pauses every download.
    pub async fn pause_all(&self) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.pause_all().await }).await?
    }

    /// Resumes every paused, failed or interrupted download; returns their ids.
    pub async fn resume_all(&self) -> Result<Vec<String>> {
        let v = self.0.clone();
        spawn(async move { v.resume_all().await }).await?
    }

    /// Deletes every asset.
    pub async fn remove_all(&self) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.remove_all().await }).await?
    }

    /// Removes every asset whose offline period is over; returns their ids.
    pub async fn evict_expired(&self) -> Result<Vec<String>> {
        let v = self.0.clone();
        spawn(async move { v.evict_expired().await }).await?
    }

    /// Every asset, oldest first.
    pub async fn assets(&self) -> Result<Vec<AssetInfo>> {
        let v = self.0.clone();
        spawn(async move { v.assets().await }).await?
    }

    /// One asset.
    pub async fn asset(&self, asset_id: String) -> Result<AssetInfo> {
        let v = self.0.clone();
        spawn(async move { v.asset(&asset_id).await }).await?
    }

    /// Delivers events to `listener` (on a thread of its own) until the returned handle is
    /// cancelled or released.
    pub fn add_listener(self: Arc<Self>, listener: Arc<dyn VaultListener>) -> Arc<ListenerHandle> {
        listener::start(&self, listener)
    }

    /// Caps the bytes per second all downloads together fetch (null or 0: no cap), shared
    /// evenly between their connections, from their next chunk on.
    pub fn set_max_rate(&self, bytes_per_sec: Option<u64>) {
        self.0.set_max_rate(bytes_per_sec);
    }

    /// The cap on bytes per second, if any.
    pub fn max_rate(&self) -> Option<u64> {
        self.0.max_rate()
    }

    /// Tells the vault what the device is like now (all three parts; `setNetwork` and
    /// `setPower` change one). Downloads whose requirements these do not
    /// meet stop taking pieces at once (those under way get 0.7 s) and wait in a
    /// `WaitingFor…` state; those now allowed start again by themselves. Nothing is lost.
    pub fn set_conditions(&self, conditions: Conditions) {
        self.0.set_conditions(conditions.into());
    }

    /// Changes only the network (from a `NetworkCallback`, say), keeping what was said about
    /// power.
    pub fn set_network(&self, network: Network) {
        self.0.set_network(network);
    }

    /// Changes only charging and battery-low (from `ACTION_BATTERY_CHANGED`, say), keeping the
    /// network.
    pub fn set_power(&self, charging: bool, battery_low: bool) {
        self.0.set_power(charging, battery_low);
    }

    /// What the vault was last told about the device.
    pub fn conditions(&self) -> Conditions {
        self.0.conditions().into()
    }

    /// Changes what downloads require (those with their own requirements keep them), at once.
    pub fn set_requirements(&self, requirements: Requirements) {
        self.0.set_requirements(requirements.into());
    }

    /// Changes what one download requires of the device (null: the vault's), at once.
    pub async fn set_download_requirements(&self, asset_id: String, requirements: Option<Requirements>) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.set_download_requirements(&asset_id, requirements.map(Into::into)).await }).await?
    }

    /// What downloads require of the device.
    pub fn requirements(&self) -> Requirements {
        self.0.requirements().into()
    }

    /// Sets (or removes) the vault's quota in bytes, at once.
    pub fn set_quota(&self, quota: Option<u64>) {
        self.0.set_quota(quota);
    }

    /// The vault's quota in bytes, if any.
    pub fn quota(&self) -> Option<u64> {
        self.0.quota()
    }

    /// What downloading `request` would take against the space downloads may use and the
    /// quota, without storing anything (what `download` checks first).
    pub async fn check_space(&self, request: DownloadRequest) -> Result<SpaceCheck> {
        let v = self.0.clone();
        let request = core::DownloadRequest::try_from(request)?;
        spawn(async move { v.check_space(&request).await }).await?
    }

    /// What downloading `request` would store (the tracks its quality, choices and rules pick)
    /// and take, without storing anything.
    pub async fn preview(&self, request: DownloadRequest) -> Result<Preview> {
        let v = self.0.clone();
        let request = core::DownloadRequest::try_from(request)?;
        spawn(async move { v.preview(&request).await }).await?
    }

    /// Sets (or clears) the hook that supplies fresh URLs when signed ones expire.
    pub fn set_refresher(&self, refresher: Option<Arc<dyn UrlRefresher>>) {
        self.0.set_refresher(refresher.map(|r| Arc::new(Refresher::new(r)) as Arc<dyn core::UrlRefresher>));
    }

    /// Sets (or clears) the source of ApsaraVideo VOD credentials.
    pub fn set_credentials_provider(&self, provider: Option<Arc<dyn CredentialsProvider>>) {
        self.0.set_credentials_provider(
            provider.map(|p| Arc::new(Provider::new(p)) as Arc<dyn core::CredentialsProvider>),
        );
    }

    /// The images stored (or to be stored) with an asset: VOD covers, snapshots, sprites and
    /// WebVTT thumbnail tracks.
    pub async fn images(&self, asset_id: String) -> Result<Vec<AssetImage>> {
        let v = self.0.clone();
        spawn(async move { v.images(&asset_id).await }).await?
    }

    /// Serves a completed asset on 127.0.0.1; returns a session whose URL players open.
    pub async fn play(&self, asset_id: String) -> Result<Arc<PlaybackSession>> {
        let v = self.0.clone();
        Ok(Arc::new(PlaybackSession(spawn(async move { v.play(&asset_id).await }).await??)))
    }

    /// The names of every stored file of a completed asset.
    pub async fn files(&self, asset_id: String) -> Result<Vec<String>> {
        let v = self.0.clone();
        spawn(async move { v.files(&asset_id).await }).await?
    }

    /// Opens one stored file of a completed asset for random access.
    pub async fn open_reader(&self, asset_id: String, name: String) -> Result<Arc<AssetReader>> {
        let v = self.0.clone();
        Ok(Arc::new(AssetReader(spawn(async move { v.open_reader(&asset_id, &name).await }).await??)))
    }

    /// Checks every stored file of an asset; returns those that fail (empty: all verified).
    pub async fn verify(&self, asset_id: String) -> Result<Vec<String>> {
        let v = self.0.clone();
        spawn(async move { v.verify(&asset_id).await }).await?
    }

    /// Sets (or with `null` removes) the time (Unix ms) until which an asset plays offline.
    pub async fn set_offline_until(&self, asset_id: String, until_ms: Option<i64>) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.set_offline_until(&asset_id, until_ms).await }).await?
    }

    /// Stops this process's downloads (they resume next time the vault opens) and the playback
    /// server, and closes the catalog; waits for each. Calls made afterwards fail with `Closed`.
    pub async fn shutdown(&self) -> Result<()> {
        let v = self.0.clone();
        spawn(async move { v.close().await }).await
    }
}
