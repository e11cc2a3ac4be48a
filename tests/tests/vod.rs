//! ApsaraVideo VOD sources end to end: a fake VOD API that checks every signature and expires
//! what VOD expires, handing out type-A signed URLs on the real test origin that expire quickly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::time::Duration;

use vodvault_core::{
    AssetState, CredentialsReason, DownloadRequest, Event, FailureReason, ImageKind, Mode, Prepared, SignatureMethod,
    VaultError,
};
use vodvault_tests::cli::Home;
use vodvault_tests::origin::Fault;
use vodvault_tests::vod::crc64;
use vodvault_tests::vod_app::{request, setup};
use vodvault_tests::{plain, raw_http, wait};

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
        assert!(
            log.iter().all(|l| matches!(l.status, 200 | 206)),
            "{:?}",
            log.iter().find(|l| !matches!(l.status, 200 | 206))
        );
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
        assert!(
            log.iter().all(|l| matches!(l.status, 200 | 206)),
            "{:?}",
            log.iter().find(|l| !matches!(l.status, 200 | 206))
        );
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
