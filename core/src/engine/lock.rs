//! One job per asset, across processes: a lock file per asset (D14), held by the job and by every
//! blocking task it starts.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Ctx, Deps};
use crate::error::{Error, Result};
use crate::store::Layout;

/// A job's hold on its asset: the lock file (one process per asset, D14), shared with every
/// blocking task the job starts, so that the asset stays locked until the last of them is done
/// (even when the job itself is aborted), and counted, so that the job can wait for them before
/// it starts over or returns. No piece writer outlives its job's hold.
pub(super) struct Hold {
    _lock: File,
    busy: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}
/// A blocking task's share of its job's [`Hold`].
pub(super) struct Ticket(Arc<Hold>);
impl Hold {
    /// Takes the asset's lock (on a blocking thread); `None` when another job (here or in
    /// another process) holds it.
    pub(super) async fn acquire(deps: &Deps, id: &str) -> std::io::Result<Option<Arc<Self>>> {
        let path = deps.layout.lock_file(id);
        tokio::task::spawn_blocking(move || Self::take(&path)).await.map_err(std::io::Error::other)?
    }

    fn take(path: &std::path::Path) -> std::io::Result<Option<Arc<Self>>> {
        let lock = File::options().create(true).truncate(false).write(true).open(path)?;
        if lock.try_lock().is_err() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self { _lock: lock, busy: Default::default(), idle: tokio::sync::Notify::new() })))
    }

    pub(super) fn ticket(self: &Arc<Self>) -> Ticket {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Ticket(Arc::clone(self))
    }

    /// Waits until no blocking task of the job is running.
    pub(super) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
/// Runs `f` on the blocking pool under the job's hold.
pub(super) fn blocking<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let ticket = ctx.hold.ticket();
    tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        f()
    })
}

/// Whether a job holds the asset's lock, in this process or another (flock locks are per open
/// file, so this process's own jobs count too). Never creates a lock file: an asset without one
/// was never locked.
pub(crate) fn is_locked(layout: &Layout, id: &str) -> bool {
    match File::options().write(true).open(layout.lock_file(id)) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// How long [`wait_unlocked`] waits for a job to let go of its asset.
const UNLOCK_WAIT: Duration = Duration::from_secs(15);

/// Waits until no job holds the asset's lock (a stopped job's blocking writers finishing, a job in
/// another process noticing the asset's new state).
///
/// # Errors
/// [`Error::Busy`] if a job still holds it after 15 s: its files must not be touched.
pub(crate) async fn wait_unlocked(deps: &Deps, id: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + UNLOCK_WAIT;
    loop {
        let layout = deps.layout.clone();
        let owned = id.to_owned();
        let locked = tokio::task::spawn_blocking(move || is_locked(&layout, &owned)).await.unwrap_or(true);
        if !locked {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Busy(id.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
