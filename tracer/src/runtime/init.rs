//! The container's init: `tracer` re-executed inside the new namespaces (as runc's `init`),
//! so all setup runs in a fresh single-threaded process, then `exec`s the user's command,
//! which becomes PID 1.

use std::{
    convert::Infallible,
    ffi::CString,
    io::{Read as _, Write as _},
    os::fd::{FromRawFd as _, RawFd},
    path::Path,
    str::FromStr as _,
};

use anyhow::{bail, Context as _};
use nix::{errno::Errno, fcntl, sched::CloneFlags};

use super::{config::ContainerConfig, network, rootfs, syscalls::Real};

/// The parent writes one byte here once cgroup and network are ready (EOF: it died).
pub const SYNC_FD: RawFd = 3;
/// Setup errors go here; closed on a successful `exec` (close-on-exec), so EOF = success.
pub const ERR_FD: RawFd = 4;

/// Prefix of the error message when the command does not exist in the image.
pub const NOT_FOUND: &str = "not found: ";

/// Runs in the child. Never returns on success (the command replaces it).
pub fn main(state_dir: &Path) -> ! {
    let err = match setup(state_dir) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // SAFETY: fd 4 is the error pipe the parent set up for this process.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(ERR_FD) };
    let _ = write!(pipe, "{err:#}");
    let code = if format!("{err:#}").starts_with(NOT_FOUND) {
        127
    } else {
        125
    };
    std::process::exit(code);
}

fn setup(state_dir: &Path) -> anyhow::Result<Infallible> {
    fcntl::fcntl(ERR_FD, fcntl::FcntlArg::F_SETFD(fcntl::FdFlag::FD_CLOEXEC))
        .context("error pipe")?;
    let config = ContainerConfig::read(state_dir)?;
    wait_for_parent()?;
    // Now in its cgroup: a cgroup namespace made here has it as root.
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare(CLONE_NEWCGROUP)")?;
    if config.own_netns {
        network::loopback_up()?;
    }
    if let (true, Some(net)) = (config.own_netns, &config.network) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(network::configure_inside(net))?;
    }
    nix::unistd::sethostname(&config.hostname).context("sethostname")?;
    rootfs::setup(&Real, &config.rootfs)?;
    nix::unistd::chdir(config.cwd.as_str()).with_context(|| format!("chdir {}", config.cwd))?;
    if config.terminal {
        super::console::attach_inside()?;
    }
    let program = resolve(&config)?;
    for r in &config.rlimits {
        set_rlimit(r)?;
    }
    // Without no_new_privs a filter needs CAP_SYS_ADMIN to load: before the drop (as runc).
    if !config.no_new_privileges {
        if let Some(p) = &config.seccomp {
            super::seccomp::load(p)?;
        }
    }
    drop_capabilities(&config.capabilities)?;
    if config.gid != 0 || config.uid != 0 {
        // Capabilities other than the bounding set are cleared by the kernel on the switch
        // away from root, as for any non-root process without ambient capabilities.
        nix::unistd::setgroups(&[]).context("setgroups")?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(config.gid)).context("setgid")?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(config.uid)).context("setuid")?;
    }
    if config.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().context("no_new_privs")?;
        // Last before the command: the filter does not apply to the runtime's own setup.
        if let Some(p) = &config.seccomp {
            super::seccomp::load(p)?;
        }
    }
    let args: Vec<CString> = config
        .args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = config
        .env
        .iter()
        .map(|e| CString::new(e.as_str()))
        .collect::<Result<_, _>>()?;
    let e = nix::unistd::execve(&program, &args, &env).unwrap_err();
    bail!("exec {}: {e}", program.to_string_lossy())
}

fn set_rlimit(r: &super::config::Rlimit) -> anyhow::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    let resource = match r.resource.as_str() {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        other => bail!("unknown rlimit {other}"),
    };
    setrlimit(resource, r.soft, r.hard).with_context(|| format!("setrlimit {}", r.resource))
}

fn wait_for_parent() -> anyhow::Result<()> {
    // SAFETY: fd 3 is the sync pipe the parent set up for this process; owned from here.
    let mut sync = unsafe { std::fs::File::from_raw_fd(SYNC_FD) };
    let mut byte = [0u8; 1];
    match sync.read(&mut byte) {
        Ok(1) => Ok(()),
        _ => bail!("tracer run went away before the container was ready"),
    }
}

/// The command as a path in the container: as given when it has a `/`, else looked up in
/// the container's `PATH`.
fn resolve(config: &ContainerConfig) -> anyhow::Result<CString> {
    let cmd = config.args.first().context("no command")?;
    let found = if cmd.contains('/') {
        Path::new(cmd).exists().then(|| cmd.clone())
    } else {
        let path = config
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/bin:/bin");
        path.split(':')
            .map(|d| format!("{}/{cmd}", d.trim_end_matches('/')))
            .find(|p| Path::new(p).is_file())
    };
    match found {
        Some(p) => Ok(CString::new(p)?),
        None => bail!("{NOT_FOUND}{cmd} is not in the image"),
    }
}

/// Keeps exactly `keep` in every set: bounding first, while CAP_SETPCAP is still held.
fn drop_capabilities(keep: &[String]) -> anyhow::Result<()> {
    use caps::{CapSet, Capability, CapsHashSet};
    let keep: CapsHashSet = keep
        .iter()
        .map(|n| Capability::from_str(n).with_context(|| format!("unknown capability {n}")))
        .collect::<anyhow::Result<_>>()?;
    for cap in caps::all() {
        if !keep.contains(&cap) {
            // Capabilities this kernel does not know fail with EINVAL: nothing to drop.
            match caps::drop(None, CapSet::Bounding, cap) {
                Ok(()) => {}
                Err(e) if caps::has_cap(None, CapSet::Bounding, cap).is_err() => drop(e),
                Err(e) => return Err(anyhow::anyhow!("dropping {cap} from the bounding set: {e}")),
            }
        }
    }
    caps::clear(None, CapSet::Ambient).ok();
    caps::set(None, CapSet::Inheritable, &keep).context("inheritable capabilities")?;
    caps::set(None, CapSet::Effective, &keep).context("effective capabilities")?;
    caps::set(None, CapSet::Permitted, &keep).context("permitted capabilities")?;
    let _ = Errno::last();
    Ok(())
}
