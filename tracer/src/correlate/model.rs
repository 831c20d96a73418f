//! What correlation produces: containers with their phases and processes. Serialized into
//! the trace document (`docs/trace-format.md`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::{NsInodes, NsKind};

/// The low-level runtime that made a container.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Runc,
    Crun,
    /// The built-in runtime (`tracer run`).
    Tracer,
    /// Another one, by its program's name (conmon's `-r`).
    Other(String),
}

impl Runtime {
    pub fn name(&self) -> &str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
            Runtime::Tracer => "tracer",
            Runtime::Other(name) => name,
        }
    }

    pub fn from_name(name: &str) -> Self {
        match name {
            "runc" => Runtime::Runc,
            "crun" => Runtime::Crun,
            "tracer" => Runtime::Tracer,
            other => Runtime::Other(other.to_string()),
        }
    }
}

/// The engine above the runtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerEngine {
    Docker,
    Containerd,
    Podman,
    Other(String),
}

impl ContainerEngine {
    pub fn name(&self) -> &str {
        match self {
            ContainerEngine::Docker => "docker",
            ContainerEngine::Containerd => "containerd",
            ContainerEngine::Podman => "podman",
            ContainerEngine::Other(name) => name,
        }
    }

    pub fn from_name(name: &str) -> Self {
        match name {
            "docker" => ContainerEngine::Docker,
            "containerd" => ContainerEngine::Containerd,
            "podman" => ContainerEngine::Podman,
            other => ContainerEngine::Other(other.to_string()),
        }
    }
}

/// Both are written as their names in the document.
macro_rules! named {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::from_name(&String::deserialize(d)?))
            }
        }
    };
}
named!(Runtime);
named!(ContainerEngine);

/// Why an event, a process or a fact belongs to a container: what names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// A command line that names the container (the shim's, conmon's, runc's or crun's id).
    Argv,
    /// A process descending from one of the container's.
    ProcessTree,
    /// A process in the container's mount namespace.
    MountNamespace,
    /// The overlay whose merged directory the runtime bind-mounts as the container's root.
    RootfsPath,
    /// Done in, or moved into, the container's network namespace.
    Netns,
    /// A bind mount of `/proc/<pid>/ns/net` of one of the container's processes.
    NetnsOfPid,
    /// A cgroup path holding the container's id.
    CgroupPath,
    /// One of the container's processes moved into the cgroup.
    CgroupAttach,
    /// A path holding the container's id.
    IdInPath,
    /// A mount point made for the container before (its teardown).
    MountPoint,
    /// Named after the container's id by the built-in runtime (its veths).
    RuntimeNaming,
    /// The built-in runtime's state directory (`/run/tracer/<id>`).
    StateDir,
}

impl Evidence {
    /// In words, for timelines.
    pub fn name(self) -> &'static str {
        match self {
            Evidence::Argv => "argv",
            Evidence::ProcessTree => "process tree",
            Evidence::MountNamespace => "mount namespace",
            Evidence::RootfsPath => "rootfs path",
            Evidence::Netns => "netns",
            Evidence::NetnsOfPid => "netns of its pid",
            Evidence::CgroupPath => "cgroup path",
            Evidence::CgroupAttach => "cgroup attach",
            Evidence::IdInPath => "id in path",
            Evidence::MountPoint => "its mount point",
            Evidence::RuntimeNaming => "runtime naming",
            Evidence::StateDir => "state dir",
        }
    }
}

/// A fact given to a container, with what names it as the container's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// `rootfs`, `veth`, `cgroup`, `shares_netns`, `network_helper`.
    pub fact: FactKind,
    /// The path, the link's name, the namespace's inode.
    pub value: String,
    pub evidence: Evidence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// The overlay's merged directory: the container's root filesystem.
    Rootfs,
    /// A network link (each end of its veth pair).
    Veth,
    /// A cgroup path (one per path, whatever the number of v1 hierarchies).
    Cgroup,
    /// Its network namespace is another container's (`--network container:X`, a pod).
    SharesNetns,
    /// A user-mode network (`slirp4netns`, `pasta`) that entered its network namespace to
    /// make the device there (rootless containers): the helper's name (version 8).
    NetworkHelper,
}

impl FactKind {
    pub fn name(self) -> &'static str {
        match self {
            FactKind::Rootfs => "rootfs",
            FactKind::Veth => "veth",
            FactKind::Cgroup => "cgroup",
            FactKind::SharesNetns => "shares netns",
            FactKind::NetworkHelper => "network helper",
        }
    }
}

/// The sender of a signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub pid: u32,
    pub comm: String,
    pub signal: i32,
}

/// What happened that no evidence ties to a container: the daemons' own activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unattributed {
    pub ts_ns: u64,
    pub kind: String,
    /// The event in words.
    pub key: String,
}

/// One step of a container's life, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// The image's layers mounted as the container's root (overlay).
    ImageMount,
    /// The engine preparing the container's own files before the runtime runs (its shm,
    /// its directory under the engine's state).
    EngineSetup,
    /// The engine's shim (containerd-shim, conmon) starting.
    Shim,
    /// The low-level runtime (`runc create|run`, `crun`, `tracer run`) preparing the
    /// container: its helper processes, `runc init`.
    RuntimeInit,
    /// The container's cgroup made and the container's processes moved into it.
    Cgroup,
    /// A user namespace made for the container (rootless engines, `--userns`, runc with
    /// `linux.uidMappings`).
    UserNamespace,
    /// New namespaces (unshare or clone).
    Namespaces,
    /// veth pair and the network namespace's bind mount.
    Network,
    /// proc, sys, dev, cgroup... mounted into the new root before pivot_root.
    RootfsMounts,
    /// The OCI hooks the runtime runs before the root is pivoted (Docker's prestart hook
    /// `libnetwork-setkey`).
    Hooks,
    /// The engine configuring the container's network from inside its namespace (dockerd
    /// entering it to set the address, routes and IPv6), once the namespaces exist.
    NetworkConfig,
    PivotRoot,
    /// Masked and read-only paths, after pivot_root.
    MaskPaths,
    /// Capabilities set, the bounding set cut, no_new_privs, the seccomp filter: the last
    /// steps before the user command.
    Security,
    /// `runc start`: the engine lets the created container run.
    Start,
    /// The container's command replacing the runtime's init.
    UserExec,
    /// A command run in the running container (`docker exec`, `runc exec`).
    Exec,
    /// The runtime signalling the container (`runc kill`: `docker stop`, `docker kill`).
    Kill,
    /// The container's init exited.
    Exit,
    /// `runc delete`: the runtime removes the container's state.
    Delete,
    /// The root filesystem and the container's other mounts removed.
    Unmount,
    /// The network namespace's bind mount removed, veth gone.
    NetworkCleanup,
}

impl PhaseKind {
    /// How many kinds there are: `NetworkCleanup` is the last (a kind added after it takes
    /// its place here).
    pub const COUNT: usize = Self::NetworkCleanup as usize + 1;

    pub fn name(self) -> &'static str {
        match self {
            Self::ImageMount => "image mount",
            Self::EngineSetup => "engine setup",
            Self::Shim => "shim start",
            Self::RuntimeInit => "runtime init",
            Self::Cgroup => "cgroup",
            Self::UserNamespace => "user namespace",
            Self::Namespaces => "namespaces",
            Self::Network => "network",
            Self::RootfsMounts => "rootfs mounts",
            Self::Hooks => "hooks",
            Self::NetworkConfig => "network configuration",
            Self::PivotRoot => "pivot_root",
            Self::MaskPaths => "mask paths",
            Self::Security => "security",
            Self::Start => "start",
            Self::UserExec => "user command",
            Self::Exec => "exec",
            Self::Kill => "kill",
            Self::Exit => "exit",
            Self::Delete => "delete",
            Self::Unmount => "unmount",
            Self::NetworkCleanup => "network cleanup",
        }
    }

    /// Phases that happen once: later events extend them. The others (`exec`) repeat.
    pub fn once(self) -> bool {
        !matches!(self, Self::Exec)
    }
}

/// One phase: when it started, when its last event happened, and the event that marks it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub kind: PhaseKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// How many events the phase holds.
    pub events: u32,
    /// The first event, in words (`runc:[1:CHILD] 4242 unshare mnt,uts,ipc,pid,net`).
    pub key: String,
    /// The process behind that event.
    pub pid: u32,
    pub comm: String,
    /// The call behind the key event (`unshare`, `clone`, `setns`, `mount`, `execve`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Why the key event is this container's.
    #[serde(default = "process_tree")]
    pub evidence: Evidence,
    /// The hook that saw the key event (`tracepoint:syscalls:sys_enter_unshare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
}

fn process_tree() -> Evidence {
    Evidence::ProcessTree
}

/// A process that took part in a container's life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// Its names, in order (`exe`, `runc:[0:PARENT]`, ...).
    pub comms: Vec<String>,
    /// The argv of its last exec.
    #[serde(default)]
    pub argv: Vec<String>,
    pub role: Role,
    /// Why it is this container's.
    #[serde(default = "process_tree")]
    pub evidence: Evidence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// What a process is to its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// containerd-shim, conmon.
    Shim,
    /// runc, crun, `tracer run` and their helpers outside the container.
    Runtime,
    /// A hook the runtime runs (`libnetwork-setkey`).
    Hook,
    /// Inside the container's namespaces.
    Container,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Which start of the container this is (`docker restart` and restart policies reuse
    /// the id: each start is its own lifecycle, 1 for the first).
    #[serde(default = "first")]
    pub lifecycle: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The engine above the runtime (`docker`, `containerd`, `podman`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<ContainerEngine>,
    /// The runtime that made it (`runc`, `crun`, `tracer`).
    pub runtime: Runtime,
    /// How it was recognised first (`shim argv`, `runc argv`, `cgroup /docker/<id>`...).
    pub found_by: String,
    /// The user command's argv.
    #[serde(default)]
    pub command: Vec<String>,
    /// First event of the container.
    pub created_ns: u64,
    /// The user command's exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The OOM killer chose its init (or another of its processes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// Who sent the signal its init died of (`runc kill` for a `docker stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<Sender>,
    /// The container's namespaces (0: not seen).
    pub ns: NsInodes,
    /// Namespace kinds created for it.
    #[serde(default)]
    pub new_namespaces: Vec<NsKind>,
    #[serde(default)]
    pub veths: Vec<String>,
    /// The overlay's merged directory, its root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    /// Its cgroup paths (one per path, whatever the number of hierarchies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
    /// The container whose network namespace it shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_netns_with: Option<String>,
    /// Every fact above, with what names it as this container's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Fact>,
    /// Its security setup, as its processes' capset, prctl and seccomp calls made it.
    #[serde(default, skip_serializing_if = "Security::is_empty")]
    pub security: Security,
    /// Mount-family calls made for it.
    pub mounts: u32,
    /// Exec sessions (`docker exec`): past the first hundred, each extends the last phase.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exec_sessions: u32,
    /// Processes not listed (past the first thousand).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub processes_omitted: u64,
    pub phases: Vec<Phase>,
    pub processes: Vec<Process>,
}

/// A container's security setup before its user command (from document version 7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// The capability sets last set (`capset`): effective, permitted, inheritable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<[u64; 3]>,
    /// Capabilities dropped from the bounding set (`PR_CAPBSET_DROP`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bounding_dropped: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_new_privs: bool,
    /// Instructions of each seccomp filter loaded, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seccomp_filters: Vec<u32>,
    /// Its user namespace's uid and gid maps as written (`0 100000 65536`, a line each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_map: Option<String>,
}

impl Security {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Its uid map's first line as host and container see it: `0 → 100000 (65536)`.
    pub fn uid_mapping(&self) -> Option<String> {
        let line = self.uid_map.as_deref()?.lines().next()?;
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [inside, outside, count] => Some(format!("{inside} → {outside} ({count})")),
            _ => None,
        }
    }
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

fn first() -> u32 {
    1
}

impl Container {
    /// Docker's short form: 12 characters.
    /// The container as exports show it: its command, its processes' argv and its
    /// phases' key events with their secrets blanked (`event::redact`).
    pub fn redacted(&self) -> Container {
        let r = crate::event::redact::Redactor::global();
        let mut c = self.clone();
        c.command = r.argv(&c.command).into_owned();
        for p in &mut c.processes {
            p.argv = r.argv(&p.argv).into_owned();
        }
        for p in &mut c.phases {
            p.key = r.text(&p.key).into_owned();
        }
        c
    }

    /// When it was last seen doing anything (its teardown's end).
    pub fn last_seen_ns(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| p.end_ns)
            .chain(self.exited_ns)
            .fold(self.created_ns, u64::max)
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Create → user command, the latency users feel.
    pub fn start_latency_ns(&self) -> Option<u64> {
        self.started_ns.map(|s| s.saturating_sub(self.created_ns))
    }

    pub fn runtime_label(&self) -> String {
        match &self.engine {
            Some(e) => format!("{e}/{}", self.runtime),
            None => self.runtime.to_string(),
        }
    }
}
