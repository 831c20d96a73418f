//! The container's cgroup, on a pure cgroup v2 host or a hybrid v1 one (like this machine:
//! v1 controllers under `/sys/fs/cgroup/<controller>`, cgroup2 at `/sys/fs/cgroup/unified`).

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use anyhow::{bail, Context as _};

const ROOT: &str = "/sys/fs/cgroup";
/// All containers live under this group in each hierarchy.
const PARENT: &str = "tracer";

#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
}

/// One container's cgroup directories (one per hierarchy used).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// Which layout this host has.
fn unified_only() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

impl Cgroup {
    /// Creates the directories and applies the limits. Directories are recorded as they are
    /// made, so a failure half way is still cleaned up by [`Cgroup::remove`].
    pub fn create(&mut self, id: &str, limits: Limits) -> anyhow::Result<()> {
        let root = Path::new(ROOT);
        if unified_only() {
            // Controllers must be enabled from the root down for a child to use them.
            let parent = root.join(PARENT);
            fs::create_dir_all(&parent)?;
            for dir in [root, parent.as_path()] {
                let _ = write(&dir.join("cgroup.subtree_control"), "+memory +pids");
            }
            let dir = parent.join(id);
            self.make(&dir)?;
            if let Some(m) = limits.memory {
                write(&dir.join("memory.max"), &m.to_string())?;
            }
            if let Some(p) = limits.pids {
                write(&dir.join("pids.max"), &p.to_string())?;
            }
            return Ok(());
        }
        // Hybrid: the v2 hierarchy gives the cgroup id the tracer sees; v1 controllers do
        // the limiting. With a v2 hierarchy only a limit asked for puts the container in a
        // v1 one: moving a process into a cgroup waits for an RCU grace period (5 ms here),
        // which a child born into its v2 cgroup never does. Without one (v1 only), the
        // controllers are its cgroups.
        let unified = root.join("unified");
        let v2 = unified.join("cgroup.procs").exists();
        if v2 {
            self.make(&unified.join(PARENT).join(id))?;
        }
        for (controller, limit, file) in [
            ("memory", limits.memory, "memory.limit_in_bytes"),
            ("pids", limits.pids, "pids.max"),
        ] {
            let hierarchy = root.join(controller);
            if v2 && limit.is_none() {
                continue;
            }
            if !hierarchy.join("cgroup.procs").exists() {
                if limit.is_some() {
                    bail!(
                        "the {controller} cgroup controller is not mounted at {}",
                        hierarchy.display()
                    );
                }
                continue;
            }
            let dir = hierarchy.join(PARENT).join(id);
            self.make(&dir)?;
            if let Some(v) = limit {
                write(&dir.join(file), &v.to_string())?;
            }
        }
        if self.dirs.is_empty() {
            bail!("no cgroup hierarchy found under {ROOT}");
        }
        Ok(())
    }

    fn make(&mut self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        self.dirs.push(dir.to_path_buf());
        Ok(())
    }

    /// The cgroup2 directory a child can be born into (`CLONE_INTO_CGROUP`), if one is used.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.iter().map(PathBuf::as_path).find(|d| {
            nix::sys::statfs::statfs(*d)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
    }

    /// Moves `pid` into every directory but `born_in` (where it already is).
    pub fn add(&self, pid: u32, born_in: Option<&Path>) -> anyhow::Result<()> {
        for dir in self.dirs.iter().filter(|d| Some(d.as_path()) != born_in) {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Kills whatever is left and removes the directories (retrying while the kernel
    /// finishes reaping).
    pub fn remove(&self) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        for dir in self.dirs.iter().rev() {
            if !dir.exists() {
                continue;
            }
            for _ in 0..100 {
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            if dir.exists() {
                failed.push(dir.display().to_string());
            }
        }
        if !failed.is_empty() {
            bail!("could not remove cgroups: {}", failed.join(", "));
        }
        Ok(())
    }
}
