//! Services the root tests need, started here when they are not running and stopped again
//! after: never assumed. Tests that use one hold its guard; the daemons started for them are
//! stopped when the last guard goes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

/// The image every container test runs: a busybox-static root filesystem, imported once.
pub const IMAGE: &str = "tracer-test-busybox";

/// One test at a time drives the engines: parallel tests would see each other's
/// containers, and the daemons' life is tied to the guards.
static ENGINES: Mutex<Option<Daemons>> = Mutex::new(None);

struct Daemons {
    /// Started by us, stopped when the last test is done with them.
    started: Vec<Child>,
}

/// Holds Docker (containerd and dockerd) up for one test.
pub struct Docker {
    _lock: MutexGuard<'static, Option<Daemons>>,
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up in {timeout:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn log_file(name: &str) -> fs::File {
    fs::File::create(std::env::temp_dir().join(format!("tracer-test-{name}.log"))).unwrap()
}

impl Docker {
    /// Starts containerd and dockerd unless Docker answers already, and imports the test
    /// image.
    pub fn up() -> Self {
        crate::require_root();
        let mut lock = ENGINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let daemons = lock.get_or_insert_with(|| Daemons {
            started: Vec::new(),
        });
        if !ok(Command::new("docker").arg("info")) {
            daemons.started.extend(start_containerd());
            let child = Command::new("dockerd")
                .arg("--containerd=/run/containerd/containerd.sock")
                .stdout(log_file("dockerd"))
                .stderr(log_file("dockerd-err"))
                .spawn()
                .expect("dockerd (cargo xtask setup installs docker.io)");
            daemons.started.push(child);
            wait_until("dockerd", Duration::from_secs(60), || {
                ok(Command::new("docker").arg("info"))
            });
        }
        if !ok(Command::new("docker").args(["image", "inspect", IMAGE])) {
            import("docker");
        }
        Self { _lock: lock }
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Stopped after each test that started them: the next one starts them again (a few
        // seconds), and a failing test leaves no daemon behind.
        if let Some(d) = self._lock.as_mut() {
            for mut child in d.started.drain(..).rev() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let _ = child.wait();
            }
        }
    }
}

/// podman needs no daemon; this serializes the engine tests and imports the image.
pub struct Podman {
    _lock: MutexGuard<'static, Option<Daemons>>,
}

impl Podman {
    pub fn up() -> Self {
        crate::require_root();
        let lock = ENGINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !ok(Command::new("podman").args(["image", "exists", IMAGE])) {
            import("podman");
        }
        Self { _lock: lock }
    }
}

/// A busybox-static root filesystem (shell applets linked), as a directory.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static (cargo xtask setup installs it)");
    for applet in ["sh", "sleep", "cat", "ls", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    root
}

/// Imports the busybox root into `engine` (`docker` or `podman`) as [`IMAGE`].
fn import(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(engine)
        .arg("import")
        .arg(image_tar(dir.path()))
        .arg(IMAGE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{engine} import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test image's root filesystem packed as `DIR/rootfs.tar`, for an engine to import.
fn image_tar(dir: &Path) -> PathBuf {
    let root = busybox_rootfs(dir);
    let tar = dir.join("rootfs.tar");
    assert!(
        ok(Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")),
        "packing the test image"
    );
    tar
}

/// Starts containerd unless its socket is there; the child when started.
fn start_containerd() -> Option<Child> {
    if Path::new("/run/containerd/containerd.sock").exists() {
        return None;
    }
    let child = Command::new("containerd")
        .stdout(log_file("containerd"))
        .stderr(log_file("containerd-err"))
        .spawn()
        .expect("containerd (cargo xtask setup installs docker.io)");
    wait_until("containerd", Duration::from_secs(30), || {
        Path::new("/run/containerd/containerd.sock").exists()
    });
    Some(child)
}

/// The unprivileged user rootless podman runs as in the tests, made once (`useradd` gives it
/// subordinate uid and gid ranges in `/etc/subuid` and `/etc/subgid`).
pub const ROOTLESS_USER: &str = "tracer-rootless";

/// Rootless podman as [`ROOTLESS_USER`]: the user and its image made when missing, its
/// runtime directory private to the test, its pause process (which holds the user namespace
/// every rootless container of the user shares) stopped on both ends, so the namespace is
/// made while traced and nothing is left running.
pub struct RootlessPodman {
    _lock: MutexGuard<'static, Option<Daemons>>,
    runtime_dir: PathBuf,
}

impl RootlessPodman {
    pub fn up() -> Self {
        crate::require_root();
        let lock = ENGINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !ok(Command::new("id").arg(ROOTLESS_USER)) {
            assert!(
                ok(Command::new("useradd").args(["-m", "-s", "/bin/sh", ROOTLESS_USER])),
                "useradd {ROOTLESS_USER}"
            );
        }
        let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
        assert!(
            subuid
                .lines()
                .any(|l| l.starts_with(&format!("{ROOTLESS_USER}:"))),
            "{ROOTLESS_USER} has no /etc/subuid range"
        );
        let runtime_dir =
            std::env::temp_dir().join(format!("tracer-rootless-{}", std::process::id()));
        fs::create_dir_all(&runtime_dir).unwrap();
        let uid = nix::unistd::User::from_name(ROOTLESS_USER)
            .unwrap()
            .unwrap()
            .uid;
        nix::unistd::chown(&runtime_dir, Some(uid), None).unwrap();
        fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let me = Self {
            _lock: lock,
            runtime_dir,
        };
        me.stop_pause();
        if !me.podman(&["image", "exists", IMAGE]).status.success() {
            let dir = tempfile::tempdir().unwrap();
            let tar = image_tar(dir.path());
            fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
            let out = me.podman(&["import", tar.to_str().unwrap(), IMAGE]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The import started the pause process: the test's run must make it again.
        me.stop_pause();
        me
    }

    /// `podman ARGS` as the user.
    pub fn podman(&self, args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", ROOTLESS_USER, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
            .arg(format!("HOME=/home/{ROOTLESS_USER}"))
            .arg("podman")
            .args(args)
            .current_dir("/")
            .output()
            .unwrap()
    }

    fn stop_pause(&self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", ROOTLESS_USER])
            .status();
        thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        self.stop_pause();
        let _ = fs::remove_dir_all(&self.runtime_dir);
    }
}

/// Where the user-namespace-remapped dockerd of [`RemappedDocker`] keeps its socket and state.
pub const REMAP_RUN: &str = "/run/tracer-remap";
const REMAP_DATA: &str = "/var/lib/tracer-remap";

/// A second dockerd with `--userns-remap=default` (Docker then makes the `dockremap` user and
/// its subordinate ranges), on its own socket, state and exec roots and without a bridge, so
/// it stands beside a plain one; containerd is started when not running. Both are stopped
/// after the test, and the remapped daemon's state is removed.
pub struct RemappedDocker {
    _lock: MutexGuard<'static, Option<Daemons>>,
    started: Vec<Child>,
}

impl RemappedDocker {
    pub fn up() -> Self {
        crate::require_root();
        let lock = ENGINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut started: Vec<Child> = start_containerd().into_iter().collect();
        fs::create_dir_all(REMAP_RUN).unwrap();
        started.push(
            Command::new("dockerd")
                .arg("--userns-remap=default")
                .arg("--containerd=/run/containerd/containerd.sock")
                .arg(format!("--host=unix://{REMAP_RUN}/docker.sock"))
                .arg(format!("--data-root={REMAP_DATA}"))
                .arg(format!("--exec-root={REMAP_RUN}/exec"))
                .arg(format!("--pidfile={REMAP_RUN}/docker.pid"))
                .args(["--bridge=none", "--iptables=false"])
                .stdout(log_file("dockerd-remap"))
                .stderr(log_file("dockerd-remap-err"))
                .spawn()
                .expect("dockerd (cargo xtask setup installs docker.io)"),
        );
        let me = Self {
            _lock: lock,
            started,
        };
        wait_until("the remapped dockerd", Duration::from_secs(60), || {
            me.docker(&["info"]).status.success()
        });
        if !me.docker(&["image", "inspect", IMAGE]).status.success() {
            let dir = tempfile::tempdir().unwrap();
            let tar = image_tar(dir.path());
            let out = me.docker(&["import", tar.to_str().unwrap(), IMAGE]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        me
    }

    /// `docker ARGS` against the remapped daemon.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg(format!("--host=unix://{REMAP_RUN}/docker.sock"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for RemappedDocker {
    fn drop(&mut self) {
        for mut child in self.started.drain(..).rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(REMAP_RUN);
    }
}
