//! What the vault tells an app about sources and assets.

use std::path::PathBuf;

use serde::Serialize;

use super::failure::FailureReason;
use super::request::TimeRange;
use super::states::{AssetKind, AssetState, Mode};
use crate::hls::master::{Rendition, Variant};

/// What a source offers, before anything is downloaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prepared {
    /// An HLS source.
    Hls {
        /// Whether the URL is a master playlist.
        master: bool,
        /// Variant streams (one, without attributes, for a media playlist); URIs without their
        /// query (signatures, tokens).
        variants: Vec<Variant>,
        /// `EXT-X-MEDIA` renditions, closed captions included (nothing to download for them).
        renditions: Vec<Rendition>,
        /// Duration in seconds (of a master: its first variant's).
        duration_secs: Option<f64>,
        /// Segments (of a master: its first variant's).
        segments: Option<usize>,
        /// Each variant's size in bytes: an estimate (bandwidth × duration) for a master's, exact
        /// for a media playlist made of clear byte ranges (`bytes_exact`); `None` when unknown.
        /// [`crate::Vault::preview`] gives a chosen download's size.
        variant_bytes: Vec<Option<u64>>,
        /// Whether `variant_bytes` are exact.
        bytes_exact: bool,
    },
    /// A DASH source: a static MPD.
    Dash {
        /// Seconds.
        duration_secs: Option<f64>,
        /// Periods (ad breaks and chapters of a multi-period MPD are periods).
        periods: u32,
        /// The adaptation sets of the main period (the longest), with their representations;
        /// a choice is matched to the other periods by id, language and bandwidth.
        adaptation_sets: Vec<DashSetInfo>,
    },
    /// A progressive file.
    File {
        /// Size in bytes, when the server says.
        size: Option<u64>,
        /// `Content-Type`.
        content_type: Option<String>,
        /// Whether the server accepts range requests (resumable).
        accept_ranges: bool,
    },
    /// An ApsaraVideo VOD video.
    Vod {
        /// The video id.
        video_id: String,
        /// Its title.
        title: Option<String>,
        /// Seconds.
        duration_secs: Option<f64>,
        /// VOD's status of the video (`Normal` when playable).
        status: Option<String>,
        /// Every stream VOD offers (definition × format × stream type).
        streams: Vec<VodStreamInfo>,
        /// The source file, when the credentials may read it.
        mezzanine: Option<VodMezzanineInfo>,
    },
}

/// An adaptation set of an MPD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashSetInfo {
    /// `@id`.
    pub id: Option<String>,
    /// `video`, `audio`, `text`, `image` or `other`.
    pub content_type: String,
    /// `@lang`.
    pub language: Option<String>,
    /// `Role` values (`main`, `alternate`, `subtitle`, `commentary`, …).
    pub roles: Vec<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `@mimeType` of its first representation.
    pub mime_type: Option<String>,
    /// Its representations.
    pub representations: Vec<DashRepresentationInfo>,
}

/// A representation of an MPD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashRepresentationInfo {
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
    /// Segments across the presentation (`None` until a segment index is read).
    pub segments: Option<u64>,
    /// Bytes across the presentation: exact when `size_exact` (byte ranges, a segment index),
    /// otherwise bandwidth × duration.
    pub size: Option<u64>,
    /// Whether `size` is exact.
    pub size_exact: bool,
    /// Why it cannot be downloaded, when it cannot (addressing vodvault does not handle).
    pub unsupported: Option<String>,
}

/// One stream of a VOD video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VodStreamInfo {
    /// `FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, `SQ`, `HQ`, …
    pub definition: String,
    /// `m3u8`, `mp4`, `mp3`, …
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Bytes.
    pub size: Option<u64>,
    /// Pixels.
    pub width: Option<u64>,
    /// Pixels.
    pub height: Option<u64>,
    /// Seconds.
    pub duration_secs: Option<f64>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Whether it is encrypted at the source.
    pub encrypted: bool,
    /// `HLSEncryption` (downloadable) or `AliyunVoDEncryption` (not).
    pub encrypt_type: Option<String>,
    /// The transcode job.
    pub job_id: Option<String>,
    /// Why vodvault cannot store it, when it cannot.
    pub unsupported: Option<String>,
}

/// A VOD video's source (mezzanine) file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VodMezzanineInfo {
    /// Bytes.
    pub size: Option<u64>,
    /// CRC-64/ECMA, when VOD reports it.
    pub crc64: Option<u64>,
    /// Pixels.
    pub width: Option<u64>,
    /// Pixels.
    pub height: Option<u64>,
    /// Seconds.
    pub duration_secs: Option<f64>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
}

/// What identifies a VOD asset: the stream, not its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VodIdentity {
    /// The video id.
    pub video_id: String,
    /// Definition (`OD` for the mezzanine).
    pub definition: String,
    /// Format.
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Whether it is the source file.
    pub mezzanine: bool,
    /// The transcode job it was downloaded from.
    pub job_id: Option<String>,
}

/// An image stored with an asset (VOD covers, snapshots, sprites, WebVTT thumbnails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// What it is.
    pub kind: super::states::ImageKind,
    /// Position among images of its kind (1-based).
    pub index: u32,
    /// Its logical name: read it with [`Vault::open_reader`], or append it to a playback
    /// session's base URL.
    pub file: String,
    /// Whether it is stored.
    pub stored: bool,
    /// Bytes, once stored.
    pub size: Option<u64>,
    /// Why it is missing: it could not be fetched (after fresh URLs) and the asset completed
    /// without it; [`Vault::resume`] on the completed asset tries it again.
    pub missing: Option<FailureReason>,
}

/// An asset, as the app sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetInfo {
    /// Stable id.
    pub id: String,
    /// Where it is in its life.
    pub state: AssetState,
    /// Storage mode.
    pub mode: Mode,
    /// Source kind.
    pub kind: AssetKind,
    /// Display title.
    pub title: Option<String>,
    /// The app's data.
    pub metadata: Option<String>,
    /// Source URL without query string (signatures are not shown).
    pub source: String,
    /// Bytes stored and committed.
    pub bytes_done: u64,
    /// Bytes expected in all.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact (otherwise an estimate).
    pub expected_exact: bool,
    /// Pieces stored.
    pub segments_done: u64,
    /// Pieces in all.
    pub segments_total: u64,
    /// Duration in seconds, when known.
    pub duration_secs: Option<f64>,
    /// Key id of the key file wrapping the asset's content key (Encrypted mode).
    pub key_id: Option<String>,
    /// Why it failed.
    pub failure: Option<FailureReason>,
    /// The asset's directory.
    pub dir: PathBuf,
    /// Normal mode, completed: the file a player opens (`index.m3u8` or the media file).
    pub path: Option<PathBuf>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub completed_at: Option<i64>,
    /// Playable offline only until this time (Unix ms).
    pub offline_until: Option<i64>,
    /// For a VOD asset: which stream it is.
    pub vod: Option<VodIdentity>,
    /// The part of the stream it holds, when it was downloaded with a time range.
    pub range: Option<TimeRange>,
}
