//! A TCP proxy on 127.0.0.1 that caps every connection's downstream (server → client) at a
//! fixed rate, like a CDN edge that serves each connection at a few MiB/s. For
//! `benches/download-compare.sh`.
//!
//! `vodvault-throttle-proxy UPSTREAM_ADDR BYTES_PER_SEC` prints `127.0.0.1:<port>` and proxies
//! until killed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: fail loudly

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn pump_capped(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, rate: f64) {
    let mut buf = vec![0u8; 16 * 1024];
    // When the connection may send its next byte. Idle time earns no credit: a capped CDN edge
    // does not let a connection that waited burst above its rate.
    let mut next = Instant::now();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        if next < now {
            next = now;
        }
        if next > now {
            tokio::time::sleep(next - now).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        next += Duration::from_secs_f64(n as f64 / rate);
    }
    let _ = to.shutdown().await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().expect("usage: vodvault-throttle-proxy UPSTREAM_ADDR BYTES_PER_SEC");
    let rate: f64 = args.next().and_then(|r| r.parse().ok()).expect("BYTES_PER_SEC");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    loop {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, mut sw) = server.into_split();
            let up = tokio::spawn(async move {
                let mut cr = cr;
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
                let _ = sw.shutdown().await;
            });
            pump_capped(sr, cw, rate).await;
            up.abort();
        });
    }
}
