//! Downloads, playback and the app's calls on the same assets at the same time: what a stopped
//! job may still do, what a lock held by another process means, what an expiry protects, and a
//! playback server out of file descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vodvault_core::{DownloadRequest, Event, Mode, VaultError};
use vodvault_tests::cli::Home;
use vodvault_tests::origin::Origin;
use vodvault_tests::{TestVault, bin, fixtures, now_ms, test_vault, wait};

/// Starts `path` and waits until a piece of it is stored.
async fn started(tv: &TestVault, origin: &Origin, path: &str, mode: Mode) -> String {
    let mut events = tv.vault.subscribe();
    let mut req = DownloadRequest::new(&origin.url(path));
    req.mode = mode;
    req.parallel = Some(2);
    let id = tv.vault.download(req).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(Event::Progress(p)) = events.recv().await
                && p.id == id
                && p.segments_done > 0
            {
                return;
            }
        }
    })
    .await
    .expect("no progress within 30 s");
    id
}

/// A job stopped while it commits finished pieces records nothing afterwards: the committer
/// belongs to the job, so cancelling it (which waits for it) leaves no piece marked stored in a
/// folder that is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_in_the_middle_of_a_commit_leaves_nothing_recorded() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(400_000);
    for round in 0..3 {
        let tv = test_vault(|_| {}).await;
        // Every commit waits: a cancel now lands in the middle of one.
        vodvault_core::testing::delay_commits(tv.dir.path(), Duration::from_millis(400));
        let id = started(&tv, &origin, "hls-aes/master.m3u8", Mode::Encrypted).await;
        tokio::time::sleep(Duration::from_millis(150 * round)).await;
        tv.vault.cancel(&id).await.unwrap();
        // Longer than any commit could still take.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let a = tv.vault.asset(&id).await.unwrap();
        assert_eq!((a.segments_done, a.bytes_done), (0, 0), "round {round}: recorded after the cancel: {a:?}");
        assert!(!tv.dir.path().join("assets").join(&id).exists(), "round {round}: files after the cancel");
    }
}

/// Verifying an expired asset looks past its expiry without lifting it: a play at the same
/// time is refused, and a verify stopped at any point leaves the expiry as it was.
#[tokio::test(flavor = "multi_thread")]
async fn verify_never_lifts_an_expiry() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("hls-aes/master.m3u8"));
    req.mode = Mode::Encrypted;
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let until = now_ms() - 1;
    tv.vault.set_offline_until(&id, Some(until)).await.unwrap();
    assert!(tv.vault.verify(&id).await.unwrap().is_empty(), "an expired asset is still verified");
    let player = {
        let (vault, id) = (tv.vault.clone(), id.clone());
        tokio::spawn(async move {
            let mut played = 0;
            for _ in 0..300 {
                if vault.play(&id).await.is_ok() {
                    played += 1;
                }
                tokio::task::yield_now().await;
            }
            played
        })
    };
    for i in 0..150u64 {
        let (vault, id) = (tv.vault.clone(), id.clone());
        let v = tokio::spawn(async move { vault.verify(&id).await });
        tokio::time::sleep(Duration::from_micros(i * 37 % 3000)).await;
        v.abort();
        let _ = v.await;
    }
    assert_eq!(player.await.unwrap(), 0, "an expired asset was played while it was verified");
    assert_eq!(tv.vault.asset(&id).await.unwrap().offline_until, Some(until), "the expiry is intact");
    assert!(matches!(tv.vault.play(&id).await, Err(VaultError::OfflineExpired { .. })));
}

/// The asset's lock held by another process (here: this test, through its own open file) that
/// does not let go: pause and cancel wait, then say `Busy` and leave every file as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_another_process_keeps_is_busy_and_nothing_is_deleted() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(100_000);
    let tv = test_vault(|_| {}).await;
    let id = started(&tv, &origin, "hls-aes/master.m3u8", Mode::Normal).await;
    tv.vault.pause(&id).await.unwrap();
    let files = tv.files(&id);
    assert!(!files.is_empty());
    let lock =
        std::fs::File::options().write(true).open(tv.dir.path().join("locks").join(format!("{id}.lock"))).unwrap();
    lock.try_lock().unwrap();
    let t = Instant::now();
    match tv.vault.cancel(&id).await {
        Err(VaultError::Busy { id: busy }) => assert_eq!(busy, id),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_secs(10), "it waited for the lock first");
    assert_eq!(tv.files(&id), files, "nothing was deleted under the other process");
    // Once the other process lets go, the cancel goes through.
    drop(lock);
    tv.vault.cancel(&id).await.unwrap();
    assert!(tv.files(&id).is_empty());
}

/// Opening a vault (which checks each interrupted asset's lock) creates no lock files.
#[tokio::test(flavor = "multi_thread")]
async fn opening_a_vault_creates_no_lock_files() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(100_000);
    let tv = test_vault(|_| {}).await;
    let id = started(&tv, &origin, "hls-aes/master.m3u8", Mode::Normal).await;
    tv.vault.close().await;
    assert_eq!(tv.vault.asset(&id).await.err(), Some(VaultError::Closed));
    let locks = tv.dir.path().join("locks");
    for e in std::fs::read_dir(&locks).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let config = vodvault_core::VaultConfig::new(tv.dir.path().to_owned(), tv.key_file.clone(), vodvault_tests::APP_ID);
    let vault = vodvault_core::Vault::open(config).await.unwrap();
    assert_eq!(vault.asset(&id).await.unwrap().state, vodvault_core::AssetState::Queued);
    assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 0, "lock files appeared");
    vault.close().await;
}

/// CPU time (user + system, seconds) the process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A playback server out of file descriptors (EMFILE) waits instead of spinning on `accept`,
/// and serves again once connections close.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_out_of_file_descriptors_does_not_spin_and_recovers() {
    let origin = Origin::start(fixtures()).await;
    let home = Home::new();
    let out = home.run(&["download", &origin.url("progressive/sample.mp4"), "--mode", "encrypted"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // `serve` with few file descriptors.
    let mut cmd = home.cmd();
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut limited = Command::new("sh");
    limited.arg("-c").arg("ulimit -n 48 && exec \"$0\" \"$@\"").arg(bin("vodvault")).args(&args).args(["serve", &id]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    cmd = limited;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_owned()
    })
    .await
    .unwrap();
    let host = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    // Hold connections until the server has no descriptor left for another.
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(std::net::TcpStream::connect(&host).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_secs(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_secs(pid) - before;
    assert!(used < 0.5, "the server used {used:.2} s of CPU in 2 s while out of descriptors");
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = tokio::task::spawn_blocking(move || vodvault_tests::raw_http("GET", &url, &[])).await.unwrap();
    assert_eq!(got.status, 200, "serving again");
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
}
