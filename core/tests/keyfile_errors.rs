//! Every way a key file can be wrong gives its own typed error, and none of them leaks the secret.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use sha2::{Digest, Sha256};
use vodvault_core::{KeyFile, KeyFileError};

const APP: &str = "com.example.player";

fn fresh() -> (KeyFile, Vec<u8>) {
    let key = KeyFile::generate(APP).unwrap();
    let bytes = key.to_bytes().to_vec();
    (key, bytes)
}

/// Both versions: a file bound to the app id alone (1), and one bound to two signers (2).
fn both_versions() -> Vec<Vec<u8>> {
    let bound = KeyFile::generate_for_signers(APP, &[[0x11; 32], [0xab; 32]]).unwrap();
    vec![fresh().1, bound.to_bytes().to_vec()]
}

fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 32;
    let sum = Sha256::digest(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum);
}

#[test]
fn intact_file_loads_for_its_app_only() {
    let (key, bytes) = fresh();
    assert_eq!(KeyFile::from_bytes(&bytes, APP).unwrap().key_id(), key.key_id());
    assert_eq!(
        KeyFile::from_bytes(&bytes, "com.example.other").unwrap_err(),
        KeyFileError::WrongApp { expected: "com.example.other".into(), found: APP.into() }
    );
}

#[test]
fn every_truncation_is_truncated() {
    for bytes in both_versions() {
        for len in 0..bytes.len() {
            let err = KeyFile::from_bytes(&bytes[..len], APP).unwrap_err();
            assert!(matches!(err, KeyFileError::Truncated { found, .. } if found == len), "len {len}: {err:?}");
        }
    }
}

#[test]
fn every_bit_flip_is_detected_with_the_right_kind() {
    for bytes in both_versions() {
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let err = KeyFile::from_bytes(&b, APP).unwrap_err();
            let ok = match bit / 8 {
                0..=7 => err == KeyFileError::NotAKeyFile,
                // The length field: the file is then shorter or longer than it says.
                10 | 11 => matches!(err, KeyFileError::Truncated { .. } | KeyFileError::Corrupted),
                _ => err == KeyFileError::Corrupted,
            };
            assert!(ok, "bit {bit}: {err:?}");
        }
    }
}

#[test]
fn trailing_bytes_are_corruption() {
    let (_, mut bytes) = fresh();
    bytes.push(0);
    assert_eq!(KeyFile::from_bytes(&bytes, APP).unwrap_err(), KeyFileError::Corrupted);
}

#[test]
fn a_future_version_is_unsupported_not_corrupted() {
    let (_, mut bytes) = fresh();
    bytes[8..10].copy_from_slice(&3u16.to_be_bytes());
    reseal(&mut bytes);
    assert_eq!(KeyFile::from_bytes(&bytes, APP).unwrap_err(), KeyFileError::UnsupportedVersion { found: 3 });
}

#[test]
fn a_version_that_disagrees_with_its_layout_is_corruption() {
    // A version 1 file that says 2 (its first secret byte read as a signer count), and a
    // version 2 file that says 1 (its signer list read as the secret): checksums fixed up.
    for (mut bytes, version) in both_versions().into_iter().zip([2u16, 1]) {
        bytes[8..10].copy_from_slice(&version.to_be_bytes());
        reseal(&mut bytes);
        assert_eq!(KeyFile::from_bytes(&bytes, APP).unwrap_err(), KeyFileError::Corrupted, "as version {version}");
    }
}

#[test]
fn a_consistent_but_forged_key_id_is_corruption() {
    // Checksum fixed up, but the stored key id no longer matches the secret.
    let (_, mut bytes) = fresh();
    bytes[20] ^= 0xff;
    reseal(&mut bytes);
    assert_eq!(KeyFile::from_bytes(&bytes, APP).unwrap_err(), KeyFileError::Corrupted);
}

#[test]
fn other_files_are_not_key_files() {
    for junk in [
        &b"<html><body>Forbidden</body></html>"[..],
        b"\x00\x00\x00\x18ftypisom",
        b"#EXTM3U\n",
        b"-----BEGIN PRIVATE KEY-----\n",
    ] {
        assert_eq!(KeyFile::from_bytes(junk, APP).unwrap_err(), KeyFileError::NotAKeyFile);
    }
}

#[test]
fn app_ids_are_validated() {
    for bad in ["", "has space", "slash/app", "ünïcode", &"a".repeat(256)] {
        assert!(matches!(KeyFile::generate(bad), Err(KeyFileError::InvalidAppId { .. })), "{bad:?}");
    }
    for good in ["a", "com.example.player", "com.example-app_2", &"a".repeat(255)] {
        let key = KeyFile::generate(good).unwrap();
        assert_eq!(KeyFile::from_bytes(&key.to_bytes(), good).unwrap().app_id(), good);
    }
}

#[test]
fn errors_and_debug_never_contain_the_secret() {
    let (key, bytes) = fresh();
    let secret_hex = hex::encode(&bytes[29 + APP.len()..29 + APP.len() + 32]);
    let mut outputs = vec![format!("{key:?}"), format!("{:?}", key.info())];
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    for err in [
        KeyFile::from_bytes(&bytes, "other.app").unwrap_err(),
        KeyFile::from_bytes(&flipped, APP).unwrap_err(),
        KeyFile::from_bytes(&bytes[..50], APP).unwrap_err(),
    ] {
        outputs.push(format!("{err} {err:?}"));
    }
    for out in outputs {
        assert!(!out.contains(&secret_hex[..8]), "{out}");
    }
}

#[test]
fn write_to_refuses_overwrite_and_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.vvkey");
    let (key, bytes) = fresh();
    key.write_to(&path, false).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (other, other_bytes) = fresh();
    assert!(matches!(other.write_to(&path, false), Err(KeyFileError::AlreadyExists)));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
    other.write_to(&path, true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), other_bytes);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
