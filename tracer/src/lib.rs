//! The `tracer` library. The pipeline, in module order:
//! kernel programs (`tracer-ebpf`, loaded by [`loader`] with offsets from [`kernel_layout`])
//! → [`decode`] (ring-buffer records to [`event::Event`]) → [`render`] (stream, JSON Lines,
//! summary), driven by [`watch`]. [`netlink_monitor`] is the userspace veth source on kernels
//! without kprobes. [`runtime`] is the built-in container runtime behind `tracer run`, beside
//! the pipeline rather than inside it.

pub mod decode;
pub mod event;
pub mod kernel_layout;
pub mod loader;
pub mod netlink_monitor;
pub mod privilege;
pub mod render;
pub mod runtime;
pub mod stats;
pub mod watch;
