//! MPEG-DASH manifests (ISO/IEC 23009-1): a static MPD read into the periods, adaptation sets and
//! representations it offers ([`Mpd::parse`]); each representation's pieces resolved from its
//! segment addressing — `SegmentTemplate` with or without `SegmentTimeline`, `SegmentList`,
//! `SegmentBase` with its `sidx` ([`segments`]); and written back out, as an HLS media playlist
//! (how the engine downloads a representation and how HLS players get it) and as a local MPD
//! ([`write`]). No I/O: a `sidx` is handed in as bytes.

mod mpd;
pub mod segments;
pub mod sidx;
mod time;
pub mod write;

pub use mpd::{AdaptationSet, Addressing, Channels, ContentKind, Mpd, Period, Representation, S, SegInfo, UrlRange};
pub use time::{format_duration, parse_duration};

/// Why an MPD cannot be downloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpdError {
    /// Not XML, or XML whose root is not `MPD`.
    #[error("invalid MPD: {0}")]
    Invalid(String),
    /// `type="dynamic"`: a live presentation.
    #[error("live MPD (type=\"dynamic\"): only complete (static) presentations can be downloaded")]
    Dynamic,
    /// `ContentProtection`: DRM-protected content, with the schemes named.
    #[error("DRM-protected MPD ({0}): vodvault stores only clear streams")]
    Drm(String),
    /// Something the downloader does not handle, with the reason.
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// The most pieces one representation may have (a 24-hour stream of 0.5 s segments is 172,800):
/// more is an addressing mistake (a `@r` of a billion), not a film.
pub const MAX_SEGMENTS: usize = 500_000;
