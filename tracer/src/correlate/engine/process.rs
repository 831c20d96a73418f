//! Processes: the tree built from fork, rename and exit, and what a container's processes
//! inherit from their parents.

use super::{push_comm, Engine, Proc};
use crate::{
    correlate::model::{Evidence, PhaseKind, Process, Sender},
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
        if st.procs.contains_key(&child_pid) {
            return true;
        }
        let parent = st.procs.get(&tgid);
        let p = Process {
            pid: child_pid,
            ppid: tgid,
            comms: parent.map(|p| p.comms.clone()).unwrap_or_default(),
            argv: parent.map(|p| p.argv.clone()).unwrap_or_default(),
            role,
            evidence: Evidence::ProcessTree,
            exit_code: None,
            signal: None,
        };
        st.list(p);
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
        push_comm(&mut p.comms, newcomm.to_string());
        let Some(c) = p.container else { return false };
        if let Some(pr) = self.containers[c].procs.get_mut(&target) {
            push_comm(&mut pr.comms, newcomm.to_string());
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
        let sent = st.signals.remove(&tgid);
        if st.init_pid == Some(tgid) && st.c.exited_ns.is_none() {
            st.c.exited_ns = Some(ev.ts_ns);
            st.c.exit_code = code;
            st.c.signal = signal;
            // The signal it died of, and who sent it (the OOM killer says more than its
            // SIGKILL).
            st.c.killed_by = sent.filter(|s| Some(s.signal) == signal && !st.c.oom_killed);
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

    /// The OOM killer chose one of a container's processes.
    pub(super) fn oom_kill(&mut self, ev: &Event, target: u32) -> bool {
        let Some(c) = self.container_of(target) else {
            return false;
        };
        self.containers[c].c.oom_killed = true;
        self.event_for(c, PhaseKind::Exit, ev, Evidence::ProcessTree);
        true
    }

    /// A fatal signal to one of a container's processes (named by its target): kept as the
    /// cause of that process's death.
    pub(super) fn signal(&mut self, ev: &Event, signal: i32, target: u32) -> bool {
        let Some(c) = self.container_of(target) else {
            return self.container_of(ev.tgid).is_some();
        };
        let sender = Sender {
            pid: ev.tgid,
            comm: ev.comm.clone(),
            signal,
        };
        self.containers[c].signals.insert(target, sender);
        self.event_for(c, PhaseKind::Kill, ev, Evidence::ProcessTree);
        true
    }
}
