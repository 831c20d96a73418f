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
        .filter(|p| p.chosen.is_none() && !p.absent())
        .map(|p| p.plan.kind.name())
        .collect();
    let (covered, kinds) = loaded.covered();
    println!("{covered}/{kinds} event kinds observed on this kernel");
    let fallbacks: Vec<String> = loaded
        .plans
        .iter()
        .filter(|p| p.chosen.is_some_and(|i| i > 0))
        .filter_map(|p| Some(format!("{} ({})", p.plan.kind.name(), p.chosen()?.name)))
        .collect();
    if !fallbacks.is_empty() {
        println!("fallbacks used: {}", fallbacks.join("; "));
    }
    let absent = loaded.absent();
    if !absent.is_empty() {
        println!(
            "not in this kernel at all (its syscall came later): {}",
            absent.join(", ")
        );
    }
    if !missing.is_empty() {
        anyhow::bail!("not observed on this kernel: {}", missing.join(", "));
    }
    Ok(())
}
