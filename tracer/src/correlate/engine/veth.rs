//! Network devices: veth pairs, and a device moving into a container's network namespace
//! (the evidence that ties a veth made by a daemon in the host's namespace to its container).

use super::{succeeded, waiting::Key, Engine};
use crate::{
    correlate::model::{Evidence, PhaseKind},
    event::{Detail, Event},
};

impl Engine {
    /// The container a link's names are already known to: one of its links (moved back or
    /// deleted at teardown), or named after its id by the built-in runtime.
    fn link_owner(&self, name: &str, peer: &str) -> Option<(usize, Evidence)> {
        [name, peer]
            .into_iter()
            .filter(|n| !n.is_empty())
            .find_map(|n| self.by_link.get(n).copied())
    }

    /// A network namespace other than the host's (0 is unknown).
    fn foreign(&self, n: u32) -> bool {
        n != 0 && n != self.host.net
    }

    /// A veth pair: a container's by its names, by the process that made it, or by the
    /// namespace one end is in; made in the host's namespace by a daemon, it waits for one
    /// end to move.
    pub(super) fn veth(&mut self, ev: &Event) -> bool {
        let Detail::Veth {
            name,
            peer,
            netns,
            peer_netns,
            ..
        } = &ev.detail
        else {
            return false;
        };
        if !succeeded(ev) {
            return self.container_of(ev.tgid).is_some();
        }
        // An end in a container's namespace is the strongest evidence: names are reused
        // (netavark's veth0, veth1...).
        for n in [*peer_netns, *netns] {
            if self.foreign(n) {
                match self.netns_container(n) {
                    Some(c) => self.event_for(c, PhaseKind::Network, ev, Evidence::Netns),
                    None => self.wait(Key::Netns(n), PhaseKind::Network, ev),
                }
                return true;
            }
        }
        if let Some((c, evidence)) = self.link_owner(name, peer) {
            let kind = if self.containers[c].c.exited_ns.is_some() {
                PhaseKind::NetworkCleanup
            } else {
                PhaseKind::Network
            };
            self.event_for(c, kind, ev, evidence);
            return true;
        }
        if let Some(c) = self.container_of(ev.tgid) {
            self.event_for(c, PhaseKind::Network, ev, Evidence::ProcessTree);
            return true;
        }
        let keys = [name, peer]
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(|n| Key::Link(n.clone()))
            .collect();
        self.waiting.push_keys(keys, PhaseKind::Network, ev.clone());
        true
    }

    /// The pair waiting under a link's name.
    fn take_link(&mut self, name: &str) -> Vec<(PhaseKind, Event)> {
        self.waiting.take(&Key::Link(name.to_string()))
    }

    /// A device moving to another namespace: into a container's, it and its pair are that
    /// container's.
    pub(super) fn netdev_move(&mut self, ev: &Event) -> bool {
        let Detail::NetdevMove { name, to_netns, .. } = &ev.detail else {
            return false;
        };
        if !succeeded(ev) {
            return self.container_of(ev.tgid).is_some();
        }
        let owner = self
            .netns_container(*to_netns)
            .map(|c| (c, Evidence::Netns))
            .or_else(|| self.link_owner(name, ""))
            .or_else(|| {
                self.container_of(ev.tgid)
                    .map(|c| (c, Evidence::ProcessTree))
            });
        match owner {
            Some((c, evidence)) => {
                for (kind, p) in self.take_link(name) {
                    self.event_for(c, kind, &p, evidence);
                }
                // Moved back out at teardown.
                let kind = if self.containers[c].c.exited_ns.is_some() {
                    PhaseKind::NetworkCleanup
                } else {
                    PhaseKind::Network
                };
                self.event_for(c, kind, ev, evidence);
                true
            }
            // Only the move waits for the namespace; its pair stays under its names until the
            // move is claimed. The pair was made before the namespace, and what waits for a
            // namespace from before it was made is about an older one with the same inode.
            None if self.foreign(*to_netns) => {
                self.wait(Key::Netns(*to_netns), PhaseKind::Network, ev);
                true
            }
            None => {
                // Nothing names a container: the pair stays the daemon's.
                for (kind, p) in self.take_link(name) {
                    self.wait(Key::Link(name.clone()), kind, &p);
                }
                false
            }
        }
    }
}
