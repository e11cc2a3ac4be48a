//! The catalog's schema history: a catalog written by every released schema opens with the
//! current code and keeps every field; and the catalog operations the engine relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use super::{Catalog, DoneSegment, MIGRATOR};
use crate::model::{AssetKind, AssetState, ImageKind, Mode, RenditionRole, SegmentKind};

async fn raw_pool(path: &std::path::Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true).foreign_keys(true);
    sqlx::SqlitePool::connect_with(opts).await.unwrap()
}

/// Checks the data of `data-v1.sql` through the current API.
async fn assert_v1_data(catalog: &Catalog) {
    assert_eq!(catalog.meta("key_id").await.unwrap().as_deref(), Some("0123456789abcdef"));
    let a = catalog.asset("aaaaaaaaaaaaaaaa").await.unwrap().unwrap();
    assert_eq!((a.kind, a.mode, a.state), (AssetKind::Hls, Mode::Encrypted, AssetState::Failed));
    assert_eq!(a.title.as_deref(), Some("Film"));
    assert_eq!(a.metadata.as_deref(), Some("{\"season\":1}"));
    assert_eq!(a.headers.as_deref(), Some(&[0x00, 0x11, 0x22, 0x33][..]));
    assert_eq!((a.bytes_expected, a.expected_exact, a.bytes_done), (Some(300_000), false, 200_000));
    assert_eq!((a.segments_total, a.segments_done), (3, 2));
    assert!(a.failure.unwrap().contains("video segment 2"));
    assert_eq!(a.key_id.as_deref(), Some("0123456789abcdef"));
    assert_eq!(a.source_url, "https://cdn.example.com/v/master.m3u8?auth_key=1-2-3");
    let r = catalog.renditions(&a.id).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, RenditionRole::Video);
    assert_eq!(r[0].playlist.as_deref(), Some("#EXTM3U\\n#EXT-X-ENDLIST\\n"));
    let s = catalog.segments(&a.id).await.unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].kind, SegmentKind::Init, "init sections come first");
    assert_eq!(s[0].range, Some((0, 700)));
    assert_eq!(s.iter().filter(|x| x.done).count(), 2);
    assert_eq!(s[2].msn, Some(101));
    let b = catalog.asset("bbbbbbbbbbbbbbbb").await.unwrap().unwrap();
    assert_eq!(
        (b.kind, b.state, b.entry.as_deref()),
        (AssetKind::Progressive, AssetState::Completed, Some("media.mp4"))
    );
    assert_eq!(catalog.renditions(&b.id).await.unwrap()[0].validator.as_deref(), Some("\"etag-1\""));
    assert_eq!(catalog.segments(&b.id).await.unwrap()[0].sha256.as_deref(), Some("deadbeef"));
}

#[tokio::test]
async fn every_released_schema_upgrades_to_the_current_one_intact() {
    let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(versions[0], 1);
    for &v in &versions {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let pool = raw_pool(&path).await;
        MIGRATOR.run_to(v, &pool).await.unwrap();
        // Data as schema v wrote it. Each new migration adds a data-v<N>.sql holding the same
        // assets as data-v1.sql (plus whatever the new schema adds), as schema N stores them; a
        // schema that stores rows as the one before it (indexes only) says `-- same rows as
        // data-v<M>.sql` on its first line instead of repeating them.
        let read = |v: i64| {
            std::fs::read_to_string(format!("{}/tests/catalog/data-v{v}.sql", env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_else(|_| panic!("tests/catalog/data-v{v}.sql is missing: add sample data for schema {v}"))
        };
        let mut data = read(v);
        if let Some(m) = data.lines().next().and_then(|l| l.strip_prefix("-- same rows as data-v")) {
            data = read(m.trim_end_matches(".sql").parse().expect("-- same rows as data-v<N>.sql"));
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(data)).execute(&pool).await.unwrap();
        pool.close().await;
        let catalog = Catalog::open(&path).await.unwrap();
        assert_v1_data(&catalog).await;
        // Schema 2: offline_until, absent before it.
        let b = catalog.asset("bbbbbbbbbbbbbbbb").await.unwrap().unwrap();
        assert_eq!(b.offline_until, (v >= 2).then_some(1_900_000_000_000), "schema {v}");
        // Schema 3: VOD identity and images.
        assert_eq!(b.vod.is_some(), v >= 3, "schema {v}");
        let images = catalog.images(&b.id).await.unwrap();
        assert_eq!(images.len(), usize::from(v >= 3) + usize::from(v >= 4), "schema {v}");
        if let Some(i) = images.first() {
            assert_eq!(
                (i.kind, i.idx, i.file.as_str(), i.size, i.done, i.failure.as_deref()),
                (ImageKind::Cover, 1, "images/cover.jpg", Some(900), true, None)
            );
        }
        // Schema 4: a rendition's variables, and an image recorded as missing.
        let r = catalog.renditions("aaaaaaaaaaaaaaaa").await.unwrap();
        assert_eq!(r[0].variables.as_deref(), (v >= 4).then_some("{\"token\":\"abc\"}"), "schema {v}");
        if let Some(i) = images.get(1) {
            assert_eq!((i.kind, i.done), (ImageKind::Snapshot, false));
            assert!(i.failure.as_deref().is_some_and(|f| f.contains("404")), "schema {v}");
        }
        // Schema 5: the pieces of a progressive file fetched in byte ranges.
        let pieces = catalog.segments(&b.id).await.unwrap()[0].pieces.clone();
        assert_eq!(pieces.is_some_and(|p| p.contains("\"done\":[0,1]")), v >= 5, "schema {v}");
        // Schema 6: DASH assets; the rebuilt assets table kept every row that refers to it.
        let dash = catalog.asset("cccccccccccccccc").await.unwrap();
        assert_eq!(dash.map(|d| d.kind), (v >= 6).then_some(AssetKind::Dash), "schema {v}");
        assert_eq!(catalog.renditions(&b.id).await.unwrap().len(), 1, "schema {v}");
        catalog.close().await;
        // Opening again is a no-op.
        let catalog = Catalog::open(&path).await.unwrap();
        assert_v1_data(&catalog).await;
        catalog.close().await;
    }
}

#[tokio::test]
async fn commits_transitions_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    let pool = raw_pool(&path).await;
    MIGRATOR.run(&pool).await.unwrap();
    let data = std::fs::read_to_string(format!("{}/tests/catalog/data-v1.sql", env!("CARGO_MANIFEST_DIR"))).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(data)).execute(&pool).await.unwrap();
    pool.close().await;
    let c = Catalog::open(&path).await.unwrap();
    let id = "aaaaaaaaaaaaaaaa";
    // Compare-and-set transitions.
    assert!(!c.transition(id, &[AssetState::Queued], AssetState::Downloading, None).await.unwrap());
    assert!(c.transition(id, &[AssetState::Failed], AssetState::Queued, None).await.unwrap());
    assert_eq!(c.asset(id).await.unwrap().unwrap().failure, None, "a transition clears the failure");
    // Committing recomputes the counters from the rows.
    c.commit_segments(
        id,
        &[DoneSegment { rendition: 0, kind: SegmentKind::Media, idx: 1, size: 50_000, sha256: None }],
    )
    .await
    .unwrap();
    let a = c.asset(id).await.unwrap().unwrap();
    assert_eq!((a.segments_done, a.bytes_done), (3, 250_000));
    c.reset_segments(id).await.unwrap();
    let a = c.asset(id).await.unwrap().unwrap();
    assert_eq!((a.segments_done, a.bytes_done), (0, 0));
    assert!(c.segments(id).await.unwrap().iter().all(|s| !s.done && s.size.is_none()));
    // Deleting an asset deletes its renditions and segments.
    c.delete_asset(id).await.unwrap();
    assert!(c.asset(id).await.unwrap().is_none());
    assert!(c.segments(id).await.unwrap().is_empty());
    assert!(c.renditions(id).await.unwrap().is_empty());
    assert_eq!(c.assets().await.unwrap().len(), 1);
    c.close().await;
}

#[tokio::test]
async fn a_row_that_violates_the_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&dir.path().join("catalog.sqlite")).await.unwrap();
    let bad = sqlx::query("INSERT INTO assets (id, identity, kind, mode, source_url, request, state, created_at, updated_at) VALUES ('x', 'x', 'smooth', 'normal', 'u', '{}', 'queued', 0, 0)")
        .execute(&c.pool)
        .await;
    assert!(bad.is_err(), "kind is checked");
    let orphan = sqlx::query(
        "INSERT INTO segments (asset_id, rendition, kind, idx, uri, file) VALUES ('nope', 0, 'media', 0, 'u', 'f')",
    )
    .execute(&c.pool)
    .await;
    assert!(orphan.is_err(), "foreign keys are on");
    c.close().await;
}

/// Two processes (here: two catalogs on one file, each with its own writer lock) move the same
/// asset out of `queued` at once, one to `downloading`, one to `paused`: exactly one of them may
/// say it did, and the row ends in that one's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_lost_to_another_process_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    let pool = raw_pool(&path).await;
    MIGRATOR.run(&pool).await.unwrap();
    let data = std::fs::read_to_string(format!("{}/tests/catalog/data-v1.sql", env!("CARGO_MANIFEST_DIR"))).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(data)).execute(&pool).await.unwrap();
    pool.close().await;
    let a = std::sync::Arc::new(Catalog::open(&path).await.unwrap());
    let b = std::sync::Arc::new(Catalog::open(&path).await.unwrap());
    let id = "aaaaaaaaaaaaaaaa";
    for round in 0..300 {
        a.set_state(id, AssetState::Queued, None).await.unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let (a2, s2) = (std::sync::Arc::clone(&a), std::sync::Arc::clone(&start));
        let one = tokio::spawn(async move {
            s2.wait().await;
            a2.transition(id, &[AssetState::Queued], AssetState::Downloading, None).await.unwrap()
        });
        let (b2, s3) = (std::sync::Arc::clone(&b), std::sync::Arc::clone(&start));
        let two = tokio::spawn(async move {
            s3.wait().await;
            b2.transition(id, &[AssetState::Queued], AssetState::Paused, None).await.unwrap()
        });
        let (one, two) = (one.await.unwrap(), two.await.unwrap());
        assert!(one ^ two, "round {round}: both or neither won ({one}, {two})");
        let now = a.state(id).await.unwrap().unwrap();
        assert_eq!(now, if one { AssetState::Downloading } else { AssetState::Paused }, "round {round}");
    }
    a.close().await;
    b.close().await;
}
