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

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{
    identify::{self, Call, Sub},
    model::{Container, Phase, PhaseKind, Process, Role},
    Context,
};
use crate::{
    cgroup_names::CgroupNames,
    event::{Detail, Event, NsInodes},
    render::{document::HostNs, stream},
};

/// Daemon activity older than this when a container appears is not its.
pub const PENDING_WINDOW_NS: u64 = 10_000_000_000;

/// Daemons whose unattributed mounts and links are set up for the next container.
const ENGINES: &[&str] = &["dockerd", "containerd", "podman", "netavark", "crio"];

/// Key events are cut to this many characters.
const KEY_CHARS: usize = 160;

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

fn key(ev: &Event) -> String {
    let mut s = if ev.tgid == 0 && ev.comm.is_empty() {
        // The rtnetlink monitor: link notifications carry no creator.
        format!("[rtnetlink] {}", ev.detail.kind())
    } else {
        format!("{} {} {}", ev.comm, ev.tgid, ev.detail.kind())
    };
    if ev.detail.result().is_some_and(|r| r.failed()) {
        s.push('!');
    }
    s.push_str(": ");
    s.push_str(&stream::content(ev));
    if s.chars().count() > KEY_CHARS {
        s = s.chars().take(KEY_CHARS - 1).collect();
        s.push('…');
    }
    s
}

fn succeeded(ev: &Event) -> bool {
    ev.detail.result().is_none_or(|r| !r.failed())
}

/// The target path of a mount-family event (where it mounts or unmounts).
fn mount_target(d: &Detail) -> Option<&str> {
    match d {
        Detail::Mount { target, .. } | Detail::Umount { target, .. } => Some(target),
        Detail::MoveMount { to_path, .. } => Some(to_path),
        Detail::OpenTree { path, .. } | Detail::MountSetattr { path, .. } => Some(path),
        _ => None,
    }
}

fn is_mount_family(d: &Detail) -> bool {
    matches!(
        d,
        Detail::Mount { .. }
            | Detail::Umount { .. }
            | Detail::Fsopen { .. }
            | Detail::Fsconfig { .. }
            | Detail::Fsmount { .. }
            | Detail::MoveMount { .. }
            | Detail::OpenTree { .. }
            | Detail::MountSetattr { .. }
    )
}

/// `/proc/<pid>/ns/net` (or `/proc/<pid>/task/<tid>/ns/net`): the pid.
fn netns_source_pid(source: &str) -> Option<u32> {
    let rest = source.strip_prefix("/proc/")?;
    if !rest.ends_with("/ns/net") {
        return None;
    }
    rest.split('/').next()?.parse().ok()
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

    /// Cgroup paths learnt while tracing.
    pub fn learn_cgroups(&mut self, names: &CgroupNames) {
        for (id, path) in names.map() {
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
                st.c.new_namespaces.sort_by_key(|k| ns_order(k));
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
    fn container(&mut self, id: &str, runtime: &str, found_by: &str, ts: u64) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        let i = self.containers.len();
        self.containers.push(State {
            c: Container {
                id: id.to_string(),
                name: None,
                engine: None,
                runtime: runtime.to_string(),
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
                    key: key(ev),
                    pid: ev.tgid,
                    comm: ev.comm.clone(),
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
            _ => {}
        }
        self.phase(c, kind, ev);
    }

    /// Assigns `ev`; true when it belongs to a container or waits for one.
    fn attribute(&mut self, ev: &Event) -> bool {
        let tgid = ev.tgid;
        match &ev.detail {
            Detail::Fork { child_pid } => {
                let parent = self.proc_mut(tgid, ev);
                let child = Proc {
                    ppid: tgid,
                    comms: vec![parent.comm().to_string()],
                    argv: parent.argv.clone(),
                    container: parent.container,
                    role: parent.role,
                    exec_session: parent.exec_session,
                    tracer_run: None,
                };
                let inherit = child.container.zip(child.role);
                self.procs.insert(*child_pid, child);
                if let Some((c, role)) = inherit {
                    // The container's first process may not exist yet as a process of its
                    // own: record it now so its later exec or exit finds it.
                    let st = &mut self.containers[c];
                    let parent = st.procs.get(&tgid).cloned();
                    st.procs.entry(*child_pid).or_insert(Process {
                        pid: *child_pid,
                        ppid: tgid,
                        comms: parent.as_ref().map(|p| p.comms.clone()).unwrap_or_default(),
                        argv: parent.map(|p| p.argv).unwrap_or_default(),
                        role,
                        exit_code: None,
                        signal: None,
                    });
                    return true;
                }
                false
            }
            Detail::Rename {
                target_pid,
                newcomm,
                ..
            } => {
                // Threads naming themselves (tokio workers) do not rename the process.
                let target = *target_pid;
                if target != tgid {
                    return self.container_of(tgid).is_some();
                }
                let Some(p) = self.procs.get_mut(&target) else {
                    return false;
                };
                p.comms.push(newcomm.clone());
                let Some(c) = p.container else { return false };
                if let Some(pr) = self.containers[c].procs.get_mut(&target) {
                    pr.comms.push(newcomm.clone());
                }
                true
            }
            Detail::Exec { .. } => self.exec(ev),
            Detail::Exit {
                exit_code, signal, ..
            } => {
                let c = self.procs.remove(&tgid).and_then(|p| p.container);
                let Some(c) = c else { return false };
                let st = &mut self.containers[c];
                if let Some(pr) = st.procs.get_mut(&tgid) {
                    pr.exit_code = *exit_code;
                    pr.signal = *signal;
                }
                if st.init_pid == Some(tgid) && st.c.exited_ns.is_none() {
                    st.c.exited_ns = Some(ev.ts_ns);
                    st.c.exit_code = *exit_code;
                    st.c.signal = *signal;
                    self.phase(c, PhaseKind::Exit, ev);
                }
                true
            }
            Detail::Namespaces { new, ns, .. } => {
                if !succeeded(ev) {
                    return self.container_of(tgid).is_some();
                }
                let Some(c) = self.container_of(tgid).or_else(|| self.by_namespace(ev)) else {
                    // An engine making the container's netns ahead of it (podman).
                    if self.is_engine(ev) && new.iter().all(|k| k == "net") && !new.is_empty() {
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
                        st.c.new_namespaces.push(k.clone());
                    }
                }
                merge_ns(&mut st.c.ns, ns, new);
                st.ns_done = true;
                let kind = if st.started() {
                    PhaseKind::Exec
                } else {
                    PhaseKind::Namespaces
                };
                self.phase(c, kind, ev);
                true
            }
            Detail::Setns { joined, ns, .. } => {
                let Some(c) = self.container_of(tgid) else {
                    return false;
                };
                let exec = self.procs.get(&tgid).is_some_and(|p| p.exec_session);
                if joined.is_empty() || !succeeded(ev) {
                    return true;
                }
                if exec {
                    self.extend_last(c, PhaseKind::Exec, ev);
                } else {
                    let st = &mut self.containers[c];
                    merge_ns(&mut st.c.ns, ns, joined);
                    self.phase(c, PhaseKind::Namespaces, ev);
                }
                true
            }
            Detail::PivotRoot { .. } => {
                let Some(c) = self.container_of(tgid) else {
                    return false;
                };
                self.containers[c].pivot_done = true;
                self.phase(c, PhaseKind::PivotRoot, ev);
                true
            }
            Detail::Veth { name, peer, .. } => self.veth(ev, name, peer),
            d if is_mount_family(d) => self.mount(ev),
            _ => self.container_of(tgid).is_some(),
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
                let c = self.container(&id, "runc", &found, ev.ts_ns);
                let st = &mut self.containers[c];
                st.c.engine.get_or_insert_with(|| engine.to_string());
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

    fn exec(&mut self, ev: &Event) -> bool {
        let Detail::Exec {
            filename,
            argv,
            execveat,
            ..
        } = &ev.detail
        else {
            return false;
        };
        let tgid = ev.tgid;
        let ok = succeeded(ev);
        if ok {
            let p = self.proc_mut(tgid, ev);
            let comm = if execveat.is_some() && filename.is_empty() {
                p.comm().to_string()
            } else {
                exec_comm(filename)
            };
            if p.comm() != comm {
                p.comms.push(comm);
            }
            p.argv = argv.clone();
            let (comms, argv) = (p.comms.clone(), p.argv.clone());
            if let Some(c) = p.container {
                if let Some(pr) = self.containers[c].procs.get_mut(&tgid) {
                    pr.comms = comms;
                    pr.argv = argv;
                }
            }
        }
        let call = ok.then(|| identify::classify(filename, argv)).flatten();
        match call {
            Some(Call::Shim { id, engine }) => {
                let c = self.container(&id, "runc", "containerd shim argv", ev.ts_ns);
                self.containers[c]
                    .c
                    .engine
                    .get_or_insert_with(|| engine.to_string());
                self.join(tgid, c, Role::Shim, ev);
                let delete = argv.last().is_some_and(|a| a == "delete");
                if delete {
                    self.phase(c, PhaseKind::Delete, ev);
                } else {
                    self.phase(c, PhaseKind::Shim, ev);
                    self.claim_pending(c, ev.ts_ns);
                }
                return true;
            }
            Some(Call::Conmon { id, name }) => {
                let c = self.container(&id, "runc", "conmon argv", ev.ts_ns);
                let st = &mut self.containers[c];
                st.c.engine.get_or_insert_with(|| "podman".into());
                if let Some(rt) =
                    identify::opt_value(argv, &["-r", "--runtime"]).map(|r| basename(r).to_string())
                {
                    st.c.runtime = rt;
                }
                if name.is_some() {
                    st.c.name = name;
                }
                self.join(tgid, c, Role::Shim, ev);
                self.phase(c, PhaseKind::Shim, ev);
                self.claim_pending(c, ev.ts_ns);
                return true;
            }
            Some(Call::Runtime { runtime, sub, id }) => {
                let c = match self
                    .container_of(tgid)
                    .filter(|&c| self.containers[c].c.id == id)
                {
                    Some(c) => c,
                    None => self.container(&id, runtime, &format!("{runtime} argv"), ev.ts_ns),
                };
                self.containers[c].c.runtime = runtime.to_string();
                self.join(tgid, c, Role::Runtime, ev);
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
                return true;
            }
            Some(Call::TracerRun { name }) => {
                self.proc_mut(tgid, ev).tracer_run = Some(name);
                return false;
            }
            Some(Call::Hook) => {
                if let Some(c) = self.container_of(tgid) {
                    self.join(tgid, c, Role::Hook, ev);
                    let kind = if argv.first().is_some_and(|a| a == "libnetwork-setkey") {
                        PhaseKind::Network
                    } else {
                        PhaseKind::RuntimeInit
                    };
                    self.phase(c, kind, ev);
                    return true;
                }
            }
            None => {}
        }
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
        let inside = ev.mnt_ns != 0 && ev.mnt_ns != self.host.mnt;
        let runtime_reexec = filename == "/proc/self/exe" || filename.is_empty();
        if !ok || !inside || runtime_reexec || role == Some(Role::Shim) {
            if ok && !self.containers[c].started() && role == Some(Role::Runtime) {
                self.phase(c, PhaseKind::RuntimeInit, ev);
            }
            return true;
        }
        if exec_session {
            self.join(tgid, c, Role::Container, ev);
            self.extend_last(c, PhaseKind::Exec, ev);
            return true;
        }
        self.join(tgid, c, Role::Container, ev);
        let st = &mut self.containers[c];
        if st.started() {
            return true;
        }
        st.c.started_ns = Some(ev.ts_ns);
        st.c.command = argv.clone();
        st.init_pid = Some(tgid);
        for (slot, v) in [
            (&mut st.c.ns.mnt, ev.mnt_ns),
            (&mut st.c.ns.pid, ev.pid_ns),
            (&mut st.c.ns.net, ev.net_ns),
        ] {
            if *slot == 0 {
                *slot = v;
            }
        }
        self.phase(c, PhaseKind::UserExec, ev);
        true
    }

    fn veth(&mut self, ev: &Event, name: &str, peer: &str) -> bool {
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
                st.c.runtime == "tracer"
                    && crate::runtime::network::veth_names(&st.c.id)
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

    fn mount(&mut self, ev: &Event) -> bool {
        let tgid = ev.tgid;
        let target = mount_target(&ev.detail).unwrap_or("");
        let overlay = matches!(&ev.detail, Detail::Mount { fstype, .. } if fstype == "overlay");
        let is_umount = matches!(ev.detail, Detail::Umount { .. });
        // The built-in runtime names its container in its first mount.
        if self.container_of(tgid).is_none() {
            if let Some(id) = identify::tracer_state_id(target).map(str::to_string) {
                let name = self.procs.get(&tgid).and_then(|p| p.tracer_run.clone());
                let own = name.is_some() || overlay;
                if own {
                    let c = self.container(&id, "tracer", "state dir /run/tracer/<id>", ev.ts_ns);
                    if let Some(Some(name)) = name {
                        self.containers[c].c.name = Some(name);
                    }
                    self.join(tgid, c, Role::Runtime, ev);
                }
            }
        }
        if let Some(c) = self.container_of(tgid) {
            if self.procs.get(&tgid).is_some_and(|p| p.exec_session) {
                self.containers[c].c.mounts += 1;
                self.extend_last(c, PhaseKind::Exec, ev);
                return true;
            }
            let st = &mut self.containers[c];
            st.c.mounts += 1;
            let kind = if is_umount && st.started() && target.contains("/netns/") {
                PhaseKind::NetworkCleanup
            } else if is_umount && st.mount_targets.iter().any(|t| t == target) {
                if st.started() {
                    PhaseKind::Unmount
                } else {
                    PhaseKind::ImageMount
                }
            } else if overlay && !st.ns_done {
                st.mount_targets.push(target.to_string());
                PhaseKind::ImageMount
            } else if st.started() && is_umount {
                PhaseKind::Unmount
            } else if st.started() {
                // Remounts and propagation changes while tearing down: counted only.
                return true;
            } else if !st.ns_done {
                PhaseKind::RuntimeInit
            } else if !st.pivot_done {
                PhaseKind::RootfsMounts
            } else if is_umount || target == "." {
                PhaseKind::PivotRoot
            } else {
                PhaseKind::MaskPaths
            };
            self.phase(c, kind, ev);
            return true;
        }
        if !succeeded(ev) {
            return false;
        }
        // A daemon's mount: the netns of a container's process, or a path holding an id.
        if let Detail::Mount { source, .. } = &ev.detail {
            if let Some(c) = netns_source_pid(source).and_then(|p| self.container_of(p)) {
                self.event_for(c, PhaseKind::Network, ev);
                return true;
            }
        }
        let by_target = self
            .containers
            .iter()
            .position(|st| st.mount_targets.iter().any(|t| t == target));
        let by_id = || {
            self.containers
                .iter()
                .position(|st| st.c.id.len() >= 12 && target.contains(&st.c.id))
        };
        if let Some(c) = by_target.or_else(by_id) {
            let st = &self.containers[c];
            let netns = target.contains("/netns/");
            let kind = match (st.c.exited_ns.is_some() || st.started(), netns, is_umount) {
                (true, true, _) => PhaseKind::NetworkCleanup,
                (true, false, true) => PhaseKind::Unmount,
                (true, false, false) => return true,
                (false, true, _) => PhaseKind::Network,
                (false, false, _) => PhaseKind::ImageMount,
            };
            self.event_for(c, kind, ev);
            return true;
        }
        if self.is_engine(ev) {
            if overlay || (is_umount && target.ends_with("/merged")) {
                self.pending.push_back((ev.clone(), PhaseKind::ImageMount));
                return true;
            }
            if target.contains("/netns/") {
                self.pending.push_back((ev.clone(), PhaseKind::Network));
                return true;
            }
        }
        false
    }
}

/// Records the inodes of the namespace kinds `kinds` from `ns`.
fn merge_ns(into: &mut NsInodes, ns: &NsInodes, kinds: &[String]) {
    for k in kinds {
        let (slot, v) = match k.as_str() {
            "uts" => (&mut into.uts, ns.uts),
            "ipc" => (&mut into.ipc, ns.ipc),
            "mnt" => (&mut into.mnt, ns.mnt),
            "pid" => (&mut into.pid, ns.pid),
            "net" => (&mut into.net, ns.net),
            "cgroup" => (&mut into.cgroup, ns.cgroup),
            "time" => (&mut into.time, ns.time),
            _ => continue,
        };
        if v != 0 {
            *slot = v;
        }
    }
}

fn ns_order(kind: &str) -> usize {
    tracer_common::NS_NAMES
        .iter()
        .position(|n| *n == kind)
        .unwrap_or(usize::MAX)
}
