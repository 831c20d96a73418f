//! The `tracer` library. The pipeline, in module order:
//! kernel programs (`tracer-ebpf`, loaded by [`loader`] with offsets from [`kernel_layout`])
//! → [`decode`] (ring-buffer records to [`event::Event`], read through a [`session`]) →
//! [`correlate`] → [`render`] (stream, JSON Lines, summary), driven by [`watch`] and
//! [`trace_run`]. [`netlink_monitor`] is the userspace veth source on kernels
//! without kprobes. [`runtime`] is the built-in container runtime behind `tracer run`, beside
//! the pipeline rather than inside it.

pub mod cgroup_names;
pub mod correlate;
pub mod decode;
pub mod event;
pub mod kernel_layout;
pub mod loader;
pub mod netlink_monitor;
pub mod privilege;
pub mod render;
pub mod report;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod trace_run;
pub mod watch;
