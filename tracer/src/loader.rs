//! Loads the embedded kernel programs, hands them the kernel layout, and attaches every hook.
//! A hook that cannot attach is reported and skipped: it never stops the others.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use aya::{
    programs::{
        kprobe::{KProbeLink, KProbeLinkId},
        raw_trace_point::{RawTracePointLink, RawTracePointLinkId},
        trace_point::{TracePointLink, TracePointLinkId},
        KProbe, ProgramError, RawTracePoint, TracePoint,
    },
    Ebpf, EbpfLoader,
};
use tracer_common::DEFAULT_RING_BYTES;

use crate::kernel_layout;

/// Where tracefs is mounted when the system did not mount it.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// The kernel object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// How a program is attached.
#[derive(Clone, Copy, Debug)]
pub enum Attach {
    /// A classic tracepoint: `category/name`.
    TracePoint(&'static str, &'static str),
    /// A raw tracepoint by name.
    RawTracePoint(&'static str),
    /// A kprobe on a kernel function.
    KProbe(&'static str),
    /// A kretprobe on a kernel function.
    KRetProbe(&'static str),
}

impl fmt::Display for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attach::TracePoint(c, n) => write!(f, "tracepoint {c}:{n}"),
            Attach::RawTracePoint(n) => write!(f, "raw_tracepoint {n}"),
            Attach::KProbe(n) => write!(f, "kprobe {n}"),
            Attach::KRetProbe(n) => write!(f, "kretprobe {n}"),
        }
    }
}

/// One program attached somewhere.
#[derive(Clone, Copy, Debug)]
pub struct Attachment {
    pub program: &'static str,
    pub attach: Attach,
}

/// Where events of a kind can come from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Kernel programs; all must attach for the option to be used.
    Programs(&'static [Attachment]),
    /// The userspace rtnetlink link monitor (see `netlink_monitor`).
    RtnetlinkMonitor,
}

/// One way to observe an event kind.
#[derive(Clone, Copy, Debug)]
pub struct HookOption {
    pub name: &'static str,
    pub source: Source,
}

/// Event kinds and the ways to observe them, best first.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub kinds: &'static str,
    pub options: &'static [HookOption],
}

const fn tp(program: &'static str, name: &'static str) -> Attachment {
    Attachment {
        program,
        attach: Attach::TracePoint("syscalls", name),
    }
}

const fn programs(name: &'static str, attachments: &'static [Attachment]) -> HookOption {
    HookOption {
        name,
        source: Source::Programs(attachments),
    }
}

/// A syscall observed at entry (arguments) and exit (result): exit attaches first, so no
/// parked record misses its exit.
macro_rules! syscall {
    ($kinds:literal, $exit:literal, [$($sys:literal),+]) => {
        Plan {
            kinds: $kinds,
            options: &[programs(
                concat!("tracepoints syscalls:sys_enter/exit_", $kinds),
                &[
                    $(tp($exit, concat!("sys_exit_", $sys)),)+
                    $(tp(concat!("sys_enter_", $sys), concat!("sys_enter_", $sys)),)+
                ],
            )],
        }
    };
}

/// Every event kind and how to observe it. Adding a fallback is adding an option here.
pub const PLANS: &[Plan] = &[
    syscall!("exec", "sys_exit_exec", ["execve", "execveat"]),
    syscall!("mount", "sys_exit_mount_family", ["mount"]),
    syscall!("umount", "sys_exit_mount_family", ["umount"]),
    syscall!("pivot_root", "sys_exit_mount_family", ["pivot_root"]),
    syscall!("fsopen", "sys_exit_mount_family", ["fsopen"]),
    syscall!("fsconfig", "sys_exit_mount_family", ["fsconfig"]),
    syscall!("fsmount", "sys_exit_mount_family", ["fsmount"]),
    syscall!("move_mount", "sys_exit_mount_family", ["move_mount"]),
    syscall!("open_tree", "sys_exit_mount_family", ["open_tree"]),
    syscall!("mount_setattr", "sys_exit_mount_family", ["mount_setattr"]),
    Plan {
        kinds: "fork",
        options: &[programs(
            "raw_tracepoint sched_process_fork",
            &[Attachment {
                program: "sched_process_fork",
                attach: Attach::RawTracePoint("sched_process_fork"),
            }],
        )],
    },
    Plan {
        kinds: "exit",
        options: &[programs(
            "tracepoint sched:sched_process_exit",
            &[Attachment {
                program: "sched_process_exit",
                attach: Attach::TracePoint("sched", "sched_process_exit"),
            }],
        )],
    },
    Plan {
        kinds: "rename",
        options: &[programs(
            "tracepoint task:task_rename",
            &[Attachment {
                program: "task_rename",
                attach: Attach::TracePoint("task", "task_rename"),
            }],
        )],
    },
    Plan {
        kinds: "namespaces",
        options: &[
            programs(
                "kretprobe create_new_namespaces",
                &[
                    Attachment {
                        program: "create_new_namespaces_exit",
                        attach: Attach::KRetProbe("create_new_namespaces"),
                    },
                    Attachment {
                        program: "create_new_namespaces_entry",
                        attach: Attach::KProbe("create_new_namespaces"),
                    },
                ],
            ),
            programs(
                "tracepoints sys_enter/exit_unshare + sched_process_fork",
                &[
                    tp("sys_exit_unshare", "sys_exit_unshare"),
                    Attachment {
                        program: "sched_process_fork_ns",
                        attach: Attach::RawTracePoint("sched_process_fork"),
                    },
                    tp("sys_enter_unshare", "sys_enter_unshare"),
                ],
            ),
        ],
    },
    syscall!("setns", "sys_exit_setns", ["setns"]),
    Plan {
        kinds: "veth",
        options: &[
            programs(
                "kretprobe veth_newlink",
                &[
                    Attachment {
                        program: "veth_newlink_exit",
                        attach: Attach::KRetProbe("veth_newlink"),
                    },
                    Attachment {
                        program: "veth_newlink_entry",
                        attach: Attach::KProbe("veth_newlink"),
                    },
                ],
            ),
            HookOption {
                name: "rtnetlink link monitor (host network namespace)",
                source: Source::RtnetlinkMonitor,
            },
        ],
    },
];

/// What happened to one option of a plan.
#[derive(Debug, Clone)]
pub struct OptionReport {
    pub option: HookOption,
    /// Why it cannot be used; `None` when usable.
    pub unavailable: Option<String>,
}

/// The outcome of one plan: every option tried, and which one is used.
#[derive(Debug, Clone)]
pub struct PlanReport {
    pub plan: Plan,
    pub options: Vec<OptionReport>,
    pub chosen: Option<usize>,
}

impl PlanReport {
    pub fn chosen(&self) -> Option<&HookOption> {
        self.chosen.map(|i| &self.options[i].option)
    }
}

/// Loaded and attached programs, with what did and did not attach.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub plans: Vec<PlanReport>,
    /// Things that work in a degraded way (memlock, unresolved offsets).
    pub warnings: Vec<String>,
    pub ring_bytes: u32,
    /// Every attachment, detached together on drop.
    links: Vec<(&'static str, Link)>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        if links.is_empty() || !detach_after_exit() {
            detach_in_parallel(&mut self.ebpf, links);
        }
    }
}

impl Loaded {
    /// Event kinds with a working source, and all kinds.
    pub fn covered(&self) -> (usize, usize) {
        let ok = self.plans.iter().filter(|p| p.chosen.is_some()).count();
        (ok, self.plans.len())
    }

    /// Whether the userspace rtnetlink monitor was chosen for some kind.
    pub fn wants_rtnetlink_monitor(&self) -> bool {
        self.plans
            .iter()
            .any(|p| matches!(p.chosen().map(|o| o.source), Some(Source::RtnetlinkMonitor)))
    }
}

/// Checks a ring size: the kernel wants a power of two multiple of the page size.
pub fn check_ring_bytes(bytes: u64) -> anyhow::Result<u32> {
    let page = page_size();
    if bytes < page || !bytes.is_power_of_two() || bytes > 1 << 30 {
        bail!(
            "ring buffer size {bytes} is not a power of two between the page size ({page}) and \
             1 GiB (default {DEFAULT_RING_BYTES})"
        );
    }
    Ok(bytes as u32)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as u64)
}

/// Mounts tracefs at [`TRACEFS`] unless some tracefs is already reachable; returns its path.
pub fn ensure_tracefs() -> anyhow::Result<PathBuf> {
    for dir in [TRACEFS, "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting tracefs on {TRACEFS}"))?;
    log::info!("mounted tracefs on {TRACEFS}");
    Ok(PathBuf::from(TRACEFS))
}

/// Raises RLIMIT_MEMLOCK for kernels that still charge BPF memory to it. Failure is normal
/// where root lacks CAP_SYS_RESOURCE; kernels >= 5.11 charge the memory cgroup instead.
fn raise_memlock() -> Option<String> {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    (ret != 0).then(|| {
        format!(
            "could not raise RLIMIT_MEMLOCK ({}); continuing: kernels >= 5.11 charge BPF memory \
             to the memory cgroup",
            std::io::Error::last_os_error()
        )
    })
}

/// Loads the programs with the running kernel's layout and attaches, for every event kind,
/// the best option that works here.
pub fn load(ring_bytes: u32) -> anyhow::Result<Loaded> {
    let mut warnings: Vec<String> = raise_memlock().into_iter().collect();
    let tracefs = ensure_tracefs()?;
    let btf = match kernel_layout::open_kernel_btf() {
        Ok(btf) => Some(btf),
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let veth_btf = btf
        .as_ref()
        .and_then(kernel_layout::open_veth_btf)
        .and_then(|r| r.map_err(|e| warnings.push(e.to_string())).ok());
    let resolved = kernel_layout::resolve(btf.as_ref(), veth_btf.as_ref(), &tracefs);
    warnings.extend(
        resolved
            .problems
            .iter()
            .map(|p| format!("kernel layout: {p}")),
    );
    let mut layout = resolved.layout;
    if let Ok(spec) = std::env::var(kernel_layout::SKEW_ENV) {
        kernel_layout::skew(&mut layout, &spec).map_err(anyhow::Error::msg)?;
        warnings.push(format!(
            "kernel layout deliberately skewed ({}={spec}): events will be wrong",
            kernel_layout::SKEW_ENV
        ));
    }

    let mut ebpf = EbpfLoader::new()
        .override_global("LAYOUT", &layout, true)
        .map_max_entries("EVENTS", ring_bytes)
        .load(OBJECT)
        .context("loading the eBPF object")?;

    let mut plans = Vec::with_capacity(PLANS.len());
    let mut links = Vec::new();
    for plan in PLANS {
        let mut report = PlanReport {
            plan: *plan,
            options: Vec::new(),
            chosen: None,
        };
        for option in plan.options {
            // Once an option is chosen the rest are only listed, never attached.
            let unavailable = if report.chosen.is_some() {
                Some("not needed".to_string())
            } else {
                match try_option(&mut ebpf, option) {
                    Ok(attached) => {
                        links.extend(attached);
                        None
                    }
                    Err(why) => Some(why),
                }
            };
            if unavailable.is_none() {
                report.chosen = Some(report.options.len());
            }
            report.options.push(OptionReport {
                option: *option,
                unavailable,
            });
        }
        plans.push(report);
    }
    Ok(Loaded {
        ebpf,
        plans,
        warnings,
        ring_bytes,
        links,
    })
}

/// Attaches every program of an option; on any failure, detaches what it attached and says
/// why in plain words.
fn try_option(ebpf: &mut Ebpf, option: &HookOption) -> Result<Vec<(&'static str, Link)>, String> {
    let attachments = match option.source {
        Source::RtnetlinkMonitor => {
            return crate::netlink_monitor::available().map(|()| Vec::new())
        }
        Source::Programs(a) => a,
    };
    let mut done = Vec::new();
    for a in attachments {
        if let Some(why) = precheck(a.attach) {
            detach_all(ebpf, done);
            return Err(why);
        }
        match attach(ebpf, a) {
            Ok(link) => done.push((a.program, link)),
            Err(e) => {
                detach_all(ebpf, done);
                return Err(format!("{}: {}", a.attach, error_chain(&e)));
            }
        }
    }
    Ok(done)
}

/// Reasons known without trying, phrased for users.
fn precheck(attach: Attach) -> Option<String> {
    match attach {
        Attach::KProbe(func) | Attach::KRetProbe(func) => {
            if !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
                return Some("kprobes: not in this kernel (no kprobe PMU)".into());
            }
            if !kernel_has_function(func) {
                let hint = if func.starts_with("veth") {
                    " (is the veth module loaded? `modprobe veth` before starting tracer)"
                } else {
                    ""
                };
                return Some(format!("function {func} not in this kernel{hint}"));
            }
            None
        }
        Attach::TracePoint(..) | Attach::RawTracePoint(_) => None,
    }
}

fn kernel_has_function(func: &str) -> bool {
    // Read once: /proc/kallsyms is large and slow to generate.
    static SYMBOLS: std::sync::OnceLock<Option<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let symbols = SYMBOLS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter(|name| kprobe_targets().any(|t| t == *name))
                .map(str::to_string)
                .collect(),
        )
    });
    // Cannot tell: let the attach decide.
    symbols.as_ref().is_none_or(|s| s.contains(func))
}

/// Every kernel function a plan probes.
fn kprobe_targets() -> impl Iterator<Item = &'static str> {
    PLANS
        .iter()
        .flat_map(|p| p.options)
        .filter_map(|o| match o.source {
            Source::Programs(list) => Some(list),
            Source::RtnetlinkMonitor => None,
        })
        .flatten()
        .filter_map(|a| match a.attach {
            Attach::KProbe(f) | Attach::KRetProbe(f) => Some(f),
            Attach::TracePoint(..) | Attach::RawTracePoint(_) => None,
        })
}

enum Link {
    TracePoint(TracePointLinkId),
    RawTracePoint(RawTracePointLinkId),
    KProbe(KProbeLinkId),
}

fn attach(ebpf: &mut Ebpf, a: &Attachment) -> anyhow::Result<Link> {
    let prog = ebpf
        .program_mut(a.program)
        .with_context(|| format!("program {} is not in the object", a.program))?;
    Ok(match a.attach {
        Attach::TracePoint(category, name) => {
            let tp: &mut TracePoint = prog.try_into()?;
            load_once(tp.load())?;
            Link::TracePoint(tp.attach(category, name)?)
        }
        Attach::RawTracePoint(name) => {
            let tp: &mut RawTracePoint = prog.try_into()?;
            load_once(tp.load())?;
            Link::RawTracePoint(tp.attach(name)?)
        }
        Attach::KProbe(func) | Attach::KRetProbe(func) => {
            let kp: &mut KProbe = prog.try_into()?;
            load_once(kp.load())?;
            Link::KProbe(kp.attach(func, 0)?)
        }
    })
}

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
fn detach_all(ebpf: &mut Ebpf, links: Vec<(&'static str, Link)>) {
    drop(take_links(ebpf, links));
}

/// Detaches every link at once. Each detach waits for an RCU grace period in the kernel
/// (about 70 ms here), so one after another 30 of them took 2 s at every exit; dropped
/// from parallel threads the waits overlap.
fn detach_in_parallel(ebpf: &mut Ebpf, links: Vec<(&'static str, Link)>) {
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
fn detach_after_exit() -> bool {
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

/// A program shared by several hooks is loaded by the first one.
fn load_once(r: Result<(), ProgramError>) -> Result<(), ProgramError> {
    match r {
        Err(ProgramError::AlreadyLoaded) => Ok(()),
        other => other,
    }
}

/// `a: b: c` on one line, for reports.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        let text = cause.to_string();
        // The verifier log is long; its last lines say why.
        let text = if text.lines().count() > 6 {
            let lines: Vec<&str> = text.lines().collect();
            format!("... {}", lines[lines.len() - 4..].join(" | "))
        } else {
            text.replace('\n', " | ")
        };
        s.push_str(&text);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_are_checked() {
        assert_eq!(check_ring_bytes(1 << 24).unwrap(), 1 << 24);
        assert_eq!(check_ring_bytes(4096).unwrap(), 4096);
        for bad in [0, 1, 4095, 5000, 3 << 20, 1 << 31] {
            let err = check_ring_bytes(bad).unwrap_err().to_string();
            assert!(err.contains("power of two"), "{err}");
        }
    }

    /// Every event kind has a plan; in each option, exit programs attach before entry ones.
    #[test]
    fn plans_cover_every_kind_and_attach_exits_first() {
        for kind in tracer_common::EventKind::ALL {
            assert!(
                PLANS.iter().any(|p| p.kinds == kind.name()),
                "no plan for {kind:?}"
            );
        }
        for plan in PLANS {
            for option in plan.options {
                let Source::Programs(list) = option.source else {
                    continue;
                };
                let first_entry = list
                    .iter()
                    .position(|a| a.program.contains("enter") || a.program.ends_with("_entry"));
                if let Some(i) = first_entry {
                    assert!(
                        list[i..]
                            .iter()
                            .all(|a| a.program.contains("enter") || a.program.ends_with("_entry")),
                        "{}: an exit attaches after an entry",
                        option.name
                    );
                    assert!(i > 0, "{}: no exit program", option.name);
                }
            }
        }
    }

    /// The embedded object holds every program the plans name.
    #[test]
    fn object_has_every_program() {
        let text = String::from_utf8_lossy(OBJECT);
        for plan in PLANS {
            for option in plan.options {
                if let Source::Programs(list) = option.source {
                    for a in list {
                        assert!(text.contains(a.program), "{} not in the object", a.program);
                    }
                }
            }
        }
    }
}
