//! Namespace creation and joining. Where the kernel has kprobes, the designed hook reports
//! creation: a kretprobe on `create_new_namespaces`, which both `unshare` and `clone` go
//! through. Elsewhere, `unshare` is caught at its syscall tracepoints and `clone` at
//! `sched_process_fork`, by comparing the child's namespaces with its parent's (same facts as
//! `sys_exit_clone` in the child, plus the parent, without waiting for the child to run).
//! `setns` is always its own tracepoint pair.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{kprobe, kretprobe, raw_tracepoint, tracepoint},
    programs::{ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext},
};
use tracer_common::{ns_op, EventKind, Hook, NsEvent, NsKind, NS_CLONE_FLAGS, NS_KINDS};

use crate::{
    maps::{CreateNsArgs, CREATE_NS_PENDING, EVENTS, NS_PENDING, USERNS_PENDING},
    record::{
        count_lost, current_task, fill_header, fill_task, kptr, kread, layout, nsproxy_inums, send,
        task_ns_inums, task_user_ns_ptr, user_ns_inum, user_ns_owner, wakeup, NS_USER,
    },
    syscall::{arg_u64, nr, ret},
};

/// Every `CLONE_NEW*` flag tracked.
const NS_FLAGS: u64 = NS_CLONE_FLAGS;

/// Whether any namespace differs, without a branch per kind (see `NsEvent::prev`).
#[inline(always)]
fn any_differs(a: &[u32; NS_KINDS], b: &[u32; NS_KINDS]) -> bool {
    let mut acc = 0;
    let mut i = 0;
    while i < NS_KINDS {
        acc |= a[i] ^ b[i];
        i += 1;
    }
    acc != 0
}

fn tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

fn tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// Fallback for clone: a new process whose namespaces differ from its parent's. Attached to
/// `sched_process_fork` beside the fork program, only where the kretprobe is unavailable.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub(crate) fn sched_process_fork_ns(ctx: RawTracePointContext) -> u32 {
    let child: *const u8 = ctx.arg(1);
    let child_pid = kread::<u32>(child, layout!(task_pid));
    if child_pid != kread::<u32>(child, layout!(task_tgid)) {
        return 0; // threads share their process's namespaces
    }
    let mut parent = [0u32; NS_KINDS];
    let mut now = [0u32; NS_KINDS];
    task_ns_inums(current_task(), &mut parent);
    task_ns_inums(child, &mut now);
    if !any_differs(&parent, &now) {
        return 0;
    }
    let owner = user_ns_owner(task_user_ns_ptr(child));
    let Some(mut entry) = EVENTS.reserve::<NsEvent>(0) else {
        count_lost(EventKind::Namespaces);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(
            &mut (*ev).header,
            EventKind::Namespaces,
            Hook::ForkNamespaces,
        );
        // The clone flags are not visible here; userspace derives them from what changed.
        (*ev).flags = 0;
        (*ev).ret = 0;
        (*ev).op = ns_op::CLONE;
        (*ev).target_pid = child_pid;
        (*ev).fd = 0;
        (*ev).user_owner = owner;
        (*ev).inum = now;
        (*ev).prev = parent;
    }
    entry.submit(wakeup(&EVENTS));
    0
}

/// Parks a record holding the caller's namespaces before the call.
// By reference: by value the record would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
fn park(ctx: &TracePointContext) {
    // SAFETY: `NsEvent` is plain data; all-zero is a valid value.
    let mut ev: NsEvent = unsafe { core::mem::zeroed() };
    fill_task(&mut ev.header);
    ev.target_pid = tgid();
    task_ns_inums(current_task(), &mut ev.prev);
    let nr = nr(ctx);
    let (kind, hook) = if nr == layout!(sys.unshare) {
        ev.flags = arg_u64(ctx, 0);
        if ev.flags & NS_FLAGS == 0 {
            return; // CLONE_FILES, CLONE_FS and the like: no namespace
        }
        ev.op = ns_op::UNSHARE;
        (EventKind::Namespaces, Hook::Unshare)
    } else if nr == layout!(sys.setns) {
        ev.fd = arg_u64(ctx, 0) as i32;
        ev.flags = arg_u64(ctx, 1);
        ev.op = ns_op::SETNS;
        (EventKind::Setns, Hook::Setns)
    } else {
        return;
    };
    ev.header.kind = kind as u32;
    ev.header.hook = hook as u32;
    if NS_PENDING.insert(tid(), &ev, 0).is_err() {
        count_lost(kind);
    }
}

/// Adds the result and the namespaces after the call, and sends.
fn complete(ctx: &TracePointContext) {
    let tid = tid();
    let Some(ev) = NS_PENDING.get_ptr_mut(tid) else {
        return;
    };
    let owner = user_ns_owner(task_user_ns_ptr(current_task()));
    // SAFETY: map value pointer, ours until removed.
    unsafe {
        (*ev).ret = ret(ctx);
        (*ev).user_owner = owner;
        task_ns_inums(current_task(), &mut (*ev).inum);
        if let Some(kind) = EventKind::from_u32((*ev).header.kind) {
            send(&EVENTS, &*ev, kind);
        }
    }
    let _ = NS_PENDING.remove(tid);
}

/// Attached to `sys_enter_unshare` and `sys_enter_setns`: the task's part of the record is
/// filled once, then the record's syscall number says which.
#[tracepoint(category = "syscalls", name = "sys_enter_ns_family")]
pub(crate) fn sys_enter_ns_family(ctx: TracePointContext) -> u32 {
    park(&ctx);
    0
}

/// Attached to `sys_exit_unshare` and `sys_exit_setns`.
#[tracepoint(category = "syscalls", name = "sys_exit_ns_family")]
pub(crate) fn sys_exit_ns_family(ctx: TracePointContext) -> u32 {
    complete(&ctx);
    0
}

/// `struct nsproxy *create_new_namespaces(unsigned long flags, struct task_struct *tsk,
/// struct user_namespace *user_ns, ...)`: `user_ns` is the one the new namespaces belong to,
/// the new user namespace when one is made in the same call.
#[kprobe]
pub(crate) fn create_new_namespaces_entry(ctx: ProbeContext) -> u32 {
    let (Some(flags), Some(task), Some(user_ns)) =
        (ctx.arg::<u64>(0), ctx.arg::<u64>(1), ctx.arg::<u64>(2))
    else {
        return 0;
    };
    let args = CreateNsArgs {
        flags,
        task,
        user_ns,
    };
    if CREATE_NS_PENDING.insert(tid(), args, 0).is_err() {
        count_lost(EventKind::Namespaces);
    }
    0
}

#[kretprobe]
pub(crate) fn create_new_namespaces_exit(ctx: RetProbeContext) -> u32 {
    let tid = tid();
    // SAFETY: map value read while we hold the only reference.
    let Some(args) = (unsafe { CREATE_NS_PENDING.get(tid) }).copied() else {
        return 0;
    };
    let _ = CREATE_NS_PENDING.remove(tid);
    let nsproxy: u64 = ctx.ret();
    let task = args.task as *const u8;
    let Some(mut entry) = EVENTS.reserve::<NsEvent>(0) else {
        count_lost(EventKind::Namespaces);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // An ERR_PTR is a small negative errno.
    let err = nsproxy as i64;
    let failed = (-4095..0).contains(&err);
    let owner = user_ns_owner(args.user_ns as *const u8);
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(
            &mut (*ev).header,
            EventKind::Namespaces,
            Hook::CreateNewNamespaces,
        );
        (*ev).flags = args.flags;
        (*ev).op = ns_op::CREATE;
        (*ev).fd = 0;
        (*ev).user_owner = owner;
        // unshare: the caller itself; clone: the child, whose pid is not allocated yet.
        (*ev).target_pid = if task == current_task() { tgid() } else { 0 };
        // The namespaces before are the task's (for clone, still the parent's). The user
        // namespace is the one the new ones belong to, before and after: one made in the
        // same call (`unshare -U -m`) is reported new by create_user_ns.
        nsproxy_inums(crate::record::task_nsproxy(task), &mut (*ev).prev);
        let user_ns = user_ns_inum(args.user_ns as *const u8);
        (*ev).prev[NS_USER] = user_ns;
        if failed || nsproxy == 0 {
            (*ev).ret = if failed { err } else { -12 };
            (*ev).inum = [0; NS_KINDS];
        } else {
            (*ev).ret = 0;
            nsproxy_inums(nsproxy as *const u8, &mut (*ev).inum);
            (*ev).inum[NS_USER] = user_ns;
        }
    }
    entry.submit(wakeup(&EVENTS));
    0
}

/// `int create_user_ns(struct cred *new)`: the new user namespace is `new->user_ns` on
/// success. Reached by `unshare(CLONE_NEWUSER)` and by `clone` with it, alone or with other
/// kinds (create_new_namespaces is then not told of the user namespace as new).
#[kprobe]
pub(crate) fn create_user_ns_entry(ctx: ProbeContext) -> u32 {
    let Some(cred) = ctx.arg::<u64>(0) else {
        return 0;
    };
    if USERNS_PENDING.insert(tid(), cred, 0).is_err() {
        count_lost(EventKind::Namespaces);
    }
    0
}

#[kretprobe]
pub(crate) fn create_user_ns_exit(ctx: RetProbeContext) -> u32 {
    let tid = tid();
    // SAFETY: map value read while we hold the only reference.
    let Some(cred) = (unsafe { USERNS_PENDING.get(tid) }).copied() else {
        return 0;
    };
    let _ = USERNS_PENDING.remove(tid);
    let ret: i64 = ctx.ret::<i32>() as i64;
    let Some(mut entry) = EVENTS.reserve::<NsEvent>(0) else {
        count_lost(EventKind::Namespaces);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    let user_ns = kptr(cred as *const u8, layout!(cred_user_ns));
    let (made, owner) = if ret == 0 {
        (user_ns_inum(user_ns), user_ns_owner(user_ns))
    } else {
        (0, 0)
    };
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::Namespaces, Hook::CreateUserNs);
        (*ev).flags = NsKind::User.clone_flag();
        (*ev).op = ns_op::CREATE;
        (*ev).fd = 0;
        (*ev).user_owner = owner;
        (*ev).ret = ret;
        // Unknown here whether for the caller (unshare) or a child (clone).
        (*ev).target_pid = 0;
        task_ns_inums(current_task(), &mut (*ev).prev);
        (*ev).inum = (*ev).prev;
        if made != 0 {
            (*ev).inum[NS_USER] = made;
        }
    }
    entry.submit(wakeup(&EVENTS));
    0
}
