//! What a source offers, as `prepare` reports it: an HLS source's variants and renditions (the
//! parts of them an app shows), a DASH source's adaptation sets, a progressive file, or a VOD
//! video's streams.

use vodvault_core as core;

use crate::vod::{VodMezzanine, VodStream};

/// A variant stream of an HLS source.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VariantInfo {
    /// URI as written.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// Average bits per second.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// Width in pixels.
    pub width: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// `AUDIO` group.
    pub audio_group: Option<String>,
    /// `SUBTITLES` group.
    pub subtitles_group: Option<String>,
    /// `VIDEO-RANGE` (`SDR`, `PQ`, `HLG`).
    pub video_range: Option<String>,
    /// Its size in bytes: exact or an estimate (see `SourceInfo.Hls.bytesExact`); null when unknown.
    pub bytes: Option<u64>,
}

/// The kind of an alternative rendition.
pub type RenditionKind = core::hls::master::RenditionKind;

/// The kind of an alternative rendition.
#[uniffi::remote(Enum)]
pub enum RenditionKind {
    /// Audio.
    Audio,
    /// Subtitles.
    Subtitles,
    /// Video (another angle).
    Video,
    /// In-band closed captions.
    ClosedCaptions,
}

/// An `EXT-X-MEDIA` rendition of an HLS source.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RenditionInfo {
    /// Kind.
    pub kind: RenditionKind,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `DEFAULT=YES`.
    pub is_default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `URI` (absent when carried in the variant's stream).
    pub uri: Option<String>,
}

/// An adaptation set of an MPD.
pub type DashSet = core::DashSetInfo;

/// An adaptation set of an MPD.
#[uniffi::remote(Record)]
pub struct DashSet {
    /// `@id`.
    pub id: Option<String>,
    /// `video`, `audio`, `text`, `image` or `other`.
    pub content_type: String,
    /// `@lang`.
    pub language: Option<String>,
    /// `Role` values.
    pub roles: Vec<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `@mimeType`.
    pub mime_type: Option<String>,
    /// Its representations.
    pub representations: Vec<DashRepresentation>,
}

/// A representation of an MPD.
pub type DashRepresentation = core::DashRepresentationInfo;

/// A representation of an MPD.
#[uniffi::remote(Record)]
pub struct DashRepresentation {
    /// `@id`.
    pub id: String,
    /// Bits per second.
    pub bandwidth: u64,
    /// `@codecs`.
    pub codecs: Option<String>,
    /// Pixels.
    pub width: Option<u64>,
    /// Pixels.
    pub height: Option<u64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// Audio channels.
    pub channels: Option<u32>,
    /// Hz.
    pub sampling_rate: Option<u64>,
    /// Segments across the presentation.
    pub segments: Option<u64>,
    /// Bytes: exact when `size_exact`, else bandwidth × duration.
    pub size: Option<u64>,
    /// Whether `size` is exact.
    pub size_exact: bool,
    /// Why it cannot be downloaded, when it cannot.
    pub unsupported: Option<String>,
}

/// What a source offers.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SourceInfo {
    /// An HLS source.
    Hls {
        /// A master playlist (else a media playlist).
        master: bool,
        /// Variants.
        variants: Vec<VariantInfo>,
        /// Renditions.
        renditions: Vec<RenditionInfo>,
        /// Duration in seconds (of a master: its first variant's).
        duration_secs: Option<f64>,
        /// Segments (of a master: its first variant's).
        segments: Option<u64>,
        /// Whether the variants' `bytes` are exact (else bandwidth × duration estimates).
        bytes_exact: bool,
    },
    /// A DASH source (a static MPD).
    Dash {
        /// Seconds.
        duration_secs: Option<f64>,
        /// Periods.
        periods: u32,
        /// The main period's adaptation sets.
        adaptation_sets: Vec<DashSet>,
    },
    /// A progressive file.
    File {
        /// Size in bytes.
        size: Option<u64>,
        /// `Content-Type`.
        content_type: Option<String>,
        /// Resumable (the server accepts ranges).
        accept_ranges: bool,
    },
    /// An ApsaraVideo VOD video.
    Vod {
        /// Video id.
        video_id: String,
        /// Title.
        title: Option<String>,
        /// Seconds.
        duration_secs: Option<f64>,
        /// VOD's status (`Normal` when playable).
        status: Option<String>,
        /// Every stream (definition × format × stream type), with why any cannot be stored.
        streams: Vec<VodStream>,
        /// The source file, when the credentials may read it.
        mezzanine: Option<VodMezzanine>,
    },
}

impl From<core::Prepared> for SourceInfo {
    fn from(p: core::Prepared) -> Self {
        match p {
            core::Prepared::Hls {
                master,
                variants,
                renditions,
                duration_secs,
                segments,
                variant_bytes,
                bytes_exact,
            } => SourceInfo::Hls {
                master,
                bytes_exact,
                variants: variants
                    .into_iter()
                    .zip(variant_bytes.into_iter().chain(std::iter::repeat(None)))
                    .map(|(v, bytes)| VariantInfo {
                        bytes,
                        video_range: v.video_range,
                        uri: v.uri,
                        bandwidth: v.bandwidth,
                        average_bandwidth: v.average_bandwidth,
                        codecs: v.codecs,
                        width: v.width,
                        height: v.height,
                        frame_rate: v.frame_rate,
                        audio_group: v.audio_group,
                        subtitles_group: v.subtitles_group,
                    })
                    .collect(),
                renditions: renditions
                    .into_iter()
                    .map(|r| RenditionInfo {
                        kind: r.kind,
                        group_id: r.group_id,
                        name: r.name,
                        language: r.language,
                        is_default: r.default,
                        autoselect: r.autoselect,
                        uri: r.uri,
                    })
                    .collect(),
                duration_secs,
                segments: segments.map(|s| s as u64),
            },
            core::Prepared::Dash { duration_secs, periods, adaptation_sets } => {
                SourceInfo::Dash { duration_secs, periods, adaptation_sets }
            }
            core::Prepared::File { size, content_type, accept_ranges } => {
                SourceInfo::File { size, content_type, accept_ranges }
            }
            core::Prepared::Vod { video_id, title, duration_secs, status, streams, mezzanine } => {
                SourceInfo::Vod { video_id, title, duration_secs, status, streams, mezzanine }
            }
        }
    }
}
