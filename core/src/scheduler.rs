//! The download queue: which queued assets run, and when. It owns every job task and its own
//! loop; the engine only runs a job and returns how it ended.
//!
//! The loop starts queued assets while there are free slots, and wakes when asked (a download,
//! a resume, a job ending, new conditions) and once a second (for changes made by other
//! processes), four times a second while downloads run (to measure free space).
//!
//! It is also the gate: a queued asset whose requirements the device does not meet (the app's
//! conditions, free space, the vault's quota) is not started and is reported as waiting, and a
//! running download that stops meeting them is held back: it takes no new piece, the pieces
//! under way get [`HOLD_GRACE`] to finish and be recorded, then the rest are aborted and the asset
//! is queued again. It starts by itself once they are met.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::engine::{self, Deps, Outcome};
use crate::model::{AssetState, Conditions, DownloadRequest, KeepFree, Requirements, Space, WaitReason, wait_reason};
use crate::store;

/// How long a download held back may finish the pieces under way before they are aborted.
pub(crate) const HOLD_GRACE: Duration = Duration::from_millis(700);

/// What the app said about the device and what downloads require of it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gate {
    pub(crate) conditions: Conditions,
    /// The vault's requirements (a download's own replace them).
    pub(crate) requirements: Requirements,
    /// Bytes the vault's assets may store in all.
    pub(crate) quota: Option<u64>,
}

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
    /// Set to hold the download back (see `engine::run_job`).
    drain: Arc<AtomicBool>,
}

struct State {
    jobs: HashMap<String, Job>,
    scope: Scope,
    /// Assets a player is waiting for: started before the rest of the queue.
    preferred: Vec<String>,
    runs: u64,
    closed: bool,
    gate: Gate,
    /// Queued assets held back, and why.
    waiting: HashMap<String, WaitReason>,
    /// Each candidate asset's own requirements (read once from its request).
    own: HashMap<String, Option<Requirements>>,
    /// Downloads being held back: the task doing it, and the download's own task.
    holding: HashMap<String, Holding>,
}

/// A download being held back (see [`hold`]).
struct Holding {
    task: JoinHandle<()>,
    job: tokio::task::AbortHandle,
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
    pub(crate) fn start(deps: Arc<Deps>, max_parallel: usize, autostart: bool, gate: Gate) -> Self {
        let scope = if autostart { Scope::All } else { Scope::Only(HashSet::new()) };
        let state = State {
            jobs: HashMap::new(),
            scope,
            preferred: Vec::new(),
            runs: 0,
            closed: false,
            gate,
            waiting: HashMap::new(),
            own: HashMap::new(),
            holding: HashMap::new(),
        };
        let shared =
            Arc::new(Shared { deps, max_parallel: max_parallel.max(1), state: Mutex::new(state), wake: Notify::new() });
        let task = tokio::spawn(run_loop(Arc::clone(&shared)));
        Self { shared, task: Mutex::new(Some(task)) }
    }

    /// What the gate says now.
    pub(crate) fn gate(&self) -> Gate {
        self.shared.state().gate
    }

    /// Changes the gate and applies it at once: downloads it holds back stop taking pieces now,
    /// those it lets through start.
    pub(crate) fn set_gate(&self, change: impl FnOnce(&mut Gate)) {
        change(&mut self.shared.state().gate);
        self.shared.wake.notify_one();
    }

    /// Forgets what `id` requires of its own (it changed) and applies the gate again.
    pub(crate) fn requirements_changed(&self, id: &str) {
        self.shared.state().own.remove(id);
        self.shared.wake.notify_one();
    }

    /// Why `id` waits, if it is a queued asset held back.
    pub(crate) fn waiting(&self, id: &str) -> Option<WaitReason> {
        self.shared.state().waiting.get(id).copied()
    }

    /// What a download with these requirements (or the vault's) keeps free, and the quota.
    pub(crate) fn limits(&self, own: Option<&Requirements>) -> (KeepFree, Option<u64>) {
        let gate = self.gate();
        (own.unwrap_or(&gate.requirements).keep_free, gate.quota)
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
        let (job, holding) = {
            let mut st = self.shared.state();
            (st.jobs.remove(id), st.holding.remove(id))
        };
        if let Some(job) = job {
            job.task.abort();
            let _ = job.task.await;
        }
        if let Some(h) = holding {
            h.job.abort();
            let _ = h.task.await;
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
        let holding: Vec<Holding> = self.shared.state().holding.drain().map(|(_, h)| h).collect();
        for h in holding {
            let _ = h.task.await;
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
        for (_, h) in state.holding.drain() {
            h.job.abort();
            h.task.abort();
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
        match shared.deps.catalog.queued().await {
            Ok(queued) => {
                let (startable, held) = gate(&shared, queued).await;
                start_jobs(&shared, startable);
                for (id, job, reason) in held {
                    hold(&shared, id, job, reason);
                }
            }
            Err(e) => tracing::warn!("scheduler: reading the queue: {e}"),
        }
        // A permit stored by `notify_one` while this pass ran is not lost.
        tokio::select! {
            _ = tokio::time::timeout(pass_interval(&shared), shared.wake.notified()) => {}
            ids = shared.deps.live.wanted_assets() => {
                for id in ids {
                    serve_players(&shared, id).await;
                }
            }
        }
    }
}

/// How long until the next pass: free space is measured four times a second while downloads
/// run (a fast download fills a volume quickly), once a second otherwise.
fn pass_interval(shared: &Shared) -> Duration {
    if shared.state().jobs.values().any(|j| !j.for_players) { PASS_DOWNLOADING } else { Duration::from_secs(1) }
}
const PASS_DOWNLOADING: Duration = Duration::from_millis(250);

/// Applies the gate to the queued assets this process would run (id, bytes still expected) and
/// to its running downloads: returns the queued ones it lets through, and the running jobs it
/// holds back (taken out of the jobs) with why. Reports every change of an asset's waiting reason.
async fn gate(
    shared: &Arc<Shared>,
    queued: Vec<(String, Option<u64>)>,
) -> (Vec<String>, Vec<(String, Job, WaitReason)>) {
    let queued_ids: Vec<String> = queued.iter().map(|(id, _)| id.clone()).collect();
    let (gate, candidates, unknown) = {
        let st = shared.state();
        let mut candidates: Vec<String> = queued_ids
            .iter()
            .filter(|id| !st.holding.contains_key(*id))
            .filter(|id| match &st.scope {
                Scope::All => true,
                Scope::Only(set) => set.contains(*id),
            })
            .cloned()
            .collect();
        candidates.extend(
            st.jobs.iter().filter(|(id, j)| !j.for_players && !queued_ids.contains(id)).map(|(id, _)| id.clone()),
        );
        let unknown: Vec<String> = candidates.iter().filter(|id| !st.own.contains_key(*id)).cloned().collect();
        (st.gate, candidates, unknown)
    };
    if candidates.is_empty() {
        let mut st = shared.state();
        let holding: HashSet<String> = st.holding.keys().cloned().collect();
        st.waiting.retain(|id, _| holding.contains(id));
        st.own.clear();
        return (Vec::new(), Vec::new());
    }
    let deps = &shared.deps;
    let mut own = Vec::new();
    // A download whose own requirements cannot be read now is not started this pass (the
    // vault's might allow what its own forbid).
    let mut unread = HashSet::new();
    for id in unknown {
        match deps.catalog.request(&id).await {
            Ok(Some(json)) => {
                // An unreadable request has no requirements of its own (its job fails on it).
                let req = serde_json::from_str::<DownloadRequest>(&json).ok().and_then(|r| r.requirements);
                own.push((id, req));
            }
            Ok(None) => {}
            Err(_) => {
                unread.insert(id);
            }
        }
    }
    let root = deps.layout.root().to_owned();
    let space: Option<Space> = match tokio::task::spawn_blocking(move || store::space(&root)).await {
        Ok(Ok(s)) => Some(s),
        _ => None,
    };
    let over_quota = match gate.quota {
        Some(quota) => deps.catalog.bytes_stored().await.is_ok_and(|used| used > quota),
        None => false,
    };
    let needs: HashMap<&str, u64> =
        queued.iter().map(|(id, left)| (id.as_str(), left.map_or(0, |l| l.saturating_add(l / 20)))).collect();
    let mut st = shared.state();
    st.own.extend(own);
    let mut waiting = HashMap::new();
    for id in &candidates {
        let req = st.own.get(id).copied().flatten().unwrap_or(gate.requirements);
        let was_storage = st.waiting.get(id) == Some(&WaitReason::Storage);
        // A queued download must fit what it still needs; a running one is held back only
        // when free space falls below what is kept free.
        let need = needs.get(id.as_str()).copied().unwrap_or(0);
        if let Some(reason) = wait_reason(&req, &gate.conditions, space, need, over_quota, was_storage) {
            waiting.insert(id.clone(), reason);
        }
    }
    for (id, reason) in &waiting {
        if st.waiting.get(id) != Some(reason) {
            tracing::debug!(asset = %id, "waiting: {}", reason.state());
            deps.events.state(id, reason.state(), None);
        }
    }
    for id in st.waiting.keys() {
        if !waiting.contains_key(id) && !st.holding.contains_key(id) && queued_ids.contains(id) {
            deps.events.state(id, AssetState::Queued, None);
        }
    }
    let held_ids: Vec<String> = st
        .jobs
        .iter()
        .filter(|(id, j)| !j.for_players && waiting.contains_key(*id))
        .map(|(id, _)| id.clone())
        .collect();
    let held = held_ids
        .into_iter()
        .filter_map(|id| {
            let reason = waiting[&id];
            st.jobs.remove(&id).map(|j| (id, j, reason))
        })
        .collect();
    st.own.retain(|id, _| candidates.contains(id));
    // Those being held back keep their reason until the next pass looks at them again.
    let previous = std::mem::take(&mut st.waiting);
    waiting.extend(previous.into_iter().filter(|(id, _)| st.holding.contains_key(id)));
    st.waiting = waiting;
    let startable = queued_ids
        .into_iter()
        .filter(|id| !st.waiting.contains_key(id) && !st.holding.contains_key(id) && !unread.contains(id))
        .collect();
    (startable, held)
}

/// Holds a running download back, in a task of its own (the loop goes on): the download takes
/// no new piece, its pieces under way get [`HOLD_GRACE`] to be stored and recorded, then it is
/// stopped and queued again. Then it says again why it waits (it may have said `downloading`).
fn hold(shared: &Arc<Shared>, id: String, mut job: Job, reason: WaitReason) {
    let mut st = shared.state();
    let abort = job.task.abort_handle();
    let sh = Arc::clone(shared);
    let key = id.clone();
    let task = tokio::spawn(async move {
        let deps = &sh.deps;
        job.drain.store(true, Ordering::SeqCst);
        // Ended by itself (held, completed or failed): it recorded its own state.
        if tokio::time::timeout(HOLD_GRACE, &mut job.task).await.is_err() {
            job.task.abort();
            let _ = job.task.await;
            // Its blocking work ends on its own; if another process took the asset meanwhile,
            // its files and state are that process's.
            if engine::wait_unlocked(deps, &id).await.is_ok() {
                let dir = deps.layout.asset_dir(&id);
                let _ = tokio::task::spawn_blocking(move || store::remove_temp_files(&dir)).await;
                let from = [AssetState::Downloading];
                if let Err(e) = deps.catalog.transition(&id, &from, AssetState::Queued, None).await {
                    tracing::warn!(asset = %id, "holding back: could not queue the download again: {e}");
                }
            } else {
                tracing::warn!(asset = %id, "holding back: the download's file work did not end within 15 s");
            }
        }
        let still = sh.state().waiting.get(&id).copied();
        if let Some(why) = still
            && matches!(deps.catalog.state(&id).await, Ok(Some(AssetState::Queued)))
        {
            deps.events.state(&id, why.state(), None);
        } else if still.is_none() {
            tracing::debug!(asset = %id, "held back for {:?}, now allowed again", reason);
        }
        sh.state().holding.remove(&id);
        sh.wake.notify_one();
    });
    st.holding.insert(key, Holding { task, job: abort });
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
        // Held back: only what the player asks for is fetched, as for a paused asset.
        AssetState::Queued if st.waiting.contains_key(&id) => {
            st.runs += 1;
            let run = st.runs;
            let task = spawn_job(shared, id.clone(), run, true, Arc::default());
            st.jobs.insert(id, Job { run, task, for_players: true, drain: Arc::default() });
        }
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
            let task = spawn_job(shared, id.clone(), run, true, Arc::default());
            st.jobs.insert(id, Job { run, task, for_players: true, drain: Arc::default() });
        }
        _ => {}
    }
}

/// Runs `id`'s job (a download, or fetching for players), then forgets it and wakes the loop.
fn spawn_job(shared: &Arc<Shared>, id: String, run: u64, for_players: bool, drain: Arc<AtomicBool>) -> JoinHandle<()> {
    let job_shared = Arc::clone(shared);
    tokio::spawn(async move {
        let outcome = if for_players {
            engine::run_for_players(Arc::clone(&job_shared.deps), id.clone()).await
        } else {
            engine::run_job(Arc::clone(&job_shared.deps), id.clone(), drain).await
        };
        match outcome {
            Outcome::Completed => tracing::debug!(asset = %id, "job completed"),
            Outcome::Failed(reason) => tracing::debug!(asset = %id, "job failed: {reason}"),
            Outcome::Stopped => tracing::debug!(asset = %id, "job stopped"),
            Outcome::Held => tracing::debug!(asset = %id, "job held back"),
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
    // (A preference outlives a wait: the asset a player watches starts first once allowed.)
    state.preferred = preferred
        .into_iter()
        .filter(|p| (queued.contains(p) || state.waiting.contains_key(p)) && !state.jobs.contains_key(p))
        .collect();
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
        let drain = Arc::new(AtomicBool::new(false));
        let task = spawn_job(shared, id.clone(), run, false, Arc::clone(&drain));
        state.jobs.insert(id, Job { run, task, for_players: false, drain });
    }
}
