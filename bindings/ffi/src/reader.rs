//! Random access to one stored file, for a custom player data source.

use vodvault_core as core;

use crate::errors::Result;

/// Random access to one stored file of a completed asset, for a custom player data source
/// (ExoPlayer `DataSource`, AVFoundation `AVAssetResourceLoaderDelegate`).
#[derive(uniffi::Object)]
pub struct AssetReader(pub(crate) core::AssetReader);

#[uniffi::export]
impl AssetReader {
    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// MIME type.
    pub fn content_type(&self) -> String {
        self.0.content_type().to_owned()
    }
    /// The plain file path (Normal mode only).
    pub fn plain_path(&self) -> Option<String> {
        self.0.plain_path().map(|p| p.display().to_string())
    }
    /// Up to `length` bytes from `offset`, at most 16 MiB a call (fewer at the end of the file,
    /// none past it). Only what is returned is allocated, whatever `length` asks for.
    ///
    /// # Errors
    /// `Integrity` if the bytes fail verification.
    pub fn read_at(&self, offset: u64, length: u32) -> Result<Vec<u8>> {
        self.0.read_vec(offset, u64::from(length))
    }
}
