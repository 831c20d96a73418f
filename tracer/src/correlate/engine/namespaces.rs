//! New namespaces (unshare, clone) and joined ones (setns).

use super::{succeeded, Engine};
use crate::{
    correlate::model::PhaseKind,
    event::{Event, NsInodes, NsKind},
};

impl Engine {
    /// Namespaces created for a container's process: the container's namespaces.
    pub(super) fn namespaces(&mut self, ev: &Event, new: &[NsKind], ns: &NsInodes) -> bool {
        if !succeeded(ev) {
            return self.container_of(ev.tgid).is_some();
        }
        let Some(c) = self.container_of(ev.tgid).or_else(|| self.by_namespace(ev)) else {
            // An engine making the container's netns ahead of it (podman).
            if self.is_engine(ev) && new == [NsKind::Net] {
                self.pending.push_back((ev.clone(), PhaseKind::Network));
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
        } else {
            PhaseKind::Namespaces
        };
        self.phase(c, kind, ev);
        true
    }

    /// A container's process joining namespaces: the runtime setting up, or an exec session.
    pub(super) fn setns(&mut self, ev: &Event, joined: &[NsKind], ns: &NsInodes) -> bool {
        let Some(c) = self.container_of(ev.tgid) else {
            return false;
        };
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        if joined.is_empty() || !succeeded(ev) {
            return true;
        }
        if exec {
            self.extend_last(c, PhaseKind::Exec, ev);
        } else {
            self.containers[c].c.ns.merge(ns, joined);
            self.phase(c, PhaseKind::Namespaces, ev);
        }
        true
    }
}
