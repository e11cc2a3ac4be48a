//! ApsaraVideo VOD sources end to end: a fake VOD API that checks every signature and expires
//! what VOD expires, handing out type-A signed URLs on the real test origin that expire quickly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vodvault_core::testing::V3Request;
use vodvault_core::{
    AssetState, Credentials, CredentialsProvider, CredentialsReason, DownloadRequest, Event, FailureReason, ImageKind,
    Mode, Prepared, SignatureMethod, VaultError, VodRequest,
};
use vodvault_tests::cli::Home;
use vodvault_tests::origin::{Fault, Origin};
use vodvault_tests::vod::{FakeVod, crc64};
use vodvault_tests::{TestVault, fixtures, plain, raw_http, test_vault, wait};

/// Hands out STS credentials from the fake, recording why it was asked. With `keep`, a URL
/// expiry keeps the current credentials (returns `None`).
struct Sts {
    vod: Arc<FakeVod>,
    ttl: Duration,
    keep_on_url_expiry: bool,
    reasons: Mutex<Vec<CredentialsReason>>,
}

impl Sts {
    fn new(vod: &Arc<FakeVod>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self { vod: Arc::clone(vod), ttl, keep_on_url_expiry: false, reasons: Mutex::new(Vec::new()) })
    }

    fn reasons(&self) -> Vec<CredentialsReason> {
        self.reasons.lock().unwrap().clone()
    }
}

impl CredentialsProvider for Sts {
    fn credentials(&self, reason: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        let keep = self.keep_on_url_expiry && matches!(reason, CredentialsReason::UrlExpired { .. });
        self.reasons.lock().unwrap().push(reason);
        let sts = self.vod.issue_sts(self.ttl);
        Box::pin(async move {
            (!keep).then(|| Credentials::new(&sts.access_key_id, &sts.access_key_secret, Some(&sts.security_token)))
        })
    }
}

const CDN_KEY: &str = "cdn-type-a-key";

struct Setup {
    origin: Arc<Origin>,
    vod: Arc<FakeVod>,
    tv: TestVault,
    sts: Arc<Sts>,
}

/// The test origin (type-A signing on), the fake VOD with the videos the tests use, a vault
/// pointed at it with `signature`, and an STS provider.
async fn setup(signature: SignatureMethod, tune: impl FnOnce(&mut vodvault_core::VaultConfig)) -> Setup {
    let origin = Arc::new(Origin::start(fixtures()).await);
    origin.require_signature(CDN_KEY);
    let vod = Arc::new(FakeVod::start(Arc::clone(&origin)).await);
    vod.add_sample_videos();
    let endpoint = vod.endpoint();
    let tv = test_vault(|c| {
        c.vod.endpoint = Some(endpoint);
        c.vod.signature = signature;
        tune(c);
    })
    .await;
    let sts = Sts::new(&vod, Duration::from_secs(3600));
    tv.vault.set_credentials_provider(Some(sts.clone()));
    Setup { origin, vod, tv, sts }
}

fn request(video: &str, mode: Mode, tune: impl FnOnce(&mut VodRequest)) -> DownloadRequest {
    let mut r = DownloadRequest::vod(video);
    r.mode = mode;
    tune(r.vod.as_mut().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn download_by_video_id_in_both_modes_for_m3u8_and_mp4() {
    // One vault per mode: an asset is one stream, stored in one mode.
    for mode in [Mode::Normal, Mode::Encrypted] {
        let s = setup(SignatureMethod::V3, |_| {}).await;
        // The best storable stream: HD m3u8 (the 2K stream is proprietary-encrypted, flv is not stored).
        let id = s.tv.vault.download(request("v-multi", mode, |v| v.images = false)).await.unwrap();
        let info = wait(&s.tv.vault, &id).await.unwrap();
        assert_eq!(info.state, AssetState::Completed);
        assert_eq!(info.title.as_deref(), Some("A film"));
        let v = info.vod.clone().unwrap();
        assert_eq!((v.video_id.as_str(), v.definition.as_str(), v.format.as_str()), ("v-multi", "HD", "m3u8"));
        assert_eq!(v.job_id.as_deref(), Some("job-hd"));
        assert!(!info.source.contains("auth_key"), "no signature in what the app sees: {}", info.source);
        for i in 0..4 {
            let got = s.tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), mode).await;
            assert!(got == plain(&format!("hls-aes/plain/high/seg-{i}.ts")), "{mode} segment {i}");
        }
        // mp4.
        let id =
            s.tv.vault
                .download(request("v-multi", mode, |v| {
                    v.format = Some("mp4".into());
                    v.images = false;
                }))
                .await
                .unwrap();
        let info = wait(&s.tv.vault, &id).await.unwrap();
        assert_eq!(info.vod.as_ref().unwrap().definition, "SD");
        assert!(s.tv.read_piece(&id, "media.mp4", mode).await == plain("progressive/sample.mp4"), "{mode} mp4");
        assert_eq!(info.bytes_done, plain("progressive/sample.mp4").len() as u64);
        // The same stream again is the same asset, whatever its (freshly signed) URL.
        let again = s.tv.vault.download(request("v-multi", mode, |v| v.images = false)).await.unwrap();
        assert_eq!(s.tv.vault.assets().await.unwrap().len(), 2);
        assert!(s.tv.vault.assets().await.unwrap().iter().any(|a| a.id == again));
        // Every media request carried a valid type-A signature (the origin refuses others)...
        let log = s.origin.log();
        assert!(log.iter().any(|l| l.path.ends_with(".ts")));
        assert!(log.iter().all(|l| l.status == 200), "{:?}", log.iter().find(|l| l.status != 200));
        // ...and every API call was signed with method V3 and the STS token, and accepted.
        let calls = s.vod.calls();
        assert!(calls.iter().all(|c| c.signature == "V3" && c.error.is_none()), "{calls:?}");
        assert!(calls.iter().all(|c| c.access_key_id.starts_with("STS.")));
        assert!(calls.iter().any(|c| c.action == "GetPlayInfo" && c.params.contains_key("AuthTimeout")));
        assert_eq!(s.sts.reasons(), vec![CredentialsReason::Initial], "credentials reused while valid");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn definition_choice_prepare_and_the_rpc_signature() {
    let s = setup(SignatureMethod::Rpc, |_| {}).await;
    let Prepared::Vod { video_id, title, streams, mezzanine, .. } =
        s.tv.vault.prepare("vod:v-multi", &[]).await.unwrap()
    else {
        panic!("not a VOD source")
    };
    assert_eq!((video_id.as_str(), title.as_deref()), ("v-multi", Some("A film")));
    assert_eq!(streams.len(), 5);
    assert!(mezzanine.is_none(), "v-multi has no source file");
    let why =
        |def: &str, f: &str| streams.iter().find(|x| x.definition == def && x.format == f).unwrap().unsupported.clone();
    assert!(why("2K", "m3u8").unwrap().contains("unsupported encryption AliyunVoDEncryption"));
    assert!(why("SD", "flv").unwrap().contains("unsupported format flv"));
    assert_eq!(why("HD", "m3u8"), None, "HLSEncryption is standard AES-128 HLS");
    let hd = streams.iter().find(|x| x.definition == "HD").unwrap();
    assert_eq!((hd.height, hd.job_id.as_deref()), (Some(180), Some("job-hd")));
    assert!(hd.size.unwrap() > 100_000);

    // An exact definition.
    let id =
        s.tv.vault
            .download(request("v-multi", Mode::Encrypted, |v| {
                v.definition = Some("LD".into());
                v.images = false;
            }))
            .await
            .unwrap();
    let info = wait(&s.tv.vault, &id).await.unwrap();
    assert_eq!(info.vod.unwrap().definition, "LD");
    for i in 0..4 {
        let got = s.tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Encrypted).await;
        assert!(got == plain(&format!("hls-aes/plain/low/seg-{i}.ts")), "LD segment {i}");
    }
    // A definition VOD does not have: typed, nothing created.
    match s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.definition = Some("4K".into()))).await {
        Err(VaultError::VodApi { code, .. }) => assert_eq!(code, "InvalidVideo.NoneStream"),
        other => panic!("{other:?}"),
    }
    // A quality ceiling picks among what there is.
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().vod.unwrap().definition, "HD");
    let mut worst = request("v-multi", Mode::Encrypted, |v| v.images = false);
    worst.quality = vodvault_core::Quality::Worst;
    let id = s.tv.vault.download(worst).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().vod.unwrap().definition, "LD");
    assert_eq!(s.tv.vault.assets().await.unwrap().len(), 2, "LD once, HD once");
    // Every call was signed with the RPC method.
    let calls = s.vod.calls();
    assert!(!calls.is_empty() && calls.iter().all(|c| c.signature == "RPC"), "{calls:?}");
    assert!(
        calls.iter().filter(|c| c.error.is_some()).all(|c| c.error.as_deref() == Some("InvalidVideo.NoneStream")
            || c.error.as_deref() == Some("InvalidFile.NotFound"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proprietary_encryption_and_unstorable_formats_are_refused() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    // Only AliyunVoDEncryption streams: VOD itself says so; vodvault refuses, typed.
    for result in [
        s.tv.vault.prepare("vod:v-locked", &[]).await.map(|_| String::new()),
        s.tv.vault.download(DownloadRequest::vod("v-locked")).await,
    ] {
        match result {
            Err(VaultError::UnsupportedSource { details: m }) => assert!(m.contains("unsupported encryption"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // A proprietary stream asked for by definition, and a format we do not store.
    match s.tv.vault.download(request("v-multi", Mode::Encrypted, |v| v.definition = Some("2K".into()))).await {
        Err(VaultError::UnsupportedSource { details: m }) => assert!(m.contains("AliyunVoDEncryption"), "{m}"),
        other => panic!("{other:?}"),
    }
    match s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.format = Some("flv".into()))).await {
        Err(VaultError::UnsupportedSource { details: m }) => assert!(m.contains("flv"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Never a broken file: nothing was created or fetched.
    assert!(s.tv.vault.assets().await.unwrap().is_empty());
    assert!(s.origin.log().is_empty(), "{:?}", s.origin.log());
    assert!(s.tv.files_under_assets().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mezzanine_is_checked_against_its_crc64() {
    let source = plain("progressive/sample.mp4");
    for mode in [Mode::Normal, Mode::Encrypted] {
        let s = setup(SignatureMethod::V3, |_| {}).await;
        let id = s.tv.vault.download(request("v-source", mode, |v| v.mezzanine = true)).await.unwrap();
        let info = wait(&s.tv.vault, &id).await.unwrap();
        let v = info.vod.clone().unwrap();
        assert!(v.mezzanine && v.definition == "OD", "{v:?}");
        assert_eq!((info.bytes_expected, info.expected_exact), (Some(source.len() as u64), true));
        assert!(s.tv.read_piece(&id, "media.mp4", mode).await == source, "{mode}");
    }
    // The source file arrives corrupted (one flipped byte, full length): the CRC-64 catches it.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    // (Twice: the first request only tells what the source is.)
    s.origin.fault("progressive/sample.mp4", Fault::Corrupt, 2);
    let id = s.tv.vault.download(request("v-source", Mode::Encrypted, |v| v.mezzanine = true)).await.unwrap();
    match wait(&s.tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("CRC-64") && message.contains(&crc64(&source).to_string()), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.tv.files(&id).iter().all(|f| !f.starts_with("media.mp4")), "nothing kept: {:?}", s.tv.files(&id));
    // Resumed, it downloads again from the start, and this time it is intact.
    s.tv.vault.resume(&id).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
    assert!(s.tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == source);
    // VOD reports a CRC-64 the file does not have: it never completes.
    let id = s.tv.vault.download(request("v-bad-crc", Mode::Normal, |v| v.mezzanine = true)).await.unwrap();
    match wait(&s.tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("VOD says 42"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(s.tv.files(&id).is_empty(), "{:?}", s.tv.files(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_source_file_survives_many_dropped_connections_and_expired_urls() {
    // More dropped connections than the retry budget (5), and more expired URLs than the limit
    // of fresh URLs without progress (3), over one file: each stretch stores something, so the
    // download carries on, resuming with Range, and the CRC-64 covers the resumed prefixes.
    let source = plain("progressive/sample.mp4");
    let s = setup(SignatureMethod::V3, |c| c.checkpoint_bytes = 16 << 10).await;
    s.vod.cap_url_ttl(Duration::from_secs(1));
    s.origin.throttle(45_000);
    s.origin.fault("progressive/sample.mp4", Fault::Truncate(30_000), 20);
    let id = s.tv.vault.download(request("v-source", Mode::Encrypted, |v| v.mezzanine = true)).await.unwrap();
    let info = tokio::time::timeout(Duration::from_secs(60), wait(&s.tv.vault, &id)).await.unwrap().unwrap();
    assert_eq!(info.state, AssetState::Completed);
    assert!(s.tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == source);
    let log = s.origin.log();
    let ranged = log.iter().filter(|l| l.path.ends_with("sample.mp4") && l.range.is_some() && l.status == 206).count();
    let refused = log.iter().filter(|l| l.path.ends_with("sample.mp4") && l.status == 403).count();
    assert!(
        ranged >= 6 && refused >= 4,
        "resumed with Range after each drop: {:?}",
        log.iter().map(|l| (&l.method, &l.range, l.status)).collect::<Vec<_>>()
    );
    let plays = s.vod.calls().iter().filter(|c| c.action == "GetMezzanineInfo").count();
    assert!(plays >= 5, "fresh URLs after expiry: {plays}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_that_may_only_play_still_download_the_media() {
    // A RAM policy that allows GetPlayInfo but not ListSnapshots: the cover only.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.vod.deny("ListSnapshots");
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.format = Some("mp4".into()))).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
    let images = s.tv.vault.images(&id).await.unwrap();
    assert_eq!(images.iter().map(|i| i.kind).collect::<Vec<_>>(), vec![ImageKind::Cover]);
    // Nor GetVideoInfo: no images at all, and the download still completes.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.vod.deny("GetVideoInfo");
    let id = s.tv.vault.download(request("v-multi", Mode::Encrypted, |v| v.format = Some("mp4".into()))).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
    assert!(s.tv.vault.images(&id).await.unwrap().is_empty());
    assert!(s.tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == plain("progressive/sample.mp4"));
}

/// STS credentials with an `MtsHlsUriToken` from an app's token service: each answer hands out
/// the next token of the list (the last one from then on).
struct TokenSts {
    vod: Arc<FakeVod>,
    tokens: Mutex<Vec<&'static str>>,
}

impl CredentialsProvider for TokenSts {
    fn credentials(&self, _: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        let sts = self.vod.issue_sts(Duration::from_secs(3600));
        let token = {
            let mut t = self.tokens.lock().unwrap();
            if t.len() > 1 { Some(t.remove(0)) } else { t.first().copied() }
        };
        Box::pin(async move {
            Some(
                Credentials::new(&sts.access_key_id, &sts.access_key_secret, Some(&sts.security_token))
                    .with_hls_uri_token(token),
            )
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_encryption_with_a_token_checking_key_service() {
    // Keys are served only with a valid MtsHlsUriToken; the CDN appends the token the playlist
    // was asked with to its key URIs.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.origin.require_hls_uri_token(&["tok-1"]);
    let provider = Arc::new(TokenSts { vod: Arc::clone(&s.vod), tokens: Mutex::new(vec!["tok-1"]) });
    s.tv.vault.set_credentials_provider(Some(provider));
    let id = s.tv.vault.download(request("v-multi", Mode::Encrypted, |v| v.images = false)).await.unwrap();
    let info = wait(&s.tv.vault, &id).await.unwrap();
    for i in 0..4 {
        let got = s.tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Encrypted).await;
        assert!(got == plain(&format!("hls-aes/plain/high/seg-{i}.ts")), "segment {i}");
    }
    let keys: Vec<_> = s.origin.log().into_iter().filter(|l| l.path.ends_with(".key")).collect();
    assert!(keys.len() >= 2 && keys.iter().all(|k| k.status == 200), "{keys:?}");
    assert!(keys.iter().all(|k| k.query.as_deref().unwrap_or("").contains("MtsHlsUriToken=tok-1")), "{keys:?}");
    assert!(
        s.vod
            .calls()
            .iter()
            .any(|c| c.action == "GetPlayInfo" && c.params.get("PlayConfig").is_some_and(|p| p.contains("tok-1")))
    );
    assert!(!info.source.contains("tok-1") && !format!("{info:?}").contains("tok-1"), "the token is never shown");

    // The token expires before the download starts on the keys: the key service refuses it, the
    // app's provider hands out a fresh one with fresh credentials, and the download goes on.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.origin.require_hls_uri_token(&["tok-2"]);
    let provider = Arc::new(TokenSts { vod: Arc::clone(&s.vod), tokens: Mutex::new(vec!["tok-old", "tok-2"]) });
    s.tv.vault.set_credentials_provider(Some(provider));
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
    let refused = s.origin.log().iter().filter(|l| l.path.ends_with(".key") && l.status == 403).count();
    assert!(refused >= 1, "the old token was refused first");

    // No token at all: a typed failure naming the key, nothing stored as a segment.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.origin.require_hls_uri_token(&["tok-3"]);
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await.unwrap();
    match wait(&s.tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::UrlExpired { message } }) => {
            assert!(message.contains("403"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn images_refused_whatever_the_url_are_missing_and_the_media_completes() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.origin.fault("vod-images/", Fault::Status(403, None), 1000);
    let mut events = s.tv.vault.subscribe();
    let id = s.tv.vault.download(request("v-multi", Mode::Encrypted, |v| v.format = Some("mp4".into()))).await.unwrap();
    let info = wait(&s.tv.vault, &id).await.unwrap();
    assert_eq!(info.state, AssetState::Completed);
    // Two fresh sets of image URLs, then they are given up: not a refresh per image.
    let infos = s.vod.calls().iter().filter(|c| c.action == "GetVideoInfo").count();
    assert_eq!(infos, 3, "the first list and two fresh ones");
    let tried = s.origin.log().iter().filter(|l| l.path.contains("vod-images/")).count();
    assert!(tried <= 3 * 10, "{tried} image requests");
    // Every image is recorded as missing, with why, and the app was told of each.
    let images = s.tv.vault.images(&id).await.unwrap();
    assert_eq!(images.len(), 10);
    for i in &images {
        assert!(!i.stored, "{i:?}");
        assert!(
            matches!(&i.missing, Some(FailureReason::UrlExpired { message }) if message.contains(&i.file)),
            "{i:?}"
        );
    }
    let mut told = 0;
    while let Ok(e) = events.try_recv() {
        if let Event::ImageMissing { id: eid, file, reason, .. } = e {
            assert_eq!(eid, id);
            assert!(images.iter().any(|i| i.file == file && i.missing.as_ref() == Some(&reason)));
            told += 1;
        }
    }
    assert_eq!(told, 10, "one event per missing image");
    // The media is stored and plays.
    assert!(s.tv.read_piece(&id, "media.mp4", Mode::Encrypted).await == plain("progressive/sample.mp4"));
    assert!(s.tv.vault.play(&id).await.is_ok());
    // Resuming the completed asset tries its images again; once the CDN serves them, all are
    // stored, and the asset stayed completed throughout.
    s.origin.clear_faults();
    s.tv.vault.resume(&id).await.unwrap();
    let images = s.tv.vault.images(&id).await.unwrap();
    assert!(images.iter().all(|i| i.stored && i.missing.is_none()), "{images:?}");
    assert_eq!(s.tv.vault.asset(&id).await.unwrap().state, AssetState::Completed);
    assert!(s.tv.vault.verify(&id).await.unwrap().is_empty());
    // Nothing more to try: resuming a completed asset with every image is refused as before.
    assert!(matches!(s.tv.vault.resume(&id).await, Err(VaultError::InvalidState { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_cover_does_not_lose_the_film() {
    // A VOD whose CoverURL is stale: 404 on the cover only.
    for mode in [Mode::Normal, Mode::Encrypted] {
        let s = setup(SignatureMethod::V3, |_| {}).await;
        s.origin.fault("vod-images/cover.jpg", Fault::Status(404, None), 1000);
        let id = s.tv.vault.download(request("v-multi", mode, |v| v.format = Some("mp4".into()))).await.unwrap();
        let info = wait(&s.tv.vault, &id).await.unwrap();
        assert_eq!(info.state, AssetState::Completed);
        let images = s.tv.vault.images(&id).await.unwrap();
        let cover = images.iter().find(|i| i.kind == ImageKind::Cover).unwrap();
        assert!(!cover.stored);
        assert!(
            matches!(&cover.missing, Some(FailureReason::HttpStatus { status: 404, message }) if message.contains("images/cover.jpg")),
            "{cover:?}"
        );
        assert_eq!(images.iter().filter(|i| i.stored).count(), 9, "the other images are stored: {images:?}");
        assert!(s.tv.read_piece(&id, "media.mp4", mode).await == plain("progressive/sample.mp4"));
        s.origin.clear_faults();
        s.tv.vault.resume(&id).await.unwrap();
        assert!(s.tv.vault.images(&id).await.unwrap().iter().all(|i| i.stored));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_stored_in_the_assets_mode_listed_and_served() {
    for mode in [Mode::Encrypted, Mode::Normal] {
        // Hotlink protection configured for the vault goes with the images too.
        let s =
            setup(SignatureMethod::V3, |c| c.default_headers = vec![("Referer".into(), "https://app.example/".into())])
                .await;
        s.origin.require_referer("https://app.example/");
        let id = s.tv.vault.download(request("v-multi", mode, |v| v.format = Some("mp4".into()))).await.unwrap();
        wait(&s.tv.vault, &id).await.unwrap();
        let log = s.origin.log();
        assert!(log.iter().any(|l| l.path.contains("vod-images/")), "{log:?}");
        assert!(log.iter().all(|l| l.status == 200), "{:?}", log.iter().find(|l| l.status != 200));
        let images = s.tv.vault.images(&id).await.unwrap();
        let count = |k: ImageKind| images.iter().filter(|i| i.kind == k).count();
        assert_eq!(
            [ImageKind::Cover, ImageKind::Snapshot, ImageKind::Sprite, ImageKind::SpriteOriginal, ImageKind::WebVtt]
                .map(count),
            [1, 3, 1, 4, 1],
            "{images:?}"
        );
        assert!(images.iter().all(|i| i.stored && i.size.is_some()));
        let by = |k: ImageKind, n: u32| images.iter().find(|i| i.kind == k && i.index == n).unwrap().file.clone();
        assert_eq!(by(ImageKind::Cover, 1), "images/cover.jpg");
        for (file, fixture) in [
            (by(ImageKind::Cover, 1), "vod-images/cover.jpg"),
            (by(ImageKind::Snapshot, 3), "vod-images/snapshot-3.jpg"),
            (by(ImageKind::Sprite, 1), "vod-images/sprite-1.jpg"),
            (by(ImageKind::SpriteOriginal, 4), "vod-images/sprite-origin-4.jpg"),
        ] {
            assert!(s.tv.read_piece(&id, &file, mode).await == plain(fixture), "{mode} {file}");
        }
        // The thumbnail track points at the stored sprite.
        let vtt = String::from_utf8(s.tv.read_piece(&id, &by(ImageKind::WebVtt, 1), mode).await).unwrap();
        assert!(vtt.starts_with("WEBVTT") && vtt.contains("\nsprite-00001.jpg#xywh=80,45,80,45\n"), "{vtt}");
        assert!(!vtt.contains("auth_key"));
        if mode == Mode::Encrypted {
            assert!(!s.tv.files(&id).iter().any(|f| f.ends_with(".jpg")), "sealed: {:?}", s.tv.files(&id));
        }
        // Served with the asset, and readable through the reader.
        let session = s.tv.vault.play(&id).await.unwrap();
        let url = format!("{}images/cover.jpg", session.base_url());
        let r = tokio::task::spawn_blocking(move || raw_http("GET", &url, &[])).await.unwrap();
        assert_eq!((r.status, r.header("content-type")), (200, Some("image/jpeg")));
        assert!(r.body == plain("vod-images/cover.jpg"));
        let reader = s.tv.vault.open_reader(&id, "images/snapshot-00001.jpg").await.unwrap();
        let mut buf = vec![0u8; reader.len() as usize];
        assert_eq!(reader.read_at(0, &mut buf).unwrap(), buf.len());
        assert!(buf == plain("vod-images/snapshot-1.jpg"));
        assert!(s.tv.vault.files(&id).await.unwrap().contains(&"images/sprite-00001.jpg".to_owned()));
        assert_eq!(s.tv.vault.verify(&id).await.unwrap(), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_expiring_mid_download_are_renewed_and_the_download_continues() {
    // URLs live 2 s, STS credentials 3 s; the download takes about 6 s.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.vod.cap_url_ttl(Duration::from_secs(2));
    let sts = Arc::new(Sts {
        vod: Arc::clone(&s.vod),
        ttl: Duration::from_secs(3),
        keep_on_url_expiry: true,
        reasons: Mutex::new(Vec::new()),
    });
    s.tv.vault.set_credentials_provider(Some(sts.clone()));
    let total: u64 = (0..4).map(|i| plain(&format!("hls-aes/high/seg-{i}.ts")).len() as u64).sum();
    s.origin.throttle(total / 6);
    // The asset's own hotlink-protection header goes with every request, before and after refreshes.
    s.origin.require_referer("https://app.example/player");
    let mut req = request("v-multi", Mode::Encrypted, |v| v.images = false);
    req.parallel = Some(1);
    req.headers = vec![("Referer".into(), "https://app.example/player".into())];
    let id = s.tv.vault.download(req).await.unwrap();
    let info = tokio::time::timeout(Duration::from_secs(60), wait(&s.tv.vault, &id)).await.unwrap().unwrap();
    assert_eq!(info.state, AssetState::Completed);
    for i in 0..4 {
        let got = s.tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Encrypted).await;
        assert!(got == plain(&format!("hls-aes/plain/high/seg-{i}.ts")), "segment {i}");
    }
    // The vault asked VOD again for fresh URLs (with fresh credentials once VOD refused the old ones).
    let reasons = sts.reasons();
    assert!(
        reasons.iter().any(|r| matches!(r, CredentialsReason::UrlExpired { asset_id } if *asset_id == id)),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, CredentialsReason::Rejected { code } if code == "InvalidSecurityToken.Expired")),
        "{reasons:?}"
    );
    let calls = s.vod.calls();
    let plays: Vec<_> = calls.iter().filter(|c| c.action == "GetPlayInfo").collect();
    assert!(plays.len() >= 3, "{plays:?}");
    let keys: std::collections::HashSet<_> =
        plays.iter().filter(|c| c.error.is_none()).map(|c| &c.access_key_id).collect();
    assert!(keys.len() >= 2, "fresh credentials were used: {plays:?}");
    // Each segment was fetched once: refreshes never re-download what is stored.
    for i in 0..4 {
        assert_eq!(s.origin.served(&format!("hls-aes/high/seg-{i}.ts")), 1, "segment {i}");
    }
    let log = s.origin.log();
    assert!(log.iter().all(|l| l.referer.as_deref() == Some("https://app.example/player")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transcode_that_changes_under_a_paused_download_restarts_it_cleanly() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    let total: u64 = (0..4).map(|i| plain(&format!("hls-aes/high/seg-{i}.ts")).len() as u64).sum();
    s.origin.throttle(total / 3);
    let mut events = s.tv.vault.subscribe();
    let mut req = request("v-multi", Mode::Normal, |v| v.images = false);
    req.parallel = Some(1);
    let id = s.tv.vault.download(req).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while s.tv.vault.asset(&id).await.unwrap().segments_done < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    s.tv.vault.pause(&id).await.unwrap();
    assert_eq!(s.tv.vault.asset(&id).await.unwrap().state, AssetState::Paused);
    // VOD transcodes HD again (different content, new job).
    s.vod.retranscode("v-multi", "HD", "m3u8", "hls-aes/mid/index.m3u8", "job-hd-2");
    s.origin.throttle(0);
    s.tv.vault.resume(&id).await.unwrap();
    let info = tokio::time::timeout(Duration::from_secs(30), wait(&s.tv.vault, &id)).await.unwrap().unwrap();
    assert_eq!(info.state, AssetState::Completed);
    assert_eq!(info.vod.unwrap().job_id.as_deref(), Some("job-hd-2"));
    for i in 0..4 {
        let got = s.tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Normal).await;
        assert!(got == plain(&format!("hls-aes/plain/mid/seg-{i}.ts")), "segment {i} is the new transcode's");
    }
    let mut restarted = None;
    while let Ok(e) = events.try_recv() {
        if let Event::Restarted { id: eid, reason } = e
            && eid == id
        {
            restarted = Some(reason);
        }
    }
    match restarted {
        Some(FailureReason::SourceChanged { message }) => {
            assert!(message.contains("job-hd → job-hd-2"), "{message}");
        }
        other => panic!("no restart event: {other:?}"),
    }
}

/// A provider that never answers (an app whose STS server hangs).
struct Hanging;

impl CredentialsProvider for Hanging {
    fn credentials(&self, _: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

/// A provider that hangs when a download's URLs expire (its STS server is slow for that), and
/// says when it started to.
struct SlowOnExpiry {
    sts: Arc<Sts>,
    hang: Duration,
    hanging: tokio::sync::Notify,
}

impl CredentialsProvider for SlowOnExpiry {
    fn credentials(&self, reason: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        if matches!(reason, CredentialsReason::UrlExpired { .. }) {
            self.hanging.notify_one();
            let hang = self.hang;
            return Box::pin(async move {
                tokio::time::sleep(hang).await;
                None
            });
        }
        self.sts.credentials(reason)
    }
}

/// While the provider takes its time for one download, every other VOD call goes on with the
/// credentials in use: the client never holds its credentials while a provider runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_provider_for_one_download_does_not_hold_up_the_others() {
    let s = setup(SignatureMethod::V3, |c| c.vod.credentials_timeout = Duration::from_secs(30)).await;
    let slow =
        Arc::new(SlowOnExpiry { sts: s.sts.clone(), hang: Duration::from_secs(15), hanging: Default::default() });
    s.tv.vault.set_credentials_provider(Some(slow.clone()));
    // URLs that expire in a second, and connections that drop: the download needs fresh ones.
    s.vod.cap_url_ttl(Duration::from_secs(1));
    s.origin.throttle(45_000);
    s.origin.fault("progressive/sample.mp4", Fault::Truncate(60_000), 20);
    let id = s.tv.vault.download(request("v-source", Mode::Normal, |v| v.mezzanine = true)).await.unwrap();
    if tokio::time::timeout(Duration::from_secs(30), slow.hanging.notified()).await.is_err() {
        panic!("no expiry: {:?} {:?}", s.tv.vault.asset(&id).await, s.sts.reasons());
    }
    let started = std::time::Instant::now();
    let prepared = tokio::time::timeout(Duration::from_secs(20), s.tv.vault.prepare("vod:v-multi", &[])).await.unwrap();
    assert!(prepared.is_ok(), "{prepared:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "prepare waited {:?} for another download's provider",
        started.elapsed()
    );
    s.tv.vault.cancel(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_credentials_provider_times_out_and_a_new_one_takes_over() {
    let s = setup(SignatureMethod::V3, |c| c.vod.credentials_timeout = Duration::from_millis(300)).await;
    // Credentials from the first provider are in use...
    assert!(s.tv.vault.prepare("vod:v-multi", &[]).await.is_ok());
    // ...until another provider is set: its answer counts from then on, even a hanging one.
    s.tv.vault.set_credentials_provider(Some(Arc::new(Hanging)));
    let started = std::time::Instant::now();
    match tokio::time::timeout(Duration::from_secs(20), s.tv.vault.prepare("vod:v-multi", &[])).await.unwrap() {
        Err(VaultError::Credentials { details: m }) => assert!(m.contains("did not answer within 0.3 s"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // A download asked for meanwhile is refused the same way; with a working provider again it
    // goes through.
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await;
    assert!(matches!(id, Err(VaultError::Credentials { .. })), "{id:?}");
    s.tv.vault.set_credentials_provider(Some(s.sts.clone()));
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_are_typed_and_throttling_backs_off() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    // Throttled twice, then answered.
    s.vod.throttle_next(2);
    let id = s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.images = false)).await.unwrap();
    assert_eq!(wait(&s.tv.vault, &id).await.unwrap().state, AssetState::Completed);
    let codes: Vec<_> = s.vod.calls().iter().map(|c| c.error.clone()).collect();
    assert_eq!(codes[..3], [Some("Throttling.User".into()), Some("Throttling.User".into()), None]);
    // Throttled for good: typed, after backing off.
    s.vod.throttle_next(1000);
    match s.tv.vault.prepare("vod:v-multi", &[]).await {
        Err(VaultError::VodApi { code, .. }) => assert_eq!(code, "Throttling.User"),
        other => panic!("{other:?}"),
    }
    s.vod.throttle_next(0);
    // A video VOD does not have.
    match s.tv.vault.download(DownloadRequest::vod("v-nope")).await {
        Err(VaultError::VodApi { code, .. }) => assert_eq!(code, "InvalidVideo.NotFound"),
        other => panic!("{other:?}"),
    }
    // No source file.
    match s.tv.vault.download(request("v-multi", Mode::Normal, |v| v.mezzanine = true)).await {
        Err(VaultError::VodApi { code, .. }) => assert_eq!(code, "InvalidFile.NotFound"),
        other => panic!("{other:?}"),
    }
    // Not a video id at all.
    assert!(matches!(
        s.tv.vault.download(DownloadRequest::vod("../etc")).await,
        Err(VaultError::InvalidRequest { .. })
    ));
    // No credentials provider.
    s.tv.vault.set_credentials_provider(None);
    assert!(matches!(s.tv.vault.prepare("vod:v-multi", &[]).await, Err(VaultError::Credentials { .. })));
    assert_eq!(s.tv.vault.assets().await.unwrap().len(), 1, "nothing else was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_are_typed_and_never_quoted() {
    let s = setup(SignatureMethod::Rpc, |_| {}).await;
    // A wrong secret: VOD quotes the string it signed (with the token, in the RPC method).
    struct Wrong(Credentials);
    impl CredentialsProvider for Wrong {
        fn credentials(&self, _: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
            let c = self.0.clone();
            Box::pin(async move { Some(c) })
        }
    }
    let sts = s.vod.issue_sts(Duration::from_secs(600));
    let wrong = Credentials::new(&sts.access_key_id, "not-the-secret", Some(&sts.security_token));
    s.tv.vault.set_credentials_provider(Some(Arc::new(Wrong(wrong))));
    match s.tv.vault.prepare("vod:v-multi", &[]).await {
        Err(e @ VaultError::Credentials { .. }) => {
            let text = format!("{e} {e:?}");
            assert!(text.contains("SignatureDoesNotMatch"), "{text}");
            assert!(!text.contains(&sts.security_token) && !text.contains("not-the-secret"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Expired STS credentials and a provider with nothing newer: typed, after one renewal.
    let old = s.vod.issue_sts(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = Credentials::new(&old.access_key_id, &old.access_key_secret, Some(&old.security_token));
    s.tv.vault.set_credentials_provider(Some(Arc::new(Wrong(expired))));
    match s.tv.vault.download(DownloadRequest::vod("v-multi")).await {
        Err(VaultError::Credentials { details: message }) => {
            assert!(message.contains("InvalidSecurityToken.Expired"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// The fake is as strict as VOD: what passes it is what VOD accepts.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_vod_refuses_stale_dates_reused_nonces_and_bad_tokens() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    let endpoint = s.vod.endpoint();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let sts = s.vod.issue_sts(Duration::from_secs(600));
    let send = |date: &str, nonce: &str, key_id: &str, secret: &str, token: &str| {
        let query = vec![("VideoId".to_owned(), "v-multi".to_owned())];
        let signed = V3Request {
            method: "POST",
            host: &host,
            path: "/",
            action: "GetVideoInfo",
            version: "2017-03-21",
            query: &query,
            date,
            nonce,
            security_token: Some(token),
            body: b"",
        }
        .sign(key_id, secret.as_bytes());
        let headers: Vec<(String, String)> = signed.headers.into_iter().filter(|(n, _)| n != "host").collect();
        let url = format!("{endpoint}?VideoId=v-multi");
        let r = raw_http("POST", &url, &headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        (r.status, body["Code"].as_str().unwrap_or("").to_owned())
    };
    let now = time_now();
    let ok = tokio::task::block_in_place(|| {
        send(&now, "nonce-1", &sts.access_key_id, &sts.access_key_secret, &sts.security_token)
    });
    assert_eq!(ok, (200, String::new()));
    let replay = tokio::task::block_in_place(|| {
        send(&now, "nonce-1", &sts.access_key_id, &sts.access_key_secret, &sts.security_token)
    });
    assert_eq!(replay, (400, "SignatureNonceUsed".into()));
    let stale = tokio::task::block_in_place(|| {
        send("2023-10-26T10:22:32Z", "nonce-2", &sts.access_key_id, &sts.access_key_secret, &sts.security_token)
    });
    assert_eq!(stale, (400, "InvalidTimeStamp.Expired".into()));
    let forged =
        tokio::task::block_in_place(|| send(&now, "nonce-3", &sts.access_key_id, "guess", &sts.security_token));
    assert_eq!(forged, (400, "SignatureDoesNotMatch".into()));
    let token =
        tokio::task::block_in_place(|| send(&now, "nonce-4", &sts.access_key_id, &sts.access_key_secret, "CAISother"));
    assert_eq!(token, (400, "InvalidSecurityToken.MismatchWithAccessKey".into()));
    let short = s.vod.issue_sts(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = tokio::task::block_in_place(|| {
        send(&time_now(), "nonce-5", &short.access_key_id, &short.access_key_secret, &short.security_token)
    });
    assert_eq!(expired, (400, "InvalidSecurityToken.Expired".into()));
}

fn time_now() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `vodvault` with VOD sources: `vod:<VideoId>` wherever a URL goes, credentials from the
/// environment or a command.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_takes_vod_sources() {
    let s = setup(SignatureMethod::V3, |_| {}).await;
    let home = Home::new();
    let dir = &home.dir;
    let sts = s.vod.issue_sts(Duration::from_secs(600));
    let endpoint = s.vod.endpoint();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = home.cmd();
        c.env("VODVAULT_VOD_ENDPOINT", &endpoint).envs(env.iter().copied()).args(args);
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let creds = [
        ("VODVAULT_ACCESS_KEY_ID", sts.access_key_id.as_str()),
        ("VODVAULT_ACCESS_KEY_SECRET", sts.access_key_secret.as_str()),
        ("VODVAULT_SECURITY_TOKEN", sts.security_token.as_str()),
    ];
    let (run, creds) = (&run, &creds);
    let (code, out, err) = tokio::task::block_in_place(|| run(&["prepare", "vod:v-multi", "--json"], creds));
    assert_eq!(code, Some(0), "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["kind"], "vod");
    let streams = p["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 5);
    let hd = streams.iter().find(|x| x["definition"] == "HD").unwrap();
    assert!(hd["size"].as_u64().unwrap() > 0 && hd["format"] == "m3u8" && hd["unsupported"].is_null());
    assert!(
        streams.iter().find(|x| x["definition"] == "2K").unwrap()["unsupported"]
            .as_str()
            .unwrap()
            .contains("AliyunVoDEncryption")
    );

    // Download a definition, encrypted, with images.
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(&["download", "vod:v-multi", "--definition", "LD", "--mode", "encrypted", "--json"], creds)
    });
    assert_eq!(code, Some(0), "{err}");
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((a["state"].as_str(), a["vod"]["definition"].as_str()), (Some("completed"), Some("LD")));
    let id = a["id"].as_str().unwrap().to_owned();
    let (_, out, _) = tokio::task::block_in_place(|| run(&["show", &id, "--json"], creds));
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let images = shown["images"].as_array().unwrap();
    assert_eq!(images.len(), 10);
    assert!(images.iter().all(|i| i["stored"] == true));
    assert_eq!(
        vodvault_tests::read_piece(&home.vault(), &home.key, &id, "images/cover.jpg", Mode::Encrypted).await,
        plain("vod-images/cover.jpg")
    );

    // The source file, with credentials from a command (told why it is asked), signed the old way.
    let creds_file = dir.path().join("creds.json");
    std::fs::write(
        &creds_file,
        serde_json::json!({"RequestId": "x", "Credentials": {"AccessKeyId": sts.access_key_id,
            "AccessKeySecret": sts.access_key_secret, "SecurityToken": sts.security_token,
            "Expiration": "2099-01-01T00:00:00Z"}})
        .to_string(),
    )
    .unwrap();
    let reasons = dir.path().join("reasons");
    let cmd = format!("echo $VODVAULT_CREDENTIALS_REASON >> '{}'; cat '{}'", reasons.display(), creds_file.display());
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &[
                "download",
                "vod:v-source",
                "--mezzanine",
                "--no-images",
                "--credentials-cmd",
                &cmd,
                "--vod-signature",
                "rpc",
                "--json",
            ],
            &[],
        )
    });
    assert_eq!(code, Some(0), "{err}");
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (a["vod"]["mezzanine"].as_bool(), a["bytes_done"].as_u64()),
        (Some(true), Some(plain("progressive/sample.mp4").len() as u64))
    );
    assert_eq!(std::fs::read_to_string(&reasons).unwrap().trim(), "initial");
    assert!(s.vod.calls().iter().any(|c| c.signature == "RPC" && c.action == "GetMezzanineInfo"));
    assert!(!err.contains(&sts.access_key_secret) && !err.contains(&sts.security_token));

    // Without credentials: a clear error, exit 1, nothing created.
    let (code, _, err) = tokio::task::block_in_place(|| run(&["download", "vod:v-multi", "--format", "mp4"], &[]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no VOD credentials"), "{err}");
    // VOD options on a URL source are a usage error.
    let (code, _, err) =
        tokio::task::block_in_place(|| run(&["download", "http://127.0.0.1:9/x.m3u8", "--definition", "HD"], creds));
    assert_eq!(code, Some(1));
    assert!(err.contains("are for vod:<VideoId> sources"), "{err}");
    // A proprietary-encrypted video: refused, typed, in one line.
    let (code, _, err) = tokio::task::block_in_place(|| run(&["download", "vod:v-locked"], creds));
    assert_eq!(code, Some(1));
    assert!(err.contains("unsupported encryption"), "{err}");
    let (_, out, _) = tokio::task::block_in_place(|| run(&["list", "--json"], creds));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 2);
}
