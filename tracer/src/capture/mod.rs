//! Capture: everything that faces the kernel. The kernel programs are loaded ([`loader`],
//! with offsets from [`kernel_layout`] and the options of [`plans`]), their records read
//! from the ring buffer and decoded into events ([`decode`]) through a [`session`], beside
//! the userspace sources that stand in for a missing hook ([`netlink_monitor`]). Also here:
//! the cgroup paths looked up while the cgroups exist ([`cgroup_names`]), the counters of
//! what was seen and lost ([`stats`]) and the live filter for one run's processes
//! ([`process_tree`]). It depends only on [`crate::event`].

mod btf_names;
pub mod cgroup_names;
pub mod decode;
mod detach;
pub mod kernel_layout;
pub mod loader;
pub mod netlink_monitor;
mod nsid;
pub mod plans;
pub mod process_tree;
pub mod session;
pub mod stats;
