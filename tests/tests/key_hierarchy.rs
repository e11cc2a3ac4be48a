//! The key hierarchy end to end with real files: key files made by the `vodvault-keytool`
//! binary, a content key wrapped under one of them, media sealed to disk, then the app key
//! rotated (content key re-wrapped) without touching the media.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use vodvault_core::seal::{Durability, SealOptions, SealedFileWriter, SealedReader};
use vodvault_core::testing::{Kek, WrappedKey};
use vodvault_core::{ContentKey, KeyError, KeyFile};
use vodvault_tests::keytool_generate;

const APP: &str = "com.example.player";

#[test]
fn rotate_app_key_without_re_encrypting_media() {
    let dir = tempfile::tempdir().unwrap();
    let (old_path, new_path) = (dir.path().join("old.vvkey"), dir.path().join("new.vvkey"));
    keytool_generate(&old_path, APP);
    keytool_generate(&new_path, APP);
    let old = Kek::derive(&KeyFile::load(&old_path, APP).unwrap());
    let new = Kek::derive(&KeyFile::load(&new_path, APP).unwrap());

    // Download time: a random content key, stored wrapped; media sealed under it.
    let content = ContentKey::generate().unwrap();
    let wrapped = content.wrap(&old, b"asset-42").unwrap().as_bytes().to_vec();
    let media: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let seg = dir.path().join("seg-0.bin");
    let mut w = SealedFileWriter::create(&seg, &content, b"seg-0", SealOptions::default()).unwrap();
    w.append(&media).unwrap();
    w.finish(Durability::Synced).unwrap();
    drop(content);
    let sealed_before = std::fs::read(&seg).unwrap();

    // Rotation: only the wrapped key changes.
    let stored = WrappedKey::from_bytes(&wrapped).unwrap();
    let rotated = stored.rewrap(&old, &new, b"asset-42").unwrap();
    assert_eq!(rotated.key_id(), new.key_id());
    assert_eq!(std::fs::read(&seg).unwrap(), sealed_before, "media untouched");

    // Playback with the new app key.
    let content = rotated.unwrap(&new, b"asset-42").unwrap();
    let reader = SealedReader::open_path(&seg, &content, b"seg-0").unwrap();
    assert_eq!(reader.read_all().unwrap(), media);

    // The old app key no longer opens the rotated wrapping, and says why.
    assert_eq!(
        rotated.unwrap(&old, b"asset-42").unwrap_err(),
        KeyError::KeyMismatch { wrapped_by: new.key_id(), have: old.key_id() }
    );
}
