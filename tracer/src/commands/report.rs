//! `tracer report FILE...`: a saved trace shown again, without root.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use crate::render::{
    lifecycle,
    report::{self, Format, ReportOptions},
};
use crate::{
    correlate::Filter,
    event::Clock,
    export::{replay, ExportOptions},
};

/// What to show and where.
#[derive(Clone, Debug)]
pub struct Args {
    pub files: Vec<PathBuf>,
    pub format: Format,
    pub explain: bool,
    pub all: bool,
    pub output: Option<PathBuf>,
    pub filter: Filter,
    /// `--otlp`: the containers' spans are sent there too.
    pub export: ExportOptions,
}

/// Writes the report to stdout or `--output`; the warnings go to stderr. A report that
/// fails part way leaves no half-written file behind.
pub fn report(args: &Args) -> anyhow::Result<()> {
    let files = crate::report::parts::expand(&args.files)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout())),
    };
    let opts = ReportOptions {
        // --explain is about the timeline.
        format: if args.explain && args.format == Format::Table {
            Format::Timeline
        } else {
            args.format
        },
        explain: args.explain,
        all: args.all,
        color: args.output.is_none() && lifecycle::color_on(&std::io::stdout()),
    };
    let result = report::report_paths(&files, &args.filter, &opts, &mut out)
        .and_then(|summary| Ok(out.flush().map(|()| summary)?));
    match result {
        Ok(summary) => {
            for w in &summary.warnings {
                eprintln!("tracer: warning: {w}");
            }
            if let Some(endpoint) = &args.export.otlp {
                let clock = Clock::from_offset(summary.boot_to_wall_ns);
                let line = replay(
                    &summary.containers,
                    endpoint.as_deref(),
                    args.export.transport,
                    &clock,
                    &summary.kernel,
                )?;
                eprintln!("tracer: {line}");
            }
            Ok(())
        }
        Err(e) => {
            drop(out);
            if let Some(path) = &args.output {
                remove_partial(path);
            }
            Err(e)
        }
    }
}

/// The output is written as the trace is read: on error it is incomplete.
fn remove_partial(path: &Path) {
    let _ = std::fs::remove_file(path);
}
