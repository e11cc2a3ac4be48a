//! Catalog scale (issue 14, target 1): the same calls timed in a vault of 10 assets and in one of
//! 10,000 (made as catalog rows by `testing::populate`, not by downloading), medians of
//! `--rounds` runs each; prints each median, the ratio of the large vault to the small, and the
//! catalog file's size per asset. Run by `benches/catalog-scale.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark fails loudly

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vodvault_core::{Conditions, DownloadRequest, KeepFree, KeyFile, Network, Vault, VaultConfig};

const APP: &str = "com.example.vodvault.bench";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Serves the same two-segment media playlist for every path, on 127.0.0.1.
async fn origin() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-ENDLIST\n";
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn config(dir: &Path, key: &[u8]) -> VaultConfig {
    let mut c = VaultConfig::new(dir.to_owned(), key.to_vec(), APP);
    // Downloads are created, never run: the network is "down".
    c.conditions = Conditions { network: Network::None, ..Conditions::default() };
    c.requirements.keep_free = KeepFree::NONE;
    c
}

struct Row {
    open: Duration,
    assets: Duration,
    asset: Duration,
    play: Duration,
    pause: Duration,
    download: Duration,
    catalog_bytes: u64,
}

async fn measure(n: usize, rounds: usize, origin: &str) -> Row {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let key = KeyFile::generate(APP).unwrap().to_bytes().to_vec();
    Vault::open(config(&dir, &key)).await.unwrap().close().await;
    let t = Instant::now();
    let ids = vodvault_core::testing::populate(&dir, n, 10).await.unwrap();
    eprintln!("  {n} assets made in {:.1} s", t.elapsed().as_secs_f64());
    let catalog_bytes = std::fs::metadata(dir.join("catalog.sqlite")).unwrap().len();
    let (mut open, mut assets, mut asset, mut play, mut pause, mut download) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let t = Instant::now();
        let vault = Vault::open(config(&dir, &key)).await.unwrap();
        open.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(vault.assets().await.unwrap().len(), n + 20 * r);
        assets.push(t.elapsed());
        // Per-asset calls, many times each (one sub-millisecond call is mostly noise).
        let one = &ids[ids.len() / 2];
        let t = Instant::now();
        for _ in 0..1000 {
            vault.asset(one).await.unwrap();
        }
        asset.push(t.elapsed() / 1000);
        let t = Instant::now();
        for _ in 0..50 {
            drop(vault.play(one).await.unwrap());
        }
        play.push(t.elapsed() / 50);
        // The start of a download: planned, recorded, queued (it waits for the network).
        let t = Instant::now();
        let mut new = Vec::new();
        for k in 0..20 {
            new.push(vault.download(DownloadRequest::new(&format!("{origin}/new/{r}/{k}/index.m3u8"))).await.unwrap());
        }
        download.push(t.elapsed() / 20);
        let t = Instant::now();
        for id in &new {
            vault.pause(id).await.unwrap();
        }
        pause.push(t.elapsed() / 20);
        vault.close().await;
    }
    Row {
        open: median(open),
        assets: median(assets),
        asset: median(asset),
        play: median(play),
        pause: median(pause),
        download: median(download),
        catalog_bytes,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut rounds = 5;
    let mut large = 10_000;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--assets" => large = args.next().and_then(|v| v.parse().ok()).expect("--assets N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let origin = origin().await;
    eprintln!("catalog scale: 10 vs {large} assets, medians of {rounds} rounds");
    let small = measure(10, rounds, &origin).await;
    let big = measure(large, rounds, &origin).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{:<34} {:>12} {:>14} {:>7}   target", "call", "10 assets", format!("{large} assets"), "ratio");
    let line = |name: &str, a: Duration, b: Duration, target: &str| {
        println!(
            "{name:<34} {:>9.3} ms {:>11.3} ms {:>6.2}×   {target}",
            ms(a),
            ms(b),
            b.as_secs_f64() / a.as_secs_f64()
        );
    };
    line("Vault::open (catalog in page cache)", small.open, big.open, "≤ 50 ms");
    line("assets()", small.assets, big.assets, "≤ 100 ms");
    line("asset(id)", small.asset, big.asset, "±20%");
    line("play(id)", small.play, big.play, "±20%");
    line("pause(id) of a queued download", small.pause, big.pause, "±20%");
    line("download() of a new source", small.download, big.download, "±20%");
    let per_asset = (big.catalog_bytes.saturating_sub(small.catalog_bytes)) as f64 / (large - 10) as f64;
    println!(
        "catalog file: {} B with 10 assets, {} B with {large}: {per_asset:.0} B per asset of 10 segments",
        small.catalog_bytes, big.catalog_bytes
    );
}
