//! Counters shown when a run ends: events per kind, lost per kind, malformed records.

use std::collections::BTreeMap;

use tracer_common::EventKind;

#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Decoded events per kind name.
    pub events: BTreeMap<&'static str, u64>,
    /// Events the kernel side could not deliver, per kind name.
    pub lost: BTreeMap<&'static str, u64>,
    /// Records that did not decode.
    pub malformed: u64,
}

impl Counters {
    pub fn seen(&mut self, kind: &'static str) {
        *self.events.entry(kind).or_default() += 1;
    }

    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }

    pub fn total_lost(&self) -> u64 {
        self.lost.values().sum()
    }

    /// Every kind, in ABI order, with (events, lost).
    pub fn rows(&self) -> Vec<(&'static str, u64, u64)> {
        EventKind::ALL
            .iter()
            .map(|k| {
                let name = k.name();
                (
                    name,
                    self.events.get(name).copied().unwrap_or(0),
                    self.lost.get(name).copied().unwrap_or(0),
                )
            })
            .collect()
    }
}
