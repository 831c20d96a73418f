//! The files of one trace: patterns expanded, and the parts of a rotated document
//! (`--json-rotate`) put in the order they were written, whatever the order of their names.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use super::{scan::Scanner, split};

/// The files `args` name: each an existing file, `-`, or a glob pattern (for a shell that
/// did not expand it); parts of rotated documents sorted by their part number.
pub fn expand(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        let text = arg.to_string_lossy();
        if arg == Path::new("-") || arg.exists() || !text.contains(['*', '?', '[']) {
            files.push(arg.clone());
            continue;
        }
        let matched = glob::glob(&text)
            .map_err(|e| anyhow::anyhow!("{text}: not a valid pattern: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        if matched.is_empty() {
            anyhow::bail!("{text}: no file matches");
        }
        files.extend(matched);
    }
    Ok(in_order(files))
}

/// Parts of a rotated document in the order written (`trace.json`, `trace.1.json`, ...,
/// `trace.10.json`); files without a part number stay where they are among them.
pub fn in_order(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut keyed: Vec<(u64, usize, PathBuf)> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| (part_of(&f).unwrap_or(0), i, f))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, f)| f).collect()
}

/// The `part` field of the document at `path` (read from its header only).
fn part_of(path: &Path) -> Option<u64> {
    if path == Path::new("-") {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut sc = Scanner::new(file.take(1 << 20));
    let mut part = None;
    // Stops at the events (or at anything unreadable): the part comes before them.
    let _ = split::read_document(&mut sc, &mut |item| match item {
        split::Item::Field("part", value) => {
            part = serde_json::from_slice(value).ok();
            anyhow::bail!("found")
        }
        split::Item::Field(..) => Ok(()),
        _ => anyhow::bail!("no part"),
    });
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sort_by_number_and_patterns_expand() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        for n in [0, 1, 2, 10] {
            let name = if n == 0 {
                "trace.json".to_string()
            } else {
                format!("trace.{n}.json")
            };
            let text = format!(r#"{{"format":"tracer-trace","version":3,"part":{n},"events":[]}}"#);
            std::fs::write(dir.path().join(&name), text).unwrap();
            names.push(name);
        }
        let pattern = dir.path().join("trace*.json");
        let files = expand(&[pattern]).unwrap();
        let got: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, names);
        let none = expand(&[dir.path().join("nothing*.json")]).unwrap_err();
        assert!(none.to_string().contains("no file matches"), "{none}");
    }
}
