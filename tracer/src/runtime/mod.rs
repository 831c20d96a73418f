//! The built-in container runtime behind `tracer run`: a real (minimal) runtime in the sense
//! of runc. The launch, in order, each step visible to the tracer:
//! state dir → overlay mount (image) → cgroup → veth on the bridge → clone into new mnt, uts,
//! ipc, pid, net namespaces, born into the cgroup → re-exec as init → v1 cgroup join (for
//! limits), veth moved in → init: cgroup
//! namespace, eth0, hostname, rootfs mounts, pivot_root, masked paths, capabilities,
//! no_new_privs → exec of the command. Everything is released on every path.

pub mod bundle;
pub mod cgroup;
pub mod config;
pub mod console;
pub mod huge_pages;
pub mod image;
pub mod init;
pub mod naming;
pub mod network;
pub mod oci_image;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod syscalls;

use std::{
    ffi::CString,
    fs,
    io::Read as _,
    os::fd::{AsRawFd as _, OwnedFd, RawFd},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use nix::{
    sched::CloneFlags,
    sys::{
        signal::{kill, Signal},
        wait::{waitpid, WaitStatus},
    },
    unistd::Pid,
};
use tokio::signal::unix::{signal, SignalKind};

use self::{
    cgroup::Limits,
    config::{ContainerConfig, NetConfig, DOCKER_DEFAULT_CAPS},
    naming::STATE_ROOT,
    rootfs::RootfsPlan,
    state::State,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetMode {
    /// A veth pair on the tracer0 bridge (10.89.0.0/24), eth0 inside.
    Bridge,
    /// Its own network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The container id (see [`new_id`]).
    pub id: String,
    /// The command; empty with a bundle means the bundle's own.
    pub command: Vec<String>,
    /// An OCI runtime bundle directory.
    pub bundle: Option<PathBuf>,
    /// An OCI image layout, `DIR[:TAG]`.
    pub image: Option<String>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `None`: bridge, or with a bundle what its namespaces say (own netns: loopback only).
    pub net: Option<NetMode>,
    pub memory: Option<u64>,
    pub pids_limit: Option<u64>,
    pub keep: bool,
    pub rootfs: Option<PathBuf>,
    /// `-t`: a pseudo-terminal for the container, the user's terminal in raw mode.
    pub terminal: bool,
    /// `--seccomp`; `None`: Docker's default profile, or with a bundle what it says.
    pub seccomp: Option<seccomp::Choice>,
    /// `--userns`: the container's root mapped to an unprivileged host range.
    pub userns: Option<UserNs>,
}

/// What the launch produced.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    pub name: String,
    /// The container's init (the command), in the host's pid namespace.
    pub pid: u32,
    /// `tracer run`'s exit code: the command's, or 128+N for a signal.
    pub exit_code: i32,
}

/// `--userns auto|HOSTID[:COUNT]`: a user namespace whose ids 0.. are host ids HOSTID..
/// (the same for groups); `auto` takes root's range in `/etc/subuid` and `/etc/subgid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserNs {
    Auto,
    Range { host: u32, count: u32 },
}

impl std::str::FromStr for UserNs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(UserNs::Auto);
        }
        let (host, count) = s.split_once(':').unwrap_or((s, "65536"));
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{s:?}: give auto or HOSTID[:COUNT] (100000:65536)"))
        };
        let (host, count) = (num(host)?, num(count)?);
        if host == 0 || count == 0 {
            return Err(format!(
                "{s:?}: the host range must not start at 0 or be empty"
            ));
        }
        Ok(UserNs::Range { host, count })
    }
}

#[cfg(test)]
mod userns_tests {
    use super::*;

    #[test]
    fn userns_ranges_parse() {
        assert_eq!("auto".parse(), Ok(UserNs::Auto));
        assert_eq!(
            "100000".parse(),
            Ok(UserNs::Range {
                host: 100_000,
                count: 65536
            })
        );
        assert_eq!(
            "5000:10".parse(),
            Ok(UserNs::Range {
                host: 5000,
                count: 10
            })
        );
        for bad in ["0:10", "5000:0", "x", "1:2:3", ""] {
            assert!(bad.parse::<UserNs>().is_err(), "{bad}");
        }
        let maps = IdMaps::of(UserNs::Range { host: 7, count: 3 }).unwrap();
        assert_eq!(IdMaps::text(&maps.uid), "0 7 3\n");
    }
}

/// The maps a user namespace gets: `(inside, host, count)` lines for uids and gids.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMaps {
    pub uid: Vec<(u32, u32, u32)>,
    pub gid: Vec<(u32, u32, u32)>,
}

impl IdMaps {
    /// `--userns`: root's subordinate range for `auto`.
    fn of(userns: UserNs) -> anyhow::Result<Self> {
        let range = |file: &str| -> anyhow::Result<(u32, u32)> {
            match userns {
                UserNs::Range { host, count } => Ok((host, count)),
                UserNs::Auto => subordinate(file),
            }
        };
        let (uid, gid) = (range("/etc/subuid")?, range("/etc/subgid")?);
        Ok(Self {
            uid: vec![(0, uid.0, uid.1)],
            gid: vec![(0, gid.0, gid.1)],
        })
    }

    fn text(lines: &[(u32, u32, u32)]) -> String {
        lines
            .iter()
            .map(|(i, h, n)| format!("{i} {h} {n}\n"))
            .collect()
    }

    /// Writes the maps of `pid`'s user namespace (the parent's part, as runc's).
    fn write(&self, pid: u32) -> anyhow::Result<()> {
        for (file, lines) in [("uid_map", &self.uid), ("gid_map", &self.gid)] {
            let path = format!("/proc/{pid}/{file}");
            fs::write(&path, Self::text(lines)).with_context(|| format!("writing {path}"))?;
        }
        Ok(())
    }
}

/// Root's first range in `/etc/subuid` or `/etc/subgid` (`root:100000:65536`).
fn subordinate(file: &str) -> anyhow::Result<(u32, u32)> {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            (who == "root" || who == "0")
                .then(|| Some((start.parse().ok()?, count.parse().ok()?)))?
        })
        .next()
        .with_context(|| {
            format!("--userns auto: no range for root in {file}: give --userns HOSTID[:COUNT]")
        })
}

/// A fresh container id: 12 hex digits.
pub fn new_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 6];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs a container to completion and releases everything it used.
pub async fn run(opts: &RunOptions) -> anyhow::Result<Outcome> {
    if opts.command.is_empty() && opts.bundle.is_none() && opts.image.is_none() {
        bail!("no command given (tracer run [OPTIONS] -- CMD [ARGS...])");
    }
    // Checked before anything is created: bad input leaves nothing behind.
    if let Some(dir) = &opts.rootfs {
        image::rootfs_dir(dir)?;
    }
    let bundle = match &opts.bundle {
        Some(dir) => {
            let b = bundle::load(dir)?;
            for field in &b.unsupported {
                eprintln!("tracer: warning: bundle field not applied: {field}");
            }
            Some(b)
        }
        None => None,
    };
    let image = match &opts.image {
        Some(spec) => Some(oci_image::open(spec, Path::new(oci_image::LAYER_CACHE))?),
        None => None,
    };
    if image.as_ref().is_some_and(|i| i.args.is_empty()) && opts.command.is_empty() {
        bail!(
            "image {} has no command: give one after --",
            opts.image.as_deref().unwrap_or_default()
        );
    }
    for id in state::cleanup_stale().await? {
        log::warn!("cleaned up after container {id}, whose tracer run had died");
    }
    if opts.id.len() < 8 || !opts.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("container id {:?} is not 8 or more hex digits", opts.id);
    }
    let mut st = State {
        name: opts.name.clone().unwrap_or_else(|| opts.id.clone()),
        id: opts.id.clone(),
        owner_pid: std::process::id(),
        ..State::default()
    };
    st.create()?;
    let result = launch(opts, bundle.as_ref(), image.as_ref(), &mut st).await;
    let cleanup = st.release(opts.keep).await;
    match (result, cleanup) {
        (Ok(outcome), Ok(())) => Ok(outcome),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(c)) => Err(e.context(format!("and then: {c:#}"))),
    }
}

async fn launch(
    opts: &RunOptions,
    bundle: Option<&bundle::Bundle>,
    oci: Option<&oci_image::OciImage>,
    st: &mut State,
) -> anyhow::Result<Outcome> {
    let image = match (bundle, oci, &opts.rootfs) {
        (Some(b), _, _) => image::rootfs_dir(&b.rootfs)?,
        (None, Some(i), _) => image::Image {
            lowerdirs: i.lowerdirs.clone(),
            mounts: Vec::new(),
            default_path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        },
        (None, None, Some(r)) => image::rootfs_dir(r)?,
        (None, None, None) => image::host(Path::new(image::SKELETON_CACHE))?,
    };
    let net = opts.net.unwrap_or(match bundle {
        Some(b) if b.own_netns => NetMode::None,
        Some(_) => NetMode::Host,
        None => NetMode::Bridge,
    });
    let merged = mount_overlay(st, &image)?;
    st.cgroup.create(
        &st.id,
        Limits {
            memory: opts.memory,
            pids: opts.pids_limit,
        },
    )?;
    st.save()?;
    let network = if net == NetMode::Bridge {
        Some(bridge_veth(st).await?)
    } else {
        None
    };
    let config = container_config(opts, bundle, oci, st, image, merged, net, network)?;
    start_and_wait(st, &config).await
}

/// The image as an overlay: lower = its layers, upper and work in the state dir.
fn mount_overlay(st: &mut State, image: &image::Image) -> anyhow::Result<PathBuf> {
    let dir = st.dir();
    let merged = dir.join("merged");
    for d in ["upper", "work", "merged"] {
        fs::create_dir_all(dir.join(d))?;
    }
    let lower: Vec<String> = image
        .lowerdirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .context("mounting the overlay rootfs")?;
    st.overlay = Some(merged.clone());
    st.save()?;
    Ok(merged)
}

/// An address and a veth pair on the bridge, each recorded before it is made.
async fn bridge_veth(st: &mut State) -> anyhow::Result<NetConfig> {
    let ipam = network::Ipam::new(Path::new(STATE_ROOT));
    let address = ipam.allocate(&st.id)?;
    st.address = Some(address);
    let [host_end, peer] = naming::veth_names(&st.id);
    st.veth = Some(host_end.clone());
    st.save()?;
    network::create_veth(&host_end, &peer).await?;
    Ok(NetConfig {
        peer,
        address,
        prefix: network::PREFIX,
        gateway: network::GATEWAY,
    })
}

/// The environment: the bundle's, the image's or the defaults, then `--env` on top.
fn container_env(
    opts: &RunOptions,
    bundle: Option<&bundle::Bundle>,
    oci: Option<&oci_image::OciImage>,
    default_path: &str,
    hostname: &str,
) -> anyhow::Result<Vec<String>> {
    let mut env = match (bundle, oci) {
        (Some(b), _) => b.env.clone(),
        (None, Some(i)) => {
            let mut env = i.env.clone();
            if !env.iter().any(|e| e.starts_with("PATH=")) {
                env.push(format!("PATH={default_path}"));
            }
            env.push(format!("HOSTNAME={hostname}"));
            env
        }
        (None, None) => {
            let mut env = vec![
                format!("PATH={default_path}"),
                format!("HOSTNAME={hostname}"),
                "HOME=/root".to_string(),
            ];
            if std::env::var_os("TERM").is_some() {
                env.push("TERM=xterm".into());
            }
            env
        }
    };
    for e in &opts.env {
        if !e.contains('=') {
            bail!("--env {e}: expected KEY=VALUE");
        }
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|old| !old.starts_with(&format!("{key}=")));
        env.push(e.clone());
    }
    Ok(env)
}

/// What the init needs to set the container up: a bundle says exactly what it wants;
/// otherwise Docker's defaults.
#[allow(clippy::too_many_arguments)]
fn container_config(
    opts: &RunOptions,
    bundle: Option<&bundle::Bundle>,
    oci: Option<&oci_image::OciImage>,
    st: &State,
    image: image::Image,
    merged: PathBuf,
    net: NetMode,
    network: Option<NetConfig>,
) -> anyhow::Result<ContainerConfig> {
    let mut mounts = match bundle {
        Some(b) => b.mounts.clone(),
        None => rootfs::default_mounts(),
    };
    mounts.extend(image.mounts);
    let hostname = opts
        .hostname
        .clone()
        .or_else(|| bundle.and_then(|b| b.hostname.clone()))
        .unwrap_or_else(|| naming::short_id(&st.id).to_string());
    let env = container_env(opts, bundle, oci, &image.default_path, &hostname)?;
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let capabilities =
        bundle.map_or_else(|| strings(DOCKER_DEFAULT_CAPS), |b| b.capabilities.clone());
    let id_maps = match (opts.userns, bundle) {
        (Some(u), _) => Some(IdMaps::of(u)?),
        (None, Some(b)) => b.id_maps.clone(),
        (None, None) => None,
    };
    if id_maps.is_some() && net == NetMode::Host {
        // sysfs can only be mounted from a network namespace the user namespace owns.
        bail!("--userns needs the container's own network namespace (--net bridge or none)");
    }
    Ok(ContainerConfig {
        id: st.id.clone(),
        args: match (bundle, oci) {
            (Some(b), _) if opts.command.is_empty() => b.args.clone(),
            (_, Some(i)) if opts.command.is_empty() => i.args.clone(),
            _ => opts.command.clone(),
        },
        env,
        cwd: opts
            .workdir
            .clone()
            .or_else(|| bundle.map(|b| b.cwd.clone()))
            .or_else(|| oci.and_then(|i| i.workdir.clone()))
            .unwrap_or_else(|| "/".into()),
        hostname,
        rootfs: RootfsPlan {
            root: merged,
            mounts,
            masked: bundle.map_or_else(|| strings(rootfs::MASKED_PATHS), |b| b.masked.clone()),
            readonly: bundle
                .map_or_else(|| strings(rootfs::READONLY_PATHS), |b| b.readonly.clone()),
            readonly_root: bundle.is_some_and(|b| b.readonly_root),
            userns: id_maps.is_some(),
        },
        id_maps,
        own_netns: net != NetMode::Host,
        network,
        no_new_privileges: bundle.is_none_or(|b| b.no_new_privileges),
        seccomp: seccomp_for(opts, bundle, &capabilities)?,
        capabilities,
        rlimits: bundle.map(|b| b.rlimits.clone()).unwrap_or_default(),
        uid: bundle.map_or(0, |b| b.uid),
        gid: bundle.map_or(0, |b| b.gid),
        terminal: opts.terminal || bundle.is_some_and(|b| b.terminal),
    })
}

/// The seccomp profile the container gets, resolved for its capabilities: `--seccomp`, else
/// a bundle's `linux.seccomp` (none when it has none, as runc), else Docker's default.
fn seccomp_for(
    opts: &RunOptions,
    bundle: Option<&bundle::Bundle>,
    caps: &[String],
) -> anyhow::Result<Option<seccomp::Profile>> {
    let profile = match (&opts.seccomp, bundle) {
        (Some(seccomp::Choice::Unconfined), _) => None,
        (Some(seccomp::Choice::Default), _) | (None, None) => Some(seccomp::docker_default()),
        (Some(seccomp::Choice::File(path)), _) => Some(seccomp::read(path)?),
        (None, Some(b)) => b.seccomp.clone(),
    };
    Ok(profile.map(|p| seccomp::resolve(&p, caps)))
}

/// Clones the init into its namespaces, puts it in the cgroup and moves its veth end in,
/// lets it go, and waits for it (passing signals on).
async fn start_and_wait(st: &mut State, config: &ContainerConfig) -> anyhow::Result<Outcome> {
    let dir = st.dir();
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if config.own_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // With a user namespace the others are made in it, and owned by it.
    if config.id_maps.is_some() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // The init sends the terminal it makes over this socket.
    let console = config
        .terminal
        .then(|| {
            nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
        })
        .transpose()
        .context("the console socket")?;
    let v2_dir = st.cgroup.v2_dir().map(Path::to_path_buf);
    let (child, sync_w, err_r, born_in_cgroup) = spawn_init(
        &dir,
        config,
        flags,
        console.as_ref().map(|(_, inner)| inner.as_raw_fd()),
        v2_dir.as_deref(),
    )?;
    let born_in = v2_dir.filter(|_| born_in_cgroup);
    if let Some(maps) = &config.id_maps {
        // Its maps before it execs the init: an exec with no uid mapped would drop its
        // capabilities in the namespace.
        if let Err(e) = maps.write(child.as_raw() as u32) {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(e);
        }
        let _ = nix::unistd::write(&sync_w, b"m");
    }
    let console = console.map(|(outer, _)| outer);
    st.init_pid = Some(child.as_raw() as u32);
    st.save()?;
    let ready = async {
        st.cgroup.add(child.as_raw() as u32, born_in.as_deref())?;
        if let (Some(net), Some(_)) = (&config.network, &st.veth) {
            network::move_to_netns(&net.peer, child.as_raw() as u32).await?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = ready {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(e);
    }
    // Go: one byte on the sync pipe. If the init already died, its report says why.
    let _ = nix::unistd::write(&sync_w, b"g");
    drop(sync_w);

    let tty = match console {
        Some(socket) => attach_terminal(socket).await?,
        None => None,
    };
    let status = wait_forwarding_signals(child, tty.as_ref().map(|t| t.2)).await?;
    if let Some((raw, out, _)) = tty {
        // The last of its output, then the user's terminal back.
        let _ = tokio::task::spawn_blocking(move || out.join()).await;
        drop(raw);
    }
    outcome(st, child, status, err_r)
}

/// The container's terminal, once its init sends it: the user's in raw mode until the end,
/// whatever ends it, bytes copied both ways (the thread that ends with its output), and the
/// fd its size is set on.
async fn attach_terminal(
    socket: OwnedFd,
) -> anyhow::Result<Option<(console::RawTerminal, std::thread::JoinHandle<()>, RawFd)>> {
    let Some(master) = tokio::task::spawn_blocking(move || console::receive(&socket)).await??
    else {
        return Ok(None);
    };
    let raw = console::RawTerminal::enter()?;
    console::copy_size(master.as_raw_fd());
    let size_fd = master.as_raw_fd();
    let out = console::relay(master)?;
    Ok(Some((raw, out, size_fd)))
}

/// What the init's end says: its exit code, or the setup failure it reported.
fn outcome(st: &State, child: Pid, status: WaitStatus, err_r: OwnedFd) -> anyhow::Result<Outcome> {
    // The init reports setup failures (and a missing command) on the error pipe.
    let mut report = String::new();
    fs::File::from(err_r).read_to_string(&mut report)?;
    if !report.is_empty() {
        let code = match status {
            WaitStatus::Exited(_, c) => c,
            _ => 125,
        };
        let message = match report.strip_prefix(init::NOT_FOUND) {
            Some(what) => what.to_string(),
            None => format!("container setup failed: {report}"),
        };
        return Err(SetupFailed { code, message }.into());
    }
    let exit_code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => bail!("unexpected wait status {other:?}"),
    };
    Ok(Outcome {
        id: st.id.clone(),
        name: st.name.clone(),
        pid: child.as_raw() as u32,
        exit_code,
    })
}

/// The container could not start its command; `code` is the exit code to use (127: command
/// not found, as shells and Docker do; 125: any other setup failure).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SetupFailed {
    pub code: i32,
    pub message: String,
}

/// Clones the init, born into the cgroup2 directory `cgroup` where the kernel can (clone3
/// with `CLONE_INTO_CGROUP`, Linux 5.7): then it is not moved into that one later, which
/// costs an RCU grace period (v1 hierarchies, used for limits, still move it). When `tracer
/// run` has no other thread at that moment (so far always, traced or not), the copy sets
/// the container up itself; otherwise it execs `tracer __init DIR`, which reads `config`
/// from the state directory (after a clone only async-signal-safe calls are safe while
/// other threads may hold locks; the exec and the fresh process's start were a sixth of a
/// container's start). Returns its
/// pid, the write end of its sync pipe, the read end of its error pipe, and whether it was
/// born into `cgroup`.
fn spawn_init(
    dir: &Path,
    config: &ContainerConfig,
    flags: CloneFlags,
    console: Option<RawFd>,
    cgroup: Option<&Path>,
) -> anyhow::Result<(Pid, OwnedFd, OwnedFd, bool)> {
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let exe = CString::new("/proc/self/exe")?;
    let args = [
        CString::new("tracer")?,
        CString::new("__init")?,
        CString::new(dir.as_os_str().as_encoded_bytes())?,
    ];
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let cgroup_fd = cgroup
        .and_then(|d| std::fs::File::open(d).ok())
        .map(OwnedFd::from);
    // TRACER_INIT_EXEC: the exec path even so (the tests hold both paths to one result).
    let cloned = single_threaded() && std::env::var_os("TRACER_INIT_EXEC").is_none();
    log::debug!(
        "the init {}",
        if cloned {
            "sets the container up in the cloned copy"
        } else {
            "execs tracer __init (other threads run)"
        }
    );
    if !cloned {
        config.write(dir)?;
    }
    let mut child = InitChild {
        exe: &exe,
        argv: &argv,
        sync_fd: sync_r.as_raw_fd(),
        err_fd: err_w.as_raw_fd(),
        console,
        userns: flags.contains(CloneFlags::CLONE_NEWUSER),
        config: cloned.then_some(config),
    };
    let born = cgroup_fd
        .as_ref()
        .and_then(|fd| clone_into_cgroup(&child, flags, fd));
    let (pid, born_in_cgroup) = match born {
        Some(pid) => (pid.context("clone into new namespaces")?, true),
        None => {
            // The old clone runs its child on a small stack of its own: only the exec.
            if child.config.take().is_some() {
                config.write(dir)?;
            }
            let mut stack = vec![0u8; 256 * 1024];
            // SAFETY: the callback only dup2s and execs (see `InitChild::run`).
            let pid = unsafe {
                nix::sched::clone(
                    Box::new(|| child.run()),
                    &mut stack,
                    flags,
                    Some(libc::SIGCHLD),
                )
            }
            .context("clone into new namespaces")?;
            (pid, false)
        }
    };
    drop(sync_r);
    drop(err_w);
    Ok((pid, sync_w, err_r, born_in_cgroup))
}

/// Whether this process has no thread but the calling one (then a fork-like copy of it is
/// an ordinary process, free to run anything).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// What the cloned child does before it becomes the init: it duplicates fds (and, in a user
/// namespace, becomes root there), then sets the container up itself when the parent had
/// no other thread (`config`), or `exec`s. Nothing else is safe between `clone` and `exec`
/// in a multi-threaded parent, so every argument is prepared before.
struct InitChild<'a> {
    exe: &'a CString,
    argv: &'a [*const libc::c_char],
    sync_fd: RawFd,
    err_fd: RawFd,
    console: Option<RawFd>,
    userns: bool,
    config: Option<&'a ContainerConfig>,
}

impl InitChild<'_> {
    /// In the child: its pipes on their numbers, and exec. Returns only on failure.
    fn run(&self) -> isize {
        huge_pages::restore_in_child();
        // SAFETY: async-signal-safe calls only, on data prepared before the clone.
        unsafe {
            if libc::dup2(self.sync_fd, init::SYNC_FD) < 0
                || libc::dup2(self.err_fd, init::ERR_FD) < 0
            {
                return 125;
            }
            if let Some(fd) = self.console {
                if libc::dup2(fd, console::CONSOLE_FD) < 0 {
                    return 125;
                }
            }
            // In a user namespace: its maps first (one byte from the parent), then root
            // there (as runc's setresuid): the host's root is not mapped in it, and an
            // exec by an unmapped uid would drop every capability. Raw syscalls: glibc's
            // wrappers signal every thread the parent had (and wait on its locks), and
            // this copy has one.
            let mut byte = 0u8;
            if self.userns
                && (libc::read(self.sync_fd, (&raw mut byte).cast(), 1) != 1
                    || libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                    || libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
            {
                return 125;
            }
        }
        if let Some(config) = self.config {
            init::run_cloned(config);
        }
        // SAFETY: as above: an exec of arguments prepared before the clone.
        unsafe { libc::execv(self.exe.as_ptr(), self.argv.as_ptr()) };
        125
    }
}

/// `CLONE_INTO_CGROUP`: not in libc's `c_int` flags (it is bit 33).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 into the cgroup `dir` (an open cgroup2 directory), as fork does: the child goes
/// on from here on its own copy of this stack. `None` where the kernel has no clone3 or
/// refuses to clone into that cgroup (the caller clones the old way).
fn clone_into_cgroup(
    child: &InitChild<'_>,
    flags: CloneFlags,
    dir: &OwnedFd,
) -> Option<nix::Result<Pid>> {
    // SAFETY: zeroed is a valid clone_args (no pidfd, no tid pointers, no stack: fork-like).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = u64::from(flags.bits() as u32) | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = dir.as_raw_fd() as u64;
    // SAFETY: clone3 with a valid, fully initialised argument of its own size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match ret {
        0 => {
            // The child: exec, or exit as the clone callback's failure would.
            let code = child.run();
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code as i32) }
        }
        pid if pid > 0 => Some(Ok(Pid::from_raw(pid as i32))),
        _ => match nix::errno::Errno::last() {
            // No clone3 (before 5.3, or filtered out), no CLONE_INTO_CGROUP (before 5.7),
            // or a cgroup it cannot be born into (a domain with threads, say).
            nix::errno::Errno::ENOSYS
            | nix::errno::Errno::EINVAL
            | nix::errno::Errno::E2BIG
            | nix::errno::Errno::EOPNOTSUPP
            | nix::errno::Errno::EBUSY
            | nix::errno::Errno::EPERM => None,
            e => Some(Err(e)),
        },
    }
}

/// Waits for the container, passing SIGINT, SIGTERM, SIGHUP and SIGQUIT on to it. A
/// container's PID 1 ignores signals it has no handler for (as in Docker), so a second
/// SIGINT or SIGTERM kills it.
async fn wait_forwarding_signals(child: Pid, tty: Option<RawFd>) -> anyhow::Result<WaitStatus> {
    let mut winch = signal(SignalKind::window_change())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let wait = tokio::task::spawn_blocking(move || loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other,
        }
    });
    tokio::pin!(wait);
    let mut stops = 0;
    loop {
        let sig = tokio::select! {
            status = &mut wait => return Ok(status??),
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
            _ = winch.recv() => {
                // The user's window changed: the container's terminal follows.
                if let Some(fd) = tty {
                    console::copy_size(fd);
                }
                continue;
            }
        };
        if matches!(sig, Signal::SIGINT | Signal::SIGTERM) {
            stops += 1;
            if stops > 1 {
                eprintln!("tracer: killing the container");
                let _ = kill(child, Signal::SIGKILL);
                continue;
            }
            eprintln!("tracer: passed {sig} to the container (again to kill it)");
        }
        let _ = kill(child, sig);
    }
}
