//! The catalog: one SQLite file per vault, through sqlx (bundled SQLite, WAL, `busy_timeout`,
//! foreign keys on, migrations embedded from `core/migrations`).
//!
//! Writes go through one connection at a time (a writer lock): SQLite has one writer anyway, and
//! queueing in-process avoids busy retries. Other processes on the same vault (the CLI's
//! `pause` while a `download` runs) are handled by `busy_timeout`.
//!
//! Synchronous mode is `NORMAL` under WAL: a crash of the process never loses a commit; a power
//! loss may lose the last few, which only ever makes the catalog claim *less* than is on disk
//! (segments are fetched again), never more.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use tokio::sync::Mutex;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A catalog failure.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// SQLite or sqlx failed.
    #[error("catalog: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed (the catalog is left at its previous version).
    #[error("catalog migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value this build cannot read.
    #[error("catalog holds an unreadable value in {0}")]
    Corrupt(&'static str),
}

type Result<T, E = CatalogError> = std::result::Result<T, E>;

impl CatalogError {
    /// Whether SQLite failed because the disk is full (`SQLITE_FULL`).
    pub fn is_storage_full(&self) -> bool {
        match self {
            CatalogError::Db(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c == "13" || c.ends_with("FULL")) || e.message().contains("disk is full")
            }
            CatalogError::Db(sqlx::Error::Io(e)) => e.raw_os_error() == Some(28),
            _ => false,
        }
    }
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// The catalog's text for this value.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
        }
        impl FromStr for $name {
            type Err = CatalogError;
            fn from_str(s: &str) -> Result<Self> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(CatalogError::Corrupt(stringify!($name))) }
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
        Progressive = "progressive" }
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
    }
);
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
    fn from_row(row: &SqliteRow) -> Result<Self> {
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

fn u64_col(row: &SqliteRow, col: &str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| CatalogError::Corrupt("negative count"))
}

fn opt_u64_col(row: &SqliteRow, col: &str) -> Result<Option<u64>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u64::try_from(v).map_err(|_| CatalogError::Corrupt("negative count"))).transpose()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl AssetRow {
    fn from_row(row: &SqliteRow) -> Result<Self> {
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
    fn from_row(row: &SqliteRow) -> Result<Self> {
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
    fn from_row(row: &SqliteRow) -> Result<Self> {
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

/// Current time, Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An open catalog.
#[derive(Debug)]
pub struct Catalog {
    pool: SqlitePool,
    writer: Mutex<()>,
}

impl Catalog {
    /// Opens (creating if needed) and migrates the catalog at `path`.
    ///
    /// # Errors
    /// [`CatalogError`] if SQLite cannot open it or a migration fails.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).min_connections(1).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, writer: Mutex::new(()) })
    }

    /// The underlying pool (for tests and maintenance).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A `vault_meta` value.
    ///
    /// # Errors
    /// [`CatalogError::Db`].
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM vault_meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a `vault_meta` value.
    ///
    /// # Errors
    /// [`CatalogError::Db`].
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO vault_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inserts an asset with its renditions, segments and images in one transaction.
    ///
    /// # Errors
    /// [`CatalogError::Db`] (e.g. the id or identity exists).
    pub async fn insert_asset(
        &self,
        a: &AssetRow,
        renditions: &[RenditionRow],
        segments: &[SegmentRow],
        images: &[ImageRow],
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO assets (id, identity, kind, mode, source_url, request, title, metadata, headers, state, failure,
                bytes_expected, expected_exact, bytes_done, segments_total, segments_done, duration_secs, key_id,
                wrapped_key, entry, created_at, updated_at, completed_at, offline_until, vod)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.identity)
        .bind(a.kind.as_str())
        .bind(a.mode.as_str())
        .bind(&a.source_url)
        .bind(&a.request)
        .bind(&a.title)
        .bind(&a.metadata)
        .bind(&a.headers)
        .bind(a.state.as_str())
        .bind(&a.failure)
        .bind(a.bytes_expected.map(i64_of))
        .bind(i64::from(a.expected_exact))
        .bind(i64_of(a.bytes_done))
        .bind(i64_of(a.segments_total))
        .bind(i64_of(a.segments_done))
        .bind(a.duration_secs)
        .bind(&a.key_id)
        .bind(&a.wrapped_key)
        .bind(&a.entry)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.completed_at)
        .bind(a.offline_until)
        .bind(&a.vod)
        .execute(&mut *tx)
        .await?;
        for r in renditions {
            insert_rendition(&mut tx, &a.id, r).await?;
        }
        for s in segments {
            insert_segment(&mut tx, &a.id, s).await?;
        }
        for i in images {
            insert_image(&mut tx, &a.id, i).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An asset's images, by kind and position.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn images(&self, id: &str) -> Result<Vec<ImageRow>> {
        sqlx::query("SELECT * FROM images WHERE asset_id = ? ORDER BY kind, idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(ImageRow::from_row)
            .collect()
    }

    /// Marks an image stored.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn commit_image(
        &self,
        id: &str,
        kind: ImageKind,
        idx: u32,
        size: u64,
        sha256: Option<&str>,
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query(
            "UPDATE images SET state = 'done', size = ?, sha256 = ?, failure = NULL
             WHERE asset_id = ? AND kind = ? AND idx = ?",
        )
        .bind(i64_of(size))
        .bind(sha256)
        .bind(id)
        .bind(kind.as_str())
        .bind(i64::from(idx))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that an image could not be fetched (`failure`: JSON reason); it stays pending.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn fail_image(&self, id: &str, kind: ImageKind, idx: u32, failure: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE images SET failure = ? WHERE asset_id = ? AND kind = ? AND idx = ? AND state = 'pending'")
            .bind(failure)
            .bind(id)
            .bind(kind.as_str())
            .bind(i64::from(idx))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces the URLs of an asset's images (fresh signatures), matched by kind and position.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn update_image_urls(&self, id: &str, urls: &[(ImageKind, u32, String)]) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for (kind, idx, url) in urls {
            sqlx::query("UPDATE images SET url = ? WHERE asset_id = ? AND kind = ? AND idx = ?")
                .bind(url)
                .bind(id)
                .bind(kind.as_str())
                .bind(i64::from(*idx))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores an asset's VOD JSON.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_vod(&self, id: &str, vod: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET vod = ?, updated_at = ? WHERE id = ?")
            .bind(vod)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces an asset's renditions and segments (a clean restart after the source changed).
    ///
    /// # Errors
    /// [`CatalogError::Db`].
    pub async fn replace_plan(
        &self,
        id: &str,
        renditions: &[RenditionRow],
        segments: &[SegmentRow],
        bytes_expected: Option<u64>,
        expected_exact: bool,
        duration_secs: Option<f64>,
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM renditions WHERE asset_id = ?").bind(id).execute(&mut *tx).await?;
        // The files are gone with the asset's directory: images are fetched again too.
        sqlx::query(
            "UPDATE images SET state = 'pending', size = NULL, sha256 = NULL, failure = NULL WHERE asset_id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for r in renditions {
            insert_rendition(&mut tx, id, r).await?;
        }
        for s in segments {
            insert_segment(&mut tx, id, s).await?;
        }
        sqlx::query(
            "UPDATE assets SET bytes_expected = ?, expected_exact = ?, bytes_done = 0, segments_total = ?,
             segments_done = 0, duration_secs = ?, updated_at = ? WHERE id = ?",
        )
        .bind(bytes_expected.map(i64_of))
        .bind(i64::from(expected_exact))
        .bind(i64_of(segments.len() as u64))
        .bind(duration_secs)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One asset.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn asset(&self, id: &str) -> Result<Option<AssetRow>> {
        sqlx::query("SELECT * FROM assets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| AssetRow::from_row(&r))
            .transpose()
    }

    /// The asset with this identity.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn asset_by_identity(&self, identity: &str) -> Result<Option<AssetRow>> {
        sqlx::query("SELECT * FROM assets WHERE identity = ?")
            .bind(identity)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| AssetRow::from_row(&r))
            .transpose()
    }

    /// Every asset, oldest first.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn assets(&self) -> Result<Vec<AssetRow>> {
        sqlx::query("SELECT * FROM assets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(AssetRow::from_row)
            .collect()
    }

    /// Ids of assets in `state`, oldest first.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn ids_in_state(&self, state: AssetState) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM assets WHERE state = ? ORDER BY created_at, id")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    /// An asset's renditions.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn renditions(&self, id: &str) -> Result<Vec<RenditionRow>> {
        sqlx::query("SELECT * FROM renditions WHERE asset_id = ? ORDER BY idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(RenditionRow::from_row)
            .collect()
    }

    /// An asset's segments, in download order (renditions in order; init sections first).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn segments(&self, id: &str) -> Result<Vec<SegmentRow>> {
        sqlx::query(
            "SELECT * FROM segments WHERE asset_id = ?
             ORDER BY rendition, CASE kind WHEN 'init' THEN 0 ELSE 1 END, idx",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(SegmentRow::from_row)
        .collect()
    }

    /// Sets the state (and failure reason) unconditionally.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_state(&self, id: &str, state: AssetState, failure: Option<&str>) -> Result<()> {
        let _w = self.writer.lock().await;
        let completed = (state == AssetState::Completed).then(now_ms);
        sqlx::query(
            "UPDATE assets SET state = ?, failure = ?, updated_at = ?, completed_at = COALESCE(?, completed_at) WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(failure)
        .bind(now_ms())
        .bind(completed)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the asset to `to` (with `failure`, or clearing it) only if it is in one of `from`;
    /// returns whether it did.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn transition(
        &self,
        id: &str,
        from: &[AssetState],
        to: AssetState,
        failure: Option<&str>,
    ) -> Result<bool> {
        let _w = self.writer.lock().await;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM assets WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        let Some(current) = current else {
            return Ok(false);
        };
        if !from.iter().any(|s| s.as_str() == current) {
            return Ok(false);
        }
        let completed = (to == AssetState::Completed).then(now_ms);
        sqlx::query(
            "UPDATE assets SET state = ?, failure = ?, updated_at = ?, completed_at = COALESCE(?, completed_at)
             WHERE id = ? AND state = ?",
        )
        .bind(to.as_str())
        .bind(failure)
        .bind(now_ms())
        .bind(completed)
        .bind(id)
        .bind(current)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// An asset's state.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn state(&self, id: &str) -> Result<Option<AssetState>> {
        let s: Option<String> =
            sqlx::query_scalar("SELECT state FROM assets WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        s.map(|s| s.parse()).transpose()
    }

    /// Marks segments done (their files are durable) and updates the asset's counters, in one
    /// transaction.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn commit_segments(&self, id: &str, done: &[DoneSegment]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for d in done {
            sqlx::query(
                "UPDATE segments SET state = 'done', size = ?, sha256 = ?, resume_offset = ?
                 WHERE asset_id = ? AND rendition = ? AND kind = ? AND idx = ?",
            )
            .bind(i64_of(d.size))
            .bind(&d.sha256)
            .bind(i64_of(d.size))
            .bind(id)
            .bind(i64::from(d.rendition))
            .bind(d.kind.as_str())
            .bind(i64::from(d.idx))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE assets SET
                segments_done = (SELECT COUNT(*) FROM segments WHERE asset_id = ?1 AND state = 'done'),
                bytes_done = (SELECT COALESCE(SUM(size), 0) FROM segments WHERE asset_id = ?1 AND state = 'done'),
                updated_at = ?2
             WHERE id = ?1",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how many bytes of a progressive file are durable (resume point) and its
    /// validator.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_resume_point(&self, id: &str, offset: u64, validator: Option<&str>) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE segments SET resume_offset = ? WHERE asset_id = ? AND kind = 'file'")
            .bind(i64_of(offset))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE renditions SET validator = ? WHERE asset_id = ? AND kind = 'file'")
            .bind(validator)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE assets SET bytes_done = ?, updated_at = ? WHERE id = ?")
            .bind(i64_of(offset))
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates a rendition's URL and, when given, its fetched playlist with the variables it was
    /// read with (JSON), after a refresh or re-fetch.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn update_rendition_source(
        &self,
        id: &str,
        idx: u32,
        url: &str,
        playlist: Option<(&str, &str)>,
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query(
            "UPDATE renditions SET url = ?, playlist = COALESCE(?, playlist), variables = COALESCE(?, variables)
             WHERE asset_id = ? AND idx = ?",
        )
        .bind(url)
        .bind(playlist.map(|p| p.0))
        .bind(playlist.map(|p| p.1))
        .bind(id)
        .bind(i64::from(idx))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Updates the asset's source URL (after a refresh).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_source_url(&self, id: &str, url: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET source_url = ?, updated_at = ? WHERE id = ?")
            .bind(url)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the expected size.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_expected(&self, id: &str, bytes: Option<u64>, exact: bool) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET bytes_expected = ?, expected_exact = ? WHERE id = ?")
            .bind(bytes.map(i64_of))
            .bind(i64::from(exact))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks every segment pending again and zeroes the counters (cancel, or a source change).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn reset_segments(&self, id: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE segments SET state = 'pending', size = NULL, sha256 = NULL, resume_offset = 0 WHERE asset_id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE renditions SET validator = NULL WHERE asset_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE images SET state = 'pending', size = NULL, sha256 = NULL, failure = NULL WHERE asset_id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE assets SET bytes_done = 0, segments_done = 0, updated_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or clears) the time until which the asset may be played offline.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_offline_until(&self, id: &str, until: Option<i64>) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET offline_until = ?, updated_at = ? WHERE id = ?")
            .bind(until)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the relative path a player opens.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_entry(&self, id: &str, entry: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET entry = ? WHERE id = ?").bind(entry).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Sets the wrapped content key.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_wrapped_key(&self, id: &str, key_id: &str, wrapped: &[u8]) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET key_id = ?, wrapped_key = ? WHERE id = ?")
            .bind(key_id)
            .bind(wrapped)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces every asset's wrapped content key and sealed headers (key rotation) and the
    /// vault's key id, in one transaction.
    ///
    /// # Errors
    /// [`CatalogError`]; nothing is changed.
    pub async fn rekey(&self, assets: &[Rekeyed], key_id: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for Rekeyed { id, wrapped_key: wrapped, headers } in assets {
            let kid = wrapped.as_ref().map(|_| key_id);
            sqlx::query("UPDATE assets SET wrapped_key = ?, key_id = ?, headers = ?, updated_at = ? WHERE id = ?")
                .bind(wrapped)
                .bind(kid)
                .bind(headers)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE vault_meta SET value = ? WHERE key = 'key_id'").bind(key_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an asset and everything under it.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn delete_asset(&self, id: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("DELETE FROM assets WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}

async fn insert_rendition(tx: &mut sqlx::SqliteConnection, id: &str, r: &RenditionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO renditions (asset_id, idx, kind, dir, url, uri, attrs, playlist, validator, variables)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(i64::from(r.idx))
    .bind(r.kind.as_str())
    .bind(&r.dir)
    .bind(&r.url)
    .bind(&r.uri)
    .bind(&r.attrs)
    .bind(&r.playlist)
    .bind(&r.validator)
    .bind(&r.variables)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_image(tx: &mut sqlx::SqliteConnection, id: &str, i: &ImageRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO images (asset_id, kind, idx, url, uri, file, size, sha256, state, failure)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(i.kind.as_str())
    .bind(i64::from(i.idx))
    .bind(&i.url)
    .bind(&i.uri)
    .bind(&i.file)
    .bind(i.size.map(i64_of))
    .bind(&i.sha256)
    .bind(if i.done { "done" } else { "pending" })
    .bind(&i.failure)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_segment(tx: &mut sqlx::SqliteConnection, id: &str, s: &SegmentRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO segments (asset_id, rendition, kind, idx, msn, uri, range_offset, range_length, file, size, sha256, resume_offset, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(i64::from(s.rendition))
    .bind(s.kind.as_str())
    .bind(i64::from(s.idx))
    .bind(s.msn.map(i64_of))
    .bind(&s.uri)
    .bind(s.range.map(|r| i64_of(r.0)))
    .bind(s.range.map(|r| i64_of(r.1)))
    .bind(&s.file)
    .bind(s.size.map(i64_of))
    .bind(&s.sha256)
    .bind(i64_of(s.resume_offset))
    .bind(if s.done { "done" } else { "pending" })
    .execute(&mut *tx)
    .await?;
    Ok(())
}
