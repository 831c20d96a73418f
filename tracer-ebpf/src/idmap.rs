//! ID maps written for a user namespace: `/proc/PID/uid_map`, `gid_map` and `setgroups`.
//! Where kprobes exist, the map files' own write functions are probed: what was written and
//! the result. Elsewhere no tracepoint names them, and a program on every `write` would cost
//! every write on the host (about 80 ns each, measured: 1.3× on a `dd bs=1`); so the file is
//! recognised when it is opened for writing (`openat`, which writers of maps use: runc,
//! unshare, shadow's newuidmap) and reported when it is closed (or its process exits), with
//! the map the kernel then holds for its namespace: a map is written once, so that is what
//! was written.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user},
    },
    macros::{kprobe, kretprobe, tracepoint},
    programs::{ProbeContext, RetProbeContext, TracePointContext},
    EbpfContext,
};
use tracer_common::{
    id_map_file, tail_call, EventKind, Hook, IdMapEvent, MAP_DATA_LEN, MAP_EXTENTS, MAP_PATH_LEN,
};

use crate::{
    maps::{
        MapFile, ReportArgs, EVENTS, MAP_FILES, MAP_OPENING, MAP_SCRATCH, MAP_WRITING, REPORT_ARGS,
        TAIL_CALLS,
    },
    record::{
        count_lost, fill_header, fill_task, kptr, kread, layout, read_kernel_str, read_user_str,
        send, task_file, user_ns_inum, wakeup,
    },
    syscall::{arg_u64, ret},
};

const O_ACCMODE: u64 = 3;

fn ids() -> (u32, u32) {
    let t = bpf_get_current_pid_tgid();
    (t as u32, (t >> 32) as u32)
}

/// Whether the path's last component, after a `/` or as the whole path, is `name`.
#[inline(always)]
fn ends_with(path: &[u8; MAP_PATH_LEN], len: usize, name: &[u8]) -> bool {
    if len < name.len() || len > MAP_PATH_LEN {
        return false;
    }
    let start = len - name.len();
    let mut i = 0;
    while i < name.len() {
        if path[(start + i) & (MAP_PATH_LEN - 1)] != name[i] {
            return false;
        }
        i += 1;
    }
    start == 0 || path[(start - 1) & (MAP_PATH_LEN - 1)] == b'/'
}

/// `openat(dfd, filename, flags, mode)`: only files opened for writing whose name is a map's.
// By reference: by value the records would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[tracepoint(category = "syscalls", name = "sys_enter_openat")]
pub(crate) fn sys_enter_openat(ctx: TracePointContext) -> u32 {
    if arg_u64(&ctx, 2) & O_ACCMODE == 0 {
        return 0; // read-only: most opens
    }
    let mut file = MapFile {
        fd: arg_u64(&ctx, 0) as i32,
        which: 0,
        path_len: 0,
        _pad: 0,
        path: [0; MAP_PATH_LEN],
        dir: [0; 16],
    };
    let (len, cut) = read_user_str(arg_u64(&ctx, 1) as *const u8, &mut file.path);
    if cut {
        return 0;
    }
    let len = usize::from(len);
    file.which = if ends_with(&file.path, len, b"uid_map") {
        id_map_file::UID_MAP
    } else if ends_with(&file.path, len, b"gid_map") {
        id_map_file::GID_MAP
    } else if ends_with(&file.path, len, b"setgroups") {
        id_map_file::SETGROUPS
    } else {
        return 0;
    };
    file.path_len = len as u32;
    if MAP_OPENING.insert(ids().0, &file, 0).is_err() {
        count_lost(EventKind::IdMap);
    }
    0
}

/// The open's result: a map file open for writing is remembered until its close.
// By reference: by value the record would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub(crate) fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    let (tid, tgid) = ids();
    let Some(file) = MAP_OPENING.get_ptr_mut(tid) else {
        return 0;
    };
    let fd = ret(&ctx);
    if fd >= 0 {
        // SAFETY: map value pointer, ours until removed.
        let (dirfd, relative) = unsafe { ((*file).fd, (*file).path[0] != b'/') };
        // The name of the directory a relative path is below: `4242` of `/proc/4242`.
        let mut dir = [0u8; 16];
        if relative {
            let dentry = kptr(task_file(dirfd), layout!(file_dentry));
            read_kernel_str(kptr(dentry, layout!(dentry_name)), &mut dir);
        }
        // SAFETY: as above.
        unsafe {
            (*file).dir = dir;
            (*file).fd = fd as i32;
            if MAP_FILES.insert(tgid, &*file, 0).is_err() {
                count_lost(EventKind::IdMap);
            }
        }
    }
    let _ = MAP_OPENING.remove(tid);
    0
}

/// Copies the map the kernel holds for the file's user namespace into `ev.data`: the number
/// of extents, then the first [`MAP_EXTENTS`] of them; for setgroups, the namespace's flags
/// in place of the number (what follows is then not read).
///
/// Choices are made by arithmetic, with one branch: each branch here multiplied the paths
/// the verifier walks through the rest, two thirds of the programs that report maps.
///
/// # Safety
/// `ev` points at reserved ring memory of the record's type.
#[inline(always)]
unsafe fn kernel_map(ev: *mut IdMapEvent, user_ns: *const u8, which: u32) {
    // gid_map for GID_MAP (1), uid_map for the others.
    let (uid_map, gid_map) = (layout!(userns_uid_map), layout!(userns_gid_map));
    let map_off = uid_map.wrapping_add((which & 1).wrapping_mul(gid_map.wrapping_sub(uid_map)));
    let map = user_ns.wrapping_add(map_off as usize);
    let nr = kread::<u32>(map, layout!(map_nr_extents));
    // Past five extents the kernel keeps them apart, sorted `forward` (a union with the
    // inline extents: read either way). `apart` is 1 when nr > 5 (nr is at most 340).
    let apart = (5u32.wrapping_sub(nr) >> 31) as usize;
    let inline = map.wrapping_add(layout!(map_extent) as usize) as usize;
    let forward = kptr(map, layout!(map_forward)) as usize;
    let extents = inline.wrapping_add(forward.wrapping_sub(inline).wrapping_mul(apart));
    let n = if nr as usize > MAP_EXTENTS {
        MAP_EXTENTS as u32
    } else {
        nr
    };
    // SETGROUPS (2): the flags' low word in place of the number.
    let setgroups = 0u32.wrapping_sub((which >> 1) & 1);
    let flags = kread::<u64>(user_ns, layout!(userns_flags)) as u32;
    let word0 = nr ^ ((nr ^ flags) & setgroups);
    // SAFETY: the caller's record; kernel reads through the helper.
    unsafe {
        (*ev).data = [0; MAP_DATA_LEN];
        core::ptr::write_unaligned((&raw mut (*ev).data).cast::<u32>(), word0);
        bpf_probe_read_kernel(
            (&raw mut (*ev).data[4]).cast(),
            (n * 12) & 0xff,
            extents as *const _,
        );
        (*ev).len = (4 + n * 12) & !setgroups | 8 & setgroups;
    }
}

/// Reports the map file `args.tgid` holds (at the close of its fd, or at its exit) and
/// forgets it; at an exit, then sends the process's exit event. Tail-called by
/// `sys_enter_close` and `sched_process_exit`: verified once, not in each of them.
#[tracepoint]
pub(crate) fn id_map_report(_ctx: TracePointContext) -> u32 {
    let Some(args) = REPORT_ARGS.get(0).copied() else {
        return 0;
    };
    report(args.tgid, args.hook);
    if args.then_exit != 0 {
        crate::process::send_exit(args.exit_code);
    }
    0
}

fn report(tgid: u32, hook: u32) {
    // SAFETY: map value read while this program runs.
    let Some(file) = (unsafe { MAP_FILES.get(tgid) }) else {
        return;
    };
    let seq = kptr(task_file(file.fd), layout!(file_private_data));
    let user_ns = kptr(seq, layout!(seq_file_private));
    if let Some(mut entry) = EVENTS.reserve::<IdMapEvent>(0) {
        let ev = entry.as_mut_ptr();
        // SAFETY: reserved ring memory of the right size.
        unsafe {
            fill_task(&mut (*ev).header);
            (*ev).header.kind = EventKind::IdMap as u32;
            (*ev).header.hook = hook;
            (*ev).ret = 0;
            (*ev).fd = file.fd;
            (*ev).which = file.which;
            (*ev).count = 0;
            (*ev).path_len = file.path_len;
            (*ev).user_ns = user_ns_inum(user_ns);
            (*ev).path = file.path;
            (*ev).dir = file.dir;
            kernel_map(ev, user_ns, file.which);
        }
        entry.submit(wakeup(&EVENTS));
    } else {
        count_lost(EventKind::IdMap);
    }
    let _ = MAP_FILES.remove(tgid);
}

/// Hands the report to `id_map_report`. Comes back only when the tail call failed (the
/// program not in its slot): the report is then counted lost and the file forgotten.
fn tail_report<C: EbpfContext>(ctx: &C, args: ReportArgs) {
    if let Some(slot) = REPORT_ARGS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, ours while this program runs; a tail call on our context.
        unsafe {
            *slot = args;
            TAIL_CALLS.tail_call(ctx, tail_call::ID_MAP_REPORT);
        }
    }
    count_lost(EventKind::IdMap);
    let _ = MAP_FILES.remove(args.tgid);
}

/// Whether `tgid` has a map file open for writing (one hash lookup, which misses unless it
/// does).
#[inline(always)]
fn holds(tgid: u32, fd: i32) -> bool {
    // SAFETY: map value read while this program runs.
    unsafe { MAP_FILES.get(tgid) }.is_some_and(|f| fd == -1 || f.fd == fd)
}

/// `close(fd)` of the map file.
#[tracepoint(category = "syscalls", name = "sys_enter_close")]
pub(crate) fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let tgid = ids().1;
    let fd = arg_u64(&ctx, 0) as i32;
    if holds(tgid, fd) {
        tail_report(
            &ctx,
            ReportArgs {
                tgid,
                hook: Hook::IdMapClose as u32,
                then_exit: 0,
                exit_code: 0,
            },
        );
    }
    0
}

/// A process that exits with a map file still open (its files are still there): the report
/// program sends its exit event after the report. Comes back only when it could not.
#[inline(always)]
pub(crate) fn exited(ctx: &TracePointContext, tgid: u32, exit_code: i32) {
    if holds(tgid, -1) {
        tail_report(
            ctx,
            ReportArgs {
                tgid,
                hook: Hook::IdMapExit as u32,
                then_exit: 1,
                exit_code,
            },
        );
    }
}

/// Fills the record of a map write at its entry and parks it for the exit.
///
/// # Safety
/// `ev` points at the per-CPU scratch record.
#[allow(clippy::needless_borrows_for_generic_args)]
unsafe fn park(
    ev: *mut IdMapEvent,
    hook: Hook,
    file: &MapFile,
    user_ns: u32,
    buf: u64,
    count: u64,
) {
    // SAFETY: the caller's record.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::IdMap, hook);
        (*ev).ret = 0;
        (*ev).fd = file.fd;
        (*ev).which = file.which;
        (*ev).path_len = file.path_len;
        (*ev).user_ns = user_ns;
        (*ev).path = file.path;
        (*ev).dir = file.dir;
        read_data(ev, buf, count);
        if MAP_WRITING.insert(ids().0, &*ev, 0).is_err() {
            count_lost(EventKind::IdMap);
        }
    }
}

/// Reads up to `MAP_DATA_LEN` bytes of the map written into `ev.data`; sets `len`.
///
/// # Safety
/// `ev` points at a map value of the record's type.
unsafe fn read_data(ev: *mut IdMapEvent, buf: u64, count: u64) {
    let n = if count > MAP_DATA_LEN as u64 {
        MAP_DATA_LEN as u32
    } else {
        count as u32
    };
    // SAFETY: the caller's record; user read through the helper, at most its buffer's size.
    unsafe {
        (*ev).count = count as u32;
        (*ev).data = [0; MAP_DATA_LEN];
        let read = bpf_probe_read_user(
            (&raw mut (*ev).data).cast(),
            n & (MAP_DATA_LEN as u32 * 2 - 1),
            buf as *const _,
        );
        (*ev).len = if read == 0 { n } else { 0 };
    }
}

/// `ssize_t proc_uid_map_write(struct file *file, const char __user *buf, size_t size,
/// loff_t *ppos)` (and gid_map's, setgroups'): the file's `seq_file` holds the user
/// namespace it maps.
fn map_write_entry(ctx: &ProbeContext, which: u32, hook: Hook) {
    let (Some(file), Some(buf), Some(count)) =
        (ctx.arg::<u64>(0), ctx.arg::<u64>(1), ctx.arg::<u64>(2))
    else {
        return;
    };
    let Some(ev) = MAP_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let seq = kptr(file as *const u8, layout!(file_private_data));
    let user_ns = user_ns_inum(kptr(seq, layout!(seq_file_private)));
    let file = MapFile {
        fd: -1,
        which,
        path_len: 0,
        _pad: 0,
        path: [0; MAP_PATH_LEN],
        dir: [0; 16],
    };
    // SAFETY: per-CPU scratch value.
    unsafe { park(ev, hook, &file, user_ns, buf, count) };
}

#[kprobe]
pub(crate) fn proc_uid_map_write_entry(ctx: ProbeContext) -> u32 {
    map_write_entry(&ctx, id_map_file::UID_MAP, Hook::ProcUidMapWrite);
    0
}

#[kprobe]
pub(crate) fn proc_gid_map_write_entry(ctx: ProbeContext) -> u32 {
    map_write_entry(&ctx, id_map_file::GID_MAP, Hook::ProcGidMapWrite);
    0
}

#[kprobe]
pub(crate) fn proc_setgroups_write_entry(ctx: ProbeContext) -> u32 {
    map_write_entry(&ctx, id_map_file::SETGROUPS, Hook::ProcSetgroupsWrite);
    0
}

/// The three write functions' return: the result, and the record sent.
#[kretprobe]
pub(crate) fn proc_map_write_exit(ctx: RetProbeContext) -> u32 {
    let tid = ids().0;
    let Some(ev) = MAP_WRITING.get_ptr_mut(tid) else {
        return 0;
    };
    // SAFETY: map value pointer, ours until removed.
    unsafe {
        (*ev).ret = ctx.ret::<i64>();
        send(&EVENTS, &*ev, EventKind::IdMap);
    }
    let _ = MAP_WRITING.remove(tid);
    0
}

/// A task's parked map records, dropped when it exits.
pub(crate) fn forget(tid: u32) {
    let _ = MAP_OPENING.remove(tid);
    let _ = MAP_WRITING.remove(tid);
}
