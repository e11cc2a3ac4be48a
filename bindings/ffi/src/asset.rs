//! Assets as the app sees them: core's records and enums, exported as they are.

use std::path::PathBuf;

use vodvault_core as core;

use crate::errors::FailureReason;
use crate::request::StorageMode;

uniffi::custom_type!(PathBuf, String, {
    remote,
    lower: |p| p.display().to_string(),
    try_lift: |s| Ok(PathBuf::from(s)),
});

/// Where an asset is in its life.
pub type AssetState = core::AssetState;

/// Where an asset is in its life.
#[uniffi::remote(Enum)]
pub enum AssetState {
    /// Waiting for a download slot.
    Queued,
    /// Being downloaded.
    Downloading,
    /// Paused by the app; resumes on request.
    Paused,
    /// Stopped by an error (see `failure`); resumes on request.
    Failed,
    /// Every piece stored and verified.
    Completed,
    /// Stopped for good by the app; its files are deleted.
    Cancelled,
    /// Queued, held back: no network.
    WaitingForNetwork,
    /// Queued, held back: the network is metered and the download requires an unmetered one.
    WaitingForUnmetered,
    /// Queued, held back: the device is not charging and the download requires it.
    WaitingForCharging,
    /// Queued, held back: the battery is low and the download requires it not to be.
    WaitingForBattery,
    /// Queued, held back: free space is below what downloads keep free, or the quota is used up.
    WaitingForStorage,
}

/// What kind of source an asset came from.
pub type AssetKind = core::AssetKind;

/// What kind of source an asset came from.
#[uniffi::remote(Enum)]
pub enum AssetKind {
    /// HLS (master or media playlist).
    Hls,
    /// A progressive file (MP4, M4A, MP3, …).
    Progressive,
    /// MPEG-DASH (a static MPD).
    Dash,
}

/// Which ApsaraVideo VOD stream an asset is: its identity (never a URL).
pub type VodIdentity = core::VodIdentity;

/// Which ApsaraVideo VOD stream an asset is: its identity (never a URL).
#[uniffi::remote(Record)]
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

/// An asset.
pub type AssetInfo = core::AssetInfo;

/// An asset.
#[uniffi::remote(Record)]
pub struct AssetInfo {
    /// Stable id.
    pub id: String,
    /// State.
    pub state: AssetState,
    /// Storage mode.
    pub mode: StorageMode,
    /// HLS or a progressive file.
    pub kind: AssetKind,
    /// Title.
    pub title: Option<String>,
    /// The app's metadata, as given.
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
    pub failure: Option<FailureReason>,
    /// The asset's folder.
    pub dir: PathBuf,
    /// Normal mode, completed: the file a player opens.
    pub path: Option<PathBuf>,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// When it completed (Unix ms).
    pub completed_at: Option<i64>,
    /// Playable offline until (Unix ms).
    pub offline_until: Option<i64>,
    /// For a VOD asset: which stream it is.
    pub vod: Option<VodIdentity>,
    /// The part of the stream it holds, when downloaded with a time range.
    pub range: Option<TimeRange>,
}

/// A part of a stream, in milliseconds from its start.
pub type TimeRange = core::TimeRange;

/// A part of a stream, in milliseconds from its start.
#[uniffi::remote(Record)]
pub struct TimeRange {
    /// Start.
    pub start_ms: u64,
    /// End (null: to the end of the stream).
    pub end_ms: Option<u64>,
}

/// What an image stored with an asset is.
pub type ImageKind = core::ImageKind;

/// What an image stored with an asset is.
#[uniffi::remote(Enum)]
pub enum ImageKind {
    /// The cover.
    Cover,
    /// A snapshot taken at an interval.
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
pub type AssetImage = core::ImageInfo;

/// An image stored with an asset: read it with `openReader(assetId, file)` or at a playback
/// session's `baseUrl() + file`.
#[uniffi::remote(Record)]
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
    pub missing: Option<FailureReason>,
}

/// Download progress of one asset: monotonic, about ten a second at most.
pub type DownloadProgress = core::Progress;

/// Download progress of one asset: monotonic, about ten a second at most.
#[uniffi::remote(Record)]
pub struct DownloadProgress {
    /// The asset.
    pub id: String,
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
