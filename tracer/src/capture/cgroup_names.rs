//! Cgroup ids (what the kernel programs record) to cgroup paths (what names containers:
//! `/docker/<id>`, `.../libpod-<id>.scope`). The id is the inode of the cgroup's directory
//! in the cgroup2 hierarchy: the cgroups that exist when tracing starts are found by walking
//! that hierarchy once, and every one made later is named by its `cgroup_mkdir` event. The
//! paths are kept in the trace for reading later.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use crate::event::{Detail, Event};

/// The cgroup2 hierarchy's id in cgroup events (as in `/proc/PID/cgroup`'s `0::/path`).
const CGROUP2_HIERARCHY: i32 = 0;

pub struct CgroupNames {
    names: BTreeMap<u64, String>,
    /// Learnt since the last [`CgroupNames::fresh`].
    fresh: Vec<(u64, String)>,
}

impl CgroupNames {
    /// The cgroups that exist now.
    pub fn new() -> Self {
        let mut names = BTreeMap::new();
        if let Some(root) = cgroup2_root() {
            walk(&root, &root, &mut names);
        }
        let fresh = names.iter().map(|(i, p)| (*i, p.clone())).collect();
        Self { names, fresh }
    }

    /// Names the cgroups `events` make on the cgroup2 hierarchy.
    pub fn learn(&mut self, events: &[Event]) {
        for e in events {
            match &e.detail {
                Detail::CgroupMkdir { id, root, path, .. } if *root == CGROUP2_HIERARCHY => {
                    self.names.insert(*id, path.clone());
                    self.fresh.push((*id, path.clone()));
                }
                // Gone: no later event carries its id (and a watch runs for days).
                Detail::CgroupRmdir { id, root, .. } if *root == CGROUP2_HIERARCHY => {
                    self.names.remove(id);
                }
                _ => {}
            }
        }
    }

    /// The names learnt since the last call (the first call: every cgroup of the walk).
    pub fn fresh(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.fresh)
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
    fn existing_cgroups_are_walked_and_new_ones_learnt() {
        let mut names = CgroupNames::new();
        if let Some(root) = cgroup2_root() {
            let ino = std::fs::metadata(&root).unwrap().ino();
            assert_eq!(names.map().get(&ino).map(String::as_str), Some("/"));
        }
        let mkdir = |root, id| Event {
            cgroup_id: 1,
            ..Event::for_test(
                1,
                Detail::CgroupMkdir {
                    id,
                    root,
                    level: 2,
                    path: "/docker/x".into(),
                },
            )
        };
        // Only the cgroup2 hierarchy's ids are what events carry.
        names.learn(&[mkdir(CGROUP2_HIERARCHY, 1 << 50), mkdir(3, 1 << 51)]);
        assert_eq!(
            names.map().get(&(1 << 50)).map(String::as_str),
            Some("/docker/x")
        );
        assert!(!names.map().contains_key(&(1 << 51)));
    }
}
