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
