//! vodvault for Kotlin, Swift and Python, through uniffi.
//!
//! A thin layer over `vodvault-core`, one file per concern: [`vault`] (the object every call goes
//! through), [`config`] (opening one), [`request`] (what to download, the URL refresh hook),
//! [`source_info`] (what `prepare` reports), [`asset`] (assets, images, progress), [`listener`]
//! (events and their handle), [`playback`] and [`reader`] (playing what is stored), [`vod`]
//! (ApsaraVideo VOD), [`rules`] (tracks by codecs, ranges and languages; previews), [`conditions`] (the device's network, power and space, and what downloads
//! require of them), [`keyfiles`], [`errors`] and [`runtime`].
//!
//! Core's plain records and enums (states, modes, failure reasons, the error, asset info, VOD
//! identities, progress) are exported as they are (`uniffi::remote`): one definition, and one
//! error mapping, core's. Records are converted only where a foreign API wants another shape
//! (defaults for requests and configuration, headers as records).
//!
//! Every async export runs on the crate's runtime; dropping an exported future (a cancelled
//! Kotlin coroutine) aborts its work. Swift does not drop futures on task cancellation: long
//! waits return when the asset stops, and `ListenerHandle.cancel()` stops event delivery
//! explicitly. App code (listeners, hooks) is called on threads of its own, never the runtime's.

#![allow(clippy::needless_pass_by_value)] // uniffi passes arguments by value

uniffi::setup_scaffolding!();

pub mod asset;
pub mod conditions;
pub mod config;
pub mod errors;
pub mod keyfiles;
pub mod listener;
pub mod playback;
pub mod reader;
pub mod request;
pub mod rules;
mod runtime;
pub mod source_info;
pub mod vault;
pub mod vod;
