//! Progress of one asset: monotonic, throttled to ~10 events a second, exact when the size is
//! known and marked as an estimate otherwise.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::events::Events;
use crate::model::{Event, Progress};

const MIN_INTERVAL: Duration = Duration::from_millis(100);
const SPEED_WINDOW: Duration = Duration::from_secs(3);

struct State {
    last_emit: Option<Instant>,
    last_bytes: u64,
    samples: VecDeque<(Instant, u64)>,
    expected: Option<u64>,
    exact: bool,
}

/// Counts bytes as they are stored and committed, and emits [`Event::Progress`].
pub(crate) struct Tracker {
    events: Events,
    id: String,
    total_segments: u64,
    /// Pieces with nothing to fetch (gaps): done from the start, and left out of the estimate.
    empty_segments: u64,
    committed_bytes: AtomicU64,
    committed_segments: AtomicU64,
    /// Plaintext bytes written for pieces not yet committed.
    in_flight: AtomicU64,
    state: Mutex<State>,
}

impl Tracker {
    pub(crate) fn new(
        events: Events,
        id: String,
        total_segments: u64,
        committed: (u64, u64),
        expected: (Option<u64>, bool),
    ) -> Self {
        Self {
            events,
            id,
            total_segments,
            empty_segments: 0,
            committed_bytes: AtomicU64::new(committed.0),
            committed_segments: AtomicU64::new(committed.1),
            in_flight: AtomicU64::new(0),
            state: Mutex::new(State {
                last_emit: None,
                last_bytes: committed.0,
                samples: VecDeque::new(),
                expected: expected.0,
                exact: expected.1,
            }),
        }
    }

    /// Says that `n` of the pieces are gaps (done, with no bytes): an estimate from the bytes per
    /// piece leaves them out.
    pub(crate) fn with_empty_segments(mut self, n: u64) -> Self {
        self.empty_segments = n;
        self
    }

    /// Bytes of a piece were written.
    pub(crate) fn written(&self, n: u64) {
        self.in_flight.fetch_add(n, Ordering::Relaxed);
        self.emit(false);
    }

    /// A piece attempt was abandoned after writing `n` bytes (they will be written again).
    pub(crate) fn abandoned(&self, n: u64) {
        self.in_flight.fetch_sub(n, Ordering::Relaxed);
    }

    /// Pieces were committed: `stored` plaintext bytes in `count` pieces, of which `written` had
    /// been counted as in flight.
    pub(crate) fn committed(&self, stored: u64, count: u64, written: u64) {
        self.committed_bytes.fetch_add(stored, Ordering::Relaxed);
        self.committed_segments.fetch_add(count, Ordering::Relaxed);
        self.in_flight.fetch_sub(written, Ordering::Relaxed);
        self.emit(false);
    }

    /// Replaces the committed totals (a progressive checkpoint).
    pub(crate) fn set_committed(&self, bytes: u64, written_since: u64) {
        self.committed_bytes.store(bytes, Ordering::Relaxed);
        self.in_flight.store(written_since, Ordering::Relaxed);
    }

    /// Sets the expected size.
    pub(crate) fn set_expected(&self, expected: Option<u64>, exact: bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.expected = expected;
        s.exact = exact;
    }

    /// Committed bytes and pieces.
    pub(crate) fn committed_totals(&self) -> (u64, u64) {
        (self.committed_bytes.load(Ordering::Relaxed), self.committed_segments.load(Ordering::Relaxed))
    }

    /// The expected size as currently estimated.
    pub(crate) fn expected(&self) -> (Option<u64>, bool) {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (s.expected, s.exact)
    }

    /// Emits a progress event now (`force`) or if the last one is old enough.
    pub(crate) fn emit(&self, force: bool) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !force && s.last_emit.is_some_and(|t| now.duration_since(t) < MIN_INTERVAL) {
            return;
        }
        let committed = self.committed_bytes.load(Ordering::Relaxed);
        let segments_done = self.committed_segments.load(Ordering::Relaxed);
        let bytes = (committed + self.in_flight.load(Ordering::Relaxed)).max(s.last_bytes);
        s.last_bytes = bytes;
        s.last_emit = Some(now);
        s.samples.push_back((now, bytes));
        while s.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > SPEED_WINDOW) {
            s.samples.pop_front();
        }
        // Refine an estimate from the pieces done so far.
        let (done, total) = (
            segments_done.saturating_sub(self.empty_segments),
            self.total_segments.saturating_sub(self.empty_segments),
        );
        if !s.exact && done > 0 && total > 0 {
            let per = committed as f64 / done as f64;
            s.expected = Some(((per * total as f64) as u64).max(bytes));
        }
        let expected = s.expected.map(|e| e.max(bytes));
        let speed = match (s.samples.front(), s.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => (b1 - b0) as f64 / t1.duration_since(*t0).as_secs_f64(),
            _ => 0.0,
        };
        let eta = match expected {
            Some(e) if speed > 0.0 => Some(e.saturating_sub(bytes) as f64 / speed),
            _ => None,
        };
        let event = Progress {
            id: self.id.clone(),
            bytes_done: bytes,
            bytes_expected: expected,
            expected_exact: s.exact,
            segments_done,
            segments_total: self.total_segments,
            speed_bps: speed,
            eta_secs: eta,
        };
        drop(s);
        self.events.emit(Event::Progress(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_do_not_pull_the_estimate_down() {
        // 10 pieces, 4 of them gaps (done from the start, no bytes); one 100-byte piece stored.
        let estimate = |gaps: u64| {
            let events = Events::new();
            let mut rx = events.subscribe();
            let t = Tracker::new(events, "a".into(), 10, (0, 4), (Some(1000), false)).with_empty_segments(gaps);
            t.written(100);
            t.committed(100, 1, 100);
            t.emit(true);
            let mut last = None;
            while let Ok(Event::Progress(p)) = rx.try_recv() {
                last = Some(p.bytes_expected);
            }
            last.flatten()
        };
        // 100 bytes a piece over the 6 that have bytes, not over all 10 with the gaps as done.
        assert_eq!(estimate(4), Some(600));
        assert_eq!(estimate(0), Some(200), "counted as pieces, the gaps would make it 200");
    }
}
