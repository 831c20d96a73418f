//! Processes: fork (new processes only), exit (of the thread-group leader) and renames.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use tracer_common::{EventKind, ExitEvent, ForkEvent, Hook, RenameEvent, COMM_LEN, OFFSET_UNKNOWN};

use crate::{
    maps::{EVENTS, EXEC_PENDING},
    record::{count_lost, current_task, fill_header, kread, layout, wakeup},
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

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub(crate) fn sched_process_exit(_ctx: TracePointContext) -> u32 {
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
