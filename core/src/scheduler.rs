//! The download queue: which queued assets run, and when. It owns every job task and its own
//! loop; the engine only runs a job and returns how it ended.
//!
//! The loop starts queued assets while there are free slots, and wakes when asked (a download,
//! a resume, a job ending) and once a second (for changes made by other processes).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::engine::{self, Deps, Outcome};
use crate::model::AssetState;

/// Which assets this process downloads.
#[derive(Debug)]
enum Scope {
    /// Everything queued (`autostart`).
    All,
    /// Only these (asked for by this process).
    Only(HashSet<String>),
}

/// A running job: its task, and a number telling it apart from a later job of the same asset.
struct Job {
    run: u64,
    task: JoinHandle<()>,
    /// Fetching only what players ask for, of a paused or failed asset (takes no slot).
    for_players: bool,
}

struct State {
    jobs: HashMap<String, Job>,
    scope: Scope,
    /// Assets a player is waiting for: started before the rest of the queue.
    preferred: Vec<String>,
    runs: u64,
    closed: bool,
}

struct Shared {
    deps: Arc<Deps>,
    max_parallel: usize,
    state: Mutex<State>,
    wake: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The vault's queue. Dropping it stops its loop and aborts its jobs; [`Scheduler::close`] does
/// the same in order and waits.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    /// Starts the loop. With `autostart`, every queued asset runs; otherwise only those
    /// [`Scheduler::want`]ed.
    pub(crate) fn start(deps: Arc<Deps>, max_parallel: usize, autostart: bool) -> Self {
        let scope = if autostart { Scope::All } else { Scope::Only(HashSet::new()) };
        let shared = Arc::new(Shared {
            deps,
            max_parallel: max_parallel.max(1),
            state: Mutex::new(State { jobs: HashMap::new(), scope, preferred: Vec::new(), runs: 0, closed: false }),
            wake: Notify::new(),
        });
        let task = tokio::spawn(run_loop(Arc::clone(&shared)));
        Self { shared, task: Mutex::new(Some(task)) }
    }

    /// Asks for `id` to run in this process as soon as a slot is free (if it is queued).
    pub(crate) fn want(&self, id: &str) {
        if let Scope::Only(set) = &mut self.shared.state().scope {
            set.insert(id.to_owned());
        }
        self.shared.wake.notify_one();
    }

    /// As [`Scheduler::want`], ahead of every other queued asset (a player is waiting for it).
    pub(crate) fn prefer(&self, id: &str) {
        {
            let mut state = self.shared.state();
            if !state.preferred.iter().any(|p| p == id) {
                state.preferred.push(id.to_owned());
            }
        }
        self.want(id);
    }

    /// Stops `id`'s job in this process, if it runs here, and waits until its task is gone.
    /// Blocking work the job started keeps the asset's lock until it is done (see
    /// `engine::lock`): wait for the lock before touching the asset's files.
    pub(crate) async fn stop(&self, id: &str) {
        let job = self.shared.state().jobs.remove(id);
        if let Some(job) = job {
            job.task.abort();
            let _ = job.task.await;
        }
    }

    /// Stops the loop, then every job (each is queued again, to continue next time), and waits
    /// for all of them, their blocking work included.
    pub(crate) async fn close(&self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let jobs: Vec<(String, Job)> = self.shared.state().jobs.drain().collect();
        let deps = &self.shared.deps;
        for (id, job) in jobs {
            job.task.abort();
            let _ = job.task.await;
            // Its blocking tasks (a piece being synced) end on their own, holding the lock.
            if engine::wait_unlocked(deps, &id).await.is_err() {
                tracing::warn!(asset = %id, "closing: the download's file work did not end within 15 s");
            }
            if let Err(e) = deps.catalog.transition(&id, &[AssetState::Downloading], AssetState::Queued, None).await {
                tracing::warn!(asset = %id, "closing: could not queue the download again: {e}");
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.closed = true;
        for (_, job) in state.jobs.drain() {
            job.task.abort();
        }
        drop(state);
        if let Some(task) = self.task.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

async fn run_loop(shared: Arc<Shared>) {
    loop {
        if shared.state().closed {
            return;
        }
        match shared.deps.catalog.ids_in_state(AssetState::Queued).await {
            Ok(queued) => start_jobs(&shared, queued),
            Err(e) => tracing::warn!("scheduler: reading the queue: {e}"),
        }
        // A permit stored by `notify_one` while this pass ran is not lost.
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()) => {}
            ids = shared.deps.live.wanted_assets() => {
                for id in ids {
                    serve_players(&shared, id).await;
                }
            }
        }
    }
}

/// A player asked for a piece of `id` that is not stored: a queued asset starts (ahead of the
/// queue); a paused or failed one fetches what players ask for, and only that.
async fn serve_players(shared: &Arc<Shared>, id: String) {
    let state = match shared.deps.catalog.state(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(asset = %id, "scheduler: {e}");
            return;
        }
    };
    let mut st = shared.state();
    if st.closed || st.jobs.get(&id).is_some_and(|j| !j.task.is_finished()) {
        return;
    }
    match state {
        AssetState::Queued => {
            if let Scope::Only(set) = &mut st.scope {
                set.insert(id.clone());
            }
            if !st.preferred.contains(&id) {
                st.preferred.push(id);
            }
            drop(st);
            shared.wake.notify_one();
        }
        AssetState::Paused | AssetState::Failed => {
            st.runs += 1;
            let run = st.runs;
            let task = spawn_job(shared, id.clone(), run, true);
            st.jobs.insert(id, Job { run, task, for_players: true });
        }
        _ => {}
    }
}

/// Runs `id`'s job (a download, or fetching for players), then forgets it and wakes the loop.
fn spawn_job(shared: &Arc<Shared>, id: String, run: u64, for_players: bool) -> JoinHandle<()> {
    let job_shared = Arc::clone(shared);
    tokio::spawn(async move {
        let outcome = if for_players {
            engine::run_for_players(Arc::clone(&job_shared.deps), id.clone()).await
        } else {
            engine::run_job(Arc::clone(&job_shared.deps), id.clone()).await
        };
        match outcome {
            Outcome::Completed => tracing::debug!(asset = %id, "job completed"),
            Outcome::Failed(reason) => tracing::debug!(asset = %id, "job failed: {reason}"),
            Outcome::Stopped => tracing::debug!(asset = %id, "job stopped"),
        }
        let mut state = job_shared.state();
        if state.jobs.get(&id).is_some_and(|j| j.run == run) {
            state.jobs.remove(&id);
        }
        drop(state);
        job_shared.wake.notify_one();
    })
}

fn start_jobs(shared: &Arc<Shared>, mut queued: Vec<String>) {
    let mut state = shared.state();
    if state.closed {
        return;
    }
    state.jobs.retain(|_, j| !j.task.is_finished());
    // Preferred assets first; a preference lasts until the asset is no longer queued.
    let preferred = std::mem::take(&mut state.preferred);
    state.preferred = preferred.into_iter().filter(|p| queued.contains(p) && !state.jobs.contains_key(p)).collect();
    queued.sort_by_key(|id| !state.preferred.contains(id));
    for id in queued {
        // A player waiting for an asset does not wait for a free slot.
        let running = state.jobs.values().filter(|j| !j.for_players).count();
        if running >= shared.max_parallel && !state.preferred.contains(&id) {
            break;
        }
        let wanted = match &state.scope {
            Scope::All => true,
            Scope::Only(set) => set.contains(&id),
        };
        if !wanted || state.jobs.contains_key(&id) {
            continue;
        }
        state.runs += 1;
        let run = state.runs;
        let task = spawn_job(shared, id.clone(), run, false);
        state.jobs.insert(id, Job { run, task, for_players: false });
    }
}
