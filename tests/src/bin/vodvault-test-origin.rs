//! Serves a directory on 127.0.0.1 with the test origin (Range, HEAD, faults off), printing its
//! base URL on the first line of stdout; for benchmarks, manual checks and the bindings' tests.
//!
//! `vodvault-test-origin DIR [--throttle BYTES_PER_SEC] [--referer URL] [--vod] [--hls-uri-token T]
//! [--missing PATH]...`
//!
//! `--missing PATH`: requests whose path contains PATH get 404 (a stale image URL, say).
//!
//! With `--vod` (DIR must be `tests/fixtures`), the origin requires CDN type-A signatures and a
//! fake ApsaraVideo VOD API with the sample videos runs too: its endpoint is the second line of
//! stdout; `GET <endpoint>sts?ttl=SECS` hands out STS credentials as an app's server would.
//! `--hls-uri-token T`: keys are served only with `MtsHlsUriToken=T` (HLS encryption with a
//! token-checking key service, the CDN passing the playlist's token on to its key URIs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use vodvault_tests::origin::{Fault, Origin};
use vodvault_tests::vod::FakeVod;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let (mut throttle, mut referer, mut vod, mut hls_uri_token) = (0u64, None, false, None);
    let mut missing = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--throttle" => throttle = args.next().and_then(|v| v.parse().ok()).expect("--throttle BYTES_PER_SEC"),
            "--referer" => referer = args.next(),
            "--vod" => vod = true,
            "--hls-uri-token" => hls_uri_token = args.next(),
            "--missing" => missing.push(args.next().expect("--missing PATH")),
            _ if root.is_none() => root = Some(a),
            other => panic!("unexpected argument {other:?}"),
        }
    }
    let origin = Arc::new(Origin::start(root.expect("usage: vodvault-test-origin DIR")).await);
    origin.throttle(throttle);
    if let Some(r) = referer {
        origin.require_referer(&r);
    }
    if let Some(t) = hls_uri_token {
        origin.require_hls_uri_token(&[&t]);
    }
    for path in missing {
        origin.fault(&path, Fault::Status(404, None), u32::MAX);
    }
    println!("{}", origin.url(""));
    let _fake = if vod {
        origin.require_signature("cdn-type-a-key");
        let fake = FakeVod::start(Arc::clone(&origin)).await;
        fake.add_sample_videos();
        println!("{}", fake.endpoint());
        Some(fake)
    } else {
        None
    };
    use std::io::Write as _;
    std::io::stdout().flush().ok();
    tokio::signal::ctrl_c().await.ok();
}
