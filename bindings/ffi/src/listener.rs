//! Events for the app: a listener it implements, fed on a thread of its own, and the handle that
//! stops it.
//!
//! Each listener has its own thread, which waits for the vault's events and calls the listener
//! in order. A listener that blocks holds only that thread: never the runtime's, nor the
//! blocking pool the vault's file work runs on. A listener that falls so far behind that events
//! it had not received were dropped (more than the vault keeps for a slow listener) is told so
//! (`on_lagged`), then sent every asset's current state again: it never misses that a download
//! completed or failed.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use vodvault_core as core;

use crate::asset::{AssetImage, AssetState, DownloadProgress};
use crate::errors::FailureReason;
use crate::runtime::RUNTIME;

/// Receives the vault's events. Implemented by the app; called on a thread of its own, in order.
#[uniffi::export(foreign)]
pub trait VaultListener: Send + Sync {
    /// Download progress.
    fn on_progress(&self, progress: DownloadProgress);
    /// An asset changed state (`failure` set when it failed).
    fn on_state_changed(&self, asset_id: String, state: AssetState, failure: Option<FailureReason>);
    /// An asset was removed.
    fn on_removed(&self, asset_id: String);
    /// A stored file failed verification while being read or served.
    fn on_integrity_failure(&self, asset_id: String, file: String);
    /// An image of an asset could not be fetched; the asset completes without it (`image.missing`
    /// says why), and `resume` on the completed asset tries again.
    fn on_image_missing(&self, asset_id: String, image: AssetImage);
    /// The listener fell behind and `missed` events were dropped. Every asset's current state
    /// follows at once (`on_state_changed`); assets removed meanwhile are not in it (`assets()`
    /// lists what there is).
    fn on_lagged(&self, missed: u64);
    /// A piece a player asked for before the download had it was fetched first and stored
    /// (playing while downloading).
    fn on_fetched_for_playback(&self, asset_id: String, file: String);
}

/// Stops delivering events to a listener: on `cancel()` or when released. A call in progress on
/// the listener's thread is not interrupted; nothing is delivered after it.
#[derive(uniffi::Object)]
pub struct ListenerHandle(watch::Sender<bool>);

#[uniffi::export]
impl ListenerHandle {
    /// Stops delivery.
    pub fn cancel(&self) {
        let _ = self.0.send(true);
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Starts delivering `vault`'s events to `listener` on a thread of its own. The thread does not
/// keep the vault alive: when the app releases it, its events end and so does the thread.
pub(crate) fn start(vault: &Arc<crate::vault::Vault>, listener: Arc<dyn VaultListener>) -> Arc<ListenerHandle> {
    let mut rx = vault.0.subscribe();
    let vault: Weak<crate::vault::Vault> = Arc::downgrade(vault);
    let (stop, mut stopped) = watch::channel(false);
    let spawned = std::thread::Builder::new().name("vodvault-listener".into()).spawn(move || {
        loop {
            let next = RUNTIME.block_on(async {
                tokio::select! {
                    biased;
                    r = stopped.changed() => { let _ = r; None }
                    e = rx.recv() => Some(e),
                }
            });
            if *stopped.borrow() {
                return;
            }
            match next {
                None | Some(Err(RecvError::Closed)) => return,
                Some(Ok(event)) => deliver(&*listener, event),
                Some(Err(RecvError::Lagged(missed))) => {
                    tracing::warn!(
                        "a listener fell behind: {missed} events dropped; sending every asset's state again"
                    );
                    listener.on_lagged(missed);
                    let Some(v) = vault.upgrade() else { return };
                    let assets = RUNTIME.block_on(v.0.assets());
                    drop(v);
                    for a in assets.into_iter().flatten() {
                        listener.on_state_changed(a.id, a.state, a.failure);
                    }
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a listener thread: {e}");
    }
    Arc::new(ListenerHandle(stop))
}

fn deliver(l: &dyn VaultListener, event: core::Event) {
    match event {
        core::Event::Progress(p) => l.on_progress(p),
        core::Event::State { id, state, failure } => l.on_state_changed(id, state, failure),
        core::Event::Removed { id } => l.on_removed(id),
        core::Event::IntegrityFailed { id, file } => l.on_integrity_failure(id, file),
        core::Event::ImageMissing { id, kind, index, file, reason } => {
            let image = AssetImage { kind, index, file, stored: false, size: None, missing: Some(reason) };
            l.on_image_missing(id, image);
        }
        core::Event::FetchedForPlayback { id, file } => l.on_fetched_for_playback(id, file),
        core::Event::Restarted { .. } => {}
    }
}
