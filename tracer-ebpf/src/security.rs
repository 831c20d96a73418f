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
    record::{count_lost, fill_task, layout, send},
    syscall::{arg_u64, nr, ret},
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

/// The `prctl` options that set a process's security: the others (PR_SET_NAME, ...) are
/// frequent and say nothing of it.
#[inline(always)]
fn prctl_wanted(option: u32) -> bool {
    matches!(
        option,
        prctl_ops::PR_SET_KEEPCAPS
            | prctl_ops::PR_SET_SECCOMP
            | prctl_ops::PR_CAPBSET_DROP
            | prctl_ops::PR_SET_NO_NEW_PRIVS
            | prctl_ops::PR_CAP_AMBIENT
    )
}

/// Attached to `sys_enter_capset`, `sys_enter_prctl` and `sys_enter_seccomp`: the task's part
/// of the record is filled once, then the record's syscall number says which.
// By reference: by value the record would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[tracepoint(category = "syscalls", name = "sys_enter_security")]
pub(crate) fn sys_enter_security(ctx: TracePointContext) -> u32 {
    if nr(&ctx) == layout!(sys.prctl) && !prctl_wanted(arg_u64(&ctx, 0) as u32) {
        return 0;
    }
    // SAFETY: `SecurityEvent` is plain data; all-zero is a valid value.
    let mut ev: SecurityEvent = unsafe { core::mem::zeroed() };
    fill_task(&mut ev.header);
    // Read again rather than reused: the verifier would otherwise tell the prctl path from
    // the others at the header and go through it twice.
    let nr = nr(&ctx);
    let (kind, hook) = if nr == layout!(sys.capset) {
        capset(&ctx, &mut ev);
        (EventKind::Capset, Hook::Capset)
    } else if nr == layout!(sys.prctl) {
        prctl(&ctx, &mut ev);
        (EventKind::Prctl, Hook::Prctl)
    } else if nr == layout!(sys.seccomp) {
        seccomp(&ctx, &mut ev);
        (EventKind::Seccomp, Hook::Seccomp)
    } else {
        return 0;
    };
    ev.header.kind = kind as u32;
    ev.header.hook = hook as u32;
    if SECURITY_PENDING.insert(tid(), &ev, 0).is_err() {
        count_lost(kind);
    }
    0
}

/// Attached to the `sys_exit_*` of the three.
#[tracepoint(category = "syscalls", name = "sys_exit_security")]
pub(crate) fn sys_exit_security(ctx: TracePointContext) -> u32 {
    let tid = tid();
    let Some(ev) = SECURITY_PENDING.get_ptr_mut(tid) else {
        return 0;
    };
    // SAFETY: map value pointer, ours until removed.
    unsafe {
        (*ev).ret = ret(&ctx);
        if let Some(kind) = EventKind::from_u32((*ev).header.kind) {
            send(&EVENTS, &*ev, kind);
        }
    }
    let _ = SECURITY_PENDING.remove(tid);
    0
}

/// `capset(cap_user_header_t hdr, const cap_user_data_t data)`: versions 2 and 3 pass two
/// `{ effective, permitted, inheritable }` of 32 bits, low half first.
#[inline(always)]
fn capset(ctx: &TracePointContext, ev: &mut SecurityEvent) {
    let (hdr, data) = (arg_u64(ctx, 0), arg_u64(ctx, 1));
    // SAFETY: user reads through the helper.
    let header = unsafe { bpf_probe_read_user(hdr as *const [u32; 2]) }.unwrap_or([0; 2]);
    // SAFETY: as above.
    let sets = unsafe { bpf_probe_read_user(data as *const [u32; 6]) }.unwrap_or([0; 6]);
    let wide = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    ev.op = header[0];
    ev.arg = u64::from(header[1]);
    ev.effective = wide(sets[0], sets[3]);
    ev.permitted = wide(sets[1], sets[4]);
    ev.inheritable = wide(sets[2], sets[5]);
}

/// `prctl(option, arg2, ...)`, of the options [`prctl_wanted`] keeps.
#[inline(always)]
fn prctl(ctx: &TracePointContext, ev: &mut SecurityEvent) {
    let option = arg_u64(ctx, 0) as u32;
    let arg2 = arg_u64(ctx, 1);
    ev.op = option;
    // PR_CAP_AMBIENT: the operation in arg2, the capability in arg3.
    ev.arg = if option == prctl_ops::PR_CAP_AMBIENT {
        arg2 | (arg_u64(ctx, 2) << 32)
    } else {
        arg2
    };
    ev.filter_len = if option == prctl_ops::PR_SET_SECCOMP && arg2 == SECCOMP_MODE_FILTER {
        filter_len(arg_u64(ctx, 2))
    } else {
        0
    };
}

/// `seccomp(operation, flags, args)`.
#[inline(always)]
fn seccomp(ctx: &TracePointContext, ev: &mut SecurityEvent) {
    let (op, flags, args) = (arg_u64(ctx, 0), arg_u64(ctx, 1), arg_u64(ctx, 2));
    ev.op = op as u32;
    ev.arg = flags;
    ev.filter_len = if op == SECCOMP_FILTER {
        filter_len(args)
    } else {
        0
    };
}
