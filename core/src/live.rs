//! What a player and a download share about one asset while both are at it: the pieces a player
//! asks for (they jump the download's queue), the bytes of pieces being fetched (streamed to the
//! player as they arrive, so nothing is fetched twice), and a signal when either changes.
//!
//! The engine and the playback server each hold an asset's [`LiveAsset`] while they work on it;
//! [`Live`] only remembers it weakly, so it goes when both are done.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use tokio::sync::{Notify, watch};

/// The vault's shared table of assets being played or downloaded.
#[derive(Default)]
pub(crate) struct Live {
    assets: Mutex<HashMap<String, Weak<LiveAsset>>>,
    wants: Arc<Wants>,
}

/// Assets a player asked a piece of since the queue last looked.
#[derive(Default)]
struct Wants {
    ids: Mutex<HashSet<String>>,
    notify: Notify,
}

impl Live {
    /// The asset's shared state, made if nobody holds it.
    pub(crate) fn asset(&self, id: &str) -> Arc<LiveAsset> {
        let mut assets = self.assets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = assets.get(id).and_then(Weak::upgrade) {
            return a;
        }
        assets.retain(|_, a| a.strong_count() > 0);
        let a = Arc::new(LiveAsset::new(id, Arc::clone(&self.wants)));
        assets.insert(id.to_owned(), Arc::downgrade(&a));
        a
    }

    /// Waits until a player asks for a piece of some asset, and returns which assets.
    pub(crate) async fn wanted_assets(&self) -> Vec<String> {
        loop {
            let ids: Vec<String> = self.wants.ids.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
            if !ids.is_empty() {
                return ids;
            }
            self.wants.notify.notified().await;
        }
    }
}

#[derive(Default)]
struct State {
    /// Pieces a player asked for and is waiting on, oldest first (logical names).
    wanted: VecDeque<String>,
    /// Pieces being fetched whose bytes are kept for players.
    taps: HashMap<String, Arc<Tap>>,
    /// Pieces a player asked for whose latest attempt failed (cleared when one starts).
    failed: HashSet<String>,
    /// Open playback sessions.
    watchers: usize,
    /// A progressive file being downloaded in pieces.
    part: Option<Part>,
}

/// A progressive file being downloaded in pieces: its name, the file, and how many bytes of
/// each piece (from its start) are written.
type Part = (String, Arc<dyn PartialFile>, HashMap<u64, u64>);

/// A progressive file being downloaded in byte-range pieces, as players may read it meanwhile.
pub(crate) trait PartialFile: Send + Sync {
    /// Plaintext length of the whole file.
    fn len(&self) -> u64;
    /// Bytes per piece (the last may be shorter).
    fn piece(&self) -> u64;
    /// Reads plaintext at `offset` from pieces that are written (blocking).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// The name under which piece `k` of progressive file `file` is wanted or fails.
pub(crate) fn piece_name(file: &str, k: u64) -> String {
    format!("{file}#{k}")
}

/// One asset's shared state.
pub(crate) struct LiveAsset {
    id: String,
    /// Where the queue learns that a player wants a piece of this asset.
    wants: Arc<Wants>,
    state: Mutex<State>,
    /// Bumped whenever a piece is wanted, starts, ends, fails or is stored.
    changed: watch::Sender<u64>,
    /// Wakes the download when a player wants a piece.
    wanted: Notify,
    /// Bumped when the download starts over from a changed source.
    version: std::sync::atomic::AtomicU64,
}

impl LiveAsset {
    fn new(id: &str, wants: Arc<Wants>) -> Self {
        Self {
            id: id.to_owned(),
            wants,
            state: Mutex::default(),
            changed: watch::Sender::new(0),
            wanted: Notify::new(),
            version: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver told of every change from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A player is waiting for `file`: the download fetches it next (and at once).
    pub(crate) fn want(&self, file: &str) {
        let mut st = self.state();
        if !st.wanted.iter().any(|w| w == file) {
            st.wanted.push_back(file.to_owned());
        }
        // Asked again after a failure: the next attempt is what the player waits for.
        st.failed.remove(file);
        drop(st);
        self.wanted.notify_one();
        self.wants.ids.lock().unwrap_or_else(PoisonError::into_inner).insert(self.id.clone());
        self.wants.notify.notify_one();
        self.bump();
    }

    /// A player waits for this asset: the queue starts it if it is queued, or fetches what
    /// players ask for if it is paused or failed (see the scheduler).
    pub(crate) fn wake_queue(&self) {
        self.wants.ids.lock().unwrap_or_else(PoisonError::into_inner).insert(self.id.clone());
        self.wants.notify.notify_one();
    }

    /// The pieces players wait for, oldest first.
    pub(crate) fn wanted(&self) -> Vec<String> {
        self.state().wanted.iter().cloned().collect()
    }

    /// Waits until a player wants a piece.
    pub(crate) async fn want_signal(&self) {
        self.wanted.notified().await;
    }

    /// Whether `file`'s latest attempt failed while a player waited for it.
    pub(crate) fn has_failed(&self, file: &str) -> bool {
        self.state().failed.contains(file)
    }

    /// The tap of `file`, if it is being fetched with its bytes kept.
    pub(crate) fn tap(&self, file: &str) -> Option<Arc<Tap>> {
        self.state().taps.get(file).filter(|t| !t.state().let_go).cloned()
    }

    /// The progressive file `file` is being downloaded in pieces (`part`), `written` already
    /// there; `None` when it is no longer (stored, or its job ended).
    pub(crate) fn set_part(&self, file: &str, part: Option<Arc<dyn PartialFile>>, written: &[u64]) {
        self.state().part = part.map(|p| {
            let (len, piece) = (p.len(), p.piece().max(1));
            let have = written.iter().map(|&k| (k, ((k + 1) * piece).min(len).saturating_sub(k * piece))).collect();
            (file.to_owned(), p, have)
        });
        self.bump();
    }

    /// The progressive file `file` being downloaded in pieces, if it is.
    pub(crate) fn part(&self, file: &str) -> Option<Arc<dyn PartialFile>> {
        self.state().part.as_ref().filter(|(f, ..)| f == file).map(|(_, p, _)| Arc::clone(p))
    }

    /// The first `bytes` of piece `k` of the progressive file are written: players may read
    /// them. A piece written whole is no longer wanted; returns whether a player wanted it.
    pub(crate) fn piece_progress(&self, k: u64, bytes: u64) -> bool {
        let mut st = self.state();
        let (name, whole) = match &mut st.part {
            Some((file, part, have)) => {
                let (len, piece) = (part.len(), part.piece().max(1));
                let full = ((k + 1) * piece).min(len).saturating_sub(k * piece);
                let h = have.entry(k).or_insert(0);
                *h = (*h).max(bytes.min(full));
                (piece_name(file, k), *h == full)
            }
            None => return false,
        };
        let mut was_wanted = false;
        if whole {
            st.failed.remove(&name);
            let before = st.wanted.len();
            st.wanted.retain(|w| *w != name);
            was_wanted = st.wanted.len() != before;
        }
        drop(st);
        self.bump();
        was_wanted
    }

    /// How many bytes of progressive file `file` from `pos` on are written (up to the end of
    /// its piece).
    pub(crate) fn available(&self, file: &str, pos: u64) -> u64 {
        self.readable(file, pos).map_or(0, |(_, n)| n)
    }

    /// The file `file` is being downloaded into now, and how many bytes from `pos` on it holds
    /// (up to the end of their piece): read them from that file, not from one an earlier job
    /// wrote (a resumed Encrypted file is a new file).
    pub(crate) fn readable(&self, file: &str, pos: u64) -> Option<(Arc<dyn PartialFile>, u64)> {
        let st = self.state();
        let (f, part, have) = st.part.as_ref()?;
        if f != file {
            return None;
        }
        let piece = part.piece().max(1);
        let k = pos / piece;
        Some((Arc::clone(part), (k * piece + have.get(&k).copied().unwrap_or(0)).saturating_sub(pos)))
    }

    /// The asset starts over from a changed source: bytes of the old version must not be
    /// continued with the new one's.
    pub(crate) fn new_version(&self) {
        self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.bump();
    }

    /// Which version of the asset's source its files hold (see [`LiveAsset::new_version`]).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A playback session opened (its guard closes it).
    pub(crate) fn watch(self: &Arc<Self>) -> WatchGuard {
        self.state().watchers += 1;
        WatchGuard(Arc::clone(self))
    }

    /// Whether a playback session is open.
    pub(crate) fn watched(&self) -> bool {
        self.state().watchers > 0
    }

    /// An attempt at `file` starts: returns the tap its bytes go through. While no player
    /// watches the asset, a tap keeps only a piece's first [`UNWATCHED_CAP`] bytes (a player
    /// arriving just after the download started gets the pieces under way from their start);
    /// past that it lets go of them and players wait for the stored piece.
    pub(crate) fn start(&self, file: &str) -> Arc<Tap> {
        let mut st = self.state();
        st.failed.remove(file);
        let tap = Arc::new(Tap::default());
        st.taps.insert(file.to_owned(), Arc::clone(&tap));
        drop(st);
        self.bump();
        tap
    }

    /// The attempt at `file` failed (its tap, if any, is told).
    pub(crate) fn failed(&self, file: &str) {
        let mut st = self.state();
        if let Some(tap) = st.taps.remove(file) {
            tap.end(false);
        }
        if st.wanted.iter().any(|w| w == file) {
            st.failed.insert(file.to_owned());
        }
        drop(st);
        self.bump();
    }

    /// `file` is stored under its final name: players read it from the vault from now on.
    /// Returns whether a player was waiting for it.
    pub(crate) fn stored(&self, file: &str) -> bool {
        let mut st = self.state();
        st.taps.remove(file);
        st.failed.remove(file);
        let before = st.wanted.len();
        st.wanted.retain(|w| w != file);
        let was_wanted = st.wanted.len() != before;
        drop(st);
        self.bump();
        was_wanted
    }
}

/// Keeps a playback session counted while it is open.
pub(crate) struct WatchGuard(Arc<LiveAsset>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.watchers = st.watchers.saturating_sub(1);
    }
}

/// What a tap keeps of a piece while no player watches its asset.
pub(crate) const UNWATCHED_CAP: usize = 1 << 20;

#[derive(Default)]
struct TapState {
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    len: usize,
    /// Past [`UNWATCHED_CAP`] with nobody watching: the bytes were let go.
    let_go: bool,
    /// `Some(true)` when the piece is complete and checked, `Some(false)` when the attempt failed.
    end: Option<bool>,
}

/// The plaintext of a piece being fetched, as it arrives, for players reading it meanwhile.
pub(crate) struct Tap {
    state: Mutex<TapState>,
    changed: watch::Sender<u64>,
}

impl Default for Tap {
    fn default() -> Self {
        Self { state: Mutex::default(), changed: watch::Sender::new(0) }
    }
}

/// What a tap has at a position.
pub(crate) enum TapRead {
    /// These chunks, from the asked index on.
    Chunks(Vec<Bytes>),
    /// The piece is complete: nothing after the asked index.
    End,
    /// The attempt failed.
    Failed,
    /// Nothing new yet.
    Wait,
}

impl Tap {
    fn state(&self) -> MutexGuard<'_, TapState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plaintext received (and written) in order; `watched`: a player watches the asset.
    pub(crate) fn push(&self, data: &[u8], watched: bool) {
        let mut st = self.state();
        if data.is_empty() || st.let_go {
            return;
        }
        if !watched && st.len + data.len() > UNWATCHED_CAP {
            st.let_go = true;
            st.chunks = Vec::new();
        } else {
            st.len += data.len();
            st.chunks.push(Bytes::copy_from_slice(data));
        }
        drop(st);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The piece is complete and checked (`true`) or the attempt failed.
    pub(crate) fn end(&self, ok: bool) {
        let mut st = self.state();
        if st.end.is_none() {
            st.end = Some(ok);
            if !ok {
                st.chunks.clear();
            }
        }
        drop(st);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver told of every change from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What there is from chunk `from` on.
    pub(crate) fn read(&self, from: usize) -> TapRead {
        let st = self.state();
        match st.end {
            _ if st.let_go => TapRead::Failed,
            Some(false) => TapRead::Failed,
            _ if st.chunks.len() > from => TapRead::Chunks(st.chunks[from..].to_vec()),
            Some(true) => TapRead::End,
            None => TapRead::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwatched_tap_keeps_only_the_start_of_a_piece_and_state_goes_with_its_holders() {
        let live = Live::default();
        let a = live.asset("x");
        let t1 = a.start("seg-1.ts");
        t1.push(&vec![0u8; UNWATCHED_CAP], false);
        assert!(a.tap("seg-1.ts").is_some(), "nobody watches: the start of a piece is kept");
        t1.push(b"more", false);
        assert!(a.tap("seg-1.ts").is_none() && matches!(t1.read(0), TapRead::Failed), "and no more");
        a.want("seg-2.ts");
        let tap = a.start("seg-2.ts");
        tap.push(b"abc", true);
        assert!(matches!(tap.read(0), TapRead::Chunks(c) if c.len() == 1));
        assert!(matches!(tap.read(1), TapRead::Wait));
        a.failed("seg-2.ts");
        assert!(matches!(tap.read(0), TapRead::Failed));
        assert!(a.has_failed("seg-2.ts"));
        assert!(a.stored("seg-2.ts"));
        assert!(!a.has_failed("seg-2.ts") && a.wanted().is_empty());
        {
            let _w = a.watch();
            let t3 = a.start("seg-3.ts");
            t3.push(&vec![0u8; 2 * UNWATCHED_CAP], a.watched());
            assert!(a.tap("seg-3.ts").is_some(), "watched: all kept");
        }
        assert!(!a.watched());
        drop(a);
        assert!(Arc::ptr_eq(&live.asset("x"), &live.asset("x")));
        assert_eq!(live.assets.lock().unwrap().values().filter(|w| w.strong_count() > 0).count(), 0);
    }
}
