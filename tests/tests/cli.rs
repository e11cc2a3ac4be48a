//! The `vodvault` command as other tools and tests rely on it, run as real processes: its output
//! contract, kill -9 at several points and resuming from the catalog alone, Ctrl-C, the refresh
//! command, and a real full disk (a small tmpfs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use vodvault_core::Mode;
use vodvault_tests::cli::Home;
use vodvault_tests::origin::{Origin, counts};
use vodvault_tests::{APP_ID, bin, done_files, fixtures, hls_aes_source, keytool_generate, read_piece, ts_stream};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn source_of(file: &str) -> String {
    hls_aes_source(file).0
}

fn origin_path(file: &str) -> String {
    hls_aes_source(file).1
}

#[tokio::test(flavor = "multi_thread")]
async fn download_list_show_contract() {
    let origin = Origin::start(fixtures()).await;
    let home = Home::new();
    // prepare
    let out = home.run(&["prepare", &origin.url("hls-aes/master.m3u8"), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = json(&out);
    assert_eq!(p["kind"], "hls");
    assert_eq!(p["variants"].as_array().unwrap().len(), 3);
    assert_eq!(p["renditions"].as_array().unwrap().len(), 3);
    let out = home.run(&["prepare", &origin.url("progressive/sample.mp4"), "--json"]);
    assert_eq!(json(&out)["size"], 280_476u64);

    // download: the id on stdout, nothing else.
    let out = home.run(&["download", &origin.url("hls-byterange/ts.m3u8"), "--title", "Ranges"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 16, "{id:?}");
    // --json: one object with at least id, state, mode, path.
    let out = home.run(&["download", &origin.url("hls-fmp4/index.m3u8"), "--mode", "encrypted", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = json(&out);
    assert_eq!(d["state"], "completed");
    assert_eq!(d["mode"], "encrypted");
    assert!(d["path"].is_null(), "no plain path for sealed media");
    assert!(d["id"].is_string());

    // list --json and show --json use the same fields.
    let list = json(&home.run(&["list", "--json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let show = json(&home.run(&["show", &id, "--json"]));
    let first = list.iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(show, *first);
    assert_eq!(show["title"], "Ranges");
    assert_eq!(show["mode"], "normal");
    let path = std::path::PathBuf::from(show["path"].as_str().unwrap());
    assert!(path.ends_with("index.m3u8") && path.exists());
    assert_eq!(show["segments_done"], show["segments_total"]);
    assert!(show["key_id"].is_null());
    assert!(d["key_id"].as_str().unwrap().len() == 16, "{d}");
    let human = text(&home.run(&["show", &id]).stdout);
    assert!(human.contains("state:     completed") && human.contains("path:"), "{human}");

    // Errors: one line, non-zero.
    let out = home.run(&["download", &origin.url("nope.m3u8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("404"), "{err}");
    let out = home.run(&["show", "0000000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no asset"));
    let out = home.run(&["download", &origin.url("hls-aes/master.m3u8"), "--quality", "fast"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--quality"));

    // remove
    let out = home.run(&["remove", &id]);
    assert!(out.status.success());
    assert_eq!(json(&home.run(&["list", "--json"])).as_array().unwrap().len(), 1);
    assert!(!path.exists());

    // Without a key file: a clear error.
    let out = Command::new(bin("vodvault"))
        .args(["--home"])
        .arg(home.vault())
        .arg("list")
        .env_remove("VODVAULT_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no key file"), "{}", text(&out.stderr));
}

/// Kills a real `vodvault download` with SIGKILL once the catalog shows `after` pieces done,
/// checks the catalog is consistent, and resumes.
async fn kill_and_resume(after: i64) {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(60_000);
    let home = Home::new();
    let mut child =
        Some(home.spawn(&["download", &origin.url("hls-aes/master.m3u8"), "--mode", "encrypted", "--parallel", "2"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (id, done_at_kill) = loop {
        assert!(Instant::now() < deadline, "no progress");
        if let Some((id, _, done, _)) = home.rows().await.into_iter().next()
            && done >= after
        {
            child.take().unwrap().kill9();
            break (id, done);
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    let log_at_kill = origin.log().len();
    // The catalog reopens consistent: every piece it calls done is on disk, whole and right.
    let rows = home.rows().await;
    // The killed process recorded nothing more: the asset is where it was at the kill.
    assert!(matches!(rows[0].1.as_str(), "queued" | "downloading"), "{}", rows[0].1);
    let done = done_files(&home.vault(), &id).await;
    assert!(done.len() as i64 >= done_at_kill, "nothing committed is lost");
    for f in &done {
        let got = read_piece(&home.vault(), &home.key, &id, f, Mode::Encrypted).await;
        assert!(got == std::fs::read(fixtures().join(source_of(f))).unwrap(), "{f} after kill at {after}");
    }
    // Resume from the catalog alone: no URL, no options.
    origin.throttle(0);
    let out = home.run(&["resume", &id]);
    assert!(out.status.success(), "kill at {after}: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), id);
    let show = json(&home.run(&["show", &id, "--json"]));
    assert_eq!(show["state"], "completed");
    for f in done_files(&home.vault(), &id).await {
        let got = read_piece(&home.vault(), &home.key, &id, &f, Mode::Encrypted).await;
        assert!(got == std::fs::read(fixtures().join(source_of(&f))).unwrap(), "{f}");
    }
    // Nothing the catalog had as done was fetched again.
    let after_kill = counts(&origin.log()[log_at_kill..]);
    for f in &done {
        let path = format!("/{}", origin_path(f));
        assert_eq!(after_kill.get(&path), None, "{path} was fetched again after the kill");
    }
    // No temporary files survive.
    assert!(vodvault_tests::files(&home.vault(), &id).iter().all(|f| !f.ends_with(".tmp")));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_refetches_at_most_what_was_in_flight() {
    // 600 segments, 8 at a time, killed four times at random moments: pieces a killed process
    // had finished (renamed into place, or complete beside their names) but not yet recorded
    // are checked and kept, so each kill costs at most the 8 requests that were in flight.
    const SEGMENTS: usize = 600;
    const KILLS: usize = 4;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = seed;
    let mut next = || {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        rng >> 33
    };
    for mode in ["encrypted", "normal"] {
        let root = tempfile::tempdir().unwrap();
        let segments = ts_stream(root.path(), SEGMENTS, 64);
        let origin = Origin::start(root.path()).await;
        // Slow enough that there is a download to kill; fast enough for a test.
        origin.throttle(150_000);
        let home = Home::new();
        let url = origin.url("stream.m3u8");
        let mut id: Option<String> = None;
        // Where each kill happened in the origin's log.
        let mut marks = vec![0];
        for kill in 0..KILLS {
            let child = match &id {
                None => home.spawn(&["download", &url, "--mode", mode, "--parallel", "8"]),
                Some(id) => home.spawn(&["resume", id]),
            };
            // Wait for progress since the last kill, then kill at a random moment after it.
            let before = home.rows().await.first().map_or(0, |r| r.2);
            let deadline = Instant::now() + Duration::from_secs(60);
            while home.rows().await.first().is_none_or(|r| r.2 <= before) {
                assert!(Instant::now() < deadline, "no progress (seed {seed})");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(next() % 700)).await;
            child.kill9();
            marks.push(origin.log().len());
            id = Some(home.rows().await[0].0.clone());
            eprintln!("{mode}: kill {} at {} pieces done", kill + 1, home.rows().await[0].2);
        }
        let id = id.unwrap();
        origin.throttle(0);
        let out = home.run(&["resume", &id]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let m = if mode == "encrypted" { Mode::Encrypted } else { Mode::Normal };
        for (i, want) in segments.iter().enumerate() {
            let got = read_piece(&home.vault(), &home.key, &id, &format!("video/seg-{i:05}.ts"), m).await;
            assert!(got == *want, "{mode}: segment {i} differs (seed {seed})");
        }
        let log = origin.log();
        let fetched: usize = counts(&log).iter().filter(|(p, _)| p.ends_with(".ts")).map(|(_, n)| n).sum();
        eprintln!("{mode}: {fetched} segment requests for {SEGMENTS} segments over {KILLS} kills");
        // Per kill: the segments its run requested that a later run requested again.
        marks.push(log.len());
        let segments_in = |from: usize, to: usize| -> std::collections::HashSet<String> {
            counts(&log[from..to]).into_keys().filter(|p| p.ends_with(".ts")).collect()
        };
        for k in 0..KILLS {
            let killed = segments_in(marks[k], marks[k + 1]);
            let later = segments_in(marks[k + 1], log.len());
            let again = killed.intersection(&later).count();
            eprintln!("{mode}: kill {}: {again} segments fetched again", k + 1);
            assert!(
                again <= 8,
                "{mode}: kill {} cost {again} segments, more than the 8 in flight (seed {seed})",
                k + 1
            );
        }
        assert!(fetched <= SEGMENTS + 8 * KILLS);
        assert!(out.status.success());
        assert_eq!(json(&home.run(&["show", &id, "--json"]))["state"], "completed");
        assert!(
            vodvault_tests::files(&home.vault(), &id).iter().all(|f| !f.ends_with(".tmp") && !f.ends_with(".done")),
            "no leftovers"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_before_any_piece_is_stored() {
    kill_and_resume(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_midway() {
    kill_and_resume(4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_near_the_end() {
    kill_and_resume(9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_progressive_download_resumes_with_range() {
    let root = tempfile::tempdir().unwrap();
    // A bigger file: the sample repeated, so there is time to kill it.
    let sample = std::fs::read(fixtures().join("progressive/sample.mp4")).unwrap();
    std::fs::write(root.path().join("big.bin"), sample.repeat(8)).unwrap();
    let origin = Origin::start(root.path()).await;
    origin.throttle(400_000);
    let home = Home::new();
    let child = home.spawn(&["download", &origin.url("big.bin"), "--mode", "encrypted"]);
    // Default checkpoints are every 8 MiB; this file is 2.2 MB, so the kill lands before any
    // checkpoint and the resume must start over cleanly.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill9();
    let id = home.rows().await[0].0.clone();
    origin.throttle(0);
    let out = home.run(&["resume", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = read_piece(&home.vault(), &home.key, &id, "media.bin", Mode::Encrypted).await;
    assert!(got == sample.repeat(8));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_pauses_cleanly() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(50_000);
    let home = Home::new();
    let child = home.spawn(&["download", &origin.url("hls-aes/master.m3u8")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while home.rows().await.first().is_none_or(|r| r.2 < 2) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("vodvault resume"), "{}", text(&out.stderr));
    let rows = home.rows().await;
    assert_eq!(rows[0].1, "paused");
    origin.throttle(0);
    let out = home.run(&["resume"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(home.rows().await[0].1, "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_cmd_supplies_fresh_urls() {
    let origin = Origin::start(fixtures()).await;
    origin.require_signature("cdn-secret");
    origin.throttle(100_000);
    let home = Home::new();
    let fresh = home.dir.path().join("fresh-url");
    let cmd = format!("cat '{}'", fresh.display());
    let url = origin.signed_url("hls-aes/master.m3u8", Duration::from_secs(600));
    let child = home.spawn(&["download", &url, "--refresh-cmd", &cmd, "--json"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while home.rows().await.first().is_none_or(|r| r.2 < 2) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    origin.expire_signatures();
    std::fs::write(&fresh, origin.signed_url("hls-aes/master.m3u8", Duration::from_secs(600))).unwrap();
    origin.throttle(0);
    let out = child.wait_with_output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json(&out)["state"], "completed");
    assert!(origin.log().iter().any(|l| l.status == 403), "the old URL did expire");
}

/// Runs `script` in a private mount namespace (so it may mount a tmpfs) with `$VV` set to the
/// vodvault command for `home`; `None` when namespaces are not available here.
fn in_namespace(home: &Home, script: &str) -> Option<Output> {
    let probe = Command::new("unshare").args(["-rm", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: unshare -rm is not available (no user namespaces): cannot mount a small tmpfs");
        return None;
    }
    let vv = format!(
        "{} --home {} --key-file {}",
        bin("vodvault").display(),
        home.vault().display(),
        home.key_path.display()
    );
    Some(
        Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .env("VV", vv)
            .env("HOME_DIR", home.vault())
            .output()
            .unwrap(),
    )
}

fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out.find(&format!("=={name}==")).unwrap_or_else(|| panic!("no {name} in {out}")) + name.len() + 4;
    let end = out[start..].find("==").map_or(out.len(), |e| start + e);
    out[start..end].trim()
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_full_before_and_during_a_download() {
    let origin = Origin::start(fixtures()).await;
    let home = Home::new();
    std::fs::create_dir_all(home.vault()).unwrap();
    let master = origin.url("hls-aes/master.m3u8");
    let media = origin.url("hls-aes/high/index.m3u8");
    // Downloads may fill this volume (--keep-free 0; keeping space free is tested through the
    // bindings).
    // 1. The estimate (380 kbit/s × 8 s) does not fit: refused before anything is stored.
    // 2. The high variant's media playlist alone has no size estimate (370 KB of segments):
    //    it runs out of space midway, keeps what it stored, and completes once there is room.
    let script = format!(
        "set -u
         VV=\"$VV --keep-free 0\"
         cd \"$(mktemp -d)\" || exit 96
         mount -t tmpfs -o size=400k tmpfs \"$HOME_DIR\" || exit 97
         $VV download {master} >/dev/null 2>err1; echo \"==first==$?\"; cat err1
         echo \"==first-list==\"; $VV list --json
         $VV download {media} --parallel 1 >/dev/null 2>err2; echo \"==second==$?\"; cat err2
         id=$($VV list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"id\"])')
         echo \"==second-show==\"; $VV show $id --json
         mount -o remount,size=8m \"$HOME_DIR\"
         $VV resume $id >/dev/null 2>err3; echo \"==resumed==$?\"; cat err3
         echo \"==final==\"; $VV show $id --json
         echo \"==end==\""
    );
    let Some(out) = in_namespace(&home, &script) else {
        return;
    };
    let stdout = text(&out.stdout);
    assert_ne!(out.status.code(), Some(97), "mount failed: {}", text(&out.stderr));
    let first = section(&stdout, "first");
    assert!(first.starts_with('1') && first.contains("storage full: needs "), "{stdout}");
    assert_eq!(first.lines().count(), 2, "one line: {first}");
    // Needed: the estimate and 5%; available: what is free on the 400 KiB volume.
    let numbers: Vec<u64> = first.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert!(numbers.len() >= 3 && numbers[1] > numbers[2] && numbers[2] <= 400 << 10, "{first}");
    let list: serde_json::Value = serde_json::from_str(section(&stdout, "first-list")).unwrap();
    assert_eq!(list, serde_json::json!([]), "nothing stored");
    // Only the refused master download has audio: none of it was fetched.
    assert_eq!(
        origin.log().iter().filter(|l| l.path.contains("/audio-") && l.path.ends_with(".ts")).count(),
        0,
        "no media fetched"
    );

    let second = section(&stdout, "second");
    assert!(second.starts_with('1') && second.contains("storage full"), "{stdout}");
    let show: serde_json::Value = serde_json::from_str(section(&stdout, "second-show")).unwrap();
    assert_eq!(show["failure"]["kind"], "storage_full", "{show}");
    assert!(show["bytes_expected"].is_null(), "no estimate for this source: {show}");
    let stored_before = show["segments_done"].as_u64().unwrap();
    assert!(stored_before >= 1, "what fit was kept: {show}");
    assert!(section(&stdout, "resumed").starts_with('0'), "{stdout}");
    let fin: serde_json::Value = serde_json::from_str(section(&stdout, "final")).unwrap();
    assert_eq!(fin["state"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_and_verify() {
    let origin = Origin::start(fixtures()).await;
    let home = Home::new();
    let out = home.run(&["download", &origin.url("hls-aes/master.m3u8"), "--mode", "encrypted"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let out = home.run(&["verify", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A second asset, a media playlist stored in Normal mode.
    let out = home.run(&["download", &origin.url("hls-aes/high/index.m3u8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second = text(&out.stdout).trim().to_owned();

    // serve: one URL per asset, alone on its line of stdout in the order given, then serving
    // both from one server until SIGTERM.
    let mut child = home.spawn(&["serve", &id, &second]);
    let stdout = child.take_stdout().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().take(2) {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(20)).unwrap().trim().to_owned();
    let second_url = rx.recv_timeout(Duration::from_secs(20)).unwrap().trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/index.m3u8"), "{url:?}");
    let port = |u: &str| u.split('/').nth(2).map(str::to_owned);
    assert_eq!(port(&url), port(&second_url), "one server: {url} {second_url}");
    assert_ne!(url, second_url);
    let playlist = vodvault_tests::raw_http("GET", &second_url, &[]);
    assert_eq!(playlist.status, 200);
    let seg = vodvault_tests::raw_http("GET", &second_url.replace("index.m3u8", "video/seg-00002.ts"), &[]);
    assert!(
        seg.complete() && seg.body == std::fs::read(fixtures().join("hls-aes/plain/high/seg-2.ts")).unwrap(),
        "{}: {}",
        seg.status,
        String::from_utf8_lossy(&playlist.body)
    );
    let master = vodvault_tests::raw_http("GET", &url, &[]);
    assert_eq!(master.status, 200);
    assert!(String::from_utf8_lossy(&master.body).contains("video/index.m3u8"));
    let seg = vodvault_tests::raw_http("GET", &url.replace("index.m3u8", "video/seg-00000.ts"), &[]);
    assert!(seg.complete() && seg.body == std::fs::read(fixtures().join("hls-aes/plain/high/seg-0.ts")).unwrap());
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // verify names the first damaged file and fails.
    let victim = home.vault().join("assets").join(&id).join("audio-1/seg-00003.ts.vvs");
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let out = home.run(&["verify", &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("audio-1/seg-00003.ts failed verification"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_offline_and_checks_its_own_playback() {
    let out = Command::new(bin("vodvault")).args(["demo", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("completed    encrypted"), "{stdout}");
    assert!(stdout.contains("verified   3 segments"), "{stdout}");
    assert!(stdout.contains("http://127.0.0.1:"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_key_rewraps_without_touching_media() {
    let origin = Origin::start(fixtures()).await;
    let home = Home::new();
    let out = home.run(&["download", &origin.url("progressive/sample.mp4"), "--mode", "encrypted"]);
    let id = text(&out.stdout).trim().to_owned();
    let sealed = home.vault().join("assets").join(&id).join("media.mp4.vvs");
    let before = std::fs::read(&sealed).unwrap();
    let new_key = home.dir.path().join("new.vvkey");
    keytool_generate(&new_key, APP_ID);
    let out = home.run(&["rotate-key", "--new-key-file", new_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&sealed).unwrap(), before, "media untouched");
    // The old key file no longer opens the vault; the new one does, and the asset verifies.
    let out = home.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("belongs to key"), "{}", text(&out.stderr));
    let verify = Command::new(bin("vodvault"))
        .arg("--home")
        .arg(home.vault())
        .arg("--key-file")
        .arg(&new_key)
        .args(["verify", &id])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}
