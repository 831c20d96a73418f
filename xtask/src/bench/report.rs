//! `tracer report` on a generated million-event trace.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::bail;

use super::{process::*, release, report_input, root, verdict, Sizes, Verdict, WORK};

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
         namespaces and times. Python's `json.load` of the same file is shown for scale.\n\n\
         | command | wall s | CPU s (user+sys) | peak RSS MB |\n|---|---|---|---|",
        bytes as f64 / 1e6
    );
    let mut measured = Vec::new();
    for format in ["table", "chrome", "json"] {
        eprintln!("bench: tracer report --format {format}");
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
        if format == "table" {
            let table = fs::read_to_string(&out)?;
            if !table.contains("docker") {
                bail!("the report table shows no docker container");
            }
        }
        let _ = fs::remove_file(&out);
        let mb = u.max_rss_kb as f64 / 1024.0;
        let _ = writeln!(
            md,
            "| tracer report --format {format} | {wall:.2} | {mb:.0} |"
        );
        measured.push((format, wall, mb));
    }
    let t = Instant::now();
    let child = Command::new("python3")
        .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
        .arg(&input)
        .spawn()?;
    let u = wait_usage(&child)?;
    let _ = writeln!(
        md,
        "| python3 json.load (reading only) | {:.2} | {:.2} | {:.0} |\n",
        t.elapsed().as_secs_f64(),
        u.cpu,
        u.max_rss_kb as f64 / 1024.0
    );
    for (format, wall, mb) in measured.into_iter().filter(|m| m.0 != "json") {
        verdict(
            verdicts,
            &format!("report {events} events, {format}: < 3 s, < 300 MB"),
            format!("{wall:.2} s, {mb:.0} MB"),
            wall < 3.0 && mb < 300.0,
        );
    }
    Ok(())
}
