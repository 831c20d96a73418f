//! `tracer check`: how each event kind is observed on this kernel.

use super::privilege;
use crate::{capture::loader, render::plan};

/// `tracer check`: load, attach the best hook of every kind, print the plan; an error names
/// the kinds left without any hook.
pub fn check() -> anyhow::Result<()> {
    privilege::require_tracing("tracer check")?;
    let loaded = loader::load(tracer_common::DEFAULT_RING_BYTES)?;
    for w in &loaded.warnings {
        eprintln!("tracer: warning: {w}");
    }
    println!("{}", plan::table(&loaded.plans));
    let missing: Vec<&str> = loaded
        .plans
        .iter()
        .filter(|p| p.chosen.is_none())
        .map(|p| p.plan.kind.name())
        .collect();
    let (covered, kinds) = loaded.covered();
    println!("{covered}/{kinds} event kinds observed on this kernel");
    if !missing.is_empty() {
        anyhow::bail!("not observed on this kernel: {}", missing.join(", "));
    }
    Ok(())
}
