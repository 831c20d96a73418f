//! Processes: fork (new processes only), exit (of the thread-group leader), renames, and
//! why processes end: the OOM killer's victims and the fatal signals sent.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use tracer_common::{
    EventKind, ExitEvent, ForkEvent, Hook, OomEvent, RenameEvent, SignalEvent, COMM_LEN,
    OFFSET_UNKNOWN, REPORTED_SIGNALS,
};

use crate::{
    maps::{
        CREATE_NS_PENDING, DEVMOVE_PENDING, EVENTS, EXEC_PENDING, MOUNT_PENDING, NS_PENDING,
        SECURITY_PENDING, USERNS_PENDING, VETH_PENDING,
    },
    record::{count_lost, current_task, fill_header, kread, layout, tp_field, wakeup},
};

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`: a raw
/// tracepoint because its record layout changed across kernels (`__data_loc` comms in 6.x)
/// and because it gives the child's task, from which the child's tgid tells a thread from a
/// process.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub(crate) fn sched_process_fork(ctx: RawTracePointContext) -> u32 {
    let child: *const u8 = ctx.arg(1);
    let child_pid = kread::<u32>(child, layout!(task_pid));
    if child_pid != kread::<u32>(child, layout!(task_tgid)) {
        return 0; // a new thread
    }
    if let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) {
        let ev = entry.as_mut_ptr();
        // SAFETY: reserved ring memory of the right size.
        unsafe {
            fill_header(&mut (*ev).header, EventKind::Fork, Hook::SchedProcessFork);
            (*ev).child_pid = child_pid;
            (*ev)._pad = 0;
        }
        entry.submit(wakeup(&EVENTS));
    } else {
        count_lost(EventKind::Fork);
    }
    0
}

/// A task that dies inside a syscall never reaches its exit program: its parked record is
/// dropped here, or the pending maps (whose full case is counted as loss) would fill up over
/// days.
fn forget_parked(tid: u32, tgid: u32) {
    let _ = MOUNT_PENDING.remove(tid);
    let _ = NS_PENDING.remove(tid);
    let _ = CREATE_NS_PENDING.remove(tid);
    let _ = VETH_PENDING.remove(tid);
    let _ = DEVMOVE_PENDING.remove(tid);
    let _ = USERNS_PENDING.remove(tid);
    let _ = SECURITY_PENDING.remove(tid);
    crate::idmap::forget(tid);
    // An exec is parked by process: only the thread that called it drops it (a leader
    // zapped by another thread's exec leaves that exec alone).
    // SAFETY: map value read while this program runs.
    if unsafe { EXEC_PENDING.get(tgid) }.is_some_and(|ev| ev.header.pid == tid) {
        let _ = EXEC_PENDING.remove(tgid);
    }
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub(crate) fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    forget_parked(tid, tgid);
    if tid != tgid {
        return 0; // a thread other than the leader
    }
    let exit_code = kread::<i32>(current_task(), layout!(task_exit_code));
    crate::idmap::exited(&ctx, tgid, exit_code);
    send_exit(exit_code);
    0
}

/// Sends the exit event of the running process (also from `id_map_report`, which runs in
/// `sched_process_exit`'s place when the process held a map file). Inlined: a program that
/// tail-calls may not call functions of its own before 5.10.
#[inline(always)]
pub(crate) fn send_exit(exit_code: i32) {
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
}

#[tracepoint(category = "task", name = "task_rename")]
pub(crate) fn task_rename(ctx: TracePointContext) -> u32 {
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

#[tracepoint(category = "oom", name = "mark_victim")]
pub(crate) fn oom_mark_victim(ctx: TracePointContext) -> u32 {
    let Some(mut entry) = EVENTS.reserve::<OomEvent>(0) else {
        count_lost(EventKind::OomKill);
        return 0;
    };
    let pid = tp_field(&ctx, layout!(oom_pid));
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::OomKill, Hook::OomMarkVictim);
        (*ev).pid = pid;
        (*ev)._pad = 0;
    }
    entry.submit(wakeup(&EVENTS));
    0
}

#[tracepoint(category = "signal", name = "signal_generate")]
pub(crate) fn signal_generate(ctx: TracePointContext) -> u32 {
    let sig: i32 = tp_field(&ctx, layout!(signal_sig));
    // Without a branch per signal: the verifier walks one path.
    let mut wanted = false;
    let mut i = 0;
    while i < REPORTED_SIGNALS.len() {
        wanted |= REPORTED_SIGNALS[i] == sig;
        i += 1;
    }
    if !wanted {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalEvent>(0) else {
        count_lost(EventKind::Signal);
        return 0;
    };
    let pid = tp_field(&ctx, layout!(signal_pid));
    let code = tp_field(&ctx, layout!(signal_code));
    let result = tp_field(&ctx, layout!(signal_result));
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::Signal, Hook::SignalGenerate);
        (*ev).sig = sig;
        (*ev).pid = pid;
        (*ev).code = code;
        (*ev).result = result;
    }
    entry.submit(wakeup(&EVENTS));
    0
}
