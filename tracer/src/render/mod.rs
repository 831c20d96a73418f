//! Turning events into text: the live stream, JSON Lines, the end-of-run summary.

pub mod flags;
pub mod jsonl;
pub mod stream;
pub mod summary;
