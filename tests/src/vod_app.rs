//! The app's side of the VOD tests: an STS credentials provider backed by the fake VOD, and a
//! vault pointed at the fake.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vodvault_core::{
    Credentials, CredentialsProvider, CredentialsReason, DownloadRequest, Mode, SignatureMethod, VodRequest,
};

use crate::origin::Origin;
use crate::vod::FakeVod;
use crate::{TestVault, fixtures, test_vault};

/// Hands out STS credentials from the fake, recording why it was asked. With `keep`, a URL
/// expiry keeps the current credentials (returns `None`).
pub struct Sts {
    vod: Arc<FakeVod>,
    ttl: Duration,
    keep_on_url_expiry: bool,
    reasons: Mutex<Vec<CredentialsReason>>,
}

impl Sts {
    /// Credentials that live `ttl`, new ones at every question.
    pub fn new(vod: &Arc<FakeVod>, ttl: Duration) -> Arc<Self> {
        Self::with(vod, ttl, false)
    }

    /// Credentials that live `ttl`; with `keep_on_url_expiry`, a URL expiry keeps the current ones.
    pub fn with(vod: &Arc<FakeVod>, ttl: Duration, keep_on_url_expiry: bool) -> Arc<Self> {
        Arc::new(Self { vod: Arc::clone(vod), ttl, keep_on_url_expiry, reasons: Mutex::new(Vec::new()) })
    }

    /// Why it was asked, in order.
    pub fn reasons(&self) -> Vec<CredentialsReason> {
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

/// The secret of the CDN's type-A URL signing.
pub const CDN_KEY: &str = "cdn-type-a-key";

/// A VOD test's world.
pub struct Setup {
    /// The CDN origin (type-A signing on).
    pub origin: Arc<Origin>,
    /// The fake VOD API.
    pub vod: Arc<FakeVod>,
    /// The vault.
    pub tv: TestVault,
    /// The app's credentials provider.
    pub sts: Arc<Sts>,
}

/// The test origin (type-A signing on), the fake VOD with the videos the tests use, a vault
/// pointed at it with `signature`, and an STS provider.
pub async fn setup(signature: SignatureMethod, tune: impl FnOnce(&mut vodvault_core::VaultConfig)) -> Setup {
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

/// A VOD download request for `video` in `mode`, tuned.
pub fn request(video: &str, mode: Mode, tune: impl FnOnce(&mut VodRequest)) -> DownloadRequest {
    let mut r = DownloadRequest::vod(video);
    r.mode = mode;
    tune(r.vod.as_mut().unwrap());
    r
}
