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

/// One step of a container's life, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// The image's layers mounted as the container's root (overlay).
    ImageMount,
    /// The engine's shim (containerd-shim, conmon) starting.
    Shim,
    /// The low-level runtime (`runc create|run`, `crun`, `tracer run`) preparing the
    /// container: its helper processes, `runc init`.
    RuntimeInit,
    /// New namespaces (unshare or clone).
    Namespaces,
    /// veth pair and the network namespace's bind mount.
    Network,
    /// proc, sys, dev, cgroup... mounted into the new root before pivot_root.
    RootfsMounts,
    PivotRoot,
    /// Masked and read-only paths, after pivot_root.
    MaskPaths,
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
    pub fn name(self) -> &'static str {
        match self {
            Self::ImageMount => "image mount",
            Self::Shim => "shim start",
            Self::RuntimeInit => "runtime init",
            Self::Namespaces => "namespaces",
            Self::Network => "network",
            Self::RootfsMounts => "rootfs mounts",
            Self::PivotRoot => "pivot_root",
            Self::MaskPaths => "mask paths",
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
    /// The container's namespaces (0: not seen).
    pub ns: NsInodes,
    /// Namespace kinds created for it.
    #[serde(default)]
    pub new_namespaces: Vec<NsKind>,
    #[serde(default)]
    pub veths: Vec<String>,
    /// Mount-family calls made for it.
    pub mounts: u32,
    pub phases: Vec<Phase>,
    pub processes: Vec<Process>,
}

impl Container {
    /// Docker's short form: 12 characters.
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
