//! vodvault core: everything the vault does, with no FFI types.
//!
//! - [`keyfile`]: key files, the per-app secret and what it is bound to.
//! - [`keys`]: the key hierarchy (KEK, per-asset content keys, wrapping and rotation).
//! - [`seal`]: the sealed file format (chunked, authenticated, random access).
//! - [`hls`]: HLS playlists (media and master) and `METHOD=AES-128` decryption.
//! - [`fetch`]: HTTP with typed failures; [`identity`]: stable asset identities.
//! - [`catalog`]: the SQLite catalog; [`store`]: files on disk; [`sniff`]: media checks.
//! - [`playback`]: the random-access reader and the loopback playback server.
//! - [`vault`]: the vault API (open, prepare, download, pause/resume/cancel/remove, events).
//! - [`vod`]: ApsaraVideo VOD sources (signed API calls, play info, mezzanine files, images).

pub mod catalog;
mod crypto;
mod download;
pub mod error;
pub mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hls;
pub mod identity;
pub mod keyfile;
pub mod keys;
pub mod playback;
pub mod seal;
pub mod sniff;
pub mod store;
pub mod vault;
pub mod vod;

pub use catalog::{AssetKind, AssetState, Mode};
pub use crypto::RandomUnavailable;
pub use error::{Error, FailureReason, Result};
pub use keyfile::{KeyFile, KeyFileError, KeyFileInfo, KeyId};
pub use keys::{ContentKey, Kek, KeyError, WrappedKey};
pub use seal::{SealError, SealOptions, SealWriter, SealedFileWriter, SealedReader};
pub use vault::{
    AssetInfo, DownloadRequest, Event, ImageInfo, Prepared, Progress, RefreshRequest, UrlRefresher, Vault, VaultConfig,
    VodIdentity, VodMezzanineInfo, VodStreamInfo,
};
