//! HLS `METHOD=AES-128` source decryption (RFC 8216 §4.3.2.4): AES-128-CBC with PKCS7 padding,
//! restarted at every media segment.
//!
//! The IV is the `IV` attribute of the segment's `EXT-X-KEY` when present; otherwise (§5.2) the
//! segment's media sequence number as a big-endian 128-bit integer ([`Iv::from_media_sequence`]).
//! Keys are exactly 16 bytes: anything else (an HTML error page served with status 200, say) is
//! [`HlsCryptoError::KeyLength`], never a key.

use std::fmt;

use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use zeroize::Zeroizing;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type Block = aes::Block;

const BLOCK: usize = 16;

/// Why source decryption failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HlsCryptoError {
    /// The key response is not exactly 16 bytes.
    #[error("AES-128 key must be exactly 16 bytes, got {len}")]
    KeyLength {
        /// Bytes received.
        len: usize,
    },
    /// The ciphertext is empty or not a multiple of 16 bytes (a cut or wrong response).
    #[error("AES-128 ciphertext of {len} bytes is not a positive multiple of 16")]
    BadLength {
        /// Bytes received.
        len: u64,
    },
    /// The PKCS7 padding is invalid: wrong key, wrong IV, or damaged data.
    #[error("AES-128 padding is invalid (wrong key or IV, or damaged segment)")]
    BadPadding,
    /// The `IV` attribute is not a hexadecimal 128-bit integer.
    #[error("IV attribute {0:?} is not 0x followed by up to 32 hex digits")]
    BadIv(String),
}

/// A 16-byte HLS content key. Wiped on drop; `Debug` does not show it.
#[derive(Clone)]
pub struct Aes128Key(Zeroizing<[u8; BLOCK]>);

impl Aes128Key {
    /// Takes a key exactly as fetched from the key URI.
    ///
    /// # Errors
    /// [`HlsCryptoError::KeyLength`] unless `bytes` is exactly 16 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HlsCryptoError> {
        let arr: [u8; BLOCK] = bytes.try_into().map_err(|_| HlsCryptoError::KeyLength { len: bytes.len() })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The raw key, e.g. to store it (sealed) for later re-verification.
    pub fn as_bytes(&self) -> &[u8; BLOCK] {
        &self.0
    }
}

impl fmt::Debug for Aes128Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes128Key(..)")
    }
}

/// A CBC initialisation vector.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Iv(pub [u8; BLOCK]);

impl Iv {
    /// The implicit IV of RFC 8216 §5.2: the media sequence number of the segment, big-endian,
    /// left-padded with zeros to 16 bytes.
    pub fn from_media_sequence(msn: u64) -> Self {
        let mut iv = [0u8; BLOCK];
        iv[8..].copy_from_slice(&msn.to_be_bytes());
        Self(iv)
    }

    /// Parses an `IV` attribute: `0x`/`0X` then 1–32 hex digits (a shorter value is the same
    /// integer, left-padded).
    ///
    /// # Errors
    /// [`HlsCryptoError::BadIv`] otherwise.
    pub fn parse(attr: &str) -> Result<Self, HlsCryptoError> {
        let bad = || HlsCryptoError::BadIv(attr.to_owned());
        let digits = attr.strip_prefix("0x").or_else(|| attr.strip_prefix("0X")).ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 2 * BLOCK {
            return Err(bad());
        }
        let padded = format!("{digits:0>32}");
        let mut iv = [0u8; BLOCK];
        hex::decode_to_slice(padded, &mut iv).map_err(|_| bad())?;
        Ok(Self(iv))
    }
}

/// Decrypts whole blocks in place with no padding handling (the raw mode, as in NIST SP 800-38A).
///
/// # Errors
/// [`HlsCryptoError::BadLength`] if `data` is not a multiple of 16 bytes.
pub fn decrypt_blocks_in_place(key: &Aes128Key, iv: Iv, data: &mut [u8]) -> Result<(), HlsCryptoError> {
    if !data.len().is_multiple_of(BLOCK) {
        return Err(HlsCryptoError::BadLength { len: data.len() as u64 });
    }
    let mut dec = Aes128CbcDec::new(key.as_bytes().into(), (&iv.0).into());
    decrypt_aligned(&mut dec, data);
    Ok(())
}

fn decrypt_aligned(dec: &mut Aes128CbcDec, data: &mut [u8]) {
    let (blocks, rest) = Block::slice_as_chunks_mut(data);
    debug_assert!(rest.is_empty());
    dec.decrypt_blocks(blocks);
}

/// Strips PKCS7 padding from a decrypted final block, returning the plaintext length.
fn unpad(data: &[u8]) -> Result<usize, HlsCryptoError> {
    let pad = usize::from(*data.last().ok_or(HlsCryptoError::BadPadding)?);
    if pad == 0 || pad > BLOCK || pad > data.len() {
        return Err(HlsCryptoError::BadPadding);
    }
    if data[data.len() - pad..].iter().any(|&b| usize::from(b) != pad) {
        return Err(HlsCryptoError::BadPadding);
    }
    Ok(data.len() - pad)
}

/// Decrypts a whole segment in place and truncates it to the plaintext.
///
/// # Errors
/// [`HlsCryptoError::BadLength`] for an empty or misaligned segment,
/// [`HlsCryptoError::BadPadding`] when the padding is wrong.
pub fn decrypt_segment(key: &Aes128Key, iv: Iv, data: &mut Vec<u8>) -> Result<(), HlsCryptoError> {
    if data.is_empty() {
        return Err(HlsCryptoError::BadLength { len: 0 });
    }
    decrypt_blocks_in_place(key, iv, data)?;
    let len = unpad(data)?;
    data.truncate(len);
    Ok(())
}

/// Decrypts a segment as its bytes arrive, in pieces of any size. The final block is held back
/// until [`CbcStreamDecryptor::finish`], which checks and strips the padding.
pub struct CbcStreamDecryptor {
    dec: Aes128CbcDec,
    /// Bytes received but not yet released: a partial block, or the last whole block.
    carry: Zeroizing<Vec<u8>>,
    received: u64,
}

impl fmt::Debug for CbcStreamDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CbcStreamDecryptor").field("received", &self.received).finish_non_exhaustive()
    }
}

impl CbcStreamDecryptor {
    /// Starts decrypting a segment.
    pub fn new(key: &Aes128Key, iv: Iv) -> Self {
        Self {
            dec: Aes128CbcDec::new(key.as_bytes().into(), (&iv.0).into()),
            carry: Zeroizing::new(Vec::with_capacity(2 * BLOCK)),
            received: 0,
        }
    }

    /// Decrypts what it can of `input` and appends that plaintext to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.received += input.len() as u64;
        let start = out.len();
        out.extend_from_slice(&self.carry);
        out.extend_from_slice(input);
        self.carry.clear();
        let available = out.len() - start;
        // Hold back the partial block, or (when aligned) the last whole block: it may be the
        // padded final one.
        let hold = match available % BLOCK {
            0 => available.min(BLOCK),
            rem => rem,
        };
        let ready = available - hold;
        self.carry.extend_from_slice(&out[start + ready..]);
        out.truncate(start + ready);
        decrypt_aligned(&mut self.dec, &mut out[start..]);
    }

    /// Decrypts the final block, checks and strips the padding, and appends the rest of the
    /// plaintext to `out`.
    ///
    /// # Errors
    /// [`HlsCryptoError::BadLength`] when the total was empty or misaligned,
    /// [`HlsCryptoError::BadPadding`] when the padding is wrong.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), HlsCryptoError> {
        if self.carry.len() != BLOCK {
            return Err(HlsCryptoError::BadLength { len: self.received });
        }
        let mut last = [0u8; BLOCK];
        last.copy_from_slice(&self.carry);
        decrypt_aligned(&mut self.dec, &mut last);
        let keep = unpad(&last)?;
        out.extend_from_slice(&last[..keep]);
        zeroize::Zeroize::zeroize(&mut last);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    // NIST SP 800-38A, Appendix F.2.1 / F.2.2 (CBC-AES128.Encrypt / .Decrypt).
    const NIST_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const NIST_IV: &str = "000102030405060708090a0b0c0d0e0f";
    const NIST_PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 \
                              30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
    const NIST_CIPHER: &str = "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 \
                               73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7";

    fn nist_key_iv() -> (Aes128Key, Iv) {
        let key = Aes128Key::from_bytes(&h(NIST_KEY)).unwrap();
        let iv = Iv(h(NIST_IV).try_into().unwrap());
        (key, iv)
    }

    #[test]
    fn nist_sp800_38a_f22_cbc_aes128_decrypt() {
        let (key, iv) = nist_key_iv();
        let mut data = h(NIST_CIPHER);
        decrypt_blocks_in_place(&key, iv, &mut data).unwrap();
        assert_eq!(data, h(NIST_PLAIN));
    }

    #[test]
    fn nist_vectors_through_the_stream_decryptor_in_every_split() {
        // The NIST ciphertext followed by one block that decrypts to full PKCS7 padding. The
        // padding block is CBC-encrypted under the last NIST ciphertext block; it was produced
        // with `openssl enc -aes-128-cbc -K 2b7e… -iv 0001…0f` on the NIST plaintext.
        let (key, iv) = nist_key_iv();
        let mut ct = h(NIST_CIPHER);
        ct.extend(h("8cb82807230e1321d3fae00d18cc2012"));
        for split in 0..=ct.len() {
            for piece in [1usize, 3, 16, 17, 64] {
                let mut dec = CbcStreamDecryptor::new(&key, iv);
                let mut out = Vec::new();
                dec.update(&ct[..split], &mut out);
                for c in ct[split..].chunks(piece) {
                    dec.update(c, &mut out);
                }
                dec.finish(&mut out).unwrap();
                assert_eq!(out, h(NIST_PLAIN), "split {split} piece {piece}");
            }
        }
        let mut whole = ct.clone();
        decrypt_segment(&key, iv, &mut whole).unwrap();
        assert_eq!(whole, h(NIST_PLAIN));
    }

    #[test]
    fn media_sequence_iv_is_big_endian_left_padded() {
        assert_eq!(Iv::from_media_sequence(0).0, [0u8; 16]);
        let iv = Iv::from_media_sequence(0x0102_0304_0506_0708);
        assert_eq!(hex::encode(iv.0), "00000000000000000102030405060708");
        assert_eq!(Iv::parse("0x00000000000000000102030405060708").unwrap(), iv);
        assert_eq!(Iv::parse("0X102030405060708").unwrap(), iv);
    }

    #[test]
    fn iv_attribute_errors() {
        for bad in ["", "0x", "1234", "0xZZ", "0x000000000000000000000000000000001"] {
            assert!(matches!(Iv::parse(bad), Err(HlsCryptoError::BadIv(_))), "{bad}");
        }
    }

    #[test]
    fn keys_must_be_16_bytes() {
        let html = b"<html><body>403 Forbidden</body></html>";
        assert_eq!(Aes128Key::from_bytes(html).unwrap_err(), HlsCryptoError::KeyLength { len: html.len() });
        assert!(Aes128Key::from_bytes(&[0u8; 15]).is_err());
        assert!(Aes128Key::from_bytes(&[0u8; 17]).is_err());
        assert_eq!(format!("{:?}", Aes128Key::from_bytes(&[0x41; 16]).unwrap()), "Aes128Key(..)");
    }

    #[test]
    fn bad_lengths_and_padding() {
        let (key, iv) = nist_key_iv();
        let mut empty = Vec::new();
        assert_eq!(decrypt_segment(&key, iv, &mut empty), Err(HlsCryptoError::BadLength { len: 0 }));
        let mut odd = vec![0u8; 33];
        assert_eq!(decrypt_segment(&key, iv, &mut odd), Err(HlsCryptoError::BadLength { len: 33 }));
        // The raw NIST ciphertext has no padding block: its last plaintext byte (0x10 = 16) is
        // not followed by fifteen more 0x10s, so unpadding must fail.
        let mut nopad = h(NIST_CIPHER);
        assert_eq!(decrypt_segment(&key, iv, &mut nopad), Err(HlsCryptoError::BadPadding));
        let mut dec = CbcStreamDecryptor::new(&key, iv);
        dec.update(&[0u8; 20], &mut Vec::new());
        assert_eq!(dec.finish(&mut Vec::new()), Err(HlsCryptoError::BadLength { len: 20 }));
    }
}
