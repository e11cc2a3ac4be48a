//! What tests (and benchmarks) reach past the API for: the key hierarchy's parts, the context a
//! stored piece is sealed under, a stored content key, the VOD signer and CRC. Only with the
//! `testing` feature, which no app build enables.

use std::path::Path;

pub use crate::keys::{Kek, WrappedKey};
pub use crate::store::seal_context;
pub use crate::vod::crc64::Crc64;
pub use crate::vod::sign::V3Request;

use crate::catalog::Catalog;
use crate::keyfile::KeyFile;
use crate::keys::ContentKey;
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
