//! Errors and failure reasons: core's own types, exported as they are (one definition, one
//! mapping: core's).

use vodvault_core as core;

use crate::asset::AssetState;
use crate::request::StorageMode;

/// Why a call failed. Each variant is a decision an app makes; none carries a secret.
pub type VaultError = core::VaultError;

/// Result of an exported call.
pub(crate) type Result<T, E = VaultError> = std::result::Result<T, E>;

/// Why a call failed. Each variant is a decision an app makes; none carries a secret.
#[uniffi::remote(Error)]
pub enum VaultError {
    /// No asset with this id (or no such file in it).
    NotFound { id: String },
    /// The same source is already an asset in another mode: remove it first.
    AlreadyExists { id: String, mode: StorageMode },
    /// The request is malformed: fix the call.
    InvalidRequest { details: String },
    /// The action does not apply to the asset in its state.
    InvalidState { id: String, state: AssetState, action: String },
    /// The asset is not completed, so it cannot be played, read or verified yet.
    NotPlayable { id: String, state: AssetState },
    /// Another download of the asset (in this process or another) did not let go: try again.
    Busy { id: String },
    /// The vault was shut down.
    Closed,
    /// A bug in vodvault: please report it.
    Internal { details: String },
    /// The key file is not valid (damaged, another app's, a newer version).
    InvalidKeyFile { details: String },
    /// The key file is bound to signing certificates and the app is not signed with one of them
    /// (or gave no `signingCertSha256`).
    SignerMismatch { details: String },
    /// The vault, or an asset's key, belongs to another key file.
    KeyMismatch { expected: String, given: String },
    /// The source answered with an error status retrying does not fix.
    HttpStatus { status: u16, details: String },
    /// The network kept failing: try again later.
    Network { details: String },
    /// The source URL expired and no fresh one could be had: get a new URL.
    UrlExpired { details: String },
    /// The source sent something that is not a playlist or media, or a broken playlist.
    BadSource { details: String },
    /// The source is of a kind vodvault does not download (live, DRM, DASH, …).
    UnsupportedSource { details: String },
    /// The device is full: free space, then try again.
    StorageFull { needed: Option<u64>, available: Option<u64> },
    /// A download would take the vault past its quota: remove assets or raise the quota.
    QuotaExceeded { needed: Option<u64>, used: u64, quota: u64 },
    /// Local storage failed (details are in the log).
    Storage { details: String },
    /// A stored file failed verification (modified or damaged); none of it was returned.
    Integrity { id: String, file: String },
    /// The asset's offline period is over.
    OfflineExpired { id: String, until_ms: i64 },
    /// The download failed (from `wait`): why.
    Failed { reason: FailureReason },
    /// ApsaraVideo VOD refused the credentials, or the provider gave none: get fresh ones.
    Credentials { details: String },
    /// The ApsaraVideo VOD API refused the request.
    VodApi { code: String, details: String },
}

/// Why a download stopped (stored with the asset): every variant is a decision an app makes.
pub type FailureReason = core::FailureReason;

/// Why a download stopped (stored with the asset): every variant is a decision an app makes.
#[uniffi::remote(Enum)]
pub enum FailureReason {
    /// The network kept failing after every retry.
    Network { message: String },
    /// The server answered with an error status retrying does not fix (404, …).
    HttpStatus { status: u16, message: String },
    /// The URL expired and no fresh one could be had.
    UrlExpired { message: String },
    /// Not enough free space: bytes still needed (0 when unknown) and bytes free.
    StorageFull { needed: u64, available: u64 },
    /// The source sent something that is not valid media.
    BadSource { message: String },
    /// The source uses something vodvault does not download.
    Unsupported { message: String },
    /// The source changed (the download started over).
    SourceChanged { message: String },
    /// Local storage failed.
    Storage { message: String },
    /// The asset's content key belongs to another key file.
    KeyMismatch { message: String },
    /// VOD refused the credentials, or none were given.
    Credentials { message: String },
    /// The VOD API refused the request.
    Vod { code: String, message: String },
}
