//! The subcommands, each driving the pipeline (or the runtime) for one job. `main.rs` only
//! parses arguments and calls these.

pub mod check;
pub mod cleanup;
pub mod explain;
pub mod live;
pub mod privilege;
pub mod report;
pub mod run;
pub mod watch;
