//! `tracer report FILE...`: a saved trace shown again, without root.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use crate::render::{
    compare, lifecycle,
    report::{self, Format, ReportOptions},
};
use crate::{
    correlate::{Container, Filter},
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
    /// Stats as JSON.
    pub json: bool,
    /// Two containers side by side instead.
    pub compare: bool,
}

/// The two containers `--compare` sets side by side: the first of each of two traces, or
/// the first two of one (after the filters).
fn compared(files: &[PathBuf], filter: &Filter) -> anyhow::Result<(Container, Container)> {
    let read = |f: &PathBuf| -> anyhow::Result<Vec<Container>> {
        let s = crate::report::read_paths(
            std::slice::from_ref(f),
            filter,
            &mut crate::report::Discard,
        )?;
        for w in &s.warnings {
            eprintln!("tracer: warning: {}: {w}", f.display());
        }
        Ok(s.containers)
    };
    let first = |f: &PathBuf| -> anyhow::Result<Container> {
        read(f)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{}: no container to compare", f.display()))
    };
    match files {
        [a, b] => Ok((first(a)?, first(b)?)),
        [one] => {
            let mut cs = read(one)?.into_iter();
            match (cs.next(), cs.next()) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => anyhow::bail!(
                    "{}: --compare needs two containers (give two traces, or --container twice)",
                    one.display()
                ),
            }
        }
        _ => anyhow::bail!("--compare takes one trace with two containers, or two traces"),
    }
}

/// Writes the report to stdout or `--output`; the warnings go to stderr. A report that
/// fails part way leaves no half-written file behind.
pub fn report(args: &Args) -> anyhow::Result<()> {
    let files = crate::report::parts::expand(&args.files)?;
    if args.compare {
        let (a, b) = compared(&files, &args.filter)?;
        let text = compare::compare(&a, &b);
        return match &args.output {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display())),
            None => {
                print!("{text}");
                Ok(())
            }
        };
    }
    if args.json && args.format != Format::Stats {
        anyhow::bail!("--json goes with --format stats (--format json writes the trace document)");
    }
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
        json: args.json,
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

/// Renders the HTML picture of the trace document at `json` (the parts of a rotated one
/// too) into `html`: from the document, so the session held nothing for it.
pub fn html_from_document(json: &Path, html: &Path) -> anyhow::Result<()> {
    let mut files = vec![json.to_path_buf()];
    for n in 1.. {
        let part = crate::document::writer::part_path(json, n);
        if !part.exists() {
            break;
        }
        files.push(part);
    }
    let mut out = BufWriter::new(
        std::fs::File::create(html)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", html.display()))?,
    );
    let opts = ReportOptions {
        format: Format::Html,
        explain: true,
        all: false,
        color: false,
        json: false,
    };
    report::report_paths(&files, &Filter::default(), &opts, &mut out)?;
    out.flush()?;
    eprintln!("tracer: the picture of the trace is {}", html.display());
    Ok(())
}
