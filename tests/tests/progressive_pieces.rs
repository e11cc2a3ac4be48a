//! Progressive files in byte-range pieces: fetched in parallel, each byte once, stored
//! byte-identical (Normal) or sealed (Encrypted); a pause keeps the durable pieces; a file that
//! changes on the server starts over cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::time::Duration;

use vodvault_core::{AssetState, DownloadRequest, Event, FailureReason, Mode};
use vodvault_tests::origin::Origin;
use vodvault_tests::{mp4_wrap, test_vault, wait};

const PIECE: u64 = 256 * 1024;

/// A structurally valid MP4 of about `mib` MiB whose bytes differ everywhere (`seed`).
fn film(mib: usize, seed: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..mib * 1024 * 1024).map(|i| (((i as u64 * 2_654_435_761) >> 13) as u8) ^ seed).collect();
    mp4_wrap(&payload)
}

/// The byte ranges of `path` the origin answered (206), as (first, last).
fn ranges_served(origin: &Origin, path: &str) -> Vec<(u64, u64)> {
    origin
        .log()
        .iter()
        .filter(|l| l.path == format!("/{path}") && l.status == 206)
        .filter_map(|l| {
            let r = l.range.as_deref()?.strip_prefix("bytes=")?;
            let (a, b) = r.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// How many times each byte of a `len`-byte file was served, at most.
fn max_fetches(ranges: &[(u64, u64)], len: u64) -> usize {
    let mut counts = vec![0usize; len.div_ceil(4096) as usize];
    for &(a, b) in ranges {
        for block in (a / 4096)..=(b.min(len - 1) / 4096) {
            counts[block as usize] += 1;
        }
    }
    counts.into_iter().max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_is_fetched_in_parallel_pieces_each_byte_once_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let data = film(3, 1);
    std::fs::write(dir.path().join("film.mp4"), &data).unwrap();
    let origin = Origin::start(dir.path()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        origin.clear_log();
        let tv = test_vault(|c| c.piece_bytes = PIECE).await;
        let mut req = DownloadRequest::new(&origin.url("film.mp4"));
        req.mode = mode;
        let id = tv.vault.download(req).await.unwrap();
        let info = wait(&tv.vault, &id).await.unwrap();
        assert_eq!(info.state, AssetState::Completed);
        assert!(tv.read_piece(&id, "media.mp4", mode).await == data, "{mode}: the file as the origin has it");
        let ranges = ranges_served(&origin, "film.mp4");
        let pieces = (data.len() as u64).div_ceil(PIECE) as usize;
        // The probe (one byte) and one request per piece.
        assert_eq!(ranges.len(), pieces + 1, "{mode}: {ranges:?}");
        let pieces_only: Vec<_> = ranges.iter().copied().filter(|&(a, b)| b > a).collect();
        assert_eq!(max_fetches(&pieces_only, data.len() as u64), 1, "{mode}: every byte fetched once");
        if mode == Mode::Encrypted {
            let sealed = tv.files(&id).into_iter().find(|f| f.starts_with("media.mp4")).unwrap();
            let raw = std::fs::read(tv.dir.path().join(format!("assets/{id}/{sealed}"))).unwrap();
            assert!(raw.starts_with(b"VVSEAL"), "{sealed} is sealed");
            assert!(!raw.windows(64).any(|w| w == &data[4096..4160]), "no plaintext on disk");
        }
        assert_eq!(tv.vault.verify(&id).await.unwrap(), Vec::<String>::new(), "{mode}: verifies");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_download_keeps_its_durable_pieces_and_fetches_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = film(4, 2);
    std::fs::write(dir.path().join("film.mp4"), &data).unwrap();
    let origin = Origin::start(dir.path()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        origin.clear_log();
        origin.throttle(400_000);
        let tv = test_vault(|c| c.piece_bytes = PIECE).await;
        let mut req = DownloadRequest::new(&origin.url("film.mp4"));
        req.mode = mode;
        req.parallel = Some(3);
        let id = tv.vault.download(req).await.unwrap();
        // Until a few pieces are recorded.
        for _ in 0..200 {
            if tv.vault.asset(&id).await.unwrap().bytes_done >= 3 * PIECE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tv.vault.pause(&id).await.unwrap();
        let kept = tv.vault.asset(&id).await.unwrap().bytes_done;
        assert!(kept >= 3 * PIECE && kept < data.len() as u64, "{mode}: {kept} bytes kept at the pause");
        origin.throttle(0);
        tv.vault.resume(&id).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        assert!(tv.read_piece(&id, "media.mp4", mode).await == data, "{mode}");
        let ranges: Vec<_> = ranges_served(&origin, "film.mp4").into_iter().filter(|&(a, b)| b > a).collect();
        // A byte may be fetched twice only if its piece was in flight at the pause.
        let served: u64 = ranges.iter().map(|&(a, b)| b + 1 - a).sum();
        assert!(served <= data.len() as u64 + 3 * PIECE, "{mode}: {served} bytes served for {}", data.len());
        assert!(max_fetches(&ranges, data.len() as u64) <= 2, "{mode}");
        // The kept pieces were not fetched again.
        let again_from_start = ranges.iter().filter(|&&(a, _)| a == 0).count();
        assert_eq!(again_from_start, 1, "{mode}: piece 0 was kept: {ranges:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_changes_on_the_server_starts_over_and_ends_as_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = film(3, 3);
    let new = film(3, 4);
    let path = dir.path().join("film.mp4");
    std::fs::write(&path, &old).unwrap();
    let origin = Origin::start(dir.path()).await;
    origin.throttle(300_000);
    let tv = test_vault(|c| c.piece_bytes = PIECE).await;
    let mut events = tv.vault.subscribe();
    let mut req = DownloadRequest::new(&origin.url("film.mp4"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(2);
    let id = tv.vault.download(req).await.unwrap();
    for _ in 0..200 {
        if tv.vault.asset(&id).await.unwrap().bytes_done >= PIECE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A new version (another ETag) while pieces of the old one are stored.
    std::fs::write(&path, &new).unwrap();
    origin.throttle(0);
    wait(&tv.vault, &id).await.unwrap();
    assert!(tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == new, "no piece of the old version");
    let mut restarted = false;
    while let Ok(e) = events.try_recv() {
        if let Event::Restarted { reason: FailureReason::SourceChanged { .. }, .. } = e {
            restarted = true;
        }
    }
    assert!(restarted, "the app is told it started over, and why");
}

/// A 20 s H.264 MP4 made by ffmpeg with its `moov` box at the end (ffmpeg's default).
fn film_with_moov_at_the_end(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("moov-last.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "20"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1200k", "-g", "25"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    let data = std::fs::read(&out).unwrap();
    let moov = data.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = data.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov > mdat, "the test needs the moov box after the media");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_plays_an_mp4_while_it_downloads_its_moov_at_the_end_first() {
    if !vodvault_tests::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = film_with_moov_at_the_end(dir.path());
    let len = std::fs::metadata(&source).unwrap().len();
    let expected = vodvault_tests::framemd5_within(60, source.to_str().unwrap(), &[], &["-map", "0"]);
    let origin = Origin::start(dir.path()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        origin.clear_log();
        origin.throttle(150_000);
        let tv = test_vault(|c| c.piece_bytes = PIECE).await;
        let mut req = DownloadRequest::new(&origin.url("moov-last.mp4"));
        req.mode = mode;
        req.parallel = Some(2);
        let id = tv.vault.download(req).await.unwrap();
        let session = tv.vault.play(&id).await.unwrap();
        let url = session.url().to_owned();
        let played =
            tokio::task::spawn_blocking(move || vodvault_tests::framemd5_within(90, &url, &[], &["-map", "0"]))
                .await
                .unwrap();
        assert!(played == expected, "{mode}: the frames played while downloading are the source's");
        origin.throttle(0);
        wait(&tv.vault, &id).await.unwrap();
        let ranges: Vec<_> = ranges_served(&origin, "moov-last.mp4").into_iter().filter(|&(a, b)| b > a).collect();
        assert_eq!(max_fetches(&ranges, len), 1, "{mode}: every byte fetched once: {ranges:?}");
        // The last piece (where the moov is) came long before the download got there.
        let last = (len - 1) / PIECE * PIECE;
        let at = ranges.iter().position(|&(a, _)| a == last).expect("the last piece was fetched");
        assert!(at < 4, "{mode}: the moov's piece was fetched among the first: {ranges:?}");
        assert!(tv.read_piece(&id, "media.mp4", mode).await == std::fs::read(&source).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_mp4_plays_from_the_pieces_players_ask_for_and_stays_paused() {
    if !vodvault_tests::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = film_with_moov_at_the_end(dir.path());
    let first_seconds = ["-t", "3", "-map", "0"];
    let expected = vodvault_tests::framemd5_within(60, source.to_str().unwrap(), &[], &first_seconds);
    let origin = Origin::start(dir.path()).await;
    origin.throttle(50_000);
    let tv = test_vault(|c| c.piece_bytes = PIECE).await;
    let mut req = DownloadRequest::new(&origin.url("moov-last.mp4"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tv.vault.pause(&id).await.unwrap();
    origin.throttle(0);
    let session = tv.vault.play(&id).await.unwrap();
    let url = session.url().to_owned();
    let played = tokio::task::spawn_blocking(move || vodvault_tests::framemd5_within(60, &url, &[], &first_seconds))
        .await
        .unwrap();
    assert!(played == expected, "the first seconds of a paused MP4 play");
    assert_eq!(tv.vault.asset(&id).await.unwrap().state, AssetState::Paused, "and it stays paused");
    drop(session);
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    assert!(tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == std::fs::read(&source).unwrap());
    let len = std::fs::metadata(&source).unwrap().len();
    let ranges: Vec<_> = ranges_served(&origin, "moov-last.mp4").into_iter().filter(|&(a, b)| b > a).collect();
    assert!(max_fetches(&ranges, len) <= 2, "at most the piece in flight at the pause twice: {ranges:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_seeks_into_an_mp4_past_what_is_downloaded() {
    if !vodvault_tests::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = film_with_moov_at_the_end(dir.path());
    let len = std::fs::metadata(&source).unwrap().len();
    let seek = ["-ss", "14"];
    let expected = vodvault_tests::framemd5_within(60, source.to_str().unwrap(), &seek, &["-map", "0"]);
    let origin = Origin::start(dir.path()).await;
    origin.throttle(80_000);
    let tv = test_vault(|c| c.piece_bytes = PIECE).await;
    let mut req = DownloadRequest::new(&origin.url("moov-last.mp4"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    let session = tv.vault.play(&id).await.unwrap();
    let url = session.url().to_owned();
    let played = tokio::task::spawn_blocking(move || vodvault_tests::framemd5_within(90, &url, &seek, &["-map", "0"]))
        .await
        .unwrap();
    assert!(!played.is_empty() && played == expected, "the frames after the seek point are the source's");
    origin.throttle(0);
    wait(&tv.vault, &id).await.unwrap();
    let ranges: Vec<_> = ranges_served(&origin, "moov-last.mp4").into_iter().filter(|&(a, b)| b > a).collect();
    assert_eq!(max_fetches(&ranges, len), 1, "every byte fetched once: {ranges:?}");
    // The piece at the seek point (14 s of 20) came before the one the download (one
    // connection, in order) would have fetched before it.
    let first = |k: u64| ranges.iter().position(|&(a, _)| a == k * PIECE).unwrap();
    let late = (len * 7 / 10) / PIECE;
    assert!(first(late) < first(late - 1), "piece {late} (the seek point) before piece {}: {ranges:?}", late - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_whose_piece_fails_is_a_503_then_the_right_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = film(2, 5);
    std::fs::write(dir.path().join("film.mp4"), &data).unwrap();
    let origin = Origin::start(dir.path()).await;
    origin.throttle(60_000);
    let tv = test_vault(|c| c.piece_bytes = PIECE).await;
    let mut req = DownloadRequest::new(&origin.url("film.mp4"));
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    let session = tv.vault.play(&id).await.unwrap();
    // The download is busy with its first piece; the player's request for a later one fails at
    // the origin once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    origin.fault("film.mp4", vodvault_tests::origin::Fault::Status(500, None), 1);
    let (a, b) = (5 * PIECE + 1000, 5 * PIECE + 2000);
    let range = format!("bytes={a}-{b}");
    let (url, r) = (session.url().to_owned(), range.clone());
    let first =
        tokio::task::spawn_blocking(move || vodvault_tests::raw_http("GET", &url, &[("Range", &r)])).await.unwrap();
    assert_eq!(first.status, 503, "a piece that fails is a 503, never wrong bytes");
    assert!(first.header("retry-after").is_some());
    origin.throttle(0);
    let url = session.url().to_owned();
    let second =
        tokio::task::spawn_blocking(move || vodvault_tests::raw_http("GET", &url, &[("Range", &range)])).await.unwrap();
    assert_eq!(second.status, 206);
    assert!(second.complete());
    assert_eq!(second.header("content-range"), Some(format!("bytes {a}-{b}/{}", data.len()).as_str()));
    assert_eq!(second.body, data[a as usize..=b as usize]);
    wait(&tv.vault, &id).await.unwrap();
}
