//! What tests (and benchmarks) reach past the API for: the key hierarchy's parts, the context a
//! stored piece is sealed under, a stored content key, the VOD signer and CRC. Only with the
//! `testing` feature, which no app build enables.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use crate::keys::{Kek, WrappedKey};
pub use crate::store::seal_context;
pub use crate::vod::crc64::Crc64;
pub use crate::vod::sign::V3Request;

use crate::catalog::Catalog;
use crate::keyfile::KeyFile;
use crate::keys::ContentKey;
use crate::seal::{SealError, SealOptions, SealWriter};
use crate::store::Layout;

/// The content key of Encrypted asset `id` in the vault at `dir`, unwrapped from the catalog
/// the way the vault does it (the vault may be open elsewhere).
///
/// # Errors
/// A one-line description of what failed.
pub async fn content_key(dir: &Path, key_file: &[u8], app_id: &str, id: &str) -> Result<ContentKey, String> {
    let catalog = Catalog::open(&Layout::new(dir.to_owned()).catalog()).await.map_err(|e| e.to_string())?;
    let row = catalog.asset(id).await;
    catalog.close().await;
    let row = row.map_err(|e| e.to_string())?.ok_or_else(|| format!("no asset {id}"))?;
    let wrapped = row.wrapped_key.ok_or_else(|| format!("asset {id} has no content key"))?;
    let kek = Kek::derive(&KeyFile::from_bytes(key_file, app_id).map_err(|e| e.to_string())?);
    let wrapped = WrappedKey::from_bytes(&wrapped).map_err(|e| e.to_string())?;
    wrapped.unwrap(&kek, id.as_bytes()).map_err(|e| e.to_string())
}

/// `plaintext` sealed with a chosen salt and nonce prefix: the format's fixed test vectors.
/// Reusing them under one key and context is catastrophic; nothing but a test may do this.
///
/// # Errors
/// [`SealError`].
pub fn seal_with_salt_and_prefix(
    key: &ContentKey,
    context: &[u8],
    options: SealOptions,
    salt: [u8; 16],
    prefix: [u8; 7],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut w = SealWriter::with_salt_and_prefix(Vec::new(), key, context, options, salt, prefix)?;
    w.append(plaintext)?;
    Ok(w.finish()?.0)
}

/// Vaults whose downloads wait this long before each catalog commit of finished pieces.
static COMMIT_DELAYS: Mutex<Vec<(PathBuf, Duration)>> = Mutex::new(Vec::new());

/// Makes every download of the vault at `dir` wait `delay` before each catalog commit of
/// finished pieces (after they are durable): a slow commit, to stop a download in the middle of
/// one. Other vaults are not affected.
pub fn delay_commits(dir: &Path, delay: Duration) {
    let mut d = COMMIT_DELAYS.lock().unwrap_or_else(PoisonError::into_inner);
    d.retain(|(p, _)| p != dir);
    d.push((dir.to_owned(), delay));
}

/// The delay [`delay_commits`] set for the vault at `root`, slept.
pub(crate) async fn commit_delay(root: &Path) {
    let delay =
        COMMIT_DELAYS.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|(p, _)| p == root).map(|d| d.1);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
}

/// Adds `n` completed Normal-mode HLS assets of `segments` segments each to the (closed) vault at
/// `dir`, as rows only (no media files): a vault grown large, made in seconds, for measuring
/// what the catalog costs per asset. Returns their ids.
///
/// # Errors
/// A one-line description of what failed.
pub async fn populate(dir: &Path, n: usize, segments: u32) -> Result<Vec<String>, String> {
    use crate::catalog::{AssetRow, RenditionRow, SegmentRow};
    use crate::model::{AssetKind, AssetState, Mode, RenditionRole, SegmentKind};
    let catalog = Catalog::open(&Layout::new(dir.to_owned()).catalog()).await.map_err(|e| e.to_string())?;
    let mut playlist = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..segments {
        playlist.push_str(&format!("#EXTINF:2.0,\nseg-{i}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let now = crate::clock::now_ms();
    let mut ids = Vec::with_capacity(n);
    for k in 0..n {
        let identity = format!("https://cdn.example.com/populated/{k}/index.m3u8");
        let id = crate::identity::asset_id(&identity);
        let row = AssetRow {
            id: id.clone(),
            identity: identity.clone(),
            kind: AssetKind::Hls,
            mode: Mode::Normal,
            source_url: identity.clone(),
            request: serde_json::to_string(&crate::model::DownloadRequest::new(&identity))
                .map_err(|e| e.to_string())?,
            title: Some(format!("Film {k}")),
            metadata: None,
            headers: None,
            state: AssetState::Completed,
            failure: None,
            bytes_expected: Some(u64::from(segments) * 100_000),
            expected_exact: true,
            bytes_done: u64::from(segments) * 100_000,
            segments_total: u64::from(segments),
            segments_done: u64::from(segments),
            duration_secs: Some(f64::from(segments) * 2.0),
            key_id: None,
            wrapped_key: None,
            entry: Some("index.m3u8".into()),
            created_at: now + k as i64,
            updated_at: now + k as i64,
            completed_at: Some(now + k as i64),
            offline_until: None,
            vod: None,
        };
        let rendition = RenditionRow {
            idx: 0,
            kind: RenditionRole::Video,
            dir: "video".into(),
            url: identity.clone(),
            uri: identity.clone(),
            attrs: "{}".into(),
            playlist: Some(playlist.clone()),
            validator: None,
            variables: None,
        };
        let rows: Vec<SegmentRow> = (0..segments)
            .map(|i| SegmentRow {
                rendition: 0,
                kind: SegmentKind::Media,
                idx: i,
                msn: Some(u64::from(i)),
                uri: format!("seg-{i}.ts"),
                range: None,
                file: format!("video/seg-{i:05}.ts"),
                size: Some(100_000),
                sha256: None,
                resume_offset: 0,
                pieces: None,
                done: true,
            })
            .collect();
        catalog.insert_asset(&row, &[rendition], &rows, &[]).await.map_err(|e| e.to_string())?;
        ids.push(id);
    }
    catalog.close().await;
    Ok(ids)
}
