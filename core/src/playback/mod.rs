//! Playing what is stored: a random-access reader over any file of a completed asset, and the
//! loopback HTTP server that players (AVPlayer, ExoPlayer, ffmpeg, VLC) open.
//!
//! The reader decrypts and verifies only the chunks a read touches (Encrypted mode) or reads the
//! plain file (Normal mode). The server is one per vault, bound to 127.0.0.1 on an ephemeral port
//! and started on first use. Every session's URLs carry an unguessable token, revoked when the
//! session closes or is dropped; anything else gets `404` and learns nothing. Each response is
//! produced by a blocking task that reads and verifies chunk by chunk into a small bounded
//! channel, so a slow or vanished client only ever holds its own task, and a chunk that fails
//! verification ends the response before any of its bytes are sent.

mod reader;
mod server;

pub(crate) use reader::{Access, AssetView, Expiry, verify_files};
pub use reader::{AssetReader, content_type};
pub use server::PlaybackSession;
#[cfg(feature = "fuzzing")]
pub(crate) use server::parse_range;
pub(crate) use server::{IntegritySink, Server};
