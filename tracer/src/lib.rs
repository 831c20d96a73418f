//! The `tracer` library, in pipeline order (each stage uses only those before it):
//!
//! - [`event`]: the decoded, typed event (and its one-line text);
//! - [`capture`]: the kernel programs loaded and attached, their records decoded into events;
//! - [`correlate`]: events into containers, with phases and processes;
//! - [`document`]: the versioned trace document, and [`report`], which reads one back;
//! - [`render`]: the stream, JSON Lines, tables, timelines, Chrome traces;
//! - [`commands`]: the subcommands that drive them.
//!
//! [`runtime`] is the built-in container runtime behind `tracer run`, beside the pipeline
//! rather than inside it; correlation reads only its naming rules ([`runtime::naming`]).

pub mod capture;
pub mod commands;
pub mod correlate;
pub mod document;
pub mod event;
pub mod render;
pub mod report;
pub mod runtime;
