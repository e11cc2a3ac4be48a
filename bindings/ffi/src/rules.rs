//! Tracks by rules (what the device decodes, the user's languages) and what a download would
//! store (`Vault.preview`).

use vodvault_core as core;

use crate::conditions::SpaceCheck;

/// The dynamic range a video is mastered for.
pub type DynamicRange = core::DynamicRange;

/// The dynamic range a video is mastered for.
#[uniffi::remote(Enum)]
pub enum DynamicRange {
    /// Standard dynamic range.
    Sdr,
    /// HDR10 / PQ.
    Hdr10,
    /// Hybrid log-gamma.
    Hlg,
    /// Dolby Vision.
    DolbyVision,
}

/// Rules a download's tracks are chosen by; empty lists mean "any".
#[derive(Debug, Clone, uniffi::Record)]
pub struct TrackRules {
    /// Audio languages in order of preference (`fr`, `en-US`): one audio track, of the first
    /// language offered; none offered: the default one.
    #[uniffi(default = [])]
    pub audio_languages: Vec<String>,
    /// The most audio channels the device plays.
    #[uniffi(default = None)]
    pub max_audio_channels: Option<u32>,
    /// Subtitle languages: every subtitle track in one of them.
    #[uniffi(default = [])]
    pub subtitle_languages: Vec<String>,
    /// Codec families the device decodes: `avc1`, `hvc1` (= `hev1`), `av01`, `vp09`, `dvh1`,
    /// `mp4a`, `ac-3`, `ec-3`, … (Android: from `MediaCodecList`; iOS: `AVURLAsset` support).
    #[uniffi(default = [])]
    pub codecs: Vec<String>,
    /// Dynamic ranges the display shows (`[Sdr]`: no HDR).
    #[uniffi(default = [])]
    pub ranges: Vec<DynamicRange>,
}

impl From<TrackRules> for core::TrackRules {
    fn from(r: TrackRules) -> Self {
        Self {
            audio_languages: r.audio_languages,
            max_audio_channels: r.max_audio_channels,
            subtitle_languages: r.subtitle_languages,
            codecs: r.codecs,
            ranges: r.ranges,
        }
    }
}

/// The role of a track in an asset.
pub type RenditionRole = core::RenditionRole;

/// The role of a track in an asset.
#[uniffi::remote(Enum)]
pub enum RenditionRole {
    /// The video (variant).
    Video,
    /// An audio track.
    Audio,
    /// A subtitle track.
    Subtitles,
    /// A progressive file.
    File,
}

/// One track a download would store.
pub type PickedTrack = core::PickedTrack;

/// One track a download would store.
#[uniffi::remote(Record)]
pub struct PickedTrack {
    /// Video (or the file), audio or subtitles.
    pub role: RenditionRole,
    /// Its name or label.
    pub name: Option<String>,
    /// Its language.
    pub language: Option<String>,
    /// Its codecs.
    pub codecs: Option<String>,
    /// Peak bits per second.
    pub bandwidth: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// `SDR`, `PQ` or `HLG`.
    pub video_range: Option<String>,
    /// `CHANNELS`.
    pub channels: Option<String>,
    /// Segments that would be fetched.
    pub segments: u64,
    /// Seconds.
    pub duration_secs: Option<f64>,
}

/// What downloading a request would store, without storing anything.
pub type Preview = core::Preview;

/// What downloading a request would store, without storing anything.
#[uniffi::remote(Record)]
pub struct Preview {
    /// The tracks, video first.
    pub tracks: Vec<PickedTrack>,
    /// Its size against the space downloads may use and the quota.
    pub space: SpaceCheck,
}
