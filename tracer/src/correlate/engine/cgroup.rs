//! cgroups: a container's made by its runtime, found by a path holding its id, or by one of
//! its processes moved in. One path is one fact, whatever the number of v1 hierarchies.

use super::{waiting::Key, Engine};
use crate::{
    correlate::{
        identify,
        model::{Evidence, PhaseKind},
    },
    event::Event,
};

impl Engine {
    /// A cgroup made (`target`: a task moved in; `remove`: removed) at `path`.
    pub(super) fn cgroup(
        &mut self,
        ev: &Event,
        path: &str,
        target: Option<u32>,
        remove: bool,
    ) -> bool {
        let by_path = || identify::cgroup_container(path).map(|(_, id)| id.to_string());
        let owner = self
            .container_of(ev.tgid)
            .map(|c| (c, Evidence::ProcessTree))
            .or_else(|| {
                target
                    .and_then(|pid| self.container_of(pid))
                    .map(|c| (c, Evidence::CgroupAttach))
            })
            .or_else(|| {
                let id = by_path()?;
                self.by_id.get(&id).map(|&c| (c, Evidence::CgroupPath))
            });
        let kind = if remove {
            PhaseKind::Delete
        } else {
            PhaseKind::Cgroup
        };
        match owner {
            Some((c, evidence)) => {
                self.event_for(c, kind, ev, evidence);
                true
            }
            None => match by_path() {
                // Made for a container not seen yet (a systemd scope, a pod's cgroup).
                Some(id) if !remove => {
                    self.wait(Key::Id(id), kind, ev);
                    true
                }
                _ => false,
            },
        }
    }
}
