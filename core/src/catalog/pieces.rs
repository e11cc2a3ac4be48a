//! What an asset is made of: its renditions, pieces (segments, or one progressive file) and
//! images, and their progress.

use super::*;

impl Catalog {
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
        let rows = sqlx::query("SELECT * FROM images WHERE asset_id = ? ORDER BY kind, idx").bind(id).fetch(&self.pool);
        decode_each(rows, ImageRow::from_row).await
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

    /// An asset's renditions.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn renditions(&self, id: &str) -> Result<Vec<RenditionRow>> {
        let rows = sqlx::query("SELECT * FROM renditions WHERE asset_id = ? ORDER BY idx").bind(id).fetch(&self.pool);
        decode_each(rows, RenditionRow::from_row).await
    }

    /// An asset's segments, in download order (renditions in order; init sections first).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn segments(&self, id: &str) -> Result<Vec<SegmentRow>> {
        let rows = sqlx::query(
            "SELECT * FROM segments WHERE asset_id = ?
             ORDER BY rendition, CASE kind WHEN 'init' THEN 0 ELSE 1 END, idx",
        )
        .bind(id)
        .fetch(&self.pool);
        decode_each(rows, SegmentRow::from_row).await
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
        self.set_file_progress(id, offset, None, offset, validator).await
    }

    /// Records which byte-range pieces of a progressive file are durable (`pieces`, JSON),
    /// with the bytes they hold and the validator every piece was checked against.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn set_pieces(&self, id: &str, pieces: &str, bytes: u64, validator: &str) -> Result<()> {
        self.set_file_progress(id, 0, Some(pieces), bytes, Some(validator)).await
    }

    /// A progressive file's durable progress: a resume point (one connection) or its pieces,
    /// the bytes stored and the validator, in one transaction.
    async fn set_file_progress(
        &self,
        id: &str,
        offset: u64,
        pieces: Option<&str>,
        bytes: u64,
        validator: Option<&str>,
    ) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE segments SET resume_offset = ?, pieces = ? WHERE asset_id = ? AND kind = 'file'")
            .bind(i64_of(offset))
            .bind(pieces)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE renditions SET validator = ? WHERE asset_id = ? AND kind = 'file'")
            .bind(validator)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE assets SET bytes_done = ?, updated_at = ? WHERE id = ?")
            .bind(i64_of(bytes))
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

    /// Marks every segment pending again and zeroes the counters (cancel, or a source change).
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn reset_segments(&self, id: &str) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE segments SET state = 'pending', size = NULL, sha256 = NULL, resume_offset = 0, pieces = NULL
             WHERE asset_id = ?",
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
