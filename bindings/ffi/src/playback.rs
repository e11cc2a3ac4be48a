//! Playback sessions: a URL any player opens, served by the vault's loopback server.

use vodvault_core as core;

/// A playback session: its URL serves the asset to any player until `revoke()`, or until the
/// session object is released (Kotlin `close()`/`use {}`, Swift deinit, Python garbage
/// collection).
#[derive(uniffi::Object)]
pub struct PlaybackSession(pub(crate) core::PlaybackSession);

#[uniffi::export]
impl PlaybackSession {
    /// The URL a player opens.
    pub fn url(&self) -> String {
        self.0.url().to_owned()
    }
    /// The HLS master of an HLS or DASH asset (for DASH, the one made from its MPD: what
    /// AVPlayer opens); null for a progressive file.
    pub fn hls_url(&self) -> Option<String> {
        self.0.hls_url().map(str::to_owned)
    }
    /// The base URL every file of the asset is under.
    pub fn base_url(&self) -> String {
        self.0.base_url().to_owned()
    }
    /// Revokes the session now: its URLs answer 404.
    pub fn revoke(&self) {
        self.0.close();
    }
}
