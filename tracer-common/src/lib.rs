//! The event ABI shared by the kernel programs (`tracer-ebpf`) and the loader (`tracer`).
//!
//! Every record sent through the ring buffer starts with a [`Header`] whose `kind` says which
//! struct follows. All layouts are `#[repr(C)]`, made only of integers and byte arrays (so any
//! bit pattern is a valid value) and padded explicitly, so both sides agree byte for byte.
#![no_std]

/// Length of a task's `comm`, as in the kernel.
pub const COMM_LEN: usize = 16;
/// Bytes kept of a path or a mount source.
pub const PATH_LEN: usize = 256;
/// Bytes kept of a filesystem type or an `fsconfig` key.
pub const FSTYPE_LEN: usize = 32;
/// Most argv entries read from one exec.
pub const MAX_ARGS: usize = 16;
/// A new argv entry is only started below this offset: the guaranteed argv capacity.
pub const ARGV_SOFT_LIMIT: usize = 512;
/// Most bytes read for a single argv entry (including its NUL).
pub const ARG_MAX_READ: usize = 512;
/// argv buffer: room for an entry of `ARG_MAX_READ` started just below `ARGV_SOFT_LIMIT`.
pub const ARGV_LEN: usize = ARGV_SOFT_LIMIT + ARG_MAX_READ;

/// Default size of the event ring buffer (bytes, a power of two multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 16 << 20;

/// Declares [`EventKind`] from one table: each kind's discriminant (its ABI number and its
/// slot in the per-kind lost counters), its name (JSON, summaries, plans) and the record the
/// kernel sends for it. [`EventKind::ALL`], [`KIND_SLOTS`], `from_u32`, `from_name`, `name`
/// and `record_size` all come from this one table, so a kind is declared in one place.
macro_rules! event_kinds {
    ($($(#[$doc:meta])* $kind:ident = $num:literal, $name:literal, $record:ty;)+) => {
        /// What a record is. The discriminant is the index into the per-kind lost counters.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(
            feature = "user",
            derive(serde::Serialize, serde::Deserialize),
            serde(rename_all = "snake_case")
        )]
        pub enum EventKind {
            $($(#[$doc])* $kind = $num,)+
        }

        impl EventKind {
            /// Every kind, in ABI order.
            pub const ALL: [EventKind; [$($num),+].len()] = [$(EventKind::$kind),+];

            pub const fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $($num => Some(Self::$kind),)+
                    _ => None,
                }
            }

            /// The name used in JSON, summaries and plans.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)+
                }
            }

            /// The kind of a name given by [`EventKind::name`].
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$kind),)+
                    _ => None,
                }
            }

            /// The size of the record the kernel sends for this kind.
            pub const fn record_size(self) -> usize {
                match self {
                    $(Self::$kind => core::mem::size_of::<$record>(),)+
                }
            }
        }
    };
}

event_kinds! {
    Exec = 1, "exec", ExecEvent;
    Mount = 2, "mount", MountEvent;
    Umount = 3, "umount", MountEvent;
    PivotRoot = 4, "pivot_root", MountEvent;
    Fsopen = 5, "fsopen", MountEvent;
    Fsconfig = 6, "fsconfig", MountEvent;
    Fsmount = 7, "fsmount", MountEvent;
    MoveMount = 8, "move_mount", MountEvent;
    OpenTree = 9, "open_tree", MountEvent;
    MountSetattr = 10, "mount_setattr", MountEvent;
    Fork = 11, "fork", ForkEvent;
    Exit = 12, "exit", ExitEvent;
    Rename = 13, "rename", RenameEvent;
    Namespaces = 14, "namespaces", NsEvent;
    Setns = 15, "setns", NsEvent;
    Veth = 16, "veth", VethEvent;
    CgroupMkdir = 17, "cgroup_mkdir", CgroupEvent;
    CgroupRmdir = 18, "cgroup_rmdir", CgroupEvent;
    CgroupAttach = 19, "cgroup_attach", CgroupEvent;
    NetdevMove = 20, "netdev_move", NetdevMoveEvent;
    OomKill = 21, "oom_kill", OomEvent;
    Signal = 22, "signal", SignalEvent;
    Capset = 23, "capset", SecurityEvent;
    Prctl = 24, "prctl", SecurityEvent;
    Seccomp = 25, "seccomp", SecurityEvent;
    IdMap = 26, "id_map", IdMapEvent;
}

/// Slots in the lost-event counter array: one per discriminant (slot 0 is unused).
pub const KIND_SLOTS: u32 = {
    let mut max = 0;
    let mut i = 0;
    while i < EventKind::ALL.len() {
        let n = EventKind::ALL[i] as u32;
        if n > max {
            max = n;
        }
        i += 1;
    }
    max + 1
};

// Every discriminant maps back to its own kind: no number is used twice.
const _: () = {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        let k = EventKind::ALL[i];
        assert!(matches!(EventKind::from_u32(k as u32), Some(j) if j as u32 == k as u32));
        i += 1;
    }
};

/// Common to every record: who did it and when.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// An [`EventKind`] discriminant.
    pub kind: u32,
    /// Thread id (the kernel's `pid`).
    pub pid: u32,
    /// Process id (the kernel's `tgid`).
    pub tgid: u32,
    /// Process id of the real parent; 0 when the kernel layout could not be resolved.
    pub ppid: u32,
    pub uid: u32,
    /// The [`Hook`] that produced the record.
    pub hook: u32,
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
    /// Namespace inode numbers of the task (0 when unknown): what tells a container's
    /// processes from the host's. `pid_ns` is the task's own (active) PID namespace.
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub net_ns: u32,
    /// The task's user namespace (`cred->user_ns`), 0 when unknown.
    pub user_ns: u32,
}

/// Declares [`Hook`] from one table: each hook's number (sent in every record's header) and
/// its name in JSON and reports.
macro_rules! hooks {
    ($($(#[$doc:meta])* $hook:ident = $num:literal, $name:literal;)+) => {
        /// Which kernel hook (or userspace source) produced a record.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Hook {
            $($(#[$doc])* $hook = $num,)+
        }

        impl Hook {
            pub const ALL: [Hook; [$($num),+].len()] = [$(Hook::$hook),+];

            pub const fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $($num => Some(Self::$hook),)+
                    _ => None,
                }
            }

            /// The name used in JSON and reports.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$hook => $name,)+
                }
            }
        }
    };
}

hooks! {
    Execve = 1, "tracepoint:syscalls:sys_enter_execve";
    Execveat = 2, "tracepoint:syscalls:sys_enter_execveat";
    Mount = 3, "tracepoint:syscalls:sys_enter_mount";
    Umount = 4, "tracepoint:syscalls:sys_enter_umount";
    PivotRoot = 5, "tracepoint:syscalls:sys_enter_pivot_root";
    Fsopen = 6, "tracepoint:syscalls:sys_enter_fsopen";
    Fsconfig = 7, "tracepoint:syscalls:sys_enter_fsconfig";
    Fsmount = 8, "tracepoint:syscalls:sys_enter_fsmount";
    MoveMount = 9, "tracepoint:syscalls:sys_enter_move_mount";
    OpenTree = 10, "tracepoint:syscalls:sys_enter_open_tree";
    MountSetattr = 11, "tracepoint:syscalls:sys_enter_mount_setattr";
    SchedProcessFork = 12, "raw_tracepoint:sched_process_fork";
    SchedProcessExit = 13, "tracepoint:sched:sched_process_exit";
    TaskRename = 14, "tracepoint:task:task_rename";
    /// kprobe + kretprobe on `create_new_namespaces` (stock kernels).
    CreateNewNamespaces = 15, "kretprobe:create_new_namespaces";
    /// `syscalls:sys_enter/exit_unshare` (fallback).
    Unshare = 16, "tracepoint:syscalls:sys_exit_unshare";
    /// `sched_process_fork`, comparing the child's namespaces with the parent's (fallback).
    ForkNamespaces = 17, "raw_tracepoint:sched_process_fork";
    Setns = 18, "tracepoint:syscalls:sys_exit_setns";
    /// kprobe + kretprobe on `veth_newlink` (stock kernels).
    VethNewlink = 19, "kretprobe:veth_newlink";
    /// Userspace rtnetlink link monitor (fallback where kprobes are missing).
    RtnetlinkMonitor = 20, "rtnetlink:RTNLGRP_LINK";
    CgroupMkdir = 21, "tracepoint:cgroup:cgroup_mkdir";
    CgroupRmdir = 22, "tracepoint:cgroup:cgroup_rmdir";
    CgroupAttachTask = 23, "tracepoint:cgroup:cgroup_attach_task";
    /// kprobe + kretprobe on `__dev_change_net_namespace` (stock kernels).
    DevChangeNetNamespace = 24, "kretprobe:__dev_change_net_namespace";
    OomMarkVictim = 25, "tracepoint:oom:mark_victim";
    SignalGenerate = 26, "tracepoint:signal:signal_generate";
    Capset = 27, "tracepoint:syscalls:sys_exit_capset";
    Prctl = 28, "tracepoint:syscalls:sys_exit_prctl";
    Seccomp = 29, "tracepoint:syscalls:sys_exit_seccomp";
    /// kprobe + kretprobe on `create_user_ns` (stock kernels).
    CreateUserNs = 30, "kretprobe:create_user_ns";
    /// A map file opened for writing (`sys_enter/exit_openat`), reported at its close with
    /// the map the kernel then holds.
    IdMapClose = 31, "tracepoint:syscalls:sys_enter_close";
    /// The same, when its process exits without closing it.
    IdMapExit = 35, "tracepoint:sched:sched_process_exit";
    /// kprobe + kretprobe on the map files' write functions (stock kernels).
    ProcUidMapWrite = 32, "kretprobe:proc_uid_map_write";
    ProcGidMapWrite = 33, "kretprobe:proc_gid_map_write";
    ProcSetgroupsWrite = 34, "kretprobe:proc_setgroups_write";
}

/// A kind of namespace. The discriminant is its index in [`NsEvent::inum`] and its bit in
/// masks of kinds.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "user",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum NsKind {
    Uts = 0,
    Ipc = 1,
    Mnt = 2,
    Pid = 3,
    Net = 4,
    Cgroup = 5,
    Time = 6,
    /// Not in `nsproxy`: a task's user namespace is its credentials' (`cred->user_ns`).
    User = 7,
}

/// Namespace kinds tracked.
pub const NS_KINDS: usize = NsKind::ALL.len();

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Cgroup,
        NsKind::Time,
        NsKind::User,
    ];

    /// The name in `/proc/PID/ns/` and in JSON.
    pub const fn name(self) -> &'static str {
        match self {
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
            NsKind::User => "user",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        NsKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The `CLONE_NEW*` flag that creates it.
    pub const fn clone_flag(self) -> u64 {
        match self {
            NsKind::Uts => 0x0400_0000,
            NsKind::Ipc => 0x0800_0000,
            NsKind::Mnt => 0x0002_0000,
            NsKind::Pid => 0x2000_0000,
            NsKind::Net => 0x4000_0000,
            NsKind::Cgroup => 0x0200_0000,
            NsKind::Time => 0x0000_0080,
            NsKind::User => 0x1000_0000,
        }
    }
}

// The discriminants are the indexes of `ALL`.
const _: () = {
    let mut i = 0;
    while i < NS_KINDS {
        assert!(NsKind::ALL[i] as usize == i);
        i += 1;
    }
};

/// Every `CLONE_NEW*` flag tracked.
pub const NS_CLONE_FLAGS: u64 = {
    let mut f = 0;
    let mut i = 0;
    while i < NS_KINDS {
        f |= NsKind::ALL[i].clone_flag();
        i += 1;
    }
    f
};

/// How namespaces changed.
pub mod ns_op {
    /// `unshare(2)`: the caller moved to new namespaces.
    pub const UNSHARE: u32 = 1;
    /// A new process was created in new namespaces (`clone`/`clone3` with `CLONE_NEW*`).
    pub const CLONE: u32 = 2;
    /// `setns(2)`: the caller joined existing namespaces.
    pub const SETNS: u32 = 3;
    /// `create_new_namespaces()` returned: from `unshare` or `clone` (kprobe path).
    pub const CREATE: u32 = 4;
}

/// Namespace creation or joining.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NsEvent {
    pub header: Header,
    /// `unshare`/`clone` flags (`CLONE_*`), or the `nstype` given to `setns`.
    pub flags: u64,
    /// Result: 0, or `-errno`.
    pub ret: i64,
    /// One of [`ns_op`].
    pub op: u32,
    /// The process now in the namespaces: the caller, or the new child for `clone`.
    pub target_pid: u32,
    /// `setns`: the fd argument.
    pub fd: i32,
    /// The uid (on the host) that owns the resulting user namespace (`user_namespace.owner`).
    pub user_owner: u32,
    /// Inode numbers of the resulting namespaces (`pid` and `time`: for children), in
    /// [`NsKind`] order.
    pub inum: [u32; NS_KINDS],
    /// The same before the call (the parent's, for `clone`). Which kinds are new is worked
    /// out in userspace: a comparison per kind in the kernel multiplies verifier states.
    pub prev: [u32; NS_KINDS],
}

/// A veth pair was created.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VethEvent {
    pub header: Header,
    /// `veth_newlink`'s return value (0 on success).
    pub ret: i64,
    pub ifindex: u32,
    pub peer_ifindex: u32,
    /// Inode of the network namespace of each end (0 when unknown).
    pub netns: u32,
    pub peer_netns: u32,
    pub name: [u8; COMM_LEN],
    pub peer: [u8; COMM_LEN],
}

/// A cgroup made or removed (`cgroup_mkdir`, `cgroup_rmdir`), or a task moved into one
/// (`cgroup_attach_task`). On cgroup v1 each controller hierarchy reports its own.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupEvent {
    pub header: Header,
    /// The cgroup's id (on the cgroup2 hierarchy, what [`Header::cgroup_id`] holds).
    pub id: u64,
    /// The hierarchy's id (the cgroup2 hierarchy's is its own; each v1 hierarchy has one).
    pub root: i32,
    /// Depth below the hierarchy's root.
    pub level: i32,
    /// `cgroup_attach`: the task moved in.
    pub pid: u32,
    pub path_len: u16,
    /// The path filled its buffer and may have been cut.
    pub truncated: u16,
    /// Relative to the hierarchy's root (`/docker/<id>`).
    pub path: [u8; PATH_LEN],
}

/// A network device moved into another network namespace (a veth end going into a
/// container: what ties a host veth to its container).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NetdevMoveEvent {
    pub header: Header,
    /// The call's result (0 on success).
    pub ret: i64,
    /// The device's index before the move.
    pub ifindex: u32,
    /// Inode of the namespace it leaves, and of the one it joins.
    pub netns: u32,
    pub to_netns: u32,
    pub _pad: u32,
    pub name: [u8; COMM_LEN],
}

/// The OOM killer chose a victim (`oom:mark_victim`); the header is the task that ran it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OomEvent {
    pub header: Header,
    pub pid: u32,
    pub _pad: u32,
}

/// A signal that ends processes sent by the header's task (`signal:signal_generate`, only
/// SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL and SIGTERM: the others are too many to send).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SignalEvent {
    pub header: Header,
    pub sig: i32,
    /// The target thread.
    pub pid: u32,
    /// `si_code`: SI_USER (0) for kill(2), SI_KERNEL (0x80) for the kernel's own.
    pub code: i32,
    /// 0 delivered, 1 ignored, 2 already pending, 3 queue full, 4 info lost.
    pub result: i32,
}

/// Security setup: `capset(2)`, `prctl(2)` (only the options below) and `seccomp(2)`, with
/// the result of the matching syscall exit. What each field holds depends on the kind:
///
/// | kind | `op` | `arg` | `effective` | `permitted` | `inheritable` | `filter_len` |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | capset | header version | target pid | effective | permitted | inheritable | |
/// | prctl | option | arg2 | | | | instructions (`PR_SET_SECCOMP` filter) |
/// | seccomp | operation | flags | | | | instructions (`SECCOMP_SET_MODE_FILTER`) |
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SecurityEvent {
    pub header: Header,
    /// The syscall's result (0, or `-errno`).
    pub ret: i64,
    pub arg: u64,
    /// Capability sets, 64 bits (both halves of a version 2 or 3 `capset`).
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub op: u32,
    /// Instructions of a seccomp filter (`struct sock_fprog.len`); 0 when none was given.
    pub filter_len: u32,
}

/// Bytes kept of an ID map written (a map holds at most 340 lines; runtimes write a few).
pub const MAP_DATA_LEN: usize = 256;
/// Bytes kept of the path a map file was opened by (`/proc/4194304/setgroups` is 25).
pub const MAP_PATH_LEN: usize = 32;

/// Programs that others tail-call, by their slot in the `TAIL_CALLS` program array: verified
/// once, where inlined in each caller they were verified in each.
pub mod tail_call {
    /// Reports the map file a process held (`sys_enter_close`, `sched_process_exit`).
    pub const ID_MAP_REPORT: u32 = 0;
    pub const ID_MAP_REPORT_PROGRAM: &str = "id_map_report";
    /// The program that remembers a map file until its close: where it is not attached
    /// (with kprobes, writes are seen where they happen), nothing calls the report.
    pub const ID_MAP_REPORT_CALLER: &str = "sys_enter_close";
    pub const SLOTS: u32 = 1;
}

/// Which file of a user namespace's ID maps: `/proc/PID/uid_map`, `gid_map`, `setgroups`.
pub mod id_map_file {
    pub const UID_MAP: u32 = 0;
    pub const GID_MAP: u32 = 1;
    pub const SETGROUPS: u32 = 2;
}

/// A process wrote a user namespace's ID map (or its `setgroups`): on kernels with kprobes
/// seen at the map file's write function, with what was written and the result; elsewhere
/// the file is seen opened for writing (`openat`) and reported when it is closed (or its
/// process exits), with the map the kernel then holds ([`MapExtents`] in `data`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IdMapEvent {
    pub header: Header,
    /// The write's result (bytes written, or `-errno`); 0 at a close.
    pub ret: i64,
    /// The file's fd (at a close), or -1.
    pub fd: i32,
    /// One of [`id_map_file`].
    pub which: u32,
    /// Bytes the write was given, and bytes kept in `data`.
    pub count: u32,
    pub len: u32,
    pub path_len: u32,
    /// The user namespace mapped (kprobe path; 0 on the tracepoint path, which sees the path).
    pub user_ns: u32,
    /// The path the file was opened by (`/proc/4242/uid_map`, or `uid_map` below a dirfd).
    pub path: [u8; MAP_PATH_LEN],
    /// The name of the directory a relative path was opened below (`4242` for
    /// `/proc/4242`), NUL-terminated; empty for an absolute path.
    pub dir: [u8; 16],
    /// What was written (kprobe path), or the map the kernel holds at the close: its
    /// `nr_extents` (u32), then that many `{first, lower_first, count}` (u32 each, at most
    /// [`MAP_EXTENTS`]); for `setgroups`, the namespace's `flags` (u64).
    pub data: [u8; MAP_DATA_LEN],
}

/// Most extents of a map reported at a close (the kernel allows 340).
pub const MAP_EXTENTS: usize = 16;

/// `prctl` options reported: the ones that set a process's security.
pub mod prctl_ops {
    pub const PR_SET_KEEPCAPS: u32 = 8;
    pub const PR_SET_SECCOMP: u32 = 22;
    pub const PR_CAPBSET_DROP: u32 = 24;
    pub const PR_SET_NO_NEW_PRIVS: u32 = 38;
    pub const PR_CAP_AMBIENT: u32 = 47;
}

/// Signals reported: the ones that end a process unless it handles them.
pub const REPORTED_SIGNALS: [i32; 6] = [1, 2, 3, 6, 9, 15];

/// Bits of [`ExecEvent::flags`].
pub mod exec_flags {
    /// More than `MAX_ARGS` entries, or argv longer than the buffer.
    pub const ARGV_TRUNCATED: u16 = 1 << 0;
    /// The filename filled its buffer.
    pub const FILENAME_TRUNCATED: u16 = 1 << 1;
    /// Made through `execveat` (then `dirfd` and `at_flags` are meaningful).
    pub const EXECVEAT: u16 = 1 << 2;
    /// argv could not be read at all.
    pub const ARGV_UNREADABLE: u16 = 1 << 3;
}

/// `execve`/`execveat`, with the result of the matching syscall exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: Header,
    /// 0 on success, `-errno` on failure.
    pub ret: i64,
    pub dirfd: i32,
    pub at_flags: i32,
    pub argc: u16,
    /// Bytes used in `argv`: NUL-terminated entries, one after another.
    pub argv_len: u16,
    pub filename_len: u16,
    pub flags: u16,
    pub filename: [u8; PATH_LEN],
    pub argv: [u8; ARGV_LEN],
}

/// Bits of [`MountEvent::truncated`].
pub mod mount_truncated {
    pub const FSTYPE: u16 = 1 << 0;
    pub const SRC: u16 = 1 << 1;
    pub const DST: u16 = 1 << 2;
}

/// One record for the whole mount family; what each field holds depends on the kind:
///
/// | kind | `fstype` | `src` | `dst` | `fd` | `fd2` | `cmd` | `flags` |
/// | --- | --- | --- | --- | --- | --- | --- | --- |
/// | mount | fs type | source | target | | | | mount flags |
/// | umount | | | target | | | | umount flags |
/// | pivot_root | | new_root | put_old | | | | |
/// | fsopen | fs name | | | | | | fsopen flags |
/// | fsconfig | key | value (string cmds) | | fs fd | aux | cmd | |
/// | fsmount | | | | fs fd | | attr flags | fsmount flags |
/// | move_mount | | from path | to path | from dirfd | to dirfd | | flags |
/// | open_tree | | path | | dirfd | | | flags |
/// | mount_setattr | | path | | dirfd | userns fd (idmap) | its inode | flags (+ `attr_*`) |
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MountEvent {
    pub header: Header,
    /// The syscall's return value (a new fd for fsopen/fsmount/open_tree, or `-errno`).
    pub ret: i64,
    pub flags: u64,
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub fd: i32,
    pub fd2: i32,
    pub cmd: u32,
    pub fstype_len: u16,
    pub src_len: u16,
    pub dst_len: u16,
    pub truncated: u16,
    pub _pad: u32,
    pub fstype: [u8; FSTYPE_LEN],
    pub src: [u8; PATH_LEN],
    pub dst: [u8; PATH_LEN],
}

/// A new process (threads are not reported: their events carry their process's tgid, so
/// the child's pid is also its tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    /// The parent.
    pub header: Header,
    pub child_pid: u32,
    pub _pad: u32,
}

/// A process ends (reported when its thread-group leader exits).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: Header,
    /// The kernel's `task->exit_code`: `(status << 8) | signal`, bit 7 = core dumped.
    pub exit_code: i32,
    pub _pad: u32,
}

/// A task's `comm` changes (`prctl(PR_SET_NAME)`, exec, `/proc/PID/comm`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RenameEvent {
    /// The task doing the rename (usually the renamed task itself).
    pub header: Header,
    /// The renamed task.
    pub pid: u32,
    pub _pad: u32,
    pub oldcomm: [u8; COMM_LEN],
    pub newcomm: [u8; COMM_LEN],
}

/// Marks an offset that could not be resolved on the running kernel.
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// Kernel layout facts resolved at load time (kernel BTF, tracefs formats) and handed to the
/// programs as a global: Rust eBPF has no CO-RE relocations, so nothing is baked in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    /// `task_struct` members (byte offsets).
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_exit_code: u32,
    pub task_nsproxy: u32,
    pub task_thread_pid: u32,
    /// `struct pid`: `level`, `numbers[]`, and `struct upid`'s size and `ns`.
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_ns: u32,
    /// `struct nsproxy` member of each namespace kind, in [`NsKind`] order.
    pub nsproxy: [u32; NS_KINDS],
    /// Offset of the inode number inside each kind's namespace struct (`ns.inum`).
    pub ns_inum: [u32; NS_KINDS],
    /// `task:task_rename` tracepoint record fields (byte offsets).
    pub rename_pid: u32,
    pub rename_oldcomm: u32,
    pub rename_newcomm: u32,
    /// `struct net_device`: `name`, `ifindex`, `nd_net.net`, and where its private area
    /// (`netdev_priv()`) starts.
    pub netdev_name: u32,
    pub netdev_ifindex: u32,
    pub netdev_net: u32,
    pub netdev_priv: u32,
    /// `struct veth_priv.peer`.
    pub veth_priv_peer: u32,
    /// Which argument of `veth_newlink` is the `struct net_device *` (it moved in 6.x).
    pub veth_newlink_dev_arg: u32,
    /// `struct net.ns.inum`, for the netns of a device.
    pub net_inum: u32,
    /// Which arguments of `__dev_change_net_namespace` are the device and the target net.
    pub devmove_dev_arg: u32,
    pub devmove_net_arg: u32,
    /// `cgroup:cgroup_mkdir`/`cgroup_rmdir` record fields (byte offsets; `path` is a
    /// `__data_loc`).
    pub cgroup_root: u32,
    pub cgroup_level: u32,
    pub cgroup_id: u32,
    pub cgroup_path: u32,
    /// `cgroup:cgroup_attach_task` record fields.
    pub attach_root: u32,
    pub attach_level: u32,
    pub attach_id: u32,
    pub attach_pid: u32,
    pub attach_path: u32,
    /// `task_struct.cred` and `struct cred.user_ns`: a task's user namespace.
    pub task_cred: u32,
    pub cred_user_ns: u32,
    /// `struct file.private_data` and `struct seq_file.private`: the user namespace a map
    /// file is of.
    pub file_private_data: u32,
    pub seq_file_private: u32,
    /// A task's open file by number (`task->files->fdt->fd[n]`) and the name of its
    /// dentry (`file->f_path.dentry->d_name.name`).
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_fd: u32,
    pub file_dentry: u32,
    pub dentry_name: u32,
    /// `struct file.f_inode` and `struct inode.i_ino`: an nsfs file's inode is its namespace's.
    pub file_inode: u32,
    pub inode_ino: u32,
    /// `struct user_namespace`: `uid_map`, `gid_map`, `flags`; `struct uid_gid_map`:
    /// `nr_extents`, the inline `extent[]`, and `forward` (past five extents).
    pub userns_uid_map: u32,
    pub userns_gid_map: u32,
    pub userns_flags: u32,
    pub userns_owner: u32,
    pub map_nr_extents: u32,
    pub map_extent: u32,
    pub map_forward: u32,
    /// `oom:mark_victim` and `signal:signal_generate` record fields.
    pub oom_pid: u32,
    pub signal_sig: u32,
    pub signal_code: u32,
    pub signal_pid: u32,
    pub signal_result: u32,
    /// This architecture's syscall numbers, for the programs that serve several syscalls'
    /// tracepoints: a record's `__syscall_nr` says which syscall it is.
    pub sys: SyscallNrs,
}

/// Syscall numbers (from the loader's `libc`: the architecture's own). One program per
/// family of syscalls instead of one per syscall: the verifier goes through the header they
/// share once, not once per syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallNrs {
    pub execve: u32,
    pub execveat: u32,
    pub mount: u32,
    pub umount2: u32,
    pub pivot_root: u32,
    pub fsopen: u32,
    pub fsconfig: u32,
    pub fsmount: u32,
    pub move_mount: u32,
    pub open_tree: u32,
    pub mount_setattr: u32,
    pub unshare: u32,
    pub setns: u32,
    pub capset: u32,
    pub prctl: u32,
    pub seccomp: u32,
}

impl KernelLayout {
    pub const UNKNOWN: Self = Self {
        task_pid: OFFSET_UNKNOWN,
        task_tgid: OFFSET_UNKNOWN,
        task_real_parent: OFFSET_UNKNOWN,
        task_exit_code: OFFSET_UNKNOWN,
        task_nsproxy: OFFSET_UNKNOWN,
        task_thread_pid: OFFSET_UNKNOWN,
        pid_level: OFFSET_UNKNOWN,
        pid_numbers: OFFSET_UNKNOWN,
        upid_size: OFFSET_UNKNOWN,
        upid_ns: OFFSET_UNKNOWN,
        nsproxy: [OFFSET_UNKNOWN; NS_KINDS],
        ns_inum: [OFFSET_UNKNOWN; NS_KINDS],
        rename_pid: OFFSET_UNKNOWN,
        rename_oldcomm: OFFSET_UNKNOWN,
        rename_newcomm: OFFSET_UNKNOWN,
        netdev_name: OFFSET_UNKNOWN,
        netdev_ifindex: OFFSET_UNKNOWN,
        netdev_net: OFFSET_UNKNOWN,
        netdev_priv: OFFSET_UNKNOWN,
        veth_priv_peer: OFFSET_UNKNOWN,
        veth_newlink_dev_arg: OFFSET_UNKNOWN,
        net_inum: OFFSET_UNKNOWN,
        devmove_dev_arg: OFFSET_UNKNOWN,
        devmove_net_arg: OFFSET_UNKNOWN,
        cgroup_root: OFFSET_UNKNOWN,
        cgroup_level: OFFSET_UNKNOWN,
        cgroup_id: OFFSET_UNKNOWN,
        cgroup_path: OFFSET_UNKNOWN,
        attach_root: OFFSET_UNKNOWN,
        attach_level: OFFSET_UNKNOWN,
        attach_id: OFFSET_UNKNOWN,
        attach_pid: OFFSET_UNKNOWN,
        attach_path: OFFSET_UNKNOWN,
        task_cred: OFFSET_UNKNOWN,
        cred_user_ns: OFFSET_UNKNOWN,
        file_private_data: OFFSET_UNKNOWN,
        seq_file_private: OFFSET_UNKNOWN,
        task_files: OFFSET_UNKNOWN,
        files_fdt: OFFSET_UNKNOWN,
        fdtable_fd: OFFSET_UNKNOWN,
        file_dentry: OFFSET_UNKNOWN,
        dentry_name: OFFSET_UNKNOWN,
        file_inode: OFFSET_UNKNOWN,
        inode_ino: OFFSET_UNKNOWN,
        userns_uid_map: OFFSET_UNKNOWN,
        userns_gid_map: OFFSET_UNKNOWN,
        userns_flags: OFFSET_UNKNOWN,
        userns_owner: OFFSET_UNKNOWN,
        map_nr_extents: OFFSET_UNKNOWN,
        map_extent: OFFSET_UNKNOWN,
        map_forward: OFFSET_UNKNOWN,
        oom_pid: OFFSET_UNKNOWN,
        signal_sig: OFFSET_UNKNOWN,
        signal_code: OFFSET_UNKNOWN,
        signal_pid: OFFSET_UNKNOWN,
        signal_result: OFFSET_UNKNOWN,
        sys: SyscallNrs::UNKNOWN,
    };
}

impl SyscallNrs {
    /// Matches no record: a family program then sends nothing.
    pub const UNKNOWN: Self = Self {
        execve: OFFSET_UNKNOWN,
        execveat: OFFSET_UNKNOWN,
        mount: OFFSET_UNKNOWN,
        umount2: OFFSET_UNKNOWN,
        pivot_root: OFFSET_UNKNOWN,
        fsopen: OFFSET_UNKNOWN,
        fsconfig: OFFSET_UNKNOWN,
        fsmount: OFFSET_UNKNOWN,
        move_mount: OFFSET_UNKNOWN,
        open_tree: OFFSET_UNKNOWN,
        mount_setattr: OFFSET_UNKNOWN,
        unshare: OFFSET_UNKNOWN,
        setns: OFFSET_UNKNOWN,
        capset: OFFSET_UNKNOWN,
        prctl: OFFSET_UNKNOWN,
        seccomp: OFFSET_UNKNOWN,
    };
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data of integers and byte arrays with explicit padding.
    unsafe impl aya::Pod for super::KernelLayout {}
}
