//! The container's filesystem, set up from inside its new mount namespace, in the OCI order:
//! private propagation, the rootfs bind, the standard mounts and device nodes, `pivot_root`,
//! then Docker's masked and read-only paths.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MntFlags, MsFlags},
    sys::stat::{makedev, Mode, SFlag},
};

use super::syscalls::{Kind, Result, Syscall};

/// One mount inside the container (destination relative to the container's root).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    pub source: String,
    pub destination: String,
    pub fstype: String,
    /// `MS_*` bits.
    pub flags: u64,
    pub data: String,
}

impl MountSpec {
    fn new(source: &str, dest: &str, fstype: &str, flags: MsFlags, data: &str) -> Self {
        Self {
            source: source.into(),
            destination: dest.into(),
            fstype: fstype.into(),
            flags: flags.bits(),
            data: data.into(),
        }
    }
}

/// The mounts Docker gives every container (runc's defaults).
pub fn default_mounts() -> Vec<MountSpec> {
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    vec![
        MountSpec::new("proc", "/proc", "proc", nse, ""),
        MountSpec::new(
            "tmpfs",
            "/dev",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            "mode=755,size=65536k",
        ),
        MountSpec::new(
            "devpts",
            "/dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
        MountSpec::new("sysfs", "/sys", "sysfs", nse | MsFlags::MS_RDONLY, ""),
        MountSpec::new("mqueue", "/dev/mqueue", "mqueue", nse, ""),
        MountSpec::new("shm", "/dev/shm", "tmpfs", nse, "mode=1777,size=65536k"),
    ]
}

/// Docker's masked paths: hidden behind /dev/null (files) or an empty read-only tmpfs (dirs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The device nodes of a Docker container's /dev: (name, major, minor).
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Everything the container's filesystem needs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RootfsPlan {
    /// The prepared root (the overlay's merged directory), in the host's view.
    pub root: PathBuf,
    pub mounts: Vec<MountSpec>,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    /// Make the root itself read-only after setup.
    pub readonly_root: bool,
    /// In a user namespace of its own: device nodes cannot be made there, the host's are
    /// bound instead (as runc does).
    #[serde(default)]
    pub userns: bool,
}

fn inside(root: &Path, dest: &str) -> PathBuf {
    root.join(dest.trim_start_matches('/'))
}

/// Sets up the filesystem and pivots into it. Runs in the container's mount namespace.
pub fn setup(sys: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    // Nothing done here may propagate back to the host.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    // pivot_root needs the new root to be a mount point.
    let root_str = plan.root.to_string_lossy();
    sys.mount(
        Some(&root_str),
        &plan.root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    for m in &plan.mounts {
        mount_one(sys, &plan.root, m)?;
    }
    devices(sys, &plan.root, plan.userns)?;
    pivot(sys, &plan.root)?;
    for path in &plan.masked {
        mask(sys, Path::new(path))?;
    }
    for path in &plan.readonly {
        readonly(sys, Path::new(path))?;
    }
    if plan.readonly_root {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn mount_one(sys: &dyn Syscall, root: &Path, m: &MountSpec) -> Result<()> {
    let target = inside(root, &m.destination);
    let flags = MsFlags::from_bits_truncate(m.flags);
    let bind = flags.contains(MsFlags::MS_BIND);
    // A bind of a file needs a file to mount on; anything else a directory.
    if bind && sys.kind(Path::new(&m.source)) == Kind::File {
        sys.touch(&target)?;
    } else {
        sys.mkdir_all(&target)?;
    }
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let fstype = (!m.fstype.is_empty() && !bind).then_some(m.fstype.as_str());
    sys.mount(Some(&m.source), &target, fstype, flags, data)?;
    // Read-only binds need a remount: the first mount ignores MS_RDONLY.
    if bind && flags.contains(MsFlags::MS_RDONLY) {
        sys.mount(
            None,
            &target,
            None,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
            None,
        )?;
    }
    Ok(())
}

fn devices(sys: &dyn Syscall, root: &Path, userns: bool) -> Result<()> {
    let dev = inside(root, "/dev");
    let rw = Mode::from_bits_truncate(0o666);
    for (name, major, minor) in DEVICES {
        let node = dev.join(name);
        if userns {
            sys.touch(&node)?;
            let host = format!("/dev/{name}");
            sys.mount(Some(&host), &node, None, MsFlags::MS_BIND, None)?;
        } else {
            sys.mknod(&node, SFlag::S_IFCHR, rw, makedev(*major, *minor))?;
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        sys.symlink(target, &dev.join(link))?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` then detaching the old root from on top, as runc does: no
/// directory for the old root is needed inside the image. Where the host's root is the
/// initramfs, pivot_root is refused (EINVAL): then, as runc does there, the new root is moved
/// over `/` and chrooted into.
fn pivot(sys: &dyn Syscall, root: &Path) -> Result<()> {
    let dot = Path::new(".");
    sys.chdir(root)?;
    match sys.pivot_root(dot, dot) {
        Ok(()) => {
            sys.mount(None, dot, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)?;
            sys.umount(dot, MntFlags::MNT_DETACH)?;
        }
        Err(e) if e.source.raw_os_error() == Some(libc::EINVAL) => {
            sys.mount(Some("."), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
            sys.chroot(dot)?;
        }
        Err(e) => return Err(e),
    }
    sys.chdir(Path::new("/"))
}

fn mask(sys: &dyn Syscall, path: &Path) -> Result<()> {
    match sys.kind(path) {
        Kind::Missing => Ok(()),
        Kind::Dir => sys.mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None),
        Kind::File => sys.mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None),
    }
}

fn readonly(sys: &dyn Syscall, path: &Path) -> Result<()> {
    if sys.kind(path) == Kind::Missing {
        return Ok(());
    }
    let p = path.to_string_lossy();
    sys.mount(
        Some(&p),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    sys.mount(
        None,
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::{
        super::syscalls::{Call, Recorder},
        *,
    };

    fn plan() -> RootfsPlan {
        RootfsPlan {
            root: "/run/tracer/c1/merged".into(),
            mounts: default_mounts(),
            masked: vec![
                "/proc/kcore".into(),
                "/proc/acpi".into(),
                "/proc/nope".into(),
            ],
            readonly: vec!["/proc/sys".into()],
            readonly_root: false,
            userns: false,
        }
    }

    /// In a user namespace the device nodes are the host's, bound.
    #[test]
    fn a_user_namespace_binds_the_devices() {
        let sys = recorder();
        setup(
            &sys,
            &RootfsPlan {
                userns: true,
                ..plan()
            },
        )
        .unwrap();
        let calls = sys.calls.borrow();
        assert!(!calls.iter().any(|c| matches!(c, Call::Mknod(..))));
        assert!(calls
            .iter()
            .any(|c| matches!(c, Call::Mount { source, target, .. }
            if source == "/dev/null" && target.ends_with("/dev/null"))));
    }

    fn recorder() -> Recorder {
        Recorder {
            files: ["/proc/kcore".to_string()].into(),
            dirs: ["/proc/acpi".to_string(), "/proc/sys".to_string()].into(),
            ..Recorder::default()
        }
    }

    fn position(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
        calls.iter().position(f).expect("call not made")
    }

    /// The OCI order: private propagation, rootfs bind, mounts, devices, pivot, masks.
    #[test]
    fn setup_follows_the_oci_order() {
        let sys = recorder();
        setup(&sys, &plan()).unwrap();
        let calls = sys.calls.borrow();
        assert_eq!(
            calls[0],
            Call::Mount {
                source: String::new(),
                target: "/".into(),
                fstype: String::new(),
                flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                data: String::new(),
            }
        );
        assert!(
            matches!(&calls[1], Call::Mount { source, target, flags, .. }
            if source == "/run/tracer/c1/merged" && target == source
                && flags.contains(MsFlags::MS_BIND))
        );
        let proc = position(
            &calls,
            |c| matches!(c, Call::Mount { fstype, .. } if fstype == "proc"),
        );
        let null = position(
            &calls,
            |c| matches!(c, Call::Mknod(p, _) if p.ends_with("/dev/null")),
        );
        let pivot = position(&calls, |c| matches!(c, Call::PivotRoot(..)));
        let kcore = position(
            &calls,
            |c| matches!(c, Call::Mount { target, .. } if target == "/proc/kcore"),
        );
        assert!(1 < proc && proc < null && null < pivot && pivot < kcore);
        assert_eq!(calls[pivot], Call::PivotRoot(".".into(), ".".into()));
        assert_eq!(
            calls[pivot + 2],
            Call::Umount(".".into(), MntFlags::MNT_DETACH)
        );
        assert_eq!(calls[pivot + 3], Call::Chdir("/".into()));
    }

    /// On an initramfs root pivot_root is refused: the root is moved over / and chrooted.
    #[test]
    fn initramfs_root_falls_back_to_move_and_chroot() {
        let sys = Recorder {
            pivot_root_fails: true,
            ..recorder()
        };
        setup(&sys, &plan()).unwrap();
        let calls = sys.calls.borrow();
        let pivot = position(&calls, |c| matches!(c, Call::PivotRoot(..)));
        assert!(
            matches!(&calls[pivot + 1], Call::Mount { source, target, flags, .. }
            if source == "." && target == "/" && *flags == MsFlags::MS_MOVE)
        );
        assert_eq!(calls[pivot + 2], Call::Chroot(".".into()));
        assert_eq!(calls[pivot + 3], Call::Chdir("/".into()));
        assert!(!calls.iter().any(|c| matches!(c, Call::Umount(..))));
    }

    #[test]
    fn mounts_land_inside_the_root() {
        let sys = recorder();
        setup(&sys, &plan()).unwrap();
        let calls = sys.calls.borrow();
        let targets: Vec<&str> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { fstype, target, .. }
                    if !fstype.is_empty() && fstype != "tmpfs"
                        || target.ends_with("/dev")
                        || target.ends_with("/dev/shm") =>
                {
                    Some(target.as_str())
                }
                _ => None,
            })
            .collect();
        for t in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/dev/mqueue",
            "/dev/shm",
        ] {
            assert!(
                targets.contains(&format!("/run/tracer/c1/merged{t}").as_str()),
                "{t}: {targets:?}"
            );
        }
        let sysfs = calls.iter().find_map(|c| match c {
            Call::Mount { fstype, flags, .. } if fstype == "sysfs" => Some(*flags),
            _ => None,
        });
        assert!(
            sysfs.unwrap().contains(MsFlags::MS_RDONLY),
            "sysfs is read-only"
        );
    }

    #[test]
    fn masks_files_with_dev_null_and_dirs_with_tmpfs_and_skip_missing() {
        let sys = recorder();
        setup(&sys, &plan()).unwrap();
        let calls = sys.calls.borrow();
        assert!(calls.iter().any(|c| matches!(c, Call::Mount { source, target, flags, .. }
            if source == "/dev/null" && target == "/proc/kcore" && flags.contains(MsFlags::MS_BIND))));
        assert!(calls
            .iter()
            .any(|c| matches!(c, Call::Mount { fstype, target, flags, .. }
            if fstype == "tmpfs" && target == "/proc/acpi" && flags.contains(MsFlags::MS_RDONLY))));
        assert!(!calls
            .iter()
            .any(|c| matches!(c, Call::Mount { target, .. } if target == "/proc/nope")));
        // Read-only paths: a bind, then a read-only remount.
        let ro: Vec<_> = calls
            .iter()
            .filter(|c| matches!(c, Call::Mount { target, .. } if target == "/proc/sys"))
            .collect();
        assert_eq!(ro.len(), 2);
        assert!(matches!(ro[1], Call::Mount { flags, .. }
            if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)));
    }

    #[test]
    fn read_only_file_binds_are_remounted() {
        let sys = Recorder {
            files: ["/etc/hostname-src".to_string()].into(),
            ..Recorder::default()
        };
        let mut p = plan();
        p.mounts = vec![MountSpec::new(
            "/etc/hostname-src",
            "/etc/hostname",
            "",
            MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            "",
        )];
        p.masked.clear();
        p.readonly.clear();
        setup(&sys, &p).unwrap();
        let calls = sys.calls.borrow();
        assert!(calls.contains(&Call::Touch("/run/tracer/c1/merged/etc/hostname".into())));
        let binds: Vec<_> = calls
            .iter()
            .filter(|c| matches!(c, Call::Mount { target, .. } if target == "/run/tracer/c1/merged/etc/hostname"))
            .collect();
        assert_eq!(binds.len(), 2);
    }
}
