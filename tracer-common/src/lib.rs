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

/// What a record is. The discriminant is the index into the per-kind lost counters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Exec = 1,
    Mount = 2,
    Umount = 3,
    PivotRoot = 4,
    Fsopen = 5,
    Fsconfig = 6,
    Fsmount = 7,
    MoveMount = 8,
    OpenTree = 9,
    MountSetattr = 10,
    Fork = 11,
    Exit = 12,
    Rename = 13,
    Namespaces = 14,
    Setns = 15,
    Veth = 16,
}

/// Number of slots in the lost-event counter array (slot 0 is unused).
pub const KIND_SLOTS: u32 = 17;

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::Exec,
        EventKind::Mount,
        EventKind::Umount,
        EventKind::PivotRoot,
        EventKind::Fsopen,
        EventKind::Fsconfig,
        EventKind::Fsmount,
        EventKind::MoveMount,
        EventKind::OpenTree,
        EventKind::MountSetattr,
        EventKind::Fork,
        EventKind::Exit,
        EventKind::Rename,
        EventKind::Namespaces,
        EventKind::Setns,
        EventKind::Veth,
    ];

    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Exec,
            2 => Self::Mount,
            3 => Self::Umount,
            4 => Self::PivotRoot,
            5 => Self::Fsopen,
            6 => Self::Fsconfig,
            7 => Self::Fsmount,
            8 => Self::MoveMount,
            9 => Self::OpenTree,
            10 => Self::MountSetattr,
            11 => Self::Fork,
            12 => Self::Exit,
            13 => Self::Rename,
            14 => Self::Namespaces,
            15 => Self::Setns,
            16 => Self::Veth,
            _ => return None,
        })
    }

    /// The name used in JSON and in summaries.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Mount => "mount",
            Self::Umount => "umount",
            Self::PivotRoot => "pivot_root",
            Self::Fsopen => "fsopen",
            Self::Fsconfig => "fsconfig",
            Self::Fsmount => "fsmount",
            Self::MoveMount => "move_mount",
            Self::OpenTree => "open_tree",
            Self::MountSetattr => "mount_setattr",
            Self::Fork => "fork",
            Self::Exit => "exit",
            Self::Rename => "rename",
            Self::Namespaces => "namespaces",
            Self::Setns => "setns",
            Self::Veth => "veth",
        }
    }

    /// The size of the record the kernel sends for this kind.
    pub const fn record_size(self) -> usize {
        match self {
            Self::Exec => core::mem::size_of::<ExecEvent>(),
            Self::Mount
            | Self::Umount
            | Self::PivotRoot
            | Self::Fsopen
            | Self::Fsconfig
            | Self::Fsmount
            | Self::MoveMount
            | Self::OpenTree
            | Self::MountSetattr => core::mem::size_of::<MountEvent>(),
            Self::Fork => core::mem::size_of::<ForkEvent>(),
            Self::Exit => core::mem::size_of::<ExitEvent>(),
            Self::Rename => core::mem::size_of::<RenameEvent>(),
            Self::Namespaces | Self::Setns => core::mem::size_of::<NsEvent>(),
            Self::Veth => core::mem::size_of::<VethEvent>(),
        }
    }
}

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
    pub _pad: u32,
}

/// Which kernel hook (or userspace source) produced a record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Execve = 1,
    Execveat = 2,
    Mount = 3,
    Umount = 4,
    PivotRoot = 5,
    Fsopen = 6,
    Fsconfig = 7,
    Fsmount = 8,
    MoveMount = 9,
    OpenTree = 10,
    MountSetattr = 11,
    SchedProcessFork = 12,
    SchedProcessExit = 13,
    TaskRename = 14,
    /// kprobe + kretprobe on `create_new_namespaces` (stock kernels).
    CreateNewNamespaces = 15,
    /// `syscalls:sys_enter/exit_unshare` (fallback).
    Unshare = 16,
    /// `sched_process_fork`, comparing the child's namespaces with the parent's (fallback).
    ForkNamespaces = 17,
    Setns = 18,
    /// kprobe + kretprobe on `veth_newlink` (stock kernels).
    VethNewlink = 19,
    /// Userspace rtnetlink link monitor (fallback where kprobes are missing).
    RtnetlinkMonitor = 20,
}

impl Hook {
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Execve,
            2 => Self::Execveat,
            3 => Self::Mount,
            4 => Self::Umount,
            5 => Self::PivotRoot,
            6 => Self::Fsopen,
            7 => Self::Fsconfig,
            8 => Self::Fsmount,
            9 => Self::MoveMount,
            10 => Self::OpenTree,
            11 => Self::MountSetattr,
            12 => Self::SchedProcessFork,
            13 => Self::SchedProcessExit,
            14 => Self::TaskRename,
            15 => Self::CreateNewNamespaces,
            16 => Self::Unshare,
            17 => Self::ForkNamespaces,
            18 => Self::Setns,
            19 => Self::VethNewlink,
            20 => Self::RtnetlinkMonitor,
            _ => return None,
        })
    }

    /// The name used in JSON and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Execve => "tracepoint:syscalls:sys_enter_execve",
            Self::Execveat => "tracepoint:syscalls:sys_enter_execveat",
            Self::Mount => "tracepoint:syscalls:sys_enter_mount",
            Self::Umount => "tracepoint:syscalls:sys_enter_umount",
            Self::PivotRoot => "tracepoint:syscalls:sys_enter_pivot_root",
            Self::Fsopen => "tracepoint:syscalls:sys_enter_fsopen",
            Self::Fsconfig => "tracepoint:syscalls:sys_enter_fsconfig",
            Self::Fsmount => "tracepoint:syscalls:sys_enter_fsmount",
            Self::MoveMount => "tracepoint:syscalls:sys_enter_move_mount",
            Self::OpenTree => "tracepoint:syscalls:sys_enter_open_tree",
            Self::MountSetattr => "tracepoint:syscalls:sys_enter_mount_setattr",
            Self::SchedProcessFork => "raw_tracepoint:sched_process_fork",
            Self::SchedProcessExit => "tracepoint:sched:sched_process_exit",
            Self::TaskRename => "tracepoint:task:task_rename",
            Self::CreateNewNamespaces => "kretprobe:create_new_namespaces",
            Self::Unshare => "tracepoint:syscalls:sys_exit_unshare",
            Self::ForkNamespaces => "raw_tracepoint:sched_process_fork",
            Self::Setns => "tracepoint:syscalls:sys_exit_setns",
            Self::VethNewlink => "kretprobe:veth_newlink",
            Self::RtnetlinkMonitor => "rtnetlink:RTNLGRP_LINK",
        }
    }
}

/// Namespace kinds in the order of [`NsEvent::inum`] and of the bits of `new_mask`.
pub const NS_KINDS: usize = 7;
pub const NS_NAMES: [&str; NS_KINDS] = ["uts", "ipc", "mnt", "pid", "net", "cgroup", "time"];
/// The `CLONE_NEW*` flag of each kind, in the same order.
pub const NS_CLONE_FLAGS: [u64; NS_KINDS] = [
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x0002_0000, // CLONE_NEWNS
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
    0x0200_0000, // CLONE_NEWCGROUP
    0x0000_0080, // CLONE_NEWTIME
];

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
    pub _pad: u32,
    /// Inode numbers of the resulting namespaces (`pid` and `time`: for children), in
    /// [`NS_NAMES`] order.
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
/// | mount_setattr | | path | | dirfd | | | flags (+ `attr_*`) |
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

/// A new process (threads are not reported: their events carry their process's tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    /// The parent.
    pub header: Header,
    pub child_pid: u32,
    pub child_tgid: u32,
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
    /// `struct nsproxy` member of each namespace kind, in [`NS_NAMES`] order.
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
    };
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data of integers and byte arrays with explicit padding.
    unsafe impl aya::Pod for super::KernelLayout {}
}
