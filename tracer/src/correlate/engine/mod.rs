//! The correlator: fed events in time order, it follows every process (fork, exec, rename,
//! exit), recognises containers from command lines, state paths, cgroups and namespaces,
//! and files each event of a container under a phase.
//!
//! Attribution is by process where a process works for one container (the shim, runc and
//! its `runc init` helpers, the container's own processes: children inherit it), and by
//! event where a shared daemon acts for one (dockerd's overlay mount, a netns bind mount
//! naming the container's pid, an unmount of a path holding its id). Daemon activity that
//! names no container yet (dockerd mounting the image and creating the veth before
//! containerd starts the shim) waits in `pending` and goes to the next container an engine
//! starts, within [`PENDING_WINDOW_NS`].

mod exec;
mod key;
mod mount;
mod namespaces;
mod process;
mod veth;

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{
    identify,
    model::{Container, Phase, PhaseKind, Process, Role, Runtime},
    Context,
};
use crate::event::{Detail, Event, HostNs, NsInodes};

/// Daemon activity older than this when a container appears is not its.
pub const PENDING_WINDOW_NS: u64 = 10_000_000_000;

/// Daemons whose unattributed mounts and links are set up for the next container.
const ENGINES: &[&str] = &["dockerd", "containerd", "podman", "netavark", "crio"];

#[derive(Debug, Default)]
struct Proc {
    ppid: u32,
    comms: Vec<String>,
    argv: Vec<String>,
    container: Option<usize>,
    role: Option<Role>,
    /// Descends from `runc exec`: its commands are exec sessions, not the container's init.
    exec_session: bool,
    /// `tracer run`, waiting for its first mount to name its container.
    tracer_run: Option<Option<String>>,
}

impl Proc {
    fn comm(&self) -> &str {
        self.comms.last().map_or("", String::as_str)
    }
}

#[derive(Debug)]
struct State {
    c: Container,
    phases: HashMap<PhaseKind, usize>,
    procs: BTreeMap<u32, Process>,
    init_pid: Option<u32>,
    ns_done: bool,
    pivot_done: bool,
    /// Overlay and netns mount points made for it: their unmounts are its teardown.
    mount_targets: Vec<String>,
}

impl State {
    fn started(&self) -> bool {
        self.c.started_ns.is_some()
    }
}

pub struct Engine {
    host: HostNs,
    cgroups: BTreeMap<u64, String>,
    procs: HashMap<u32, Proc>,
    containers: Vec<State>,
    by_id: HashMap<String, usize>,
    pending: VecDeque<(Event, PhaseKind)>,
    /// The container a daemon's event was filed under (by `event_for`).
    event_owner: Option<usize>,
}

impl Engine {
    pub fn new(ctx: &Context) -> Self {
        Self {
            host: ctx.host,
            cgroups: ctx.cgroups.clone(),
            procs: HashMap::new(),
            containers: Vec::new(),
            by_id: HashMap::new(),
            pending: VecDeque::new(),
            event_owner: None,
        }
    }

    /// Cgroup paths learnt while tracing (id → path): only new ids are copied.
    pub fn learn_cgroups(&mut self, names: &BTreeMap<u64, String>) {
        if names.len() == self.cgroups.len() {
            return;
        }
        for (id, path) in names {
            self.cgroups.entry(*id).or_insert_with(|| path.clone());
        }
    }

    /// Takes one event (in time order); returns whether it is about containers (the
    /// stream shows only those unless asked for everything).
    pub fn feed(&mut self, ev: &Event) -> bool {
        self.feed_owned(ev).0
    }

    /// Like `feed`, also naming the container (its index in `finish`'s list) the event
    /// belongs to.
    pub fn feed_owned(&mut self, ev: &Event) -> (bool, Option<usize>) {
        self.event_owner = None;
        let before = self.container_of(ev.tgid);
        let attributed = self.attribute(ev);
        let owner = if attributed {
            self.event_owner
                .or_else(|| self.container_of(ev.tgid))
                .or(before)
        } else {
            None
        };
        let related = attributed
            || matches!(
                ev.detail,
                Detail::Namespaces { .. }
                    | Detail::Setns { .. }
                    | Detail::Veth { .. }
                    | Detail::PivotRoot { .. }
            )
            || (ev.mnt_ns != 0 && self.host.mnt != 0 && ev.mnt_ns != self.host.mnt);
        (related, owner)
    }

    /// The containers, in the order they were recognised.
    pub fn finish(self) -> Vec<Container> {
        self.containers
            .into_iter()
            .map(|mut st| {
                st.c.processes = st.procs.into_values().collect();
                st.c.phases.sort_by_key(|p| (p.start_ns, p.kind));
                st.c.new_namespaces.sort();
                st.c
            })
            .collect()
    }

    fn proc_mut(&mut self, tgid: u32, ev: &Event) -> &mut Proc {
        self.procs.entry(tgid).or_insert_with(|| Proc {
            ppid: ev.ppid,
            comms: vec![ev.comm.clone()],
            ..Proc::default()
        })
    }

    fn container_of(&self, tgid: u32) -> Option<usize> {
        self.procs.get(&tgid).and_then(|p| p.container)
    }

    /// Finds or makes the container `id`.
    fn container(&mut self, id: &str, runtime: Runtime, found_by: &str, ts: u64) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        let i = self.containers.len();
        self.containers.push(State {
            c: Container {
                id: id.to_string(),
                name: None,
                engine: None,
                runtime,
                found_by: found_by.to_string(),
                command: Vec::new(),
                created_ns: ts,
                started_ns: None,
                exited_ns: None,
                exit_code: None,
                signal: None,
                ns: NsInodes::default(),
                new_namespaces: Vec::new(),
                veths: Vec::new(),
                mounts: 0,
                phases: Vec::new(),
                processes: Vec::new(),
            },
            phases: HashMap::new(),
            procs: BTreeMap::new(),
            init_pid: None,
            ns_done: false,
            pivot_done: false,
            mount_targets: Vec::new(),
        });
        self.by_id.insert(id.to_string(), i);
        i
    }

    /// Makes `tgid` one of container `c`'s processes.
    fn join(&mut self, tgid: u32, c: usize, role: Role, ev: &Event) {
        let p = self.proc_mut(tgid, ev);
        p.container = Some(c);
        p.role = Some(role);
        let (ppid, comms, argv) = (p.ppid, p.comms.clone(), p.argv.clone());
        let entry = self.containers[c].procs.entry(tgid).or_insert(Process {
            pid: tgid,
            ppid,
            comms,
            argv,
            role,
            exit_code: None,
            signal: None,
        });
        entry.role = role;
    }

    /// Files `ev` under phase `kind` of container `c`.
    fn phase(&mut self, c: usize, kind: PhaseKind, ev: &Event) {
        let st = &mut self.containers[c];
        st.c.created_ns = st.c.created_ns.min(ev.ts_ns);
        let existing = if kind.once() {
            st.phases.get(&kind).copied()
        } else {
            None
        };
        match existing {
            Some(i) => {
                let p = &mut st.c.phases[i];
                p.start_ns = p.start_ns.min(ev.ts_ns);
                p.end_ns = p.end_ns.max(ev.ts_ns);
                p.events += 1;
            }
            None => {
                st.phases.insert(kind, st.c.phases.len());
                st.c.phases.push(Phase {
                    kind,
                    start_ns: ev.ts_ns,
                    end_ns: ev.ts_ns,
                    events: 1,
                    key: key::text(ev),
                    pid: ev.tgid,
                    comm: ev.comm.clone(),
                    call: key::call(ev).map(str::to_string),
                });
            }
        }
    }

    /// Extends the latest phase `kind` (an exec session) or starts one.
    fn extend_last(&mut self, c: usize, kind: PhaseKind, ev: &Event) {
        let st = &mut self.containers[c];
        match st.c.phases.iter_mut().rev().find(|p| p.kind == kind) {
            Some(p) => {
                p.end_ns = p.end_ns.max(ev.ts_ns);
                p.events += 1;
            }
            None => self.phase(c, kind, ev),
        }
    }

    /// Gives daemon activity waiting for a container to the one an engine just started.
    fn claim_pending(&mut self, c: usize, now: u64) {
        let pending: Vec<_> = self.pending.drain(..).collect();
        for (ev, kind) in pending {
            if now.saturating_sub(ev.ts_ns) > PENDING_WINDOW_NS {
                continue;
            }
            self.event_for(c, kind, &ev);
        }
    }

    /// Files a daemon's event (not its process) under container `c`.
    fn event_for(&mut self, c: usize, kind: PhaseKind, ev: &Event) {
        self.event_owner = Some(c);
        let st = &mut self.containers[c];
        match &ev.detail {
            Detail::Mount { target, .. } => {
                st.c.mounts += 1;
                if !st.mount_targets.contains(target) {
                    st.mount_targets.push(target.clone());
                }
            }
            Detail::Umount { .. } => st.c.mounts += 1,
            Detail::Veth { name, peer, .. } => {
                for n in [name, peer] {
                    if !n.is_empty() && !st.c.veths.contains(n) {
                        st.c.veths.push(n.clone());
                    }
                }
            }
            Detail::Exec { .. }
            | Detail::PivotRoot { .. }
            | Detail::Fsopen { .. }
            | Detail::Fsconfig { .. }
            | Detail::Fsmount { .. }
            | Detail::MoveMount { .. }
            | Detail::OpenTree { .. }
            | Detail::MountSetattr { .. }
            | Detail::Fork { .. }
            | Detail::Exit { .. }
            | Detail::Rename { .. }
            | Detail::Namespaces { .. }
            | Detail::Setns { .. } => {}
        }
        self.phase(c, kind, ev);
    }

    /// Assigns `ev`; true when it belongs to a container or waits for one. Every kind is
    /// named: a new one does not compile until it is attributed here.
    fn attribute(&mut self, ev: &Event) -> bool {
        match &ev.detail {
            Detail::Fork { child_pid } => self.fork(ev, *child_pid),
            Detail::Rename {
                target_pid,
                newcomm,
                ..
            } => self.rename(ev, *target_pid, newcomm),
            Detail::Exec { .. } => self.exec(ev),
            Detail::Exit {
                exit_code, signal, ..
            } => self.exit(ev, *exit_code, *signal),
            Detail::Namespaces { new, ns, .. } => self.namespaces(ev, new, ns),
            Detail::Setns { joined, ns, .. } => self.setns(ev, joined, ns),
            Detail::PivotRoot { .. } => {
                let Some(c) = self.container_of(ev.tgid) else {
                    return false;
                };
                self.containers[c].pivot_done = true;
                self.phase(c, PhaseKind::PivotRoot, ev);
                true
            }
            Detail::Veth { name, peer, .. } => self.veth(ev, name, peer),
            Detail::Mount { .. }
            | Detail::Umount { .. }
            | Detail::Fsopen { .. }
            | Detail::Fsconfig { .. }
            | Detail::Fsmount { .. }
            | Detail::MoveMount { .. }
            | Detail::OpenTree { .. }
            | Detail::MountSetattr { .. } => self.mount(ev),
        }
    }

    fn is_engine(&self, ev: &Event) -> bool {
        let comm = self
            .procs
            .get(&ev.tgid)
            .map_or(ev.comm.as_str(), Proc::comm);
        ENGINES.contains(&comm) || ENGINES.contains(&ev.comm.as_str())
    }

    /// A container whose mount namespace the event's process is in, or whose cgroup it is
    /// in; the process joins it.
    fn by_namespace(&mut self, ev: &Event) -> Option<usize> {
        let host_mnt = self.host.mnt;
        let by_ns = (ev.mnt_ns != 0 && ev.mnt_ns != host_mnt)
            .then(|| {
                self.containers
                    .iter()
                    .position(|st| st.c.ns.mnt == ev.mnt_ns && st.started())
            })
            .flatten();
        let c = match by_ns {
            Some(c) => c,
            None => {
                let path = self.cgroups.get(&ev.cgroup_id)?;
                let (engine, id) = identify::cgroup_container(path)?;
                let id = id.to_string();
                let found = format!("cgroup {path}");
                let c = self.container(&id, Runtime::Runc, &found, ev.ts_ns);
                self.containers[c].c.engine.get_or_insert(engine);
                c
            }
        };
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        self.join(ev.tgid, c, Role::Container, ev);
        if let Some(p) = self.procs.get_mut(&ev.tgid) {
            p.exec_session = exec || self.containers[c].started();
        }
        Some(c)
    }
}

fn succeeded(ev: &Event) -> bool {
    ev.detail.result().is_none_or(|r| !r.failed())
}
