//! `execve` and `execveat`: the filename and argv at entry, parked per process until the
//! syscall returns, then sent with the result (so a failed exec is reported as failed).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, generated::bpf_probe_read_user_str},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    exec_flags, EventKind, ExecEvent, Hook, ARGV_SOFT_LIMIT, ARG_MAX_READ, MAX_ARGS,
};

use crate::{
    maps::{EVENTS, EXEC_PENDING, EXEC_SCRATCH},
    record::{count_lost, fill_task, layout, read_user_str, send},
    syscall::{arg_u64, nr, ret},
};

/// Attached to `sys_enter_execve` and `sys_enter_execveat`: the task's part of the record
/// is filled once, then the record's syscall number says where the arguments are.
#[tracepoint(category = "syscalls", name = "sys_enter_exec")]
pub(crate) fn sys_enter_exec(ctx: TracePointContext) -> u32 {
    let _ = exec_enter(&ctx);
    0
}

// Records are passed by reference on purpose: by value they would land on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
fn exec_enter(ctx: &TracePointContext) -> Result<(), i64> {
    let ev = EXEC_SCRATCH.get_ptr_mut(0).ok_or(0i64)?;
    // SAFETY: per-CPU map value, exclusively ours while this program runs.
    let ev = unsafe { &mut *ev };
    fill_task(&mut ev.header);
    ev.header.kind = EventKind::Exec as u32;
    ev.ret = 0;
    ev.flags = 0;
    ev.argc = 0;
    ev.argv_len = 0;
    let (filename, argv) = if nr(ctx) == layout!(sys.execveat) {
        ev.header.hook = Hook::Execveat as u32;
        ev.dirfd = arg_u64(ctx, 0) as i32;
        ev.at_flags = arg_u64(ctx, 4) as i32;
        ev.flags |= exec_flags::EXECVEAT;
        (
            arg_u64(ctx, 1) as *const u8,
            arg_u64(ctx, 2) as *const *const u8,
        )
    } else {
        ev.header.hook = Hook::Execve as u32;
        ev.dirfd = 0;
        ev.at_flags = 0;
        (
            arg_u64(ctx, 0) as *const u8,
            arg_u64(ctx, 1) as *const *const u8,
        )
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
    }
    Ok(())
}

/// Copy up to `MAX_ARGS` argv entries, NUL-separated, into `ev.argv`.
fn read_argv(ev: &mut ExecEvent, argv: *const *const u8) {
    let mut off: usize = 0;
    let mut argc: u16 = 0;
    let mut i = 0;
    while i < MAX_ARGS {
        // SAFETY: reading a user pointer through the helper; failure is handled.
        let Ok(p) = (unsafe { bpf_probe_read_user(argv.wrapping_add(i)) }) else {
            if i == 0 {
                ev.flags |= exec_flags::ARGV_UNREADABLE;
            }
            break;
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
pub(crate) fn sys_exit_exec(ctx: TracePointContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(ev) = EXEC_PENDING.get_ptr_mut(tgid) {
        // SAFETY: map value pointer, ours until removed below.
        unsafe {
            (*ev).ret = ret(&ctx);
            send(&EVENTS, &*ev, EventKind::Exec);
        }
        let _ = EXEC_PENDING.remove(tgid);
    }
    0
}
