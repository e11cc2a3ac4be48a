//! The vault's errors: [`Error`] for calls that fail, and [`FailureReason`], the typed reason a
//! download stopped, stored in the catalog with the asset.

use serde::{Deserialize, Serialize};

use crate::catalog::{AssetState, CatalogError, Mode};
use crate::fetch::FetchError;
use crate::hls::media::PlaylistError;
use crate::keyfile::{KeyFileError, KeyId};
use crate::keys::KeyError;
use crate::seal::SealError;

/// Why a download stopped. Stored with the asset; every variant is a decision the app can make
/// (retry later, free space, ask for a new URL, give up). Messages name the piece that failed
/// and never contain signed URLs or keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// The network kept failing after every retry.
    #[error("network: {message}")]
    Network {
        /// What failed, and where.
        message: String,
    },
    /// The server answered with an error status that retrying does not fix (404, …).
    #[error("HTTP {status}: {message}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// What was requested.
        message: String,
    },
    /// The URL expired (401/403/410) and no fresh one could be had.
    #[error("URL expired: {message}")]
    UrlExpired {
        /// Why no fresh URL was available.
        message: String,
    },
    /// Not enough free space.
    #[error("{}", storage_full_message(*needed, *available))]
    StorageFull {
        /// Bytes still to store (an estimate; 0 when unknown).
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The source sent something that is not valid media (a bad key, bad padding after
    /// re-fetching, an error page instead of a segment).
    #[error("bad source: {message}")]
    BadSource {
        /// Which piece, and what is wrong.
        message: String,
    },
    /// The source uses something vodvault does not download.
    #[error("not supported: {message}")]
    Unsupported {
        /// What, and why.
        message: String,
    },
    /// The source's content changed (after a refresh, the playlist no longer matches).
    #[error("source changed: {message}")]
    SourceChanged {
        /// What differs.
        message: String,
    },
    /// Writing to storage failed (other than running out of space).
    #[error("storage: {message}")]
    Storage {
        /// The OS error.
        message: String,
    },
    /// The asset's content key is wrapped under another key file.
    #[error("key mismatch: {message}")]
    KeyMismatch {
        /// Which key ids.
        message: String,
    },
    /// VOD refused the credentials, or the app's credentials provider gave none: resume once
    /// fresh ones can be had.
    #[error("VOD credentials: {message}")]
    Credentials {
        /// VOD's code and message, or why there are none.
        message: String,
    },
    /// The VOD API refused the request (the video is gone or not playable, a stream is no
    /// longer offered, throttling that did not pass).
    #[error("VOD {code}: {message}")]
    Vod {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
}

fn storage_full_message(needed: u64, available: u64) -> String {
    if needed == 0 {
        format!("storage full: no space left ({available} bytes available)")
    } else {
        format!("storage full: about {needed} more bytes needed, {available} available")
    }
}

impl FailureReason {
    /// The JSON stored in the catalog.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"kind\":\"storage\",\"message\":\"?\"}"))
    }

    /// Parses the stored JSON.
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// An error from a vault call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No asset with this id.
    #[error("no asset {0}")]
    NotFound(String),
    /// The same source and rendition is already an asset, stored in another mode.
    #[error("asset {id} already exists in {mode} mode; remove it first to store it in another mode")]
    AlreadyExists {
        /// Its id.
        id: String,
        /// Its mode.
        mode: Mode,
    },
    /// The request is malformed (bad URL, header, quality, parallelism).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The key file could not be loaded.
    #[error("key file: {0}")]
    KeyFile(#[from] KeyFileError),
    /// The vault was created with another key file.
    #[error("this vault belongs to key {vault}, but key {given} was given")]
    KeyMismatch {
        /// Key id the vault was created with.
        vault: KeyId,
        /// Key id of the key file given.
        given: KeyId,
    },
    /// A wrapped key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(CatalogError),
    /// The device is full (even the catalog cannot grow).
    #[error("storage full: no space left on the device")]
    StorageFull,
    /// Local storage failed.
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    /// A sealed file failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Fetching the source failed.
    #[error("fetching the source: {0}")]
    Fetch(#[from] FetchError),
    /// The source playlist cannot be downloaded.
    #[error(transparent)]
    Playlist(#[from] PlaylistError),
    /// A media playlist of the source (`which`: the video variant, an audio or subtitle
    /// rendition) cannot be downloaded.
    #[error("the {which} playlist: {error}")]
    MediaPlaylist {
        /// Which playlist: `video`, `audio` or `subtitles`.
        which: String,
        /// Why.
        error: PlaylistError,
    },
    /// The source sent something that is not a playlist or media (an HTML error page served
    /// with 200, a JSON error, text, nothing): what it looks like, and where it came from.
    #[error("bad source: {0}")]
    BadSource(String),
    /// The source is of a kind vodvault does not download (a DASH manifest, for now).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Another process is downloading this asset.
    #[error("asset {0} is being downloaded by another process")]
    Busy(String),
    /// The action does not apply in the asset's state.
    #[error("asset {id} is {state}; cannot {action}")]
    InvalidState {
        /// The asset.
        id: String,
        /// Its state.
        state: AssetState,
        /// What was attempted.
        action: &'static str,
    },
    /// The download failed (from waiting on it).
    #[error("download failed: {0}")]
    Failed(FailureReason),
    /// The asset's offline period is over (see `DownloadRequest::offline_until`).
    #[error("asset {id} expired for offline playback at {until} (Unix ms)")]
    Expired {
        /// The asset.
        id: String,
        /// When it expired.
        until: i64,
    },
    /// The asset is not complete yet, so it cannot be played or read.
    #[error("asset {id} is {state}: only completed assets can be played")]
    NotPlayable {
        /// The asset.
        id: String,
        /// Its state.
        state: AssetState,
    },
    /// A stored file failed verification (modified or damaged).
    #[error("stored file {file} of asset {id} failed verification")]
    Integrity {
        /// The asset.
        id: String,
        /// The file (logical name).
        file: String,
    },
    /// The vault is closed.
    #[error("the vault is closed")]
    Closed,
    /// A VOD API call failed.
    #[error(transparent)]
    Vod(#[from] crate::vod::VodError),
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        if e.is_storage_full() { Error::StorageFull } else { Error::Catalog(e) }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
