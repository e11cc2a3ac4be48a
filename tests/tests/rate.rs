//! The vault-wide speed cap (`VaultConfig::max_rate`, `Vault::set_max_rate`, `--max-rate`),
//! measured where it matters, at a real origin on 127.0.0.1: two downloads together fetch at the
//! cap (within 10% over 10 s), smoothly (every second near it), each getting its share; a new cap
//! set while they run takes over at once; a low cap does not make requests time out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::{Duration, Instant};

use vodvault_core::{AssetState, DownloadRequest};
use vodvault_tests::origin::Origin;
use vodvault_tests::{test_vault, ts_stream, wait};

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn two_downloads_share_the_cap_smoothly_and_a_new_cap_takes_over() {
    let root = tempfile::tempdir().unwrap();
    for dir in ["a", "b"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
        // 400 segments of ~56 KB: 22 MB each, far more than the test lets through (about 23 MB
        // in all).
        ts_stream(&root.path().join(dir), 400, 300);
    }
    let origin = Origin::start(root.path()).await;
    let tv = test_vault(|c| c.max_rate = Some(MIB)).await;
    let a = tv.vault.download(DownloadRequest::new(&origin.url("a/stream.m3u8"))).await.unwrap();
    let b = tv.vault.download(DownloadRequest::new(&origin.url("b/stream.m3u8"))).await.unwrap();
    let sample = || (origin.bytes_sent("a"), origin.bytes_sent("b"));
    let start = Instant::now();
    let mut samples = Vec::new();
    for second in 1..=12u32 {
        tokio::time::sleep_until((start + Duration::from_secs(u64::from(second))).into()).await;
        samples.push(sample());
    }
    // Seconds 2 to 12 (the first fills the sockets' buffers).
    let (a0, b0) = samples[1];
    let (a1, b1) = samples[11];
    let total = (a1 - a0) + (b1 - b0);
    let rate = total as f64 / 10.0;
    assert!((rate / MIB as f64 - 1.0).abs() <= 0.10, "{:.0} bytes/s over 10 s for a cap of {MIB}", rate);
    // Smooth: every second near the cap, not bursts and silences.
    for w in samples[1..].windows(2) {
        let second = (w[1].0 + w[1].1) - (w[0].0 + w[0].1);
        assert!((second as f64 / MIB as f64 - 1.0).abs() <= 0.35, "{second} bytes in one second: {samples:?}");
    }
    // Fair: each download gets its share.
    let share = (a1 - a0) as f64 / total as f64;
    assert!((0.35..=0.65).contains(&share), "a got {:.0}% of the cap", share * 100.0);

    // A new cap while they run: twice as fast from now on.
    tv.vault.set_max_rate(Some(2 * MIB));
    assert_eq!(tv.vault.max_rate(), Some(2 * MIB));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (a2, b2) = sample();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (a3, b3) = sample();
    let rate = ((a3 - a2) + (b3 - b2)) as f64 / 4.0;
    assert!((rate / (2 * MIB) as f64 - 1.0).abs() <= 0.15, "{rate:.0} bytes/s for a cap of {}", 2 * MIB);

    // No cap: the rest arrives at once, and both complete.
    tv.vault.set_max_rate(None);
    for id in [a, b] {
        assert_eq!(wait(&tv.vault, &id).await.unwrap().state, AssetState::Completed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_cap_is_not_a_stalled_server() {
    // 48 KiB/s over 6 connections: each chunk waits seconds for its turn, longer than the 2 s
    // read timeout of the test vault. Nothing times out, nothing is fetched twice.
    let root = tempfile::tempdir().unwrap();
    ts_stream(root.path(), 12, 150);
    let origin = Origin::start(root.path()).await;
    let tv = test_vault(|c| c.max_rate = Some(48 << 10)).await;
    let started = Instant::now();
    let id = tv.vault.download(DownloadRequest::new(&origin.url("stream.m3u8"))).await.unwrap();
    assert_eq!(wait(&tv.vault, &id).await.unwrap().state, AssetState::Completed);
    // 12 × 28 KB at 48 KiB/s: about 7 s.
    assert!(started.elapsed() >= Duration::from_secs(5), "the cap held: {:?}", started.elapsed());
    for (path, n) in vodvault_tests::origin::counts(&origin.log()) {
        assert_eq!(n, 1, "{path} fetched {n} times");
    }
    assert_eq!(origin.log().iter().filter(|l| l.path.ends_with(".ts")).count(), 12, "no request was retried");
}
