//! The container's init: the cloned copy of a single-threaded `tracer run` (as crun's), or
//! where other threads run, `tracer` re-executed inside the new namespaces (as runc's
//! `init`), so that all setup runs in a single-threaded process. It sets the container up,
//! then `exec`s the user's command, which becomes PID 1.

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

/// The re-executed init (`tracer __init DIR`): its configuration from the state directory.
/// Never returns on success (the command replaces it).
pub fn main(state_dir: &Path) -> ! {
    fail(
        default_signals()
            .and_then(|()| mark_error_pipe())
            .and_then(|()| setup(&ContainerConfig::read(state_dir)?)),
    )
}

/// The init as the cloned copy of a single-threaded `tracer run` (no exec of its own): the
/// parent's configuration as it is; first its signal handlers (copies of the parent's, on
/// descriptors about to close) back to the defaults. Never returns on success.
pub fn run_cloned(config: &ContainerConfig) -> ! {
    fail(
        default_signals()
            .and_then(|()| close_on_exec_fds())
            .and_then(|()| mark_error_pipe())
            .and_then(|()| setup(config)),
    )
}

/// Closes what an exec would (every close-on-exec descriptor): the parent's runtime, its
/// ends of the pipes (the sync pipe's end-of-file says the parent died).
fn close_on_exec_fds() -> anyhow::Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .context("listing descriptors")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        let cloexec = fcntl::fcntl(fd, fcntl::FcntlArg::F_GETFD).is_ok_and(|f| {
            fcntl::FdFlag::from_bits_truncate(f).contains(fcntl::FdFlag::FD_CLOEXEC)
        });
        if cloexec {
            let _ = nix::unistd::close(fd);
        }
    }
    Ok(())
}

/// Reports a setup failure on the error pipe and exits: without running exit handlers or
/// flushing buffers (a cloned init holds copies of the parent's).
fn fail(result: anyhow::Result<Infallible>) -> ! {
    let err = match result {
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
    // SAFETY: ends this process at once, which is all that is left to do.
    unsafe { libc::_exit(code) }
}

/// The error pipe closes on the command's exec: end-of-file tells the parent it started.
fn mark_error_pipe() -> anyhow::Result<()> {
    fcntl::fcntl(ERR_FD, fcntl::FcntlArg::F_SETFD(fcntl::FdFlag::FD_CLOEXEC))
        .context("error pipe")?;
    Ok(())
}

/// Every signal to its default action and none blocked, as a container's first process
/// expects (runc and crun do the same): neither `tracer`'s handlers nor the signals it
/// ignores (SIGPIPE, as every Rust program; an exec keeps what is ignored) may reach the
/// command. By rt_sigaction itself: glibc refuses to touch the two signals it keeps for
/// its threads.
fn default_signals() -> anyhow::Result<()> {
    /// The kernel's `struct sigaction` on 64-bit x86 and arm.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a complete kernel sigaction for the default action (which needs no
        // restorer), the kernel's signal set size, no old action asked for.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &raw const default,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("resetting signal {sig}"));
        }
    }
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .context("unblocking signals")?;
    Ok(())
}

fn setup(config: &ContainerConfig) -> anyhow::Result<Infallible> {
    wait_for_parent()?;
    // Now in its cgroup: a cgroup namespace made here has it as root.
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare(CLONE_NEWCGROUP)")?;
    if config.own_netns {
        network::configure_inside(config.network.as_ref())?;
    }
    nix::unistd::sethostname(&config.hostname).context("sethostname")?;
    rootfs::setup(&Real, &config.rootfs)?;
    nix::unistd::chdir(config.cwd.as_str()).with_context(|| format!("chdir {}", config.cwd))?;
    if config.terminal {
        super::console::attach_inside()?;
    }
    let program = resolve(config)?;
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
        // Raw syscalls: glibc's wrappers would signal the threads a cloned init's parent
        // once had (its copy of glibc does not know they are not here).
        raw_id_call("setgroups", libc::SYS_setgroups, [0, 0, 0])?;
        let (uid, gid) = (config.uid as libc::c_long, config.gid as libc::c_long);
        raw_id_call("setresgid", libc::SYS_setresgid, [gid, gid, gid])?;
        raw_id_call("setresuid", libc::SYS_setresuid, [uid, uid, uid])?;
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

/// One of the id-changing syscalls, for this thread (and process) only.
fn raw_id_call(name: &str, nr: libc::c_long, args: [libc::c_long; 3]) -> anyhow::Result<()> {
    // SAFETY: setgroups(0, NULL), setresgid and setresuid take plain integers here.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context(name.to_string());
    }
    Ok(())
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
