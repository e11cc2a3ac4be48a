//! What happens in a vault, as events, and the hook an app gives for expired URLs.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::failure::FailureReason;
use super::states::AssetState;

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
    /// A piece a player asked for before the download had it was fetched (first, out of the
    /// download's order) and stored: it counts in the download's progress like any other.
    FetchedForPlayback {
        /// The asset.
        id: String,
        /// The piece (logical name).
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
        kind: super::states::ImageKind,
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
