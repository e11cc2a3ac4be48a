//! ApsaraVideo VOD credentials end to end: what the app's provider is asked and when, tokens for
//! a key service, credentials that expire or are refused, providers that hang or are slow, and a
//! fake VOD as strict about signatures as VOD.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vodvault_core::testing::V3Request;
use vodvault_core::{
    AssetState, Credentials, CredentialsProvider, CredentialsReason, DownloadRequest, FailureReason, ImageKind, Mode,
    SignatureMethod, VaultError,
};
use vodvault_tests::origin::Fault;
use vodvault_tests::vod::FakeVod;
use vodvault_tests::vod_app::{Sts, request, setup};
use vodvault_tests::{plain, raw_http, wait};

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
async fn credentials_expiring_mid_download_are_renewed_and_the_download_continues() {
    // URLs live 2 s, STS credentials 3 s; the download takes about 6 s.
    let s = setup(SignatureMethod::V3, |_| {}).await;
    s.vod.cap_url_ttl(Duration::from_secs(2));
    let sts = Sts::with(&s.vod, Duration::from_secs(3), true);
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
