//! cgroups: made, removed, and tasks moved into them, from the `cgroup:*` tracepoints
//! (present on every kernel). Their records carry the path as a `__data_loc` string; field
//! offsets come from the tracepoints' format files.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel_str_bytes, macros::tracepoint, programs::TracePointContext,
    EbpfContext as _,
};
use tracer_common::{CgroupEvent, EventKind, Hook, OFFSET_UNKNOWN};

use crate::{
    maps::EVENTS,
    record::{count_lost, fill_header, layout, tp_field, wakeup},
};

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub(crate) fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    cgroup(&ctx, EventKind::CgroupMkdir, Hook::CgroupMkdir, false);
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_rmdir")]
pub(crate) fn cgroup_rmdir(ctx: TracePointContext) -> u32 {
    cgroup(&ctx, EventKind::CgroupRmdir, Hook::CgroupRmdir, false);
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_attach_task")]
pub(crate) fn cgroup_attach_task(ctx: TracePointContext) -> u32 {
    cgroup(&ctx, EventKind::CgroupAttach, Hook::CgroupAttachTask, true);
    0
}

fn cgroup(ctx: &TracePointContext, kind: EventKind, hook: Hook, attach: bool) {
    let (root, level, id, path, pid) = if attach {
        (
            layout!(attach_root),
            layout!(attach_level),
            layout!(attach_id),
            layout!(attach_path),
            layout!(attach_pid),
        )
    } else {
        (
            layout!(cgroup_root),
            layout!(cgroup_level),
            layout!(cgroup_id),
            layout!(cgroup_path),
            OFFSET_UNKNOWN,
        )
    };
    if path == OFFSET_UNKNOWN {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<CgroupEvent>(0) else {
        count_lost(kind);
        return;
    };
    let ev = entry.as_mut_ptr();
    // A `__data_loc` field: the string's offset in the record (low 16 bits) and length.
    let loc: u32 = tp_field(ctx, path);
    let start = (loc & 0xffff) as usize;
    // SAFETY: reserved ring memory of the right size; the string is read from the record
    // through the helper, which bounds it to the buffer.
    unsafe {
        fill_header(&mut (*ev).header, kind, hook);
        (*ev).id = tp_field(ctx, id);
        (*ev).root = tp_field(ctx, root);
        (*ev).level = tp_field(ctx, level);
        (*ev).pid = tp_field(ctx, pid);
        (*ev).truncated = 0;
        let buf = &mut (*ev).path;
        let len = match bpf_probe_read_kernel_str_bytes(ctx.as_ptr().cast::<u8>().add(start), buf) {
            Ok(s) => s.len(),
            Err(_) => 0,
        };
        (*ev).path_len = len as u16;
        if len + 1 >= buf.len() {
            (*ev).truncated = 1;
        }
    }
    entry.submit(wakeup(&EVENTS));
}
