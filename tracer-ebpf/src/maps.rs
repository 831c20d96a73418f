//! The maps shared by the programs.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, ProgramArray, RingBuf},
};
use tracer_common::{
    tail_call, ExecEvent, IdMapEvent, MountEvent, NetdevMoveEvent, NsEvent, SecurityEvent,
    DEFAULT_RING_BYTES, KIND_SLOTS, MAP_PATH_LEN,
};

/// All events, in submission order. Its size is set by the loader (`--ring-size`).
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Per event kind, records that could not be sent (ring full) or parked (pending map full:
/// plain hash maps, whose full case fails the insert and is counted, where an LRU map would
/// evict an entry without a word).
#[map]
pub(crate) static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(KIND_SLOTS, 0);

/// Exec records between `sys_enter_*` and `sys_exit_*`, by tgid. 1024 execs in flight at
/// once (a 100,000-exec storm on 4 threads has a handful; one that finds no room is counted
/// lost): the kernel zeroes every entry when the map is made, 4096 of them took 1.5 ms of
/// the start-up.
#[map]
pub(crate) static EXEC_PENDING: HashMap<u32, ExecEvent> = HashMap::with_max_entries(1024, 0);

/// Mount-family records between entry and exit, by thread id (sized as `EXEC_PENDING`).
#[map]
pub(crate) static MOUNT_PENDING: HashMap<u32, MountEvent> = HashMap::with_max_entries(1024, 0);

/// Records are too large for the 512-byte BPF stack: they are built here.
#[map]
pub(crate) static EXEC_SCRATCH: PerCpuArray<ExecEvent> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub(crate) static MOUNT_SCRATCH: PerCpuArray<MountEvent> = PerCpuArray::with_max_entries(1, 0);

/// unshare/setns records between entry and exit, by thread id.
#[map]
pub(crate) static NS_PENDING: HashMap<u32, NsEvent> = HashMap::with_max_entries(1024, 0);

/// `create_new_namespaces` arguments between kprobe and kretprobe, by thread id.
#[map]
pub(crate) static CREATE_NS_PENDING: HashMap<u32, CreateNsArgs> =
    HashMap::with_max_entries(1024, 0);

/// `veth_newlink`'s first three arguments, by thread id: which one is the device is
/// chosen on return (indexing the context by a runtime value is refused by the verifier).
#[map]
pub(crate) static VETH_PENDING: HashMap<u32, [u64; 3]> = HashMap::with_max_entries(1024, 0);

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CreateNsArgs {
    pub flags: u64,
    pub task: u64,
    pub user_ns: u64,
}

/// `create_user_ns`'s `struct cred *` between kprobe and kretprobe, by thread id.
#[map]
pub(crate) static USERNS_PENDING: HashMap<u32, u64> = HashMap::with_max_entries(1024, 0);

/// A map file (`uid_map`, `gid_map`, `setgroups`) opened for writing, between openat's
/// entry and exit, by thread id.
#[map]
pub(crate) static MAP_OPENING: HashMap<u32, MapFile> = HashMap::with_max_entries(256, 0);

/// Map writes between entry and exit (kprobe path), by thread id.
#[map]
pub(crate) static MAP_WRITING: HashMap<u32, IdMapEvent> = HashMap::with_max_entries(256, 0);

#[map]
pub(crate) static MAP_SCRATCH: PerCpuArray<IdMapEvent> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MapFile {
    /// At the open's entry its dirfd, then the new fd.
    pub fd: i32,
    pub which: u32,
    pub path_len: u32,
    pub _pad: u32,
    pub path: [u8; MAP_PATH_LEN],
    pub dir: [u8; 16],
}

/// The map file a process has open for writing, by tgid (one at a time: a writer opens,
/// writes and closes each in turn), until its close or the process's exit.
#[map]
pub(crate) static MAP_FILES: HashMap<u32, MapFile> = HashMap::with_max_entries(1024, 0);

/// The programs others tail-call (slots in `tracer_common::tail_call`), filled by the loader.
#[map]
pub(crate) static TAIL_CALLS: ProgramArray = ProgramArray::with_max_entries(tail_call::SLOTS, 0);

/// What `id_map_report` is to report, set per CPU just before the tail call to it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ReportArgs {
    pub tgid: u32,
    /// `IdMapClose` or `IdMapExit`.
    pub hook: u32,
    /// At an exit: the process's exit event is sent after the report (a tail call does not
    /// come back), with this code.
    pub then_exit: u32,
    pub exit_code: i32,
}

#[map]
pub(crate) static REPORT_ARGS: PerCpuArray<ReportArgs> = PerCpuArray::with_max_entries(1, 0);

/// capset/prctl/seccomp records between entry and exit, by thread id.
#[map]
pub(crate) static SECURITY_PENDING: HashMap<u32, SecurityEvent> =
    HashMap::with_max_entries(1024, 0);

/// Device moves between kprobe and kretprobe, by thread id.
#[map]
pub(crate) static DEVMOVE_PENDING: HashMap<u32, NetdevMoveEvent> =
    HashMap::with_max_entries(1024, 0);
