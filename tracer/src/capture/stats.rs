//! Counters shown when a run ends: events per kind, lost per kind, malformed records. One
//! slot per kind: the counters cannot grow however long a session runs.

use tracer_common::{EventKind, KIND_SLOTS};

#[derive(Debug, Clone)]
pub struct Counters {
    /// Decoded events, by kind discriminant.
    events: [u64; KIND_SLOTS as usize],
    /// Events the kernel side could not deliver, by kind discriminant.
    lost: [u64; KIND_SLOTS as usize],
    /// Records that did not decode.
    pub malformed: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            events: [0; KIND_SLOTS as usize],
            lost: [0; KIND_SLOTS as usize],
            malformed: 0,
        }
    }
}

impl Counters {
    pub fn seen(&mut self, kind: EventKind) {
        self.events[kind as usize] += 1;
    }

    pub fn set_lost(&mut self, kind: EventKind, n: u64) {
        self.lost[kind as usize] = n;
    }

    pub fn events(&self, kind: EventKind) -> u64 {
        self.events[kind as usize]
    }

    pub fn lost(&self, kind: EventKind) -> u64 {
        self.lost[kind as usize]
    }

    pub fn total_events(&self) -> u64 {
        self.events.iter().sum()
    }

    pub fn total_lost(&self) -> u64 {
        self.lost.iter().sum()
    }

    /// Every kind, in ABI order, with (events, lost).
    pub fn rows(&self) -> Vec<(EventKind, u64, u64)> {
        EventKind::ALL
            .iter()
            .map(|&k| (k, self.events(k), self.lost(k)))
            .collect()
    }
}
