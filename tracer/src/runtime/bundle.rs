//! OCI runtime bundles (`config.json` + rootfs, as `runc spec` makes): what the runtime
//! honours, and a warning naming each field it does not.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{config::Rlimit, rootfs::MountSpec};

/// A bundle, translated.
#[derive(Debug)]
pub struct Bundle {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub hostname: Option<String>,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub mounts: Vec<MountSpec>,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub uid: u32,
    pub gid: u32,
    /// `process.terminal`: the container gets a pseudo-terminal.
    pub terminal: bool,
    /// The bundle asks for its own network namespace.
    pub own_netns: bool,
    /// `linux.seccomp`, as given.
    pub seccomp: Option<super::seccomp::Profile>,
    /// A user namespace (`linux.namespaces` with `user`) and `linux.uidMappings` and
    /// `gidMappings`.
    pub id_maps: Option<super::IdMaps>,
    /// Fields present in the bundle that this runtime does not apply.
    pub unsupported: Vec<String>,
}

/// Mount options that are flags; any other option is passed as mount data.
fn mount_flag(option: &str) -> Option<(MsFlags, bool)> {
    // (flag, set?) — "rw" clears MS_RDONLY, for instance.
    Some(match option {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "atime" => (MsFlags::MS_NOATIME, false),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "bind" => (MsFlags::MS_BIND, true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        // Propagation of the container's own mounts: all are private here.
        "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
        | "runbindable" => (MsFlags::empty(), true),
        _ => return None,
    })
}

/// One OCI mount as a [`MountSpec`], or why it is skipped.
fn mount(m: &oci_spec::runtime::Mount) -> Result<MountSpec, String> {
    let dest = m.destination().display().to_string();
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "cgroup" || typ == "cgroup2" {
        return Err(format!(
            "mount {dest} (type {typ}): cgroup mounts are not supported"
        ));
    }
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in m.options().clone().unwrap_or_default() {
        match mount_flag(&o) {
            Some((f, true)) => flags |= f,
            Some((f, false)) => flags &= !f,
            None => data.push(o),
        }
    }
    if typ == "bind" {
        flags |= MsFlags::MS_BIND;
    }
    Ok(MountSpec {
        source: m
            .source()
            .as_ref()
            .map_or_else(|| typ.clone(), |s| s.display().to_string()),
        destination: dest,
        fstype: if flags.contains(MsFlags::MS_BIND) {
            String::new()
        } else {
            typ
        },
        flags: flags.bits(),
        data: data.join(","),
    })
}

/// `CAP_CHOWN` from the spec's capability value.
fn cap_name(c: &oci_spec::runtime::Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{c:?}"))
}

/// The process's rlimits, by their names.
fn rlimits(process: &oci_spec::runtime::Process) -> Vec<Rlimit> {
    process
        .rlimits()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|r| Rlimit {
            resource: serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            soft: r.soft(),
            hard: r.hard(),
        })
        .collect()
}

/// Whether the bundle wants its own network namespace; what of `linux` is not applied goes
/// to `unsupported`.
fn linux_fields(linux: &oci_spec::runtime::Linux, unsupported: &mut Vec<String>) -> bool {
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for n in &namespaces {
        if n.path().is_some() {
            unsupported.push(format!("linux.namespaces: {:?}", n.typ()));
        }
    }
    for (present, name) in [
        (linux.sysctl().is_some(), "linux.sysctl"),
        (linux.devices().is_some(), "linux.devices"),
        (
            linux.resources().is_some(),
            "linux.resources (use --memory, --pids-limit)",
        ),
    ] {
        if present {
            unsupported.push(name.to_string());
        }
    }
    namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network)
}

/// A user namespace with its maps, when the bundle asks for one.
fn id_maps(
    linux: &oci_spec::runtime::Linux,
    config: &Path,
) -> anyhow::Result<Option<super::IdMaps>> {
    let wants = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if !wants {
        return Ok(None);
    }
    let lines = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        m.iter()
            .flatten()
            .map(|m| (m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let maps = super::IdMaps {
        uid: lines(linux.uid_mappings()),
        gid: lines(linux.gid_mappings()),
    };
    if maps.uid.is_empty() || maps.gid.is_empty() {
        bail!(
            "{}: a user namespace needs linux.uidMappings and linux.gidMappings",
            config.display()
        );
    }
    Ok(Some(maps))
}

pub fn load(dir: &Path) -> anyhow::Result<Bundle> {
    let config = dir.join("config.json");
    if !config.is_file() {
        bail!("bundle {}: no config.json", dir.display());
    }
    let spec = Spec::load(&config).with_context(|| format!("bad bundle {}", config.display()))?;
    let mut unsupported = Vec::new();
    let process = spec
        .process()
        .clone()
        .with_context(|| format!("{}: no process", config.display()))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        bail!("{}: process.args is empty", config.display());
    }
    if process.apparmor_profile().is_some() {
        unsupported.push("process.apparmorProfile".into());
    }
    if process.selinux_label().is_some() {
        unsupported.push("process.selinuxLabel".into());
    }
    let capabilities = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.effective().clone().or_else(|| c.bounding().clone()))
        .map(|set| set.iter().map(cap_name).collect())
        .unwrap_or_default();
    let rlimits = rlimits(&process);
    let root = spec
        .root()
        .clone()
        .with_context(|| format!("{}: no root", config.display()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    if !rootfs.is_dir() {
        bail!("bundle rootfs {} is not a directory", rootfs.display());
    }
    let mut mounts = Vec::new();
    for m in spec.mounts().clone().unwrap_or_default() {
        match mount(&m) {
            Ok(spec) => mounts.push(spec),
            Err(why) => unsupported.push(why),
        }
    }
    if spec.hooks().is_some() {
        unsupported.push("hooks".into());
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let own_netns = linux_fields(&linux, &mut unsupported);
    Ok(Bundle {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().display().to_string(),
        hostname: spec.hostname().clone(),
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        mounts,
        masked: linux.masked_paths().clone().unwrap_or_default(),
        readonly: linux.readonly_paths().clone().unwrap_or_default(),
        capabilities,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        rlimits,
        uid: process.user().uid(),
        gid: process.user().gid(),
        terminal: process.terminal() == Some(true),
        own_netns,
        id_maps: id_maps(&linux, &config)?,
        seccomp: linux
            .seccomp()
            .as_ref()
            .map(|s| {
                // oci-spec's types serialize to the spec's own JSON, which the profile reads.
                serde_json::to_value(s)
                    .and_then(serde_json::from_value)
                    .with_context(|| format!("{}: linux.seccomp", config.display()))
            })
            .transpose()?,
        unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `runc spec` writes (runc 1.1), with a rootfs next to it.
    const RUNC_SPEC: &str = r#"{
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    }"#;

    fn bundle(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    #[test]
    fn runc_spec_is_translated() {
        let dir = bundle(RUNC_SPEC);
        let b = load(dir.path()).unwrap();
        assert_eq!(b.args, ["sh"]);
        assert_eq!(b.hostname.as_deref(), Some("runc"));
        assert_eq!(b.rootfs, dir.path().join("rootfs"));
        assert!(b.readonly_root);
        assert!(b.own_netns);
        assert!(b.no_new_privileges);
        assert_eq!(b.capabilities.len(), 3);
        assert!(b.capabilities.contains(&"CAP_KILL".to_string()));
        assert_eq!(
            b.rlimits,
            [Rlimit {
                resource: "RLIMIT_NOFILE".into(),
                soft: 1024,
                hard: 1024
            }]
        );
        assert_eq!(b.mounts.len(), 2, "the cgroup mount is skipped");
        let dev = &b.mounts[1];
        assert_eq!(dev.data, "mode=755,size=65536k");
        assert_eq!(
            MsFlags::from_bits_truncate(dev.flags),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME
        );
        assert_eq!(b.masked, ["/proc/kcore"]);
        // Everything not applied is named.
        assert!(b.terminal, "process.terminal is honoured");
        assert!(b.unsupported.iter().any(|u| u.contains("/sys/fs/cgroup")));
        assert_eq!((b.id_maps, b.seccomp), (None, None));
    }

    /// A user namespace with its mappings, and a seccomp profile, are taken as given; a
    /// user namespace without mappings is refused.
    #[test]
    fn user_namespace_and_seccomp_are_honoured() {
        let spec = RUNC_SPEC.replace(
            r#""namespaces": [{"type": "pid"},"#,
            r#""uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]},
            "namespaces": [{"type": "user"}, {"type": "pid"},"#,
        );
        let b = load(bundle(&spec).path()).unwrap();
        let maps = b.id_maps.expect("a user namespace");
        assert_eq!(maps.uid, [(0, 100_000, 65536)]);
        assert_eq!(maps.gid, [(0, 100_000, 65536)]);
        let s = b.seccomp.expect("the profile");
        assert_eq!(s.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(s.syscalls[0].names, ["read", "write"]);
        assert!(b
            .unsupported
            .iter()
            .all(|u| !u.contains("seccomp") && !u.contains("User")));
        let bare = RUNC_SPEC.replace(
            r#""namespaces": [{"type": "pid"},"#,
            r#""namespaces": [{"type": "user"}, {"type": "pid"},"#,
        );
        let err = load(bundle(&bare).path()).unwrap_err().to_string();
        assert!(err.contains("needs linux.uidMappings"), "{err}");
    }

    #[test]
    fn bad_bundles_are_refused_with_the_path() {
        let err = load(Path::new("/nonexistent-bundle"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-bundle: no config.json"), "{err}");
        let dir = bundle("{ not json");
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("config.json"), "{err}");
        let dir = bundle(&RUNC_SPEC.replace(r#""path": "rootfs""#, r#""path": "missing""#));
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("missing is not a directory"), "{err}");
    }

    #[test]
    fn mount_options_become_flags_and_data() {
        let m: oci_spec::runtime::Mount = serde_json::from_str(
            r#"{"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ro", "rprivate"]}"#,
        )
        .unwrap();
        let spec = mount(&m).unwrap();
        assert_eq!(
            MsFlags::from_bits_truncate(spec.flags),
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(spec.fstype, "");
        assert_eq!(spec.data, "");
    }
}
