//! MPEG-DASH end to end, against `tests/fixtures/dash` (one ffmpeg encode packaged every way a
//! downloader meets: SegmentTemplate with and without SegmentTimeline, single files addressed by
//! SegmentList byte ranges and by SegmentBase's `sidx`, SegmentList of files, two periods through
//! nested BaseURLs): every piece stored byte for byte in Normal mode and sealed in Encrypted mode;
//! ffmpeg decodes the served `manifest.mpd` and the `index.m3u8` made from it (and, in Normal
//! mode, the MPD on disk) to the source's frames, also after seeking and while the asset
//! downloads; choices, kill -9 and resume, expiring signed URLs and ApsaraVideo VOD `mpd` streams.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vodvault_core::{
    AssetKind, AssetState, AudioChoice, DownloadRequest, Event, Mode, Quality, RefreshRequest, SubtitleChoice,
    UrlRefresher,
};
use vodvault_tests::cli::Home;
use vodvault_tests::origin::{Origin, counts};
use vodvault_tests::{TestVault, done_files, fixtures, framemd5, have, plain, raw_http, read_piece, test_vault, wait};

const HLS: &[&str] = &["-allowed_extensions", "ALL"];

fn fx(path: &str) -> Vec<u8> {
    plain(&format!("dash/{path}"))
}

/// What a fixture's chosen tracks must hold, per rendition directory: the origin's pieces in
/// order (`Pieces`), or, for a file split in byte ranges, the file (`Whole`: the pieces joined,
/// less the boxes that are not pieces: its `sidx` and `mfra`).
enum Want {
    Pieces(Vec<Vec<u8>>),
    Whole { file: Vec<u8>, pieces: usize, skip: &'static [&'static [u8; 4]] },
}

/// The top-level boxes of an MP4 file: `(offset, length, type)`.
fn boxes(file: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len, file[at + 4..at + 8].try_into().unwrap()));
        at += len.max(8);
    }
    out
}

fn template(stream: u32, segments: u32) -> Want {
    let mut v = vec![fx(&format!("timeline/init-stream{stream}.m4s"))];
    v.extend((1..=segments).map(|n| fx(&format!("timeline/chunk-stream{stream}-{n:05}.m4s"))));
    Want::Pieces(v)
}

/// `(rendition dir, what it holds)` for a download of `fixture` with every audio and subtitle.
fn expected(fixture: &str) -> Vec<(&'static str, Want)> {
    let number = |stream: u32, segments: u32| {
        let mut v = vec![fx(&format!("number/init-stream{stream}.m4s"))];
        v.extend((1..=segments).map(|n| fx(&format!("number/chunk-stream{stream}-{n:05}.m4s"))));
        Want::Pieces(v)
    };
    // ffmpeg's byte ranges: 4 video segments and 5 audio ones (the last 64 ms long).
    let single = |s: u32| Want::Whole {
        file: fx(&format!("single/manifest-stream{s}.mp4")),
        pieces: if s == 0 { 5 } else { 6 },
        skip: &[],
    };
    // ftyp + moov, the index, 4 fragments of 2 s, and ffmpeg's random-access trailer (mfra).
    let base = |name: &str| Want::Whole { file: fx(&format!("base/{name}")), pieces: 5, skip: &[b"sidx", b"mfra"] };
    match fixture {
        "timeline" => vec![
            ("video", template(0, 4)),
            ("audio-1", template(1, 5)),
            ("audio-2", template(2, 5)),
            ("subtitles-3", Want::Pieces(vec![fx("timeline/subs-en.vtt")])),
        ],
        // @duration 2 s in an 8.0 s period: 4 segments, whatever else the origin holds.
        "number" => vec![("video", number(0, 4)), ("audio-1", number(1, 4)), ("audio-2", number(2, 4))],
        "single" => vec![("video", single(0)), ("audio-1", single(1)), ("audio-2", single(2))],
        "base" => vec![("video", base("video.mp4")), ("audio-1", base("audio-en.mp4"))],
        "list" => vec![("video", template(0, 4)), ("audio-1", template(2, 5))],
        other => panic!("{other}"),
    }
}

async fn stored_dir(tv: &TestVault, id: &str, dir: &str, mode: Mode) -> Vec<Vec<u8>> {
    let mut names: Vec<String> = tv
        .files(id)
        .into_iter()
        .map(|f| f.trim_end_matches(".vvs").to_owned())
        .filter(|f| f.starts_with(&format!("{dir}/")) && !f.ends_with(".m3u8"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        out.push(tv.read_piece(id, &n, mode).await);
    }
    out
}

fn request(url: &str, mode: Mode) -> DownloadRequest {
    let mut r = DownloadRequest::new(url);
    r.mode = mode;
    r.audio = AudioChoice::All;
    r.subtitles = SubtitleChoice::All;
    r
}

/// Encrypted mode: no stored file holds any 32-byte window of `plaintext` (sampled).
fn assert_no_plaintext(tv: &TestVault, id: &str, plaintext: &[u8]) {
    let root = tv.dir.path().join("assets").join(id);
    for name in tv.files(id) {
        assert!(name.ends_with(".vvs"), "every stored file is sealed: {name}");
        let stored = std::fs::read(root.join(&name)).unwrap();
        for start in (0..plaintext.len().saturating_sub(32)).step_by(1499) {
            let needle = &plaintext[start..start + 32];
            assert!(!stored.windows(32).any(|w| w == needle), "{name} holds plaintext from offset {start}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dash_packaging_is_stored_piece_for_piece_in_both_modes() {
    let origin = Origin::start(fixtures()).await;
    for fixture in ["timeline", "number", "single", "base", "list"] {
        for mode in [Mode::Normal, Mode::Encrypted] {
            let tv = test_vault(|_| {}).await;
            let id =
                tv.vault.download(request(&origin.url(&format!("dash/{fixture}/manifest.mpd")), mode)).await.unwrap();
            let info = wait(&tv.vault, &id).await.unwrap();
            assert_eq!((info.state, info.kind), (AssetState::Completed, AssetKind::Dash), "{fixture} {mode}");
            assert!((info.duration_secs.unwrap() - 8.0).abs() < 0.1, "{fixture}: {:?}", info.duration_secs);
            assert_eq!(info.bytes_expected, Some(info.bytes_done));
            if mode == Mode::Normal {
                assert!(info.path.as_ref().unwrap().ends_with("manifest.mpd"), "{fixture}: {:?}", info.path);
            }
            let mut all_plain = Vec::new();
            for (dir, want) in expected(fixture) {
                let got = stored_dir(&tv, &id, dir, mode).await;
                match want {
                    Want::Pieces(pieces) => {
                        assert_eq!(got.len(), pieces.len(), "{fixture} {mode} {dir}: pieces");
                        for (i, (g, w)) in got.iter().zip(&pieces).enumerate() {
                            assert!(g == w, "{fixture} {mode} {dir}: piece {i} differs from the origin's");
                        }
                        all_plain.extend(pieces.concat());
                    }
                    Want::Whole { file, pieces, skip } => {
                        // The initialization and every media piece: the file, less its index.
                        assert_eq!(got.len(), pieces, "{fixture} {mode} {dir}: pieces");
                        let want: Vec<u8> = boxes(&file)
                            .into_iter()
                            .filter(|(_, _, kind)| !skip.contains(&kind))
                            .flat_map(|(at, len, _)| file[at..at + len].to_vec())
                            .collect();
                        assert!(got.concat() == want, "{fixture} {mode} {dir}: the pieces are not the file's bytes");
                        all_plain.extend(file);
                    }
                }
            }
            if mode == Mode::Encrypted {
                assert_no_plaintext(&tv, &id, &all_plain);
            }
        }
    }
}

/// Hash lines of video (`0:v`) or of the first audio track (`0:a:0`): frames as decoded, and
/// their timing.
fn decode(input: &str, before: &[&str], map: &str) -> Vec<String> {
    framemd5(input, before, &["-map", map])
}

/// The decoded frames' digests alone (a source MP4 and a DASH stream of it number their first
/// frame differently; the pictures are the same).
fn pictures(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| l.rsplit(',').next().unwrap().trim().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn served_dash_plays_as_mpd_and_as_hls_to_the_source_frames_also_after_seeking() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    let source = pictures(&decode(fixtures().join("dash/src/src.mp4").to_str().unwrap(), &[], "0:v"));
    assert_eq!(source.len(), 200);
    for fixture in ["timeline", "single", "base", "list"] {
        // ffmpeg playing the origin's MPD gives the timing and audio to expect (ffmpeg 5.1 cannot
        // play byte-range SegmentLists: for `single`, the same encode's SegmentTemplate MPD).
        let reference =
            origin.url(&format!("dash/{}/manifest.mpd", if fixture == "single" { "timeline" } else { fixture }));
        let video_lines = decode(&reference, &[], "0:v");
        let seek_lines = decode(&reference, &["-ss", "5"], "0:v");
        assert!(seek_lines.len() < video_lines.len() && !seek_lines.is_empty());
        let audio_lines = decode(&reference, &[], "0:a:0");
        for mode in [Mode::Normal, Mode::Encrypted] {
            let tv = test_vault(|_| {}).await;
            let id =
                tv.vault.download(request(&origin.url(&format!("dash/{fixture}/manifest.mpd")), mode)).await.unwrap();
            let info = wait(&tv.vault, &id).await.unwrap();
            let s = tv.vault.play(&id).await.unwrap();
            assert!(s.url().ends_with("/manifest.mpd"), "{}", s.url());
            let mpd = format!("{}manifest.mpd", s.base_url());
            let hls = format!("{}index.m3u8", s.base_url());
            let what = format!("{fixture} {mode}");
            for (input, before) in [(&mpd, &[][..]), (&hls, HLS)] {
                let v = decode(input, before, "0:v");
                assert_eq!(pictures(&v), source, "{what} {input}: pictures");
                assert_eq!(v, video_lines, "{what} {input}: video timing");
                assert_eq!(decode(input, before, "0:a:0"), audio_lines, "{what} {input}: audio");
            }
            assert_eq!(decode(&mpd, &["-ss", "5"], "0:v"), seek_lines, "{what}: after seeking to 5 s in the MPD");
            // Seeking in the HLS made from it: the playlist puts 5 s in the third segment, which
            // decodes (after its initialization) to the source's frames from 4 s. (ffmpeg 5.1's
            // HLS demuxer cannot seek in fMP4 at all, its own output included, so a player's
            // seek is shown by what it would fetch.)
            let video_playlist =
                String::from_utf8(raw_http("GET", &format!("{}video/index.m3u8", s.base_url()), &[]).body).unwrap();
            let durations: Vec<f64> = video_playlist
                .lines()
                .filter_map(|l| l.strip_prefix("#EXTINF:"))
                .map(|d| d.trim_end_matches(',').parse().unwrap())
                .collect();
            assert_eq!(durations.len(), 4, "{video_playlist}");
            let before_third: f64 = durations[..2].iter().sum();
            assert!(before_third <= 5.0 && before_third + durations[2] > 5.0, "{video_playlist}");
            let third = video_playlist.lines().filter(|l| !l.starts_with('#')).nth(2).unwrap().to_owned();
            let map = video_playlist.split("#EXT-X-MAP:URI=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            let mut bytes = raw_http("GET", &format!("{}video/{map}", s.base_url()), &[]).body;
            bytes.extend(raw_http("GET", &format!("{}video/{third}", s.base_url()), &[]).body);
            let at = tv.dir.path().join("third.mp4");
            std::fs::write(&at, &bytes).unwrap();
            assert_eq!(
                pictures(&decode(at.to_str().unwrap(), &[], "0:v")),
                source[100..150],
                "{what}: the segment at 5 s"
            );
            if mode == Mode::Normal {
                // The MPD on disk, with relative URLs, plays from the files themselves.
                let disk = info.path.unwrap();
                assert_eq!(decode(disk.to_str().unwrap(), HLS, "0:v"), video_lines, "{what}: the MPD on disk");
            }
            if fixture == "timeline" {
                // WebVTT subtitles: a file in the MPD, a SUBTITLES rendition in the HLS master.
                let master = String::from_utf8(raw_http("GET", &hls, &[]).body).unwrap();
                assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"en\""), "{master}");
                assert!(master.contains("SUBTITLES=\"subs\""), "{master}");
                let manifest = String::from_utf8(raw_http("GET", &mpd, &[]).body).unwrap();
                assert!(manifest.contains("mimeType=\"text/vtt\""), "{manifest}");
                let vtt = raw_http("GET", &format!("{}subtitles-3/seg-00000.vtt", s.base_url()), &[]);
                assert_eq!(vtt.body, fx("timeline/subs-en.vtt"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duration_template_plays_to_the_source_frames() {
    if !have("ffmpeg") {
        return;
    }
    // `number/`: SegmentTemplate@duration, no timeline (its audio is checked piece by piece in
    // `every_dash_packaging_is_stored_piece_for_piece_in_both_modes`: the MPD's 8.0 s hold 4
    // audio segments, while ffmpeg reading the origin fetches a fifth).
    let origin = Origin::start(fixtures()).await;
    let source = pictures(&decode(fixtures().join("dash/src/src.mp4").to_str().unwrap(), &[], "0:v"));
    let reference = decode(&origin.url("dash/number/manifest.mpd"), &[], "0:v");
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = tv.vault.download(request(&origin.url("dash/number/manifest.mpd"), mode)).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        let s = tv.vault.play(&id).await.unwrap();
        for (input, before) in [(s.url().to_owned(), &[][..]), (s.hls_url().unwrap().to_owned(), HLS)] {
            let v = decode(&input, before, "0:v");
            assert_eq!(pictures(&v), source, "{mode} {input}");
            assert_eq!(v, reference, "{mode} {input}: timing");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ttml_text_track_is_stored_as_is_and_listed_in_the_mpd_not_in_the_hls_master() {
    let origin = Origin::start(fixtures()).await;
    let url = origin.url("dash/ttml/manifest.mpd");
    let tv = test_vault(|_| {}).await;
    let vodvault_core::Prepared::Dash { adaptation_sets, .. } = tv.vault.prepare(&url, &[]).await.unwrap() else {
        panic!("not DASH")
    };
    let text = adaptation_sets.iter().find(|s| s.content_type == "text").unwrap();
    assert_eq!((text.language.as_deref(), text.mime_type.as_deref()), (Some("fr"), Some("application/ttml+xml")));
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = tv.vault.download(request(&url, mode)).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        assert_eq!(tv.read_piece(&id, "subtitles-1/seg-00000.ttml", mode).await, fx("ttml/subs-fr.ttml"));
        let s = tv.vault.play(&id).await.unwrap();
        let mpd = String::from_utf8(raw_http("GET", s.url(), &[]).body).unwrap();
        assert!(
            mpd.contains("mimeType=\"application/ttml+xml\"")
                && mpd.contains("<BaseURL>subtitles-1/seg-00000.ttml</BaseURL>"),
            "{mpd}"
        );
        let ttml = raw_http("GET", &format!("{}subtitles-1/seg-00000.ttml", s.base_url()), &[]);
        assert_eq!(ttml.header("content-type"), Some("application/ttml+xml"));
        assert_eq!(ttml.body, fx("ttml/subs-fr.ttml"));
        let master = String::from_utf8(raw_http("GET", s.hls_url().unwrap(), &[]).body).unwrap();
        assert!(!master.contains("SUBTITLES"), "AVPlayer gets WebVTT only: {master}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_period_mpd_keeps_its_periods_and_plays_period_after_period() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    let source = pictures(&decode(fixtures().join("dash/src/src.mp4").to_str().unwrap(), &[], "0:v"));
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = tv.vault.download(request(&origin.url("dash/multi/manifest.mpd"), mode)).await.unwrap();
        let info = wait(&tv.vault, &id).await.unwrap();
        assert!((info.duration_secs.unwrap() - 16.0).abs() < 0.1);

        // Both periods' pieces, each from its own BaseURL chain.
        let got = stored_dir(&tv, &id, "video", mode).await;
        let mut want = Vec::new();
        for (dir, init) in [("timeline", "init-stream0.m4s"), ("number", "init-stream0.m4s")] {
            want.push(fx(&format!("{dir}/{init}")));
        }
        // Stored names sort as init-0, init-1, seg-00000 … seg-00007.
        for dir in ["timeline", "number"] {
            want.extend((1..=4).map(|n| fx(&format!("{dir}/chunk-stream0-{n:05}.m4s"))));
        }
        assert!(got == want, "{mode}: the two periods' pieces");
        let s = tv.vault.play(&id).await.unwrap();
        let mpd = String::from_utf8(raw_http("GET", s.url(), &[]).body).unwrap();
        assert_eq!(mpd.matches("<Period ").count(), 2, "{mpd}");
        assert!(mpd.contains("start=\"PT8.000S\""), "{mpd}");
        let playlist =
            String::from_utf8(raw_http("GET", &format!("{}video/index.m3u8", s.base_url()), &[]).body).unwrap();
        assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY").count(), 1, "{playlist}");
        assert_eq!(playlist.matches("#EXT-X-MAP").count(), 2, "{playlist}");
        // The English audio plays in the first period only: the MPD lists it there, and its HLS
        // playlist has a gap as long as the second period, so both renditions keep time.
        assert_eq!(mpd.matches("contentType=\"audio\"").count(), 1, "{mpd}");
        assert!(mpd.find("contentType=\"audio\"") < mpd.find("id=\"second\""), "{mpd}");
        let audio =
            String::from_utf8(raw_http("GET", &format!("{}audio-1/index.m3u8", s.base_url()), &[]).body).unwrap();
        assert_eq!(audio.matches("#EXT-X-DISCONTINUITY").count(), 1, "{audio}");
        // The gap lasts as long as the second period's video segments, in segments of the
        // audio's length.
        let lines: Vec<&str> = audio.lines().collect();
        let gap: f64 = lines
            .windows(2)
            .filter(|w| w[1] == "#EXT-X-GAP")
            .map(|w| w[0].trim_start_matches("#EXTINF:").trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert!((gap - 8.0).abs() < 0.001, "{gap} s of gap: {audio}");
        assert!(audio.matches("#EXT-X-GAP").count() >= 3, "{audio}");
        let Want::Pieces(english) = template(1, 5) else { unreachable!() };
        assert!(stored_dir(&tv, &id, "audio-1", mode).await == english, "{mode}: the first period's audio");
        // Each period, as its own stream (initialization and segments, from the server), decodes
        // to the source: the periods follow each other.
        for (period, files) in
            [(0, ["video/init-0.m4s", "video/seg-00000.m4s"]), (1, ["video/init-1.m4s", "video/seg-00004.m4s"])]
        {
            let mut bytes = Vec::new();
            for f in files {
                bytes.extend(raw_http("GET", &format!("{}{f}", s.base_url()), &[]).body);
            }
            let path = tv.dir.path().join(format!("period-{period}.mp4"));
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(pictures(&decode(path.to_str().unwrap(), &[], "0:v")), source[..50], "{mode}: period {period}");
        }
        // ffmpeg plays the HLS made from it across the discontinuity (the video playlist: ffmpeg
        // 5.1 does not know EXT-X-GAP, and would fetch the audio's gap).
        let frames = pictures(&decode(&format!("{}video/index.m3u8", s.base_url()), HLS, "0:v"));
        assert!(frames.len() >= 300 && frames[..200] == source[..], "{mode}: {} frames", frames.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_choices_follow_the_request_like_hls_ones() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let url = origin.url("dash/timeline/manifest.mpd");
    let mut req = DownloadRequest::new(&url);
    req.audio = AudioChoice::Languages(vec!["deu".into()]);
    req.subtitles = SubtitleChoice::None;
    req.quality = Quality::Worst;
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let dirs: std::collections::BTreeSet<String> =
        tv.files(&id).iter().filter_map(|f| f.split_once('/').map(|(d, _)| d.to_owned())).collect();
    assert_eq!(dirs.into_iter().collect::<Vec<_>>(), ["audio-1", "video"]);
    let Want::Pieces(german) = template(2, 5) else { unreachable!() };
    assert!(stored_dir(&tv, &id, "audio-1", Mode::Normal).await == german, "the German audio");
    // The default: the first (or `main`) audio, every subtitle; another choice of the same MPD
    // is another asset.
    let first = id;
    let id = tv.vault.download(DownloadRequest::new(&url)).await.unwrap();
    assert_ne!(id, first, "another choice, another asset");
    wait(&tv.vault, &id).await.unwrap();
    let Want::Pieces(english) = template(1, 5) else { unreachable!() };
    assert!(stored_dir(&tv, &id, "audio-1", Mode::Normal).await == english, "the English audio");
    assert!(tv.files(&id).iter().any(|f| f.starts_with("subtitles-2/")), "{:?}", tv.files(&id));
}

/// The origin file a stored piece of a `timeline` download with every track came from.
fn timeline_source(file: &str) -> String {
    let (dir, name) = file.split_once('/').unwrap();
    if dir.starts_with("subtitles") {
        return "dash/timeline/subs-en.vtt".into();
    }
    let stream = match dir {
        "video" => 0,
        "audio-1" => 1,
        _ => 2,
    };
    match name.strip_prefix("seg-") {
        Some(n) => {
            let n: u32 = n.split('.').next().unwrap().parse().unwrap();
            format!("dash/timeline/chunk-stream{stream}-{:05}.m4s", n + 1)
        }
        None => format!("dash/timeline/init-stream{stream}.m4s"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dash_download_killed_with_sigkill_resumes_without_fetching_a_stored_piece_again() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(40_000);
    let home = Home::new();
    let url = origin.url("dash/timeline/manifest.mpd");
    let child = home.spawn(&["download", &url, "--mode", "encrypted", "--parallel", "2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        assert!(Instant::now() < deadline, "no progress");
        if let Some((id, _, done, _)) = home.rows().await.into_iter().next()
            && done >= 4
        {
            child.kill9();
            break id;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    let log_at_kill = origin.log().len();
    let done = done_files(&home.vault(), &id).await;
    assert!(done.len() >= 4);
    for f in &done {
        let got = read_piece(&home.vault(), &home.key, &id, f, Mode::Encrypted).await;
        assert!(got == plain(&timeline_source(f)), "{f} after the kill");
    }
    origin.throttle(0);
    let out = home.run(&["resume", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = done_files(&home.vault(), &id).await;
    // Video (4 segments and its initialization), the default audio (5 and 1), the subtitles.
    assert_eq!(all.len(), 5 + 6 + 1, "every piece: {all:?}");
    for f in &all {
        let got = read_piece(&home.vault(), &home.key, &id, f, Mode::Encrypted).await;
        assert!(got == plain(&timeline_source(f)), "{f}");
    }
    let after = counts(&origin.log()[log_at_kill..]);
    for f in &done {
        assert_eq!(after.get(&format!("/{}", timeline_source(f))), None, "{f} was fetched again after the kill");
    }
}

struct Resign {
    origin: Arc<Origin>,
    calls: AtomicUsize,
}

impl UrlRefresher for Resign {
    fn refresh(&self, _r: RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Some(self.origin.signed_url("dash/timeline/manifest.mpd", Duration::from_secs(600))) })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_signed_dash_urls_are_refreshed_and_nothing_is_fetched_twice() {
    // The origin signs the MPD's URL and gives the segments a BaseURL under a token for the MPD's
    // directory, expiring with it.
    let origin = Arc::new(Origin::start(fixtures()).await);
    origin.require_signature("s3cret");
    origin.throttle(100_000);
    let tv = test_vault(|c| c.max_parallel_requests = 2).await;
    let refresher = Arc::new(Resign { origin: Arc::clone(&origin), calls: AtomicUsize::new(0) });
    tv.vault.set_refresher(Some(refresher.clone()));
    let signed = origin.signed_url("dash/timeline/manifest.mpd", Duration::from_secs(600));
    let mut events = tv.vault.subscribe();
    let id = tv.vault.download(request(&signed, Mode::Encrypted)).await.unwrap();
    loop {
        if let Ok(Event::Progress(p)) = events.recv().await
            && p.segments_done >= 3
        {
            break;
        }
    }
    origin.expire_signatures();
    let info = wait(&tv.vault, &id).await.unwrap();
    assert_eq!(info.state, AssetState::Completed);
    assert!(refresher.calls.load(Ordering::SeqCst) >= 1, "the refresh hook was asked");
    for f in done_files(tv.dir.path(), &id).await {
        assert!(tv.read_piece(&id, &f, Mode::Encrypted).await == plain(&timeline_source(&f)), "{f}");
    }
    // Every piece was served once (403s aside).
    let served: Vec<_> = origin.log().into_iter().filter(|l| l.status / 100 == 2).collect();
    for (path, n) in counts(&served) {
        if path.ends_with(".m4s") || path.ends_with(".vtt") {
            assert_eq!(n, 1, "{path} served {n} times");
        }
    }
    // A freshly signed URL of the same MPD is the same asset (its identity has no signature).
    let again = origin.signed_url("dash/timeline/manifest.mpd", Duration::from_secs(900));
    assert_ne!(again, signed);
    assert_eq!(tv.vault.download(request(&again, Mode::Encrypted)).await.unwrap(), id);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apsaravideo_vod_mpd_stream_downloads_through_the_same_path() {
    use vodvault_tests::vod::{Stream, Video};
    use vodvault_tests::vod_app::{request as vod_request, setup};
    let s = setup(vodvault_core::SignatureMethod::V3, |_| {}).await;
    s.vod.add_video(
        "v-dash",
        Video::new(
            "DASH film",
            vec![
                Stream::new("SD", "mpd", "dash/timeline/manifest.mpd", "job-dash", 144, 200.0),
                Stream::new("SD", "mp4", "progressive/sample.mp4", "job-mp4", 144, 200.0),
            ],
        ),
    );
    let prepared = s.tv.vault.prepare("vod:v-dash", &[]).await.unwrap();
    let vodvault_core::Prepared::Vod { streams, .. } = prepared else { panic!("{prepared:?}") };
    assert!(streams.iter().all(|st| st.unsupported.is_none()), "{streams:?}");
    let id =
        s.tv.vault.download(vod_request("v-dash", Mode::Encrypted, |v| v.format = Some("mpd".into()))).await.unwrap();
    let info = wait(&s.tv.vault, &id).await.unwrap();
    assert_eq!((info.state, info.kind), (AssetState::Completed, AssetKind::Dash));
    assert_eq!(info.vod.as_ref().unwrap().format, "mpd");
    for f in done_files(s.tv.dir.path(), &id).await {
        assert!(s.tv.read_piece(&id, &f, Mode::Encrypted).await == plain(&timeline_source(&f)), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dash_asset_plays_while_it_downloads_as_mpd_and_as_hls() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    let source = pictures(&decode(fixtures().join("dash/src/src.mp4").to_str().unwrap(), &[], "0:v"));
    for (mode, hls) in [(Mode::Normal, false), (Mode::Encrypted, true)] {
        origin.clear_log();
        // Slower than a player reads (about 200 KB in all): ffmpeg asks for pieces the download
        // does not have yet.
        origin.throttle(40_000);
        let tv = test_vault(|_| {}).await;
        let mut req = request(&origin.url("dash/timeline/manifest.mpd"), mode);
        req.parallel = Some(1);
        let id = tv.vault.download(req).await.unwrap();
        let s = tv.vault.play(&id).await.unwrap();
        let (input, before) = if hls { (s.hls_url().unwrap().to_owned(), HLS) } else { (s.url().to_owned(), &[][..]) };
        let played =
            tokio::task::spawn_blocking(move || vodvault_tests::framemd5_within(60, &input, before, &["-map", "0:v"]))
                .await
                .unwrap();
        assert_eq!(pictures(&played), source, "{mode}: played while downloading");
        let info = wait(&tv.vault, &id).await.unwrap();
        assert_eq!(info.state, AssetState::Completed);
        // Whoever asked first, every piece came from the origin once.
        for (path, n) in counts(&origin.log()) {
            if path.ends_with(".m4s") {
                assert_eq!(n, 1, "{mode}: {path} fetched {n} times");
            }
        }
    }
    origin.throttle(0);
}
