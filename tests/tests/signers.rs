//! Key files bound to the app's signing certificates (as AliMediaDownloader binds its key file to
//! the app's signature), end to end through the operator's tool and the `vodvault` command: a
//! file bound to two signers opens in an app signed with either, never in one signed with another
//! or that does not say; `inspect` and `verify` show and check the binding; a version 1 key file
//! (bound to the app id alone) keeps opening whatever the app says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::{Command, Output};

use vodvault_tests::{APP_ID, bin};

fn keytool(args: &[&str]) -> Output {
    Command::new(bin("vodvault-keytool")).args(args).output().unwrap()
}

fn vodvault(home: &std::path::Path, key: &std::path::Path, signer: Option<&str>) -> Output {
    let mut c = Command::new(bin("vodvault"));
    c.arg("--home").arg(home).arg("--key-file").arg(key).arg("--app-id").arg(APP_ID);
    c.env_remove("VODVAULT_SIGNING_CERT_SHA256");
    if let Some(s) = signer {
        c.args(["--signing-cert-sha256", s]);
    }
    c.arg("list").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// Two signers of one app (key rotation), as `apksigner verify --print-certs` prints them, and
// another app's.
const OLD: &str = "3B:0E:1A:9C:22:41:7F:00:AB:CD:EF:01:23:45:67:89:98:76:54:32:10:FE:DC:BA:55:AA:11:22:33:44:55:66";
const NEW: &str = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2";
const REPACKAGED: &str = "0000000000000000000000000000000000000000000000000000000000000001";

#[test]
fn a_key_file_bound_to_two_signers_opens_only_in_an_app_signed_with_one_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bound.vvkey");
    let out = keytool(&[
        "generate",
        "--app-id",
        APP_ID,
        "--out",
        key.to_str().unwrap(),
        "--signing-cert-sha256",
        OLD,
        "--signing-cert-sha256",
        NEW,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["version"], 2);
    let mut signers: Vec<String> =
        info["signers"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    signers.sort();
    let old_hex = OLD.replace(':', "").to_lowercase();
    assert_eq!(signers, [old_hex.clone(), NEW.to_owned()]);
    let shown = text(&keytool(&["inspect", key.to_str().unwrap()]).stdout);
    assert!(shown.contains(&format!("signer:   {old_hex}")) && shown.contains(NEW), "{shown}");

    // The app signed with either certificate opens the vault; the same vault both times.
    let home = dir.path().join("vault");
    for signer in [OLD, NEW, &NEW.to_uppercase()] {
        let out = vodvault(&home, &key, Some(signer));
        assert!(out.status.success(), "{signer}: {}", text(&out.stderr));
    }
    // A repackaged app (another signer), or one that does not say: refused, typed, one line.
    for signer in [Some(REPACKAGED), None] {
        let out = vodvault(&home, &key, signer);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("signer mismatch") && err.trim().lines().count() == 1, "{signer:?}: {err}");
    }
    let bad = vodvault(&home, &key, Some("not-hex"));
    assert!(!bad.status.success() && text(&bad.stderr).contains("invalid signing certificate"));
    // The operator's check says the same.
    let ok = keytool(&["verify", key.to_str().unwrap(), "--app-id", APP_ID, "--signing-cert-sha256", NEW]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let no = keytool(&["verify", key.to_str().unwrap(), "--app-id", APP_ID, "--signing-cert-sha256", REPACKAGED]);
    assert!(!no.status.success() && text(&no.stderr).contains("not one of the 2"), "{}", text(&no.stderr));
}

#[test]
fn an_old_key_file_bound_to_the_app_id_alone_still_opens_whatever_the_app_says() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("old.vvkey");
    let out = keytool(&["generate", "--app-id", APP_ID, "--out", key.to_str().unwrap(), "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((info["version"].as_u64(), info["signers"].as_array().map(Vec::len)), (Some(1), Some(0)));
    // Byte for byte the version 1 layout: magic, version 1, and no signer list.
    let bytes = std::fs::read(&key).unwrap();
    assert_eq!(&bytes[8..10], &[0, 1]);
    assert_eq!(bytes.len(), 29 + APP_ID.len() + 64);
    let home = dir.path().join("vault");
    for signer in [None, Some(NEW), Some(REPACKAGED)] {
        let out = vodvault(&home, &key, signer);
        assert!(out.status.success(), "{signer:?}: {}", text(&out.stderr));
    }
    assert!(text(&keytool(&["inspect", key.to_str().unwrap()]).stdout).contains("signers:  any"));
}
