//! Namespaces as events carry them: inode numbers by kind, and the host's own.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
pub use tracer_common::NsKind;

/// Namespace inode numbers by kind (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsInodes {
    pub uts: u32,
    pub ipc: u32,
    pub mnt: u32,
    pub pid: u32,
    pub net: u32,
    pub cgroup: u32,
    pub time: u32,
    /// From document version 7.
    #[serde(default)]
    pub user: u32,
}

impl NsInodes {
    /// From the kernel's array, in [`NsKind`] order.
    pub fn from_array(a: [u32; tracer_common::NS_KINDS]) -> Self {
        let [uts, ipc, mnt, pid, net, cgroup, time, user] = a;
        Self {
            uts,
            ipc,
            mnt,
            pid,
            net,
            cgroup,
            time,
            user,
        }
    }

    pub fn get(&self, kind: NsKind) -> u32 {
        *self.slot(kind)
    }

    pub fn slot_mut(&mut self, kind: NsKind) -> &mut u32 {
        match kind {
            NsKind::Uts => &mut self.uts,
            NsKind::Ipc => &mut self.ipc,
            NsKind::Mnt => &mut self.mnt,
            NsKind::Pid => &mut self.pid,
            NsKind::Net => &mut self.net,
            NsKind::Cgroup => &mut self.cgroup,
            NsKind::Time => &mut self.time,
            NsKind::User => &mut self.user,
        }
    }

    fn slot(&self, kind: NsKind) -> &u32 {
        match kind {
            NsKind::Uts => &self.uts,
            NsKind::Ipc => &self.ipc,
            NsKind::Mnt => &self.mnt,
            NsKind::Pid => &self.pid,
            NsKind::Net => &self.net,
            NsKind::Cgroup => &self.cgroup,
            NsKind::Time => &self.time,
            NsKind::User => &self.user,
        }
    }

    /// Records the inodes of `kinds` from `from` (unknown ones are left as they are).
    pub fn merge(&mut self, from: &NsInodes, kinds: &[NsKind]) {
        for &k in kinds {
            let v = from.get(k);
            if v != 0 {
                *self.slot_mut(k) = v;
            }
        }
    }
}

/// The kinds whose bit is set in a mask (bit i: kind i), in [`NsKind`] order.
pub fn kinds_in(mask: u32) -> Vec<NsKind> {
    NsKind::ALL
        .into_iter()
        .filter(|k| mask & (1 << *k as u32) != 0)
        .collect()
}

/// The host's namespaces, the ones that tell a container's processes from the host's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNs {
    pub mnt: u32,
    pub pid: u32,
    pub net: u32,
}

impl HostNs {
    /// The host's namespaces: those of the host's init (`/proc/1/ns/*`, which a tracer in a
    /// container sees in the host's PID namespace, `--pid=host`); when pid 1's cannot be
    /// read, those of the nearest ancestor in another mount namespace (the container
    /// runtime's shim, outside the tracer's container), else this process's own.
    pub fn detect() -> Self {
        let ino = |pid: &str, kind: &str| {
            std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
                .map_or(0, |m| std::os::unix::fs::MetadataExt::ino(&m) as u32)
        };
        let of = |pid: &str| Self {
            mnt: ino(pid, "mnt"),
            pid: ino(pid, "pid"),
            net: ino(pid, "net"),
        };
        let whole = |ns: &Self| ns.mnt != 0 && ns.pid != 0 && ns.net != 0;
        let init = of("1");
        if whole(&init) {
            return init;
        }
        let own = of("self");
        let mut pid = std::os::unix::process::parent_id();
        for _ in 0..64 {
            if pid <= 1 {
                break;
            }
            let ns = of(&pid.to_string());
            if whole(&ns) && ns.mnt != own.mnt {
                return ns;
            }
            pid = parent_of(pid).unwrap_or(0);
        }
        own
    }
}

/// The parent of `pid`, from `/proc/PID/status`.
fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// `mnt:[4026532281] pid:[4026532284]`, as `/proc/PID/ns/*` links read; `none` for no kind.
pub fn list(kinds: &[NsKind], ns: &NsInodes) -> String {
    if kinds.is_empty() {
        return "none".into();
    }
    let mut s = String::new();
    for k in kinds {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{}:[{}]", k.name(), ns.get(*k));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_arrays() {
        assert_eq!(kinds_in(0), []);
        assert_eq!(
            kinds_in(0b101_0100),
            [NsKind::Mnt, NsKind::Net, NsKind::Time]
        );
        let ns = NsInodes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            ns,
            NsInodes {
                uts: 1,
                ipc: 2,
                mnt: 3,
                pid: 4,
                net: 5,
                cgroup: 6,
                time: 7,
                user: 8
            }
        );
        for (i, k) in NsKind::ALL.into_iter().enumerate() {
            assert_eq!(ns.get(k), i as u32 + 1);
        }
        assert_eq!(list(&[NsKind::Mnt, NsKind::Net], &ns), "mnt:[3] net:[5]");
        let mut into = NsInodes::default();
        into.merge(&ns, &[NsKind::Pid]);
        assert_eq!((into.pid, into.mnt), (4, 0));
    }
}
