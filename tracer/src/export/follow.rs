//! Follows the containers of a live watch for the exports: says once when each starts,
//! exits, finishes a phase and goes away, so spans and metrics are sent as a container
//! lives, not when the watch ends.
//!
//! A phase is over when nothing extended it for [`PHASE_QUIET_NS`] of trace time; a
//! container is gone [`GONE_QUIET_NS`] after its exit. At the end of a watch everything
//! still open is over.

use std::collections::{HashMap, HashSet};

use crate::correlate::{Container, Phase, PhaseKind};

pub const PHASE_QUIET_NS: u64 = 2_000_000_000;
pub const GONE_QUIET_NS: u64 = 10_000_000_000;

/// What happened to a container since the last look.
pub enum Change<'a> {
    Started(&'a Container),
    Exited(&'a Container),
    PhaseOver(&'a Container, &'a Phase),
    /// Nothing more is expected of it (`end_ns`: when it was last seen, or the end of the
    /// watch for one still running).
    Gone(&'a Container, u64),
}

#[derive(Default)]
struct Seen {
    started: bool,
    exited: bool,
    phases: HashSet<(PhaseKind, u64)>,
}

#[derive(Default)]
pub struct Follower {
    seen: HashMap<usize, Seen>,
    /// Containers gone: nothing more is said of them.
    gone: HashSet<usize>,
}

impl Follower {
    /// Looks at every container (`now_ns`: the latest event's time; `last`: the watch
    /// ends) and hands each change to `on`.
    pub fn look<'a>(
        &mut self,
        containers: impl Iterator<Item = (usize, &'a Container)>,
        now_ns: u64,
        last: bool,
        mut on: impl FnMut(Change<'a>),
    ) {
        for (i, c) in containers {
            if self.gone.contains(&i) {
                continue;
            }
            let seen = self.seen.entry(i).or_default();
            if c.started_ns.is_some() && !seen.started {
                seen.started = true;
                on(Change::Started(c));
            }
            if c.exited_ns.is_some() && !seen.exited {
                seen.exited = true;
                on(Change::Exited(c));
            }
            let gone = last
                || c.exited_ns
                    .is_some_and(|e| e.saturating_add(GONE_QUIET_NS) <= now_ns);
            for p in &c.phases {
                let over = gone || p.end_ns.saturating_add(PHASE_QUIET_NS) <= now_ns;
                // A phase that happens once is one, even if a late claim moves its start.
                let key = (p.kind, if p.kind.once() { 0 } else { p.start_ns });
                if over && seen.phases.insert(key) {
                    on(Change::PhaseOver(c, p));
                }
            }
            if gone {
                let end = if c.exited_ns.is_some() {
                    super::spans::gone_ns(c)
                } else {
                    now_ns.max(super::spans::gone_ns(c))
                };
                on(Change::Gone(c, end));
                self.seen.remove(&i);
                self.gone.insert(i);
            }
        }
    }
}
