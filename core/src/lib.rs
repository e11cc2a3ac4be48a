//! vodvault core: everything the vault does, with no FFI types.
//!
//! An app opens a [`Vault`] with its key file, [`Vault::prepare`]s a source, [`Vault::download`]s
//! it in [`Mode::Normal`] or [`Mode::Encrypted`], follows [`Event`]s, and plays what is stored
//! through [`Vault::play`] or [`Vault::open_reader`]. Every call that fails says why with a
//! [`VaultError`].
//!
//! ```no_run
//! # async fn demo() -> vodvault_core::Result<()> {
//! use vodvault_core::{DownloadRequest, Vault, VaultConfig};
//! let key = std::fs::read("app.vvkey")?;
//! let vault = Vault::open(VaultConfig::new("/data/app/vault".into(), key, "com.example.player")).await?;
//! let id = vault.download(DownloadRequest::new("https://cdn.example.com/v/master.m3u8")).await?;
//! let info = vault.wait(&id).await?;
//! println!("{} is {}", info.id, info.state);
//! # Ok(()) }
//! ```
//!
//! Two building blocks are public on their own: [`seal`], the sealed file format, and [`hls`],
//! the HLS playlist parsers and `METHOD=AES-128` decryption.
//!
//! Inside, data flows one way (docs/design.md §6 draws it): `source` (what a URL or VOD video
//! offers) → `plan` (rows, names, sizes) → `engine` (one job: fetch → seal/store) → `catalog`;
//! and `catalog` → `playback` (reader, server). `scheduler` runs jobs; `vault` is the facade on
//! top, and nothing imports it.

mod catalog;
mod clock;
mod crypto;
pub mod dash;
mod engine;
mod error;
mod events;
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hls;
mod identity;
mod keyfile;
mod keys;
mod live;
mod model;
mod plan;
mod playback;
mod scheduler;
pub mod seal;
mod sniff;
mod source;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod vault;
mod vod;

pub use crypto::RandomUnavailable;
pub use error::VaultError;
pub use fetch::{HttpConfig, RetryPolicy};
pub use keyfile::{KeyFile, KeyFileError, KeyFileInfo, KeyId, parse_signer};
pub use keys::{ContentKey, KeyError};
pub use model::{
    AssetInfo, AssetKind, AssetState, AudioChoice, Conditions, DashRepresentationInfo, DashSetInfo, DownloadRequest,
    DynamicRange, Event, FailureReason, ImageInfo, ImageKind, KeepFree, Mode, Network, OutputType, PickedTrack,
    Prepared, Preview, Progress, Quality, RefreshRequest, RenditionRole, Requirements, SpaceCheck, SubtitleChoice,
    TimeRange, TrackRules, UrlRefresher, VodIdentity, VodMezzanineInfo, VodRequest, VodStreamInfo, WaitReason,
    codec_family, parse_vod_source,
};
pub use playback::{AssetReader, PlaybackSession, content_type};
pub use seal::{SealError, SealOptions, SealWriter, SealedFileWriter, SealedReader};
pub use vault::{Vault, VaultConfig};
pub use vod::{Credentials, CredentialsProvider, CredentialsReason, SignatureMethod, StaticCredentials, VodConfig};

/// Result of a vault call.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
