//! The correlator: fed events in time order, it follows every process (fork, exec, rename,
//! exit), recognises containers from command lines, state paths, cgroups and namespaces,
//! and files each event of a container under a phase.
//!
//! Every fact goes to a container only on evidence that names it ([`Evidence`]): by
//! process where a process works for one container (the shim, runc and its `runc init`
//! helpers, the container's own processes: children inherit it), and by event where a shared
//! daemon acts for one: an overlay whose merged directory the runtime then binds as the
//! container's root, a veth end moved into the container's network namespace, a netns bind
//! mount naming one of its pids, a path or cgroup holding its id. A daemon's event that names
//! no container yet waits under the key that will ([`waiting`]); what is still waiting at the
//! end was the daemons' own activity, reported as unattributed, never guessed.

mod cgroup;
mod exec;
mod key;
mod mount;
mod namespaces;
mod process;
mod security;
mod slots;
mod veth;
mod waiting;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use self::{
    slots::Slots,
    waiting::{Key, Waiting},
};
use super::{
    identify,
    model::{
        Container, Evidence, Fact, FactKind, Phase, PhaseKind, Process, Role, Runtime, Sender,
        Unattributed,
    },
    Context,
};
use crate::event::{Detail, Event, HostNs, NsInodes};

/// Unattributed events listed in full (the rest are counted).
const UNATTRIBUTED_LISTED: usize = 1000;
/// Processes followed at most: beyond, host processes (no container's) are forgotten and
/// counted. A few times the processes a busy host runs at once.
const MAX_PROCS: usize = 1 << 17;
/// Names kept per process (the first and the latest).
const MAX_COMMS: usize = 8;
/// A container's processes listed at most (the rest are counted).
const MAX_LISTED_PROCESSES: usize = 1000;
/// A container's exec sessions kept as phases of their own (later ones extend the last).
const MAX_EXEC_PHASES: usize = 100;
/// Facts and mount points kept per container.
const MAX_FACTS: usize = 256;

/// How much the engine keeps, for a watch that runs for days.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Containers kept: beyond, the oldest that have exited are dropped (and counted).
    pub max_containers: usize,
}

impl Limits {
    /// Nothing dropped: a report reads a trace whose size is known.
    pub const UNLIMITED: Self = Self {
        max_containers: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_containers: 10_000,
        }
    }
}

#[derive(Debug, Default)]
struct Proc {
    ppid: u32,
    comms: Vec<String>,
    argv: Vec<String>,
    container: Option<usize>,
    role: Option<Role>,
    /// Why it is its container's.
    evidence: Option<Evidence>,
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

/// Adds a process's new name, keeping its first and its latest ones (a shell that execs in a
/// loop for days).
fn push_comm(comms: &mut Vec<String>, name: String) {
    if comms.len() >= MAX_COMMS {
        comms.remove(1);
    }
    comms.push(name);
}

#[derive(Debug)]
struct State {
    c: Container,
    phases: PhaseIndex,
    procs: BTreeMap<u32, Process>,
    init_pid: Option<u32>,
    ns_done: bool,
    pivot_done: bool,
    /// Overlay and netns mount points made for it: their unmounts are its teardown.
    mount_targets: Vec<String>,
    /// The last fatal signal sent to each of its processes, and by whom.
    signals: HashMap<u32, Sender>,
}

/// Where the phase of each kind that happens once is in [`Container::phases`], by kind: a
/// hash map per container cost an allocation and a table for a dozen entries.
#[derive(Debug)]
struct PhaseIndex([u16; PhaseKind::COUNT]);

impl Default for PhaseIndex {
    fn default() -> Self {
        Self([u16::MAX; PhaseKind::COUNT])
    }
}

impl PhaseIndex {
    fn get(&self, kind: PhaseKind) -> Option<usize> {
        let i = *self.0.get(kind as usize)?;
        (i != u16::MAX).then_some(usize::from(i))
    }

    fn insert(&mut self, kind: PhaseKind, at: usize) {
        // Past u16::MAX phases (exec sessions repeat; the rest happen once) it is not kept.
        if let Some(slot) = self.0.get_mut(kind as usize) {
            *slot = u16::try_from(at).unwrap_or(u16::MAX);
        }
    }
}

impl State {
    fn started(&self) -> bool {
        self.c.started_ns.is_some()
    }

    /// Lists one of its processes (counted only, past the limit).
    fn list(&mut self, p: Process) {
        if self.procs.len() < MAX_LISTED_PROCESSES {
            self.procs.insert(p.pid, p);
        } else {
            self.c.processes_omitted += 1;
        }
    }

    /// Its cgroup at `path`: the deepest ones only (a runtime making `/docker` for the
    /// first container makes a parent, not its cgroup).
    fn cgroup(&mut self, path: &str, evidence: Evidence) {
        let under = |parent: &str, child: &str| {
            child.len() > parent.len()
                && child.starts_with(parent)
                && (parent.ends_with('/') || child.as_bytes()[parent.len()] == b'/')
        };
        if self.c.cgroups.iter().any(|c| under(path, c) || c == path) {
            return;
        }
        self.c.cgroups.retain(|c| !under(c, path));
        self.c
            .facts
            .retain(|f| f.fact != FactKind::Cgroup || !under(&f.value, path));
        self.c.cgroups.push(path.to_string());
        self.fact(FactKind::Cgroup, path, evidence);
    }

    /// Records a fact once.
    fn fact(&mut self, fact: FactKind, value: &str, evidence: Evidence) {
        if self.c.facts.len() < MAX_FACTS
            && !self
                .c
                .facts
                .iter()
                .any(|f| f.fact == fact && f.value == value)
        {
            self.c.facts.push(Fact {
                fact,
                value: value.to_string(),
                evidence,
            });
        }
    }
}

/// What correlation found: the containers, and what no evidence tied to any.
#[derive(Debug, Default)]
pub struct Correlation {
    pub containers: Vec<Container>,
    /// The first [`UNATTRIBUTED_LISTED`] unattributed events, in the order they were given up.
    pub unattributed: Vec<Unattributed>,
    /// All of them.
    pub unattributed_total: u64,
    /// Containers dropped to stay within [`Limits::max_containers`] (the oldest exited).
    pub containers_dropped: u64,
    /// Host processes forgotten to stay within the process limit.
    pub processes_forgotten: u64,
}

pub struct Engine {
    host: HostNs,
    cgroups: BTreeMap<u64, String>,
    procs: HashMap<u32, Proc>,
    containers: Slots,
    limits: Limits,
    containers_dropped: u64,
    processes_forgotten: u64,
    /// Mount point → the container it was made for (the latest).
    by_target: HashMap<String, usize>,
    /// Network link name → the container it is known to, and why.
    by_link: HashMap<String, (usize, Evidence)>,
    /// The current lifecycle of each id.
    by_id: HashMap<String, usize>,
    /// Network namespace inode → the container that owns it (its first one).
    netns_owner: HashMap<u32, usize>,
    waiting: Waiting,
    unattributed: Vec<Unattributed>,
    unattributed_total: u64,
    /// The container a daemon's event was filed under (by `event_for`).
    event_owner: Option<usize>,
    /// ID maps of user namespaces made before their containers (rootless podman's).
    user_maps: security::UserMaps,
}

impl Engine {
    /// An engine that keeps everything (for a trace of known size).
    pub fn new(ctx: &Context) -> Self {
        Self::with_limits(ctx, Limits::UNLIMITED)
    }

    /// An engine that keeps at most `limits` (for a watch).
    pub fn with_limits(ctx: &Context, limits: Limits) -> Self {
        Self {
            host: ctx.host,
            cgroups: ctx.cgroups.clone(),
            procs: HashMap::new(),
            containers: Slots::default(),
            limits,
            containers_dropped: 0,
            processes_forgotten: 0,
            by_target: HashMap::new(),
            by_link: HashMap::new(),
            by_id: HashMap::new(),
            netns_owner: HashMap::new(),
            waiting: Waiting::default(),
            unattributed: Vec::new(),
            unattributed_total: 0,
            event_owner: None,
            user_maps: Default::default(),
        }
    }

    /// A cgroup's path, learnt while tracing.
    pub fn learn_cgroup(&mut self, id: u64, path: &str) {
        self.cgroups.insert(id, path.to_string());
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
        self.user_maps.learn(ev);
        let before = self.container_of(ev.tgid);
        let attributed = self.attribute(ev);
        let owner = if attributed {
            self.event_owner
                .or_else(|| self.container_of(ev.tgid))
                .or(before)
        } else {
            None
        };
        if let Some(c) = owner {
            self.learn_netns(c, ev);
        }
        let evicted = self.waiting.evicted();
        self.give_up(evicted);
        if let Detail::CgroupRmdir { id, root: 0, .. } = ev.detail {
            // Gone: no later event carries its id.
            self.cgroups.remove(&id);
        }
        self.bound();
        let related = attributed
            || matches!(
                ev.detail,
                Detail::Namespaces { .. }
                    | Detail::Setns { .. }
                    | Detail::Veth { .. }
                    | Detail::NetdevMove { .. }
                    | Detail::PivotRoot { .. }
            )
            || (ev.mnt_ns != 0 && self.host.mnt != 0 && ev.mnt_ns != self.host.mnt);
        (related, owner)
    }

    /// The containers kept, as they are so far, in the order recognised.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.iter().map(|(_, st)| &st.c)
    }

    /// The containers kept, with the index `feed_owned` names them by.
    pub fn containers_indexed(&self) -> impl Iterator<Item = (usize, &Container)> {
        self.containers.iter().map(|(i, st)| (i, &st.c))
    }

    /// Containers dropped so far to stay within the limit.
    pub fn containers_dropped(&self) -> u64 {
        self.containers_dropped
    }

    /// Container `c` (an index `feed_owned` gave) as it is so far.
    pub fn current(&self, c: usize) -> &Container {
        &self.containers[c].c
    }

    /// Forgets what can no longer matter, when over a limit.
    fn bound(&mut self) {
        if self.procs.len() > MAX_PROCS {
            let before = self.procs.len();
            self.procs
                .retain(|_, p| p.container.is_some() || p.tracer_run.is_some());
            self.processes_forgotten += (before - self.procs.len()) as u64;
        }
        while self.containers.live() > self.limits.max_containers {
            let Some((c, st)) = self.containers.drop_oldest_exited() else {
                break;
            };
            self.containers_dropped += 1;
            self.forget(c, &st);
        }
    }

    /// Every map's reference to container `c`, dropped.
    fn forget(&mut self, c: usize, st: &State) {
        if self.by_id.get(&st.c.id) == Some(&c) {
            self.by_id.remove(&st.c.id);
        }
        for t in &st.mount_targets {
            if self.by_target.get(t) == Some(&c) {
                self.by_target.remove(t);
            }
        }
        self.by_link.retain(|_, (owner, _)| *owner != c);
        self.netns_owner.retain(|_, owner| *owner != c);
        for pid in st.procs.keys() {
            if let Some(p) = self.procs.get_mut(pid) {
                if p.container == Some(c) {
                    // Its exit was missed: it is nobody's now.
                    p.container = None;
                    p.role = None;
                    p.evidence = None;
                }
            }
        }
    }

    /// A daemon's network work for container `c`: making its network (veth, namespace) until
    /// the runtime has made its namespaces, then configuring it from inside, until it starts.
    fn network_kind(&self, c: usize) -> PhaseKind {
        let st = &self.containers[c];
        if st.ns_done && !st.started() {
            PhaseKind::NetworkConfig
        } else {
            PhaseKind::Network
        }
    }

    /// Notes `target` as one of container `c`'s mount points.
    fn note_target(&mut self, c: usize, target: &str) {
        let st = &mut self.containers[c];
        if st.mount_targets.len() < MAX_FACTS && !st.mount_targets.iter().any(|t| t == target) {
            st.mount_targets.push(target.to_string());
        }
        self.by_target.insert(target.to_string(), c);
    }

    /// Notes the link `name` as container `c`'s (a fact), for the reason `evidence`.
    fn note_link(&mut self, c: usize, name: &str, evidence: Evidence) {
        if name.is_empty() {
            return;
        }
        let st = &mut self.containers[c];
        if !st.c.veths.iter().any(|v| v == name) {
            if st.c.veths.len() < MAX_FACTS {
                st.c.veths.push(name.to_string());
            }
            st.fact(FactKind::Veth, name, evidence);
        }
        self.by_link.insert(name.to_string(), (c, Evidence::Netns));
    }

    /// The containers, in the order they were recognised.
    pub fn finish(self) -> Vec<Container> {
        self.finish_all().containers
    }

    /// The containers, and what is still waiting: the daemons' own activity.
    pub fn finish_all(mut self) -> Correlation {
        let left = self.waiting.drain();
        self.give_up(left);
        Correlation {
            containers: self
                .containers
                .into_states()
                .map(|mut st| {
                    st.c.processes = st.procs.into_values().collect();
                    st.c.phases.sort_by_key(|p| (p.start_ns, p.kind));
                    st.c.new_namespaces.sort();
                    st.c
                })
                .collect(),
            unattributed: self.unattributed,
            unattributed_total: self.unattributed_total,
            containers_dropped: self.containers_dropped,
            processes_forgotten: self.processes_forgotten,
        }
    }

    /// Events no evidence will tie to a container any more.
    fn give_up(&mut self, events: Vec<Event>) {
        for ev in events {
            self.unattributed_total += 1;
            if self.unattributed.len() < UNATTRIBUTED_LISTED {
                self.unattributed.push(Unattributed {
                    ts_ns: ev.ts_ns,
                    kind: ev.detail.kind_name().to_string(),
                    key: key::text(&ev),
                });
            }
        }
    }

    /// A daemon's event that names no container yet: it waits under `key`.
    fn wait(&mut self, key: Key, kind: PhaseKind, ev: &Event) {
        self.waiting.push(key, kind, ev.clone());
    }

    /// Gives container `c` everything waiting under `key`.
    fn claim(&mut self, c: usize, key: &Key, evidence: Evidence) {
        for (kind, ev) in self.waiting.take(key) {
            self.event_for(c, kind, &ev, evidence);
        }
    }

    /// An event of container `c`'s process in a network namespace other than the host's:
    /// the container's, if it has none yet.
    fn learn_netns(&mut self, c: usize, ev: &Event) {
        let st = &self.containers[c];
        if st.c.ns.net == 0 && ev.net_ns != 0 && ev.net_ns != self.host.net && st.ns_done {
            self.containers[c].c.ns.net = ev.net_ns;
            self.netns_known(c);
        }
    }

    /// Container `c`'s network namespace is known: it owns it (what waits for it is its),
    /// unless another container had it first (then it shares that one's).
    fn netns_known(&mut self, c: usize) {
        let n = self.containers[c].c.ns.net;
        if n == 0 || n == self.host.net {
            return;
        }
        match self.netns_owner.get(&n).copied() {
            Some(owner) if owner != c => {
                let id = self.containers[owner].c.id.clone();
                let st = &mut self.containers[c];
                st.c.shares_netns_with = Some(id.clone());
                st.fact(FactKind::SharesNetns, &id, Evidence::Netns);
            }
            Some(_) => {}
            None => {
                self.netns_owner.insert(n, c);
                self.claim(c, &Key::Netns(n), Evidence::Netns);
            }
        }
    }

    /// The container that owns network namespace `n`.
    fn netns_container(&self, n: u32) -> Option<usize> {
        (n != 0 && n != self.host.net)
            .then(|| self.netns_owner.get(&n).copied())
            .flatten()
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
        match self.by_id.get(id) {
            Some(&i) => i,
            None => self.new_lifecycle(id, runtime, found_by, ts),
        }
    }

    /// The container `id` being started: a new lifecycle when its last one has ended (a
    /// restart reuses the id).
    fn starting(&mut self, id: &str, runtime: Runtime, found_by: &str, ts: u64) -> usize {
        match self.by_id.get(id) {
            Some(&i) if self.containers[i].c.exited_ns.is_none() => i,
            _ => self.new_lifecycle(id, runtime, found_by, ts),
        }
    }

    fn new_lifecycle(&mut self, id: &str, runtime: Runtime, found_by: &str, ts: u64) -> usize {
        let lifecycle = self
            .by_id
            .get(id)
            .map_or(1, |&i| self.containers[i].c.lifecycle + 1);
        let i = self.containers.push(State {
            c: Container {
                id: id.to_string(),
                lifecycle,
                name: None,
                engine: None,
                runtime,
                found_by: found_by.to_string(),
                command: Vec::new(),
                security: Default::default(),
                created_ns: ts,
                started_ns: None,
                exited_ns: None,
                exit_code: None,
                signal: None,
                oom_killed: false,
                killed_by: None,
                ns: NsInodes::default(),
                new_namespaces: Vec::new(),
                veths: Vec::new(),
                rootfs: None,
                cgroups: Vec::new(),
                shares_netns_with: None,
                facts: Vec::new(),
                mounts: 0,
                exec_sessions: 0,
                processes_omitted: 0,
                phases: Vec::new(),
                processes: Vec::new(),
            },
            phases: PhaseIndex::default(),
            procs: BTreeMap::new(),
            init_pid: None,
            ns_done: false,
            pivot_done: false,
            mount_targets: Vec::new(),
            signals: HashMap::new(),
        });
        self.by_id.insert(id.to_string(), i);
        // What named it before it was known (a path holding its id) is its.
        self.claim(i, &Key::Id(id.to_string()), Evidence::IdInPath);
        i
    }

    /// Makes `tgid` one of container `c`'s processes, for the reason `evidence`.
    fn join(&mut self, tgid: u32, c: usize, role: Role, evidence: Evidence, ev: &Event) {
        let p = self.proc_mut(tgid, ev);
        let evidence = *p.evidence.get_or_insert(evidence);
        p.container = Some(c);
        p.role = Some(role);
        let (ppid, comms, argv) = (p.ppid, p.comms.clone(), p.argv.clone());
        let st = &mut self.containers[c];
        if let Some(entry) = st.procs.get_mut(&tgid) {
            entry.role = role;
        } else {
            st.list(Process {
                pid: tgid,
                ppid,
                comms,
                argv,
                role,
                evidence,
                exit_code: None,
                signal: None,
            });
        }
    }

    /// Files `ev` of one of container `c`'s processes under phase `kind`.
    fn phase(&mut self, c: usize, kind: PhaseKind, ev: &Event) {
        let evidence = self
            .procs
            .get(&ev.tgid)
            .filter(|p| p.container == Some(c))
            .and_then(|p| p.evidence)
            .unwrap_or(Evidence::ProcessTree);
        self.phase_with(c, kind, ev, evidence);
    }

    /// Files `ev` under phase `kind` of container `c`, for the reason `evidence`.
    fn phase_with(&mut self, c: usize, kind: PhaseKind, ev: &Event, evidence: Evidence) {
        let st = &mut self.containers[c];
        st.c.created_ns = st.c.created_ns.min(ev.ts_ns);
        let existing = if kind.once() {
            st.phases.get(kind)
        } else if st.c.exec_sessions >= MAX_EXEC_PHASES as u32 {
            // The rest extend the last: a health check every few seconds for days.
            st.c.exec_sessions += 1;
            st.c.phases.iter().rposition(|p| p.kind == kind)
        } else {
            st.c.exec_sessions += 1;
            None
        };
        match existing {
            Some(i) => {
                let p = &mut st.c.phases[i];
                // An earlier event claimed late (a daemon's, once evidence came) is the key.
                if ev.ts_ns < p.start_ns {
                    p.start_ns = ev.ts_ns;
                    p.key = key::text(ev);
                    p.pid = ev.tgid;
                    p.comm.clone_from(&ev.comm);
                    p.call = key::call(ev).map(str::to_string);
                    p.evidence = evidence;
                    p.hook = hook(ev);
                }
                p.end_ns = p.end_ns.max(ev.ts_ns);
                p.events += 1;
            }
            None => {
                st.phases.insert(kind, st.c.phases.len());
                // A few at a time: kept for as long as the container, doubling's spare half
                // was a tenth of a long report's memory.
                if st.c.phases.len() == st.c.phases.capacity() {
                    st.c.phases.reserve_exact(4);
                }
                st.c.phases.push(Phase {
                    kind,
                    start_ns: ev.ts_ns,
                    end_ns: ev.ts_ns,
                    events: 1,
                    key: key::text(ev),
                    pid: ev.tgid,
                    comm: ev.comm.clone(),
                    call: key::call(ev).map(str::to_string),
                    evidence,
                    hook: hook(ev),
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

    /// Files a daemon's event (not its process) under container `c`, for the reason
    /// `evidence`.
    fn event_for(&mut self, c: usize, kind: PhaseKind, ev: &Event, evidence: Evidence) {
        self.event_owner = Some(c);
        let st = &mut self.containers[c];
        match &ev.detail {
            Detail::Mount { target, .. } => {
                st.c.mounts += 1;
                self.note_target(c, target);
            }
            Detail::Umount { .. } => st.c.mounts += 1,
            Detail::Veth { name, peer, .. } => {
                self.note_link(c, name, evidence);
                self.note_link(c, peer, evidence);
            }
            Detail::CgroupMkdir { path, .. } => st.cgroup(path, evidence),
            Detail::CgroupAttach {
                path, target_pid, ..
            } => {
                // The shim's own cgroup (conmon's) is not the container's.
                if st
                    .procs
                    .get(target_pid)
                    .is_none_or(|p| p.role != Role::Shim)
                {
                    st.cgroup(path, evidence);
                }
            }
            Detail::NetdevMove { name, .. } => {
                self.note_link(c, name, evidence);
                // The pair made before the move, when the move waited for its namespace.
                self.claim(c, &Key::Link(name.clone()), evidence);
            }
            // A rootless container's network: a user-mode helper makes its device from
            // inside the namespace (no veth). The comm is the file it executed.
            Detail::Setns { .. } if NETWORK_HELPERS.contains(&ev.comm.as_str()) => {
                st.fact(FactKind::NetworkHelper, &ev.comm, evidence);
            }
            Detail::CgroupRmdir { .. }
            | Detail::OomKill { .. }
            | Detail::Signal { .. }
            | Detail::Exec { .. }
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
            | Detail::Setns { .. }
            | Detail::Capset { .. }
            | Detail::Prctl { .. }
            | Detail::Seccomp { .. }
            | Detail::IdMap { .. } => {}
        }
        self.phase_with(c, kind, ev, evidence);
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
            Detail::Veth { .. } => self.veth(ev),
            Detail::NetdevMove { .. } => self.netdev_move(ev),
            Detail::OomKill { target_pid } => self.oom_kill(ev, *target_pid),
            Detail::Signal {
                signal, target_pid, ..
            } => self.signal(ev, *signal, *target_pid),
            Detail::Capset { .. } | Detail::Prctl { .. } | Detail::Seccomp { .. } => {
                self.security(ev)
            }
            Detail::IdMap { .. } => self.id_map(ev),
            Detail::CgroupMkdir { path, .. } => self.cgroup(ev, path, None, false),
            Detail::CgroupRmdir { path, .. } => self.cgroup(ev, path, None, true),
            Detail::CgroupAttach {
                path, target_pid, ..
            } => self.cgroup(ev, path, Some(*target_pid), false),
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

    /// A container whose mount namespace the event's process is in, or whose cgroup it is
    /// in; the process joins it.
    fn by_namespace(&mut self, ev: &Event) -> Option<usize> {
        let host_mnt = self.host.mnt;
        // The latest running one: namespace inode numbers are reused once one is gone.
        let by_ns = (ev.mnt_ns != 0 && ev.mnt_ns != host_mnt)
            .then(|| {
                self.containers.rposition(|st| {
                    st.c.ns.mnt == ev.mnt_ns && st.started() && st.c.exited_ns.is_none()
                })
            })
            .flatten();
        let c = match by_ns {
            Some(c) => c,
            None => {
                let path = self.cgroups.get(&ev.cgroup_id)?.clone();
                let (engine, id) = identify::cgroup_container(&path)?;
                let id = id.to_string();
                let found = format!("cgroup {path}");
                let c = self.container(&id, Runtime::Runc, &found, ev.ts_ns);
                let st = &mut self.containers[c];
                st.c.engine.get_or_insert(engine);
                st.cgroup(&path, Evidence::CgroupPath);
                c
            }
        };
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        let evidence = if by_ns.is_some() {
            Evidence::MountNamespace
        } else {
            Evidence::CgroupPath
        };
        self.join(ev.tgid, c, Role::Container, evidence, ev);
        if let Some(p) = self.procs.get_mut(&ev.tgid) {
            p.exec_session = exec || self.containers[c].started();
        }
        Some(c)
    }
}

/// User-mode networks of rootless containers, by the name they run as.
const NETWORK_HELPERS: [&str; 3] = ["slirp4netns", "pasta", "passt"];

fn hook(ev: &Event) -> Option<String> {
    (!ev.hook.is_empty()).then(|| ev.hook.clone())
}

fn succeeded(ev: &Event) -> bool {
    ev.detail.result().is_none_or(|r| !r.failed())
}
