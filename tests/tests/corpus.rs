//! Every real playlist and manifest of `tests/corpus` (taken from the test suites of other HLS
//! and DASH projects; `SOURCES.tsv` says where each came from) served from the test origin and
//! given to `prepare`, checked against `expect.tsv`: the class (master, complete media playlist,
//! live, DRM, malformed, ambiguous), the variant, rendition and segment counts and the duration.
//! Refusals are one line; nothing crashes or hangs; an accepted ambiguous playlist is faithful.
//! The DASH manifests likewise, against `dash-expect.tsv`: a faithful listing of each static MPD
//! or a one-line typed refusal (live, DRM, malformed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use vodvault_core::hls::master::RenditionKind;
use vodvault_core::{Prepared, VaultError};
use vodvault_tests::origin::Origin;
use vodvault_tests::test_vault;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

struct Row {
    file: String,
    class: String,
    notes: HashMap<String, String>,
}

/// The rows of an expectations table (`file`, `class`, `notes` of `key=value`s), each file
/// named as `prefix` + its name.
fn expectations_in(table: &str, prefix: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(corpus().join(table)).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let file = format!("{prefix}{}", cols.next().unwrap());
            let class = cols.next().unwrap().to_owned();
            let notes = cols
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Row { file, class, notes }
        })
        .collect()
}

fn expectations() -> Vec<Row> {
    expectations_in("expect.tsv", "")
}

fn count(row: &Row, key: &str) -> Option<usize> {
    row.notes.get(key).map(|v| v.parse().unwrap_or_else(|_| panic!("{}: bad {key}={v}", row.file)))
}

/// What a refusal must say, by the property it may name (`grounds=` in `expect.tsv`), besides
/// the class's own reason.
fn names_a_ground(msg: &str, grounds: &str) -> bool {
    grounds.split(',').any(|g| match g {
        "mixed" => msg.contains("mixes master and media"),
        "map-no-iv" => msg.contains("explicit IV"),
        "no-segments" => msg.contains("no media segments"),
        "skip" => msg.contains("EXT-X-SKIP"),
        "iframes-only" => msg.contains("I-frame"),
        "header" => msg.contains("#EXTM3U"),
        _ => false,
    })
}

/// Whether a prepared source matches the counts `row` gives (where it gives them).
fn faithful(row: &Row, p: &Prepared) -> Result<(), String> {
    match p {
        Prepared::Hls { master: true, variants, renditions, .. } => {
            // `renditions=` counts every EXT-X-MEDIA, closed captions included (the one playlist
            // with a CLOSED-CAPTIONS rendition, videojs' master-fmp4, counts it, whatever the
            // corpus README says); `prepare` lists them all (captions with no URI to fetch).
            let kept = renditions.len();
            if let Some(r) = renditions.iter().find(|r| r.kind == RenditionKind::ClosedCaptions && r.uri.is_some()) {
                return Err(format!("closed captions with a URI to fetch: {r:?}"));
            }
            if let Some(n) = count(row, "variants")
                && variants.len() != n
            {
                return Err(format!("{} variants, expected {n}", variants.len()));
            }
            if let Some(n) = count(row, "renditions")
                && kept != n
            {
                return Err(format!("{kept} renditions, expected {n}"));
            }
            if row.notes.contains_key("segs") {
                return Err("a media playlist taken for a master playlist".into());
            }
            let uris =
                variants.iter().map(|v| v.uri.as_str()).chain(renditions.iter().filter_map(|r| r.uri.as_deref()));
            if let Some(u) = uris.into_iter().find(|u| u.contains("{$")) {
                return Err(format!("a variable is left in {u}"));
            }
            Ok(())
        }
        Prepared::Hls { master: false, segments, duration_secs, .. } => {
            if row.notes.contains_key("variants") {
                return Err("a master playlist taken for a media playlist".into());
            }
            if let Some(n) = count(row, "segs")
                && *segments != Some(n)
            {
                return Err(format!("{segments:?} segments, expected {n}"));
            }
            if let Some(d) = row.notes.get("dur") {
                let want: f64 = d.parse().unwrap();
                let got = duration_secs.unwrap_or(f64::NAN);
                if (got - want).abs() > 0.001 {
                    return Err(format!("{got} s, expected {want}"));
                }
            }
            Ok(())
        }
        other => Err(format!("not HLS: {other:?}")),
    }
}

fn one_line(msg: &str) -> Result<(), String> {
    if msg.contains('\n') || msg.len() > 300 || msg.contains("Error {") || msg.contains("input: [") {
        return Err(format!("not a one-line message: {msg:?}"));
    }
    Ok(())
}

/// The ambiguous playlists we refuse, and what the refusal names (docs/design.md, D31); every
/// other ambiguous playlist is accepted, faithfully.
const AMBIGUOUS_REFUSED: [(&str, &str); 7] = [
    ("hls/globocom__m3u8__tests_playlists.py__IFRAME_PLAYLIST.m3u8", "I-frame-only"),
    ("hls/globocom__m3u8__tests_playlists.py__MULTIPLE_MAP_URI_PLAYLIST.m3u8", "explicit IV"),
    ("hls/globocom__m3u8__tests_playlists.py__SESSION_DATA_PLAYLIST.m3u8", "without any EXT-X-STREAM-INF"),
    ("hls/globocom__m3u8__tests_playlists_relative-playlist.m3u8", "mixes master and media"),
    ("hls/videojs__m3u8-parser__test_fixtures_integration_emptyTargetDuration.m3u8", "mixes master and media"),
    ("hls/videojs__m3u8-parser__test_fixtures_integration_iFramesOnly.m3u8", "I-frame-only"),
    ("hls/videojs__m3u8-parser__test_fixtures_integration_llhls-delta-byte-range.m3u8", "EXT-X-SKIP"),
];

fn check(row: &Row, got: &Result<Prepared, VaultError>) -> Result<(), String> {
    let grounds = row.notes.get("grounds").map_or("", String::as_str);
    match (row.class.as_str(), got) {
        ("master" | "vod-media", Ok(p)) => faithful(row, p),
        ("master" | "vod-media", Err(e)) => Err(format!("refused: {e}")),
        ("refuse-live", Err(e)) => {
            let m = e.to_string();
            one_line(&m)?;
            if m.contains("live") || names_a_ground(&m, grounds) {
                Ok(())
            } else {
                Err(format!("refused without saying it is live: {m}"))
            }
        }
        ("refuse-drm", Err(e)) => {
            let m = e.to_string();
            one_line(&m)?;
            if m.contains("DRM") || m.contains("SAMPLE-AES") { Ok(()) } else { Err(format!("not named DRM: {m}")) }
        }
        ("malformed", Err(e)) => one_line(&e.to_string()),
        ("refuse-live" | "refuse-drm" | "malformed", Ok(p)) => Err(format!("accepted: {p:?}")),
        ("ambiguous", Err(e)) => {
            let m = e.to_string();
            one_line(&m)?;
            match AMBIGUOUS_REFUSED.iter().find(|(f, _)| *f == row.file) {
                Some((_, why)) if m.contains(why) => Ok(()),
                Some((_, why)) => Err(format!("refused, but not for {why}: {m}")),
                None => Err(format!("refused, though we accept it: {m}")),
            }
        }
        ("ambiguous", Ok(p)) => match AMBIGUOUS_REFUSED.iter().find(|(f, _)| *f == row.file) {
            Some((_, why)) => Err(format!("accepted, though we refuse it ({why})")),
            None => faithful(row, p),
        },
        (class, _) => Err(format!("unknown class {class}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_playlist_is_prepared_as_expected() {
    let origin = Origin::start(corpus()).await;
    let tv = test_vault(|_| {}).await;
    let rows = expectations();
    assert_eq!(rows.len(), 108, "expect.tsv lists the 108 HLS playlists");
    let mut failures = Vec::new();
    let mut accepted = 0;
    for row in &rows {
        let got = tokio::time::timeout(Duration::from_secs(10), tv.vault.prepare(&origin.url(&row.file), &[]))
            .await
            .unwrap_or_else(|_| panic!("{}: prepare did not finish in 10 s", row.file));
        accepted += usize::from(got.is_ok());
        if let Err(why) = check(row, &got) {
            failures.push(format!("{} ({}): {why}", row.file, row.class));
        }
    }
    eprintln!(
        "{accepted} of {} playlists accepted, {} refused, each as expect.tsv says",
        rows.len(),
        rows.len() - accepted
    );
    assert!(failures.is_empty(), "{} of {} playlists:\n{}", failures.len(), rows.len(), failures.join("\n"));
    assert!(accepted >= 35, "only {accepted} accepted");
    assert!(tv.vault.assets().await.unwrap().is_empty(), "prepare stores nothing");
}

/// `dash-expect.tsv` (the same columns as `expect.tsv`), written from the MPDs themselves: what
/// `prepare` must list for each static MPD — periods, the main (longest) period's adaptation sets
/// by content type and its representations, the duration — and how each other one is refused.
fn dash_expectations() -> Vec<Row> {
    expectations_in("dash-expect.tsv", "dash/")
}

fn check_dash(row: &Row, got: Result<Prepared, VaultError>) -> Result<(), String> {
    match (row.class.as_str(), got) {
        ("static", Ok(Prepared::Dash { duration_secs, periods, adaptation_sets })) => {
            let n = |k: &str| count(row, k);
            if Some(periods as usize) != n("periods") {
                return Err(format!("{periods} periods"));
            }
            for kind in ["video", "audio", "text"] {
                let sets = adaptation_sets.iter().filter(|s| s.content_type == kind).count();
                if Some(sets) != n(kind) {
                    return Err(format!("{sets} {kind} adaptation sets"));
                }
            }
            let reps: usize = adaptation_sets.iter().map(|s| s.representations.len()).sum();
            if Some(reps) != n("reps") {
                return Err(format!("{reps} representations"));
            }
            // Every representation's addressing resolves to its segments (segment indexes aside:
            // the corpus has no media to read them from).
            for r in adaptation_sets.iter().flat_map(|s| &s.representations) {
                if let Some(why) = &r.unsupported {
                    return Err(format!("representation {}: {why}", r.id));
                }
                if r.segments.is_none_or(|n| n == 0) {
                    return Err(format!("representation {}: no segments", r.id));
                }
            }
            let want: f64 = row.notes["dur"].parse().unwrap();
            match duration_secs {
                Some(d) if (d - want).abs() < 0.06 => Ok(()),
                other => Err(format!("duration {other:?}, not {want}")),
            }
        }
        ("refuse-live", Err(e @ VaultError::UnsupportedSource { .. })) if e.to_string().contains("live MPD") => {
            one_line(&e.to_string())
        }
        ("refuse-drm", Err(e @ VaultError::UnsupportedSource { .. })) => {
            let m = e.to_string();
            let named = row.notes["drm"].split(',').all(|d| m.contains(d));
            if !(m.contains("DRM") && named) {
                return Err(format!("does not name every DRM system of {}: {m}", row.notes["drm"]));
            }
            one_line(&m)
        }
        ("malformed", Err(e @ VaultError::BadSource { .. })) => one_line(&e.to_string()),
        (class, got) => Err(format!("expected {class}, got {got:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_dash_manifest_is_listed_faithfully_or_refused_in_one_typed_line() {
    let origin = Origin::start(corpus()).await;
    let tv = test_vault(|_| {}).await;
    let rows = dash_expectations();
    let mut files: Vec<_> = std::fs::read_dir(corpus().join("dash")).unwrap().map(|e| e.unwrap().file_name()).collect();
    files.sort();
    assert_eq!(files.len(), 33);
    assert_eq!(rows.len(), files.len(), "dash-expect.tsv has a row for every MPD");
    let mut failures = Vec::new();
    for row in &rows {
        let got = tokio::time::timeout(Duration::from_secs(10), tv.vault.prepare(&origin.url(&row.file), &[]))
            .await
            .unwrap_or_else(|_| panic!("{}: prepare did not finish in 10 s", row.file));
        if let Err(why) = check_dash(row, got) {
            failures.push(format!("{}: {why}", row.file));
        }
    }
    assert!(failures.is_empty(), "{} of {} MPDs:\n{}", failures.len(), rows.len(), failures.join("\n"));
    assert!(rows.iter().filter(|r| r.class == "static").count() >= 15);
    // A DRM-protected MPD is refused before anything is stored.
    let downloaded = tv.vault.download(vodvault_core::DownloadRequest::new(
        &origin.url("dash/emarsden__dash-mpd-rs__tests_fixtures_jurassic-compact-5975.mpd"),
    ));
    assert!(matches!(downloaded.await, Err(VaultError::UnsupportedSource { .. })));
    assert!(tv.vault.assets().await.unwrap().is_empty(), "prepare stores nothing");
    assert!(tv.files_under_assets().is_empty());
}
