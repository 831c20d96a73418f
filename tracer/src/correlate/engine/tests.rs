//! Each attribution rule on small hand-built event sequences: two containers started at once
//! by the same daemons must each get exactly their own facts.

use super::*;
use crate::{
    correlate::model::FactKind,
    event::{NsKind, NsOp, SysResult},
};

const HOST: HostNs = HostNs {
    mnt: 1,
    pid: 2,
    net: 3,
};

struct Trace {
    engine: Engine,
    ts: u64,
}

fn ok() -> SysResult {
    SysResult::from_ret(0)
}

impl Trace {
    fn new() -> Self {
        let cgroups = BTreeMap::new();
        Self {
            engine: Engine::new(&Context {
                host: HOST,
                cgroups: &cgroups,
            }),
            ts: 0,
        }
    }

    /// Feeds an event of process `tgid` (`comm`) in mount and network namespaces `mnt`,
    /// `net`.
    fn feed(&mut self, tgid: u32, comm: &str, (mnt, net): (u32, u32), detail: Detail) -> bool {
        self.ts += 1_000;
        let ev = Event {
            ts_ns: self.ts,
            comm: comm.into(),
            mnt_ns: mnt,
            pid_ns: HOST.pid,
            net_ns: net,
            ..Event::for_test(tgid, detail)
        };
        self.engine.feed(&ev)
    }

    fn host(&mut self, tgid: u32, comm: &str, detail: Detail) -> bool {
        self.feed(tgid, comm, (HOST.mnt, HOST.net), detail)
    }

    fn exec(&mut self, tgid: u32, comm: &str, ns: (u32, u32), argv: &str) {
        let argv: Vec<String> = argv.split(' ').map(str::to_string).collect();
        self.feed(
            tgid,
            comm,
            ns,
            Detail::Exec {
                filename: format!("/usr/bin/{}", argv[0]),
                argv,
                argv_truncated: false,
                filename_truncated: false,
                argv_unreadable: false,
                execveat: None,
                result: ok(),
            },
        );
    }

    fn mount(&mut self, tgid: u32, comm: &str, ns: (u32, u32), fstype: &str, src: &str, dst: &str) {
        self.feed(
            tgid,
            comm,
            ns,
            Detail::Mount {
                fstype: fstype.into(),
                source: src.into(),
                target: dst.into(),
                flags: 0,
                result: ok(),
            },
        );
    }

    /// `runc run ID` (pid `runc`) starting a container in new namespaces (`mnt`, `net`)
    /// whose init binds `rootfs` as its root and execs `sleep`.
    fn runc_container(&mut self, id: &str, runc: u32, (mnt, net): (u32, u32), rootfs: &str) {
        self.exec(
            runc,
            "runc",
            (HOST.mnt, HOST.net),
            &format!("runc run {id}"),
        );
        let init = runc + 1;
        self.host(runc, "runc", Detail::Fork { child_pid: init });
        self.feed(
            init,
            "runc:[1:CHILD]",
            (HOST.mnt, HOST.net),
            Detail::Namespaces {
                op: NsOp::Unshare,
                flags: 0,
                target_pid: init,
                user_owner: None,
                new: vec![NsKind::Mnt, NsKind::Net],
                ns: NsInodes {
                    mnt,
                    net,
                    ..NsInodes::default()
                },
                result: ok(),
            },
        );
        self.mount(init, "runc:[2:INIT]", (mnt, net), "bind", rootfs, rootfs);
        self.exec(init, "runc:[2:INIT]", (mnt, net), "sleep 1");
    }

    fn veth(&mut self, name: &str, peer: &str, peer_netns: u32) {
        self.host(
            0,
            "",
            Detail::Veth {
                name: name.into(),
                peer: peer.into(),
                ifindex: 10,
                peer_ifindex: 11,
                netns: HOST.net,
                peer_netns,
                result: ok(),
            },
        );
    }

    fn moved(&mut self, by: u32, name: &str, to: u32) {
        self.host(
            by,
            "dockerd",
            Detail::NetdevMove {
                name: name.into(),
                ifindex: 11,
                netns: HOST.net,
                to_netns: to,
                result: ok(),
            },
        );
    }

    fn finish(self) -> Correlation {
        self.engine.finish_all()
    }
}

fn by_id<'a>(c: &'a Correlation, id: &str) -> &'a Container {
    c.containers
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no container {id}"))
}

fn fact(c: &Container, kind: FactKind) -> Vec<(&str, Evidence)> {
    c.facts
        .iter()
        .filter(|f| f.fact == kind)
        .map(|f| (f.value.as_str(), f.evidence))
        .collect()
}

const A: &str = "/var/lib/docker/overlay2/aaaa/merged";
const B: &str = "/var/lib/docker/overlay2/bbbb/merged";

/// dockerd mounts both images before either runtime runs; each container's init binds
/// its own, which is the only evidence: the overlays (and the init layer) follow it.
#[test]
fn overlays_follow_the_rootfs_bind() {
    let mut t = Trace::new();
    let d = 50;
    t.mount(
        d,
        "dockerd",
        (1, 3),
        "overlay",
        "overlay",
        "/var/lib/docker/overlay2/aaaa-init/merged",
    );
    t.host(
        d,
        "dockerd",
        Detail::Umount {
            target: "/var/lib/docker/overlay2/aaaa-init/merged".into(),
            flags: 2,
            result: ok(),
        },
    );
    t.mount(d, "dockerd", (1, 3), "overlay", "overlay", A);
    t.mount(d, "dockerd", (1, 3), "overlay", "overlay", B);
    // The second container starts first.
    t.runc_container("ctr-b", 200, (20, 21), B);
    t.runc_container("ctr-a", 100, (10, 11), A);
    let c = t.finish();
    let (a, b) = (by_id(&c, "ctr-a"), by_id(&c, "ctr-b"));
    assert_eq!(a.rootfs.as_deref(), Some(A));
    assert_eq!(b.rootfs.as_deref(), Some(B));
    assert_eq!(fact(a, FactKind::Rootfs), [(A, Evidence::RootfsPath)]);
    let image = |c: &Container| {
        c.phases
            .iter()
            .find(|p| p.kind == PhaseKind::ImageMount)
            .map(|p| (p.events, p.evidence))
    };
    assert_eq!(
        image(a),
        Some((3, Evidence::RootfsPath)),
        "init layer, its unmount, the root"
    );
    assert_eq!(image(b), Some((1, Evidence::RootfsPath)));
    assert_eq!(c.unattributed_total, 0);
}

/// Two veth pairs made in the host's namespace; each end moved into one container's
/// namespace gives that pair to that container, whatever the order.
#[test]
fn veths_follow_the_namespace_they_move_into() {
    let mut t = Trace::new();
    t.veth("vethA0", "vethA1", HOST.net);
    t.veth("vethB0", "vethB1", HOST.net);
    t.runc_container("ctr-a", 100, (10, 11), A);
    t.runc_container("ctr-b", 200, (20, 21), B);
    t.moved(50, "vethB1", 21);
    t.moved(50, "vethA1", 11);
    let c = t.finish();
    let (a, b) = (by_id(&c, "ctr-a"), by_id(&c, "ctr-b"));
    assert_eq!(a.veths, ["vethA0", "vethA1"]);
    assert_eq!(b.veths, ["vethB0", "vethB1"]);
    assert_eq!(
        fact(b, FactKind::Veth),
        [("vethB0", Evidence::Netns), ("vethB1", Evidence::Netns)]
    );
    assert_eq!(c.unattributed_total, 0);
}

/// A veth that never moves into any container's namespace is no container's.
#[test]
fn a_veth_nothing_names_is_unattributed() {
    let mut t = Trace::new();
    t.veth("stray0", "stray1", HOST.net);
    t.runc_container("ctr-a", 100, (10, 11), A);
    let c = t.finish();
    assert!(by_id(&c, "ctr-a").veths.is_empty());
    assert_eq!(c.unattributed_total, 1);
    assert!(
        c.unattributed[0].key.contains("stray0"),
        "{:?}",
        c.unattributed
    );
}

/// dockerd's netns bind mount names the container by its init's pid; its setns into that
/// namespace (configuring the interface) by the namespace.
#[test]
fn netns_bind_mount_and_setns_by_pid_and_namespace() {
    let mut t = Trace::new();
    t.runc_container("ctr-a", 100, (10, 11), A);
    t.runc_container("ctr-b", 200, (20, 21), B);
    t.mount(
        50,
        "dockerd",
        (1, 3),
        "bind",
        "/proc/201/ns/net",
        "/var/run/docker/netns/x",
    );
    t.host(
        50,
        "dockerd",
        Detail::Setns {
            fd: 9,
            nstype: 0,
            joined: vec![NsKind::Net],
            ns: NsInodes {
                net: 11,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    let c = t.finish();
    let net = |c: &Container| {
        c.phases
            .iter()
            .find(|p| p.kind == PhaseKind::Network)
            .map(|p| (p.events, p.evidence))
    };
    assert_eq!(net(by_id(&c, "ctr-b")), Some((1, Evidence::NetnsOfPid)));
    assert_eq!(net(by_id(&c, "ctr-a")), Some((1, Evidence::Netns)));
}

/// podman makes the namespace (and keeps it with a bind mount from inside it) and netavark
/// puts the veth's end there before the container exists; the runtime joining it later
/// ties all of it to the container.
#[test]
fn a_namespace_made_ahead_is_claimed_when_the_container_joins_it() {
    let mut t = Trace::new();
    let n = 31;
    t.host(
        60,
        "podman",
        Detail::Namespaces {
            op: NsOp::Unshare,
            flags: 0,
            target_pid: 60,
            user_owner: None,
            new: vec![NsKind::Net],
            ns: NsInodes {
                net: n,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    t.mount(
        60,
        "podman",
        (1, n),
        "none",
        "/proc/60/task/61/ns/net",
        "/run/netns/netns-1",
    );
    t.veth("veth0", "", n);
    t.exec(300, "runc", (1, 3), "runc create ctr-p");
    t.host(300, "runc", Detail::Fork { child_pid: 301 });
    t.feed(
        301,
        "runc:[1:CHILD]",
        (1, 3),
        Detail::Setns {
            fd: 5,
            nstype: 0,
            joined: vec![NsKind::Net],
            ns: NsInodes {
                net: n,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    let c = t.finish();
    let p = by_id(&c, "ctr-p");
    assert_eq!(p.veths, ["veth0"]);
    assert_eq!(fact(p, FactKind::Veth), [("veth0", Evidence::Netns)]);
    let net = p
        .phases
        .iter()
        .find(|ph| ph.kind == PhaseKind::Network)
        .unwrap();
    assert_eq!(net.events, 3, "the namespace, its bind mount, the veth");
    assert_eq!(c.unattributed_total, 0);
}

/// A second container joining the first one's namespace shares it; the veth stays the
/// first one's.
#[test]
fn a_shared_namespace_belongs_to_its_first_owner() {
    let mut t = Trace::new();
    t.veth("vethA0", "vethA1", HOST.net);
    t.runc_container("pod", 100, (10, 11), A);
    t.moved(50, "vethA1", 11);
    t.exec(200, "runc", (1, 3), "runc run app");
    t.host(200, "runc", Detail::Fork { child_pid: 201 });
    t.feed(
        201,
        "runc:[1:CHILD]",
        (1, 3),
        Detail::Setns {
            fd: 5,
            nstype: 0,
            joined: vec![NsKind::Net],
            ns: NsInodes {
                net: 11,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    let c = t.finish();
    let app = by_id(&c, "app");
    assert_eq!(app.shares_netns_with.as_deref(), Some("pod"));
    assert!(app.veths.is_empty());
    assert_eq!(by_id(&c, "pod").veths.len(), 2);
}

/// cgroups: made by the runtime (process tree; one fact for every v1 hierarchy's mkdir),
/// or by a daemon for a container, named by its path (systemd's scope) or by the
/// container's process moved in.
#[test]
fn cgroups_by_process_path_and_attach() {
    const ID: &str = "c468aa9aa8fc0a21afadb17947872fdc78bfd612f3b64f3440ec48c033c2c924";
    let mut t = Trace::new();
    t.runc_container("ctr-a", 100, (10, 11), A);
    for root in [0, 3, 4] {
        t.host(
            100,
            "runc",
            Detail::CgroupMkdir {
                id: 9,
                root,
                level: 1,
                path: "/ctr-a".into(),
            },
        );
    }
    t.host(
        1,
        "systemd",
        Detail::CgroupAttach {
            id: 8,
            root: 0,
            level: 2,
            path: "/system.slice/x.scope".into(),
            target_pid: 101,
        },
    );
    t.exec(
        400,
        "containerd-shim",
        (1, 3),
        &format!("containerd-shim-runc-v2 -namespace moby -id {ID} start"),
    );
    t.host(
        1,
        "systemd",
        Detail::CgroupMkdir {
            id: 7,
            root: 0,
            level: 2,
            path: format!("/system.slice/docker-{ID}.scope"),
        },
    );
    // An unrelated scope.
    let related = t.host(
        1,
        "systemd",
        Detail::CgroupMkdir {
            id: 6,
            root: 0,
            level: 2,
            path: "/system.slice/cron.service".into(),
        },
    );
    assert!(!related);
    let c = t.finish();
    let a = by_id(&c, "ctr-a");
    assert_eq!(a.cgroups, ["/ctr-a", "/system.slice/x.scope"]);
    assert_eq!(
        fact(a, FactKind::Cgroup),
        [
            ("/ctr-a", Evidence::ProcessTree),
            ("/system.slice/x.scope", Evidence::CgroupAttach)
        ]
    );
    let d = by_id(&c, ID);
    assert_eq!(
        fact(d, FactKind::Cgroup),
        [(
            format!("/system.slice/docker-{ID}.scope").as_str(),
            Evidence::CgroupPath
        )]
    );
    let phase = a
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Cgroup)
        .unwrap();
    assert_eq!(phase.events, 4);
}

/// The same id started again after it exited is a second lifecycle, not a merge.
#[test]
fn a_restart_is_its_own_lifecycle() {
    let mut t = Trace::new();
    t.runc_container("web", 100, (10, 11), A);
    t.feed(
        101,
        "sleep",
        (10, 11),
        Detail::Exit {
            exit_code: Some(3),
            signal: None,
            core_dumped: false,
        },
    );
    t.exec(150, "runc", (1, 3), "runc delete web");
    t.runc_container("web", 200, (20, 21), A);
    t.feed(
        201,
        "sleep",
        (20, 21),
        Detail::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
        },
    );
    let c = t.finish();
    let starts: Vec<(u32, Option<i32>, u32)> = c
        .containers
        .iter()
        .map(|c| (c.lifecycle, c.exit_code, c.ns.net))
        .collect();
    assert_eq!(starts, [(1, Some(3), 11), (2, Some(0), 21)]);
    assert!(c.containers[0]
        .phases
        .iter()
        .any(|p| p.kind == PhaseKind::Delete));
    assert!(!c.containers[1]
        .phases
        .iter()
        .any(|p| p.kind == PhaseKind::Delete));
}

/// A path holding an id not seen yet waits for that container (dockerd's shm mount before
/// the shim).
#[test]
fn a_path_naming_an_id_waits_for_it() {
    const ID: &str = "c468aa9aa8fc0a21afadb17947872fdc78bfd612f3b64f3440ec48c033c2c924";
    let mut t = Trace::new();
    t.mount(
        50,
        "dockerd",
        (1, 3),
        "tmpfs",
        "shm",
        &format!("/var/lib/docker/containers/{ID}/mounts/shm"),
    );
    t.exec(
        400,
        "containerd-shim",
        (1, 3),
        &format!("containerd-shim-runc-v2 -namespace moby -id {ID} start"),
    );
    let c = t.finish();
    let d = by_id(&c, ID);
    assert_eq!(d.mounts, 1);
    assert!(d.phases.iter().any(|p| p.evidence == Evidence::IdInPath));
}

/// A veth moved into a namespace nothing claimed waits under its inode; when the kernel
/// reuses that inode for a new namespace, the old wait is given up, not handed to the new
/// namespace's container.
#[test]
fn a_reused_netns_inode_does_not_inherit_what_waited_for_the_old_one() {
    let mut t = Trace::new();
    t.veth("vethold", "eth0", HOST.net);
    t.moved(50, "eth0", 77);
    t.runc_container("fresh", 100, (70, 77), "/run/fresh/rootfs");
    t.veth("vethnew", "eth1", HOST.net);
    t.moved(50, "eth1", 77);
    let c = t.finish();
    let fresh = by_id(&c, "fresh");
    assert_eq!(fresh.veths, ["vethnew", "eth1"], "only its own veth");
    assert!(c.unattributed_total >= 2, "the old veth is unattributed");
}

/// Past `max_containers`, the oldest that have exited are dropped and counted; running ones
/// stay, and what pointed to a dropped one points nowhere.
#[test]
fn containers_past_the_limit_are_dropped_oldest_exited_first() {
    let mut t = Trace::new();
    t.engine.limits.max_containers = 2;
    for (i, id) in ["one", "two", "three"].iter().enumerate() {
        let runc = 100 + 10 * i as u32;
        t.runc_container(
            id,
            runc,
            (70 + i as u32, 80 + i as u32),
            &format!("/run/{id}/rootfs"),
        );
        if *id != "two" {
            t.host(
                runc + 1,
                "sleep",
                Detail::Exit {
                    exit_code: Some(0),
                    signal: None,
                    core_dumped: false,
                },
            );
        }
    }
    let c = t.finish();
    let ids: Vec<&str> = c.containers.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["two", "three"], "the first, exited, is dropped");
    assert_eq!(c.containers_dropped, 1);
}

/// The rtnetlink monitor's events can reach the engine before the ring's: a veth put in a
/// namespace read before the namespace's creation is still the container's (only what
/// happened before a namespace was made is about an older one with its inode).
#[test]
fn a_veth_read_before_its_namespace_was_made_is_still_claimed() {
    let mut t = Trace::new();
    let n = 41;
    t.ts = 10_000;
    t.veth("veth9", "", n);
    t.ts = 5_000;
    t.host(
        60,
        "podman",
        Detail::Namespaces {
            op: NsOp::Unshare,
            flags: 0,
            target_pid: 60,
            user_owner: None,
            new: vec![NsKind::Net],
            ns: NsInodes {
                net: n,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    t.ts = 20_000;
    t.exec(300, "runc", (1, 3), "runc create ctr-q");
    t.host(300, "runc", Detail::Fork { child_pid: 301 });
    t.feed(
        301,
        "runc:[1:CHILD]",
        (1, 3),
        Detail::Setns {
            fd: 5,
            nstype: 0,
            joined: vec![NsKind::Net],
            ns: NsInodes {
                net: n,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    let c = t.finish();
    assert_eq!(by_id(&c, "ctr-q").veths, ["veth9"]);
    assert_eq!(c.unattributed_total, 0);
}

/// The rtnetlink monitor's move of a veth end is read before the ring's event that made the
/// namespace it moved into (the built-in runtime clones its init, then moves the end): the
/// pair, made before that namespace, is still the container's with the move.
#[test]
fn a_pair_moved_before_its_namespace_was_read_follows_the_move() {
    let mut t = Trace::new();
    t.ts = 10_000;
    t.veth("tvaaaa", "tpaaaa", HOST.net);
    t.ts = 30_000;
    t.moved(0, "tpaaaa", 11);
    t.ts = 14_000;
    t.runc_container("ctr-a", 100, (10, 11), A);
    let c = t.finish();
    let a = by_id(&c, "ctr-a");
    assert_eq!(a.veths, ["tpaaaa", "tvaaaa"]);
    assert_eq!(c.unattributed_total, 0, "{:?}", c.unattributed);
}

/// A runtime's init setting up security: its probes of the kernel are in no phase; the drop,
/// the capabilities, no_new_privs and the filter are the security phase and its summary.
#[test]
fn security_setup_is_its_own_phase() {
    let mut t = Trace::new();
    let (runc, init, ns) = (300, 301, (30, 31));
    t.exec(runc, "runc", (HOST.mnt, HOST.net), "runc run ctr-s");
    t.host(runc, "runc", Detail::Fork { child_pid: init });
    let seccomp = |operation, filter_len, ret| Detail::Seccomp {
        operation,
        flags: 0,
        filter_len,
        result: SysResult::from_ret(ret),
    };
    let prctl = |option, arg, filter_len| Detail::Prctl {
        option,
        arg,
        filter_len,
        result: ok(),
    };
    t.feed(init, "runc:[2:INIT]", ns, seccomp(2, 0, 0));
    t.feed(init, "runc:[2:INIT]", ns, seccomp(1, 0, -14));
    t.feed(init, "runc:[2:INIT]", ns, prctl(24, 21, 0));
    t.feed(init, "runc:[2:INIT]", ns, prctl(24, 16, 0));
    let caps = 1 | 1 << 5;
    t.feed(
        init,
        "runc:[2:INIT]",
        ns,
        Detail::Capset {
            target_pid: 0,
            version: 0x2008_0522,
            effective: caps,
            permitted: caps,
            inheritable: 0,
            result: ok(),
        },
    );
    t.feed(init, "runc:[2:INIT]", ns, prctl(38, 1, 0));
    t.feed(init, "runc:[2:INIT]", ns, prctl(22, 2, 974));
    t.exec(init, "runc:[2:INIT]", ns, "sleep 1");
    // After the start: an exec session's, not the container's setup.
    t.feed(init, "sleep", ns, prctl(38, 1, 0));
    let c = t.finish();
    let c = by_id(&c, "ctr-s");
    assert_eq!(c.security.caps, Some([caps, caps, 0]));
    assert_eq!(c.security.bounding_dropped, 1 << 21 | 1 << 16);
    assert!(c.security.no_new_privs);
    assert_eq!(c.security.seccomp_filters, [974]);
    let phase = c
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Security)
        .expect("a security phase");
    assert_eq!(phase.events, 5, "the probes are not setup");
    assert!(
        phase.key.contains("PR_CAPBSET_DROP cap_sys_admin"),
        "{}",
        phase.key
    );
    assert_eq!(phase.call.as_deref(), Some("prctl"));
}

/// `unshare -U -r sh -c ...` on the host: a sandbox of its own (no engine), with its user
/// namespace, its maps, its command and its exit; `unshare -m` alone is no sandbox, and an
/// unshare inside a container stays the container's.
#[test]
fn unshare_with_a_user_namespace_is_a_sandbox_of_its_own() {
    let mut t = Trace::new();
    let (pid, user) = (500, 50);
    t.exec(
        pid,
        "unshare",
        (HOST.mnt, HOST.net),
        "unshare -U -r sh -c true",
    );
    t.host(
        pid,
        "unshare",
        Detail::Namespaces {
            op: NsOp::Unshare,
            flags: 0x1000_0000,
            target_pid: pid,
            user_owner: Some(0),
            new: vec![NsKind::User],
            ns: NsInodes {
                user,
                ..NsInodes::default()
            },
            result: ok(),
        },
    );
    let inside = |detail| Event {
        ts_ns: 10_000_000,
        comm: "unshare".into(),
        mnt_ns: HOST.mnt,
        net_ns: HOST.net,
        user_ns: user,
        ..Event::for_test(pid, detail)
    };
    t.engine.feed(&inside(Detail::IdMap {
        file: crate::event::MapFile::UidMap,
        path: "/proc/self/uid_map".into(),
        target_pid: pid,
        mapped_ns: 0,
        data: "0 0 1".into(),
        result: ok(),
    }));
    // Still the host's mounts: its user namespace says it is inside.
    t.engine.feed(&inside(Detail::Exec {
        filename: "/bin/sh".into(),
        argv: vec!["sh".into(), "-c".into(), "true".into()],
        argv_truncated: false,
        filename_truncated: false,
        argv_unreadable: false,
        execveat: None,
        result: ok(),
    }));
    t.engine.feed(&inside(Detail::Exit {
        exit_code: Some(3),
        signal: None,
        core_dumped: false,
    }));
    t.exec(600, "unshare", (HOST.mnt, HOST.net), "unshare -m sh");
    let id = format!("unshare-{pid}");
    let c = t.finish();
    assert_eq!(c.containers.len(), 1, "{:?}", c.containers);
    let s = by_id(&c, &id);
    assert_eq!(s.runtime.name(), "unshare");
    assert!(s.engine.is_none());
    assert_eq!(s.ns.user, user);
    assert_eq!(s.command, ["sh", "-c", "true"]);
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(s.security.uid_mapping().as_deref(), Some("0 → 0 (1)"));
    let kinds: Vec<PhaseKind> = s.phases.iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&PhaseKind::UserNamespace), "{kinds:?}");
    assert!(kinds.contains(&PhaseKind::UserExec), "{kinds:?}");
}
