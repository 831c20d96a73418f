//! Cgroup ids (what the kernel programs record) to cgroup paths (what names containers:
//! `/docker/<id>`, `.../libpod-<id>.scope`). The id is the inode of the cgroup's directory
//! in the cgroup2 hierarchy, so the paths are found by walking that hierarchy while the
//! cgroups still exist, and kept in the trace for reading later.

use std::{
    collections::{BTreeMap, HashSet},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::event::Event;

/// Walks at most this often: a cgroup unknown at one walk is looked for again later.
const REWALK_EVERY: Duration = Duration::from_millis(50);

pub struct CgroupNames {
    root: Option<PathBuf>,
    names: BTreeMap<u64, String>,
    /// Ids not found at the last walk, with its time.
    missing: HashSet<u64>,
    last_walk: Option<Instant>,
}

impl CgroupNames {
    pub fn new() -> Self {
        Self {
            root: cgroup2_root(),
            names: BTreeMap::new(),
            missing: HashSet::new(),
            last_walk: None,
        }
    }

    /// Names the cgroups of `events` not yet known.
    pub fn learn(&mut self, events: &[Event]) {
        let Some(root) = &self.root else { return };
        let unknown = events.iter().any(|e| {
            e.cgroup_id != 0
                && !self.names.contains_key(&e.cgroup_id)
                && !self.missing.contains(&e.cgroup_id)
        });
        let retry =
            !self.missing.is_empty() && self.last_walk.is_none_or(|t| t.elapsed() >= REWALK_EVERY);
        if !unknown && !retry {
            return;
        }
        walk(root, root, &mut self.names);
        self.last_walk = Some(Instant::now());
        self.missing = events
            .iter()
            .map(|e| e.cgroup_id)
            .filter(|id| *id != 0 && !self.names.contains_key(id))
            .collect();
    }

    pub fn map(&self) -> &BTreeMap<u64, String> {
        &self.names
    }

    pub fn into_map(self) -> BTreeMap<u64, String> {
        self.names
    }
}

impl Default for CgroupNames {
    fn default() -> Self {
        Self::new()
    }
}

/// The cgroup2 mount point (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
fn cgroup2_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next() == Some("cgroup2"))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    })
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<u64, String>) {
    if let Ok(meta) = std::fs::metadata(dir) {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        out.insert(meta.ino(), format!("/{}", rel.display()));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &entry.path(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_named() {
        let mut names = CgroupNames::new();
        let Some(root) = names.root.clone() else {
            eprintln!("no cgroup2 hierarchy here");
            return;
        };
        let ino = std::fs::metadata(&root).unwrap().ino();
        let ev = Event {
            cgroup_id: ino,
            ..Event::for_test(1, crate::event::Detail::Fork { child_pid: 2 })
        };
        names.learn(&[ev]);
        assert_eq!(names.into_map().get(&ino).map(String::as_str), Some("/"));
    }
}
