//! `vodvault-keytool` as a user runs it: every command and every error case, checking exit
//! status, the one-line reason, and that the secret never appears in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::path::Path;
use std::process::{Command, Output};

const APP: &str = "com.example.player";

fn keytool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vodvault-keytool")).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The secret's bytes, read out of the file per docs/format.md (offset 29 + app id length).
fn secret_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let n = usize::from(bytes[28]);
    hex::encode(&bytes[29 + n..29 + n + 32])
}

fn assert_no_secret(o: &Output, secret: &str) {
    let (out, err) = text(o);
    for s in [&out, &err] {
        assert!(!s.contains(&secret[..12]), "secret leaked: {s}");
    }
    let raw = hex::decode(secret).unwrap();
    for s in [&o.stdout, &o.stderr] {
        assert!(!s.windows(8).any(|w| w == &raw[..8]), "raw secret bytes leaked");
    }
}

fn generate(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("app.vvkey");
    let o = keytool(&["generate", "--app-id", APP, "--out", path.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    path
}

#[test]
fn generate_inspect_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.vvkey");
    let o = keytool(&["generate", "--app-id", APP, "--out", path.to_str().unwrap()]);
    assert!(o.status.success());
    let secret = secret_hex(&path);
    assert_no_secret(&o, &secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
    }

    let o = keytool(&["inspect", path.to_str().unwrap()]);
    assert!(o.status.success());
    assert_no_secret(&o, &secret);
    let (out, _) = text(&o);
    assert!(out.contains("version:  1") && out.contains(APP), "{out}");

    let o = keytool(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    assert_no_secret(&o, &secret);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["app_id"], APP);
    assert_eq!(v["key_id"].as_str().unwrap().len(), 16);
    assert!(v["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["signers"], serde_json::json!([]), "bound to the app id alone");
    assert_eq!(v.as_object().unwrap().len(), 6, "no other fields: {v}");

    // The key id shown is the one core derives.
    let key = vodvault_core::KeyFile::load(&path, APP).unwrap();
    assert_eq!(v["key_id"], key.key_id().to_string());

    let o = keytool(&["verify", path.to_str().unwrap(), "--app-id", APP]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_no_secret(&o, &secret);
}

#[test]
fn generate_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path());
    let before = std::fs::read(&path).unwrap();
    let o = keytool(&["generate", "--app-id", APP, "--out", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "untouched");

    let o = keytool(&["generate", "--app-id", APP, "--out", path.to_str().unwrap(), "--force"]);
    assert!(o.status.success());
    assert_ne!(std::fs::read(&path).unwrap(), before, "replaced with a new secret");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp files left");
}

#[test]
fn generate_rejects_bad_app_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    for bad in ["", "com example", "com/example"] {
        let o = keytool(&["generate", "--app-id", bad, "--out", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        assert!(text(&o).1.contains("invalid app id"));
        assert!(!path.exists());
    }
}

/// Runs `verify` on a damaged copy and returns its one-line reason.
fn verify_fails(path: &Path, app: &str, secret: &str) -> String {
    let o = keytool(&["verify", path.to_str().unwrap(), "--app-id", app]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert_no_secret(&o, secret);
    let (out, err) = text(&o);
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn verify_names_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path());
    let secret = secret_hex(&path);
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.vvkey");

    let err = verify_fails(&path, "com.example.other", &secret);
    assert!(err.contains("belongs to app id \"com.example.player\""), "{err}");

    std::fs::write(&bad, &good[..good.len() - 10]).unwrap();
    assert!(verify_fails(&bad, APP, &secret).contains("truncated"));

    let mut flipped = good.clone();
    flipped[40] ^= 0x04;
    std::fs::write(&bad, &flipped).unwrap();
    assert!(verify_fails(&bad, APP, &secret).contains("corrupted"));

    std::fs::write(&bad, b"#EXTM3U\n#EXT-X-ENDLIST\n").unwrap();
    assert!(verify_fails(&bad, APP, &secret).contains("not a vodvault key file"));

    // A future version with a valid checksum.
    let mut v3 = good;
    v3[9] = 3;
    let n = v3.len() - 32;
    let sum = sha256(&v3[..n]);
    v3[n..].copy_from_slice(&sum);
    std::fs::write(&bad, &v3).unwrap();
    assert!(verify_fails(&bad, APP, &secret).contains("version 3 is not supported"));

    let err = verify_fails(&dir.path().join("missing.vvkey"), APP, &secret);
    assert!(err.contains("No such file"), "{err}");

    // inspect refuses a damaged file too.
    let o = keytool(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("version 3 is not supported"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(keytool(&["verify", "x"]).status.code(), Some(2), "missing --app-id");
    assert_eq!(keytool(&["frobnicate"]).status.code(), Some(2));
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
