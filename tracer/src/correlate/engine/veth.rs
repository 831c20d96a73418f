//! veth pairs: the network a container gets.

use super::{Engine, State};
use crate::{
    correlate::model::{PhaseKind, Runtime},
    event::Event,
    runtime::naming,
};

impl Engine {
    /// A veth pair: the container it is named after or made for.
    pub(super) fn veth(&mut self, ev: &Event, name: &str, peer: &str) -> bool {
        let names = |st: &State| {
            st.c.veths
                .iter()
                .any(|v| v == name || (!peer.is_empty() && v == peer))
        };
        // A link of a container's (moved back or deleted at teardown), or the built-in
        // runtime's (named after the id), or made by a container's process.
        let known = self.containers.iter().position(names);
        let by_name = || {
            self.containers.iter().position(|st| {
                st.c.runtime == Runtime::Tracer
                    && naming::veth_names(&st.c.id)
                        .iter()
                        .any(|n| n == name || n == peer)
            })
        };
        let c = known
            .or_else(by_name)
            .or_else(|| self.container_of(ev.tgid));
        match c {
            Some(c) => {
                let kind = if self.containers[c].c.exited_ns.is_some() && known.is_some() {
                    PhaseKind::NetworkCleanup
                } else {
                    PhaseKind::Network
                };
                self.event_for(c, kind, ev);
                true
            }
            None if ev.tgid == 0 || self.is_engine(ev) => {
                self.pending.push_back((ev.clone(), PhaseKind::Network));
                true
            }
            None => false,
        }
    }
}
