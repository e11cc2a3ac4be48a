//! Decrypt-and-play with real clients: ffmpeg decodes what the loopback server serves to the
//! same frames as the sources (also after seeking), Range requests behave, tampered chunks are
//! never served, tokens, traversal and expiry are enforced, the reader API reads what was stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::time::{Duration, Instant};

use vodvault_core::{DownloadRequest, Event, Mode, VaultError};
use vodvault_tests::origin::Origin;
use vodvault_tests::{TestVault, fixtures, framemd5, have, mp4_wrap, now_ms, plain, raw_http, test_vault, wait};

async fn stored(tv: &TestVault, origin: &Origin, path: &str, mode: Mode) -> String {
    let mut req = DownloadRequest::new(&origin.url(path));
    req.mode = mode;
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    id
}

const HLS: &[&str] = &["-allowed_extensions", "ALL"];

#[tokio::test(flavor = "multi_thread")]
async fn served_streams_decode_to_the_same_frames_as_their_sources() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        // Master playlist: the chosen video variant and audio rendition, each against its source.
        let id = stored(&tv, &origin, "hls-aes/master.m3u8", mode).await;
        let s = tv.vault.play(&id).await.unwrap();
        let base = s.base_url().to_owned();
        let video = framemd5(&format!("{base}video/index.m3u8"), HLS, &["-map", "0:v"]);
        assert!(video.len() >= 150, "{} video frames", video.len());
        assert_eq!(video, framemd5(&origin.url("hls-aes/high/index.m3u8"), HLS, &["-map", "0:v"]), "{mode} video");
        let audio = framemd5(&format!("{base}audio-1/index.m3u8"), HLS, &["-map", "0:a"]);
        assert_eq!(audio, framemd5(&origin.url("hls-aes/audio-en/index.m3u8"), HLS, &["-map", "0:a"]), "{mode} audio");
        // The master itself opens in a player, with both renditions.
        let both = framemd5(s.url(), HLS, &["-map", "0:v:0", "-map", "0:a:0"]);
        assert!(both.len() > video.len(), "{mode}: the master has video and audio");

        // fMP4 with two (encrypted) init sections, and both byte-range playlists.
        for path in ["hls-fmp4/index.m3u8", "hls-byterange/ts.m3u8", "hls-byterange/fmp4.m3u8"] {
            let id = stored(&tv, &origin, path, mode).await;
            let s = tv.vault.play(&id).await.unwrap();
            let served = framemd5(&format!("{}video/index.m3u8", s.base_url()), HLS, &["-map", "0"]);
            assert!(!served.is_empty());
            assert_eq!(served, framemd5(&origin.url(path), HLS, &["-map", "0"]), "{mode} {path}");
        }
        // Progressive.
        let id = stored(&tv, &origin, "progressive/sample.mp4", mode).await;
        let s = tv.vault.play(&id).await.unwrap();
        assert!(s.url().ends_with("/media.mp4"));
        assert_eq!(
            framemd5(s.url(), &[], &["-map", "0"]),
            framemd5(&origin.url("progressive/sample.mp4"), &[], &["-map", "0"]),
            "{mode} mp4"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_seeks_in_served_hls_and_mp4() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let hls = stored(&tv, &origin, "hls-aes/master.m3u8", Mode::Encrypted).await;
    let mp4 = stored(&tv, &origin, "progressive/sample.mp4", Mode::Encrypted).await;
    let (sh, sm) = (tv.vault.play(&hls).await.unwrap(), tv.vault.play(&mp4).await.unwrap());
    let seek = |at: &'static str, hls: bool| {
        let mut before = if hls { HLS.to_vec() } else { Vec::new() };
        before.extend(["-ss", at]);
        before
    };
    for at in ["2.5", "5"] {
        let served = framemd5(
            &format!("{}video/index.m3u8", sh.base_url()),
            &seek(at, true),
            &["-map", "0:v", "-frames:v", "10"],
        );
        let source =
            framemd5(&origin.url("hls-aes/high/index.m3u8"), &seek(at, true), &["-map", "0:v", "-frames:v", "10"]);
        assert_eq!(served.len(), 10);
        assert_eq!(served, source, "HLS seek to {at}");
        let served = framemd5(sm.url(), &seek(at, false), &["-map", "0:v", "-frames:v", "10"]);
        let source =
            framemd5(&origin.url("progressive/sample.mp4"), &seek(at, false), &["-map", "0:v", "-frames:v", "10"]);
        assert_eq!(served, source, "MP4 seek to {at}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn range_requests_on_a_progressive_file() {
    let origin = Origin::start(fixtures()).await;
    let want = plain("progressive/sample.mp4");
    let len = want.len();
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = stored(&tv, &origin, "progressive/sample.mp4", mode).await;
        let s = tv.vault.play(&id).await.unwrap();
        let url = s.url().to_owned();
        let r = raw_http("GET", &url, &[]);
        assert_eq!((r.status, r.header("content-type")), (200, Some("video/mp4")));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.complete() && r.body == want, "{mode} whole file");
        let head = raw_http("HEAD", &url, &[]);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(len.to_string().as_str()));
        for (range, from, to) in [
            ("bytes=0-0", 0, 1),
            ("bytes=100-65635", 100, 65636),          // across a chunk boundary
            ("bytes=65536-131071", 65536, 131072),    // exactly one chunk
            ("bytes=-500", len - 500, len),           // suffix
            ("bytes=200000-", 200_000, len),          // open
            ("bytes=270000-999999999", 270_000, len), // end past the file
        ] {
            let r = raw_http("GET", &url, &[("Range", range)]);
            assert_eq!(r.status, 206, "{mode} {range}");
            assert_eq!(r.header("content-range"), Some(format!("bytes {from}-{}/{len}", to - 1).as_str()), "{range}");
            assert!(r.complete() && r.body == want[from..to], "{mode} {range}");
        }
        for range in ["bytes=999999999-", "bytes=-0"] {
            let r = raw_http("GET", &url, &[("Range", range)]);
            assert_eq!(r.status, 416, "{range}");
            assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));
        }
        // Several sessions and clients at once, each getting its own bytes.
        let s2 = tv.vault.play(&id).await.unwrap();
        let urls = [url.clone(), s2.url().to_owned()];
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let u = urls[i % 2].clone();
                let w = want.clone();
                std::thread::spawn(move || {
                    let (a, b) = (i * 30_000, i * 30_000 + 25_000);
                    let r = raw_http("GET", &u, &[("Range", &format!("bytes={a}-{}", b - 1))]);
                    r.status == 206 && r.body == w[a..b]
                })
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()), "{mode} concurrent clients");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_paths_are_checked() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let id = stored(&tv, &origin, "hls-aes/master.m3u8", Mode::Encrypted).await;
    let s = tv.vault.play(&id).await.unwrap();
    let base = s.base_url().to_owned();
    assert_eq!(raw_http("GET", &format!("{base}video/seg-00000.ts"), &[]).status, 200);
    let host = base.trim_end_matches('/').rsplit_once('/').unwrap().0.to_owned();
    let not_found = raw_http("GET", &format!("{host}/0123456789abcdef0123456789abcdef/index.m3u8"), &[]);
    assert_eq!(not_found.status, 404);
    for probe in [
        format!("{base}../catalog.sqlite"),
        format!("{base}video/../../catalog.sqlite"),
        format!("{base}%2e%2e/catalog.sqlite"),
        format!("{base}video/seg-00000.ts.vvs"),
        format!("{base}/etc/passwd"),
        format!("{host}/"),
        format!("{host}/{}", "x".repeat(32)),
    ] {
        let r = raw_http("GET", &probe, &[]);
        assert_eq!((r.status, r.body.as_slice()), (404, not_found.body.as_slice()), "{probe}");
    }
    assert_eq!(raw_http("POST", &format!("{base}index.m3u8"), &[]).status, 405);
    // Closing revokes; so does dropping.
    s.close();
    assert_eq!(raw_http("GET", &format!("{base}index.m3u8"), &[]).status, 404);
    let s = tv.vault.play(&id).await.unwrap();
    let url = s.url().to_owned();
    assert_eq!(raw_http("GET", &url, &[]).status, 200);
    drop(s);
    assert_eq!(raw_http("GET", &url, &[]).status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_chunk_is_never_served_and_verify_names_the_file() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let id = stored(&tv, &origin, "hls-aes/master.m3u8", Mode::Encrypted).await;
    assert_eq!(tv.vault.verify(&id).await.unwrap(), Vec::<String>::new());
    let victim = tv.dir.path().join("assets").join(&id).join("video/seg-00002.ts.vvs");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0x01; // inside the first chunk
    std::fs::write(&victim, &bytes).unwrap();
    assert_eq!(tv.vault.verify(&id).await.unwrap(), vec!["video/seg-00002.ts".to_owned()]);

    let mut events = tv.vault.subscribe();
    let s = tv.vault.play(&id).await.unwrap();
    // Damage in the first block read: an error status, and not one byte of media.
    let r = raw_http("GET", &format!("{}video/seg-00002.ts", s.base_url()), &[]);
    assert_eq!(r.status, 500);
    assert!(r.body.starts_with(b"stored data failed verification"));
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::IntegrityFailed { id, file }) = events.recv().await {
                return (id, file);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ev, (id.clone(), "video/seg-00002.ts".to_owned()));
    // The other segments still play.
    let r = raw_http("GET", &format!("{}video/seg-00001.ts", s.base_url()), &[]);
    assert!(r.complete() && r.body == plain("hls-aes/plain/high/seg-1.ts"));

    // Damage found mid-response: the response is cut right before it; what was sent verified.
    let root = tempfile::tempdir().unwrap();
    let film = mp4_wrap(
        &(0..3 * 1024 * 1024 + 12_345u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect::<Vec<u8>>(),
    );
    std::fs::write(root.path().join("film.mp4"), &film).unwrap();
    let origin2 = Origin::start(root.path()).await;
    let big = stored(&tv, &origin2, "film.mp4", Mode::Encrypted).await;
    let file = tv.dir.path().join("assets").join(&big).join("media.mp4.vvs");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[48 + 40 * (65536 + 16) + 10] ^= 0x80; // chunk 40: plaintext from 2.5 MiB
    std::fs::write(&file, &bytes).unwrap();
    let s = tv.vault.play(&big).await.unwrap();
    let r = raw_http("GET", s.url(), &[]);
    assert_eq!(r.status, 200);
    assert!(!r.complete(), "cut");
    // Blocks are 1 MiB, or 256 KiB when the server streams to many players: the damage (at
    // 2.5 MiB) cuts the response at the start of the block that holds it.
    let sent = r.body.len();
    assert!(
        sent.is_multiple_of(256 << 10) && ((2 << 20)..=(40 * 65536)).contains(&sent),
        "every verified block before the damage, nothing after: {sent}"
    );
    assert!(film.starts_with(&r.body));
    // Random access around the damage still works.
    let r = raw_http("GET", s.url(), &[("Range", "bytes=0-65535")]);
    assert!(r.complete() && r.body == film[..65536]);
    let r = raw_http("GET", s.url(), &[("Range", "bytes=2686976-2752511")]); // chunk 41
    assert!(r.complete() && r.body == film[2_686_976..2_752_512]);
    let r = raw_http("GET", s.url(), &[("Range", "bytes=2621440-2686975")]); // chunk 40
    assert_eq!(r.status, 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_assets_are_refused() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("progressive/sample.mp4"));
    req.mode = Mode::Encrypted;
    req.offline_until = Some(now_ms() + 2_000);
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let s = tv.vault.play(&id).await.unwrap();
    assert_eq!(raw_http("GET", s.url(), &[]).status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(tv.vault.play(&id).await, Err(VaultError::OfflineExpired { .. })));
    assert!(matches!(tv.vault.open_reader(&id, "media.mp4").await, Err(VaultError::OfflineExpired { .. })));
    assert_eq!(raw_http("GET", s.url(), &[]).status, 403, "an open session stops serving too");
    // Verifying is not playing.
    assert!(tv.vault.verify(&id).await.unwrap().is_empty());
    // The app extends it.
    tv.vault.set_offline_until(&id, None).await.unwrap();
    let s = tv.vault.play(&id).await.unwrap();
    assert_eq!(raw_http("GET", s.url(), &[]).status, 200);
    // An asset plays while it downloads (play_while_downloading.rs, progressive_pieces.rs); a
    // cancelled one does not.
    origin.throttle(20_000);
    for path in ["hls-fmp4/index.m3u8", "progressive/sample.mp4?slow"] {
        let pending = tv.vault.download(DownloadRequest::new(&origin.url(path))).await.unwrap();
        assert!(tv.vault.play(&pending).await.is_ok(), "{path}");
        tv.vault.cancel(&pending).await.unwrap();
        assert!(matches!(tv.vault.play(&pending).await, Err(VaultError::NotPlayable { .. })), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reader_api_reads_every_stored_file() {
    let origin = Origin::start(fixtures()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = stored(&tv, &origin, "hls-aes/master.m3u8", mode).await;
        let files = tv.vault.files(&id).await.unwrap();
        assert!(files.contains(&"index.m3u8".to_owned()) && files.contains(&"video/seg-00003.ts".to_owned()));
        assert_eq!(files.len(), 1 + 3 + 4 + 5 + 2, "master + 3 playlists + pieces: {files:?}");
        for i in 0..4 {
            let r = tv.vault.open_reader(&id, &format!("video/seg-0000{i}.ts")).await.unwrap();
            let want = plain(&format!("hls-aes/plain/high/seg-{i}.ts"));
            assert_eq!(r.len(), want.len() as u64);
            assert_eq!(r.content_type(), "video/mp2t");
            for (off, n) in [(0usize, 188usize), (65_000, 2_000), (want.len() - 10, 100), (12_345, 70_000)] {
                let mut buf = vec![0u8; n];
                let got = r.read_at(off as u64, &mut buf).unwrap();
                let end = (off + n).min(want.len());
                assert_eq!(&buf[..got], &want[off..end]);
            }
            assert_eq!(r.plain_path().is_some(), mode == Mode::Normal);
        }
        assert!(matches!(tv.vault.open_reader(&id, "../catalog.sqlite").await, Err(VaultError::NotFound { .. })));
    }
}

/// `read_vec` returns (and allocates) what the file holds past the offset, and at most 16 MiB
/// a call, whatever it is asked for: a bad length from an app costs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_of_any_length_allocates_at_most_what_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..(20u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let file = mp4_wrap(&payload);
    std::fs::write(root.path().join("big.mp4"), &file).unwrap();
    let origin = Origin::start(root.path()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let mut req = DownloadRequest::new(&origin.url("big.mp4"));
        req.mode = mode;
        let id = tv.vault.download(req).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        let r = tv.vault.open_reader(&id, "media.mp4").await.unwrap();
        let max = vodvault_core::AssetReader::MAX_READ;
        let head = r.read_vec(0, u64::MAX).unwrap();
        assert_eq!(head.len() as u64, max, "{mode}: capped");
        assert!(head[..] == file[..max as usize], "{mode}");
        let tail = r.read_vec(r.len() - 10, u64::from(u32::MAX)).unwrap();
        assert!(tail[..] == file[file.len() - 10..], "{mode}");
        assert!(r.read_vec(r.len() + 1, u64::MAX).unwrap().is_empty(), "{mode}: past the end");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_does_not_block_others() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), mp4_wrap(&vec![7u8; 24 << 20])).unwrap();
    let origin = Origin::start(root.path()).await;
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("big.bin"));
    req.mode = Mode::Encrypted;
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let s = tv.vault.play(&id).await.unwrap();
    // Several clients ask for the whole file and never read it.
    let addr = s.url().trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let path = s.url().splitn(4, '/').nth(3).unwrap().to_owned();
    let mut stalled = Vec::new();
    for _ in 0..6 {
        use std::io::Write;
        let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
        tcp.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
        stalled.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Others are served at once.
    let started = Instant::now();
    for _ in 0..10 {
        let r = raw_http("GET", s.url(), &[("Range", "bytes=1000000-1065535")]);
        assert!(r.status == 206 && r.complete());
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(stalled);
}
