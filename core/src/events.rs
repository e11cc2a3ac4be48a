//! Where a vault's events go: one broadcast channel, to every subscriber (the app's listeners,
//! `Vault::wait`). Senders never block; a subscriber that falls behind is told it lagged.

use tokio::sync::broadcast;

use crate::model::{AssetState, Event, FailureReason};

/// Events waiting for a slow subscriber before it lags.
const CAPACITY: usize = 1024;

/// The sending side of a vault's events. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Events(broadcast::Sender<Event>);

impl Events {
    pub(crate) fn new() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }

    /// Sends `event` to every subscriber (none: dropped).
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }

    /// An asset changed state.
    pub(crate) fn state(&self, id: &str, state: AssetState, failure: Option<FailureReason>) {
        self.emit(Event::State { id: id.to_owned(), state, failure });
    }

    /// Every event from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
