//! Loads the embedded kernel programs, hands them the kernel layout, and attaches every hook.
//! A hook that cannot attach is reported and skipped: it never stops the others.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use aya::{
    maps::ProgramArray,
    programs::{
        kprobe::KProbeLinkId, raw_trace_point::RawTracePointLinkId, trace_point::TracePointLinkId,
        KProbe, Program, ProgramError, RawTracePoint, TracePoint,
    },
    Ebpf, EbpfLoader,
};
use tracer_common::{tail_call, EventKind, KernelLayout, DEFAULT_RING_BYTES};

use super::{
    detach::{detach_after_exit, detach_all, detach_in_parallel},
    kernel_layout,
    plans::{kprobe_targets, Attach, Attachment, HookOption, Plan, Source, PLANS},
};

/// Where tracefs is mounted when the system did not mount it.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// The kernel object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

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

    /// Not observed because this kernel does not have it at all (a syscall added later,
    /// such as `mount_setattr` before 5.12): absent by design, not a failure.
    pub fn absent(&self) -> bool {
        self.chosen.is_none()
            && !self.options.is_empty()
            && self.options.iter().all(|o| {
                o.unavailable
                    .as_deref()
                    .is_some_and(|why| why.starts_with(NO_SYSCALL))
            })
    }
}

/// How a syscall this kernel lacks is said (and recognised).
const NO_SYSCALL: &str = "syscall not in this kernel";

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
    /// Kinds observed, and kinds this kernel has (those absent by design left out).
    pub fn covered(&self) -> (usize, usize) {
        let ok = self.plans.iter().filter(|p| p.chosen.is_some()).count();
        let absent = self.plans.iter().filter(|p| p.absent()).count();
        (ok, self.plans.len() - absent)
    }

    /// The kinds this kernel has no way to produce (its syscall does not exist).
    pub fn absent(&self) -> Vec<&'static str> {
        self.plans
            .iter()
            .filter(|p| p.absent())
            .map(|p| p.plan.kind.name())
            .collect()
    }

    /// What the userspace rtnetlink monitor must report: the kinds it was chosen for.
    pub fn rtnetlink_reports(&self) -> super::netlink_monitor::Reports {
        let chose = |kind: EventKind| {
            self.plans.iter().any(|p| {
                p.plan.kind == kind
                    && matches!(p.chosen().map(|o| o.source), Some(Source::RtnetlinkMonitor))
            })
        };
        super::netlink_monitor::Reports {
            veths: chose(EventKind::Veth),
            moves: chose(EventKind::NetdevMove),
        }
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

/// aya 0.14's loader parses the kernel's whole BTF as it is made (50 M instructions, 50 ms
/// here), before `.btf(None)` can say that this object needs none: it has no CO-RE
/// relocations (its offsets come from [`kernel_layout`]; a test checks). aya parses lazily
/// since aya-rs/aya#1639, in releases that need a newer rustc than this project's. So the
/// loader is made on a thread of its own whose root directory is the BTF directory itself:
/// there the path aya opens does not exist, and it finds nothing to parse. Where that thread
/// cannot change its root, the loader is still made there, beside the rest of the start-up.
static PREPARED: std::sync::Mutex<Option<std::thread::JoinHandle<EbpfLoader<'static>>>> =
    std::sync::Mutex::new(None);

fn loader_without_btf() -> EbpfLoader<'static> {
    let mut loader = EbpfLoader::new();
    loader.btf(None);
    loader
}

/// Only on a thread of its own: it gives up sharing the process's root directory first.
fn loader_on_own_root() -> EbpfLoader<'static> {
    let own_root = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).and_then(|()| {
        nix::unistd::chroot(
            Path::new(kernel_layout::VMLINUX_BTF)
                .parent()
                .unwrap_or(Path::new("/")),
        )
    });
    if let Err(e) = own_root {
        log::debug!("the loader's thread keeps the process's root ({e}): aya parses the BTF");
    }
    loader_without_btf()
}

/// Starts making the loader that [`load`] will use.
pub fn prepare() {
    if let Ok(handle) = std::thread::Builder::new()
        .name("aya-loader".into())
        .spawn(loader_on_own_root)
    {
        *PREPARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
    }
}

/// The loader [`prepare`] made, or one made now.
fn prepared_loader() -> EbpfLoader<'static> {
    let handle = PREPARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    handle
        .and_then(|h| h.join().ok())
        .unwrap_or_else(loader_without_btf)
}

/// Loads the programs with the running kernel's layout and attaches, for every event kind,
/// the best option that works here.
pub fn load(ring_bytes: u32) -> anyhow::Result<Loaded> {
    // At debug level, when each step of the start-up ended.
    let started = std::time::Instant::now();
    let step = |what: &str| log::debug!("start-up: {what} after {:?}", started.elapsed());
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
    step("kernel layout resolved");

    if let Ok(spec) = std::env::var(kernel_layout::SKEW_ENV) {
        kernel_layout::skew(&mut layout, &spec).map_err(anyhow::Error::msg)?;
        warnings.push(format!(
            "kernel layout deliberately skewed ({}={spec}): events will be wrong",
            kernel_layout::SKEW_ENV
        ));
    }

    let mut loader = prepared_loader();
    let mut ebpf = loader
        .override_global("LAYOUT", &layout, true)
        .map_max_entries("EVENTS", ring_bytes)
        .load(OBJECT)
        .context("loading the eBPF object")?;

    step("maps made, object loaded");
    preload(&mut ebpf, &layout);
    step("programs verified");
    let mut plans = Vec::with_capacity(PLANS.len());
    let mut links = Vec::new();
    let mut report_slot_filled = false;
    for plan in &PLANS {
        let mut report = PlanReport {
            plan: *plan,
            options: Vec::new(),
            chosen: None,
        };
        for option in plan.options {
            // Once an option is chosen the rest are only listed, never attached.
            let unavailable = if report.chosen.is_some() {
                Some("not needed".to_string())
            } else if let Some(why) = missing_layout(plan.kind, option, &layout) {
                Some(why)
            } else {
                // Before its programs attach: a tail call to an empty slot counts the
                // report lost.
                if reports_by_tail_call(option) && !report_slot_filled {
                    report_slot_filled = true;
                    if let Err(e) = fill_tail_calls(&mut ebpf) {
                        warnings.push(format!(
                            "{}: id maps held at a close or an exit are counted lost, not \
                             reported",
                            error_chain(&e)
                        ));
                    }
                }
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
    step("programs attached");
    log_verifier_costs(&ebpf);
    Ok(Loaded {
        ebpf,
        plans,
        warnings,
        ring_bytes,
        links,
    })
}

/// Loads, on every CPU, the programs of the option each plan will likely use (its first one
/// that the checks without trying allow): the verifier's passes are most of attaching. A
/// program that fails to load here is loaded again, and its error reported, when attached.
fn preload(ebpf: &mut Ebpf, layout: &KernelLayout) {
    let mut wanted = std::collections::HashSet::new();
    for plan in &PLANS {
        let likely = plan.options.iter().find_map(|o| match o.source {
            Source::Programs(list)
                if missing_layout(plan.kind, o, layout).is_none()
                    && list.iter().all(|a| precheck(a.attach).is_none()) =>
            {
                Some(list)
            }
            Source::Programs(_) => None,
            Source::RtnetlinkMonitor => Some(&[][..]),
        });
        wanted.extend(likely.into_iter().flatten().map(|a| a.program));
    }
    if wanted.contains(tail_call::ID_MAP_REPORT_CALLER) {
        wanted.insert(tail_call::ID_MAP_REPORT_PROGRAM);
    }
    let mut programs: Vec<&mut Program> = ebpf
        .programs_mut()
        .filter(|(name, _)| wanted.contains(name))
        .map(|(_, p)| p)
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per = programs.len().div_ceil(cpus).max(1);
    std::thread::scope(|s| {
        for chunk in programs.chunks_mut(per) {
            s.spawn(move || {
                for p in chunk {
                    let _ = match p {
                        Program::TracePoint(p) => p.load(),
                        Program::RawTracePoint(p) => p.load(),
                        Program::KProbe(p) => p.load(),
                        _ => Ok(()),
                    };
                }
            });
        }
    });
}

/// At debug level, what each loaded program cost the verifier (kernels since 5.16 say).
fn log_verifier_costs(ebpf: &Ebpf) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let mut total = 0;
    for (name, program) in ebpf.programs() {
        if let Some(n) = program
            .info()
            .ok()
            .and_then(|i| i.verified_instruction_count())
        {
            total += n;
            log::debug!("program {name}: {n} instructions verified");
        }
    }
    log::debug!("programs: {total} instructions verified in all");
}

/// Whether an option's programs report map files by tail call: only where it is tried is
/// the report program loaded and put in its slot (with kprobes, the writes are seen where
/// they happen and nothing calls it).
fn reports_by_tail_call(option: &HookOption) -> bool {
    matches!(option.source, Source::Programs(list) if list.iter().any(|a| a.program == tail_call::ID_MAP_REPORT_CALLER))
}

/// Puts the programs others tail-call in their slots of `TAIL_CALLS`.
fn fill_tail_calls(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let name = tail_call::ID_MAP_REPORT_PROGRAM;
    let program: &mut TracePoint = ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} is not in the object"))?
        .try_into()?;
    load_once(program.load()).with_context(|| format!("loading {name}"))?;
    let fd = program.fd()?.try_clone()?;
    let mut slots =
        ProgramArray::try_from(ebpf.map_mut("TAIL_CALLS").context("no TAIL_CALLS map")?)?;
    slots.set(tail_call::ID_MAP_REPORT, &fd, 0)?;
    Ok(())
}

/// Attaches every program of an option; on any failure, detaches what it attached and says
/// why in plain words.
fn try_option(ebpf: &mut Ebpf, option: &HookOption) -> Result<Vec<(&'static str, Link)>, String> {
    let attachments = match option.source {
        Source::RtnetlinkMonitor => {
            return super::netlink_monitor::available().map(|()| Vec::new())
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

/// An option whose programs read a struct this kernel's BTF does not describe: refused
/// rather than reading at a guessed offset (5.10 has no module BTF, so veth's private
/// struct is unknown there).
fn missing_layout(kind: EventKind, option: &HookOption, layout: &KernelLayout) -> Option<String> {
    let kprobes = matches!(option.source, Source::Programs(a) if a.iter().any(|a| matches!(a.attach, Attach::KRetProbe(_))));
    let unknown = tracer_common::OFFSET_UNKNOWN;
    if kind == EventKind::IdMap
        && kprobes
        && (layout.file_private_data == unknown || layout.seq_file_private == unknown)
    {
        return Some("struct file or seq_file not in this kernel's BTF: offsets unknown".into());
    }
    (kind == EventKind::Veth && kprobes && layout.veth_priv_peer == unknown).then(|| {
        "veth's structs have no BTF on this kernel (no module BTF): offsets unknown".to_string()
    })
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
        Attach::TracePoint("syscalls", name) => {
            let syscall = name
                .strip_prefix("sys_enter_")
                .or_else(|| name.strip_prefix("sys_exit_"))
                .unwrap_or(name);
            syscall_missing(name).then(|| format!("{NO_SYSCALL} ({syscall})"))
        }
        Attach::TracePoint(..) | Attach::RawTracePoint(_) => None,
    }
}

/// Whether tracefs lists the syscall tracepoints but not `name` (mounted nowhere: unknown).
fn syscall_missing(name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(|t| Path::new(t).join("events/syscalls"))
        .find(|dir| dir.join("sys_enter_execve").exists())
        .is_some_and(|dir| !dir.join(name).exists())
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

pub(super) enum Link {
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

    /// The kernel's BTF is not handed to aya: nothing in the object would use it.
    #[test]
    fn object_has_no_btf_relocations() {
        let obj = aya_obj::Object::parse(OBJECT).unwrap();
        assert!(!obj.has_btf_relocations());
    }

    /// The embedded object holds every program the plans name.
    #[test]
    fn object_has_every_program() {
        let text = String::from_utf8_lossy(OBJECT);
        for plan in &PLANS {
            for option in plan.options {
                if let Source::Programs(list) = option.source {
                    for a in list {
                        assert!(text.contains(a.program), "{} not in the object", a.program);
                    }
                }
            }
        }
        assert!(text.contains(tail_call::ID_MAP_REPORT_PROGRAM));
    }
}
