//! Turning events into text: the live stream, JSON Lines, the end-of-run summary, and the
//! hook plan.

pub mod chrome;
pub mod document;
pub mod flags;
pub mod jsonl;
pub mod lifecycle;
pub mod plan;
pub mod stream;
pub mod summary;
pub mod timeline;
