//! Phase statistics across many containers (`tracer report FILES... --format stats`): per
//! engine and runtime (Docker's runc apart from plain runc) and per phase, how many, and the
//! median, 90th and 99th percentiles and maximum of the duration; the same for the start
//! latency. A table, or JSON.

use std::collections::BTreeMap;

use comfy_table::{presets, CellAlignment, Table};
use serde::Serialize;

use super::lifecycle::fine_ms as ms;
use crate::correlate::{Container, PhaseKind};

/// Count and percentiles of a set of durations (nearest rank), in nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl Spread {
    pub fn of(mut values: Vec<u64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |p: f64| {
            let k = (p * values.len() as f64).ceil() as usize;
            values[k.clamp(1, values.len()) - 1]
        };
        Some(Self {
            count: values.len(),
            p50_ns: rank(0.50),
            p90_ns: rank(0.90),
            p99_ns: rank(0.99),
            max_ns: *values.last().expect("not empty"),
        })
    }
}

/// One engine and runtime's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// `docker/runc`, `runc`, `podman/crun`, `tracer`.
    pub runtime: String,
    pub containers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_latency: Option<Spread>,
    /// Per phase, in launch order.
    pub phases: Vec<(String, Spread)>,
}

/// The figures of `containers`, a group per engine and runtime.
pub fn groups(containers: &[Container]) -> Vec<Group> {
    let mut by: BTreeMap<String, Vec<&Container>> = BTreeMap::new();
    for c in containers {
        by.entry(c.runtime_label()).or_default().push(c);
    }
    by.into_iter()
        .map(|(runtime, cs)| {
            let mut phases: BTreeMap<PhaseKind, Vec<u64>> = BTreeMap::new();
            for c in &cs {
                // A repeated phase (exec sessions) counts each time.
                for p in &c.phases {
                    phases
                        .entry(p.kind)
                        .or_default()
                        .push(p.end_ns.saturating_sub(p.start_ns));
                }
            }
            Group {
                runtime,
                containers: cs.len(),
                start_latency: Spread::of(cs.iter().filter_map(|c| c.start_latency_ns()).collect()),
                phases: phases
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.name().to_string(), Spread::of(v)?)))
                    .collect(),
            }
        })
        .collect()
}

/// The table: a block of rows per group.
pub fn table(groups: &[Group]) -> String {
    if groups.is_empty() {
        return "no containers seen".into();
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY).force_no_tty();
    t.set_header(["RUNTIME", "PHASE", "COUNT", "P50", "P90", "P99", "MAX"]);
    for g in groups {
        let mut row = |name: &str, s: &Spread, first: bool| {
            let label = if first {
                format!("{} ({} containers)", g.runtime, g.containers)
            } else {
                String::new()
            };
            t.add_row(vec![
                label,
                name.to_string(),
                s.count.to_string(),
                ms(s.p50_ns),
                ms(s.p90_ns),
                ms(s.p99_ns),
                ms(s.max_ns),
            ]);
        };
        let mut first = true;
        if let Some(s) = &g.start_latency {
            row("start latency", s, first);
            first = false;
        }
        for (name, s) in &g.phases {
            row(name, s, first);
            first = false;
        }
    }
    for col in 2..7 {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Spread::of((1..=100).collect()).unwrap();
        assert_eq!(
            (s.count, s.p50_ns, s.p90_ns, s.p99_ns, s.max_ns),
            (100, 50, 90, 99, 100)
        );
        let one = Spread::of(vec![7]).unwrap();
        assert_eq!((one.p50_ns, one.p99_ns, one.max_ns), (7, 7, 7));
        assert!(Spread::of(Vec::new()).is_none());
    }
}
