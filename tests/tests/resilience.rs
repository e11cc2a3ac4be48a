//! Faults, headers, expiring URLs, bad input, queue control and progress, against the real
//! origin. Every download either completes with the right bytes or fails with a typed reason
//! that names the piece; nothing is ever skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vodvault_core::{
    AssetState, DownloadRequest, Event, FailureReason, Mode, RefreshRequest, UrlRefresher, VaultError,
};
use vodvault_tests::origin::{Fault, Origin};
use vodvault_tests::{TestVault, fixtures, plain, test_vault, wait};

async fn start(tv: &TestVault, origin: &Origin, path: &str, tune: impl FnOnce(&mut DownloadRequest)) -> String {
    let mut req = DownloadRequest::new(&origin.url(path));
    tune(&mut req);
    tv.vault.download(req).await.unwrap()
}

async fn assert_high_variant_intact(tv: &TestVault, id: &str, mode: Mode) {
    for i in 0..4 {
        let got = tv.read_piece(id, &format!("video/seg-0000{i}.ts"), mode).await;
        assert_same(&got, &plain(&format!("hls-aes/plain/high/seg-{i}.ts")), &format!("segment {i}"));
    }
}

/// Equal bytes, reported by length and first difference rather than by dumping them.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!("{what}: {} bytes vs {} expected, first difference at {first:?}", got.len(), want.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_nothing_is_skipped() {
    let origin = Origin::start(fixtures()).await;
    origin.fault("high/seg-0.ts", Fault::Status(503, None), 2);
    origin.fault("high/seg-1.ts", Fault::Status(429, Some(1)), 1);
    origin.fault("high/seg-2.ts", Fault::Reset, 2);
    origin.fault("high/seg-3.ts", Fault::Truncate(5000), 1);
    origin.fault("audio-en/seg-1.ts", Fault::Stall(Duration::from_secs(4)), 1); // > read timeout
    origin.fault("high/index.m3u8", Fault::Status(500, None), 1);
    let tv = test_vault(|_| {}).await;
    let started = std::time::Instant::now();
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |r| r.mode = Mode::Encrypted).await;
    let info = wait(&tv.vault, &id).await.unwrap();
    assert_eq!(info.state, AssetState::Completed);
    assert_high_variant_intact(&tv, &id, Mode::Encrypted).await;
    // Retry-After: 1 was honoured.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(origin.requests_to("hls-aes/high/seg-0.ts"), 3);
    assert_eq!(origin.requests_to("hls-aes/high/seg-2.ts"), 3);
    assert_eq!(origin.requests_to("hls-aes/high/seg-3.ts"), 2, "a short body is retried, not stored");
    assert_eq!(origin.served("hls-aes/audio-en/seg-1.ts"), 2, "a stalled response is abandoned and retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_that_keeps_failing_fails_the_asset_with_a_reason_naming_it() {
    let origin = Origin::start(fixtures()).await;
    origin.fault("high/seg-2.ts", Fault::Status(503, None), 100);
    let tv = test_vault(|c| c.max_parallel_requests = 1).await;
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |_| {}).await;
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::HttpStatus { status: 503, message } }) => {
            assert!(message.contains("video segment 2 (media sequence 102)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing stored is lost; nothing is claimed that is not stored.
    let info = tv.vault.asset(&id).await.unwrap();
    assert_eq!(info.state, AssetState::Failed);
    assert!(info.segments_done >= 2 && info.segments_done < info.segments_total, "{info:?}");
    assert_same(
        &tv.read_piece(&id, "video/seg-00000.ts", Mode::Normal).await,
        &plain("hls-aes/plain/high/seg-0.ts"),
        "segment 0",
    );
    // 404 is not retried.
    let origin2 = Origin::start(fixtures()).await;
    origin2.fault("mid/seg-1.ts", Fault::Status(404, None), 100);
    let id = start(&tv, &origin2, "hls-aes/master.m3u8", |r| r.quality = "144p".parse().unwrap()).await;
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::HttpStatus { status: 404, message } }) => {
            assert!(message.contains("segment 1"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(origin2.requests_to("hls-aes/mid/seg-1.ts"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_padding_refetches_the_segment_then_the_key_then_fails_naming_it() {
    // Corrupted once: fetched again, completes.
    let origin = Origin::start(fixtures()).await;
    origin.fault("high/seg-1.ts", Fault::Corrupt, 1);
    let tv = test_vault(|_| {}).await;
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |_| {}).await;
    wait(&tv.vault, &id).await.unwrap();
    assert_high_variant_intact(&tv, &id, Mode::Normal).await;
    assert_eq!(origin.requests_to("hls-aes/high/seg-1.ts"), 2);

    // Corrupted every time: segment again, then segment and key again, then a typed failure.
    let origin = Origin::start(fixtures()).await;
    origin.fault("high/seg-3.ts", Fault::Corrupt, 100);
    let tv = test_vault(|_| {}).await;
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |_| {}).await;
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("video segment 3 (media sequence 103)"), "{message}");
            assert!(message.contains("its key again"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(origin.requests_to("hls-aes/high/seg-3.ts"), 3);
    assert_eq!(origin.requests_to("hls-aes/keys/k2.key"), 2, "the key was fetched again");
    assert!(
        tv.files(&id).iter().all(|f| f != "video/seg-00003.ts"),
        "the bad segment is not stored: {:?}",
        tv.files(&id)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_html_page_is_never_a_key_or_a_segment() {
    let origin = Origin::start(fixtures()).await;
    origin.fault("keys/k1.key", Fault::HtmlPage, 100);
    let tv = test_vault(|_| {}).await;
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |r| r.quality = "worst".parse().unwrap()).await;
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("returned an HTML page, not a 16-byte key"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A clear segment replaced by an error page once: refetched.
    let origin = Origin::start(fixtures()).await;
    origin.fault("all.ts", Fault::HtmlPage, 1);
    let id = start(&tv, &origin, "hls-byterange/ts.m3u8", |_| {}).await;
    wait(&tv.vault, &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_go_with_every_request_including_redirects_and_keys() {
    let origin = Origin::start(fixtures()).await;
    origin.require_referer("https://app.example.com/player");
    let tv = test_vault(|_| {}).await;
    // Without the Referer the origin refuses (403, what an expired signature gets too): a typed
    // failure, nothing stored.
    let mut req = DownloadRequest::new(&origin.url("hls-aes/master.m3u8"));
    req.headers = vec![];
    let refused = tv.vault.download(req).await;
    assert!(
        matches!(&refused, Err(VaultError::UrlExpired { details: message }) if message.contains("403")),
        "{refused:?}"
    );
    assert!(tv.vault.assets().await.unwrap().is_empty());

    let id = start(&tv, &origin, "redirect/hls-aes/master.m3u8", |r| {
        r.headers = vec![
            ("Referer".into(), "https://app.example.com/player".into()),
            ("User-Agent".into(), "vodvault-tests/1.0".into()),
            ("X-Custom".into(), "42".into()),
        ];
    })
    .await;
    wait(&tv.vault, &id).await.unwrap();
    let log = origin.log();
    assert!(log.iter().any(|l| l.path.starts_with("/redirect/")));
    assert!(log.iter().any(|l| l.path.ends_with(".key")));
    for l in log.iter().filter(|l| l.status != 403) {
        assert_eq!(l.referer.as_deref(), Some("https://app.example.com/player"), "{}", l.path);
        assert_eq!(l.user_agent.as_deref(), Some("vodvault-tests/1.0"), "{}", l.path);
        assert!(l.headers.iter().any(|(k, v)| k == "x-custom" && v == "42"), "{}", l.path);
    }
    // The headers are stored sealed, not in the clear.
    let catalog = std::fs::read(tv.dir.path().join("catalog.sqlite")).unwrap();
    let wal = std::fs::read(tv.dir.path().join("catalog.sqlite-wal")).unwrap_or_default();
    for bytes in [catalog, wal] {
        assert!(!bytes.windows(14).any(|w| w == b"vodvault-tests"), "headers stored in the clear");
    }
}

/// Hands out a fresh signed URL, counting calls.
struct Resign {
    origin: Arc<Origin>,
    path: String,
    calls: AtomicUsize,
}

impl UrlRefresher for Resign {
    fn refresh(&self, _r: RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Some(self.origin.signed_url(&self.path, Duration::from_secs(600))) })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_urls_are_refreshed_and_the_download_continues() {
    let origin = Arc::new(Origin::start(fixtures()).await);
    origin.require_signature("s3cret");
    origin.throttle(300_000);
    let tv = test_vault(|c| c.max_parallel_requests = 2).await;
    let refresher = Arc::new(Resign {
        origin: Arc::clone(&origin),
        path: "hls-aes/master.m3u8".into(),
        calls: AtomicUsize::new(0),
    });
    tv.vault.set_refresher(Some(refresher.clone()));
    let mut req = DownloadRequest::new(&origin.signed_url("hls-aes/master.m3u8", Duration::from_secs(600)));
    req.mode = Mode::Encrypted;
    let id = tv.vault.download(req).await.unwrap();
    // Let some pieces land, then expire every signature issued so far.
    let mut events = tv.vault.subscribe();
    loop {
        if let Ok(Event::Progress(p)) = events.recv().await
            && p.segments_done >= 2
        {
            break;
        }
    }
    origin.expire_signatures();
    let info = wait(&tv.vault, &id).await.unwrap();
    assert_eq!(info.state, AssetState::Completed);
    assert!(refresher.calls.load(Ordering::SeqCst) >= 1);
    assert_high_variant_intact(&tv, &id, Mode::Encrypted).await;
    // The refreshed URL carries a new signature, but it is the same asset.
    assert_eq!(tv.vault.assets().await.unwrap().len(), 1);
    // No piece was fetched twice successfully.
    for (path, n) in vodvault_tests::origin::counts(&origin.log()) {
        if path.ends_with(".ts") || path.ends_with(".vtt") {
            assert_eq!(n, 1, "{path} fetched {n} times");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_refresh_hook_an_expired_url_fails_typed_and_resumes_later() {
    let origin = Arc::new(Origin::start(fixtures()).await);
    origin.require_signature("s3cret");
    let tv = test_vault(|_| {}).await;
    let url = origin.signed_url("hls-byterange/ts.m3u8", Duration::from_secs(600));
    origin.fault("all.ts", Fault::Status(403, None), 1);
    let id = tv.vault.download(DownloadRequest::new(&url)).await.unwrap();
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::UrlExpired { message } }) => {
            assert!(message.contains("no refresh hook"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let refresher = Arc::new(Resign {
        origin: Arc::clone(&origin),
        path: "hls-byterange/ts.m3u8".into(),
        calls: AtomicUsize::new(0),
    });
    tv.vault.set_refresher(Some(refresher));
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
}

/// A refresh hook that never answers (the app's backend hangs).
struct Hung;

impl UrlRefresher for Hung {
    fn refresh(&self, _r: RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

/// A refresh hook that hangs fails the asset (typed, resumable) after `refresh_timeout` instead
/// of holding it, and its lock, forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_hook_that_hangs_is_timed_out() {
    let origin = Arc::new(Origin::start(fixtures()).await);
    origin.require_signature("s3cret");
    let tv = test_vault(|c| c.refresh_timeout = Duration::from_millis(300)).await;
    tv.vault.set_refresher(Some(Arc::new(Hung)));
    let url = origin.signed_url("hls-byterange/ts.m3u8", Duration::from_secs(600));
    origin.fault("all.ts", Fault::Status(403, None), 1);
    let id = tv.vault.download(DownloadRequest::new(&url)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(20), tv.vault.wait(&id)).await.unwrap() {
        Err(VaultError::Failed { reason: FailureReason::UrlExpired { message } }) => {
            assert!(message.contains("did not answer within 0.3 s"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing holds the asset: resumed (the origin's refusal was a one-off), it completes.
    tv.vault.set_refresher(None);
    tv.vault.resume(&id).await.unwrap();
    assert_eq!(wait(&tv.vault, &id).await.unwrap().state, AssetState::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_timeline_after_refresh_restarts_cleanly() {
    // The refreshed URL points at a different stream (another variant's playlist): the download
    // starts over with a typed reason instead of mixing the two.
    let origin = Arc::new(Origin::start(fixtures()).await);
    let tv = test_vault(|c| c.max_parallel_requests = 1).await;
    origin.fault("hls-fmp4/b-0.m4s", Fault::Status(410, None), 1);
    let refresher = Arc::new(Resign {
        origin: Arc::clone(&origin),
        path: "hls-byterange/fmp4.m3u8".into(),
        calls: AtomicUsize::new(0),
    });
    tv.vault.set_refresher(Some(refresher));
    let mut events = tv.vault.subscribe();
    let id = start(&tv, &origin, "hls-fmp4/index.m3u8", |_| {}).await;
    wait(&tv.vault, &id).await.unwrap();
    let mut restarted = None;
    while let Ok(e) = events.try_recv() {
        if let Event::Restarted { reason, .. } = e {
            restarted = Some(reason);
        }
    }
    assert!(matches!(restarted, Some(FailureReason::SourceChanged { .. })), "{restarted:?}");
    // What is stored now is entirely the new stream.
    let br = vodvault_core::hls::media::MediaPlaylist::parse(
        &String::from_utf8(plain("hls-byterange/fmp4.m3u8")).unwrap(),
        vodvault_core::hls::vars::VarSource::Nothing,
    )
    .unwrap();
    let r = br.segments[0].byte_range.unwrap();
    let all = plain("hls-byterange/all.mp4");
    assert_same(
        &tv.read_piece(&id, "video/seg-00000.mp4", Mode::Normal).await,
        &all[r.offset as usize..(r.offset + r.length) as usize],
        "new stream",
    );
    assert!(
        !tv.files(&id).iter().any(|f| f.ends_with(".m4s")),
        "nothing of the old stream remains: {:?}",
        tv.files(&id)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sources_are_clear_errors_and_store_nothing() {
    let root = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(root.path().join(name), text).unwrap();
    w("live.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n");
    w(
        "sample-aes.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k.key\"\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n",
    );
    w(
        "fairplay.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n",
    );
    w("broken.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:100\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n");
    w(
        "short-key.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"k15.key\"\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n",
    );
    w("k15.key", "fifteen bytes!!");
    w("a.ts", &"G".repeat(188 * 4));
    w("page.html", "<!DOCTYPE html><html><body>Not Found</body></html>");
    let origin = Origin::start(root.path()).await;
    let tv = test_vault(|_| {}).await;
    let try_dl = |p: &str| tv.vault.download(DownloadRequest::new(&origin.url(p)));
    assert!(
        matches!(try_dl("live.m3u8").await, Err(VaultError::UnsupportedSource { details: m }) if m.contains("live"))
    );
    assert!(
        matches!(try_dl("sample-aes.m3u8").await, Err(VaultError::UnsupportedSource { details: m }) if m.contains("SAMPLE-AES"))
    );
    assert!(
        matches!(try_dl("fairplay.m3u8").await, Err(VaultError::UnsupportedSource { details: m }) if m.contains("DRM"))
    );
    assert!(matches!(try_dl("broken.m3u8").await, Err(VaultError::BadSource { details: m }) if m.contains("line 3")));
    assert!(
        matches!(try_dl("page.html").await, Err(VaultError::BadSource { details: m }) if m.contains("an HTML page"))
    );
    // A source that is not there: the status, so the app can tell "gone" from "try later".
    assert!(matches!(try_dl("missing.m3u8").await, Err(VaultError::HttpStatus { status: 404, .. })));
    assert!(matches!(
        tv.vault.download(DownloadRequest::new("ftp://x/y")).await,
        Err(VaultError::InvalidRequest { .. })
    ));
    assert!(tv.vault.assets().await.unwrap().is_empty(), "refused sources leave no asset");
    // A key of 15 bytes: the asset exists, and fails naming the key problem; nothing is done.
    let id = tv.vault.download(DownloadRequest::new(&origin.url("short-key.m3u8"))).await.unwrap();
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("returned text (15 bytes), not a 16-byte key"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let info = tv.vault.asset(&id).await.unwrap();
    assert_eq!((info.state, info.segments_done), (AssetState::Failed, 0));
    assert!(tv.files(&id).is_empty(), "{:?}", tv.files(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_cancel_and_remove() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(150_000);
    let tv = test_vault(|c| c.max_parallel_requests = 2).await;
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |r| r.mode = Mode::Encrypted).await;
    let mut events = tv.vault.subscribe();
    loop {
        if let Ok(Event::Progress(p)) = events.recv().await
            && p.segments_done >= 3
        {
            break;
        }
    }
    tv.vault.pause(&id).await.unwrap();
    let paused = tv.vault.asset(&id).await.unwrap();
    assert_eq!(paused.state, AssetState::Paused, "{paused:?}");
    assert!(paused.segments_done >= 3 && paused.segments_done < paused.segments_total);
    assert!(matches!(tv.vault.wait(&id).await, Err(VaultError::InvalidState { state: AssetState::Paused, .. })));
    let committed = vodvault_tests::done_files(tv.dir.path(), &id).await;
    let log_at_pause = origin.log().len();
    origin.throttle(0);
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    assert_high_variant_intact(&tv, &id, Mode::Encrypted).await;
    // Pieces committed before the pause were not fetched again (pieces still in flight, or
    // finished but not yet committed, may be).
    assert!(committed.len() >= 3);
    let after = vodvault_tests::origin::counts(&origin.log()[log_at_pause..]);
    for f in &committed {
        let (_, path) = vodvault_tests::hls_aes_source(f);
        assert_eq!(after.get(&path), None, "{path} was committed before the pause but fetched again");
    }
    assert!(
        matches!(tv.vault.resume(&id).await, Err(VaultError::InvalidState { .. })),
        "a completed asset does not resume"
    );

    // Cancel deletes the files and keeps the record; resume starts over.
    let id2 = start(&tv, &origin, "hls-fmp4/index.m3u8", |_| {}).await;
    tv.vault.cancel(&id2).await.unwrap();
    let c = tv.vault.asset(&id2).await.unwrap();
    assert_eq!((c.state, c.segments_done, c.bytes_done), (AssetState::Cancelled, 0, 0));
    assert!(tv.files(&id2).is_empty());
    tv.vault.resume(&id2).await.unwrap();
    wait(&tv.vault, &id2).await.unwrap();

    // Remove deletes files and rows.
    tv.vault.remove(&id).await.unwrap();
    assert!(matches!(tv.vault.asset(&id).await, Err(VaultError::NotFound { .. })));
    assert!(!tv.dir.path().join("assets").join(&id).exists());
    assert_eq!(tv.vault.assets().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_is_monotonic_throttled_and_exact_at_the_end() {
    let origin = Origin::start(fixtures()).await;
    origin.throttle(400_000);
    let tv = test_vault(|c| c.max_parallel_requests = 3).await;
    let mut events = tv.vault.subscribe();
    let started = std::time::Instant::now();
    let id = start(&tv, &origin, "hls-aes/master.m3u8", |_| {}).await;
    wait(&tv.vault, &id).await.unwrap();
    let elapsed = started.elapsed();
    let mut progress = Vec::new();
    let mut completed_after = None;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Progress(p) if p.id == id => progress.push(p),
            Event::State { state: AssetState::Completed, .. } => completed_after = Some(progress.len()),
            _ => {}
        }
    }
    assert!(progress.len() >= 3, "{}", progress.len());
    assert!(progress.windows(2).all(|w| w[1].bytes_done >= w[0].bytes_done), "monotonic");
    assert!(progress.windows(2).all(|w| w[1].segments_done >= w[0].segments_done), "monotonic");
    let per_sec = progress.len() as f64 / elapsed.as_secs_f64();
    assert!(per_sec <= 15.0, "{per_sec:.1} events/s");
    assert!(progress.iter().any(|p| !p.expected_exact), "an estimate while the size is unknown");
    let last = progress.last().unwrap();
    assert!(last.expected_exact && last.bytes_expected == Some(last.bytes_done));
    assert_eq!(last.segments_done, last.segments_total);
    assert_eq!(completed_after, Some(progress.len()), "completed comes after the final progress");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_progressive_file_resumes_with_range_and_restarts_if_it_changed() {
    for mode in [Mode::Normal, Mode::Encrypted] {
        let root = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures().join("progressive/sample.mp4"), root.path().join("film.mp4")).unwrap();
        let origin = Origin::start(root.path()).await;
        origin.throttle(120_000);
        let tv = test_vault(|c| {
            c.checkpoint_bytes = 32 * 1024;
            c.chunk_size = 16 * 1024;
        })
        .await;
        let id = start(&tv, &origin, "film.mp4", |r| r.mode = mode).await;
        let mut events = tv.vault.subscribe();
        loop {
            if let Ok(Event::Progress(p)) = events.recv().await
                && p.bytes_done >= 100_000
            {
                break;
            }
        }
        tv.vault.pause(&id).await.unwrap();
        let done = tv.vault.asset(&id).await.unwrap().bytes_done;
        assert!(done >= 32 * 1024, "a checkpoint was recorded: {done}");
        origin.throttle(0);
        origin.clear_log();
        tv.vault.resume(&id).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        assert_same(&tv.read_piece(&id, "media.mp4", mode).await, &plain("progressive/sample.mp4"), &format!("{mode}"));
        let resumed = origin.log().into_iter().find(|l| l.path == "/film.mp4").unwrap();
        let range = resumed.range.expect("resumed with Range");
        let from: u64 = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
        assert!(from > 0 && from <= done, "{range} vs {done} durable");
        assert!(resumed.headers.iter().any(|(k, _)| k == "if-range"), "with If-Range");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_progressive_file_that_changed_restarts_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let original = plain("progressive/sample.mp4");
    std::fs::write(root.path().join("film.mp4"), &original).unwrap();
    let origin = Origin::start(root.path()).await;
    origin.throttle(120_000);
    let tv = test_vault(|c| c.checkpoint_bytes = 32 * 1024).await;
    let id = start(&tv, &origin, "film.mp4", |r| r.mode = Mode::Encrypted).await;
    let mut events = tv.vault.subscribe();
    loop {
        if let Ok(Event::Progress(p)) = events.recv().await
            && p.bytes_done >= 100_000
        {
            break;
        }
    }
    tv.vault.pause(&id).await.unwrap();
    // A new version of the file: different bytes, different ETag.
    let mut changed = original.clone();
    let n = changed.len();
    changed[n / 3] ^= 0xFF;
    std::fs::write(root.path().join("film.mp4"), &changed).unwrap();
    origin.throttle(0);
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    assert_same(&tv.read_piece(&id, "media.mp4", Mode::Encrypted).await, &changed, "changed file");
}

/// Starts downloading `film.mp4` from `origin` in `mode` (throttled), pauses it once at least
/// 100 kB are stored, and replaces the served file with a changed version of the same length.
/// Returns the asset and the changed bytes.
async fn pause_then_change(tv: &TestVault, origin: &Origin, root: &std::path::Path, mode: Mode) -> (String, Vec<u8>) {
    let original = plain("progressive/sample.mp4");
    std::fs::write(root.join("film.mp4"), &original).unwrap();
    origin.throttle(120_000);
    let id = start(tv, origin, "film.mp4", |r| r.mode = mode).await;
    let mut events = tv.vault.subscribe();
    loop {
        if let Ok(Event::Progress(p)) = events.recv().await
            && p.bytes_done >= 100_000
        {
            break;
        }
    }
    tv.vault.pause(&id).await.unwrap();
    // Every byte of the media data changes (6000 is inside `mdat`); the boxes stay whole.
    let mut changed = original.clone();
    for b in &mut changed[6000..] {
        *b ^= 0x5A;
    }
    std::fs::write(root.join("film.mp4"), &changed).unwrap();
    origin.throttle(0);
    (id, changed)
}

/// An origin that ignores `If-Range` answers the resume of a changed file with `206` and a part
/// of the new version: its new `ETag` gives it away, and the download starts over instead of
/// splicing two versions.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_file_served_despite_if_range_starts_over() {
    for mode in [Mode::Normal, Mode::Encrypted] {
        let root = tempfile::tempdir().unwrap();
        let origin = Origin::start(root.path()).await;
        origin.ignore_if_range();
        let tv = test_vault(|c| c.checkpoint_bytes = 32 * 1024).await;
        let (id, changed) = pause_then_change(&tv, &origin, root.path(), mode).await;
        let mut events = tv.vault.subscribe();
        tv.vault.resume(&id).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        assert_same(&tv.read_piece(&id, "media.mp4", mode).await, &changed, &format!("{mode}: the new version whole"));
        let mut restarted = false;
        while let Ok(e) = events.try_recv() {
            restarted |= matches!(e, Event::Restarted { reason: FailureReason::SourceChanged { .. }, .. });
        }
        assert!(restarted, "{mode}: the app is told the download started over");
    }
}

/// The sealed files' nonces: (salt and nonce prefix, full chunks) of a sealed file.
fn sealed_chunks(sealed: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let chunk = u32::from_be_bytes(sealed[8..12].try_into().unwrap()) as usize;
    let body = &sealed[48..];
    // The last chunk (full or not) is sealed with the "last" flag in its nonce: leave it out.
    let full: Vec<Vec<u8>> = body.chunks(chunk + 16).map(<[u8]>::to_vec).collect();
    let n = full.len().saturating_sub(1);
    (sealed[20..43].to_vec(), full.into_iter().take(n).filter(|c| c.len() == chunk + 16).collect())
}

/// No AES-GCM nonce ever seals two different plaintexts, whatever the origin does: here one
/// that ignores `If-Range` and gives every version of a file the same validators, so that a
/// resume gets a part of a changed file nothing can tell from the old one. Whatever was on disk
/// when the download paused (chunks past its last checkpoint included) and whatever is stored
/// in the end, no (salt, nonce prefix, chunk index) seals two different chunks.
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_never_reuses_a_nonce_whatever_the_origin_sends() {
    let root = tempfile::tempdir().unwrap();
    let origin = Origin::start(root.path()).await;
    origin.ignore_if_range();
    origin.constant_validators();
    // Checkpoints far apart in small chunks: when the download pauses, chunks past the last
    // checkpoint are on disk.
    let tv = test_vault(|c| {
        c.checkpoint_bytes = 64 * 1024;
        c.chunk_size = 4 * 1024;
    })
    .await;
    let (id, _) = pause_then_change(&tv, &origin, root.path(), Mode::Encrypted).await;
    let part = tv.dir.path().join("assets").join(&id).join("media.mp4.vvs.part");
    let before = std::fs::read(&part).unwrap();
    let resume_at = tv.vault.asset(&id).await.unwrap().bytes_done;
    let (nonces_before, chunks_before) = sealed_chunks(&before);
    assert!(resume_at > 0, "the download resumes from a checkpoint");
    assert!(
        (chunks_before.len() * 4096) as u64 > resume_at,
        "the paused part holds chunks past its checkpoint ({} chunks, resume at {resume_at})",
        chunks_before.len()
    );
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let after = std::fs::read(tv.dir.path().join("assets").join(&id).join("media.mp4.vvs")).unwrap();
    let (nonces_after, chunks_after) = sealed_chunks(&after);
    if nonces_after == nonces_before {
        for (i, (a, b)) in chunks_before.iter().zip(&chunks_after).enumerate() {
            assert!(a == b, "chunk {i} was sealed twice under one nonce with different bytes");
        }
    }
    assert_ne!(nonces_after, nonces_before, "what is written after a resume is sealed under a fresh salt");
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_a_vault_sweeps_files_whose_rows_are_gone() {
    // A crash inside `remove` (rows deleted, files not yet) leaves a directory with no row.
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let id = start(&tv, &origin, "hls-byterange/ts.m3u8", |_| {}).await;
    wait(&tv.vault, &id).await.unwrap();
    let orphan = tv.dir.path().join("assets").join("00000000deadbeef");
    std::fs::create_dir_all(orphan.join("video")).unwrap();
    std::fs::write(orphan.join("video/seg-00000.ts"), b"left behind").unwrap();
    tv.vault.close().await;
    let mut config =
        vodvault_core::VaultConfig::new(tv.dir.path().to_owned(), tv.key_file.clone(), vodvault_tests::APP_ID);
    config.autostart = true;
    let vault = vodvault_core::Vault::open(config).await.unwrap();
    assert!(!orphan.exists(), "the orphan directory is removed");
    assert!(tv.dir.path().join("assets").join(&id).exists(), "a real asset is kept");
    assert_eq!(vault.asset(&id).await.unwrap().state, AssetState::Completed);
    vault.close().await;
}
