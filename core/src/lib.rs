//! vodvault core: everything the vault does, with no FFI types.
//!
//! - [`keyfile`]: key files, the per-app secret and what it is bound to.
//! - [`keys`]: the key hierarchy (KEK, per-asset content keys, wrapping and rotation).
//! - [`seal`]: the sealed file format (chunked, authenticated, random access).
//! - [`hls`]: HLS sources; `METHOD=AES-128` decryption.

mod crypto;
pub mod hls;
pub mod keyfile;
pub mod keys;
pub mod seal;

pub use crypto::RandomUnavailable;
pub use keyfile::{KeyFile, KeyFileError, KeyFileInfo, KeyId};
pub use keys::{ContentKey, Kek, KeyError, WrappedKey};
pub use seal::{SealError, SealOptions, SealWriter, SealedFileWriter, SealedReader};
