//! The catalog's rows, as read and written.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{CatalogError, Result};
use crate::model::{AssetKind, AssetState, ImageKind, Mode, RenditionRole, SegmentKind};

/// An `images` row: an image stored with an asset (schema 3). `Debug` leaves out the signed URL.
#[derive(Clone, PartialEq)]
pub struct ImageRow {
    /// What it is.
    pub kind: ImageKind,
    /// Position among images of its kind (1-based).
    pub idx: u32,
    /// URL as last given (may be signed).
    pub url: String,
    /// URL without signatures.
    pub uri: String,
    /// Relative path of the stored file.
    pub file: String,
    /// Stored plaintext bytes.
    pub size: Option<u64>,
    /// Normal mode: SHA-256 of the stored file.
    pub sha256: Option<String>,
    /// Stored and committed.
    pub done: bool,
    /// JSON failure reason: the image could not be fetched, and the asset completed without it
    /// (schema 4).
    pub failure: Option<String>,
}

impl std::fmt::Debug for ImageRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageRow")
            .field("kind", &self.kind)
            .field("idx", &self.idx)
            .field("uri", &self.uri)
            .field("file", &self.file)
            .field("size", &self.size)
            .field("done", &self.done)
            .field("missing", &self.failure.is_some())
            .finish_non_exhaustive()
    }
}

impl ImageRow {
    pub(super) fn from_row(row: &SqliteRow) -> Result<Self> {
        Ok(Self {
            kind: row.try_get::<String, _>("kind")?.parse()?,
            idx: u32::try_from(row.try_get::<i64, _>("idx")?).map_err(|_| CatalogError::Corrupt("image index"))?,
            url: row.try_get("url")?,
            uri: row.try_get("uri")?,
            file: row.try_get("file")?,
            size: opt_u64_col(row, "size")?,
            sha256: row.try_get("sha256")?,
            done: row.try_get::<String, _>("state")? == "done",
            failure: row.try_get("failure")?,
        })
    }
}

/// An `assets` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    /// Asset id.
    pub id: String,
    /// Stable identity (source without signatures + rendition choice).
    pub identity: String,
    /// Source kind.
    pub kind: AssetKind,
    /// Storage mode.
    pub mode: Mode,
    /// Source URL as last given or refreshed.
    pub source_url: String,
    /// JSON of what was asked for.
    pub request: String,
    /// Display title.
    pub title: Option<String>,
    /// App metadata.
    pub metadata: Option<String>,
    /// Sealed request headers.
    pub headers: Option<Vec<u8>>,
    /// State.
    pub state: AssetState,
    /// JSON failure reason.
    pub failure: Option<String>,
    /// Expected total stored bytes.
    pub bytes_expected: Option<u64>,
    /// Whether `bytes_expected` is exact.
    pub expected_exact: bool,
    /// Committed bytes.
    pub bytes_done: u64,
    /// Pieces in total.
    pub segments_total: u64,
    /// Pieces committed.
    pub segments_done: u64,
    /// Media duration, seconds.
    pub duration_secs: Option<f64>,
    /// Key id of the key file wrapping `wrapped_key`.
    pub key_id: Option<String>,
    /// Wrapped content key.
    pub wrapped_key: Option<Vec<u8>>,
    /// Relative path a player opens.
    pub entry: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms.
    pub completed_at: Option<i64>,
    /// Playable offline only until this time (Unix ms); `None` = no limit. Schema 2.
    pub offline_until: Option<i64>,
    /// JSON: the VOD identity and what the API last said (VOD assets only). Schema 3.
    pub vod: Option<String>,
}

/// A `renditions` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionRow {
    /// Position within the asset (0 = video or file).
    pub idx: u32,
    /// Role.
    pub kind: RenditionRole,
    /// Relative directory of its files.
    pub dir: String,
    /// Current URL (may be signed).
    pub url: String,
    /// URL without signatures.
    pub uri: String,
    /// JSON attributes.
    pub attrs: String,
    /// Source media playlist as last fetched.
    pub playlist: Option<String>,
    /// Progressive validator.
    pub validator: Option<String>,
    /// JSON: the `EXT-X-DEFINE` variables the playlist was read with (schema 4).
    pub variables: Option<String>,
}

/// A `segments` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    /// Rendition index.
    pub rendition: u32,
    /// Kind.
    pub kind: SegmentKind,
    /// Position in the playlist (maps: order of appearance).
    pub idx: u32,
    /// Media sequence number.
    pub msn: Option<u64>,
    /// URI without signatures.
    pub uri: String,
    /// Byte range (offset, length).
    pub range: Option<(u64, u64)>,
    /// Relative path of the stored file.
    pub file: String,
    /// Stored plaintext bytes.
    pub size: Option<u64>,
    /// Normal mode: SHA-256 of the stored file.
    pub sha256: Option<String>,
    /// Progressive: durable bytes so far.
    pub resume_offset: u64,
    /// Progressive, downloaded in byte-range pieces: which are durable (JSON, schema 5).
    pub pieces: Option<String>,
    /// Stored and committed.
    pub done: bool,
}

/// A piece that has been stored durably, to mark done.
#[derive(Debug, Clone, PartialEq)]
pub struct DoneSegment {
    /// Rendition index.
    pub rendition: u32,
    /// Kind.
    pub kind: SegmentKind,
    /// Index.
    pub idx: u32,
    /// Stored plaintext bytes.
    pub size: u64,
    /// Normal mode digest.
    pub sha256: Option<String>,
}

pub(super) fn u64_col(row: &SqliteRow, col: &str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| CatalogError::Corrupt("negative count"))
}

pub(super) fn opt_u64_col(row: &SqliteRow, col: &str) -> Result<Option<u64>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u64::try_from(v).map_err(|_| CatalogError::Corrupt("negative count"))).transpose()
}

pub(super) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl AssetRow {
    pub(super) fn from_row(row: &SqliteRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            identity: row.try_get("identity")?,
            kind: row.try_get::<String, _>("kind")?.parse()?,
            mode: row.try_get::<String, _>("mode")?.parse()?,
            source_url: row.try_get("source_url")?,
            request: row.try_get("request")?,
            title: row.try_get("title")?,
            metadata: row.try_get("metadata")?,
            headers: row.try_get("headers")?,
            state: row.try_get::<String, _>("state")?.parse()?,
            failure: row.try_get("failure")?,
            bytes_expected: opt_u64_col(row, "bytes_expected")?,
            expected_exact: row.try_get::<i64, _>("expected_exact")? != 0,
            bytes_done: u64_col(row, "bytes_done")?,
            segments_total: u64_col(row, "segments_total")?,
            segments_done: u64_col(row, "segments_done")?,
            duration_secs: row.try_get("duration_secs")?,
            key_id: row.try_get("key_id")?,
            wrapped_key: row.try_get("wrapped_key")?,
            entry: row.try_get("entry")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            completed_at: row.try_get("completed_at")?,
            offline_until: row.try_get("offline_until")?,
            vod: row.try_get("vod")?,
        })
    }
}

impl RenditionRow {
    pub(super) fn from_row(row: &SqliteRow) -> Result<Self> {
        Ok(Self {
            idx: u32::try_from(row.try_get::<i64, _>("idx")?).map_err(|_| CatalogError::Corrupt("rendition index"))?,
            kind: row.try_get::<String, _>("kind")?.parse()?,
            dir: row.try_get("dir")?,
            url: row.try_get("url")?,
            uri: row.try_get("uri")?,
            attrs: row.try_get("attrs")?,
            playlist: row.try_get("playlist")?,
            validator: row.try_get("validator")?,
            variables: row.try_get("variables")?,
        })
    }
}

impl SegmentRow {
    pub(super) fn from_row(row: &SqliteRow) -> Result<Self> {
        let idx = |c: &str| -> Result<u32> {
            u32::try_from(row.try_get::<i64, _>(c)?).map_err(|_| CatalogError::Corrupt("segment index"))
        };
        let range = match (opt_u64_col(row, "range_offset")?, opt_u64_col(row, "range_length")?) {
            (Some(o), Some(l)) => Some((o, l)),
            _ => None,
        };
        Ok(Self {
            rendition: idx("rendition")?,
            kind: row.try_get::<String, _>("kind")?.parse()?,
            idx: idx("idx")?,
            msn: opt_u64_col(row, "msn")?,
            uri: row.try_get("uri")?,
            range,
            file: row.try_get("file")?,
            size: opt_u64_col(row, "size")?,
            sha256: row.try_get("sha256")?,
            resume_offset: u64_col(row, "resume_offset")?,
            pieces: row.try_get("pieces")?,
            done: row.try_get::<String, _>("state")? == "done",
        })
    }
}

/// An asset's secrets sealed under a new key file (see [`Catalog::rekey`]).
#[derive(Debug, Clone)]
pub struct Rekeyed {
    /// The asset.
    pub id: String,
    /// Its content key wrapped under the new key file (Encrypted mode).
    pub wrapped_key: Option<Vec<u8>>,
    /// Its request headers sealed under the new key file.
    pub headers: Option<Vec<u8>>,
}
