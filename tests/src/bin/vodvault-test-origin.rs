//! Serves a directory on 127.0.0.1 with the test origin (Range, HEAD, faults off), printing its
//! base URL on the first line of stdout; for benchmarks and manual checks.
//!
//! `vodvault-test-origin DIR [--port N] [--throttle BYTES_PER_SEC] [--referer URL]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vodvault_tests::origin::Origin;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let (mut throttle, mut referer) = (0u64, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--throttle" => throttle = args.next().and_then(|v| v.parse().ok()).expect("--throttle BYTES_PER_SEC"),
            "--referer" => referer = args.next(),
            _ if root.is_none() => root = Some(a),
            other => panic!("unexpected argument {other:?}"),
        }
    }
    let origin = Origin::start(root.expect("usage: vodvault-test-origin DIR")).await;
    origin.throttle(throttle);
    if let Some(r) = referer {
        origin.require_referer(&r);
    }
    println!("{}", origin.url(""));
    tokio::signal::ctrl_c().await.ok();
}
