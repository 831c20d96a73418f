//! What the parent hands the container's init: written to the state dir as JSON before the
//! init process starts, read by it after `exec`.

use std::{net::Ipv4Addr, path::Path};

use serde::{Deserialize, Serialize};

use super::rootfs::RootfsPlan;

/// The container's side of a bridge network.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetConfig {
    /// The name the veth end has when it is moved in; renamed to `eth0`.
    pub peer: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub hostname: String,
    pub rootfs: RootfsPlan,
    /// `None`: no network setup beyond loopback (`--net none`, or `host`).
    pub network: Option<NetConfig>,
    /// Whether the container has its own network namespace (not `--net host`).
    pub own_netns: bool,
    /// Capability names (`CAP_CHOWN`, ...) the process keeps.
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// User and group the command runs as.
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// A pseudo-terminal for the command (its master goes to the parent).
    #[serde(default)]
    pub terminal: bool,
    /// The seccomp profile, resolved for this container (`None`: unconfined).
    #[serde(default)]
    pub seccomp: Option<super::seccomp::Profile>,
    /// A user namespace of its own, with these maps (`None`: the host's).
    #[serde(default)]
    pub id_maps: Option<super::IdMaps>,
}

/// A resource limit (`RLIMIT_NOFILE`, ...).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: String,
    pub soft: u64,
    pub hard: u64,
}

pub const CONFIG_FILE: &str = "config.json";

impl ContainerConfig {
    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = state_dir.join(CONFIG_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    pub fn read(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(CONFIG_FILE);
        let bytes =
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Docker's default capability set (`CapEff` 00000000a80425fb).
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// The set above is exactly Docker's mask.
    #[test]
    fn docker_default_caps_mask() {
        let mask = DOCKER_DEFAULT_CAPS.iter().fold(0u64, |m, name| {
            m | 1 << caps::Capability::from_str(name).unwrap().index()
        });
        assert_eq!(mask, 0xa80425fb);
    }
}
