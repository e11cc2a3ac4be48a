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

use crate::clock::now_ms;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Mutex;

use crate::model::{AssetState, ImageKind, UnknownText};

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

impl From<UnknownText> for CatalogError {
    fn from(e: UnknownText) -> Self {
        CatalogError::Corrupt(e.0)
    }
}

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

mod pieces;
mod rows;
#[cfg(test)]
mod tests;

use rows::i64_of;
pub(crate) use rows::{AssetRow, DoneSegment, ImageRow, Rekeyed, RenditionRow, SegmentRow};

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
            // Reads map the file instead of copying pages into each connection's cache: a
            // catalog of 10,000 assets (25 MB) is read at page-cache speed without growing RSS.
            .pragma("mmap_size", "268435456")
            .foreign_keys(true);
        {
            // Migrations on a pool of one connection, closed before the catalog's own opens: a
            // connection opened before the schema changes would keep reading the old shape of
            // `SELECT *`.
            let one = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
            let tracked: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'")
                .fetch_one(&one)
                .await?;
            let before: i64 = if tracked > 0 {
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&one).await?
            } else {
                0
            };
            MIGRATOR.run(&one).await?;
            if before < MIGRATOR.iter().count() as i64 {
                // Migrating (schema 6 rebuilds a table) leaves its pages in the WAL: write them
                // back and truncate it, so that a new or upgraded vault does not keep that space
                // (it waits, up to the busy timeout, for another process's readers).
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&one).await?;
            }
            one.close().await;
        }
        let pool = SqlitePoolOptions::new().max_connections(4).min_connections(1).connect_with(options).await?;
        Ok(Self { pool, writer: Mutex::new(()) })
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

    /// Replaces what was asked for an asset (the request's JSON).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_request(&self, id: &str, request: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        sqlx::query("UPDATE assets SET request = ?, updated_at = ? WHERE id = ?")
            .bind(request)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
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

    /// Every asset, oldest first.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn assets(&self) -> Result<Vec<AssetRow>> {
        let rows = sqlx::query("SELECT * FROM assets ORDER BY created_at, id").fetch(&self.pool);
        decode_each(rows, AssetRow::from_row).await
    }

    /// What was asked for an asset (the request's JSON).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn request(&self, id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT request FROM assets WHERE id = ?").bind(id).fetch_optional(&self.pool).await?)
    }

    /// The bytes stored by every asset (each one's committed pieces, as downloaded).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn bytes_stored(&self) -> Result<u64> {
        let total: i64 =
            sqlx::query_scalar("SELECT COALESCE(SUM(bytes_done), 0) FROM assets").fetch_one(&self.pool).await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Queued assets, oldest first: id, and the bytes still expected (`None`: unknown).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn queued(&self) -> Result<Vec<(String, Option<u64>)>> {
        let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT id, bytes_expected, bytes_done FROM assets WHERE state = 'queued' ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, expected, done)| {
                let left = expected.map(|e| u64::try_from(e.saturating_sub(done)).unwrap_or(0));
                (id, left)
            })
            .collect())
    }

    /// The bytes every unfinished download (queued, downloading, paused or failed) still
    /// expects to fetch, by its size or estimate.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn bytes_pending(&self) -> Result<u64> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(MAX(bytes_expected - bytes_done, 0)), 0) FROM assets \
             WHERE bytes_expected IS NOT NULL AND state IN ('queued', 'downloading', 'paused', 'failed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Ids of assets whose offline period ended at or before `now` (Unix ms), oldest first.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn ids_expired(&self, now: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM assets WHERE offline_until IS NOT NULL AND offline_until <= ? ORDER BY created_at, id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every asset's id.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn ids(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM assets").fetch_all(&self.pool).await?)
    }

    /// Every asset, oldest first, without what a listing does not show (the sealed headers and
    /// the wrapped content key are `None`): what `Vault::assets` reads.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn listing(&self) -> Result<Vec<AssetRow>> {
        let rows = sqlx::query(
            "SELECT id, identity, kind, mode, source_url, request, title, metadata, NULL AS headers, state, failure,
                    bytes_expected, expected_exact, bytes_done, segments_total, segments_done, duration_secs, key_id,
                    NULL AS wrapped_key, entry, created_at, updated_at, completed_at, offline_until, vod
             FROM assets ORDER BY created_at, id",
        )
        .fetch(&self.pool);
        decode_each(rows, AssetRow::from_row).await
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

    #[cfg(test)]
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
    /// returns whether it did. One conditional `UPDATE`: when another process changes the state
    /// at the same moment, exactly one of the two wins, and the other is told it did not.
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
        if from.is_empty() {
            return Ok(false);
        }
        let _w = self.writer.lock().await;
        let states = vec!["?"; from.len()].join(", ");
        let sql = format!(
            "UPDATE assets SET state = ?, failure = ?, updated_at = ?, completed_at = COALESCE(?, completed_at)
             WHERE id = ? AND state IN ({states})"
        );
        let completed = (to == AssetState::Completed).then(now_ms);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(failure)
            .bind(now_ms())
            .bind(completed)
            .bind(id);
        for s in from {
            q = q.bind(s.as_str());
        }
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// An asset's state.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn state(&self, id: &str) -> Result<Option<AssetState>> {
        let s: Option<String> =
            sqlx::query_scalar("SELECT state FROM assets WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(s.map(|s| s.parse()).transpose()?)
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

/// Decodes rows as they arrive, so that SQLite's copy of each row is dropped at once instead of
/// all of them being held until the last is read: a 10,800-segment asset's rows held whole cost
/// 10 MB more at the peak (issue 14), and a listing of 10,000 assets holds every request's JSON.
async fn decode_each<T>(
    mut rows: impl futures_util::Stream<Item = sqlx::Result<sqlx::sqlite::SqliteRow>> + Unpin,
    decode: impl Fn(&sqlx::sqlite::SqliteRow) -> Result<T>,
) -> Result<Vec<T>> {
    use futures_util::TryStreamExt as _;
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(decode(&row)?);
    }
    Ok(out)
}
