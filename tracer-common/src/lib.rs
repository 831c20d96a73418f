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
}

/// Number of slots in the lost-event counter array (slot 0 is unused).
pub const KIND_SLOTS: u32 = 14;

impl EventKind {
    pub const ALL: [EventKind; 13] = [
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
    pub _pad: u32,
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
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
    /// `task:task_rename` tracepoint record fields (byte offsets).
    pub rename_pid: u32,
    pub rename_oldcomm: u32,
    pub rename_newcomm: u32,
    pub _pad: u32,
}

impl KernelLayout {
    pub const UNKNOWN: Self = Self {
        task_pid: OFFSET_UNKNOWN,
        task_tgid: OFFSET_UNKNOWN,
        task_real_parent: OFFSET_UNKNOWN,
        task_exit_code: OFFSET_UNKNOWN,
        rename_pid: OFFSET_UNKNOWN,
        rename_oldcomm: OFFSET_UNKNOWN,
        rename_newcomm: OFFSET_UNKNOWN,
        _pad: 0,
    };
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data of integers and byte arrays with explicit padding.
    unsafe impl aya::Pod for super::KernelLayout {}
}
