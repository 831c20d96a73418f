//! Correlation: raw events into containers. [`identify`] reads command lines and paths,
//! [`engine`] follows processes through fork/exec/exit and assigns events to containers and
//! phases, [`model`] is the result. It depends only on [`crate::event`] and the built-in
//! runtime's naming rules.

use std::collections::BTreeMap;

pub mod engine;
pub mod filter;
pub mod identify;
pub mod model;

pub use engine::Correlation;
pub use filter::Filter;
pub use model::{
    Container, ContainerEngine, Evidence, Fact, FactKind, Phase, PhaseKind, Process, Role, Runtime,
    Unattributed,
};

use crate::event::{Event, HostNs};

/// What correlation knows besides the events.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The host's namespaces (0: unknown, then guessed from the events).
    pub host: HostNs,
    /// Cgroup id → path.
    pub cgroups: &'a BTreeMap<u64, String>,
}

/// The containers in `events` (in any order), by creation time, and what no evidence ties
/// to any.
pub fn containers(events: &[Event], ctx: &Context) -> Correlation {
    correlate(events, ctx).0
}

/// The containers, and for each event (by index in `events`) the container it belongs
/// to (an index into the containers).
pub fn correlate(events: &[Event], ctx: &Context) -> (Correlation, Vec<Option<usize>>) {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].ts_ns);
    let mut ctx = *ctx;
    if ctx.host.mnt == 0 {
        ctx.host = guess_host(events);
    }
    let mut engine = engine::Engine::new(&ctx);
    let mut owners = vec![None; events.len()];
    for i in order {
        owners[i] = engine.feed_owned(&events[i]).1;
    }
    (engine.finish_all(), owners)
}

/// The host's namespaces when the trace does not say (version 1): the most common ones.
pub(crate) fn guess_host<'a>(events: impl IntoIterator<Item = &'a Event>) -> HostNs {
    let mut counts: std::collections::HashMap<(u32, u32, u32), usize> = Default::default();
    for e in events.into_iter().filter(|e| e.mnt_ns != 0) {
        *counts.entry((e.mnt_ns, e.pid_ns, e.net_ns)).or_default() += 1;
    }
    let ((mnt, pid, net), _) = counts
        .into_iter()
        .max_by_key(|(k, n)| (*n, *k))
        .unwrap_or_default();
    HostNs { mnt, pid, net }
}
