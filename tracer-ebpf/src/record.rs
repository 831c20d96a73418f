//! Filling and sending records.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_ktime_get_boot_ns,
            bpf_probe_read_kernel,
        },
    },
    maps::RingBuf,
    programs::TracePointContext,
};
use tracer_common::{EventKind, Header, Hook, KernelLayout, NsKind, NS_KINDS, OFFSET_UNKNOWN};

use crate::maps::LOST;

/// Set by the loader from the running kernel's BTF and tracefs formats.
#[unsafe(no_mangle)]
pub(crate) static LAYOUT: KernelLayout = KernelLayout::UNKNOWN;

/// Reads one field of [`LAYOUT`]. Volatile: the loader rewrites the value after compilation,
/// so the compiler must not fold the placeholder in.
macro_rules! layout {
    ($($field:tt)+) => {
        // SAFETY: reading a field of a global.
        unsafe { core::ptr::read_volatile(&raw const crate::record::LAYOUT.$($field)+) }
    };
}
pub(crate) use layout;

/// Reads a field of a tracepoint's record, zero when its offset is unknown.
#[inline(always)]
pub(crate) fn tp_field<T: Copy + Default>(ctx: &TracePointContext, off: u32) -> T {
    if off == OFFSET_UNKNOWN {
        return T::default();
    }
    // SAFETY: an offset from the tracepoint's format file, read through the helper.
    unsafe { ctx.read_at::<T>(off as usize).unwrap_or_default() }
}

const NS_MNT: usize = NsKind::Mnt as usize;
const NS_PID: usize = NsKind::Pid as usize;
const NS_NET: usize = NsKind::Net as usize;
pub(crate) const NS_USER: usize = NsKind::User as usize;

/// Reads a `T` at `offset` bytes into a kernel struct; zero when it cannot be read (a null
/// base or an unknown offset make an address the helper refuses). No branch: each branch
/// here would multiply the states the verifier walks, and old verifiers give up.
#[inline(always)]
pub(crate) fn kread<T: Copy + Default>(base: *const u8, offset: u32) -> T {
    let mut v = T::default();
    // SAFETY: the helper checks the source address and zeroes `v` on failure.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast(),
            size_of::<T>() as u32,
            base.wrapping_add(offset as usize).cast(),
        );
    }
    v
}

/// Reads a kernel pointer at `offset` bytes into a struct (null when unreadable).
#[inline(always)]
pub(crate) fn kptr(base: *const u8, offset: u32) -> *const u8 {
    kread::<u64>(base, offset) as *const u8
}

pub(crate) fn current_task() -> *const u8 {
    // SAFETY: the helper returns the running task.
    unsafe { bpf_get_current_task() as *const u8 }
}

/// Inode number of namespace kind `i` of an `nsproxy`.
#[inline(always)]
pub(crate) fn nsproxy_inum(nsproxy: *const u8, i: usize) -> u32 {
    if i >= NS_KINDS {
        return 0;
    }
    let ns = kptr(nsproxy, layout!(nsproxy[i]));
    kread::<u32>(ns, layout!(ns_inum[i]))
}

/// Inode of a `struct user_namespace`.
#[inline(always)]
pub(crate) fn user_ns_inum(user_ns: *const u8) -> u32 {
    kread::<u32>(user_ns, layout!(ns_inum[NS_USER]))
}

/// A task's `struct user_namespace` (`real_cred->user_ns`).
#[inline(always)]
pub(crate) fn task_user_ns_ptr(task: *const u8) -> *const u8 {
    let cred = kptr(task, layout!(task_cred));
    kptr(cred, layout!(cred_user_ns))
}

/// Inode of a task's user namespace.
#[inline(always)]
pub(crate) fn task_user_ns(task: *const u8) -> u32 {
    user_ns_inum(task_user_ns_ptr(task))
}

/// The uid that owns a user namespace (`owner`, a kuid: the host's number).
#[inline(always)]
pub(crate) fn user_ns_owner(user_ns: *const u8) -> u32 {
    kread::<u32>(user_ns, layout!(userns_owner))
}

/// Every namespace inode of a task, in `NsKind` order: its `nsproxy`'s and its user
/// namespace.
#[inline(always)]
pub(crate) fn task_ns_inums(task: *const u8, out: &mut [u32; NS_KINDS]) {
    nsproxy_inums(task_nsproxy(task), out);
    out[NS_USER] = task_user_ns(task);
}

/// All namespace inodes of an `nsproxy`, in `NsKind` order (the user namespace, not in
/// `nsproxy`, reads as 0).
#[inline(always)]
pub(crate) fn nsproxy_inums(nsproxy: *const u8, out: &mut [u32; NS_KINDS]) {
    let mut i = 0;
    while i < NS_KINDS {
        out[i] = nsproxy_inum(nsproxy, i);
        i += 1;
    }
}

pub(crate) fn task_nsproxy(task: *const u8) -> *const u8 {
    kptr(task, layout!(task_nsproxy))
}

/// Inode of the PID namespace the task itself lives in (`task_active_pid_ns`).
fn active_pid_ns(task: *const u8) -> u32 {
    let pid = kptr(task, layout!(task_thread_pid));
    // Levels are at most 32 deep; the mask keeps a garbage read from going far.
    let level = kread::<u32>(pid, layout!(pid_level)) & 63;
    let offset = layout!(pid_numbers).wrapping_add(level.wrapping_mul(layout!(upid_size)));
    let ns = kptr(pid, offset.wrapping_add(layout!(upid_ns)));
    kread::<u32>(ns, layout!(ns_inum[NS_PID]))
}

#[inline(always)]
pub(crate) fn fill_header(h: &mut Header, kind: EventKind, hook: Hook) {
    h.kind = kind as u32;
    h.hook = hook as u32;
    fill_task(h);
}

/// Everything of a header but its kind and hook: the running task's. Programs shared by a
/// family of syscalls fill it before they know which syscall they were called for. Inlined:
/// a program that tail-calls may not also call functions of its own before 5.10 (nor, on
/// 5.10, with more than 256 bytes of stack), and `sched_process_exit` tail-calls.
#[inline(always)]
pub(crate) fn fill_task(h: &mut Header) {
    let pid_tgid = bpf_get_current_pid_tgid();
    h.pid = pid_tgid as u32;
    h.tgid = (pid_tgid >> 32) as u32;
    h.uid = bpf_get_current_uid_gid() as u32;
    // SAFETY: helpers without preconditions; the comm helper writes at most the 16 bytes it is
    // given, straight into the record (zeroed on failure), which spares a copy through the
    // stack that the compiler turns into calls of `memset`.
    unsafe {
        h.ts_ns = bpf_ktime_get_boot_ns();
        h.cgroup_id = bpf_get_current_cgroup_id();
        bpf_get_current_comm(h.comm.as_mut_ptr().cast(), h.comm.len() as u32);
    }
    let task = current_task();
    let parent = kptr(task, layout!(task_real_parent));
    h.ppid = kread::<u32>(parent, layout!(task_tgid));
    let nsproxy = task_nsproxy(task);
    h.mnt_ns = nsproxy_inum(nsproxy, NS_MNT);
    h.net_ns = nsproxy_inum(nsproxy, NS_NET);
    h.pid_ns = active_pid_ns(task);
    h.user_ns = task_user_ns(task);
}

/// Reads a NUL-terminated user string into `buf`: (length without NUL, whether it filled
/// the buffer and so may have been cut). An unreadable or NULL pointer reads as empty.
#[inline(always)]
pub(crate) fn read_user_str(p: *const u8, buf: &mut [u8]) -> (u16, bool) {
    if p.is_null() {
        return (0, false);
    }
    let cap = buf.len();
    // SAFETY: user read through the helper into a buffer of known size.
    match unsafe { bpf_probe_read_user_str_bytes(p, buf) } {
        Ok(s) => (s.len() as u16, s.len() + 1 >= cap),
        Err(_) => (0, false),
    }
}

/// The `struct file` open as `fd` in the current task (null when there is none).
#[inline(always)]
pub(crate) fn task_file(fd: i32) -> *const u8 {
    let files = kptr(current_task(), layout!(task_files));
    let fdt = kptr(files, layout!(files_fdt));
    let array = kptr(fdt, layout!(fdtable_fd));
    // An fd beyond the table reads as garbage the helper refuses; the mask bounds it.
    kptr(array, ((fd as u32) & 0xffff).wrapping_mul(8))
}

/// The inode number of the file open as `fd` (an nsfs file's is its namespace's inode).
#[inline(always)]
pub(crate) fn fd_inode(fd: i32) -> u32 {
    let inode = kptr(task_file(fd), layout!(file_inode));
    kread::<u64>(inode, layout!(inode_ino)) as u32
}

/// Reads a NUL-terminated kernel string into `buf` (empty when unreadable).
#[inline(always)]
pub(crate) fn read_kernel_str(p: *const u8, buf: &mut [u8]) {
    if p.is_null() {
        return;
    }
    // SAFETY: kernel read through the helper into a buffer of known size.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(p, buf) };
}

pub(crate) fn count_lost(kind: EventKind) {
    if let Some(n) = LOST.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot; no other writer on this CPU while we run.
        unsafe { *n += 1 };
    }
}

/// The flags for a ring buffer submit. Waking the reader for every record cost it a
/// context switch per event (and a storm of fork+exec paid for it too); the reader drains
/// on a short timer anyway, so it is woken early only once an eighth of the ring is used.
#[inline(always)]
pub(crate) fn wakeup(ring: &RingBuf) -> u64 {
    let size = ring.query(BPF_RB_RING_SIZE as u64);
    if ring.query(BPF_RB_AVAIL_DATA as u64) >= size / 8 {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Copies a parked record into the ring, counting a failure as lost.
#[inline(always)]
pub(crate) fn send<T>(ring: &RingBuf, ev: &T, kind: EventKind) {
    if ring.output::<T>(ev, wakeup(ring)).is_err() {
        count_lost(kind);
    }
}
