//! Real-world and hostile input, against the real origin: sources told apart by content (an
//! error page served with 200 is never stored as a film, whatever its extension or
//! `Content-Type`), HLS as packagers really write it (`FORCED` on audio, `EXT-X-DEFINE`,
//! `PLAYLIST-TYPE:VOD` without `ENDLIST`, text before `#EXTM3U`), and refusals that say in one
//! line what and where.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::path::Path;

use vodvault_core::{AssetState, DownloadRequest, FailureReason, Mode, Prepared, VaultError};
use vodvault_tests::origin::{Fault, Origin};
use vodvault_tests::{TestVault, fixtures, plain, test_vault, wait};

/// A served directory holding a copy of the `hls-aes` fixture, to which tests add playlists.
fn served_copy() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("hls-aes"), &root.path().join("hls-aes"));
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn write(root: &Path, name: &str, body: &[u8]) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// The error's message is one line, short, and no debug dump.
fn assert_one_line(msg: &str) {
    assert!(!msg.contains('\n') && msg.len() < 300, "not one short line: {msg:?}");
    assert!(!msg.contains("Error {") && !msg.contains("[10, ") && !msg.contains("input:"), "a debug dump: {msg}");
}

fn no_files(tv: &TestVault) {
    assert!(tv.files_under_assets().is_empty(), "{:?}", tv.files_under_assets());
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_not_a_playlist_or_media_is_refused_before_anything_is_stored() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // Served as .mp4 (Content-Type video/mp4) or .m3u8: the extension and type say nothing.
    let cases: [(&str, &[u8], &str); 8] = [
        ("empty.mp4", b"", "empty"),
        ("blank.m3u8", b" \r\n\r\n", "empty"),
        ("text.mp4", b"this is not a playlist <html>", "text"),
        ("page.mp4", b"\n<!DOCTYPE html><html><body><h1>403 Forbidden</h1></body></html>", "an HTML page"),
        ("fragment.m3u8", b"<h1>502 Bad Gateway</h1>", "an HTML page"),
        ("error.mp4", b"{\"code\":\"AccessDenied\",\"message\":\"expired\"}", "a JSON document"),
        (
            "oss.mp4",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code></Error>",
            "an XML document (<Error>)",
        ),
        ("noheader.m3u8", b"#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n", "no #EXTM3U header"),
    ];
    for (name, body, _) in &cases {
        write(r, name, body);
    }
    write(
        r,
        "manifest.mpd",
        b"<?xml version=\"1.0\"?>\n<!-- packager -->\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\"></MPD>",
    );
    let origin = Origin::start(r).await;
    let tv = test_vault(|_| {}).await;
    for (name, _, what) in cases {
        for attempt in [tv.vault.prepare(&origin.url(name), &[]).await.map(|_| ()), {
            tv.vault.download(DownloadRequest::new(&origin.url(name))).await.map(|_| ())
        }] {
            match attempt {
                Err(e @ VaultError::BadSource { .. }) => {
                    let m = e.to_string();
                    assert!(m.contains(what) && m.contains("source URL"), "{name}: {m}");
                    assert_one_line(&m);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    // A DASH manifest without a period: a bad source, said as such.
    for attempt in [
        tv.vault.prepare(&origin.url("manifest.mpd"), &[]).await.map(|_| ()),
        tv.vault.download(DownloadRequest::new(&origin.url("manifest.mpd"))).await.map(|_| ()),
    ] {
        assert!(
            matches!(&attempt, Err(VaultError::BadSource { details: m }) if m.contains("MPD is invalid: no Period")),
            "{attempt:?}"
        );
    }
    assert!(tv.vault.assets().await.unwrap().is_empty(), "refused sources leave no asset");
    no_files(&tv);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_variant_playlist_a_segment_or_a_progressive_file_that_is_an_error_page_is_never_stored() {
    let root = served_copy();
    let r = root.path();
    // A master whose variant playlist URL answers with an HTML page (with 200).
    write(r, "hls-aes/bad-variant.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nmissing-variant.m3u8\n");
    write(r, "hls-aes/missing-variant.m3u8", b"<html><body>Not here</body></html>");
    let origin = Origin::start(r).await;
    let tv = test_vault(|_| {}).await;
    match tv.vault.download(DownloadRequest::new(&origin.url("hls-aes/bad-variant.m3u8"))).await {
        Err(VaultError::BadSource { details: m }) => {
            assert!(m.contains("video playlist URL returned an HTML page"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(tv.vault.assets().await.unwrap().is_empty());
    // A segment that is always an HTML page: fetched again, then the asset fails naming it and
    // what arrived; the page is not stored.
    origin.fault("high/seg-2.ts", Fault::HtmlPage, 100);
    let id = tv.vault.download(DownloadRequest::new(&origin.url("hls-aes/master.m3u8"))).await.unwrap();
    match wait(&tv.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("video segment 2") && message.contains("an HTML page"), "{message}");
            assert_one_line(&message);
        }
        other => panic!("{other:?}"),
    }
    assert!(!tv.files(&id).iter().any(|f| f.starts_with("video/seg-00002")), "{:?}", tv.files(&id));
    // A progressive file whose URL answers with an error page from the second request on (the
    // first told it apart as MP4): nothing of the page is written, the asset fails typed.
    write(r, "film.mp4", &plain("progressive/sample.mp4"));
    origin.clear_faults();
    origin.fault_after("film.mp4", 1, Fault::HtmlPage, 100);
    let tv2 = test_vault(|_| {}).await;
    let id = tv2.vault.download(DownloadRequest::new(&origin.url("film.mp4"))).await.unwrap();
    match wait(&tv2.vault, &id).await {
        Err(VaultError::Failed { reason: FailureReason::BadSource { message } }) => {
            assert!(message.contains("got an HTML page, not media"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(tv2.files(&id).iter().all(|f| !f.starts_with("media")), "{:?}", tv2.files(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audio_rendition_with_forced_no_is_kept() {
    let root = served_copy();
    let r = root.path();
    let master = std::fs::read_to_string(r.join("hls-aes/master.m3u8")).unwrap().replace(
        "NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,",
        "NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,X-VENDOR-TAG=\"a\",",
    );
    assert!(master.contains("FORCED=NO"));
    write(r, "hls-aes/forced.m3u8", master.as_bytes());
    let origin = Origin::start(r).await;
    let tv = test_vault(|_| {}).await;
    match tv.vault.prepare(&origin.url("hls-aes/forced.m3u8"), &[]).await.unwrap() {
        Prepared::Hls { renditions, .. } => {
            assert_eq!(renditions.len(), 3);
            assert!(renditions[0].language.as_deref() == Some("en") && renditions[0].default);
        }
        other => panic!("{other:?}"),
    }
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let mut req = DownloadRequest::new(&origin.url("hls-aes/forced.m3u8"));
        req.mode = mode;
        let id = tv.vault.download(req).await.unwrap();
        wait(&tv.vault, &id).await.unwrap();
        // The default (English) audio came with the video.
        let got = tv.read_piece(&id, "audio-1/seg-00000.ts", mode).await;
        assert!(got == plain("hls-aes/plain/audio-en/seg-0.ts"), "{mode}: the English audio");
        let local = String::from_utf8(tv.read_piece(&id, "index.m3u8", mode).await).unwrap();
        assert!(local.contains("TYPE=AUDIO") && local.contains("LANGUAGE=\"en\""), "{local}");
        assert!(!local.contains("FORCED"), "FORCED is only written where the RFC allows it: {local}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn define_variables_are_substituted_in_master_and_media_playlists_and_survive_a_pause() {
    let root = served_copy();
    let r = root.path();
    // The master takes a token from its own URL and defines the path; the media playlist imports
    // the token and puts it on every segment and key URI.
    write(
        r,
        "hls-aes/define.m3u8",
        b"#EXTM3U\n#EXT-X-VERSION:11\n#EXT-X-DEFINE:QUERYPARAM=\"auth\"\n#EXT-X-DEFINE:NAME=\"dir\",VALUE=\"high\"\n\
          #EXT-X-STREAM-INF:BANDWIDTH=450000,CODECS=\"avc1.42c015,mp4a.40.2\"\n{$dir}/define.m3u8?auth={$auth}\n",
    );
    let media = std::fs::read_to_string(r.join("hls-aes/high/index.m3u8"))
        .unwrap()
        .replace(
            "#EXT-X-VERSION:3",
            "#EXT-X-VERSION:11\n#EXT-X-DEFINE:IMPORT=\"auth\"\n#EXT-X-DEFINE:NAME=\"k\",VALUE=\"keys\"",
        )
        .replace("../keys/", "../{$k}/")
        .replace(".key\"", ".key?auth={$auth}\"")
        .replace(".ts\n", ".ts?auth={$auth}\n");
    assert_eq!(media.matches("{$auth}").count(), 6, "{media}");
    write(r, "hls-aes/high/define.m3u8", media.as_bytes());
    let origin = Origin::start(r).await;
    origin.throttle(40_000);
    let tv = test_vault(|_| {}).await;
    let mut req = DownloadRequest::new(&origin.url("hls-aes/define.m3u8?auth=t0k3n"));
    req.mode = Mode::Encrypted;
    req.parallel = Some(1);
    let id = tv.vault.download(req).await.unwrap();
    // Pause once a piece is stored, and resume: the stored playlist is read again with the
    // variables it was first read with (no master, no URL at hand).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tv.vault.asset(&id).await.unwrap().segments_done == 0 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tv.vault.pause(&id).await.unwrap();
    origin.throttle(0);
    tv.vault.resume(&id).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    for i in 0..4 {
        let got = tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Encrypted).await;
        assert!(got == plain(&format!("hls-aes/plain/high/seg-{i}.ts")), "segment {i}");
    }
    let log = origin.log();
    assert!(log.iter().all(|l| !l.path.contains("{$") && !l.query.as_deref().unwrap_or("").contains("{$")));
    for l in log.iter().filter(|l| l.path.ends_with(".ts") || l.path.ends_with(".key")) {
        assert_eq!(l.query.as_deref(), Some("auth=t0k3n"), "{l:?}");
    }
    // An undefined variable is a typed, one-line refusal naming it and its line.
    write(r, "hls-aes/undefined.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{$nope}/index.m3u8\n");
    match tv.vault.prepare(&origin.url("hls-aes/undefined.m3u8"), &[]).await {
        Err(e @ VaultError::BadSource { .. }) => {
            assert!(e.to_string().contains("{$nope}") && e.to_string().contains("line 3"), "{e}");
            assert_one_line(&e.to_string());
        }
        other => panic!("{other:?}"),
    }
    // QUERYPARAM without that parameter in the URL is refused too.
    let e = tv.vault.prepare(&origin.url("hls-aes/define.m3u8"), &[]).await.unwrap_err();
    assert!(e.to_string().contains("line 3") && e.to_string().contains("QUERYPARAM"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vod_playlist_without_endlist_is_complete_and_an_event_one_is_live() {
    let root = served_copy();
    let r = root.path();
    let vod = std::fs::read_to_string(r.join("hls-aes/high/index.m3u8")).unwrap().replace("#EXT-X-ENDLIST\n", "");
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && !vod.contains("ENDLIST"));
    write(r, "hls-aes/high/vod.m3u8", vod.as_bytes());
    write(r, "hls-aes/high/event.m3u8", vod.replace("TYPE:VOD", "TYPE:EVENT").as_bytes());
    let origin = Origin::start(r).await;
    let tv = test_vault(|_| {}).await;
    let id = tv.vault.download(DownloadRequest::new(&origin.url("hls-aes/high/vod.m3u8"))).await.unwrap();
    let info = wait(&tv.vault, &id).await.unwrap();
    assert_eq!((info.state, info.segments_done), (AssetState::Completed, 4));
    let local = String::from_utf8(tv.read_piece(&id, "video/index.m3u8", Mode::Normal).await).unwrap();
    assert!(local.ends_with("#EXT-X-ENDLIST\n"), "the local copy says it is complete: {local}");
    let e = tv.vault.download(DownloadRequest::new(&origin.url("hls-aes/high/event.m3u8"))).await.unwrap_err();
    assert!(e.to_string().contains("live"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_before_the_header_is_accepted_and_refusals_are_one_line_naming_tag_and_line() {
    let root = served_copy();
    let r = root.path();
    let master = std::fs::read_to_string(r.join("hls-aes/master.m3u8")).unwrap();
    write(r, "hls-aes/blank-first.m3u8", format!("\n\n# made by a packager\n{master}").as_bytes());
    write(r, "hls-aes/bom.m3u8", format!("\u{feff}{master}").as_bytes());
    let broken: [(&str, &str, &str); 5] = [
        ("mixed.m3u8", "\n\n#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:4,\na.ts\n", "line 6"),
        ("no-uri.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "line 2"),
        (
            "bad-attrs.m3u8",
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
            "line 2",
        ),
        ("no-extinf.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\na.ts\n#EXT-X-ENDLIST\n", "line 4"),
        (
            "drm.m3u8",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n",
            "line 3",
        ),
    ];
    for (name, text, _) in &broken {
        write(r, name, text.as_bytes());
    }
    let origin = Origin::start(r).await;
    let tv = test_vault(|_| {}).await;
    for name in ["hls-aes/blank-first.m3u8", "hls-aes/bom.m3u8"] {
        match tv.vault.prepare(&origin.url(name), &[]).await.unwrap() {
            Prepared::Hls { master: true, variants, renditions, .. } => {
                assert_eq!((variants.len(), renditions.len()), (3, 3), "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
    let id = tv.vault.download(DownloadRequest::new(&origin.url("hls-aes/blank-first.m3u8"))).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    for (name, _, line) in broken {
        let e = tv.vault.prepare(&origin.url(name), &[]).await.unwrap_err();
        let msg = e.to_string();
        assert_one_line(&msg);
        assert!(msg.contains(line), "{name}: {msg}");
    }
}

/// Runs `sql` on the catalog of the (closed) vault at `dir`, as damage from outside would.
async fn tamper(dir: &Path, sql: &str) {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("catalog.sqlite"));
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await.unwrap();
    pool.close().await;
}

/// What the catalog holds and cannot be read is said to be unreadable, never replaced by
/// something made up: a damaged key id is not a key mismatch against key `0000…`, and a
/// damaged failure record is not some other failure.
#[tokio::test(flavor = "multi_thread")]
async fn damaged_catalog_records_are_reported_as_such_not_made_up() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let id = tv.vault.download(DownloadRequest::new(&origin.url("progressive/sample.mp4"))).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    tv.vault.close().await;
    let dir = tv.dir.path();
    let reopen = || {
        vodvault_core::Vault::open(vodvault_core::VaultConfig::new(
            dir.to_owned(),
            tv.key_file.clone(),
            vodvault_tests::APP_ID,
        ))
    };

    // A failure record that is not JSON.
    tamper(dir, &format!("UPDATE assets SET state = 'failed', failure = '{{not json' WHERE id = '{id}'")).await;
    let vault = reopen().await.unwrap();
    match vault.asset(&id).await.unwrap().failure {
        Some(FailureReason::Storage { message }) => assert!(message.contains("unreadable"), "{message}"),
        other => panic!("{other:?}"),
    }
    match vault.wait(&id).await {
        Err(VaultError::Failed { reason: FailureReason::Storage { message } }) => {
            assert!(message.contains("unreadable"))
        }
        other => panic!("{other:?}"),
    }
    vault.close().await;

    // A key id that is not one.
    tamper(dir, "UPDATE vault_meta SET value = 'zz-not-a-key-id' WHERE key = 'key_id'").await;
    match reopen().await {
        Err(VaultError::Storage { details }) => {
            assert!(details.contains("damaged") && details.contains("key id"), "{details}")
        }
        other => panic!("{other:?}"),
    }
}
