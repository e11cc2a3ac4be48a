//! Playing what is stored: a random-access reader over any file of a completed asset, and the
//! loopback HTTP server that players (AVPlayer, ExoPlayer, ffmpeg, VLC) open.
//!
//! The reader decrypts and verifies only the chunks a read touches (Encrypted mode) or reads the
//! plain file (Normal mode). The server is one per vault, bound to 127.0.0.1 on an ephemeral port
//! and started on first use. Every session's URLs carry an unguessable token, revoked when the
//! session closes or is dropped; anything else gets `404` and learns nothing. Each response is
//! sent block by block, each read and verified on the server's few blocking threads one block
//! ahead of the one being sent (`blocks`), so a slow or vanished client only ever holds its own
//! two blocks, and a chunk that fails verification ends the response before any of its bytes
//! are sent.

mod blocks;
mod reader;
mod server;

pub(crate) use blocks::IntegritySink;
pub(crate) use reader::{Access, AssetView, Expiry, verify_files};
pub use reader::{AssetReader, content_type};
pub use server::PlaybackSession;
pub(crate) use server::Server;
#[cfg(feature = "fuzzing")]
pub(crate) use server::parse_range;
