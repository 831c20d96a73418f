//! The mount family: a container's own mounts (runtime init, rootfs, pivot_root, masked
//! paths, teardown) and the mounts a shared daemon makes for it (its image, its netns).

use super::{succeeded, waiting::Key, Engine};
use crate::{
    correlate::{
        identify,
        model::{Evidence, FactKind, PhaseKind, Role, Runtime},
    },
    event::{Detail, Event},
    runtime::naming,
};

/// The target path of a mount-family event (where it mounts or unmounts).
fn mount_target(d: &Detail) -> Option<&str> {
    match d {
        Detail::Mount { target, .. } | Detail::Umount { target, .. } => Some(target),
        Detail::MoveMount { to_path, .. } => Some(to_path),
        Detail::OpenTree { path, .. } | Detail::MountSetattr { path, .. } => Some(path),
        Detail::Exec { .. }
        | Detail::PivotRoot { .. }
        | Detail::Fsopen { .. }
        | Detail::Fsconfig { .. }
        | Detail::Fsmount { .. }
        | Detail::Fork { .. }
        | Detail::Exit { .. }
        | Detail::Rename { .. }
        | Detail::Namespaces { .. }
        | Detail::Setns { .. }
        | Detail::Veth { .. }
        | Detail::CgroupMkdir { .. }
        | Detail::CgroupRmdir { .. }
        | Detail::CgroupAttach { .. }
        | Detail::NetdevMove { .. }
        | Detail::OomKill { .. }
        | Detail::Signal { .. }
        | Detail::Capset { .. }
        | Detail::Prctl { .. }
        | Detail::Seccomp { .. }
        | Detail::IdMap { .. } => None,
    }
}

/// `/proc/<pid>/ns/net` (or `/proc/<pid>/task/<tid>/ns/net`): the pid.
fn netns_source_pid(source: &str) -> Option<u32> {
    let rest = source.strip_prefix("/proc/")?;
    if !rest.ends_with("/ns/net") {
        return None;
    }
    rest.split('/').next()?.parse().ok()
}

/// The key an overlay's mount point waits under: its merged directory, with Docker's init
/// layer (`<layer>-init/merged`, mounted to prepare the container's files) under its
/// layer's (`<layer>/merged`), which the runtime binds as the root.
fn rootfs_key(path: &str) -> String {
    let Some(dir) = path.strip_suffix("/merged") else {
        return path.to_string();
    };
    let dir = dir.strip_suffix("-init").unwrap_or(dir);
    format!("{dir}/merged")
}

/// What a mount says about itself.
struct MountFacts<'a> {
    target: &'a str,
    overlay: bool,
    umount: bool,
}

impl Engine {
    pub(super) fn mount(&mut self, ev: &Event) -> bool {
        let m = MountFacts {
            target: mount_target(&ev.detail).unwrap_or(""),
            overlay: matches!(&ev.detail, Detail::Mount { fstype, .. } if fstype == "overlay"),
            umount: matches!(ev.detail, Detail::Umount { .. }),
        };
        if self.container_of(ev.tgid).is_none() {
            self.tracer_run_mount(ev, &m);
        }
        if let Some(c) = self.container_of(ev.tgid) {
            self.own_mount(c, ev, &m);
            return true;
        }
        succeeded(ev) && self.daemon_mount(ev, &m)
    }

    /// The built-in runtime names its container in its first mount (its overlay under the
    /// state directory).
    fn tracer_run_mount(&mut self, ev: &Event, m: &MountFacts) {
        let Some(id) = naming::state_id(m.target).map(str::to_string) else {
            return;
        };
        let name = self.procs.get(&ev.tgid).and_then(|p| p.tracer_run.clone());
        if name.is_none() && !m.overlay {
            return;
        }
        let found = format!("state dir {}/<id>", naming::STATE_ROOT);
        let c = self.starting(&id, Runtime::Tracer, &found, ev.ts_ns);
        // The built-in runtime names its veths after the id.
        for n in naming::veth_names(&id) {
            self.by_link.insert(n, (c, Evidence::RuntimeNaming));
        }
        let st = &mut self.containers[c];
        if let Some(Some(name)) = name {
            st.c.name = Some(name);
        }
        if m.overlay {
            st.c.rootfs = Some(m.target.to_string());
            st.fact(FactKind::Rootfs, m.target, Evidence::StateDir);
        }
        self.join(ev.tgid, c, Role::Runtime, Evidence::StateDir, ev);
    }

    /// The runtime binding an overlay's merged directory as the root: that overlay, mounted
    /// by a daemon before, is this container's.
    fn rootfs_bind(&mut self, c: usize, ev: &Event) {
        let Detail::Mount { source, target, .. } = &ev.detail else {
            return;
        };
        for path in [source, target] {
            let key = Key::Path(rootfs_key(path));
            if !path.is_empty() && self.waiting.contains(&key) {
                let st = &mut self.containers[c];
                st.c.rootfs = Some(path.clone());
                st.fact(FactKind::Rootfs, path, Evidence::RootfsPath);
                self.note_target(c, path);
                self.claim(c, &key, Evidence::RootfsPath);
                return;
            }
        }
    }

    /// A mount by one of container `c`'s processes: which phase it belongs to follows from
    /// how far the launch got.
    fn own_mount(&mut self, c: usize, ev: &Event, m: &MountFacts) {
        if succeeded(ev) {
            self.rootfs_bind(c, ev);
        }
        if self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session) {
            self.containers[c].c.mounts += 1;
            self.extend_last(c, PhaseKind::Exec, ev);
            return;
        }
        let st = &mut self.containers[c];
        st.c.mounts += 1;
        let (target, umount) = (m.target, m.umount);
        let kind = if umount && st.started() && target.contains("/netns/") {
            PhaseKind::NetworkCleanup
        } else if umount && st.mount_targets.iter().any(|t| t == target) {
            if st.started() {
                PhaseKind::Unmount
            } else {
                PhaseKind::ImageMount
            }
        } else if m.overlay && !st.ns_done {
            self.note_target(c, target);
            PhaseKind::ImageMount
        } else if st.started() && umount {
            PhaseKind::Unmount
        } else if st.started() {
            // Remounts and propagation changes while tearing down: counted only.
            return;
        } else if !st.ns_done {
            PhaseKind::RuntimeInit
        } else if !st.pivot_done {
            PhaseKind::RootfsMounts
        } else if umount || target == "." {
            PhaseKind::PivotRoot
        } else {
            PhaseKind::MaskPaths
        };
        self.phase(c, kind, ev);
    }

    /// A shared daemon's mount: the netns of a container's process, a path holding an id,
    /// one of a container's mount points, or what waits for one: an overlay (for the runtime
    /// to bind it as a root), a netns bind mount made from inside a new netns (podman's).
    /// True when it is about containers.
    fn daemon_mount(&mut self, ev: &Event, m: &MountFacts) -> bool {
        let target = m.target;
        if let Detail::Mount { source, .. } = &ev.detail {
            if let Some(c) = netns_source_pid(source).and_then(|p| self.container_of(p)) {
                let kind = self.network_kind(c);
                self.event_for(c, kind, ev, Evidence::NetnsOfPid);
                return true;
            }
        }
        let by_target = self
            .by_target
            .get(target)
            .map(|&c| (c, Evidence::MountPoint));
        // A component of the path is a container's id (`.../moby/<id>/rootfs`).
        let by_id = || {
            target
                .split('/')
                .filter(|part| part.len() >= 12)
                .find_map(|part| self.by_id.get(part))
                .map(|&c| (c, Evidence::IdInPath))
        };
        if let Some((c, evidence)) = by_target.or_else(by_id) {
            let st = &self.containers[c];
            let netns = target.contains("/netns/");
            let kind = match (st.c.exited_ns.is_some() || st.started(), netns, m.umount) {
                (true, true, _) => PhaseKind::NetworkCleanup,
                (true, false, true) => PhaseKind::Unmount,
                (true, false, false) => return true,
                (false, true, _) => self.network_kind(c),
                (false, false, _) if m.overlay || evidence == Evidence::MountPoint => {
                    PhaseKind::ImageMount
                }
                (false, false, _) => PhaseKind::EngineSetup,
            };
            self.event_for(c, kind, ev, evidence);
            return true;
        }
        let key = Key::Path(rootfs_key(target));
        if m.overlay || (m.umount && self.waiting.contains(&key)) {
            self.wait(key, PhaseKind::ImageMount, ev);
            return true;
        }
        if let Some(id) = identify::id_in_path(target) {
            self.wait(Key::Id(id.to_string()), PhaseKind::EngineSetup, ev);
            return true;
        }
        // A namespace kept by a bind mount made from inside it (podman's /run/netns/...).
        let inside = ev.net_ns != 0 && ev.net_ns != self.host.net;
        if inside && matches!(ev.detail, Detail::Mount { .. }) && target.contains("netns") {
            self.wait(Key::Netns(ev.net_ns), PhaseKind::Network, ev);
            return true;
        }
        false
    }
}
