//! Opening a vault: where it is, the app's key file, and how it downloads.

use crate::conditions::{Conditions, Requirements};
use crate::errors::{Result, VaultError};
use crate::vod::VodConfig;

/// A request header. `Debug` shows its name only (values may be tokens).
#[derive(Clone, uniffi::Record)]
pub struct HttpHeader {
    /// Name, e.g. `Referer`.
    pub name: String,
    /// Value.
    pub value: String,
}

impl std::fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: …", self.name)
    }
}

pub(crate) fn headers(h: Vec<HttpHeader>) -> Vec<(String, String)> {
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
    pub(crate) fn read(self) -> Result<Vec<u8>> {
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
    /// SHA-256 (hex) of the certificate the app is signed with (Android: from `PackageManager`;
    /// iOS: none). Needed when the key file is bound to signing certificates.
    #[uniffi(default = None)]
    pub signing_cert_sha256: Option<String>,
    /// A cap on the bytes per second all downloads together fetch (null: none); change it with
    /// `Vault.setMaxRate`.
    #[uniffi(default = None)]
    pub max_rate: Option<u64>,
    /// What the device is like when the vault opens (null: unmetered, charging); an app with
    /// requirements passes what it knows, so that nothing starts before it has said so.
    #[uniffi(default = None)]
    pub conditions: Option<Conditions>,
    /// What downloads require of the device (null: keep 5% of the volume free, at least 200 MiB
    /// and at most 1 GiB, nothing else).
    #[uniffi(default = None)]
    pub requirements: Option<Requirements>,
    /// Bytes the vault's assets may store in all (null: no quota).
    #[uniffi(default = None)]
    pub quota: Option<u64>,
    /// Remove assets past their `offlineUntil` by themselves (when the vault opens and before
    /// each download is checked against the space and the quota).
    #[uniffi(default = false)]
    pub evict_expired: bool,
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
    /// Certificates (DER) trusted besides the compiled-in Mozilla roots: a CDN's private CA.
    #[uniffi(default = [])]
    pub extra_roots: Vec<Vec<u8>>,
}

impl VaultConfig {
    pub(crate) fn into_core(self) -> Result<vodvault_core::VaultConfig> {
        let key = self.key_file.read()?;
        let mut c = vodvault_core::VaultConfig::new(std::path::PathBuf::from(self.dir), key, &self.app_id);
        c.signing_cert_sha256 = self.signing_cert_sha256;
        c.max_rate = self.max_rate;
        if let Some(conditions) = self.conditions {
            c.conditions = conditions.into();
        }
        if let Some(requirements) = self.requirements {
            c.requirements = requirements.into();
        }
        c.quota = self.quota;
        c.evict_expired = self.evict_expired;
        c.max_parallel_assets = self.max_parallel_assets as usize;
        c.max_parallel_requests = self.max_parallel_requests as usize;
        c.default_headers = headers(self.default_headers);
        c.autostart = self.autostart;
        c.http.extra_roots = self.extra_roots;
        if let Some(vod) = self.vod {
            c.vod = vod.into();
        }
        Ok(c)
    }
}
