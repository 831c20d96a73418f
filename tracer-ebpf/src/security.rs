//! Security setup: capabilities set (`capset`), the `prctl` options that restrict a process
//! (no_new_privs, bounding set drops, keepcaps, ambient capabilities, seccomp) and
//! `seccomp(2)`. Each is an entry/exit pair: the arguments (and what they point at) at entry,
//! the result at exit.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{prctl_ops, EventKind, Hook, SecurityEvent};

use crate::{
    maps::{EVENTS, SECURITY_PENDING},
    record::{count_lost, fill_header, send},
    syscall::{arg_u64, ret},
};

/// `SECCOMP_SET_MODE_FILTER` (seccomp(2)) and `SECCOMP_MODE_FILTER` (prctl): a filter given.
const SECCOMP_FILTER: u64 = 1;
const SECCOMP_MODE_FILTER: u64 = 2;

fn tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// `struct sock_fprog.len`: the instructions of a filter (0 when unreadable).
fn filter_len(prog: u64) -> u32 {
    // SAFETY: user read through the helper.
    u32::from(unsafe { bpf_probe_read_user(prog as *const u16) }.unwrap_or(0))
}

// By reference: by value the record would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
fn park(kind: EventKind, hook: Hook, fill: impl FnOnce(&mut SecurityEvent)) {
    // SAFETY: `SecurityEvent` is plain data; all-zero is a valid value.
    let mut ev: SecurityEvent = unsafe { core::mem::zeroed() };
    fill_header(&mut ev.header, kind, hook);
    fill(&mut ev);
    if SECURITY_PENDING.insert(tid(), &ev, 0).is_err() {
        count_lost(kind);
    }
}

fn complete(ctx: &TracePointContext) {
    let tid = tid();
    let Some(ev) = SECURITY_PENDING.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: map value pointer, ours until removed.
    unsafe {
        (*ev).ret = ret(ctx);
        if let Some(kind) = EventKind::from_u32((*ev).header.kind) {
            send(&EVENTS, &*ev, kind);
        }
    }
    let _ = SECURITY_PENDING.remove(tid);
}

/// `capset(cap_user_header_t hdr, const cap_user_data_t data)`: versions 2 and 3 pass two
/// `{ effective, permitted, inheritable }` of 32 bits, low half first.
#[tracepoint(category = "syscalls", name = "sys_enter_capset")]
pub(crate) fn sys_enter_capset(ctx: TracePointContext) -> u32 {
    let (hdr, data) = (arg_u64(&ctx, 0), arg_u64(&ctx, 1));
    // SAFETY: user reads through the helper.
    let header = unsafe { bpf_probe_read_user(hdr as *const [u32; 2]) }.unwrap_or([0; 2]);
    // SAFETY: as above.
    let sets = unsafe { bpf_probe_read_user(data as *const [u32; 6]) }.unwrap_or([0; 6]);
    let wide = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    park(EventKind::Capset, Hook::Capset, |ev| {
        ev.op = header[0];
        ev.arg = u64::from(header[1]);
        ev.effective = wide(sets[0], sets[3]);
        ev.permitted = wide(sets[1], sets[4]);
        ev.inheritable = wide(sets[2], sets[5]);
    });
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_capset")]
pub(crate) fn sys_exit_capset(ctx: TracePointContext) -> u32 {
    complete(&ctx);
    0
}

/// `prctl(option, arg2, ...)`, only for the options that set a process's security: the
/// others (PR_SET_NAME, ...) are frequent and say nothing of it.
#[tracepoint(category = "syscalls", name = "sys_enter_prctl")]
pub(crate) fn sys_enter_prctl(ctx: TracePointContext) -> u32 {
    let option = arg_u64(&ctx, 0) as u32;
    if !matches!(
        option,
        prctl_ops::PR_SET_KEEPCAPS
            | prctl_ops::PR_SET_SECCOMP
            | prctl_ops::PR_CAPBSET_DROP
            | prctl_ops::PR_SET_NO_NEW_PRIVS
            | prctl_ops::PR_CAP_AMBIENT
    ) {
        return 0;
    }
    let arg2 = arg_u64(&ctx, 1);
    let len = if option == prctl_ops::PR_SET_SECCOMP && arg2 == SECCOMP_MODE_FILTER {
        filter_len(arg_u64(&ctx, 2))
    } else {
        0
    };
    park(EventKind::Prctl, Hook::Prctl, |ev| {
        ev.op = option;
        // PR_CAP_AMBIENT: the operation in arg2, the capability in arg3.
        ev.arg = if option == prctl_ops::PR_CAP_AMBIENT {
            arg2 | (arg_u64(&ctx, 2) << 32)
        } else {
            arg2
        };
        ev.filter_len = len;
    });
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_prctl")]
pub(crate) fn sys_exit_prctl(ctx: TracePointContext) -> u32 {
    complete(&ctx);
    0
}

/// `seccomp(operation, flags, args)`.
#[tracepoint(category = "syscalls", name = "sys_enter_seccomp")]
pub(crate) fn sys_enter_seccomp(ctx: TracePointContext) -> u32 {
    let (op, flags, args) = (arg_u64(&ctx, 0), arg_u64(&ctx, 1), arg_u64(&ctx, 2));
    let len = if op == SECCOMP_FILTER {
        filter_len(args)
    } else {
        0
    };
    park(EventKind::Seccomp, Hook::Seccomp, |ev| {
        ev.op = op as u32;
        ev.arg = flags;
        ev.filter_len = len;
    });
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_seccomp")]
pub(crate) fn sys_exit_seccomp(ctx: TracePointContext) -> u32 {
    complete(&ctx);
    0
}
