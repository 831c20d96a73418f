//! Turning events, containers and counters into text: the live stream, JSON Lines, the
//! end-of-run summary, the hook plan, the lifecycle table, timelines, Chrome traces, and the
//! views printed when a session ends.

pub mod chrome;
pub mod compare;
pub mod html;
pub mod jsonl;
pub mod lifecycle;
pub mod live;
pub mod plan;
pub mod report;
pub mod stats;
pub mod stream;
pub mod summary;
pub mod timeline;
pub mod views;
