//! A document cut short anywhere (a watch killed by SIGKILL, the OOM killer, a full disk)
//! reads back best-effort: never a panic, one warning saying where it ends, and nothing in it
//! that the whole document does not say. No root needed.

use std::{collections::BTreeSet, path::Path};

use tracer::{
    correlate::Container,
    render::report::{self, Format, ReportOptions},
    report::Summary,
};

fn read(bytes: &[u8]) -> anyhow::Result<Summary> {
    let opts = ReportOptions {
        format: Format::Table,
        explain: false,
        all: false,
        color: false,
        json: false,
    };
    report::report(bytes, &opts, &mut std::io::sink())
}

/// Each container's facts, by container and lifecycle.
fn facts(c: &Container) -> BTreeSet<(String, String)> {
    c.facts
        .iter()
        .map(|f| (format!("{:?}", f.fact), f.value.clone()))
        .collect()
}

/// A small deterministic generator: the same offsets on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn documents_cut_at_a_thousand_offsets_read_best_effort() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/concurrent.json");
    let bytes = std::fs::read(path).unwrap();
    let whole = read(&bytes).unwrap();
    assert!(whole.containers.len() >= 6, "the fixture has containers");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut with_containers = 0;
    for _ in 0..1000 {
        let at = 1 + rng.below(bytes.len() - 1);
        let cut = read(&bytes[..at]).unwrap_or_else(|e| panic!("cut at {at}: {e:#}"));
        if at < bytes.len() - 2 {
            assert!(
                cut.warnings.iter().any(|w| w.contains("ends abruptly")),
                "cut at {at}: {:?}",
                cut.warnings
            );
        }
        assert!(cut.events <= whole.events);
        with_containers += usize::from(!cut.containers.is_empty());
        for c in &cut.containers {
            let Some(full) = whole
                .containers
                .iter()
                .find(|w| w.id == c.id && w.lifecycle == c.lifecycle)
            else {
                panic!("cut at {at}: container {} is not in the whole trace", c.id);
            };
            let extra: Vec<_> = facts(c).difference(&facts(full)).cloned().collect();
            assert!(extra.is_empty(), "cut at {at}: {} gets {extra:?}", c.id);
        }
    }
    assert!(with_containers > 100, "most cuts leave containers to check");
}
