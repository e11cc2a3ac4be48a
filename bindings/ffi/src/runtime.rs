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

/// A thread of its own for one app hook (a URL refresher, a credentials provider): its calls
/// run there one at a time, never on the runtime's workers nor on the blocking pool the vault's
/// file work needs. A call that hangs holds this one thread; later calls wait behind it and are
/// timed out by the vault. The thread ends when the hook is replaced and its last call returns.
pub(crate) struct HookThread {
    calls: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl HookThread {
    pub(crate) fn new(name: &str) -> Self {
        let (calls, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let spawned = std::thread::Builder::new().name(format!("vodvault-{name}")).spawn(move || {
            while let Ok(call) = rx.recv() {
                // A call that panics loses its answer (the vault sees none), not the thread.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
            }
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start a thread for the app's {name}: {e}");
        }
        Self { calls }
    }

    /// Runs `f` on the hook's thread; `None` if it panicked or the thread is gone.
    pub(crate) async fn call<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.calls.send(Box::new(move || {
            let _ = tx.send(f());
        }));
        if sent.is_err() {
            return None;
        }
        rx.await.ok()
    }
}
