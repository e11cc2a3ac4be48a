//! The states and kinds of assets and what they are made of, each with one text spelling (the
//! catalog's, the JSON's and the CLI's).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Text that names no value of the type (the type's name): an unreadable catalog value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no {0} is called that")]
pub struct UnknownText(pub &'static str);

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// The text of this value (in the catalog, in JSON, in the CLI).
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
        }
        impl FromStr for $name {
            type Err = UnknownText;
            fn from_str(s: &str) -> Result<Self, UnknownText> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(UnknownText(stringify!($name))) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(
    /// What kind of source an asset came from.
    AssetKind { /// HLS (master or media playlist).
        Hls = "hls", /// A progressive file (MP4, M4A, MP3, …).
        Progressive = "progressive", /// MPEG-DASH (a static MPD).
        Dash = "dash" }
);
text_enum!(
    /// How an asset is stored.
    Mode { /// Plain files and a local playlist any player can open.
        Normal = "normal", /// Every file sealed under the asset's content key.
        Encrypted = "encrypted" }
);
text_enum!(
    /// Where an asset is in its life.
    AssetState {
        /// Waiting for a download slot.
        Queued = "queued",
        /// Being downloaded.
        Downloading = "downloading",
        /// Stopped by the app; resumes on request.
        Paused = "paused",
        /// Stopped by an error (see the failure reason); resumes on request.
        Failed = "failed",
        /// Every piece stored and verified.
        Completed = "completed",
        /// Stopped for good by the app; its partial files are deleted.
        Cancelled = "cancelled",
        /// Queued, held back: there is no network. Reported, never stored (the catalog says
        /// `queued`; the conditions are this process's).
        WaitingForNetwork = "waiting_for_network",
        /// Queued, held back: the network is metered and the download requires an unmetered one.
        WaitingForUnmetered = "waiting_for_unmetered",
        /// Queued, held back: the device is not charging and the download requires it.
        WaitingForCharging = "waiting_for_charging",
        /// Queued, held back: the battery is low and the download requires it not to be.
        WaitingForBattery = "waiting_for_battery",
        /// Queued, held back: free space is below what downloads keep free, or the vault's quota
        /// is used up.
        WaitingForStorage = "waiting_for_storage",
    }
);
impl AssetState {
    /// Whether this is one of the `waiting_for_*` states (a queued download held back).
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            AssetState::WaitingForNetwork
                | AssetState::WaitingForUnmetered
                | AssetState::WaitingForCharging
                | AssetState::WaitingForBattery
                | AssetState::WaitingForStorage
        )
    }
}

text_enum!(
    /// The role of a rendition in an asset.
    RenditionRole { /// The video variant.
        Video = "video", /// An alternative audio rendition.
        Audio = "audio", /// A subtitle rendition.
        Subtitles = "subtitles", /// A progressive file.
        File = "file" }
);
text_enum!(
    /// What a segment row is.
    SegmentKind { /// A media initialization section (`EXT-X-MAP`).
        Init = "init", /// A media segment.
        Media = "media", /// A progressive file.
        File = "file" }
);

text_enum!(
    /// What an image stored with an asset is.
    ImageKind {
        /// The cover.
        Cover = "cover",
        /// A snapshot taken at an interval.
        Snapshot = "snapshot",
        /// A sprite: thumbnails tiled in one image, for seek previews.
        Sprite = "sprite",
        /// One of the frames sprites are made of.
        SpriteOriginal = "sprite_original",
        /// A WebVTT track mapping times to sprite regions.
        WebVtt = "webvtt",
    }
);
