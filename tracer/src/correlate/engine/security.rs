//! Security setup: a container's process setting its capabilities, cutting its bounding set,
//! setting no_new_privs and loading seccomp filters, the runtime's last steps before the
//! user command (or an exec session's).

use super::{succeeded, Engine};
use crate::{
    correlate::model::PhaseKind,
    event::{Detail, Event, MapFile},
};
use foldhash::HashMap;

use tracer_common::prctl_ops;

/// Bounded: a runtime loads one or two filters; a process that loads more is not a
/// container's setup.
const MAX_FILTERS: usize = 16;

impl Engine {
    pub(super) fn security(&mut self, ev: &Event) -> bool {
        let Some(c) = self.container_of(ev.tgid) else {
            return false;
        };
        // A runtime probing what the kernel offers (seccomp's GET_* operations, a filter
        // call meant to fail) sets nothing up: the container's, but in no phase.
        let probe = !succeeded(ev)
            || matches!(ev.detail, Detail::Seccomp { operation, .. } if operation > 1);
        if probe {
            return true;
        }
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        if exec {
            self.extend_last(c, PhaseKind::Exec, ev);
            return true;
        }
        if self.containers[c].started() {
            return true; // the engine's helpers once it runs (podman's cleanup)
        }
        {
            let s = &mut self.containers[c].c.security;
            match &ev.detail {
                Detail::Capset {
                    target_pid: 0,
                    effective,
                    permitted,
                    inheritable,
                    ..
                } => s.caps = Some([*effective, *permitted, *inheritable]),
                Detail::Prctl { option, arg, .. } if *option == prctl_ops::PR_CAPBSET_DROP => {
                    s.bounding_dropped |= 1u64.checked_shl(*arg as u32).unwrap_or(0);
                }
                Detail::Prctl { option, arg, .. } if *option == prctl_ops::PR_SET_NO_NEW_PRIVS => {
                    s.no_new_privs = *arg != 0;
                }
                Detail::Prctl { filter_len, .. } | Detail::Seccomp { filter_len, .. }
                    if *filter_len != 0 && s.seccomp_filters.len() < MAX_FILTERS =>
                {
                    s.seccomp_filters.push(*filter_len);
                }
                _ => {}
            }
        }
        self.phase(c, PhaseKind::Security, ev);
        true
    }
}

/// Bytes kept of a map written (the kernel takes at most a page).
const MAX_MAP: usize = 256;

impl Engine {
    /// A user namespace's map written: by the container's process (unshare -r, a runtime's
    /// init), or for one of its processes by a helper (newuidmap, the runtime's parent), or
    /// for its user namespace (the kprobe path names the namespace).
    pub(super) fn id_map(&mut self, ev: &Event) -> bool {
        let Detail::IdMap {
            file,
            target_pid,
            mapped_ns,
            data,
            result,
            ..
        } = &ev.detail
        else {
            return false;
        };
        // shadow's newuidmap/newgidmap open the map below `/proc/PID` by a directory fd:
        // the pid is their first argument.
        let target_pid = &match *target_pid {
            0 => self
                .procs
                .get(&ev.tgid)
                .filter(|p| {
                    p.argv
                        .first()
                        .is_some_and(|a| a.ends_with("newuidmap") || a.ends_with("newgidmap"))
                })
                .and_then(|p| p.argv.get(1)?.parse().ok())
                .unwrap_or(0),
            pid => pid,
        };
        let by_ns = |e: &Self| {
            (*mapped_ns != 0)
                .then(|| {
                    e.containers
                        .rposition(|st| st.c.ns.user == *mapped_ns && st.c.exited_ns.is_none())
                })
                .flatten()
        };
        let c = self
            .container_of(ev.tgid)
            .or_else(|| {
                (*target_pid != 0)
                    .then(|| self.container_of(*target_pid))
                    .flatten()
            })
            .or_else(|| by_ns(self));
        if result.failed() {
            return c.is_some();
        }
        let Some(c) = c else {
            // A namespace no container made in its launch: rootless podman's, made once per
            // user. Its containers get the maps once their events name it.
            match (*mapped_ns, *target_pid) {
                (0, 0) => {}
                (0, pid) => self.user_maps.note_pid(pid, *file, data),
                (ns, _) => self.user_maps.note_ns(ns, *file, data),
            }
            return false;
        };
        let lines: String = data.chars().take(MAX_MAP).collect();
        let s = &mut self.containers[c].c.security;
        match file {
            MapFile::UidMap => s.uid_map = Some(lines),
            MapFile::GidMap => s.gid_map = Some(lines),
            MapFile::Setgroups => {}
        }
        if self.containers[c].started() {
            self.extend_last(c, PhaseKind::Exec, ev);
        } else {
            self.phase(c, PhaseKind::UserNamespace, ev);
        }
        true
    }
}

/// Most user namespaces (and processes) whose maps are kept for containers to come.
const MAX_USER_MAPS: usize = 256;

/// ID maps written for user namespaces no container made in its own launch (rootless
/// podman's, made once per user by its pause process): by namespace, and by the process
/// they were written for until one of its events names its namespace (the tracepoint path
/// sees the path, not the namespace). Bounded: the oldest entries go first.
#[derive(Default)]
pub(super) struct UserMaps {
    by_ns: HashMap<u32, (Option<String>, Option<String>)>,
    by_pid: HashMap<u32, Vec<(MapFile, String)>>,
}

/// Makes room for `key` in a full map: one entry goes (which matters little: a namespace's
/// maps are wanted within moments of being written).
fn make_room<V>(map: &mut HashMap<u32, V>, key: u32) {
    if map.len() >= MAX_USER_MAPS && !map.contains_key(&key) {
        if let Some(&old) = map.keys().next() {
            map.remove(&old);
        }
    }
}

impl UserMaps {
    fn note_pid(&mut self, pid: u32, file: MapFile, data: &str) {
        make_room(&mut self.by_pid, pid);
        let list = self.by_pid.entry(pid).or_default();
        if list.len() < 4 {
            list.push((file, data.chars().take(MAX_MAP).collect()));
        }
    }

    fn note_ns(&mut self, ns: u32, file: MapFile, data: &str) {
        make_room(&mut self.by_ns, ns);
        let maps = self.by_ns.entry(ns).or_default();
        let data: String = data.chars().take(MAX_MAP).collect();
        match file {
            MapFile::UidMap => maps.0 = Some(data),
            MapFile::GidMap => maps.1 = Some(data),
            MapFile::Setgroups => {}
        }
    }

    /// An event of a process maps were written for names their namespace.
    pub(super) fn learn(&mut self, ev: &Event) {
        if self.by_pid.is_empty() || ev.user_ns == 0 {
            return;
        }
        for (file, data) in self.by_pid.remove(&ev.tgid).unwrap_or_default() {
            self.note_ns(ev.user_ns, file, &data);
        }
    }

    /// The maps of user namespace `ns`, when written while tracing.
    pub(super) fn of(&self, ns: u32) -> Option<&(Option<String>, Option<String>)> {
        self.by_ns.get(&ns)
    }
}
