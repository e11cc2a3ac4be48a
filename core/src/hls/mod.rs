//! HLS sources (RFC 8216). For now: `METHOD=AES-128` segment decryption.

pub mod aes128;
