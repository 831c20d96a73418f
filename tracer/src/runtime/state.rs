//! A container's state directory (`/run/tracer/<id>`), and the record of every resource it
//! holds, written as each is acquired: whatever path the run takes, including a crash of the
//! tracer itself, the resources can be found and released.

use std::{
    fs,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{cgroup::Cgroup, naming::STATE_ROOT, network};

const STATE_FILE: &str = "state.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// The `tracer run` process that owns the container.
    pub owner_pid: u32,
    /// The overlay's merged directory, once mounted.
    pub overlay: Option<PathBuf>,
    pub cgroup: Cgroup,
    /// Host end of the veth pair, once created.
    pub veth: Option<String>,
    pub address: Option<Ipv4Addr>,
    /// The container's init, once started.
    pub init_pid: Option<u32>,
}

impl State {
    pub fn dir(&self) -> PathBuf {
        Path::new(STATE_ROOT).join(&self.id)
    }

    /// Creates the state directory with its state file in one step (written under a
    /// temporary name, then renamed), so a concurrent [`cleanup_stale`] never sees a
    /// directory without its owner recorded.
    pub fn create(&self) -> anyhow::Result<()> {
        let root = Path::new(STATE_ROOT);
        fs::create_dir_all(root).with_context(|| format!("creating {STATE_ROOT}"))?;
        let tmp = root.join(format!(".new-{}-{}", self.owner_pid, self.id));
        fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        fs::write(tmp.join(STATE_FILE), serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, self.dir()).with_context(|| format!("creating {}", self.dir().display()))
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let path = self.dir().join(STATE_FILE);
        fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(STATE_FILE);
        Ok(serde_json::from_slice(
            &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?)
    }

    /// Releases everything recorded, in reverse order of acquisition; `keep_dir` leaves the
    /// state directory (without its mounts) for inspection. Keeps going past failures and
    /// reports them all.
    pub async fn release(&self, keep_dir: bool) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        if let Some(pid) = self.init_pid {
            // Normally gone already; after a crash of `tracer run` it may not be.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(veth) = &self.veth {
            if let Err(e) = network::delete_link(veth).await {
                errors.push(format!("veth {veth}: {e:#}"));
            }
        }
        if let Some(addr) = self.address {
            network::Ipam::new(Path::new(STATE_ROOT)).release(addr);
        }
        if let Err(e) = self.cgroup.remove() {
            errors.push(format!("{e:#}"));
        }
        if let Some(merged) = &self.overlay {
            if let Err(e) = unmount(merged) {
                errors.push(e);
            }
        }
        if !keep_dir {
            if let Err(e) = fs::remove_dir_all(self.dir()) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("removing {}: {e}", self.dir().display()));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("cleanup of {} incomplete: {}", self.id, errors.join("; "))
        }
    }
}

fn unmount(path: &Path) -> Result<(), String> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!("unmounting {}: {e}", path.display())),
    }
}

/// Whether the owner of a state is still running (a `tracer` process with that pid).
fn owner_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tracer")
}

/// Releases the resources of containers whose `tracer run` died without cleaning up, and
/// addresses nobody owns. Returns the ids cleaned.
pub async fn cleanup_stale() -> anyhow::Result<Vec<String>> {
    let mut cleaned = Vec::new();
    let Ok(entries) = fs::read_dir(STATE_ROOT) else {
        return Ok(cleaned);
    };
    for entry in entries.filter_map(Result::ok) {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "ipam" || !dir.is_dir() {
            continue;
        }
        // A state being created: only its creator's death makes it stale.
        if let Some(rest) = name.strip_prefix(".new-") {
            let creator = rest.split('-').next().and_then(|p| p.parse().ok());
            if creator.is_some_and(|pid| !owner_alive(pid)) {
                let _ = fs::remove_dir_all(&dir);
            }
            continue;
        }
        let Ok(state) = State::load(&dir) else {
            log::warn!("{} has no readable state; left alone", dir.display());
            continue;
        };
        if owner_alive(state.owner_pid) {
            continue;
        }
        state.release(false).await?;
        cleaned.push(state.id);
    }
    let ipam = network::Ipam::new(Path::new(STATE_ROOT));
    for addr in ipam.stale(&|owner| Path::new(STATE_ROOT).join(owner).is_dir()) {
        ipam.release(addr);
    }
    Ok(cleaned)
}
