//! `tracer cleanup`: releases what crashed `tracer run`s left behind.

use super::privilege;
use crate::runtime;

pub async fn cleanup() -> anyhow::Result<()> {
    privilege::require_root("tracer cleanup")?;
    let cleaned = runtime::state::cleanup_stale().await?;
    eprintln!("tracer: cleaned up {} container(s)", cleaned.len());
    Ok(())
}
