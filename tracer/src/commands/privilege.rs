//! Privilege checks, so a user without them gets one clear line instead of an EPERM trace.

use caps::{CapSet, Capability};

/// Fails unless this process can load and attach tracing programs.
pub fn require_tracing(what: &str) -> anyhow::Result<()> {
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    let admin = has(Capability::CAP_SYS_ADMIN);
    if admin || (has(Capability::CAP_BPF) && has(Capability::CAP_PERFMON)) {
        return Ok(());
    }
    anyhow::bail!(
        "{what} needs root: loading eBPF programs requires CAP_SYS_ADMIN (or CAP_BPF and \
         CAP_PERFMON); run it with sudo"
    )
}

/// Fails unless running as root (the runtime mounts, clones namespaces, writes cgroups).
pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "{what} needs root: it creates namespaces, mounts and cgroups; run it with sudo"
        );
    }
    Ok(())
}
