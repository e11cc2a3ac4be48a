//! What to download of a stream: track rules (codecs, dynamic range, audio and subtitle
//! languages) against the corpus's real master playlists and a master over the ffmpeg fixtures,
//! and time ranges, checked by the segments stored and by what ffmpeg decodes from them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use vodvault_core::hls::master::{MasterPlaylist, RenditionKind};
use vodvault_core::hls::vars::VarSource;
use vodvault_core::{DownloadRequest, DynamicRange, Mode, Quality, RenditionRole, TimeRange, TrackRules, VaultError};
use vodvault_tests::cli::Home;
use vodvault_tests::origin::Origin;
use vodvault_tests::{fixtures, framemd5, have, plain, test_vault, wait};

fn rules(codecs: &[&str], ranges: &[DynamicRange]) -> TrackRules {
    TrackRules {
        codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
        ranges: ranges.to_vec(),
        ..Default::default()
    }
}

fn corpus_master(name: &str) -> MasterPlaylist {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hls").join(name);
    MasterPlaylist::parse(&std::fs::read_to_string(path).unwrap(), VarSource::Nothing).unwrap()
}

/// The variant `quality` picks among those `rules` accept, as its URI.
fn pick(master: &MasterPlaylist, rules: &TrackRules, quality: Quality) -> Option<String> {
    let fit: Vec<_> = master.variants.iter().filter(|v| rules.accepts(v)).cloned().collect();
    (!fit.is_empty()).then(|| fit[quality.pick(&fit)].uri.clone())
}

#[test]
fn rules_over_the_corpus_masters_pick_what_a_device_decodes() {
    use DynamicRange::*;
    // SDR HEVC, Dolby Vision and HDR10 HEVC ladders, 720p to 2160p.
    let m = corpus_master("grafov__m3u8__sample-playlists_master-with-hlsv7.m3u8");
    assert_eq!(pick(&m, &rules(&["hvc1"], &[Sdr]), Quality::Best).unwrap(), "sdr_2160/prog_index.m3u8");
    assert_eq!(pick(&m, &rules(&["hev1"], &[Sdr, Hdr10]), Quality::Best).unwrap(), "hdr10_2160/prog_index.m3u8");
    assert_eq!(
        pick(&m, &rules(&["hvc1"], &[Sdr, Hdr10]), Quality::Height(1080)).unwrap(),
        "hdr10_1080/prog_index.m3u8"
    );
    assert_eq!(pick(&m, &rules(&["hvc1", "dvh1"], &[]), Quality::Best).unwrap(), "dolby_2160/prog_index.m3u8");
    assert_eq!(pick(&m, &rules(&["avc1"], &[]), Quality::Best), None, "no H.264 variant");
    // H.264 with AAC, AC-3 and E-AC-3 audio.
    let m = corpus_master("videojs__m3u8-parser__test_fixtures_integration_master-fmp4.m3u8");
    let aac = |v: &vodvault_core::hls::master::Variant| v.codecs.as_deref().unwrap_or("").contains("mp4a");
    let only_aac: Vec<_> = m.variants.iter().filter(|v| rules(&["avc1", "mp4a"], &[]).accepts(v)).collect();
    assert!(!only_aac.is_empty() && only_aac.iter().all(|v| aac(v)), "{only_aac:?}");
    assert!(m.variants.iter().filter(|v| aac(v)).all(|v| rules(&["avc1", "mp4a"], &[]).accepts(v)));
    assert!(
        m.variants.iter().any(|v| !rules(&["avc1", "mp4a"], &[]).accepts(v)),
        "the AC-3 and E-AC-3 ones are left out"
    );
    // Audio by preference across ISO 639-1 and 639-2 tags.
    let m = corpus_master("videojs__m3u8-parser__test_fixtures_integration_alternateAudio.m3u8");
    let group = m.group(RenditionKind::Audio, m.variants[0].audio_group.as_deref());
    let r = TrackRules { audio_languages: vec!["fr".into(), "en".into()], ..Default::default() };
    let picked = r.pick_audio(&group).unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].language.as_deref(), Some("fre"), "{group:?}");
    let r = TrackRules { audio_languages: vec!["ja".into()], ..Default::default() };
    let fallback = r.pick_audio(&group).unwrap();
    assert!(fallback[0].default, "no preferred language offered: the default ({fallback:?})");
}

#[tokio::test(flavor = "multi_thread")]
async fn french_audio_english_subtitles_and_no_hevc_or_hdr() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|c| c.requirements.keep_free = vodvault_core::KeepFree::NONE).await;
    let url = origin.url("hls-aes/rules.m3u8");
    let rules = TrackRules {
        audio_languages: vec!["fr".into(), "en".into()],
        subtitle_languages: vec!["en".into()],
        codecs: vec!["avc1".into(), "mp4a".into()],
        ranges: vec![DynamicRange::Sdr],
        ..Default::default()
    };
    let mut req = DownloadRequest::new(&url);
    req.rules = Some(rules.clone());
    let preview = tv.vault.preview(&req).await.unwrap();
    let tracks: Vec<_> =
        preview.tracks.iter().map(|t| (t.role, t.language.clone(), t.codecs.clone(), t.height)).collect();
    assert_eq!(
        tracks,
        [
            (RenditionRole::Video, None, Some("avc1.42c015,mp4a.40.2".into()), Some(180)),
            (RenditionRole::Audio, Some("fr-FR".into()), None, None),
            (RenditionRole::Subtitles, Some("en".into()), None, None),
        ]
    );
    let id = tv.vault.download(req).await.unwrap();
    wait(&tv.vault, &id).await.unwrap();
    let fetched = |dir: &str| origin.log().iter().any(|l| l.path.starts_with(&format!("/hls-aes/{dir}/")));
    assert!(fetched("mid") && fetched("audio-de") && fetched("subs-en"));
    assert!(!fetched("high") && !fetched("low") && !fetched("audio-en"), "only the picked tracks are fetched");
    assert_eq!(tv.read_piece(&id, "video/seg-00000.ts", Mode::Normal).await, plain("hls-aes/plain/mid/seg-0.ts"));
    let subs = tv
        .files(&id)
        .iter()
        .filter(|f| f.starts_with("subtitles-"))
        .map(|f| f.split('/').next().unwrap().to_owned())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(subs.len(), 1, "English only: {subs:?}");

    // Without rules, the best variant is the HEVC one; with rules nothing matches, a typed line.
    let plain_req = DownloadRequest::new(&url);
    assert_eq!(tv.vault.preview(&plain_req).await.unwrap().tracks[0].height, Some(1080));
    let mut none = DownloadRequest::new(&url);
    none.rules = Some(TrackRules { codecs: vec!["av01".into()], ..Default::default() });
    let e = tv.vault.download(none).await.unwrap_err();
    assert!(
        matches!(&e, VaultError::InvalidRequest { details } if details.contains("no variant the track rules accept")),
        "{e}"
    );
    assert_eq!(tv.vault.assets().await.unwrap().len(), 1);

    // DASH: the German adaptation set by preference; no representation in a codec the device lacks.
    let mpd = origin.url("dash/timeline/manifest.mpd");
    let mut req = DownloadRequest::new(&mpd);
    req.rules = Some(TrackRules { audio_languages: vec!["de".into(), "en".into()], ..Default::default() });
    let p = tv.vault.preview(&req).await.unwrap();
    let audio: Vec<_> = p.tracks.iter().filter(|t| t.role == RenditionRole::Audio).collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].language.as_deref(), Some("deu"), "\"de\" is \"deu\"");
    req.rules = Some(TrackRules { codecs: vec!["hvc1".into(), "mp4a".into()], ..Default::default() });
    assert!(matches!(tv.vault.preview(&req).await, Err(VaultError::InvalidRequest { .. })));
}

#[test]
fn the_cli_prepare_shows_the_pick_and_download_takes_the_same_flags() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let origin = rt.block_on(Origin::start(fixtures()));
    let home = Home::new();
    let url = origin.url("hls-aes/rules.m3u8");
    let flags = ["--codecs", "avc1,mp4a", "--no-hdr", "--audio-lang", "fr,en", "--subs", "en", "--keep-free", "0"];
    let out = home.run(&[&["prepare", &url, "--json"], &flags[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tracks = v["pick"]["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 3, "{v}");
    assert_eq!(tracks[0]["height"], 180);
    assert_eq!(tracks[1]["language"], "fr-FR");
    assert_eq!(tracks[2]["language"], "en");
    assert_eq!(v["pick"]["space"]["fits_space"], true);
    let out = home.run(&[&["download", &url, "--json"], &flags[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["state"], "completed");
    let out = home.run(&["prepare", &url, "--codecs", "vp09"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no variant the track rules accept") && err.trim().lines().count() == 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_range_stores_the_segments_that_overlap_it_and_decodes_to_them() {
    let origin = Origin::start(fixtures()).await;
    let url = origin.url("hls-aes/master.m3u8");
    for mode in [Mode::Normal, Mode::Encrypted] {
        let tv = test_vault(|c| c.requirements.keep_free = vodvault_core::KeepFree::NONE).await;
        let mut req = DownloadRequest::new(&url);
        req.mode = mode;
        // 3–5 s of 2 s segments: the second and third (the third under the rotated key).
        req.range = Some("00:03-00:05".parse::<TimeRange>().unwrap());
        let seen = origin.log().len();
        let id = tv.vault.download(req.clone()).await.unwrap();
        let info = wait(&tv.vault, &id).await.unwrap();
        assert_eq!(info.range, Some(TimeRange { start_ms: 3000, end_ms: Some(5000) }));
        assert_eq!(info.duration_secs, Some(4.0));
        let video: Vec<String> = tv.files(&id).into_iter().filter(|f| f.starts_with("video/seg-")).collect();
        assert_eq!(video.len(), 2, "{video:?}");
        assert_eq!(tv.read_piece(&id, "video/seg-00000.ts", mode).await, plain("hls-aes/plain/high/seg-1.ts"));
        assert_eq!(tv.read_piece(&id, "video/seg-00001.ts", mode).await, plain("hls-aes/plain/high/seg-2.ts"));
        let video_fetches: Vec<String> = origin.log()[seen..]
            .iter()
            .filter(|l| l.path.starts_with("/hls-aes/high/seg-"))
            .map(|l| l.path.clone())
            .collect();
        assert!(video_fetches.iter().all(|p| p.ends_with("seg-1.ts") || p.ends_with("seg-2.ts")), "{video_fetches:?}");
        // The same range again is the same asset; another range is another.
        assert_eq!(tv.vault.download(req.clone()).await.unwrap(), id);
        let mut other = req.clone();
        other.range = Some("00:00-00:01".parse().unwrap());
        assert_ne!(tv.vault.download(other).await.unwrap(), id);
        // What a player decodes is the source's frames of those segments.
        if have("ffmpeg") {
            let s = tv.vault.play(&id).await.unwrap();
            let served = framemd5(
                &format!("{}video/index.m3u8", s.base_url()),
                &["-allowed_extensions", "ALL"],
                &["-map", "0:v"],
            );
            let dir = fixtures().join("hls-aes/plain/high");
            let source = framemd5(
                &format!("concat:{}|{}", dir.join("seg-1.ts").display(), dir.join("seg-2.ts").display()),
                &[],
                &["-map", "0:v"],
            );
            let hashes =
                |f: &[String]| f.iter().map(|l| l.rsplit(',').next().unwrap().trim().to_owned()).collect::<Vec<_>>();
            assert!(!served.is_empty());
            assert_eq!(hashes(&served), hashes(&source), "{mode}");
            let whole =
                framemd5(&origin.url("hls-aes/high/index.m3u8"), &["-allowed_extensions", "ALL"], &["-map", "0:v"]);
            assert_eq!(served.len() * 2, whole.len(), "half of the 8 s");
        }
        // A range past the end is refused in one line; nothing is stored for it.
        let before = tv.vault.assets().await.unwrap().len();
        let mut late = req.clone();
        late.range = Some("10:00-".parse().unwrap());
        let e = tv.vault.download(late).await.unwrap_err();
        assert!(matches!(&e, VaultError::InvalidRequest { details } if details.contains("holds no segment")), "{e}");
        assert_eq!(tv.vault.assets().await.unwrap().len(), before);
    }
    // Single files and DASH say no.
    let tv = test_vault(|_| {}).await;
    for path in ["progressive/sample.mp4", "dash/timeline/manifest.mpd"] {
        let mut req = DownloadRequest::new(&origin.url(path));
        req.range = Some("00:01-00:02".parse().unwrap());
        assert!(matches!(tv.vault.download(req).await, Err(VaultError::InvalidRequest { .. })), "{path}");
    }
}

#[test]
fn ranges_parse_and_print() {
    let r: TimeRange = "05:00-20:00".parse().unwrap();
    assert_eq!(r, TimeRange { start_ms: 300_000, end_ms: Some(1_200_000) });
    assert_eq!(r.to_string(), "00:05:00-00:20:00");
    assert_eq!("1:02:03.5-".parse::<TimeRange>().unwrap(), TimeRange { start_ms: 3_723_500, end_ms: None });
    assert_eq!("-90".parse::<TimeRange>().unwrap(), TimeRange { start_ms: 0, end_ms: Some(90_000) });
    for bad in ["20:00-05:00", "abc", "5", "1:2:3:4-", "-1-2"] {
        assert!(bad.parse::<TimeRange>().is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prepare_gives_each_variants_size_estimated_or_exact() {
    let origin = Origin::start(fixtures()).await;
    let tv = test_vault(|c| c.requirements.keep_free = vodvault_core::KeepFree::NONE).await;
    let p = tv.vault.prepare(&origin.url("hls-aes/master.m3u8"), &[]).await.unwrap();
    let vodvault_core::Prepared::Hls { variant_bytes, bytes_exact, duration_secs, segments, .. } = p else {
        panic!("{p:?}")
    };
    // AVERAGE-BANDWIDTH × 8 s.
    assert_eq!(
        (variant_bytes, bytes_exact, duration_secs, segments),
        (vec![Some(150_000), Some(240_000), Some(380_000)], false, Some(8.0), Some(4))
    );
    // Clear byte ranges: exact, and what a download stores.
    let url = origin.url("hls-byterange/ts.m3u8");
    let p = tv.vault.prepare(&url, &[]).await.unwrap();
    let vodvault_core::Prepared::Hls { variant_bytes, bytes_exact: true, .. } = p else { panic!("{p:?}") };
    let id = tv.vault.download(DownloadRequest::new(&url)).await.unwrap();
    assert_eq!(Some(wait(&tv.vault, &id).await.unwrap().bytes_done), variant_bytes[0]);
}
