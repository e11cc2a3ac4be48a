//! Playing an asset while it downloads: ffmpeg reads what the loopback server serves while the
//! origin is slow, and decodes the same frames as the source, seeking included; every piece is
//! fetched from the origin once, whoever asked first; a piece that fails while a player waits
//! is a 503, then plays.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vodvault_core::{DownloadRequest, Event, Mode};
use vodvault_tests::origin::{Fault, Origin, counts};
use vodvault_tests::{framemd5_within, have, raw_http, test_vault, wait};

const HLS: &[&str] = &["-allowed_extensions", "ALL"];
/// Seconds of media, in 1 s segments.
const SECONDS: u32 = 30;

/// A 30 s HLS stream (H.264 + AAC in MPEG-TS, 1 s segments) made by ffmpeg under `dir/long`.
fn make_stream(dir: &Path) -> PathBuf {
    let out = dir.join("long");
    std::fs::create_dir_all(&out).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &SECONDS.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        .args(["-b:v", "300k", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(out.join("seg-%03d.ts"))
        .arg(out.join("index.m3u8"))
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make the test stream");
    out.join("index.m3u8")
}

/// Every segment of the source and how often the origin served it.
fn segment_fetches(origin: &Origin) -> HashMap<String, usize> {
    let served = counts(&origin.log());
    (0..SECONDS)
        .map(|i| format!("/long/seg-{i:03}.ts"))
        .map(|p| (p.clone(), served.get(&p).copied().unwrap_or(0)))
        .collect()
}

fn assert_each_fetched_once(origin: &Origin, what: &str) {
    let fetched = segment_fetches(origin);
    let wrong: Vec<_> = fetched.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "{what}: every segment fetched once from the origin, got {wrong:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_plays_an_asset_while_it_downloads_and_each_piece_is_fetched_once() {
    if !have("ffmpeg") {
        return;
    }
    let media = tempfile::tempdir().unwrap();
    let source = make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    let expected = framemd5_within(60, source.to_str().unwrap(), HLS, &["-map", "0"]);
    assert!(expected.len() > SECONDS as usize * 25, "{} frames in the source", expected.len());
    for mode in [Mode::Normal, Mode::Encrypted] {
        origin.clear_log();
        // Slower than a player reads: ffmpeg asks for pieces the download does not have yet.
        origin.throttle(120_000);
        let tv = test_vault(|_| {}).await;
        let mut events = tv.vault.subscribe();
        let mut req = DownloadRequest::new(&origin.url("long/index.m3u8"));
        req.mode = mode;
        req.parallel = Some(2);
        let id = tv.vault.download(req).await.unwrap();
        let session = tv.vault.play(&id).await.unwrap();
        let url = session.url().to_owned();
        let played = tokio::task::spawn_blocking(move || framemd5_within(90, &url, HLS, &["-map", "0"])).await.unwrap();
        assert_eq!(played.len(), expected.len(), "{mode}: every frame played");
        assert!(played == expected, "{mode}: the frames played while downloading are the source's");
        let info = wait(&tv.vault, &id).await.unwrap();
        assert_eq!(info.state, vodvault_core::AssetState::Completed);
        assert_each_fetched_once(&origin, &mode.to_string());
        let mut for_playback = 0;
        while let Ok(e) = events.try_recv() {
            if matches!(e, Event::FetchedForPlayback { id: ref eid, .. } if *eid == id) {
                for_playback += 1;
            }
        }
        assert!(for_playback > 0, "{mode}: the player asked for pieces the download did not have yet");
        // The completed asset plays the same, from the vault.
        let again = tv.vault.play(&id).await.unwrap();
        let url = again.url().to_owned();
        let stored = tokio::task::spawn_blocking(move || framemd5_within(60, &url, HLS, &["-map", "0"])).await.unwrap();
        assert!(stored == expected, "{mode}: the completed asset plays the same");
        origin.throttle(0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seeking_ahead_fetches_the_seek_point_first_then_what_was_skipped() {
    if !have("ffmpeg") {
        return;
    }
    let media = tempfile::tempdir().unwrap();
    let source = make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    let at = "20";
    let expected = framemd5_within(60, source.to_str().unwrap(), &[HLS, &["-ss", at]].concat(), &["-map", "0"]);
    origin.throttle(60_000);
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("long/index.m3u8"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    let session = tv.vault.play(&id).await.unwrap();
    let url = session.url().to_owned();
    let played =
        tokio::task::spawn_blocking(move || framemd5_within(90, &url, &[HLS, &["-ss", at]].concat(), &["-map", "0"]))
            .await
            .unwrap();
    assert!(!played.is_empty());
    assert!(played == expected, "the frames after the seek point are the source's");
    // By now the download has moved to the seek point: the pieces after it came before most of
    // the ones before it.
    let order: Vec<u32> = origin
        .log()
        .iter()
        .filter_map(|l| l.path.strip_prefix("/long/seg-").and_then(|p| p.strip_suffix(".ts")))
        .filter_map(|n| n.parse().ok())
        .collect();
    let first_late = order.iter().position(|&n| n >= 20).expect("a piece after the seek point was fetched");
    assert!(first_late < 12, "the seek point was fetched early, not after the pieces before it: {order:?}");
    origin.throttle(0);
    wait(&tv.vault, &id).await.unwrap();
    assert_each_fetched_once(&origin, "after a seek");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piece_that_fails_while_a_player_waits_is_a_503_then_plays() {
    if !have("ffmpeg") {
        return;
    }
    let media = tempfile::tempdir().unwrap();
    make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    // Slow, so that the download is nowhere near segment 25 when the player asks for it.
    origin.throttle(20_000);
    // A player's first request for the segment fails at the origin (a transient 500)...
    origin.fault("long/seg-025.ts", Fault::Status(500, None), 1);
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("long/index.m3u8"));
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    let session = tv.vault.play(&id).await.unwrap();
    let url = format!("{}video/seg-00025.ts", session.base_url());
    let u = url.clone();
    let first = tokio::task::spawn_blocking(move || raw_http("GET", &u, &[])).await.unwrap();
    assert_eq!(first.status, 503, "a failed piece is a 503, not wrong bytes");
    assert!(first.header("retry-after").is_some(), "with Retry-After");
    // A piece nobody has fetched yet is sent as it arrives from the origin (chunked: its
    // length is not known before its end), and is what the origin has.
    let u = format!("{}video/seg-00015.ts", session.base_url());
    let arriving = tokio::task::spawn_blocking(move || raw_http("GET", &u, &[])).await.unwrap();
    assert_eq!(arriving.status, 200);
    assert_eq!(arriving.header("transfer-encoding"), Some("chunked"), "streamed as it arrives");
    assert!(arriving.complete());
    assert_eq!(arriving.body, std::fs::read(media.path().join("long/seg-015.ts")).unwrap());
    // ...and the player's next try at the failed one gets it, whole and right.
    origin.throttle(0);
    let second = tokio::task::spawn_blocking(move || raw_http("GET", &url, &[])).await.unwrap();
    assert_eq!(second.status, 200);
    assert!(second.complete(), "the piece arrived whole");
    assert_eq!(second.body, std::fs::read(media.path().join("long/seg-025.ts")).unwrap());
    wait(&tv.vault, &id).await.unwrap();
    assert_eq!(segment_fetches(&origin)["/long/seg-025.ts"], 1, "fetched once after the failure");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_asset_fetches_only_what_the_player_asks_for_and_stays_paused() {
    if !have("ffmpeg") {
        return;
    }
    let media = tempfile::tempdir().unwrap();
    let source = make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    let first_seconds = ["-t", "4", "-map", "0"];
    let expected = framemd5_within(60, source.to_str().unwrap(), HLS, &first_seconds);
    origin.throttle(30_000);
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("long/index.m3u8"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    tv.vault.pause(&id).await.unwrap();
    origin.throttle(0);
    let before = tv.vault.asset(&id).await.unwrap().segments_done;
    let session = tv.vault.play(&id).await.unwrap();
    let url = session.url().to_owned();
    let played = tokio::task::spawn_blocking(move || framemd5_within(60, &url, HLS, &first_seconds)).await.unwrap();
    assert!(played == expected, "the first seconds of a paused asset play");
    // Pieces are recorded in batches (every 200 ms): give the last one time to land.
    let mut info = tv.vault.asset(&id).await.unwrap();
    for _ in 0..50 {
        if info.segments_done > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        info = tv.vault.asset(&id).await.unwrap();
    }
    assert_eq!(info.state, vodvault_core::AssetState::Paused, "playing does not resume it");
    assert!(info.segments_done > before, "what the player asked for is stored and counted");
    let fetched = segment_fetches(&origin);
    let later: usize = (15..SECONDS).map(|i| fetched[&format!("/long/seg-{i:03}.ts")]).sum();
    assert_eq!(later, 0, "nothing the player did not ask for is fetched: {fetched:?}");
    drop(session);
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    assert_each_fetched_once(&origin, "paused, played, resumed");
}

/// The first line `proc` prints (within 20 s); the rest of its output is read and dropped.
fn first_line(proc: &mut vodvault_tests::cli::Proc) -> String {
    let stdout = proc.take_stdout().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("a first line within 20 s").trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_serves_a_download_from_its_start_and_a_kill_leaves_it_resumable() {
    if !have("ffmpeg") {
        return;
    }
    let media = tempfile::tempdir().unwrap();
    let source = make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    let first_seconds = ["-t", "3", "-map", "0"];
    let expected = framemd5_within(60, source.to_str().unwrap(), HLS, &first_seconds);
    origin.throttle(40_000);
    let home = vodvault_tests::cli::Home::new();
    let url = origin.url("long/index.m3u8");
    let mut proc = home.spawn(&["download", &url, "--mode", "encrypted", "--parallel", "2", "--play"]);
    let play = first_line(&mut proc);
    assert!(play.starts_with("http://127.0.0.1:") && play.ends_with("/index.m3u8"), "{play:?}");
    let p = play.clone();
    let played = tokio::task::spawn_blocking(move || framemd5_within(60, &p, HLS, &first_seconds)).await.unwrap();
    assert!(played == expected, "played from the CLI's server while it downloads");
    // Killed mid-way: what it stored is kept, and the download resumes to the end.
    proc.kill9();
    let stored = home.rows().await.iter().filter(|r| r.1 == "downloading").count();
    assert_eq!(stored, 1, "the asset is left as an interrupted download");
    origin.throttle(0);
    let out = home.run(&["resume"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = home.rows().await[0].0.clone();
    let out = home.run(&["verify", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // `serve` on a paused asset with --no-download fetches only what players ask for.
    let second = vodvault_tests::cli::Home::new();
    origin.throttle(20_000);
    let mut proc = second.spawn(&["download", &url, "--parallel", "1"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = second.rows().await[0].0.clone();
    let out = second.run(&["pause", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = proc.take_stdout();
    drop(proc);
    origin.throttle(0);
    let mut serving = second.spawn(&["serve", &id, "--no-download"]);
    let play = first_line(&mut serving);
    let p = play.clone();
    let played =
        tokio::task::spawn_blocking(move || framemd5_within(60, &p, HLS, &["-t", "3", "-map", "0"])).await.unwrap();
    assert!(played == expected, "a paused asset plays through `serve --no-download`");
    drop(serving);
    let rows = second.rows().await;
    assert_eq!(rows[0].1, "paused", "and stays paused");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piece_of_a_paused_asset_that_fails_for_good_is_a_503_until_it_can_be_fetched() {
    let media = tempfile::tempdir().unwrap();
    if !have("ffmpeg") {
        return;
    }
    make_stream(media.path());
    let origin = Origin::start(media.path()).await;
    origin.throttle(20_000);
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("long/index.m3u8"));
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    tv.vault.pause(&id).await.unwrap();
    origin.throttle(0);
    // More failures than the retry budget (5 attempts): the piece fails for good, for now.
    origin.fault("long/seg-020.ts", Fault::Status(500, None), 8);
    let session = tv.vault.play(&id).await.unwrap();
    let url = format!("{}video/seg-00020.ts", session.base_url());
    let u = url.clone();
    let first = tokio::task::spawn_blocking(move || raw_http("GET", &u, &[])).await.unwrap();
    assert_eq!(first.status, 503, "a piece that cannot be fetched is a 503");
    // The download gives the piece up (every attempt of its budget failed)...
    for _ in 0..200 {
        if origin.requests_to("long/seg-020.ts") >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...then the origin recovers: the player's next try gets it.
    origin.clear_faults();
    let second = tokio::task::spawn_blocking(move || raw_http("GET", &url, &[])).await.unwrap();
    assert_eq!(second.status, 200);
    assert!(second.complete());
    assert_eq!(second.body, std::fs::read(media.path().join("long/seg-020.ts")).unwrap());
    assert_eq!(tv.vault.asset(&id).await.unwrap().state, vodvault_core::AssetState::Paused);
}
