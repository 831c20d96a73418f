//! `tracer report` on a generated million-event trace.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::bail;

use super::{process::*, release, report_input, root, stats, verdict_ratio, Sizes, Verdict, WORK};

pub(super) fn report(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let input = Path::new(WORK).join(format!("trace-{}.json", sizes.report_events));
    let fixture = root().join("fixtures/docker-run.json");
    let (events, containers) = report_input::generate(&fixture, sizes.report_events, &input)?;
    let bytes = fs::metadata(&input)?.len();
    let _ = writeln!(
        md,
        "## 5. Report\n\n`tracer report` on a generated document of {events} events ({:.0} MB): \
         the recorded `docker run` fixture repeated {containers} times with fresh ids, pids, \
         namespaces and times; {} runs of each format, interleaved: median wall time (and \
         range), median CPU time, largest peak RSS. Python's `json.load` of the same file \
         (once) is shown for scale, and the floor under any reader of it here (once): \
         reading the file from the page cache (1 MiB reads into one buffer), and a SIMD JSON \
         parser (sonic-rs, one thread) parsing every event into a value, the file mapped.\n\n\
         | command | wall s | CPU s (user+sys) | peak RSS MB |\n|---|---|---|---|",
        bytes as f64 / 1e6,
        sizes.report_runs
    );
    const FORMATS: [&str; 3] = ["table", "chrome", "json"];
    // (wall, CPU, peak RSS MB) of each run, per format; rounds interleaved.
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); FORMATS.len()];
    for round in 0..sizes.report_runs {
        for (k, format) in FORMATS.iter().enumerate() {
            eprintln!(
                "bench: tracer report --format {format}, round {}",
                round + 1
            );
            let out = Path::new(WORK).join(format!("report.{format}"));
            let t = Instant::now();
            let child = Command::new(release("tracer"))
                .args(["report", "--format", format, "-o"])
                .arg(&out)
                .arg(&input)
                .stderr(Stdio::null())
                .spawn()?;
            let u = wait_usage(&child)?;
            let wall = t.elapsed().as_secs_f64();
            if u.code != 0 {
                bail!("tracer report --format {format} failed ({})", u.code);
            }
            if *format == "table" {
                let table = fs::read_to_string(&out)?;
                if !table.contains("docker") {
                    bail!("the report table shows no docker container");
                }
            }
            let _ = fs::remove_file(&out);
            runs[k].push((wall, u.cpu, u.max_rss_kb as f64 / 1024.0));
        }
    }
    let mut measured = Vec::new();
    for (format, v) in FORMATS.iter().zip(&runs) {
        let (wall, lo, hi) = stats(&mut v.iter().map(|r| r.0).collect::<Vec<_>>());
        let (cpu, _, _) = stats(&mut v.iter().map(|r| r.1).collect::<Vec<_>>());
        let mb = v.iter().map(|r| r.2).fold(0.0, f64::max);
        let _ = writeln!(
            md,
            "| tracer report --format {format} | {wall:.2} ({lo:.2}–{hi:.2}) | {cpu:.2} | {mb:.0} |"
        );
        measured.push((*format, wall, mb));
    }
    let t = Instant::now();
    let child = Command::new("python3")
        .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
        .arg(&input)
        .spawn()?;
    let u = wait_usage(&child)?;
    let python = t.elapsed().as_secs_f64();
    let _ = writeln!(
        md,
        "| python3 json.load (reading only) | {python:.2} | {:.2} | {:.0} |",
        u.cpu,
        u.max_rss_kb as f64 / 1024.0
    );
    let floor = Command::new(release("json-floor"))
        .arg(&input)
        .stdout(Stdio::piped())
        .spawn()?;
    let u = wait_usage(&floor)?;
    let out = std::io::read_to_string(floor.stdout.unwrap())?;
    let mut times = out.split_whitespace().map(|w| w.parse::<f64>().ok());
    let (Some(Some(read)), Some(Some(parse)), Some(Some(parsed))) =
        (times.next(), times.next(), times.next())
    else {
        bail!("json-floor gave no times ({}): {out}", u.code);
    };
    if parsed as u64 != events {
        bail!("json-floor parsed {parsed} events of {events}");
    }
    let _ = writeln!(
        md,
        "| the floor: page-cache read (1 MiB reads) | {read:.2} | | |\n\
         | the floor: sonic-rs, every event parsed (one thread) | {parse:.2} | {:.2} | {:.0} |\n",
        u.cpu,
        u.max_rss_kb as f64 / 1024.0
    );
    // Scaled to the million events of the targets when the run reads fewer (--quick).
    let per_million = 1e6 / events as f64;
    for (format, wall, mb) in measured.into_iter().filter(|m| m.0 != "json") {
        let limit = if format == "table" { 1.0 } else { 1.3 };
        verdict_ratio(
            verdicts,
            (
                &format!("report {events} events, {format}: ≤ {limit} s per million, ≤ 150 MB"),
                format!(
                    "{wall:.2} s ({:.2} s per million; floor: page-cache read {read:.2} s, \
                     sonic-rs {parse:.2} s; python json.load {python:.2} s), {mb:.0} MB",
                    wall * per_million
                ),
                wall * per_million <= limit && mb <= 150.0,
            ),
            &format!("report.{format}_vs_python"),
            wall / python,
        );
    }
    Ok(())
}
