//! The crate's tokio runtime: every async export runs on it, so the vault's background work (the
//! download queue, the playback server) keeps running between calls, and dropping an exported
//! future (a cancelled Kotlin coroutine) aborts its work.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use crate::errors::VaultError;

pub(crate) static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vodvault")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("vodvault cannot start its runtime: {e}"))
});

/// A task on the crate's runtime that is aborted when its future is dropped.
pub(crate) struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Spawned<T> {
    type Output = Result<T, VaultError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|e| VaultError::Internal {
                details: if e.is_panic() { "a call panicked (a bug in vodvault)".into() } else { "cancelled".into() },
            })
        })
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `f` on the crate's runtime.
pub(crate) fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Spawned<T> {
    Spawned(RUNTIME.spawn(f))
}

/// Calls foreign code (an app's hook, which may block or hang) on a thread of its own, never on
/// the runtime's workers nor its blocking pool (which the vault's file work needs): a hook that
/// hangs holds only its own thread. `None` if the call panicked.
pub(crate) async fn foreign<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(format!("vodvault-{name}")).spawn(move || {
        let _ = tx.send(f());
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread for the app's {name}: {e}");
        return None;
    }
    rx.await.ok()
}
