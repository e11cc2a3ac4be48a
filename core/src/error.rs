//! Errors. Inside the crate, [`Error`] keeps every source (the catalog's, the file system's, a
//! fetch's); at the API, [`VaultError`] says what happened as the decision an app makes about
//! it, with structured fields and never a secret. `From<Error> for VaultError` is the one
//! mapping, and where the logging policy lives: failures of the device itself (catalog, file
//! system, a bug) are logged at `warn` with their whole chain of causes, because the app only
//! gets their one-line summary; everything else is the app's to report and is logged at
//! `debug`.

use crate::catalog::CatalogError;
use crate::fetch::{ErrorClass, FetchError};
use crate::hls::media::PlaylistError;
use crate::keyfile::{KeyFileError, KeyId};
use crate::keys::KeyError;
use crate::model::{AssetState, FailureReason, Mode};
use crate::seal::SealError;
use crate::vod::VodError;

/// An error inside the crate, with its source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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
    /// A download does not fit in the space downloads may use.
    #[error("storage full")]
    NoRoom {
        /// Bytes it needs (its size, or its estimate and 5%), when known.
        needed: Option<u64>,
        /// Bytes free, less what downloads keep free and other downloads still expect.
        available: u64,
    },
    /// A download would take the vault past its quota.
    #[error("over the vault's quota")]
    QuotaExceeded {
        /// Bytes it needs, when known.
        needed: Option<u64>,
        /// Bytes the vault's assets store and unfinished downloads still expect.
        used: u64,
        /// The quota.
        quota: u64,
    },
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
    /// The catalog holds something unreadable (damaged outside vodvault): what.
    #[error("the catalog is damaged: {0}")]
    Damaged(String),
    /// A bug: a task panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// A VOD API call failed.
    #[error(transparent)]
    Vod(#[from] VodError),
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        if e.is_storage_full() { Error::StorageFull } else { Error::Catalog(e) }
    }
}

/// Result with the crate's internal [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a failure of a fetch into the asset's failure reason, naming what was fetched.
pub(crate) fn fetch_failure(what: &str, e: &FetchError) -> FailureReason {
    match e {
        FetchError::Status { status, .. } if matches!(e.class(), ErrorClass::Expired) => {
            FailureReason::UrlExpired { message: format!("{what}: HTTP {status} and no fresh URL") }
        }
        FetchError::Status { status, .. } => FailureReason::HttpStatus { status: *status, message: what.to_owned() },
        FetchError::Transport(m) => FailureReason::Network { message: format!("{what}: {m}") },
        FetchError::Short { .. } => FailureReason::Network { message: format!("{what}: {e}") },
        other => FailureReason::BadSource { message: format!("{what}: {other}") },
    }
}

/// A failure from resolving or planning, as an asset failure reason.
pub(crate) fn error_to_failure(what: &str, e: &Error) -> FailureReason {
    match e {
        Error::Fetch(f) => fetch_failure(what, f),
        Error::Playlist(PlaylistError::Unsupported(m)) | Error::Unsupported(m) => {
            FailureReason::Unsupported { message: m.clone() }
        }
        Error::Playlist(PlaylistError::Live) => FailureReason::Unsupported { message: format!("{what}: {e}") },
        Error::MediaPlaylist { error: PlaylistError::Unsupported(_) | PlaylistError::Live, .. } => {
            FailureReason::Unsupported { message: e.to_string() }
        }
        Error::MediaPlaylist { .. } => FailureReason::BadSource { message: e.to_string() },
        Error::Playlist(p) => FailureReason::BadSource { message: format!("{what}: {p}") },
        Error::BadSource(m) => FailureReason::BadSource { message: m.clone() },
        other => FailureReason::Storage { message: other.to_string() },
    }
}

impl From<FetchError> for FailureReason {
    fn from(e: FetchError) -> Self {
        fetch_failure("request", &e)
    }
}

/// Why a vault call failed: each variant is a decision an app makes. Messages name what failed
/// and never carry a key, a credential or a signed URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// No asset with this id (or no such file in it): it was never created, or was removed.
    #[error("no asset {id}")]
    NotFound {
        /// The asset (or `asset/file`).
        id: String,
    },
    /// The same source and rendition is already an asset, stored in another mode: remove it
    /// first to store it in this one.
    #[error("asset {id} already exists in {mode} mode; remove it first to store it in another mode")]
    AlreadyExists {
        /// Its id.
        id: String,
        /// Its mode.
        mode: Mode,
    },
    /// The request is malformed (bad URL, header, quality, parallelism, configuration): fix the
    /// call.
    #[error("invalid request: {details}")]
    InvalidRequest {
        /// What is wrong.
        details: String,
    },
    /// The action does not apply to the asset in its state (resume a completed asset, cancel a
    /// completed one, wait for a paused one).
    #[error("asset {id} is {state}; cannot {action}")]
    InvalidState {
        /// The asset.
        id: String,
        /// Its state.
        state: AssetState,
        /// What was attempted.
        action: String,
    },
    /// The asset is not completed, so it cannot be played, read or verified yet.
    #[error("asset {id} is {state}: only completed assets can be played")]
    NotPlayable {
        /// The asset.
        id: String,
        /// Its state.
        state: AssetState,
    },
    /// Another job (in this process or another) holds the asset and did not let go: try again
    /// later.
    #[error("asset {id} is busy: another download of it is running")]
    Busy {
        /// The asset.
        id: String,
    },
    /// The vault was closed.
    #[error("the vault is closed")]
    Closed,
    /// A bug in vodvault (it was logged): please report it.
    #[error("internal error: {details}")]
    Internal {
        /// What failed.
        details: String,
    },
    /// The key file is not valid (damaged, not a key file, another app's, a newer version).
    #[error("invalid key file: {details}")]
    InvalidKeyFile {
        /// Which problem.
        details: String,
    },
    /// The key file is bound to signing certificates and the running app is not signed with one
    /// of them (or did not say what it is signed with): a repackaged app.
    #[error("signer mismatch: {details}")]
    SignerMismatch {
        /// What does not match.
        details: String,
    },
    /// The vault, or an asset's content key, belongs to another key file.
    #[error("key mismatch: this belongs to key {expected}, but key {given} was given")]
    KeyMismatch {
        /// The key id it belongs to (16 hex digits).
        expected: String,
        /// The key id of the key file given.
        given: String,
    },
    /// The source answered with an error status that retrying does not fix (404, 500 after
    /// every retry, …).
    #[error("HTTP {status}: {details}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// What was requested.
        details: String,
    },
    /// The network kept failing after every retry: try again later.
    #[error("network: {details}")]
    Network {
        /// What failed.
        details: String,
    },
    /// The source URL expired (401/403/410) and no fresh one could be had: get a new URL.
    #[error("URL expired: {details}")]
    UrlExpired {
        /// Details.
        details: String,
    },
    /// The source sent something that is not a playlist or media (an HTML error page served
    /// with 200, JSON, text, nothing), or a playlist that breaks the rules: what, and where.
    #[error("bad source: {details}")]
    BadSource {
        /// What arrived instead, from which URL.
        details: String,
    },
    /// The source is of a kind vodvault does not download (live, DRM, SAMPLE-AES, a DASH
    /// manifest, a delta or I-frame-only playlist).
    #[error("not supported: {details}")]
    UnsupportedSource {
        /// What, and why.
        details: String,
    },
    /// The device is full, or a download does not fit in what downloads may use of it (free
    /// space less what they keep free, [`crate::KeepFree`]): free space, then try again.
    #[error(
        "storage full{}{}",
        needed.map(|n| format!(": needs {n} bytes")).unwrap_or_default(),
        available.map(|a| format!(" ({a} bytes available)")).unwrap_or_default()
    )]
    StorageFull {
        /// Bytes needed, when known.
        needed: Option<u64>,
        /// Bytes available, when known.
        available: Option<u64>,
    },
    /// A download would take the vault past its quota ([`crate::VaultConfig::quota`]): remove
    /// assets or raise the quota.
    #[error(
        "over the vault's quota: {used} of {quota} bytes used{}",
        needed.map(|n| format!(", needs {n} more")).unwrap_or_default()
    )]
    QuotaExceeded {
        /// Bytes the download needs (its size, or its estimate and 5%), when known.
        needed: Option<u64>,
        /// Bytes the vault's assets store, and unfinished downloads still expect to.
        used: u64,
        /// The quota in bytes.
        quota: u64,
    },
    /// Local storage failed (the file system, the catalog): details are in the log.
    #[error("storage: {details}")]
    Storage {
        /// A one-line summary.
        details: String,
    },
    /// A stored file failed verification: it was modified or damaged on disk. No byte of it
    /// was returned.
    #[error("stored file {file} of asset {id} failed verification")]
    Integrity {
        /// The asset.
        id: String,
        /// The file (logical name; `(content key)` for the asset's key).
        file: String,
    },
    /// The asset's offline period is over (see `DownloadRequest::offline_until`).
    #[error("asset {id} expired for offline playback at {until_ms} (Unix ms)")]
    OfflineExpired {
        /// The asset.
        id: String,
        /// When it expired (Unix ms).
        until_ms: i64,
    },
    /// The download failed (from waiting on it): why.
    #[error("download failed: {reason}")]
    Failed {
        /// The asset's failure reason.
        reason: FailureReason,
    },
    /// ApsaraVideo VOD refused the credentials (expired or invalid STS token, unknown
    /// AccessKey), or the credentials provider gave none: get fresh ones, then try again.
    #[error("VOD credentials: {details}")]
    Credentials {
        /// VOD's code and message (never the credentials).
        details: String,
    },
    /// The ApsaraVideo VOD API refused the request (the video is not playable yet, forbidden,
    /// throttled, an API error).
    #[error("VOD {code}: {details}")]
    VodApi {
        /// VOD's error code, e.g. `Forbidden.IllegalStatus`.
        code: String,
        /// VOD's message.
        details: String,
    },
}

impl VaultError {
    /// A failure of the device (file system, catalog) or a bug, as the app sees it.
    pub(crate) fn storage(what: &str, e: &dyn std::error::Error) -> Self {
        tracing::warn!("{what}: {}", chain(e));
        VaultError::Storage { details: format!("{what}: {e}") }
    }
}

/// `e` and its causes, one after another.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

impl From<Error> for VaultError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let v = match e {
            Error::NotFound(id) => VaultError::NotFound { id },
            Error::AlreadyExists { id, mode } => VaultError::AlreadyExists { id, mode },
            Error::InvalidRequest(message) => VaultError::InvalidRequest { details: message },
            Error::KeyFile(k) => k.into(),
            Error::KeyMismatch { vault, given } => key_mismatch(vault, given),
            Error::Key(KeyError::KeyMismatch { wrapped_by, have }) => key_mismatch(wrapped_by, have),
            Error::Key(k) => return VaultError::storage("a stored key", &k),
            Error::Catalog(c) => return VaultError::storage("catalog", &c),
            Error::StorageFull => VaultError::StorageFull { needed: None, available: None },
            Error::NoRoom { needed, available } => VaultError::StorageFull { needed, available: Some(available) },
            Error::QuotaExceeded { needed, used, quota } => VaultError::QuotaExceeded { needed, used, quota },
            Error::Io(io) => return VaultError::storage("file system", &io),
            Error::Seal(SealError::Io(io)) => return VaultError::storage("file system", &io),
            Error::Seal(s) => return VaultError::storage("sealed file", &s),
            Error::Fetch(f) => fetch_error(&f),
            Error::Playlist(PlaylistError::Live | PlaylistError::Unsupported(_))
            | Error::MediaPlaylist { error: PlaylistError::Live | PlaylistError::Unsupported(_), .. }
            | Error::Unsupported(_) => VaultError::UnsupportedSource { details: unprefixed(message) },
            Error::Playlist(_) | Error::MediaPlaylist { .. } | Error::BadSource(_) => {
                VaultError::BadSource { details: unprefixed(message) }
            }
            Error::Busy(id) => VaultError::Busy { id },
            Error::InvalidState { id, state, action } => {
                VaultError::InvalidState { id, state, action: action.to_owned() }
            }
            Error::Failed(reason) => VaultError::Failed { reason },
            Error::Expired { id, until } => VaultError::OfflineExpired { id, until_ms: until },
            Error::NotPlayable { id, state } => VaultError::NotPlayable { id, state },
            Error::Integrity { id, file } => VaultError::Integrity { id, file },
            Error::Closed => VaultError::Closed,
            Error::Internal(details) => {
                tracing::error!("internal error (a bug in vodvault): {details}");
                VaultError::Internal { details }
            }
            Error::Damaged(_) => {
                tracing::warn!("{message}");
                return VaultError::Storage { details: message };
            }
            Error::Vod(v) => v.into(),
        };
        tracing::debug!("{v}");
        v
    }
}

/// The message of an error without the prefix its `Display` adds (the variant says it).
fn unprefixed(message: String) -> String {
    for prefix in ["bad source: ", "not supported: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    message
}

fn key_mismatch(expected: KeyId, given: KeyId) -> VaultError {
    VaultError::KeyMismatch { expected: expected.to_string(), given: given.to_string() }
}

/// A failed fetch of the source, said once (no "HTTP 404: … HTTP 404").
fn fetch_error(f: &FetchError) -> VaultError {
    let what = "fetching the source";
    match f {
        FetchError::Status { status, .. } if matches!(f.class(), ErrorClass::Expired) => {
            VaultError::UrlExpired { details: format!("{what}: HTTP {status}") }
        }
        FetchError::Status { status, .. } => VaultError::HttpStatus { status: *status, details: what.to_owned() },
        FetchError::Transport(m) => VaultError::Network { details: format!("{what}: {m}") },
        FetchError::Short { .. } => VaultError::Network { details: format!("{what}: {f}") },
        _ => VaultError::BadSource { details: format!("{what}: {f}") },
    }
}

impl From<KeyFileError> for VaultError {
    fn from(e: KeyFileError) -> Self {
        match e {
            KeyFileError::SignerRequired { .. } | KeyFileError::WrongSigner { .. } => {
                VaultError::SignerMismatch { details: e.to_string() }
            }
            e => VaultError::InvalidKeyFile { details: e.to_string() },
        }
    }
}

impl From<VodError> for VaultError {
    fn from(e: VodError) -> Self {
        let message = e.to_string();
        match e {
            VodError::NoCredentials(_) | VodError::Credentials { .. } => VaultError::Credentials { details: message },
            VodError::NoMatch(_) => VaultError::InvalidRequest { details: message },
            VodError::Unsupported(_) => VaultError::UnsupportedSource { details: message },
            VodError::Network(_) => VaultError::Network { details: message },
            VodError::Config(_) => VaultError::InvalidRequest { details: message },
            VodError::NotFound { code, .. }
            | VodError::Forbidden { code, .. }
            | VodError::Api { code, .. }
            | VodError::Throttled { code, .. } => VaultError::VodApi { code, details: message },
            VodError::BadResponse(_) => VaultError::VodApi { code: "BadResponse".into(), details: message },
        }
    }
}

impl From<CatalogError> for VaultError {
    fn from(e: CatalogError) -> Self {
        Error::from(e).into()
    }
}

impl From<std::io::Error> for VaultError {
    fn from(e: std::io::Error) -> Self {
        Error::from(e).into()
    }
}
