//! Detaching programs without making the tracer wait: each detach of a tracepoint or kprobe
//! waits in the kernel for RCU grace periods, under a lock.

use aya::{
    programs::{
        kprobe::KProbeLink, raw_trace_point::RawTracePointLink, trace_point::TracePointLink,
        KProbe, RawTracePoint, TracePoint,
    },
    Ebpf,
};

use super::loader::Link;

/// Takes each link out of its program, as a value whose drop detaches it; a link that
/// cannot be taken is left to its program's own drop.
fn take_links(ebpf: &mut Ebpf, links: Vec<(&'static str, Link)>) -> Vec<Box<dyn Send>> {
    let mut owned: Vec<Box<dyn Send>> = Vec::with_capacity(links.len());
    for (program, link) in links {
        let Some(prog) = ebpf.program_mut(program) else {
            continue;
        };
        let taken = match link {
            Link::TracePoint(id) => <&mut TracePoint>::try_from(prog)
                .and_then(|p| p.take_link(id))
                .map(|l: TracePointLink| Box::new(l) as Box<dyn Send>),
            Link::RawTracePoint(id) => <&mut RawTracePoint>::try_from(prog)
                .and_then(|p| p.take_link(id))
                .map(|l: RawTracePointLink| Box::new(l) as Box<dyn Send>),
            Link::KProbe(id) => <&mut KProbe>::try_from(prog)
                .and_then(|p| p.take_link(id))
                .map(|l: KProbeLink| Box::new(l) as Box<dyn Send>),
        };
        match taken {
            Ok(link) => owned.push(link),
            Err(e) => log::warn!("detaching {program}: {e}"),
        }
    }
    owned
}

/// Detaches the links of an option that failed part way.
pub(super) fn detach_all(ebpf: &mut Ebpf, links: Vec<(&'static str, Link)>) {
    drop(take_links(ebpf, links));
}

/// Detaches every link at once. Each detach waits for an RCU grace period in the kernel
/// (about 70 ms here), so one after another 30 of them took 2 s at every exit; dropped
/// from parallel threads the waits overlap.
pub(super) fn detach_in_parallel(ebpf: &mut Ebpf, links: Vec<(&'static str, Link)>) {
    let owned = take_links(ebpf, links);
    std::thread::scope(|s| {
        for link in owned {
            s.spawn(move || drop(link));
        }
    });
}

/// Each detach of a tracepoint or kprobe waits in the kernel for RCU grace periods (40 to
/// 70 ms here), under a lock, so 30 of them keep the process from exiting for 1 to 2 s
/// however they are closed. Instead a helper process shares the attachments (perf event
/// and BPF link files) and only lets go of them once this process has exited: ours close
/// without waiting, and the kernel does the slow part in the helper. The programs go on
/// running into a ring buffer nobody reads until the helper is done (about a second).
/// Returns false if no helper could be started (the caller then detaches itself).
pub(super) fn detach_after_exit() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let mut keep: Vec<i32> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_str()?;
            (target == "anon_inode:[perf_event]" || target == "anon_inode:bpf_link").then_some(fd)
        })
        .collect();
    if keep.is_empty() {
        return false;
    }
    // The helper waits for the read end to see end-of-file: the write end stays open here
    // until this process exits.
    let mut pipe = [0; 2];
    // SAFETY: pipe writes two fds into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    keep.push(pipe[0]);
    keep.sort_unstable();
    // Everything else is closed in the helper (this process's pipes, sockets, terminal):
    // computed now, since after fork only async-signal-safe calls are allowed.
    let mut ranges = Vec::with_capacity(keep.len() + 1);
    let mut next = 0u32;
    for &fd in &keep {
        if fd as u32 > next {
            ranges.push((next, fd as u32 - 1));
        }
        next = fd as u32 + 1;
    }
    ranges.push((next, u32::MAX));
    // SAFETY: between fork and _exit the children only call fork, close_range, read and
    // _exit, all async-signal-safe; the grandchild is reaped by init.
    unsafe {
        match libc::fork() {
            -1 => {
                libc::close(pipe[0]);
                libc::close(pipe[1]);
                false
            }
            0 => {
                if libc::fork() == 0 {
                    for &(first, last) in &ranges {
                        libc::syscall(libc::SYS_close_range, first, last, 0);
                    }
                    let mut byte = 0u8;
                    while libc::read(pipe[0], (&raw mut byte).cast(), 1) < 0
                        && *libc::__errno_location() == libc::EINTR
                    {}
                    libc::_exit(0);
                }
                libc::_exit(0);
            }
            child => {
                libc::waitpid(child, std::ptr::null_mut(), 0);
                libc::close(pipe[0]);
                // pipe[1] is left open on purpose: it closes when this process exits.
                true
            }
        }
    }
}
