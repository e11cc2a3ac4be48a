//! Small wrappers over `ring` shared by the key hierarchy and the sealed format.
//!
//! `ring` does not wipe its expanded key schedules when they are dropped. [`AeadKey`] holds a
//! `ring` key in place and overwrites its bytes when it goes away, so no AES round key outlives
//! the value that owns it.

use std::fmt;
use std::mem::MaybeUninit;

use ring::aead::{self, LessSafeKey, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random generator failed (it never does on a working Android, iOS or
/// Linux system; the error exists so that it is not a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator is unavailable")]
pub struct RandomUnavailable;

/// Fills `out` from the OS CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomUnavailable> {
    SystemRandom::new().fill(out).map_err(|_| RandomUnavailable)
}

/// An HKDF output length for `ring`'s typed HKDF API.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with the concatenation of `info` into
/// `out`. `out` must be at most 255 × 32 bytes (all our callers ask for 8 or 32).
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let prk = Wiped::new(hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm));
    let okm = prk
        .get()
        .expand(info, OutLen(out.len()))
        .unwrap_or_else(|_| unreachable!("HKDF output of {} bytes is within limits", out.len()));
    okm.fill(out).unwrap_or_else(|_| unreachable!("HKDF fill matches the requested length"));
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// An AES-256-GCM key whose expanded schedule is wiped on drop.
pub(crate) struct AeadKey(Wiped<LessSafeKey>);

impl AeadKey {
    /// Length of the raw key.
    pub(crate) const LEN: usize = 32;
    /// Length of the authentication tag.
    pub(crate) const TAG_LEN: usize = 16;
    /// Length of the nonce.
    pub(crate) const NONCE_LEN: usize = 12;

    pub(crate) fn new(raw: &[u8; Self::LEN]) -> Self {
        let unbound = UnboundKey::new(&aead::AES_256_GCM, raw)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is valid for AES-256-GCM"));
        Self(Wiped::new(LessSafeKey::new(unbound)))
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: [u8; Self::NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; Self::TAG_LEN] {
        let tag = self
            .0
            .get()
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), in_out)
            .unwrap_or_else(|_| unreachable!("AES-GCM seal only fails past 64 GiB per call"));
        let mut out = [0u8; Self::TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `in_out` in place if `tag` authenticates it (and `aad`); on failure the contents
    /// of `in_out` are unspecified and must not be used.
    pub(crate) fn open(
        &self,
        nonce: [u8; Self::NONCE_LEN],
        aad: &[u8],
        tag: &[u8; Self::TAG_LEN],
        in_out: &mut [u8],
    ) -> Result<(), ring::error::Unspecified> {
        let tag = aead::Tag::from(*tag);
        self.0
            .get()
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                tag,
                in_out,
                0..,
            )
            .map(|_| ())
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

/// Owns a value that holds key material but has no destructor of its own (a `ring` key schedule
/// or PRK), and overwrites its bytes with zeros when dropped.
pub(crate) struct Wiped<T> {
    value: MaybeUninit<T>,
}

impl<T> Wiped<T> {
    const NO_DROP_GLUE: () = assert!(
        !std::mem::needs_drop::<T>(),
        "Wiped<T> only holds plain values: dropping T must not run code or free memory"
    );

    pub(crate) fn new(value: T) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NO_DROP_GLUE;
        Self { value: MaybeUninit::new(value) }
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: `value` is initialised in `new` and only de-initialised in `drop`.
        unsafe { self.value.assume_init_ref() }
    }
}

impl<T> Drop for Wiped<T> {
    fn drop(&mut self) {
        // `T` has no drop glue (checked at compile time in `new`), so not running its destructor
        // leaks nothing; writing zeros over a `MaybeUninit` is always allowed.
        let bytes = self.value.as_mut_ptr().cast::<u8>();
        for i in 0..size_of::<T>() {
            // SAFETY: `bytes + i` lies within `self.value`, which we own exclusively.
            unsafe { std::ptr::write_volatile(bytes.add(i), 0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        // RFC 5869, Appendix A.1.
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        hkdf_sha256(&salt, &ikm, &[&info[..4], &info[4..]], &mut okm);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn wiped_zeroes_its_bytes() {
        let mut slot = std::mem::ManuallyDrop::new(Wiped::new([0xAAu8; 64]));
        assert_eq!(slot.get(), &[0xAA; 64]);
        // SAFETY: dropped exactly once, then only its raw bytes are inspected.
        unsafe { std::mem::ManuallyDrop::drop(&mut slot) };
        // SAFETY: MaybeUninit<[u8; 64]> after the wipe holds 64 initialised zero bytes.
        let after = unsafe { slot.value.assume_init_ref() };
        assert_eq!(after, &[0u8; 64]);
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = AeadKey::new(&[7u8; 32]);
        let mut buf = *b"sixteen byte msg";
        let tag = key.seal([1; 12], b"aad", &mut buf);
        assert_ne!(&buf, b"sixteen byte msg");
        let mut copy = buf;
        key.open([1; 12], b"aad", &tag, &mut copy).unwrap();
        assert_eq!(&copy, b"sixteen byte msg");
        let mut copy = buf;
        assert!(key.open([1; 12], b"aaD", &tag, &mut copy).is_err());
        let mut copy = buf;
        assert!(key.open([2; 12], b"aad", &tag, &mut copy).is_err());
        assert_eq!(format!("{key:?}"), "AeadKey(..)");
    }
}
