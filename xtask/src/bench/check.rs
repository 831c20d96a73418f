//! The regression guard: each run keeps its ratios (lower is better) in `BENCHMARKS.json`,
//! by mode (`full`, `quick`); `--check` compares a run's with the committed ones and names
//! every ratio that got worse by more than this machine's noise.

use std::{collections::BTreeMap, fmt::Write as _, fs, path::Path};

use anyhow::{bail, Context as _};

/// How much worse than committed a ratio may be and still be noise, by the start of its key:
/// the spread seen between runs of the same build here (storm wall time ±6 %, ready and the
/// report's CPU within ±35 %, container start within ±20 %, the write storm against
/// execsnoop's within 5 %).
const NOISE: &[(&str, f64)] = &[
    ("storm.slowdown", 1.10),
    ("storm.cpu", 1.50),
    ("ready", 1.50),
    ("start", 1.30),
    ("report", 1.30),
    ("writes.vs_execsnoop", 1.05),
];

/// A quick run's margins are twice a full run's: two quick runs of the same build here
/// differed by up to 45 % (container start against crun, 15 rounds) and, before quick runs
/// grew, 41 % (the traced run over ready, 2 ready runs) and 24 % (the 4-thread storm's
/// slowdown, 4,000 execs). A quick check catches a doubling, not a tenth.
fn noise(key: &str, mode: &str) -> f64 {
    let full = NOISE
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or(1.30, |&(_, n)| n);
    if mode == "quick" {
        1.0 + 2.0 * (full - 1.0)
    } else {
        full
    }
}

pub(super) type Ratios = BTreeMap<String, f64>;

fn read(path: &Path) -> anyhow::Result<BTreeMap<String, Ratios>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Keeps `ratios` as `mode`'s in `path`, beside the other mode's; a ratio this run did not
/// measure (a section left out with `--only`) keeps its committed value.
pub(super) fn record(path: &Path, mode: &str, ratios: &Ratios) -> anyhow::Result<()> {
    let mut all = read(path)?;
    all.entry(mode.to_string())
        .or_default()
        .extend(ratios.iter().map(|(k, v)| (k.clone(), *v)));
    let mut text = serde_json::to_string_pretty(&all)?;
    text.push('\n');
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Compares `ratios` with `mode`'s committed ones (the full run's where the mode has none);
/// fails naming each that got worse beyond its noise.
pub(super) fn check(path: &Path, mode: &str, ratios: &Ratios) -> anyhow::Result<String> {
    let all = read(path)?;
    let Some(committed) = all.get(mode).or_else(|| all.get("full")) else {
        bail!(
            "{} holds no committed ratios to check against",
            path.display()
        );
    };
    let (report, worse) = compare(committed, ratios, mode);
    if worse.is_empty() {
        Ok(report)
    } else {
        bail!(
            "{report}\nworse than committed beyond the noise: {}",
            worse.join(", ")
        )
    }
}

/// One line per ratio measured in both; the keys that got worse beyond their noise.
fn compare(committed: &Ratios, now: &Ratios, mode: &str) -> (String, Vec<String>) {
    let mut report = String::new();
    let mut worse = Vec::new();
    for (key, &was) in committed {
        let Some(&is) = now.get(key) else { continue };
        let allowed = noise(key, mode);
        let bad = is > was * allowed;
        let _ = writeln!(
            report,
            "bench check: {key}: {was:.3} → {is:.3} ({:+.0} %, noise {:.0} %){}",
            (is / was - 1.0) * 100.0,
            (allowed - 1.0) * 100.0,
            if bad { "  WORSE" } else { "" }
        );
        if bad {
            worse.push(key.clone());
        }
    }
    (report, worse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ratios_worse_beyond_their_noise_are_named() {
        let committed: Ratios = [
            ("storm.slowdown.1".to_string(), 1.03),
            ("start.vs_crun".to_string(), 1.0),
            ("ready.vs_bpftrace".to_string(), 2.0),
        ]
        .into();
        let now: Ratios = [
            ("storm.slowdown.1".to_string(), 1.20),
            ("start.vs_crun".to_string(), 1.2),
            ("ready.vs_bpftrace".to_string(), 1.0),
            ("report.table_s".to_string(), 9.0),
        ]
        .into();
        let (report, worse) = compare(&committed, &now, "full");
        assert_eq!(worse, ["storm.slowdown.1"]);
        assert_eq!(report.lines().count(), 3, "{report}");
        // +17 % is within a quick run's doubled margin (20 %) for the storm.
        let (_, worse) = compare(&committed, &now, "quick");
        assert!(worse.is_empty(), "{worse:?}");
    }

    #[test]
    fn a_run_keeps_the_other_modes_and_unmeasured_ratios() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BENCHMARKS.json");
        record(
            &path,
            "full",
            &[("a".to_string(), 1.0), ("b".to_string(), 2.0)].into(),
        )
        .unwrap();
        record(&path, "quick", &[("a".to_string(), 3.0)].into()).unwrap();
        record(&path, "full", &[("a".to_string(), 1.5)].into()).unwrap();
        let all = read(&path).unwrap();
        assert_eq!(all["full"]["a"], 1.5);
        assert_eq!(all["full"]["b"], 2.0);
        assert_eq!(all["quick"]["a"], 3.0);
        assert!(check(&path, "quick", &[("a".to_string(), 3.1)].into()).is_ok());
        assert!(check(&path, "quick", &[("a".to_string(), 9.0)].into()).is_err());
    }
}
