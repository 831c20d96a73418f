//! Filling and sending records.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_current_uid_gid, bpf_probe_read_kernel, bpf_probe_read_user_str_bytes,
        generated::{bpf_get_current_cgroup_id, bpf_ktime_get_boot_ns},
    },
    maps::RingBuf,
};
use tracer_common::{EventKind, Header, KernelLayout, OFFSET_UNKNOWN};

use crate::maps::LOST;

/// Set by the loader from the running kernel's BTF and tracefs formats.
#[unsafe(no_mangle)]
static LAYOUT: KernelLayout = KernelLayout::UNKNOWN;

#[inline(always)]
pub fn layout() -> KernelLayout {
    // SAFETY: a read-only global; volatile so the loader-provided value is not const-folded.
    unsafe { core::ptr::read_volatile(&raw const LAYOUT) }
}

/// Reads a `T` at `offset` bytes into a kernel struct, if the offset is known.
#[inline(always)]
pub fn task_field<T>(base: *const u8, offset: u32) -> Option<T> {
    if base.is_null() || offset == OFFSET_UNKNOWN {
        return None;
    }
    // SAFETY: a kernel read through the helper, which fails safely on a bad address.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize).cast::<T>()).ok() }
}

pub fn fill_header(h: &mut Header, kind: EventKind) {
    let pid_tgid = bpf_get_current_pid_tgid();
    h.kind = kind as u32;
    h.pid = pid_tgid as u32;
    h.tgid = (pid_tgid >> 32) as u32;
    h.uid = bpf_get_current_uid_gid() as u32;
    h._pad = 0;
    // SAFETY: helpers without preconditions.
    unsafe {
        h.ts_ns = bpf_ktime_get_boot_ns();
        h.cgroup_id = bpf_get_current_cgroup_id();
    }
    h.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let l = layout();
    // SAFETY: the helper returns the running task.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let parent = task_field::<u64>(task, l.task_real_parent).unwrap_or(0) as *const u8;
    h.ppid = task_field::<u32>(parent, l.task_tgid).unwrap_or(0);
}

/// Reads a NUL-terminated user string into `buf`: (length without NUL, whether it filled
/// the buffer and so may have been cut). An unreadable or NULL pointer reads as empty.
#[inline(always)]
pub fn read_user_str(p: *const u8, buf: &mut [u8]) -> (u16, bool) {
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

pub fn count_lost(kind: EventKind) {
    if let Some(n) = LOST.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot; no other writer on this CPU while we run.
        unsafe { *n += 1 };
    }
}

/// Copies a parked record into the ring, counting a failure as lost.
#[inline(always)]
pub fn send<T>(ring: &RingBuf, ev: &T, kind: EventKind) {
    if ring.output::<T>(ev, 0).is_err() {
        count_lost(kind);
    }
}
