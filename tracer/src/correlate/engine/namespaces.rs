//! New namespaces (unshare, clone) and joined ones (setns), a container's own and the ones
//! a daemon makes or enters for a container (podman's netns, dockerd configuring the
//! container's network from inside its namespace).

use super::{succeeded, waiting::Key, Engine};
use crate::{
    correlate::model::{Evidence, PhaseKind, Role},
    event::{Event, NsInodes, NsKind},
};

impl Engine {
    /// Namespaces created for a container's process: the container's namespaces.
    pub(super) fn namespaces(&mut self, ev: &Event, new: &[NsKind], ns: &NsInodes) -> bool {
        if !succeeded(ev) {
            return self.container_of(ev.tgid).is_some();
        }
        if new.contains(&NsKind::Net) && ns.net != 0 {
            // A new namespace with an inode number the kernel reused: what was known of
            // the dead one with that number is not about this one.
            // Only what happened before it was made: the rtnetlink monitor's events can be
            // read before the ring's, so a later one may already wait for this namespace.
            self.netns_owner.remove(&ns.net);
            let key = Key::Netns(ns.net);
            let mut stale = Vec::new();
            for (kind, e) in self.waiting.take(&key) {
                if e.ts_ns < ev.ts_ns {
                    stale.push(e);
                } else {
                    self.wait(key.clone(), kind, &e);
                }
            }
            self.give_up(stale);
        }
        let Some(c) = self.container_of(ev.tgid).or_else(|| self.by_namespace(ev)) else {
            // A network namespace made ahead of its container (podman's): it is the
            // container's once the container is seen in it.
            if new == [NsKind::Net] && ns.net != 0 {
                self.wait(Key::Netns(ns.net), PhaseKind::Network, ev);
                return true;
            }
            return false;
        };
        if new.is_empty() {
            return true;
        }
        let st = &mut self.containers[c];
        for k in new {
            if !st.c.new_namespaces.contains(k) {
                st.c.new_namespaces.push(*k);
            }
        }
        st.c.ns.merge(ns, new);
        st.ns_done = true;
        let kind = if st.started() {
            PhaseKind::Exec
        } else if new == [NsKind::User] {
            PhaseKind::UserNamespace
        } else {
            PhaseKind::Namespaces
        };
        self.phase(c, kind, ev);
        if new.contains(&NsKind::Net) {
            self.netns_known(c);
        }
        true
    }

    /// Joining namespaces: a container's process (the runtime setting up, or an exec
    /// session), or a daemon entering a container's network namespace to configure it.
    pub(super) fn setns(&mut self, ev: &Event, joined: &[NsKind], ns: &NsInodes) -> bool {
        let Some(c) = self.container_of(ev.tgid) else {
            return self.daemon_setns(ev, joined, ns);
        };
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        if joined.is_empty() || !succeeded(ev) {
            return true;
        }
        // A shim's helpers (podman's cleanup, CNI plugins) go in and out of the container's
        // network namespace, and once it runs its namespaces are set: neither changes them.
        let helper = self.procs.get(&ev.tgid).and_then(|p| p.role) == Some(Role::Shim);
        if exec {
            self.extend_last(c, PhaseKind::Exec, ev);
        } else if helper || self.containers[c].started() {
            let kind = if self.containers[c].c.exited_ns.is_some() {
                PhaseKind::NetworkCleanup
            } else {
                PhaseKind::Network
            };
            self.phase(c, kind, ev);
        } else {
            self.containers[c].c.ns.merge(ns, joined);
            self.containers[c].ns_done = true;
            self.phase(c, PhaseKind::Namespaces, ev);
            if joined.contains(&NsKind::Net) {
                self.netns_known(c);
            }
        }
        true
    }

    /// A process of no container joining a network namespace: the container's that owns
    /// it, or one still to come.
    fn daemon_setns(&mut self, ev: &Event, joined: &[NsKind], ns: &NsInodes) -> bool {
        if !succeeded(ev) || !joined.contains(&NsKind::Net) || ns.net == self.host.net {
            return false;
        }
        match self.netns_container(ns.net) {
            Some(c) => {
                let kind = self.network_kind(c);
                self.event_for(c, kind, ev, Evidence::Netns);
            }
            None => self.wait(Key::Netns(ns.net), PhaseKind::Network, ev),
        }
        true
    }
}
