//! Processes: the tree built from fork, rename and exit, and what a container's processes
//! inherit from their parents.

use super::{Engine, Proc};
use crate::{
    correlate::model::{Evidence, PhaseKind, Process},
    event::Event,
};

impl Engine {
    /// A new process inherits its parent's container and role.
    pub(super) fn fork(&mut self, ev: &Event, child_pid: u32) -> bool {
        let tgid = ev.tgid;
        let parent = self.proc_mut(tgid, ev);
        let child = Proc {
            ppid: tgid,
            comms: vec![parent.comm().to_string()],
            argv: parent.argv.clone(),
            container: parent.container,
            role: parent.role,
            evidence: parent.container.map(|_| Evidence::ProcessTree),
            exec_session: parent.exec_session,
            tracer_run: None,
        };
        let inherit = child.container.zip(child.role);
        self.procs.insert(child_pid, child);
        let Some((c, role)) = inherit else {
            return false;
        };
        // The container's first process may not exist yet as a process of its own: record
        // it now so its later exec or exit finds it.
        let st = &mut self.containers[c];
        let parent = st.procs.get(&tgid).cloned();
        st.procs.entry(child_pid).or_insert(Process {
            pid: child_pid,
            ppid: tgid,
            comms: parent.as_ref().map(|p| p.comms.clone()).unwrap_or_default(),
            argv: parent.map(|p| p.argv).unwrap_or_default(),
            role,
            evidence: Evidence::ProcessTree,
            exit_code: None,
            signal: None,
        });
        true
    }

    /// A process's new name (`runc:[1:CHILD]`).
    pub(super) fn rename(&mut self, ev: &Event, target: u32, newcomm: &str) -> bool {
        // Threads naming themselves (tokio workers) do not rename the process.
        if target != ev.tgid {
            return self.container_of(ev.tgid).is_some();
        }
        let Some(p) = self.procs.get_mut(&target) else {
            return false;
        };
        p.comms.push(newcomm.to_string());
        let Some(c) = p.container else { return false };
        if let Some(pr) = self.containers[c].procs.get_mut(&target) {
            pr.comms.push(newcomm.to_string());
        }
        true
    }

    /// A process ends; its container's init ending is the container's exit.
    pub(super) fn exit(&mut self, ev: &Event, code: Option<i32>, signal: Option<i32>) -> bool {
        let tgid = ev.tgid;
        let Some(c) = self.procs.remove(&tgid).and_then(|p| p.container) else {
            return false;
        };
        let st = &mut self.containers[c];
        if let Some(pr) = st.procs.get_mut(&tgid) {
            pr.exit_code = code;
            pr.signal = signal;
        }
        if st.init_pid == Some(tgid) && st.c.exited_ns.is_none() {
            st.c.exited_ns = Some(ev.ts_ns);
            st.c.exit_code = code;
            st.c.signal = signal;
            let net = st.c.ns.net;
            self.phase(c, PhaseKind::Exit, ev);
            // Its namespace dies with it, and the kernel reuses inode numbers: a later
            // namespace with the same number is someone else's.
            if self.netns_owner.get(&net) == Some(&c) {
                self.netns_owner.remove(&net);
            }
        }
        true
    }
}
