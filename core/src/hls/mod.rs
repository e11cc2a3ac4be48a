//! HLS sources (RFC 8216): media and master playlists, local playlists, `METHOD=AES-128`.

pub mod aes128;
pub mod attrs;
pub mod cut;
pub mod master;
pub mod media;
pub mod vars;
