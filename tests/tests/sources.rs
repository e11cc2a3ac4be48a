//! Every source kind in both modes, checked byte for byte against the fixtures' plaintext:
//! Normal mode stores exactly the decrypted media, Encrypted mode's sealed files open to the
//! same bytes and contain none of them in the clear. RFC 8216 rules are cited where they bite.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use vodvault_core::hls::media::MediaPlaylist;
use vodvault_core::hls::vars::VarSource;
use vodvault_core::{AssetKind, AssetState, DownloadRequest, Mode};
use vodvault_tests::origin::Origin;
use vodvault_tests::{TestVault, fixtures, have, plain, test_vault, wait};

fn range(path: &str, offset: u64, len: u64) -> Vec<u8> {
    plain(path)[offset as usize..(offset + len) as usize].to_vec()
}

/// Downloads `path` in `mode` with `quality` and returns the completed asset's id.
async fn download(tv: &TestVault, origin: &Origin, path: &str, mode: Mode, quality: &str) -> String {
    let mut req = DownloadRequest::new(&origin.url(path));
    req.mode = mode;
    req.quality = quality.parse().unwrap();
    let id = tv.vault.download(req).await.unwrap();
    let info = wait(&tv.vault, &id).await.unwrap_or_else(|e| panic!("{path} {mode}: {e}"));
    assert_eq!(info.state, AssetState::Completed);
    assert_eq!(info.segments_done, info.segments_total);
    assert!(info.expected_exact, "completed assets report an exact size");
    assert_eq!(info.bytes_expected, Some(info.bytes_done));
    id
}

/// Encrypted mode: no stored file contains any 32-byte window of `plaintext` (sampled).
fn assert_no_plaintext(tv: &TestVault, id: &str, plaintext: &[u8]) {
    let root = tv.dir.path().join("assets").join(id);
    for name in tv.files(id) {
        assert!(name.ends_with(".vvs"), "every stored file is sealed: {name}");
        let stored = std::fs::read(root.join(&name)).unwrap();
        for start in (0..plaintext.len().saturating_sub(32)).step_by(997) {
            let needle = &plaintext[start..start + 32];
            assert!(!stored.windows(32).any(|w| w == needle), "{name} contains plaintext from offset {start}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn master_playlist_with_key_rotation_audio_and_subtitles_in_both_modes() {
    let origin = Origin::start(fixtures()).await;
    // best = "high": key rotation with implicit IVs and EXT-X-MEDIA-SEQUENCE:100, so each IV is
    // the segment's media sequence number (RFC 8216 §5.2), not its index.
    for mode in [Mode::Normal, Mode::Encrypted] {
        // One vault per mode: the same content is one asset, stored one way.
        let tv = test_vault(|_| {}).await;
        let id = download(&tv, &origin, "hls-aes/master.m3u8", mode, "best").await;
        for i in 0..4 {
            let got = tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), mode).await;
            assert_eq!(got, plain(&format!("hls-aes/plain/high/seg-{i}.ts")), "{mode} video segment {i}");
        }
        // Default audio rendition (English, DEFAULT=YES) and every subtitle rendition.
        for i in 0..5 {
            let got = tv.read_piece(&id, &format!("audio-1/seg-0000{i}.ts"), mode).await;
            assert_eq!(got, plain(&format!("hls-aes/plain/audio-en/seg-{i}.ts")), "{mode} audio segment {i}");
        }
        for i in 0..2 {
            let got = tv.read_piece(&id, &format!("subtitles-2/seg-0000{i}.vtt"), mode).await;
            assert_eq!(got, plain(&format!("hls-aes/subs-en/sub-{i}.vtt")), "{mode} subtitle {i}");
        }
        let master = String::from_utf8(tv.read_piece(&id, "index.m3u8", mode).await).unwrap();
        assert!(
            master.contains("URI=\"audio-1/index.m3u8\"") && master.contains("URI=\"subtitles-2/index.m3u8\""),
            "{master}"
        );
        assert!(master.contains("RESOLUTION=320x180") && master.contains("\nvideo/index.m3u8\n"), "{master}");
        assert!(!master.contains("Deutsch"), "only the chosen renditions: {master}");
        let video = String::from_utf8(tv.read_piece(&id, "video/index.m3u8", mode).await).unwrap();
        assert!(!video.contains("EXT-X-KEY") && video.contains("#EXT-X-MEDIA-SEQUENCE:100"), "{video}");
        if mode == Mode::Encrypted {
            let mut all = Vec::new();
            for i in 0..4 {
                all.extend(plain(&format!("hls-aes/plain/high/seg-{i}.ts")));
            }
            assert_no_plaintext(&tv, &id, &all);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_ivs_and_the_lowest_variant() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    // 144p = "mid": explicit IV attributes that change with each key (§4.3.2.4).
    let id = download(&tv, &origin, "hls-aes/master.m3u8", Mode::Normal, "144p").await;
    for i in 0..4 {
        let got = tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Normal).await;
        assert_eq!(got, plain(&format!("hls-aes/plain/mid/seg-{i}.ts")), "mid segment {i}");
    }
    // worst = "low": one key, implicit IVs from media sequence 0.
    let id = download(&tv, &origin, "hls-aes/master.m3u8", Mode::Encrypted, "worst").await;
    for i in 0..4 {
        let got = tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), Mode::Encrypted).await;
        assert_eq!(got, plain(&format!("hls-aes/plain/low/seg-{i}.ts")), "low segment {i}");
    }
    assert_eq!(tv.vault.assets().await.unwrap().len(), 2, "different variants are different assets");
}

#[tokio::test(flavor = "multi_thread")]
async fn fmp4_with_two_encrypted_init_sections_in_both_modes() {
    let origin = Origin::start(fixtures()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = download(&tv, &origin, "hls-fmp4/index.m3u8", mode, "best").await;
        // Every EXT-X-MAP is its own init section, decrypted with the IV its KEY gives
        // (§4.3.2.5: an encrypted MAP needs an explicit IV).
        assert_eq!(tv.read_piece(&id, "video/init-0.mp4", mode).await, plain("hls-fmp4/plain/init-a.mp4"));
        assert_eq!(tv.read_piece(&id, "video/init-1.mp4", mode).await, plain("hls-fmp4/plain/init-b.mp4"));
        for (i, name) in ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"].iter().enumerate() {
            let got = tv.read_piece(&id, &format!("video/seg-0000{i}.m4s"), mode).await;
            assert_eq!(got, plain(&format!("hls-fmp4/plain/{name}.m4s")), "{mode} {name}");
        }
        let local = String::from_utf8(tv.read_piece(&id, "video/index.m3u8", mode).await).unwrap();
        let pl = MediaPlaylist::parse(&local, VarSource::Nothing).unwrap();
        assert_eq!(pl.maps.len(), 2);
        assert_eq!(
            pl.segments.iter().map(|s| s.map).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(0), Some(1), Some(1), Some(1)]
        );
        assert!(pl.segments[3].discontinuity);
        assert!(!local.contains("EXT-X-KEY"), "{local}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn byte_range_playlists_in_both_modes() {
    let origin = Origin::start(fixtures()).await;
    let ts =
        MediaPlaylist::parse(&String::from_utf8(plain("hls-byterange/ts.m3u8")).unwrap(), VarSource::Nothing).unwrap();
    let fmp4 = MediaPlaylist::parse(&String::from_utf8(plain("hls-byterange/fmp4.m3u8")).unwrap(), VarSource::Nothing)
        .unwrap();
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        // TS: sub-ranges with and without @offset (§4.3.2.2: without it, the range continues
        // after the previous one).
        let id = download(&tv, &origin, "hls-byterange/ts.m3u8", mode, "best").await;
        for (i, s) in ts.segments.iter().enumerate() {
            let r = s.byte_range.unwrap();
            let got = tv.read_piece(&id, &format!("video/seg-0000{i}.ts"), mode).await;
            assert_eq!(got, range("hls-byterange/all.ts", r.offset, r.length), "{mode} TS range {i}");
        }
        // fMP4: the init section is a byte range of the same file (EXT-X-MAP BYTERANGE).
        let id = download(&tv, &origin, "hls-byterange/fmp4.m3u8", mode, "best").await;
        let m = fmp4.maps[0].byte_range.unwrap();
        assert_eq!(
            tv.read_piece(&id, "video/init-0.mp4", mode).await,
            range("hls-byterange/all.mp4", m.offset, m.length)
        );
        for (i, s) in fmp4.segments.iter().enumerate() {
            let r = s.byte_range.unwrap();
            let got = tv.read_piece(&id, &format!("video/seg-0000{i}.mp4"), mode).await;
            assert_eq!(got, range("hls-byterange/all.mp4", r.offset, r.length), "{mode} fMP4 range {i}");
        }
        let info = tv.vault.asset(&id).await.unwrap();
        let total: u64 = fmp4.segments.iter().map(|s| s.byte_range.unwrap().length).sum::<u64>() + m.length;
        assert_eq!(info.bytes_done, total, "exact size known from the playlist");
    }
    // Each range was fetched with a Range request for exactly that range.
    let ranges: Vec<_> =
        origin.log().into_iter().filter(|l| l.path == "/hls-byterange/all.ts").filter_map(|l| l.range).collect();
    let first = ts.segments[1].byte_range.unwrap();
    assert!(ranges.contains(&first.http_range()), "{ranges:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn progressive_file_in_both_modes() {
    let origin = Origin::start(fixtures()).await;
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|_| {}).await;
        let id = download(&tv, &origin, "progressive/sample.mp4", mode, "best").await;
        let info = tv.vault.asset(&id).await.unwrap();
        assert_eq!(info.kind, AssetKind::Progressive);
        assert_eq!(tv.read_piece(&id, "media.mp4", mode).await, plain("progressive/sample.mp4"));
        match mode {
            Mode::Normal => assert_eq!(info.path.unwrap(), tv.dir.path().join("assets").join(&id).join("media.mp4")),
            Mode::Encrypted => {
                assert!(info.path.is_none(), "no plain path for sealed media");
                assert_no_plaintext(&tv, &id, &plain("progressive/sample.mp4"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_content_is_one_asset() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    let a = download(&tv, &origin, "hls-fmp4/index.m3u8", Mode::Encrypted, "best").await;
    let served = origin.served("hls-fmp4/a-0.m4s");
    // Asking again returns the same asset and fetches nothing again.
    let b = download(&tv, &origin, "hls-fmp4/index.m3u8", Mode::Encrypted, "best").await;
    assert_eq!(a, b);
    assert_eq!(origin.served("hls-fmp4/a-0.m4s"), served);
    // Asking for it in the other mode is a clear, typed refusal.
    let mut req = DownloadRequest::new(&origin.url("hls-fmp4/index.m3u8"));
    req.mode = Mode::Normal;
    match tv.vault.download(req).await {
        Err(vodvault_core::VaultError::AlreadyExists { id, mode }) => {
            assert_eq!((id, mode), (a, Mode::Encrypted))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_are_told_apart_by_content_not_extension() {
    // The same bytes under names that lie: a playlist called .mp4 and an MP4 called .m3u8.
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("progressive/sample.mp4"), root.path().join("video.m3u8")).unwrap();
    std::fs::create_dir(root.path().join("hls")).unwrap();
    for f in ["all.ts", "ts.m3u8"] {
        std::fs::copy(fixtures().join("hls-byterange").join(f), root.path().join("hls").join(f)).unwrap();
    }
    std::fs::rename(root.path().join("hls/ts.m3u8"), root.path().join("hls/stream.mp4")).unwrap();
    let origin = Origin::start(root.path()).await;
    let tv = test_vault(|_| {}).await;
    let id = download(&tv, &origin, "video.m3u8", Mode::Normal, "best").await;
    assert_eq!(tv.vault.asset(&id).await.unwrap().kind, AssetKind::Progressive);
    let id = download(&tv, &origin, "hls/stream.mp4", Mode::Normal, "best").await;
    assert_eq!(tv.vault.asset(&id).await.unwrap().kind, AssetKind::Hls);
}

#[tokio::test(flavor = "multi_thread")]
async fn normal_mode_plays_from_disk_with_ffmpeg() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|_| {}).await;
    for path in [
        "hls-aes/master.m3u8",
        "hls-fmp4/index.m3u8",
        "hls-byterange/ts.m3u8",
        "hls-byterange/fmp4.m3u8",
        "progressive/sample.mp4",
    ] {
        let id = download(&tv, &origin, path, Mode::Normal, "best").await;
        let entry = tv.vault.asset(&id).await.unwrap().path.unwrap();
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i"])
            .arg(&entry)
            .args(["-map", "0:v:0", "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
