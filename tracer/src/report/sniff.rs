//! What a trace file is: a versioned document or JSON Lines, and whether this tracer reads
//! its format and version.

use std::io::Read;

use crate::{document, event::Event};

/// How much of the input is looked at to tell JSON Lines from a document.
pub(super) const HEAD_BYTES: u64 = 1 << 20;

pub(super) fn check_header(format: Option<&str>, version: Option<u32>) -> anyhow::Result<()> {
    match format {
        Some(document::FORMAT) => {}
        Some(other) => anyhow::bail!(
            "not a tracer trace: its format is {other:?}, expected {:?}",
            document::FORMAT
        ),
        None => anyhow::bail!("not a tracer trace: no \"format\" field"),
    }
    match version {
        Some(v) if (document::OLDEST_VERSION..=document::VERSION).contains(&v) => Ok(()),
        Some(v) => anyhow::bail!(
            "trace format version {v} is not supported (this tracer reads versions {} to {})",
            document::OLDEST_VERSION,
            document::VERSION
        ),
        None => anyhow::bail!("not a tracer trace: no \"version\" field"),
    }
}

/// Refuses a format or version that is there and wrong (a missing one may still come).
pub(super) fn check_known(format: Option<&str>, version: Option<u32>) -> anyhow::Result<()> {
    check_header(
        Some(format.unwrap_or(document::FORMAT)),
        Some(version.unwrap_or(document::VERSION)),
    )
}

/// Reads the head of the input: whether it is JSON Lines (more than one line, the first one
/// an event) rather than a document; what was read must be put back in front of the rest.
pub(super) fn sniff(input: &mut impl Read) -> anyhow::Result<(Vec<u8>, bool)> {
    let mut head = Vec::new();
    input.by_ref().take(HEAD_BYTES).read_to_end(&mut head)?;
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none() {
        anyhow::bail!("empty file: no trace in it");
    }
    if first != Some(&b'{') {
        anyhow::bail!("not a tracer trace: it does not start with a JSON object");
    }
    let trimmed = head.trim_ascii();
    let jsonl = trimmed
        .iter()
        .position(|b| *b == b'\n')
        .is_some_and(|end| serde_json::from_slice::<Event>(&trimmed[..end]).is_ok());
    Ok((head, jsonl))
}
