//! Execs: command lines that name a container (shims, conmon, runc/crun, `tracer run`,
//! hooks), and a container's own commands (its init's, `docker exec`'s).

use super::{push_comm, succeeded, Engine};
use crate::{
    correlate::{
        identify::{self, Call, Sub},
        model::{ContainerEngine, Evidence, PhaseKind, Role, Runtime},
    },
    event::{Detail, Event},
};

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The comm an exec gives a process: the file's name, cut to 15 bytes.
fn exec_comm(filename: &str) -> String {
    let mut c = basename(filename).to_string();
    while c.len() > 15 {
        c.pop();
    }
    c
}

impl Engine {
    pub(super) fn exec(&mut self, ev: &Event) -> bool {
        let Detail::Exec {
            filename,
            argv,
            execveat,
            ..
        } = &ev.detail
        else {
            return false;
        };
        let ok = succeeded(ev);
        if ok {
            self.renamed_by_exec(ev, filename, argv, execveat.is_some());
        }
        if let Some(call) = ok.then(|| identify::classify(filename, argv)).flatten() {
            if let Some(related) = self.named_by_exec(ev, call, argv) {
                return related;
            }
        }
        self.in_container_exec(ev, filename, argv, ok)
    }

    /// The process's new name and argv, in the tree and in its container.
    fn renamed_by_exec(&mut self, ev: &Event, filename: &str, argv: &[String], at: bool) {
        let tgid = ev.tgid;
        let p = self.proc_mut(tgid, ev);
        // `execveat(fd, "", AT_EMPTY_PATH)` (runc's re-exec) keeps the name.
        let comm = if at && filename.is_empty() {
            p.comm().to_string()
        } else {
            exec_comm(filename)
        };
        if p.comm() != comm {
            push_comm(&mut p.comms, comm);
        }
        p.argv = argv.to_vec();
        let (comms, argv) = (p.comms.clone(), p.argv.clone());
        if let Some(c) = p.container {
            if let Some(pr) = self.containers[c].procs.get_mut(&tgid) {
                pr.comms = comms;
                pr.argv = argv;
            }
        }
    }

    /// A command line that names a container; `None` when it still needs the general rules.
    fn named_by_exec(&mut self, ev: &Event, call: Call, argv: &[String]) -> Option<bool> {
        let tgid = ev.tgid;
        match call {
            Call::Shim { id, engine } => {
                let found = "containerd shim argv";
                let delete = argv.last().is_some_and(|a| a == "delete");
                let c = if delete {
                    self.container(&id, Runtime::Runc, found, ev.ts_ns)
                } else {
                    self.starting(&id, Runtime::Runc, found, ev.ts_ns)
                };
                self.containers[c].c.engine.get_or_insert(engine);
                self.join(tgid, c, Role::Shim, Evidence::Argv, ev);
                let kind = if delete {
                    PhaseKind::Delete
                } else {
                    PhaseKind::Shim
                };
                self.phase(c, kind, ev);
                Some(true)
            }
            Call::Conmon { id, name } => {
                let c = self.starting(&id, Runtime::Runc, "conmon argv", ev.ts_ns);
                let st = &mut self.containers[c];
                st.c.engine.get_or_insert(ContainerEngine::Podman);
                if let Some(rt) = identify::opt_value(argv, &["-r", "--runtime"]) {
                    st.c.runtime = Runtime::from_name(basename(rt));
                }
                if name.is_some() {
                    st.c.name = name;
                }
                self.join(tgid, c, Role::Shim, Evidence::Argv, ev);
                self.phase(c, PhaseKind::Shim, ev);
                Some(true)
            }
            Call::Runtime { runtime, sub, id } => {
                self.runtime_call(ev, runtime, sub, &id);
                Some(true)
            }
            Call::TracerRun { name } => {
                self.proc_mut(tgid, ev).tracer_run = Some(name);
                Some(false)
            }
            Call::Unshare => {
                // Inside a container it is one of its commands (and its user namespace is
                // the container's business); outside, a sandbox of its own, named by its pid.
                if self.container_of(tgid).is_some() {
                    return None;
                }
                let id = format!("unshare-{tgid}");
                let c = self.starting(
                    &id,
                    Runtime::Other("unshare".into()),
                    "unshare argv",
                    ev.ts_ns,
                );
                self.join(tgid, c, Role::Runtime, Evidence::Argv, ev);
                self.phase(c, PhaseKind::RuntimeInit, ev);
                Some(true)
            }
            Call::Hook => {
                let c = self.container_of(tgid)?;
                self.join(tgid, c, Role::Hook, Evidence::ProcessTree, ev);
                self.phase(c, PhaseKind::Hooks, ev);
                Some(true)
            }
        }
    }

    /// `runc|crun SUB ... ID`: the runtime working on container `id`.
    fn runtime_call(&mut self, ev: &Event, runtime: Runtime, sub: Sub, id: &str) {
        let tgid = ev.tgid;
        let starts = matches!(sub, Sub::Create | Sub::Run);
        let c = match self.container_of(tgid).filter(|&c| {
            let st = &self.containers[c];
            st.c.id == id && !(starts && st.c.exited_ns.is_some())
        }) {
            Some(c) => c,
            None => {
                let found = format!("{runtime} argv");
                if starts {
                    self.starting(id, runtime.clone(), &found, ev.ts_ns)
                } else {
                    self.container(id, runtime.clone(), &found, ev.ts_ns)
                }
            }
        };
        self.containers[c].c.runtime = runtime;
        self.join(tgid, c, Role::Runtime, Evidence::Argv, ev);
        let kind = match sub {
            Sub::Create | Sub::Run => Some(PhaseKind::RuntimeInit),
            Sub::Start => Some(PhaseKind::Start),
            Sub::Delete => Some(PhaseKind::Delete),
            Sub::Exec => Some(PhaseKind::Exec),
            Sub::Kill => Some(PhaseKind::Kill),
            Sub::Other => None,
        };
        if sub == Sub::Exec {
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.exec_session = true;
            }
        }
        if let Some(kind) = kind {
            self.phase(c, kind, ev);
        }
    }

    /// An exec by a process of a container (or in one's namespaces): the runtime's own
    /// re-execs, an exec session's commands, or the user's command.
    fn in_container_exec(&mut self, ev: &Event, filename: &str, argv: &[String], ok: bool) -> bool {
        let tgid = ev.tgid;
        let c = match self.container_of(tgid) {
            Some(c) => c,
            None => match self.by_namespace(ev) {
                Some(c) => c,
                None => return false,
            },
        };
        let (role, exec_session) = self
            .procs
            .get(&tgid)
            .map_or((None, false), |p| (p.role, p.exec_session));
        // unshare's sandbox may keep the host's mounts: its user namespace is what it is in.
        let st = &self.containers[c];
        let inside = (ev.mnt_ns != 0 && ev.mnt_ns != self.host.mnt)
            || (st.c.runtime.name() == "unshare"
                && st.c.ns.user != 0
                && ev.user_ns == st.c.ns.user);
        let runtime_reexec = filename == "/proc/self/exe" || filename.is_empty();
        if !ok || !inside || runtime_reexec || role == Some(Role::Shim) {
            if ok && !self.containers[c].started() && role == Some(Role::Runtime) {
                self.phase(c, PhaseKind::RuntimeInit, ev);
            }
            return true;
        }
        self.join(tgid, c, Role::Container, Evidence::ProcessTree, ev);
        if exec_session {
            self.extend_last(c, PhaseKind::Exec, ev);
            return true;
        }
        let st = &mut self.containers[c];
        if st.started() {
            return true;
        }
        st.c.started_ns = Some(ev.ts_ns);
        st.c.command = argv.to_vec();
        st.init_pid = Some(tgid);
        for (slot, v) in [
            (&mut st.c.ns.mnt, ev.mnt_ns),
            (&mut st.c.ns.pid, ev.pid_ns),
            (&mut st.c.ns.net, ev.net_ns),
            (&mut st.c.ns.user, ev.user_ns),
        ] {
            if *slot == 0 {
                *slot = v;
            }
        }
        // Its user namespace made before it (rootless podman's): the maps written for it.
        let st = &mut self.containers[c];
        if st.c.security.uid_map.is_none() {
            if let Some((uid, gid)) = self.user_maps.of(st.c.ns.user) {
                st.c.security.uid_map.clone_from(uid);
                st.c.security.gid_map.clone_from(gid);
            }
        }
        self.phase(c, PhaseKind::UserExec, ev);
        self.netns_known(c);
        true
    }
}
