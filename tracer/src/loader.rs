//! Loads the embedded kernel programs, hands them the kernel layout, and attaches every hook.
//! A hook that cannot attach is reported and skipped: it never stops the others.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use aya::{
    programs::{ProgramError, RawTracePoint, TracePoint},
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
}

impl fmt::Display for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attach::TracePoint(c, n) => write!(f, "tracepoint {c}:{n}"),
            Attach::RawTracePoint(n) => write!(f, "raw_tracepoint {n}"),
        }
    }
}

/// One attachment: a program and where it goes.
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    pub program: &'static str,
    pub attach: Attach,
    /// The event kinds this hook contributes to.
    pub kinds: &'static str,
}

const fn tp(program: &'static str, name: &'static str, kinds: &'static str) -> Hook {
    Hook {
        program,
        attach: Attach::TracePoint("syscalls", name),
        kinds,
    }
}

/// Every hook, in attach order: exits before entries, so no parked record misses its exit.
pub const HOOKS: &[Hook] = &[
    tp("sys_exit_exec", "sys_exit_execve", "exec"),
    tp("sys_exit_exec", "sys_exit_execveat", "exec"),
    tp("sys_exit_mount_family", "sys_exit_mount", "mount"),
    tp("sys_exit_mount_family", "sys_exit_umount", "umount"),
    tp("sys_exit_mount_family", "sys_exit_pivot_root", "pivot_root"),
    tp("sys_exit_mount_family", "sys_exit_fsopen", "fsopen"),
    tp("sys_exit_mount_family", "sys_exit_fsconfig", "fsconfig"),
    tp("sys_exit_mount_family", "sys_exit_fsmount", "fsmount"),
    tp("sys_exit_mount_family", "sys_exit_move_mount", "move_mount"),
    tp("sys_exit_mount_family", "sys_exit_open_tree", "open_tree"),
    tp(
        "sys_exit_mount_family",
        "sys_exit_mount_setattr",
        "mount_setattr",
    ),
    tp("sys_enter_execve", "sys_enter_execve", "exec"),
    tp("sys_enter_execveat", "sys_enter_execveat", "exec"),
    tp("sys_enter_mount", "sys_enter_mount", "mount"),
    tp("sys_enter_umount", "sys_enter_umount", "umount"),
    tp("sys_enter_pivot_root", "sys_enter_pivot_root", "pivot_root"),
    tp("sys_enter_fsopen", "sys_enter_fsopen", "fsopen"),
    tp("sys_enter_fsconfig", "sys_enter_fsconfig", "fsconfig"),
    tp("sys_enter_fsmount", "sys_enter_fsmount", "fsmount"),
    tp("sys_enter_move_mount", "sys_enter_move_mount", "move_mount"),
    tp("sys_enter_open_tree", "sys_enter_open_tree", "open_tree"),
    tp(
        "sys_enter_mount_setattr",
        "sys_enter_mount_setattr",
        "mount_setattr",
    ),
    Hook {
        program: "sched_process_fork",
        attach: Attach::RawTracePoint("sched_process_fork"),
        kinds: "fork",
    },
    Hook {
        program: "sched_process_exit",
        attach: Attach::TracePoint("sched", "sched_process_exit"),
        kinds: "exit",
    },
    Hook {
        program: "task_rename",
        attach: Attach::TracePoint("task", "task_rename"),
        kinds: "rename",
    },
];

/// What happened to one hook.
#[derive(Debug)]
pub struct HookReport {
    pub hook: Hook,
    pub error: Option<String>,
}

/// Loaded and attached programs, with what did and did not attach.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub hooks: Vec<HookReport>,
    /// Things that work in a degraded way (memlock, unresolved offsets).
    pub warnings: Vec<String>,
    pub ring_bytes: u32,
}

impl Loaded {
    pub fn attached(&self) -> usize {
        self.hooks.iter().filter(|h| h.error.is_none()).count()
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

/// Loads the programs with the running kernel's layout and attaches every hook.
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
    let resolved = kernel_layout::resolve(btf.as_ref(), &tracefs);
    warnings.extend(
        resolved
            .problems
            .iter()
            .map(|p| format!("kernel layout: {p}")),
    );
    let layout = resolved.layout;

    let mut ebpf = EbpfLoader::new()
        .override_global("LAYOUT", &layout, true)
        .map_max_entries("EVENTS", ring_bytes)
        .load(OBJECT)
        .context("loading the eBPF object")?;

    let mut hooks = Vec::with_capacity(HOOKS.len());
    for hook in HOOKS {
        let error = attach(&mut ebpf, hook).err().map(|e| error_chain(&e));
        hooks.push(HookReport { hook: *hook, error });
    }
    Ok(Loaded {
        ebpf,
        hooks,
        warnings,
        ring_bytes,
    })
}

fn attach(ebpf: &mut Ebpf, hook: &Hook) -> anyhow::Result<()> {
    let prog = ebpf
        .program_mut(hook.program)
        .with_context(|| format!("program {} is not in the object", hook.program))?;
    match hook.attach {
        Attach::TracePoint(category, name) => {
            let tp: &mut TracePoint = prog.try_into()?;
            load_once(tp.load())?;
            tp.attach(category, name)?;
        }
        Attach::RawTracePoint(name) => {
            let tp: &mut RawTracePoint = prog.try_into()?;
            load_once(tp.load())?;
            tp.attach(name)?;
        }
    }
    Ok(())
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

    #[test]
    fn every_program_has_a_kind_and_exits_attach_first() {
        let first_enter = HOOKS
            .iter()
            .position(|h| h.program.starts_with("sys_enter"))
            .unwrap();
        assert!(HOOKS[..first_enter]
            .iter()
            .all(|h| h.program.starts_with("sys_exit")));
        assert!(HOOKS[first_enter..]
            .iter()
            .all(|h| !h.program.starts_with("sys_exit")));
        for kind in tracer_common::EventKind::ALL {
            assert!(
                HOOKS.iter().any(|h| h.kinds == kind.name()),
                "no hook for {kind:?}"
            );
        }
    }

    /// The embedded object holds every program the hook table names.
    #[test]
    fn object_has_every_program() {
        let obj = aya_obj_names();
        for hook in HOOKS {
            assert!(obj.iter().any(|n| n == hook.program), "{}", hook.program);
        }
    }

    fn aya_obj_names() -> Vec<String> {
        // Symbol names appear verbatim in the ELF string table.
        let text = String::from_utf8_lossy(OBJECT);
        HOOKS
            .iter()
            .map(|h| h.program.to_string())
            .filter(|p| text.contains(p.as_str()))
            .collect()
    }
}
