//! How each event kind can be observed: an ordered list of options per kind, best first.
//! The loader attaches the first option that fully works and reports the others with the
//! reason. Compatibility is data here: adding a fallback is adding an option.

use std::fmt;

use tracer_common::EventKind;

/// How a program is attached.
#[derive(Clone, Copy, Debug)]
pub enum Attach {
    /// A classic tracepoint: `category/name`.
    TracePoint(&'static str, &'static str),
    /// A raw tracepoint by name.
    RawTracePoint(&'static str),
    /// A kprobe on a kernel function.
    KProbe(&'static str),
    /// A kretprobe on a kernel function.
    KRetProbe(&'static str),
}

impl fmt::Display for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attach::TracePoint(c, n) => write!(f, "tracepoint {c}:{n}"),
            Attach::RawTracePoint(n) => write!(f, "raw_tracepoint {n}"),
            Attach::KProbe(n) => write!(f, "kprobe {n}"),
            Attach::KRetProbe(n) => write!(f, "kretprobe {n}"),
        }
    }
}

/// One program attached somewhere.
#[derive(Clone, Copy, Debug)]
pub struct Attachment {
    pub program: &'static str,
    pub attach: Attach,
}

/// Where events of a kind can come from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Kernel programs; all must attach for the option to be used.
    Programs(&'static [Attachment]),
    /// The userspace rtnetlink link monitor (see `netlink_monitor`).
    RtnetlinkMonitor,
}

/// One way to observe an event kind.
#[derive(Clone, Copy, Debug)]
pub struct HookOption {
    pub name: &'static str,
    pub source: Source,
}

/// An event kind and the ways to observe it, best first.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub kind: EventKind,
    pub options: &'static [HookOption],
}

const fn tp(program: &'static str, name: &'static str) -> Attachment {
    Attachment {
        program,
        attach: Attach::TracePoint("syscalls", name),
    }
}

const fn kretprobe(program: &'static str, function: &'static str) -> Attachment {
    Attachment {
        program,
        attach: Attach::KRetProbe(function),
    }
}

const fn kprobe(program: &'static str, function: &'static str) -> Attachment {
    Attachment {
        program,
        attach: Attach::KProbe(function),
    }
}

const fn programs(name: &'static str, attachments: &'static [Attachment]) -> HookOption {
    HookOption {
        name,
        source: Source::Programs(attachments),
    }
}

/// A syscall observed at entry (arguments) and exit (result): exit attaches first, so no
/// parked record misses its exit. The programs are shared by a family of syscalls (the
/// record's syscall number tells them apart), so the verifier goes through each once.
macro_rules! syscall {
    ($name:literal, $entry:literal, $exit:literal, [$($sys:literal),+]) => {
        const {
            &[programs(
                concat!("tracepoints syscalls:sys_enter/exit_", $name),
                const {
                    &[
                        $(tp($exit, concat!("sys_exit_", $sys)),)+
                        $(tp($entry, concat!("sys_enter_", $sys)),)+
                    ]
                },
            )]
        }
    };
}

/// One of the mount family (`sys_enter/exit_mount_family`).
macro_rules! mount_family {
    ($sys:literal) => {
        syscall!(
            $sys,
            "sys_enter_mount_family",
            "sys_exit_mount_family",
            [$sys]
        )
    };
}

/// One of the security setup's syscalls (`sys_enter/exit_security`).
macro_rules! security {
    ($sys:literal) => {
        syscall!($sys, "sys_enter_security", "sys_exit_security", [$sys])
    };
}

/// A kind seen by one tracepoint (`$attach`: the attach point expression).
macro_rules! single {
    ($name:expr, $program:literal, $attach:expr) => {
        const {
            &[programs(
                $name,
                &[Attachment {
                    program: $program,
                    attach: $attach,
                }],
            )]
        }
    };
}

/// A kprobe and its kretprobe (the entry's arguments parked for the return), then a
/// fallback.
macro_rules! probes {
    ($name:literal, $function:literal, $entry:literal, $exit:literal, $fallback:expr) => {
        const {
            &[
                programs(
                    $name,
                    &[
                        Attachment {
                            program: $exit,
                            attach: Attach::KRetProbe($function),
                        },
                        Attachment {
                            program: $entry,
                            attach: Attach::KProbe($function),
                        },
                    ],
                ),
                $fallback,
            ]
        }
    };
}

/// Where kprobes exist: namespaces made (by unshare or clone) at `create_new_namespaces`'s
/// return, and user namespaces at `create_user_ns`'s (it is not one of nsproxy's).
const CREATE_NAMESPACES: HookOption = programs(
    "kretprobe create_new_namespaces, create_user_ns",
    const {
        &[
            kretprobe("create_new_namespaces_exit", "create_new_namespaces"),
            kretprobe("create_user_ns_exit", "create_user_ns"),
            kprobe("create_new_namespaces_entry", "create_new_namespaces"),
            kprobe("create_user_ns_entry", "create_user_ns"),
        ]
    },
);

/// Where kprobes exist: the map files' own write functions, which no other write reaches.
const MAP_WRITE_PROBES: HookOption = programs(
    "kretprobe proc_uid_map_write, proc_gid_map_write, proc_setgroups_write",
    const {
        &[
            kretprobe("proc_map_write_exit", "proc_uid_map_write"),
            kretprobe("proc_map_write_exit", "proc_gid_map_write"),
            kretprobe("proc_map_write_exit", "proc_setgroups_write"),
            kprobe("proc_uid_map_write_entry", "proc_uid_map_write"),
            kprobe("proc_gid_map_write_entry", "proc_gid_map_write"),
            kprobe("proc_setgroups_write_entry", "proc_setgroups_write"),
        ]
    },
);

/// Elsewhere: a map file opened for writing (openat), reported at its close (or its
/// process's exit) with the map the kernel holds: a program on every write would cost every
/// write on the host.
const MAP_OPENS: HookOption = programs(
    "tracepoints sys_enter/exit_openat + sys_enter_close (map files opened for writing)",
    const {
        &[
            tp("sys_exit_openat", "sys_exit_openat"),
            tp("sys_enter_close", "sys_enter_close"),
            tp("sys_enter_openat", "sys_enter_openat"),
        ]
    },
);

/// Without kprobes: unshare at its tracepoints, and clone's new namespaces seen by the fork.
const UNSHARE_AND_FORK: HookOption = programs(
    "tracepoints sys_enter/exit_unshare + sched_process_fork",
    const {
        &[
            tp("sys_exit_ns_family", "sys_exit_unshare"),
            Attachment {
                program: "sched_process_fork_ns",
                attach: Attach::RawTracePoint("sched_process_fork"),
            },
            tp("sys_enter_ns_family", "sys_enter_unshare"),
        ]
    },
);

/// Without kprobes: the userspace link monitor.
const MONITOR_LINKS: HookOption = HookOption {
    name: "rtnetlink link monitor (host network namespace)",
    source: Source::RtnetlinkMonitor,
};

const MONITOR_MOVES: HookOption = HookOption {
    name: "rtnetlink link monitor: a veth's peer leaving for another namespace (netns id \
           matched to the namespaces of processes and nsfs mounts)",
    source: Source::RtnetlinkMonitor,
};

/// The ways to observe `kind`. Every kind is named: a new one does not compile until it has
/// a plan.
pub const fn options(kind: EventKind) -> &'static [HookOption] {
    match kind {
        EventKind::Exec => syscall!(
            "exec",
            "sys_enter_exec",
            "sys_exit_exec",
            ["execve", "execveat"]
        ),
        EventKind::Mount => mount_family!("mount"),
        EventKind::Umount => mount_family!("umount"),
        EventKind::PivotRoot => mount_family!("pivot_root"),
        EventKind::Fsopen => mount_family!("fsopen"),
        EventKind::Fsconfig => mount_family!("fsconfig"),
        EventKind::Fsmount => mount_family!("fsmount"),
        EventKind::MoveMount => mount_family!("move_mount"),
        EventKind::OpenTree => mount_family!("open_tree"),
        EventKind::MountSetattr => mount_family!("mount_setattr"),
        EventKind::Fork => single!(
            "raw_tracepoint sched_process_fork",
            "sched_process_fork",
            Attach::RawTracePoint("sched_process_fork")
        ),
        EventKind::Exit => single!(
            "tracepoint sched:sched_process_exit",
            "sched_process_exit",
            Attach::TracePoint("sched", "sched_process_exit")
        ),
        EventKind::Rename => single!(
            "tracepoint task:task_rename",
            "task_rename",
            Attach::TracePoint("task", "task_rename")
        ),
        EventKind::Namespaces => const { &[CREATE_NAMESPACES, UNSHARE_AND_FORK] },
        EventKind::Setns => syscall!(
            "setns",
            "sys_enter_ns_family",
            "sys_exit_ns_family",
            ["setns"]
        ),
        EventKind::Capset => security!("capset"),
        EventKind::Prctl => security!("prctl"),
        EventKind::Seccomp => security!("seccomp"),
        EventKind::IdMap => const { &[MAP_WRITE_PROBES, MAP_OPENS] },
        EventKind::CgroupMkdir => single!(
            "tracepoint cgroup:cgroup_mkdir",
            "cgroup_mkdir",
            Attach::TracePoint("cgroup", "cgroup_mkdir")
        ),
        EventKind::CgroupRmdir => single!(
            "tracepoint cgroup:cgroup_rmdir",
            "cgroup_rmdir",
            Attach::TracePoint("cgroup", "cgroup_rmdir")
        ),
        EventKind::CgroupAttach => single!(
            "tracepoint cgroup:cgroup_attach_task",
            "cgroup_attach_task",
            Attach::TracePoint("cgroup", "cgroup_attach_task")
        ),
        EventKind::NetdevMove => probes!(
            "kretprobe __dev_change_net_namespace",
            "__dev_change_net_namespace",
            "dev_change_net_namespace_entry",
            "dev_change_net_namespace_exit",
            MONITOR_MOVES
        ),
        EventKind::OomKill => single!(
            "tracepoint oom:mark_victim",
            "oom_mark_victim",
            Attach::TracePoint("oom", "mark_victim")
        ),
        EventKind::Signal => single!(
            "tracepoint signal:signal_generate (SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, \
                 SIGTERM)",
            "signal_generate",
            Attach::TracePoint("signal", "signal_generate")
        ),
        EventKind::Veth => probes!(
            "kretprobe veth_newlink",
            "veth_newlink",
            "veth_newlink_entry",
            "veth_newlink_exit",
            MONITOR_LINKS
        ),
    }
}

/// Every event kind and how to observe it, in kind order.
pub const PLANS: [Plan; EventKind::ALL.len()] = {
    let mut plans = [Plan {
        kind: EventKind::Exec,
        options: &[],
    }; EventKind::ALL.len()];
    let mut i = 0;
    while i < plans.len() {
        plans[i] = Plan {
            kind: EventKind::ALL[i],
            options: options(EventKind::ALL[i]),
        };
        i += 1;
    }
    plans
};

/// Every kernel function a plan probes.
pub fn kprobe_targets() -> impl Iterator<Item = &'static str> {
    PLANS
        .iter()
        .flat_map(|p| p.options)
        .filter_map(|o| match o.source {
            Source::Programs(list) => Some(list),
            Source::RtnetlinkMonitor => None,
        })
        .flatten()
        .filter_map(|a| match a.attach {
            Attach::KProbe(f) | Attach::KRetProbe(f) => Some(f),
            Attach::TracePoint(..) | Attach::RawTracePoint(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event kind has a plan; in each option, exit programs attach before entry ones.
    #[test]
    fn plans_cover_every_kind_and_attach_exits_first() {
        for (plan, kind) in PLANS.iter().zip(EventKind::ALL) {
            assert_eq!(plan.kind, kind);
            assert!(!plan.options.is_empty(), "no way to observe {kind:?}");
        }
        for plan in &PLANS {
            for option in plan.options {
                let Source::Programs(list) = option.source else {
                    continue;
                };
                let is_entry =
                    |a: &Attachment| a.program.contains("enter") || a.program.ends_with("_entry");
                if let Some(i) = list.iter().position(is_entry) {
                    assert!(
                        list[i..].iter().all(is_entry),
                        "{}: an exit attaches after an entry",
                        option.name
                    );
                    assert!(i > 0, "{}: no exit program", option.name);
                }
            }
        }
    }
}
