//! Names for the flag words and numbers that appear in events.

use tracer_common::NsKind;

/// `A|B|0x40` from the bits of `value` that `names` knows, the rest in hex; `0` when empty.
fn bits(value: u64, names: &[(u64, &str)]) -> String {
    let mut parts = Vec::new();
    let mut rest = value;
    for &(bit, name) in names {
        if bit != 0 && value & bit == bit {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// mount(2) flags (also used for mount_setattr propagation).
pub fn mount_flags(v: u64) -> String {
    const NAMES: &[(u64, &str)] = &[
        (libc::MS_RDONLY, "MS_RDONLY"),
        (libc::MS_NOSUID, "MS_NOSUID"),
        (libc::MS_NODEV, "MS_NODEV"),
        (libc::MS_NOEXEC, "MS_NOEXEC"),
        (libc::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
        (libc::MS_REMOUNT, "MS_REMOUNT"),
        (libc::MS_MANDLOCK, "MS_MANDLOCK"),
        (libc::MS_DIRSYNC, "MS_DIRSYNC"),
        (libc::MS_NOATIME, "MS_NOATIME"),
        (libc::MS_NODIRATIME, "MS_NODIRATIME"),
        (libc::MS_BIND, "MS_BIND"),
        (libc::MS_MOVE, "MS_MOVE"),
        (libc::MS_REC, "MS_REC"),
        (libc::MS_SILENT, "MS_SILENT"),
        (libc::MS_POSIXACL, "MS_POSIXACL"),
        (libc::MS_UNBINDABLE, "MS_UNBINDABLE"),
        (libc::MS_PRIVATE, "MS_PRIVATE"),
        (libc::MS_SLAVE, "MS_SLAVE"),
        (libc::MS_SHARED, "MS_SHARED"),
        (libc::MS_RELATIME, "MS_RELATIME"),
        (libc::MS_STRICTATIME, "MS_STRICTATIME"),
        (libc::MS_LAZYTIME, "MS_LAZYTIME"),
    ];
    // The historical magic number in the high half means nothing any more.
    const MS_MGC_MSK: u64 = 0xffff_0000;
    const MS_MGC_VAL: u64 = 0xc0ed_0000;
    let v = if v & MS_MGC_MSK == MS_MGC_VAL {
        v & !MS_MGC_MSK
    } else {
        v
    };
    bits(v, NAMES)
}

pub fn umount_flags(v: u64) -> String {
    bits(
        v,
        &[
            (libc::MNT_FORCE as u64, "MNT_FORCE"),
            (libc::MNT_DETACH as u64, "MNT_DETACH"),
            (libc::MNT_EXPIRE as u64, "MNT_EXPIRE"),
            (libc::UMOUNT_NOFOLLOW as u64, "UMOUNT_NOFOLLOW"),
        ],
    )
}

/// `MOUNT_ATTR_*` (fsmount attr_flags, mount_setattr attr_set/attr_clr).
pub fn mount_attr(v: u64) -> String {
    bits(
        v,
        &[
            (0x1, "RDONLY"),
            (0x2, "NOSUID"),
            (0x4, "NODEV"),
            (0x8, "NOEXEC"),
            (0x80, "NODIRATIME"),
            (0x100000, "IDMAP"),
            (0x200000, "NOSYMFOLLOW"),
            (0x10, "NOATIME"),
            (0x20, "STRICTATIME"),
        ],
    )
}

/// `CLONE_*` namespace flags (unshare, clone, setns nstype).
pub fn clone_flags(v: u64) -> String {
    let names: Vec<(u64, &str)> = tracer_common::NsKind::ALL
        .into_iter()
        .map(|k| {
            let name = match k {
                NsKind::Uts => "CLONE_NEWUTS",
                NsKind::Ipc => "CLONE_NEWIPC",
                NsKind::Mnt => "CLONE_NEWNS",
                NsKind::Pid => "CLONE_NEWPID",
                NsKind::Net => "CLONE_NEWNET",
                NsKind::Cgroup => "CLONE_NEWCGROUP",
                NsKind::Time => "CLONE_NEWTIME",
            };
            (k.clone_flag(), name)
        })
        .chain([(0x1000_0000, "CLONE_NEWUSER")])
        .collect();
    bits(v, &names)
}

/// `open_tree` flags.
pub fn open_tree_flags(v: u64) -> String {
    bits(
        v,
        &[
            (1, "OPEN_TREE_CLONE"),
            (libc::O_CLOEXEC as u64, "OPEN_TREE_CLOEXEC"),
            (libc::AT_RECURSIVE as u64, "AT_RECURSIVE"),
            (libc::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
            (libc::AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
            (libc::AT_NO_AUTOMOUNT as u64, "AT_NO_AUTOMOUNT"),
        ],
    )
}

/// `execveat` flags.
pub fn at_flags(v: i32) -> String {
    bits(
        u64::from(v as u32),
        &[
            (libc::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
            (libc::AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
        ],
    )
}

/// `fsconfig` command names (`include/uapi/linux/mount.h`).
pub fn fsconfig_cmd(cmd: u32) -> String {
    match cmd {
        0 => "SET_FLAG".into(),
        1 => "SET_STRING".into(),
        2 => "SET_BINARY".into(),
        3 => "SET_PATH".into(),
        4 => "SET_PATH_EMPTY".into(),
        5 => "SET_FD".into(),
        6 => "CMD_CREATE".into(),
        7 => "CMD_RECONFIGURE".into(),
        8 => "CMD_CREATE_EXCL".into(),
        n => format!("cmd {n}"),
    }
}

/// A path relative to a dirfd, as given: `/abs`, `path`, or `fd 5:path` / `fd 5`.
pub fn dirfd_path(dfd: i32, path: &str) -> String {
    if path.starts_with('/') || dfd == libc::AT_FDCWD {
        if path.is_empty() {
            ".".into()
        } else {
            path.into()
        }
    } else if path.is_empty() {
        format!("fd {dfd}")
    } else {
        format!("fd {dfd}:{path}")
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_words() {
        assert_eq!(mount_flags(0), "0");
        assert_eq!(mount_flags(libc::MS_BIND | libc::MS_REC), "MS_BIND|MS_REC");
        assert_eq!(mount_flags(0xc0ed_0000 | libc::MS_RDONLY), "MS_RDONLY");
        assert_eq!(mount_flags(1 << 40), "0x10000000000");
        assert_eq!(umount_flags(libc::MNT_DETACH as u64), "MNT_DETACH");
        assert_eq!(mount_attr(0x1 | 0x2), "RDONLY|NOSUID");
        assert_eq!(at_flags(libc::AT_EMPTY_PATH), "AT_EMPTY_PATH");
        assert_eq!(fsconfig_cmd(6), "CMD_CREATE");
        assert_eq!(clone_flags(0x4002_0000), "CLONE_NEWNS|CLONE_NEWNET");
        assert_eq!(clone_flags(0), "0");
        assert_eq!(fsconfig_cmd(77), "cmd 77");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(200), "signal 200");
    }

    #[test]
    fn dirfd_paths() {
        assert_eq!(dirfd_path(libc::AT_FDCWD, "/a"), "/a");
        assert_eq!(dirfd_path(3, "/a"), "/a");
        assert_eq!(dirfd_path(3, ""), "fd 3");
        assert_eq!(dirfd_path(3, "rel"), "fd 3:rel");
        assert_eq!(dirfd_path(libc::AT_FDCWD, ""), ".");
    }
}
