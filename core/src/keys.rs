//! The key hierarchy: app secret → key-encryption key → per-asset content keys.
//!
//! ```text
//! key file secret (32 B) ──HKDF-SHA256(salt "vodvault/v1/kek", info app id)──▶ KEK (AES-256-GCM)
//! content key (32 B, random per asset) ──AES-256-GCM under the KEK──▶ WrappedKey (stored)
//! content key ──HKDF per file (see seal)──▶ file key
//! ```
//!
//! Rotating the app key ([`WrappedKey::rewrap`]) re-encrypts only the 32-byte content keys;
//! media sealed under a content key never changes. A [`WrappedKey`] names the key id of the key
//! file that wraps it, so a vault opened with the wrong key file is told so precisely.

use std::fmt;

use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, RandomUnavailable};
use crate::keyfile::{KeyFile, KeyId};

const KEK_SALT: &[u8] = b"vodvault/v1/kek";
const WRAP_AAD_LABEL: &[u8] = b"vodvault/v1/wrap";
const CONTENT_KEY_ID_INFO: &[u8] = b"vodvault/v1/content-key-id";
const WRAP_VERSION: u8 = 1;
/// Length of an encoded [`WrappedKey`].
pub const WRAPPED_KEY_LEN: usize = 1 + 8 + AeadKey::NONCE_LEN + ContentKey::LEN + AeadKey::TAG_LEN;

/// Why a content key could not be unwrapped. Safe to show: key ids are fingerprints.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The wrapped key was made under another key file than the one given.
    #[error("content key is wrapped under key {wrapped_by}, but key {have} was given")]
    KeyMismatch {
        /// Key id of the key file that wrapped it.
        wrapped_by: KeyId,
        /// Key id of the key file supplied.
        have: KeyId,
    },
    /// The wrapped key failed authentication or is malformed (damaged, or wrapped for another
    /// asset or app).
    #[error("wrapped content key failed verification")]
    Integrity,
    /// The OS random generator failed.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

/// The key-encryption key derived from a key file. Wiped on drop.
pub struct Kek {
    key: AeadKey,
    key_id: KeyId,
}

impl Kek {
    /// Derives the KEK from `key_file`: `HKDF-SHA256(salt = "vodvault/v1/kek", ikm = secret,
    /// info = app id)`.
    pub fn derive(key_file: &KeyFile) -> Self {
        let mut raw = Zeroizing::new([0u8; AeadKey::LEN]);
        crypto::hkdf_sha256(KEK_SALT, key_file.secret(), &[key_file.app_id().as_bytes()], &mut raw[..]);
        Self { key: AeadKey::new(&raw), key_id: key_file.key_id() }
    }

    /// The key id of the key file this KEK comes from.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Encrypts a small record (e.g. an asset's request headers) under the KEK, bound to
    /// `context`: `nonce (12) ‖ ciphertext ‖ tag (16)`, AAD = "vodvault/v1/blob" ‖ key id ‖
    /// context.
    ///
    /// # Errors
    /// [`KeyError::Random`] if the OS generator fails.
    pub fn seal_blob(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; AeadKey::NONCE_LEN];
        crypto::fill_random(&mut nonce)?;
        let mut out = Vec::with_capacity(AeadKey::NONCE_LEN + plaintext.len() + AeadKey::TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self.key.seal(nonce, &self.blob_aad(context), &mut out[AeadKey::NONCE_LEN..]);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts a record made by [`Kek::seal_blob`] with the same `context`.
    ///
    /// # Errors
    /// [`KeyError::Integrity`] if it was sealed under another key or context, or modified.
    pub fn open_blob(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < AeadKey::NONCE_LEN + AeadKey::TAG_LEN {
            return Err(KeyError::Integrity);
        }
        let (nonce, rest) = sealed.split_at(AeadKey::NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - AeadKey::TAG_LEN);
        let nonce: [u8; AeadKey::NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::Integrity)?;
        let tag: [u8; AeadKey::TAG_LEN] = tag.try_into().map_err(|_| KeyError::Integrity)?;
        let mut out = Zeroizing::new(body.to_vec());
        self.key.open(nonce, &self.blob_aad(context), &tag, &mut out).map_err(|_| KeyError::Integrity)?;
        Ok(out)
    }

    fn blob_aad(&self, context: &[u8]) -> Vec<u8> {
        [&b"vodvault/v1/blob"[..], &self.key_id.0, context].concat()
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({}, ..)", self.key_id)
    }
}

/// A random 256-bit key that protects one asset's files. Not `Clone`; wiped on drop.
pub struct ContentKey {
    raw: Zeroizing<[u8; Self::LEN]>,
    id: KeyId,
}

impl ContentKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the OS CSPRNG.
    ///
    /// # Errors
    /// [`KeyError::Random`] if the OS generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut raw = Zeroizing::new([0u8; Self::LEN]);
        crypto::fill_random(&mut raw[..])?;
        Ok(Self::from_raw(raw))
    }

    /// A key from known bytes: for test vectors and for keys unwrapped elsewhere.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self::from_raw(Zeroizing::new(bytes))
    }

    fn from_raw(raw: Zeroizing<[u8; Self::LEN]>) -> Self {
        let id = KeyId::derive(&raw[..], CONTENT_KEY_ID_INFO);
        Self { raw, id }
    }

    /// Fingerprint of the key, recorded in the header of every file it seals.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn raw(&self) -> &[u8; Self::LEN] {
        &self.raw
    }

    /// Wraps this key under `kek` for the asset named by `context` (any stable bytes, e.g. the
    /// asset id). The same `context` is needed to unwrap it, so a wrapped key copied to another
    /// asset's row does not open.
    ///
    /// # Errors
    /// [`KeyError::Random`] if the OS generator fails (the nonce is random).
    pub fn wrap(&self, kek: &Kek, context: &[u8]) -> Result<WrappedKey, KeyError> {
        let mut nonce = [0u8; AeadKey::NONCE_LEN];
        crypto::fill_random(&mut nonce)?;
        let mut out = [0u8; WRAPPED_KEY_LEN];
        out[0] = WRAP_VERSION;
        out[1..9].copy_from_slice(&kek.key_id.0);
        out[9..21].copy_from_slice(&nonce);
        let (head, rest) = out.split_at_mut(21);
        let (body, tag_out) = rest.split_at_mut(Self::LEN);
        body.copy_from_slice(&self.raw[..]);
        let tag = kek.key.seal(nonce, &wrap_aad(&head[..9], context), body);
        tag_out.copy_from_slice(&tag);
        Ok(WrappedKey(out))
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentKey({}, ..)", self.id)
    }
}

fn wrap_aad(version_and_key_id: &[u8], context: &[u8]) -> Vec<u8> {
    [WRAP_AAD_LABEL, version_and_key_id, context].concat()
}

/// A content key encrypted under a KEK, as stored in the catalog ([`WRAPPED_KEY_LEN`] bytes:
/// version, key id of the wrapping key file, nonce, ciphertext, tag). Holds no secret in the
/// clear.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey([u8; WRAPPED_KEY_LEN]);

impl WrappedKey {
    /// Parses the stored form.
    ///
    /// # Errors
    /// [`KeyError::Integrity`] if `bytes` has the wrong length or version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; WRAPPED_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Integrity)?;
        if arr[0] != WRAP_VERSION {
            return Err(KeyError::Integrity);
        }
        Ok(Self(arr))
    }

    /// The stored form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key id of the key file that wraps this key.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[1..9]);
        KeyId(id)
    }

    /// Decrypts the content key with `kek` for the asset named by `context`.
    ///
    /// # Errors
    /// [`KeyError::KeyMismatch`] when `kek` comes from another key file than the one this was
    /// wrapped under; [`KeyError::Integrity`] when the bytes or `context` are wrong.
    pub fn unwrap(&self, kek: &Kek, context: &[u8]) -> Result<ContentKey, KeyError> {
        if self.key_id() != kek.key_id {
            return Err(KeyError::KeyMismatch { wrapped_by: self.key_id(), have: kek.key_id });
        }
        let mut nonce = [0u8; AeadKey::NONCE_LEN];
        nonce.copy_from_slice(&self.0[9..21]);
        let mut tag = [0u8; AeadKey::TAG_LEN];
        tag.copy_from_slice(&self.0[21 + ContentKey::LEN..]);
        let mut raw = Zeroizing::new([0u8; ContentKey::LEN]);
        raw.copy_from_slice(&self.0[21..21 + ContentKey::LEN]);
        kek.key.open(nonce, &wrap_aad(&self.0[..9], context), &tag, &mut raw[..]).map_err(|_| KeyError::Integrity)?;
        Ok(ContentKey::from_raw(raw))
    }

    /// Re-wraps this key from `old` to `new` (key rotation): the content key, and so every file
    /// sealed under it, stays the same.
    ///
    /// # Errors
    /// As [`WrappedKey::unwrap`] with `old`, or [`KeyError::Random`].
    pub fn rewrap(&self, old: &Kek, new: &Kek, context: &[u8]) -> Result<WrappedKey, KeyError> {
        self.unwrap(old, context)?.wrap(new, context)
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey(wrapped by {})", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(app: &str) -> KeyFile {
        KeyFile::generate(app).unwrap()
    }

    #[test]
    fn wrap_unwrap_round_trip() {
        let kf = key_file("com.example.player");
        let kek = Kek::derive(&kf);
        let ck = ContentKey::generate().unwrap();
        let wrapped = ck.wrap(&kek, b"asset-1").unwrap();
        assert_eq!(wrapped.key_id(), kf.key_id());
        let back = WrappedKey::from_bytes(wrapped.as_bytes()).unwrap().unwrap(&kek, b"asset-1");
        let back = back.unwrap();
        assert_eq!(back.raw(), ck.raw());
        assert_eq!(back.id(), ck.id());
    }

    #[test]
    fn wrong_key_file_is_a_mismatch_and_wrong_context_is_integrity() {
        let kek = Kek::derive(&key_file("com.example.player"));
        let other = Kek::derive(&key_file("com.example.player"));
        let wrapped = ContentKey::generate().unwrap().wrap(&kek, b"asset-1").unwrap();
        assert_eq!(
            wrapped.unwrap(&other, b"asset-1").unwrap_err(),
            KeyError::KeyMismatch { wrapped_by: kek.key_id(), have: other.key_id() }
        );
        assert_eq!(wrapped.unwrap(&kek, b"asset-2").unwrap_err(), KeyError::Integrity);
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let kek = Kek::derive(&key_file("a.b"));
        let wrapped = ContentKey::generate().unwrap().wrap(&kek, b"x").unwrap();
        for i in 0..WRAPPED_KEY_LEN * 8 {
            let mut bytes = wrapped.as_bytes().to_vec();
            bytes[i / 8] ^= 1 << (i % 8);
            let res = WrappedKey::from_bytes(&bytes).and_then(|w| w.unwrap(&kek, b"x"));
            assert!(matches!(res, Err(KeyError::Integrity | KeyError::KeyMismatch { .. })), "bit {i}");
        }
    }

    #[test]
    fn same_secret_different_app_gives_different_kek() {
        let kf = key_file("a.b");
        let bytes = kf.to_bytes();
        let kek = Kek::derive(&kf);
        let wrapped = ContentKey::generate().unwrap().wrap(&kek, b"x").unwrap();
        // Same secret re-loaded: unwraps.
        let again = Kek::derive(&KeyFile::from_bytes(&bytes, "a.b").unwrap());
        assert!(wrapped.unwrap(&again, b"x").is_ok());
    }

    #[test]
    fn rewrap_keeps_the_content_key() {
        let old = Kek::derive(&key_file("a.b"));
        let new = Kek::derive(&key_file("a.b"));
        let ck = ContentKey::generate().unwrap();
        let wrapped = ck.wrap(&old, b"asset").unwrap();
        let rewrapped = wrapped.rewrap(&old, &new, b"asset").unwrap();
        assert_eq!(rewrapped.key_id(), new.key_id());
        assert_eq!(rewrapped.unwrap(&new, b"asset").unwrap().raw(), ck.raw());
        assert!(matches!(rewrapped.unwrap(&old, b"asset"), Err(KeyError::KeyMismatch { .. })));
    }

    #[test]
    fn blobs_round_trip_and_bind_key_and_context() {
        let kek = Kek::derive(&key_file("a.b"));
        let other = Kek::derive(&key_file("a.b"));
        let sealed = kek.seal_blob(b"asset-1", b"Referer: https://x").unwrap();
        assert_eq!(&kek.open_blob(b"asset-1", &sealed).unwrap()[..], b"Referer: https://x");
        assert_eq!(kek.open_blob(b"asset-2", &sealed).unwrap_err(), KeyError::Integrity);
        assert_eq!(other.open_blob(b"asset-1", &sealed).unwrap_err(), KeyError::Integrity);
        let mut t = sealed.clone();
        t[14] ^= 1;
        assert_eq!(kek.open_blob(b"asset-1", &t).unwrap_err(), KeyError::Integrity);
        assert_eq!(kek.open_blob(b"asset-1", &sealed[..20]).unwrap_err(), KeyError::Integrity);
    }

    #[test]
    fn debug_output_has_no_key_bytes() {
        let ck = ContentKey::from_bytes([0xAB; 32]);
        let kek = Kek::derive(&key_file("a.b"));
        let wrapped = ck.wrap(&kek, b"x").unwrap();
        // The (random) key id is public and may contain any hex pair: take it out before looking.
        let key_id = kek.key_id().to_string();
        for s in [format!("{ck:?}"), format!("{kek:?}"), format!("{wrapped:?}")] {
            let s = s.replace(&key_id, "<id>");
            assert!(s.contains("<id>") || s.starts_with("ContentKey"), "{s}");
            assert!(!s.to_lowercase().contains("abab") && !s.contains("171"), "{s}");
        }
    }
}
