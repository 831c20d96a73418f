//! Kernel programs of the tracer. Each syscall of interest is split in two: the entry program
//! fills a record from the arguments and parks it per task; the exit program adds the result
//! and sends it, so a failed exec or mount is reported as failed.
#![no_std]
#![no_main]

mod maps;
mod namespaces;
mod record;
mod veth;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, generated::bpf_probe_read_user_str},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::warn;
use tracer_common::{
    exec_flags, mount_truncated, EventKind, ExitEvent, ForkEvent, Hook, MountEvent, RenameEvent,
    ARGV_SOFT_LIMIT, ARG_MAX_READ, COMM_LEN, MAX_ARGS, OFFSET_UNKNOWN,
};

use crate::{
    maps::{EVENTS, EXEC_PENDING, EXEC_SCRATCH, MOUNT_PENDING, MOUNT_SCRATCH},
    record::{count_lost, current_task, fill_header, kread, layout, read_user_str, send, wakeup},
};

/// Offsets of syscall tracepoint arguments: the record has an 8-byte common header, the
/// syscall number padded to 8 bytes, then each argument in an 8-byte slot. This layout is
/// the same on every kernel (`include/trace/syscall.h`).
pub(crate) const fn arg(n: usize) -> usize {
    16 + 8 * n
}
/// Offset of `ret` in a `sys_exit_*` record.
pub(crate) const RET: usize = 16;

// ---- exec ----------------------------------------------------------------------------------

#[tracepoint(category = "syscalls", name = "sys_enter_execve")]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    let _ = exec_enter(&ctx, false);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_execveat")]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    let _ = exec_enter(&ctx, true);
    0
}

// Records are passed by reference on purpose: by value they would land on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
fn exec_enter(ctx: &TracePointContext, at: bool) -> Result<(), i64> {
    let ev = EXEC_SCRATCH.get_ptr_mut(0).ok_or(0i64)?;
    // SAFETY: per-CPU map value, exclusively ours while this program runs.
    let ev = unsafe { &mut *ev };
    let hook = if at { Hook::Execveat } else { Hook::Execve };
    fill_header(&mut ev.header, EventKind::Exec, hook);
    ev.ret = 0;
    ev.flags = 0;
    ev.argc = 0;
    ev.argv_len = 0;
    // SAFETY: offsets are those of the syscall tracepoint record (see `arg`).
    let (filename, argv) = unsafe {
        if at {
            ev.dirfd = ctx.read_at::<u64>(arg(0)).unwrap_or(0) as i32;
            ev.at_flags = ctx.read_at::<u64>(arg(4)).unwrap_or(0) as i32;
            ev.flags |= exec_flags::EXECVEAT;
            (
                ctx.read_at::<u64>(arg(1)).unwrap_or(0) as *const u8,
                ctx.read_at::<u64>(arg(2)).unwrap_or(0) as *const *const u8,
            )
        } else {
            ev.dirfd = 0;
            ev.at_flags = 0;
            (
                ctx.read_at::<u64>(arg(0)).unwrap_or(0) as *const u8,
                ctx.read_at::<u64>(arg(1)).unwrap_or(0) as *const *const u8,
            )
        }
    };
    let (len, full) = read_user_str(filename, &mut ev.filename);
    ev.filename_len = len;
    if full {
        ev.flags |= exec_flags::FILENAME_TRUNCATED;
    }
    read_argv(ev, argv);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // Keyed by tgid, not tid: a successful exec from a non-leader thread returns in the
    // leader's pid (de_thread), and only one exec per process can succeed at a time.
    if EXEC_PENDING.insert(tgid, &*ev, 0).is_err() {
        count_lost(EventKind::Exec);
        warn!(ctx, "exec of tgid {} lost: pending map insert failed", tgid);
    }
    Ok(())
}

/// Copy up to `MAX_ARGS` argv entries, NUL-separated, into `ev.argv`.
fn read_argv(ev: &mut tracer_common::ExecEvent, argv: *const *const u8) {
    let mut off: usize = 0;
    let mut argc: u16 = 0;
    let mut i = 0;
    while i < MAX_ARGS {
        // SAFETY: reading a user pointer through the helper; failure is handled.
        let p = match unsafe { bpf_probe_read_user(argv.wrapping_add(i)) } {
            Ok(p) => p,
            Err(_) => {
                if i == 0 {
                    ev.flags |= exec_flags::ARGV_UNREADABLE;
                }
                break;
            }
        };
        if p.is_null() {
            break;
        }
        if off >= ARGV_SOFT_LIMIT {
            ev.flags |= exec_flags::ARGV_TRUNCATED;
            break;
        }
        // The mask is a no-op after the check above but keeps the bound visible to the
        // verifier whatever the compiler does with the comparison.
        let start = off & (ARGV_SOFT_LIMIT - 1);
        // SAFETY: start < ARGV_SOFT_LIMIT and the buffer holds ARGV_SOFT_LIMIT + ARG_MAX_READ.
        let n = unsafe {
            bpf_probe_read_user_str(
                ev.argv.as_mut_ptr().add(start).cast(),
                ARG_MAX_READ as u32,
                p.cast(),
            )
        };
        if n <= 0 {
            break;
        }
        let n = n as usize;
        if n >= ARG_MAX_READ {
            ev.flags |= exec_flags::ARGV_TRUNCATED;
        }
        off = start + n;
        argc += 1;
        i += 1;
    }
    if i == MAX_ARGS {
        // SAFETY: as above.
        if let Ok(p) = unsafe { bpf_probe_read_user(argv.wrapping_add(MAX_ARGS)) } {
            if !p.is_null() {
                ev.flags |= exec_flags::ARGV_TRUNCATED;
            }
        }
    }
    ev.argc = argc;
    ev.argv_len = off as u16;
}

/// Attached to `sys_exit_execve` and `sys_exit_execveat`.
#[tracepoint(category = "syscalls", name = "sys_exit_exec")]
pub fn sys_exit_exec(ctx: TracePointContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(ev) = EXEC_PENDING.get_ptr_mut(tgid) {
        // SAFETY: map value pointer; `ret` is at a fixed offset of the exit record.
        unsafe {
            (*ev).ret = ctx.read_at::<i64>(RET).unwrap_or(0);
            send(&EVENTS, &*ev, EventKind::Exec);
        }
        let _ = EXEC_PENDING.remove(tgid);
    }
    0
}

// ---- mount family --------------------------------------------------------------------------

/// A zeroed-out mount record in per-CPU scratch, with its header filled.
fn mount_begin(kind: EventKind, hook: Hook) -> Option<&'static mut MountEvent> {
    let ev = MOUNT_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU map value, exclusively ours while this program runs.
    let ev = unsafe { &mut *ev };
    fill_header(&mut ev.header, kind, hook);
    ev.ret = 0;
    ev.flags = 0;
    ev.attr_set = 0;
    ev.attr_clr = 0;
    ev.propagation = 0;
    ev.fd = 0;
    ev.fd2 = 0;
    ev.cmd = 0;
    ev.fstype_len = 0;
    ev.src_len = 0;
    ev.dst_len = 0;
    ev.truncated = 0;
    Some(ev)
}

/// Park the record until the syscall returns (keyed by thread: threads mount concurrently).
fn mount_park(ctx: &TracePointContext, ev: &MountEvent) {
    let tid = bpf_get_current_pid_tgid() as u32;
    if MOUNT_PENDING.insert(tid, ev, 0).is_err() {
        if let Some(kind) = EventKind::from_u32(ev.header.kind) {
            count_lost(kind);
        }
        warn!(
            ctx,
            "mount-family event of tid {} lost: pending map insert failed", tid
        );
    }
}

fn read_fstype(ev: &mut MountEvent, p: u64) {
    let (len, full) = read_user_str(p as *const u8, &mut ev.fstype);
    ev.fstype_len = len;
    if full {
        ev.truncated |= mount_truncated::FSTYPE;
    }
}

fn read_src(ev: &mut MountEvent, p: u64) {
    let (len, full) = read_user_str(p as *const u8, &mut ev.src);
    ev.src_len = len;
    if full {
        ev.truncated |= mount_truncated::SRC;
    }
}

fn read_dst(ev: &mut MountEvent, p: u64) {
    let (len, full) = read_user_str(p as *const u8, &mut ev.dst);
    ev.dst_len = len;
    if full {
        ev.truncated |= mount_truncated::DST;
    }
}

/// Reads syscall argument `n` (0 when unreadable, which cannot happen for a valid record).
fn a(ctx: &TracePointContext, n: usize) -> u64 {
    // SAFETY: offsets within the syscall tracepoint record.
    unsafe { ctx.read_at::<u64>(arg(n)).unwrap_or(0) }
}

#[tracepoint(category = "syscalls", name = "sys_enter_mount")]
pub fn sys_enter_mount(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::Mount, Hook::Mount) {
        read_src(ev, a(&ctx, 0));
        read_dst(ev, a(&ctx, 1));
        read_fstype(ev, a(&ctx, 2));
        ev.flags = a(&ctx, 3);
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_umount")]
pub fn sys_enter_umount(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::Umount, Hook::Umount) {
        read_dst(ev, a(&ctx, 0));
        ev.flags = a(&ctx, 1);
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_pivot_root")]
pub fn sys_enter_pivot_root(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::PivotRoot, Hook::PivotRoot) {
        read_src(ev, a(&ctx, 0));
        read_dst(ev, a(&ctx, 1));
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_fsopen")]
pub fn sys_enter_fsopen(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::Fsopen, Hook::Fsopen) {
        read_fstype(ev, a(&ctx, 0));
        ev.flags = a(&ctx, 1);
        mount_park(&ctx, ev);
    }
    0
}

/// `fsconfig` commands whose value is a string or path (`include/uapi/linux/mount.h`).
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_PATH: u32 = 3;
const FSCONFIG_SET_PATH_EMPTY: u32 = 4;

#[tracepoint(category = "syscalls", name = "sys_enter_fsconfig")]
pub fn sys_enter_fsconfig(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::Fsconfig, Hook::Fsconfig) {
        ev.fd = a(&ctx, 0) as i32;
        ev.cmd = a(&ctx, 1) as u32;
        read_fstype(ev, a(&ctx, 2));
        if matches!(
            ev.cmd,
            FSCONFIG_SET_STRING | FSCONFIG_SET_PATH | FSCONFIG_SET_PATH_EMPTY
        ) {
            read_src(ev, a(&ctx, 3));
        }
        ev.fd2 = a(&ctx, 4) as i32;
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_fsmount")]
pub fn sys_enter_fsmount(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::Fsmount, Hook::Fsmount) {
        ev.fd = a(&ctx, 0) as i32;
        ev.flags = a(&ctx, 1);
        ev.cmd = a(&ctx, 2) as u32;
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_move_mount")]
pub fn sys_enter_move_mount(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::MoveMount, Hook::MoveMount) {
        ev.fd = a(&ctx, 0) as i32;
        read_src(ev, a(&ctx, 1));
        ev.fd2 = a(&ctx, 2) as i32;
        read_dst(ev, a(&ctx, 3));
        ev.flags = a(&ctx, 4);
        mount_park(&ctx, ev);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_open_tree")]
pub fn sys_enter_open_tree(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::OpenTree, Hook::OpenTree) {
        ev.fd = a(&ctx, 0) as i32;
        read_src(ev, a(&ctx, 1));
        ev.flags = a(&ctx, 2);
        mount_park(&ctx, ev);
    }
    0
}

/// `struct mount_attr` as passed to `mount_setattr` (the first three fields are enough).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
}

#[tracepoint(category = "syscalls", name = "sys_enter_mount_setattr")]
pub fn sys_enter_mount_setattr(ctx: TracePointContext) -> u32 {
    if let Some(ev) = mount_begin(EventKind::MountSetattr, Hook::MountSetattr) {
        ev.fd = a(&ctx, 0) as i32;
        read_src(ev, a(&ctx, 1));
        ev.flags = a(&ctx, 2);
        // SAFETY: user pointer read through the helper.
        if let Ok(attr) = unsafe { bpf_probe_read_user(a(&ctx, 3) as *const MountAttr) } {
            ev.attr_set = attr.attr_set;
            ev.attr_clr = attr.attr_clr;
            ev.propagation = attr.propagation;
        }
        mount_park(&ctx, ev);
    }
    0
}

/// Attached to the `sys_exit_*` of every mount-family syscall.
#[tracepoint(category = "syscalls", name = "sys_exit_mount_family")]
pub fn sys_exit_mount_family(ctx: TracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(ev) = MOUNT_PENDING.get_ptr_mut(tid) {
        // SAFETY: map value pointer; `ret` is at a fixed offset of the exit record.
        unsafe {
            (*ev).ret = ctx.read_at::<i64>(RET).unwrap_or(0);
            if let Some(kind) = EventKind::from_u32((*ev).header.kind) {
                send(&EVENTS, &*ev, kind);
            }
        }
        let _ = MOUNT_PENDING.remove(tid);
    }
    0
}

// ---- processes -----------------------------------------------------------------------------

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`: a raw
/// tracepoint because its record layout changed across kernels (`__data_loc` comms in 6.x)
/// and because it gives the child's task, from which the child's tgid tells a thread from a
/// process.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> u32 {
    let child: *const u8 = ctx.arg(1);
    let child_pid = kread::<u32>(child, layout!(task_pid));
    let child_tgid = kread::<u32>(child, layout!(task_tgid));
    if child_pid != child_tgid {
        return 0; // a new thread
    }
    if let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) {
        let ev = entry.as_mut_ptr();
        // SAFETY: reserved ring memory of the right size.
        unsafe {
            fill_header(&mut (*ev).header, EventKind::Fork, Hook::SchedProcessFork);
            (*ev).child_pid = child_pid;
            (*ev).child_tgid = child_tgid;
        }
        entry.submit(wakeup(&EVENTS));
    } else {
        count_lost(EventKind::Fork);
    }
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if pid_tgid as u32 != (pid_tgid >> 32) as u32 {
        return 0; // a thread other than the leader
    }
    let exit_code = kread::<i32>(current_task(), layout!(task_exit_code));
    if let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) {
        let ev = entry.as_mut_ptr();
        // SAFETY: reserved ring memory of the right size.
        unsafe {
            fill_header(&mut (*ev).header, EventKind::Exit, Hook::SchedProcessExit);
            (*ev).exit_code = exit_code;
            (*ev)._pad = 0;
        }
        entry.submit(wakeup(&EVENTS));
    } else {
        count_lost(EventKind::Exit);
    }
    0
}

#[tracepoint(category = "task", name = "task_rename")]
pub fn task_rename(ctx: TracePointContext) -> u32 {
    // exec renames the task to the new binary's name: the exec event already says so.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if EXEC_PENDING.get_ptr(tgid).is_some() {
        return 0;
    }
    let (pid_off, old_off, new_off) = (
        layout!(rename_pid),
        layout!(rename_oldcomm),
        layout!(rename_newcomm),
    );
    if old_off == OFFSET_UNKNOWN || new_off == OFFSET_UNKNOWN {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<RenameEvent>(0) else {
        count_lost(EventKind::Rename);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring memory of the right size; record offsets come from the
    // tracepoint's format file.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::Rename, Hook::TaskRename);
        (*ev).pid = if pid_off == OFFSET_UNKNOWN {
            (*ev).header.pid
        } else {
            ctx.read_at::<u32>(pid_off as usize).unwrap_or(0)
        };
        (*ev)._pad = 0;
        (*ev).oldcomm = ctx
            .read_at::<[u8; COMM_LEN]>(old_off as usize)
            .unwrap_or([0; COMM_LEN]);
        (*ev).newcomm = ctx
            .read_at::<[u8; COMM_LEN]>(new_off as usize)
            .unwrap_or([0; COMM_LEN]);
    }
    entry.submit(wakeup(&EVENTS));
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
