//! Root tests: namespace, setns and veth events from the real programs on this kernel (the
//! fallback hooks here; the kprobe hooks where the kernel has kprobes), checked against what
//! `/proc/PID/ns/*` and sysfs say.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracer::event::{Detail, Event, MapFile, NsInodes};
use tracer_integration::{require_root, Watch, TRACER};

/// Inode of `/proc/PID/ns/KIND`.
fn ns_inode(pid: u32, kind: &str) -> u32 {
    fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .ino() as u32
}

/// The first child of `pid`, waiting for it to appear.
fn child_of(pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            return c.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child of {pid} appeared");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether veth's kretprobe can be used here: kprobes, and BTF for veth's module (5.10
/// has none: the rtnetlink monitor reports veths there).
fn veth_kprobe_here() -> bool {
    kprobes_here() && Path::new("/sys/kernel/btf/veth").exists()
}

/// Whether the running kernel has function `name` (kallsyms).
fn kernel_has(name: &str) -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(name))
}

fn kprobes_here() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

fn namespace_events(events: &[Event]) -> Vec<(&Event, &str, u32, Vec<&str>, NsInodes)> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Namespaces {
                op,
                target_pid,
                new,
                ns,
                result,
                ..
            } if result.ret == 0 => Some((
                e,
                op.name(),
                *target_pid,
                new.iter().map(|k| k.name()).collect(),
                *ns,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn root_unshare_namespaces_match_proc() {
    let watch = Watch::start(&[]);
    let mut unshare = Command::new("unshare")
        .args(["-m", "-u", "-i", "-n", "-p", "-f", "sleep", "5"])
        .spawn()
        .unwrap();
    let unshare_pid = unshare.id();
    let sleep_pid = child_of(unshare_pid);
    // Wait for the child to have exec'd sleep, so its namespaces are final.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{sleep_pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "sleep never started");
        thread::sleep(Duration::from_millis(20));
    }
    let want = NsInodes {
        uts: ns_inode(sleep_pid, "uts"),
        ipc: ns_inode(sleep_pid, "ipc"),
        mnt: ns_inode(sleep_pid, "mnt"),
        pid: ns_inode(sleep_pid, "pid"),
        net: ns_inode(sleep_pid, "net"),
        cgroup: ns_inode(sleep_pid, "cgroup"),
        time: ns_inode(sleep_pid, "time"),
        user: ns_inode(sleep_pid, "user"),
    };
    let host_mnt = ns_inode(std::process::id(), "mnt");
    let host_cgroup = ns_inode(std::process::id(), "cgroup");
    unshare.kill().unwrap();
    unshare.wait().unwrap();
    let out = watch.stop();

    let events = namespace_events(&out.events);
    let mine: Vec<_> = events
        .iter()
        .filter(|(e, ..)| e.tgid == unshare_pid)
        .collect();
    assert_eq!(mine.len(), 1, "one namespace event from unshare: {mine:?}");
    let (ev, op, target, new, ns) = mine[0];
    let expected_op = if kprobes_here() { "create" } else { "unshare" };
    assert_eq!(*op, expected_op);
    assert_eq!(*target, unshare_pid);
    // Only the unshared kinds are new: not cgroup, not time.
    assert_eq!(*new, ["uts", "ipc", "mnt", "pid", "net"]);
    assert_eq!(*ns, want, "inodes equal /proc/{sleep_pid}/ns/*");
    assert_eq!(ns.cgroup, host_cgroup);
    assert!(ev.hook.contains("unshare") || ev.hook.contains("create_new_namespaces"));
    // The unshare process itself was still in the host's mount namespace when it called.
    assert_eq!(ev.mnt_ns, host_mnt);

    // Every event carries its task's namespaces: sleep's exec is inside the new ones.
    let sleep_exec = out
        .events
        .iter()
        .find(|e| e.tgid == sleep_pid && e.detail.kind_name() == "exec")
        .expect("sleep's exec");
    assert_eq!(
        (sleep_exec.mnt_ns, sleep_exec.pid_ns, sleep_exec.net_ns),
        (want.mnt, want.pid, want.net)
    );
}

/// Waits until `pid` runs `comm`.
fn wait_comm(pid: u32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != format!("{comm}\n")
    {
        assert!(Instant::now() < deadline, "{comm} never started");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `unshare -U -r -m -n`: the user namespace is new, its inode is `/proc/PID/ns/user`'s, and
/// every event of a process inside carries it. With kprobes it comes from create_user_ns, the
/// mount and network namespaces from create_new_namespaces; without, from one unshare.
#[test]
fn root_user_namespace_is_seen() {
    let watch = Watch::start(&[]);
    let mut unshare = Command::new("unshare")
        .args(["-U", "-r", "-m", "-n", "sleep", "5"])
        .spawn()
        .unwrap();
    let pid = unshare.id();
    wait_comm(pid, "sleep");
    let (user, mnt, net) = (
        ns_inode(pid, "user"),
        ns_inode(pid, "mnt"),
        ns_inode(pid, "net"),
    );
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let host_user = ns_inode(std::process::id(), "user");
    assert_ne!(user, host_user);
    unshare.kill().unwrap();
    unshare.wait().unwrap();
    let out = watch.stop();

    let events = namespace_events(&out.events);
    let mine: Vec<_> = events.iter().filter(|(e, ..)| e.tgid == pid).collect();
    let mut new: Vec<&str> = mine.iter().flat_map(|(.., n, _)| n.clone()).collect();
    new.sort_unstable();
    assert_eq!(new, ["mnt", "net", "user"], "{mine:?}");
    let (ev, ..) = mine
        .iter()
        .find(|(.., n, _)| n.contains(&"user"))
        .expect("an event with a new user namespace");
    for (_, _, _, _, ns) in &mine {
        assert_eq!(ns.user, user, "every event names the new user namespace");
    }
    let with_mnt = mine.iter().find(|(.., n, _)| n.contains(&"mnt")).unwrap();
    assert_eq!((with_mnt.4.mnt, with_mnt.4.net), (mnt, net));
    // Made by root: owned by uid 0.
    assert!(
        matches!(
            ev.detail,
            Detail::Namespaces {
                user_owner: Some(0),
                ..
            }
        ),
        "{:?}",
        ev.detail
    );
    if kprobes_here() {
        assert_eq!(ev.hook, "kretprobe:create_user_ns");
        assert_eq!(mine.len(), 2, "{mine:?}");
    } else {
        assert_eq!(ev.hook, "tracepoint:syscalls:sys_exit_unshare");
        assert_eq!(mine.len(), 1, "{mine:?}");
    }
    // The caller was in the host's user namespace; sleep's exec runs in the new one.
    assert_eq!(ev.user_ns, host_user);
    let exec = out
        .events
        .iter()
        .find(|e| e.tgid == pid && matches!(&e.detail, Detail::Exec { argv, .. } if argv.first().is_some_and(|a| a == "sleep")))
        .expect("sleep's exec");
    assert_eq!(exec.user_ns, user);
    // unshare -r wrote its own maps: `0 0 1`, and `deny` to setgroups first.
    let maps = id_maps(&out.events, pid, user);
    assert_eq!(
        maps.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        [MapFile::UidMap, MapFile::Setgroups, MapFile::GidMap]
    );
    assert_eq!(words(&maps[0].1), words(&uid_map));
    assert_eq!(maps[1].1, "deny");
}

/// Whitespace-separated words: `/proc/PID/uid_map` pads its columns.
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// The ID maps process `pid` wrote for its own user namespace `user`, in order: what the
/// path or (kprobe path) the namespace says.
fn id_maps(events: &[Event], pid: u32, user: u32) -> Vec<(MapFile, String)> {
    events
        .iter()
        .filter(|e| e.tgid == pid)
        .filter_map(|e| match &e.detail {
            Detail::IdMap {
                file,
                path,
                target_pid,
                mapped_ns,
                data,
                result,
            } if !result.failed() => {
                // With kprobes, what was written, as written; without, the map the kernel
                // holds when the file is closed, with the path it was opened by.
                assert_eq!(*mapped_ns, user, "{e:?}");
                if kprobes_here() {
                    assert!(e.hook.starts_with("kretprobe:proc_"), "{e:?}");
                    assert!(result.ret > 0, "{e:?}");
                } else {
                    assert_eq!(
                        (path.as_str(), *target_pid),
                        (&*format!("/proc/self/{}", file.name()), pid)
                    );
                    assert_eq!(e.hook, "tracepoint:syscalls:sys_enter_close");
                }
                Some((*file, data.clone()))
            }
            _ => None,
        })
        .collect()
}

/// `unshare -U --map-user=1000 --map-group=1000`: the map's line says host uid 0 is 1000
/// inside, as `/proc/PID/uid_map` does.
#[test]
fn root_id_maps_are_seen() {
    let watch = Watch::start(&[]);
    let mut unshare = Command::new("unshare")
        .args(["-U", "--map-user=1000", "--map-group=1000", "sleep", "5"])
        .spawn()
        .unwrap();
    let pid = unshare.id();
    wait_comm(pid, "sleep");
    let user = ns_inode(pid, "user");
    let (uid_map, gid_map) = (
        fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap(),
        fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap(),
    );
    unshare.kill().unwrap();
    unshare.wait().unwrap();
    let out = watch.stop();
    let maps = id_maps(&out.events, pid, user);
    let of = |file: MapFile| {
        maps.iter()
            .find(|(f, _)| *f == file)
            .unwrap_or_else(|| panic!("no {file:?} in {maps:?}"))
            .1
            .clone()
    };
    assert_eq!(words(&of(MapFile::UidMap)), words(&uid_map));
    assert_eq!(words(&of(MapFile::UidMap)), ["1000", "0", "1"]);
    assert_eq!(words(&of(MapFile::GidMap)), words(&gid_map));
}

/// A process in a user namespace of its own, whose maps are not written yet.
fn user_ns_owner() -> std::process::Child {
    let owner = Command::new("unshare")
        .args(["-U", "sleep", "10"])
        .spawn()
        .unwrap();
    wait_comm(owner.id(), "sleep");
    owner
}

/// A process that writes a map and exits without closing the file: where no kprobe sees the
/// write (this machine), the map is reported at its exit (by the program the exit program
/// hands over to, which then sends the exit itself), followed by its one exit with its code.
#[test]
fn root_id_map_held_at_exit_is_reported_before_the_exit() {
    let watch = Watch::start(&[]);
    let mut owner = user_ns_owner();
    let user = ns_inode(owner.id(), "user");
    let script = format!(
        "import os\nfd = os.open('/proc/{}/uid_map', os.O_WRONLY)\n\
         os.write(fd, b'0 1000 1\\n')\nos._exit(7)",
        owner.id()
    );
    let mut writer = Command::new("python3")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let pid = writer.id();
    assert_eq!(writer.wait().unwrap().code(), Some(7));
    owner.kill().unwrap();
    owner.wait().unwrap();
    let events = watch.stop().events;
    let of_writer: Vec<&Event> = events.iter().filter(|e| e.tgid == pid).collect();
    let map = of_writer
        .iter()
        .position(|e| {
            matches!(&e.detail, Detail::IdMap { file: MapFile::UidMap, mapped_ns, data, .. }
                if *mapped_ns == user && words(data) == ["0", "1000", "1"])
        })
        .unwrap_or_else(|| panic!("no uid_map of user:[{user}] in {of_writer:#?}"));
    let exits: Vec<usize> = (0..of_writer.len())
        .filter(|&i| matches!(of_writer[i].detail, Detail::Exit { .. }))
        .collect();
    let [exit] = exits[..] else {
        panic!("not one exit: {of_writer:#?}");
    };
    assert_eq!(
        tracer_integration::exit_of(of_writer[exit]),
        Some((Some(7), None))
    );
    if !kprobes_here() {
        assert_eq!(of_writer[map].hook, "tracepoint:sched:sched_process_exit");
        assert!(map < exit, "the map, then the exit: {of_writer:#?}");
    }
}

#[test]
fn root_clone_with_namespace_flags() {
    use nix::sched::{clone, CloneFlags};
    let watch = Watch::start(&[]);
    let mut stack = vec![0u8; 256 * 1024];
    let flags = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    // SAFETY: the child only sleeps and returns; it touches nothing shared.
    let child = unsafe {
        clone(
            Box::new(|| {
                thread::sleep(Duration::from_millis(500));
                0
            }),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .unwrap();
    let child_pid = child.as_raw() as u32;
    let (uts, ipc) = (ns_inode(child_pid, "uts"), ns_inode(child_pid, "ipc"));
    nix::sys::wait::waitpid(child, None).unwrap();
    let out = watch.stop();

    let events = namespace_events(&out.events);
    let mine: Vec<_> = events
        .iter()
        .filter(|(e, _, target, ..)| *target == child_pid || e.tgid == std::process::id())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let (ev, op, target, new, ns) = mine[0];
    assert_eq!(ev.tgid, std::process::id(), "reported from the parent");
    assert_eq!(*new, ["uts", "ipc"]);
    assert_eq!((ns.uts, ns.ipc), (uts, ipc));
    if kprobes_here() {
        assert_eq!(*op, "create");
    } else {
        assert_eq!(*op, "clone");
        assert_eq!(*target, child_pid);
        assert_eq!(ev.hook, "raw_tracepoint:sched_process_fork");
    }
}

#[test]
fn root_setns_is_seen() {
    let watch = Watch::start(&[]);
    let mut holder = Command::new("unshare")
        .args(["-n", "sleep", "5"])
        .spawn()
        .unwrap();
    let holder_pid = holder.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{holder_pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "sleep never started");
        thread::sleep(Duration::from_millis(20));
    }
    let netns = ns_inode(holder_pid, "net");
    let nsenter = Command::new("nsenter")
        .args(["-t", &holder_pid.to_string(), "-n", "true"])
        .spawn()
        .unwrap();
    let nsenter_pid = nsenter.id();
    assert!(nsenter.wait_with_output().unwrap().status.success());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = watch.stop();
    let setns: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.tgid == nsenter_pid)
        .filter_map(|e| match &e.detail {
            Detail::Setns {
                joined, ns, result, ..
            } => Some((
                joined
                    .iter()
                    .map(|k| k.name().to_string())
                    .collect::<Vec<_>>(),
                ns.net,
                result.ret,
                e.hook.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        setns,
        [(
            vec!["net".to_string()],
            netns,
            0,
            "tracepoint:syscalls:sys_exit_setns".to_string()
        )]
    );
}

#[test]
fn root_veth_pair_is_seen() {
    let watch = Watch::start(&[]);
    let ip = |args: &[&str]| {
        let st = Command::new("ip")
            .args(args)
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    // Clean up a leftover from an interrupted run before starting.
    let _ = Command::new("ip")
        .args(["link", "del", "trcvA"])
        .stderr(Stdio::null())
        .status();
    ip(&[
        "link", "add", "trcvA", "type", "veth", "peer", "name", "trcvB",
    ]);
    let index = |n: &str| nix::net::if_::if_nametoindex(n).unwrap();
    let (a, b) = (index("trcvA"), index("trcvB"));
    ip(&["link", "del", "trcvA"]);
    // The monitor reports asynchronously: give the notification time to arrive.
    thread::sleep(Duration::from_millis(300));
    let out = watch.stop();
    let host_net = ns_inode(std::process::id(), "net");
    let veths: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Veth {
                name,
                peer,
                ifindex,
                peer_ifindex,
                netns,
                peer_netns,
                result,
            } if name.starts_with("trcv") => Some((
                name.as_str(),
                peer.as_str(),
                *ifindex,
                *peer_ifindex,
                *netns,
                *peer_netns,
                result.ret,
                e.hook.as_str(),
            )),
            _ => None,
        })
        .collect();
    let hook = if veth_kprobe_here() {
        "kretprobe:veth_newlink"
    } else {
        "rtnetlink:RTNLGRP_LINK"
    };
    assert_eq!(
        veths,
        [("trcvA", "trcvB", a, b, host_net, host_net, 0, hook)]
    );
}

/// One end of a veth moved into another namespace: a move event naming the device and the
/// inode of the namespace it went into (`/proc/PID/ns/net` of a process there).
#[test]
fn root_veth_moved_into_a_namespace_is_seen() {
    let watch = Watch::start(&[]);
    let mut holder = Command::new("unshare")
        .args(["-n", "sleep", "10"])
        .spawn()
        .unwrap();
    let pid = holder.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "sleep never started");
        thread::sleep(Duration::from_millis(20));
    }
    let netns = ns_inode(pid, "net");
    let _ = Command::new("ip")
        .args(["link", "del", "trcmA"])
        .stderr(Stdio::null())
        .status();
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip(&[
        "link", "add", "trcmA", "type", "veth", "peer", "name", "trcmB",
    ]);
    let b = nix::net::if_::if_nametoindex("trcmB").unwrap();
    ip(&["link", "set", "trcmB", "netns", &pid.to_string()]);
    // The monitor reports asynchronously (and resolves the namespace): give it time.
    thread::sleep(Duration::from_millis(500));
    ip(&["link", "del", "trcmA"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = watch.stop();
    let host_net = ns_inode(std::process::id(), "net");
    let moves: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::NetdevMove {
                name,
                ifindex,
                netns: from,
                to_netns,
                result,
            } if name.starts_with("trcm") => Some((
                name.as_str(),
                *ifindex,
                *from,
                *to_netns,
                result.ret,
                e.hook.as_str(),
            )),
            _ => None,
        })
        .collect();
    let hook = if kprobes_here() && kernel_has("__dev_change_net_namespace") {
        "kretprobe:__dev_change_net_namespace"
    } else {
        "rtnetlink:RTNLGRP_LINK"
    };
    assert_eq!(moves, [("trcmB", b, host_net, netns, 0, hook)]);
}

/// A cgroup made, a process moved in, the cgroup removed: three events with its path, id
/// and the process; the id is what that process's own events carry.
#[test]
fn root_cgroup_events_are_seen() {
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|r| Path::new(r).join("cgroup.procs").exists() && cgroup2_at(r))
        .expect("a cgroup2 hierarchy");
    let name = format!("tracer-test-{}", std::process::id());
    let dir = Path::new(root).join(&name);
    let watch = Watch::start(&[]);
    fs::create_dir(&dir).unwrap();
    let id = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&dir).unwrap());
    let mut sleeper = Command::new("sleep").arg("10").spawn().unwrap();
    fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    // An event of the process inside, to carry the cgroup's id.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sleeper.wait().unwrap();
    fs::remove_dir(&dir).unwrap();
    let out = watch.stop();
    let path = format!("/{name}");
    let mine: Vec<(&str, u64, i32, u32)> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::CgroupMkdir {
                id, root, path: p, ..
            } if *p == path => Some(("mkdir", *id, *root, 0)),
            Detail::CgroupAttach {
                id,
                root,
                path: p,
                target_pid,
                ..
            } if *p == path => Some(("attach", *id, *root, *target_pid)),
            Detail::CgroupRmdir {
                id, root, path: p, ..
            } if *p == path => Some(("rmdir", *id, *root, 0)),
            _ => None,
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("mkdir", id, 0, 0),
            ("attach", id, 0, sleeper.id()),
            ("rmdir", id, 0, 0)
        ]
    );
    let exit = out
        .events
        .iter()
        .find(|e| e.tgid == sleeper.id() && matches!(e.detail, Detail::Exit { .. }))
        .expect("the sleeper's exit");
    assert_eq!(
        exit.cgroup_id, id,
        "the events of a process carry its cgroup's id"
    );
}

fn cgroup2_at(dir: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(dir) && l.contains(" - cgroup2 "))
}

#[test]
fn root_check_reports_every_kind() {
    require_root();
    let out = Command::new(&*TRACER).arg("check").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    // Every kind this kernel has (one whose syscall came later is named as absent).
    let absent = stdout
        .lines()
        .find_map(|l| l.strip_prefix("not in this kernel at all (its syscall came later): "))
        .map_or(0, |names| names.split(", ").count());
    let n = tracer::event::EventKind::ALL.len() - absent;
    assert!(
        stdout.contains(&format!("{n}/{n} event kinds observed")),
        "{stdout}"
    );
    // The row of a hook: its name, availability and whether it is used.
    let used = |hook: &str| {
        stdout
            .lines()
            .any(|l| l.contains(hook) && l.contains("┆ yes") && l.trim_end().ends_with("yes  │"))
    };
    if kprobes_here() {
        assert!(used("kretprobe create_new_namespaces"), "{stdout}");
        assert!(used("kretprobe proc_uid_map_write"), "{stdout}");
        if veth_kprobe_here() {
            assert!(used("kretprobe veth_newlink"), "{stdout}");
        } else {
            assert!(stdout.contains("no module BTF"), "{stdout}");
        }
        // The table wraps the hook's name: its first line names the kind. Before 5.13 the
        // function is not there (the monitor sees the moves).
        if kernel_has("__dev_change_net_namespace") {
            assert!(
                stdout.lines().any(|l| l.contains("netdev_move")
                    && l.contains("kretprobe")
                    && l.trim_end().ends_with("yes  │")),
                "{stdout}"
            );
        } else {
            assert!(
                stdout.contains("__dev_change_net_namespace not in"),
                "{stdout}"
            );
        }
    } else {
        assert_eq!(
            stdout.matches("no: kprobes: not in this kernel").count(),
            4,
            "namespaces, veth, netdev_move and id_map say why their kprobes are not used:\n\
             {stdout}"
        );
        assert!(used("rtnetlink link monitor"), "{stdout}");
        assert!(used("sys_enter/exit_openat"), "{stdout}");
    }
}

/// An idmapped mount (`mount_setattr` with `MOUNT_ATTR_IDMAP`, made by the `idmap-mount`
/// helper in a mount namespace of its own): shown as such, with the inode of the user
/// namespace its ids are mapped through; a file of root's reads as uid 1000 through it (the
/// namespace maps its 0 to the host's 1000, written here as root).
/// Where the kernel or tmpfs cannot (5.10 has no mount_setattr, tmpfs takes idmaps from
/// 6.3), the helper says so and the test checks nothing more.
#[test]
fn root_idmapped_mount_is_shown() {
    let watch = Watch::start(&[]);
    let mut owner = user_ns_owner();
    for file in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{}/{file}", owner.id()), "0 1000 1\n").unwrap();
    }
    let helper = env!("CARGO_BIN_EXE_idmap-mount");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        "mount -t tmpfs none {d} && mkdir {d}/src {d}/dst && mount -t tmpfs none {d}/src \
         && touch {d}/src/f && {helper} {d}/src {d}/dst {} && stat -c %u {d}/dst/f",
        owner.id()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let user = ns_inode(owner.id(), "user");
    owner.kill().unwrap();
    owner.wait().unwrap();
    let events = watch.stop().events;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        assert!(stdout.starts_with("unsupported:"), "{stdout}");
        eprintln!("idmapped mounts not here: {stdout}");
        return;
    }
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [format!("idmapped user:[{user}]").as_str(), "1000"]
    );
    let setattr = events
        .iter()
        .find_map(|e| match &e.detail {
            Detail::MountSetattr {
                idmap_userns,
                attr_set,
                result,
                ..
            } if e.comm == "idmap-mount" && *idmap_userns != 0 => {
                Some((*idmap_userns, *attr_set, result.ret, e.to_string()))
            }
            _ => None,
        })
        .expect("the helper's mount_setattr");
    assert_eq!(setattr.0, user, "{}", setattr.3);
    assert_eq!(setattr.1 & 0x0010_0000, 0x0010_0000);
    assert_eq!(setattr.2, 0);
    assert!(setattr.3.contains("IDMAP"), "{}", setattr.3);
    assert!(
        setattr
            .3
            .contains(&format!("idmapped through user:[{user}]")),
        "{}",
        setattr.3
    );
}
