//! The mount family: `mount`, `umount2`, `pivot_root` and the new mount API (`fsopen`,
//! `fsconfig`, `fsmount`, `move_mount`, `open_tree`, `mount_setattr`). One record for all
//! (see [`MountEvent`]); entry fills it from the arguments and parks it per thread, the shared
//! exit program adds the result and sends it.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{mount_truncated, EventKind, Hook, MountEvent};

use crate::{
    maps::{EVENTS, MOUNT_PENDING, MOUNT_SCRATCH},
    record::{count_lost, fd_inode, fill_task, layout, read_user_str, send},
    syscall::{arg_u64, nr, ret},
};

/// A zeroed-out mount record in per-CPU scratch, with the task's part of its header.
fn mount_begin() -> Option<&'static mut MountEvent> {
    let ev = MOUNT_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU map value, exclusively ours while this program runs.
    let ev = unsafe { &mut *ev };
    fill_task(&mut ev.header);
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
/// A record that finds no room is counted lost (a log line here, with exec's, cost the
/// verifier 40 % of its time over all programs, for what the count already says).
fn mount_park(ev: &MountEvent, kind: EventKind) {
    let tid = bpf_get_current_pid_tgid() as u32;
    if MOUNT_PENDING.insert(tid, ev, 0).is_err() {
        count_lost(kind);
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

fn a(ctx: &TracePointContext, n: usize) -> u64 {
    arg_u64(ctx, n)
}

/// `fsconfig` commands whose value is a string or path (`include/uapi/linux/mount.h`).
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_PATH: u32 = 3;
const FSCONFIG_SET_PATH_EMPTY: u32 = 4;

/// `struct mount_attr` as passed to `mount_setattr` (`MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// An idmapped mount: its ids mapped through the user namespace `userns_fd` names.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Attached to the `sys_enter_*` of every mount-family syscall: the task's part of the
/// record is filled once, then the record's syscall number says what the arguments are.
#[tracepoint(category = "syscalls", name = "sys_enter_mount_family")]
pub(crate) fn sys_enter_mount_family(ctx: TracePointContext) -> u32 {
    let Some(ev) = mount_begin() else {
        return 0;
    };
    let nr = nr(&ctx);
    let (kind, hook) = if nr == layout!(sys.mount) {
        read_src(ev, a(&ctx, 0));
        read_dst(ev, a(&ctx, 1));
        read_fstype(ev, a(&ctx, 2));
        ev.flags = a(&ctx, 3);
        (EventKind::Mount, Hook::Mount)
    } else if nr == layout!(sys.umount2) {
        read_dst(ev, a(&ctx, 0));
        ev.flags = a(&ctx, 1);
        (EventKind::Umount, Hook::Umount)
    } else if nr == layout!(sys.pivot_root) {
        read_src(ev, a(&ctx, 0));
        read_dst(ev, a(&ctx, 1));
        (EventKind::PivotRoot, Hook::PivotRoot)
    } else if nr == layout!(sys.fsopen) {
        read_fstype(ev, a(&ctx, 0));
        ev.flags = a(&ctx, 1);
        (EventKind::Fsopen, Hook::Fsopen)
    } else if nr == layout!(sys.fsconfig) {
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
        (EventKind::Fsconfig, Hook::Fsconfig)
    } else if nr == layout!(sys.fsmount) {
        ev.fd = a(&ctx, 0) as i32;
        ev.flags = a(&ctx, 1);
        ev.cmd = a(&ctx, 2) as u32;
        (EventKind::Fsmount, Hook::Fsmount)
    } else if nr == layout!(sys.move_mount) {
        ev.fd = a(&ctx, 0) as i32;
        read_src(ev, a(&ctx, 1));
        ev.fd2 = a(&ctx, 2) as i32;
        read_dst(ev, a(&ctx, 3));
        ev.flags = a(&ctx, 4);
        (EventKind::MoveMount, Hook::MoveMount)
    } else if nr == layout!(sys.open_tree) {
        ev.fd = a(&ctx, 0) as i32;
        read_src(ev, a(&ctx, 1));
        ev.flags = a(&ctx, 2);
        (EventKind::OpenTree, Hook::OpenTree)
    } else if nr == layout!(sys.mount_setattr) {
        mount_setattr(&ctx, ev);
        (EventKind::MountSetattr, Hook::MountSetattr)
    } else {
        return 0;
    };
    ev.header.kind = kind as u32;
    ev.header.hook = hook as u32;
    mount_park(ev, kind);
    0
}

#[inline(always)]
fn mount_setattr(ctx: &TracePointContext, ev: &mut MountEvent) {
    ev.fd = a(ctx, 0) as i32;
    read_src(ev, a(ctx, 1));
    ev.flags = a(ctx, 2);
    // SAFETY: user pointer read through the helper.
    if let Ok(attr) = unsafe { bpf_probe_read_user(a(ctx, 3) as *const MountAttr) } {
        ev.attr_set = attr.attr_set;
        ev.attr_clr = attr.attr_clr;
        ev.propagation = attr.propagation;
        if attr.attr_set & MOUNT_ATTR_IDMAP != 0 {
            ev.fd2 = attr.userns_fd as i32;
            ev.cmd = fd_inode(ev.fd2);
        }
    }
}

/// Attached to the `sys_exit_*` of every mount-family syscall.
#[tracepoint(category = "syscalls", name = "sys_exit_mount_family")]
pub(crate) fn sys_exit_mount_family(ctx: TracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(ev) = MOUNT_PENDING.get_ptr_mut(tid) {
        // SAFETY: map value pointer, ours until removed below.
        unsafe {
            (*ev).ret = ret(&ctx);
            if let Some(kind) = EventKind::from_u32((*ev).header.kind) {
                send(&EVENTS, &*ev, kind);
            }
        }
        let _ = MOUNT_PENDING.remove(tid);
    }
    0
}
