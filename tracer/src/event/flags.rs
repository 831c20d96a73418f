//! Names for the flag words and numbers that appear in events.

use std::fmt::Write as _;

use tracer_common::NsKind;

/// `A|B|0x40` from the bits of `value` that `names` knows, the rest in hex; `0` when empty.
fn bits(value: u64, names: &[(u64, &str)]) -> String {
    let mut s = String::new();
    let mut rest = value;
    for &(bit, name) in names {
        if bit != 0 && value & bit == bit {
            if !s.is_empty() {
                s.push('|');
            }
            s.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        if !s.is_empty() {
            s.push('|');
        }
        let _ = write!(s, "{rest:#x}");
    }
    if s.is_empty() {
        s.push('0');
    }
    s
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
    const NAMES: [(u64, &str); 8] = {
        let mut names = [(0, ""); 8];
        let mut i = 0;
        while i < NsKind::ALL.len() {
            let k = NsKind::ALL[i];
            names[i] = (
                k.clone_flag(),
                match k {
                    NsKind::Uts => "CLONE_NEWUTS",
                    NsKind::Ipc => "CLONE_NEWIPC",
                    NsKind::Mnt => "CLONE_NEWNS",
                    NsKind::Pid => "CLONE_NEWPID",
                    NsKind::Net => "CLONE_NEWNET",
                    NsKind::Cgroup => "CLONE_NEWCGROUP",
                    NsKind::Time => "CLONE_NEWTIME",
                    NsKind::User => "CLONE_NEWUSER",
                },
            );
            i += 1;
        }
        names
    };
    bits(v, &NAMES)
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

/// Capability names as `capsh` prints them, by number (`CAP_LAST_CAP` 40 on 6.x).
pub const CAPABILITIES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// Every capability this table names.
pub const ALL_CAPS: u64 = (1 << CAPABILITIES.len()) - 1;

/// `cap_sys_admin` for 21, `cap_77` beyond the table.
pub fn capability(n: u64) -> String {
    usize::try_from(n)
        .ok()
        .and_then(|i| CAPABILITIES.get(i))
        .map_or_else(|| format!("cap_{n}"), |s| (*s).to_string())
}

/// `cap_chown,cap_kill` for a set; `all` for every capability, `none` for the empty set.
pub fn cap_set(set: u64) -> String {
    if set == 0 {
        return "none".into();
    }
    if set & ALL_CAPS == ALL_CAPS {
        let rest = set & !ALL_CAPS;
        return if rest == 0 {
            "all".into()
        } else {
            format!("all,{rest:#x}")
        };
    }
    (0..64)
        .filter(|i| set & (1 << i) != 0)
        .map(capability)
        .collect::<Vec<_>>()
        .join(",")
}

/// Capability sets in the manner of `capsh --print`: each group of capabilities with the
/// sets holding it (`cap_chown,cap_kill=eip cap_sys_admin=p`), `=` when all are empty.
pub fn cap_sets(effective: u64, permitted: u64, inheritable: u64) -> String {
    let mut groups: Vec<(String, u64)> = Vec::new();
    for bit in 0..64 {
        let m = 1u64 << bit;
        let which: String = [(effective, 'e'), (inheritable, 'i'), (permitted, 'p')]
            .iter()
            .filter(|(s, _)| s & m != 0)
            .map(|(_, c)| *c)
            .collect();
        if which.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(w, _)| *w == which) {
            Some((_, set)) => *set |= m,
            None => groups.push((which, m)),
        }
    }
    if groups.is_empty() {
        return "=".into();
    }
    groups
        .iter()
        .map(|(which, set)| format!("{}={which}", cap_set(*set)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `prctl` option reported, with its argument: `PR_CAPBSET_DROP cap_sys_admin`.
pub fn prctl(option: u32, arg: u64) -> String {
    use tracer_common::prctl_ops as p;
    match option {
        p::PR_SET_NO_NEW_PRIVS => format!("PR_SET_NO_NEW_PRIVS {arg}"),
        p::PR_CAPBSET_DROP => format!("PR_CAPBSET_DROP {}", capability(arg)),
        p::PR_SET_KEEPCAPS => format!("PR_SET_KEEPCAPS {arg}"),
        p::PR_SET_SECCOMP => match arg {
            1 => "PR_SET_SECCOMP strict".into(),
            2 => "PR_SET_SECCOMP filter".into(),
            m => format!("PR_SET_SECCOMP mode {m}"),
        },
        p::PR_CAP_AMBIENT => {
            let (op, cap) = (arg & 0xffff_ffff, arg >> 32);
            match op {
                1 => format!("PR_CAP_AMBIENT IS_SET {}", capability(cap)),
                2 => format!("PR_CAP_AMBIENT RAISE {}", capability(cap)),
                3 => format!("PR_CAP_AMBIENT LOWER {}", capability(cap)),
                4 => "PR_CAP_AMBIENT CLEAR_ALL".into(),
                o => format!("PR_CAP_AMBIENT op {o}"),
            }
        }
        o => format!("option {o} {arg}"),
    }
}

/// `seccomp(2)` operations.
pub fn seccomp_op(op: u32) -> String {
    match op {
        0 => "SECCOMP_SET_MODE_STRICT".into(),
        1 => "SECCOMP_SET_MODE_FILTER".into(),
        2 => "SECCOMP_GET_ACTION_AVAIL".into(),
        3 => "SECCOMP_GET_NOTIF_SIZES".into(),
        o => format!("operation {o}"),
    }
}

/// `seccomp(2)` filter flags.
pub fn seccomp_flags(v: u64) -> String {
    bits(
        v,
        &[
            (1, "TSYNC"),
            (2, "LOG"),
            (4, "SPEC_ALLOW"),
            (8, "NEW_LISTENER"),
            (16, "TSYNC_ESRCH"),
            (32, "WAIT_KILLABLE_RECV"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_read_as_capsh_prints_them() {
        assert_eq!(capability(21), "cap_sys_admin");
        assert_eq!(capability(63), "cap_63");
        assert_eq!(cap_set(0), "none");
        assert_eq!(cap_set(ALL_CAPS), "all");
        assert_eq!(cap_set(1 | 1 << 5), "cap_chown,cap_kill");
        assert_eq!(cap_sets(0, 0, 0), "=");
        assert_eq!(
            cap_sets(1 | 1 << 5, 1 | 1 << 5 | 1 << 21, 0),
            "cap_chown,cap_kill=ep cap_sys_admin=p"
        );
        assert_eq!(cap_sets(ALL_CAPS, ALL_CAPS, ALL_CAPS), "all=eip");
        assert_eq!(prctl(24, 21), "PR_CAPBSET_DROP cap_sys_admin");
        assert_eq!(prctl(47, 2 | 13 << 32), "PR_CAP_AMBIENT RAISE cap_net_raw");
        assert_eq!(prctl(22, 2), "PR_SET_SECCOMP filter");
        assert_eq!(seccomp_op(1), "SECCOMP_SET_MODE_FILTER");
        assert_eq!(seccomp_flags(1 | 8), "TSYNC|NEW_LISTENER");
    }

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
