//! Why a download stopped: a typed reason, stored with the asset.

use serde::{Deserialize, Serialize};

/// Why a download stopped. Stored with the asset; every variant is a decision the app can make
/// (retry later, free space, ask for a new URL, give up). Messages name the piece that failed
/// and never contain signed URLs or keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// The network kept failing after every retry.
    #[error("network: {message}")]
    Network {
        /// What failed, and where.
        message: String,
    },
    /// The server answered with an error status that retrying does not fix (404, …).
    #[error("HTTP {status}: {message}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// What was requested.
        message: String,
    },
    /// The URL expired (401/403/410) and no fresh one could be had.
    #[error("URL expired: {message}")]
    UrlExpired {
        /// Why no fresh URL was available.
        message: String,
    },
    /// Not enough free space.
    #[error("{}", storage_full_message(*needed, *available))]
    StorageFull {
        /// Bytes still to store (an estimate; 0 when unknown).
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The source sent something that is not valid media (a bad key, bad padding after
    /// re-fetching, an error page instead of a segment).
    #[error("bad source: {message}")]
    BadSource {
        /// Which piece, and what is wrong.
        message: String,
    },
    /// The source uses something vodvault does not download.
    #[error("not supported: {message}")]
    Unsupported {
        /// What, and why.
        message: String,
    },
    /// The source's content changed (after a refresh, the playlist no longer matches).
    #[error("source changed: {message}")]
    SourceChanged {
        /// What differs.
        message: String,
    },
    /// Writing to storage failed (other than running out of space).
    #[error("storage: {message}")]
    Storage {
        /// The OS error.
        message: String,
    },
    /// The asset's content key is wrapped under another key file.
    #[error("key mismatch: {message}")]
    KeyMismatch {
        /// Which key ids.
        message: String,
    },
    /// VOD refused the credentials, or the app's credentials provider gave none: resume once
    /// fresh ones can be had.
    #[error("VOD credentials: {message}")]
    Credentials {
        /// VOD's code and message, or why there are none.
        message: String,
    },
    /// The VOD API refused the request (the video is gone or not playable, a stream is no
    /// longer offered, throttling that did not pass).
    #[error("VOD {code}: {message}")]
    Vod {
        /// VOD's error code.
        code: String,
        /// VOD's message.
        message: String,
    },
}

fn storage_full_message(needed: u64, available: u64) -> String {
    if needed == 0 {
        format!("storage full: no space left ({available} bytes available)")
    } else {
        format!("storage full: about {needed} more bytes needed, {available} available")
    }
}

impl FailureReason {
    /// The JSON stored in the catalog.
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Parses the stored JSON; a record that does not parse (damaged outside vodvault) is
    /// reported as such, not guessed at.
    pub(crate) fn from_json(s: &str) -> Self {
        serde_json::from_str(s).unwrap_or_else(|_| FailureReason::Storage {
            message: "the catalog's record of this failure is unreadable".into(),
        })
    }
}
