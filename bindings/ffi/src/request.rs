//! What to download, and the hook that supplies fresh URLs when signed ones expire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use vodvault_core as core;

use crate::asset::TimeRange;
use crate::conditions::Requirements;
use crate::config::{HttpHeader, headers};
use crate::errors::{Result, VaultError};
use crate::rules::TrackRules;
use crate::runtime::HookThread;
use crate::vod::VodOptions;

/// How an asset is stored.
pub type StorageMode = core::Mode;

/// How an asset is stored.
#[uniffi::remote(Enum)]
pub enum StorageMode {
    /// Plain files and a local playlist any player can open.
    Normal,
    /// Every byte sealed for this app only.
    Encrypted,
}

/// Which audio renditions to download with an HLS variant.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum AudioSelection {
    /// The variant's default audio.
    Default,
    /// Every audio rendition of the variant.
    All,
    /// Those in these languages.
    Languages {
        /// BCP 47 tags, e.g. `en`.
        languages: Vec<String>,
    },
    /// None.
    None,
}

/// Which subtitle renditions to download with an HLS variant.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SubtitleSelection {
    /// Every subtitle rendition of the variant.
    All,
    /// Those in these languages.
    Languages {
        /// BCP 47 tags.
        languages: Vec<String>,
    },
    /// None.
    None,
}

/// What to download. `Debug` leaves out the URL's query (signatures) and header values.
#[derive(uniffi::Record)]
pub struct DownloadRequest {
    /// HLS playlist or progressive file URL, or `vod:<VideoId>`.
    pub url: String,
    /// Storage mode.
    pub mode: StorageMode,
    /// `best`, `worst`, a height (`720p`) or a bandwidth ceiling (`800k`).
    #[uniffi(default = "best")]
    pub quality: String,
    /// Audio renditions (`null`: the variant's default audio).
    #[uniffi(default = None)]
    pub audio: Option<AudioSelection>,
    /// Subtitle renditions (`null`: all of them).
    #[uniffi(default = None)]
    pub subtitles: Option<SubtitleSelection>,
    /// Headers for every request of this asset (stored sealed).
    #[uniffi(default = [])]
    pub headers: Vec<HttpHeader>,
    /// Display title.
    #[uniffi(default = None)]
    pub title: Option<String>,
    /// The app's own data, returned as is.
    #[uniffi(default = None)]
    pub metadata: Option<String>,
    /// A stable identity chosen by the app (e.g. a video id) instead of the URL.
    #[uniffi(default = None)]
    pub identity: Option<String>,
    /// Concurrent requests for this asset.
    #[uniffi(default = None)]
    pub parallel: Option<u32>,
    /// Playable offline only until this time (Unix ms).
    #[uniffi(default = None)]
    pub offline_until_ms: Option<i64>,
    /// For `vod:<VideoId>` URLs: definition, format, source file, images.
    #[uniffi(default = None)]
    pub vod: Option<VodOptions>,
    /// What this download requires of the device, replacing the vault's (null: the vault's).
    #[uniffi(default = None)]
    pub requirements: Option<Requirements>,
    /// What the device decodes and the user's languages (null: `quality`, `audio` and
    /// `subtitles` alone).
    #[uniffi(default = None)]
    pub rules: Option<TrackRules>,
    /// Only this part of an HLS stream (the segments overlapping it); null: all of it.
    #[uniffi(default = None)]
    pub range: Option<TimeRange>,
}

impl std::fmt::Debug for DownloadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadRequest")
            .field("url", &self.url.split(['?', '#']).next().unwrap_or(""))
            .field("mode", &self.mode)
            .field("quality", &self.quality)
            .field("headers", &self.headers)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

impl TryFrom<DownloadRequest> for core::DownloadRequest {
    type Error = VaultError;
    fn try_from(r: DownloadRequest) -> Result<Self> {
        let mut c = core::DownloadRequest::new(&r.url);
        c.mode = r.mode;
        c.quality = r.quality.parse().map_err(|details| VaultError::InvalidRequest { details })?;
        c.audio = match r.audio.unwrap_or(AudioSelection::Default) {
            AudioSelection::Default => core::AudioChoice::Default,
            AudioSelection::All => core::AudioChoice::All,
            AudioSelection::Languages { languages } => core::AudioChoice::Languages(languages),
            AudioSelection::None => core::AudioChoice::None,
        };
        c.subtitles = match r.subtitles.unwrap_or(SubtitleSelection::All) {
            SubtitleSelection::All => core::SubtitleChoice::All,
            SubtitleSelection::Languages { languages } => core::SubtitleChoice::Languages(languages),
            SubtitleSelection::None => core::SubtitleChoice::None,
        };
        c.headers = headers(r.headers);
        c.title = r.title;
        c.metadata = r.metadata;
        c.identity = r.identity;
        c.parallel = r.parallel.map(|p| p as usize);
        c.offline_until = r.offline_until_ms;
        c.requirements = r.requirements.map(Into::into);
        c.range = r.range;
        c.rules = r.rules.map(Into::into);
        if let Some(v) = r.vod {
            let video_id = core::parse_vod_source(&r.url)
                .ok_or_else(|| VaultError::InvalidRequest { details: "VOD options need a vod:<VideoId> URL".into() })?;
            c.vod = Some(v.into_core(video_id));
        }
        Ok(c)
    }
}

/// What the refresh hook is asked.
pub type RefreshRequest = core::RefreshRequest;

/// What the refresh hook is asked.
#[uniffi::remote(Record)]
pub struct RefreshRequest {
    /// The asset.
    pub asset_id: String,
    /// The expired source URL.
    pub source_url: String,
    /// The status that reported it (401, 403 or 410).
    pub status: u16,
    /// The asset's title.
    pub title: Option<String>,
}

/// Supplies a fresh source URL when a signed one expires. Implemented by the app; called on a
/// thread of its own (it may block, e.g. to ask the app's backend, for up to 60 s). Return
/// `null`/`nil`/`None` to give up: the asset then fails with `UrlExpired`.
#[uniffi::export(foreign)]
pub trait UrlRefresher: Send + Sync {
    /// A fresh URL for the same content.
    fn refresh_url(&self, request: RefreshRequest) -> Option<String>;
}

/// The app's refresher as core calls it: on a thread of its own.
pub(crate) struct Refresher {
    hook: Arc<dyn UrlRefresher>,
    thread: HookThread,
}

impl Refresher {
    pub(crate) fn new(hook: Arc<dyn UrlRefresher>) -> Self {
        Self { hook, thread: HookThread::new("refresher") }
    }
}

impl core::UrlRefresher for Refresher {
    fn refresh(&self, r: core::RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        let hook = Arc::clone(&self.hook);
        Box::pin(async move { self.thread.call(move || hook.refresh_url(r)).await.flatten() })
    }
}
