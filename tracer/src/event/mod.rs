//! The decoded, typed event: what capture produces and correlation, the trace document and
//! the renderers work on. It depends on nothing else in the crate. An event's one-line text
//! is its `Display` ([`display`]).

mod clock;
mod display;
pub mod flags;
mod json_cursor;
pub mod ns;
mod read;
pub mod redact;

use serde::{Deserialize, Serialize};
pub use tracer_common::EventKind;

pub use self::{
    clock::Clock,
    ns::{HostNs, NsInodes, NsKind},
};

/// One observed event. Written with serde's derive; read back by [`read`] in one pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub ts_ns: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Parent process id (0 if unknown).
    pub ppid: u32,
    pub uid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    /// Namespace inodes of the task (0 when unknown): equal to the host's for host
    /// processes, different inside a container.
    #[serde(default)]
    pub mnt_ns: u32,
    #[serde(default)]
    pub pid_ns: u32,
    #[serde(default)]
    pub net_ns: u32,
    /// The task's user namespace (from document version 7; 0 when unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub user_ns: u32,
    /// The hook that produced the event (`tracepoint:syscalls:sys_enter_execve`,
    /// `kretprobe:create_new_namespaces`, ...).
    #[serde(default)]
    pub hook: String,
    /// The fields whose text was cut to the kernel's buffer (`target`, `source`, ...): a cut
    /// path must not look whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    #[serde(flatten)]
    pub detail: Detail,
}

/// What happened; serialized with a `kind` tag (`"kind": "exec"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    Exec {
        filename: String,
        argv: Vec<String>,
        /// argv had more entries or bytes than were kept.
        argv_truncated: bool,
        filename_truncated: bool,
        /// argv could not be read at all (an empty argv is then not the process's).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        argv_unreadable: bool,
        /// `execveat(dirfd, filename, argv, envp, flags)`, when that call was used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execveat: Option<ExecAt>,
        #[serde(flatten)]
        result: SysResult,
    },
    Mount {
        fstype: String,
        source: String,
        target: String,
        flags: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    Umount {
        target: String,
        flags: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    PivotRoot {
        new_root: String,
        put_old: String,
        #[serde(flatten)]
        result: SysResult,
    },
    Fsopen {
        fstype: String,
        flags: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    Fsconfig {
        fd: i32,
        cmd: u32,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        aux: i32,
        #[serde(flatten)]
        result: SysResult,
    },
    Fsmount {
        fs_fd: i32,
        flags: u64,
        attr_flags: u32,
        #[serde(flatten)]
        result: SysResult,
    },
    MoveMount {
        from_dfd: i32,
        from_path: String,
        to_dfd: i32,
        to_path: String,
        flags: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    OpenTree {
        dfd: i32,
        path: String,
        flags: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    MountSetattr {
        dfd: i32,
        /// An idmapped mount (`MOUNT_ATTR_IDMAP`): the inode of the user namespace its ids
        /// are mapped through (version 7; absent otherwise).
        #[serde(default, skip_serializing_if = "is_zero")]
        idmap_userns: u32,
        path: String,
        flags: u64,
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    Fork {
        child_pid: u32,
    },
    Exit {
        /// `exit()` status, when the process exited normally.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// Terminating signal, when it was killed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        #[serde(default)]
        core_dumped: bool,
    },
    Rename {
        /// The renamed task (usually the event's own `pid`).
        target_pid: u32,
        oldcomm: String,
        newcomm: String,
    },
    /// New namespaces: by `unshare`, or for a new process by `clone`.
    Namespaces {
        /// `unshare`, `clone`, or `create` (the kprobe path, which sees both).
        op: NsOp,
        /// The `CLONE_*` flags (requested, or for `clone` on the fallback path, derived from
        /// what changed).
        flags: u64,
        /// The process now in them: the caller, the new child, or 0 when not yet known.
        target_pid: u32,
        /// Kinds that are new (`mnt`, `pid`, ...).
        new: Vec<NsKind>,
        /// A new user namespace's owner: the uid (on the host) that made it (version 7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_owner: Option<u32>,
        /// Inode of every namespace after the call (`pid`/`time`: for children).
        ns: NsInodes,
        #[serde(flatten)]
        result: SysResult,
    },
    /// `setns`: the caller joined existing namespaces (`docker exec`, runtimes).
    Setns {
        fd: i32,
        /// The `nstype` argument (`CLONE_NEW*`, 0 = any).
        nstype: u64,
        /// Kinds that changed.
        joined: Vec<NsKind>,
        ns: NsInodes,
        #[serde(flatten)]
        result: SysResult,
    },
    /// A cgroup made (on cgroup v1, once per controller hierarchy).
    CgroupMkdir {
        /// The cgroup's id (on the cgroup2 hierarchy, what events' `cgroup_id` holds).
        id: u64,
        /// The hierarchy's id.
        root: i32,
        level: i32,
        /// Relative to the hierarchy's root (`/docker/<id>`).
        path: String,
    },
    /// A cgroup removed.
    CgroupRmdir {
        id: u64,
        root: i32,
        level: i32,
        path: String,
    },
    /// A task moved into a cgroup (by the event's process).
    CgroupAttach {
        id: u64,
        root: i32,
        level: i32,
        path: String,
        /// The task moved.
        target_pid: u32,
    },
    /// A network device moved into another network namespace.
    NetdevMove {
        name: String,
        /// Its index before the move.
        ifindex: u32,
        /// The namespace it leaves and the one it joins (inodes; 0 when unknown).
        netns: u32,
        to_netns: u32,
        #[serde(flatten)]
        result: SysResult,
    },
    /// The OOM killer chose a victim (the event's process ran it).
    OomKill {
        target_pid: u32,
    },
    /// A signal that ends processes (SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGTERM)
    /// sent by the event's process.
    Signal {
        signal: i32,
        /// The target thread.
        target_pid: u32,
        /// `si_code` (0: kill(2), 128: sent by the kernel).
        code: i32,
        /// 0 delivered, 1 ignored, 2 already pending, 3 queue full, 4 info lost.
        result: i32,
    },
    /// `capset(2)`: capability sets made the task's (or, by an old API, another's).
    Capset {
        /// `pid` in the header: 0 for the caller.
        target_pid: u32,
        /// `_LINUX_CAPABILITY_VERSION_*` (`0x20080522` is version 3).
        version: u32,
        effective: u64,
        permitted: u64,
        inheritable: u64,
        #[serde(flatten)]
        result: SysResult,
    },
    /// `prctl(2)` with an option that restricts the process (`PR_SET_NO_NEW_PRIVS`,
    /// `PR_CAPBSET_DROP`, `PR_SET_KEEPCAPS`, `PR_CAP_AMBIENT`, `PR_SET_SECCOMP`).
    Prctl {
        option: u32,
        /// `arg2` (the capability dropped, the mode); `PR_CAP_AMBIENT`: the operation, and
        /// the capability in the upper 32 bits.
        arg: u64,
        /// `PR_SET_SECCOMP` with a filter: its instructions.
        #[serde(default, skip_serializing_if = "is_zero")]
        filter_len: u32,
        #[serde(flatten)]
        result: SysResult,
    },
    /// `seccomp(2)`.
    Seccomp {
        /// `SECCOMP_SET_MODE_STRICT` 0, `_FILTER` 1, `SECCOMP_GET_ACTION_AVAIL` 2, ...
        operation: u32,
        flags: u64,
        /// A filter's instructions (`SECCOMP_SET_MODE_FILTER`).
        #[serde(default, skip_serializing_if = "is_zero")]
        filter_len: u32,
        #[serde(flatten)]
        result: SysResult,
    },
    /// A user namespace's ID map written (`/proc/PID/uid_map`, `gid_map`, `setgroups`).
    IdMap {
        file: MapFile,
        /// As the writer opened it (`/proc/4242/uid_map`; `uid_map` relative to a directory fd).
        path: String,
        /// The process whose namespace it maps (from the path; the writer for
        /// `/proc/self/...`; 0 when the path does not say).
        target_pid: u32,
        /// Inode of the user namespace mapped (kprobe path; 0 when unknown). Not `user_ns`:
        /// that is the writer's, in every event's header.
        #[serde(default, skip_serializing_if = "is_zero")]
        mapped_ns: u32,
        /// What was written: the map's lines (`0 100000 65536`), or `deny`/`allow`. Without
        /// kprobes, the map the kernel holds when the writer closes the file (a map is
        /// written once), and `ret` is 0.
        data: String,
        #[serde(flatten)]
        result: SysResult,
    },
    /// A veth pair.
    Veth {
        name: String,
        peer: String,
        ifindex: u32,
        peer_ifindex: u32,
        /// Inode of each end's network namespace (0 when unknown).
        netns: u32,
        peer_netns: u32,
        #[serde(flatten)]
        result: SysResult,
    },
}

/// Which file of a user namespace's ID maps was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapFile {
    UidMap,
    GidMap,
    Setgroups,
}

impl MapFile {
    pub fn name(self) -> &'static str {
        match self {
            MapFile::UidMap => "uid_map",
            MapFile::GidMap => "gid_map",
            MapFile::Setgroups => "setgroups",
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// How namespaces changed (`tracer_common::ns_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsOp {
    /// `unshare(2)`: the caller moved to new namespaces.
    Unshare,
    /// A new process in new namespaces.
    Clone,
    /// `create_new_namespaces()` returned (kprobe path: unshare or clone).
    Create,
    /// `setns(2)`.
    Setns,
}

impl NsOp {
    pub fn name(self) -> &'static str {
        match self {
            NsOp::Unshare => "unshare",
            NsOp::Clone => "clone",
            NsOp::Create => "create",
            NsOp::Setns => "setns",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecAt {
    pub dirfd: i32,
    pub flags: i32,
}

/// A syscall's return value, with the errno name when it failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysResult {
    pub ret: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SysResult {
    pub fn from_ret(ret: i64) -> Self {
        let error = (ret < 0).then(|| errno_name(-ret));
        Self { ret, error }
    }

    pub fn failed(&self) -> bool {
        self.ret < 0
    }
}

/// `ENOENT` for 2, or the number when unknown.
pub fn errno_name(errno: i64) -> String {
    i32::try_from(errno)
        .ok()
        .map(nix::errno::Errno::from_raw)
        .filter(|e| *e != nix::errno::Errno::UnknownErrno)
        .map_or_else(|| format!("errno {errno}"), |e| format!("{e:?}"))
}

/// Splits the kernel's `exit_code` (`status << 8 | signal`, bit 7 = core dump).
pub fn split_exit_code(raw: i32) -> (Option<i32>, Option<i32>, bool) {
    let sig = raw & 0x7f;
    if sig == 0 {
        (Some((raw >> 8) & 0xff), None, false)
    } else {
        (None, Some(sig), raw & 0x80 != 0)
    }
}

#[cfg(test)]
impl Event {
    /// An event of process `tgid` with every other field zero or empty, for unit tests.
    pub fn for_test(tgid: u32, detail: Detail) -> Self {
        Self {
            ts_ns: 0,
            pid: tgid,
            tgid,
            ppid: 0,
            uid: 0,
            comm: String::new(),
            cgroup_id: 0,
            mnt_ns: 0,
            pid_ns: 0,
            net_ns: 0,
            user_ns: 0,
            hook: String::new(),
            truncated: Vec::new(),
            detail,
        }
    }
}

impl Detail {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Detail::Exec { .. } => EventKind::Exec,
            Detail::Mount { .. } => EventKind::Mount,
            Detail::Umount { .. } => EventKind::Umount,
            Detail::PivotRoot { .. } => EventKind::PivotRoot,
            Detail::Fsopen { .. } => EventKind::Fsopen,
            Detail::Fsconfig { .. } => EventKind::Fsconfig,
            Detail::Fsmount { .. } => EventKind::Fsmount,
            Detail::MoveMount { .. } => EventKind::MoveMount,
            Detail::OpenTree { .. } => EventKind::OpenTree,
            Detail::MountSetattr { .. } => EventKind::MountSetattr,
            Detail::Fork { .. } => EventKind::Fork,
            Detail::Exit { .. } => EventKind::Exit,
            Detail::Rename { .. } => EventKind::Rename,
            Detail::Namespaces { .. } => EventKind::Namespaces,
            Detail::Setns { .. } => EventKind::Setns,
            Detail::Veth { .. } => EventKind::Veth,
            Detail::CgroupMkdir { .. } => EventKind::CgroupMkdir,
            Detail::CgroupRmdir { .. } => EventKind::CgroupRmdir,
            Detail::CgroupAttach { .. } => EventKind::CgroupAttach,
            Detail::NetdevMove { .. } => EventKind::NetdevMove,
            Detail::OomKill { .. } => EventKind::OomKill,
            Detail::Signal { .. } => EventKind::Signal,
            Detail::Capset { .. } => EventKind::Capset,
            Detail::Prctl { .. } => EventKind::Prctl,
            Detail::Seccomp { .. } => EventKind::Seccomp,
            Detail::IdMap { .. } => EventKind::IdMap,
        }
    }

    /// The kind's name, as in JSON.
    pub fn kind_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The syscall result, for kinds that have one.
    pub fn result(&self) -> Option<&SysResult> {
        match self {
            Detail::Exec { result, .. }
            | Detail::Mount { result, .. }
            | Detail::Umount { result, .. }
            | Detail::PivotRoot { result, .. }
            | Detail::Fsopen { result, .. }
            | Detail::Fsconfig { result, .. }
            | Detail::Fsmount { result, .. }
            | Detail::MoveMount { result, .. }
            | Detail::OpenTree { result, .. }
            | Detail::MountSetattr { result, .. }
            | Detail::Namespaces { result, .. }
            | Detail::Setns { result, .. }
            | Detail::Veth { result, .. }
            | Detail::NetdevMove { result, .. }
            | Detail::Capset { result, .. }
            | Detail::Prctl { result, .. }
            | Detail::Seccomp { result, .. }
            | Detail::IdMap { result, .. } => Some(result),
            Detail::Fork { .. }
            | Detail::Exit { .. }
            | Detail::Rename { .. }
            | Detail::CgroupMkdir { .. }
            | Detail::CgroupRmdir { .. }
            | Detail::CgroupAttach { .. }
            | Detail::OomKill { .. }
            | Detail::Signal { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_split() {
        assert_eq!(split_exit_code(0), (Some(0), None, false));
        assert_eq!(split_exit_code(7 << 8), (Some(7), None, false));
        assert_eq!(split_exit_code(9), (None, Some(9), false));
        assert_eq!(split_exit_code(0x80 | 11), (None, Some(11), true));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(1), "EPERM");
        assert_eq!(errno_name(99999), "errno 99999");
        assert_eq!(errno_name(i64::MAX), format!("errno {}", i64::MAX));
    }

    #[test]
    fn json_round_trip_keeps_kind_tag() {
        let ev = Event {
            ts_ns: 5,
            pid: 1,
            tgid: 1,
            ppid: 0,
            uid: 0,
            comm: "sh".into(),
            cgroup_id: 9,
            mnt_ns: 1,
            pid_ns: 2,
            net_ns: 3,
            user_ns: 4,
            hook: "tracepoint:syscalls:sys_enter_execve".into(),
            truncated: vec!["filename".into()],
            detail: Detail::Exec {
                filename: "/bin/echo".into(),
                argv: vec!["/bin/echo".into(), "a".into()],
                argv_truncated: false,
                filename_truncated: true,
                argv_unreadable: true,
                execveat: None,
                result: SysResult::from_ret(-2),
            },
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["kind"], "exec");
        assert_eq!(json["ret"], -2);
        assert_eq!(json["error"], "ENOENT");
        assert_eq!(json["argv"][1], "a");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }
}
