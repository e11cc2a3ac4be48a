//! Helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! The tests run the real binaries. `scripts/test` builds them first (`cargo build --workspace
//! --bins`); [`bin`] finds them next to the test executable, in the same target profile.

// Test support: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

pub mod origin;

/// Path of the workspace binary `name` (e.g. `vodvault`, `vodvault-keytool`) of the profile the
/// tests were built with.
///
/// # Panics
/// If the binary has not been built, with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test does) first",
        path.display()
    );
    path
}

/// The committed test media (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}
