//! The `tracer` command line: a thin layer over the library.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use tracer::{
    commands::{
        self,
        watch::{JsonlTarget, WatchOptions},
    },
    render::views::Views,
};
use tracer_common::DEFAULT_RING_BYTES;

/// `tracer report` allocates and frees a few strings per event, from several threads: with
/// glibc's allocator that was a quarter of its time on a million events.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_t`, the same in v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A report's events are allocated on the parser threads and freed on the correlating one;
/// mimalloc (v3) keeps freed pages a second before giving them back, which on a million
/// events held 20 to 40 MB more at the peak. Giving them back at once (0) made the
/// correlating thread fault in and rebuild fresh pages all the time (a quarter of its work
/// on a Chrome report); 5 ms keeps most of the saving: chrome 1.61 → 1.32 s median on a
/// million events, table 0.98 → 0.94 s, for 4 to 6 MB more (116 → 122 and 128 → 134 MB).
fn give_freed_memory_back_soon() {
    // SAFETY: sets one option and collects, before the threads that allocate much start.
    // An arena keeps the first purge time scheduled (seconds away, from the frees of argument
    // parsing) until it is reached: collecting now purges it, so the next is 5 ms away.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 5);
        libmimalloc_sys::mi_collect(true);
    }
}

/// Watch what happens on this host when containers start, run and go away.
///
/// eBPF programs on the exec, mount and process tracepoints stream every event of a container
/// launch (runtime helpers, mounts, pivot_root, the user's command, exits) to this program.
/// Loading them needs root.
#[derive(Parser, Debug)]
#[command(name = "tracer", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Launch a container with the built-in runtime, tracing every step of its launch.
    ///
    /// The trace (the events of this run's processes and its veth, in the `watch` format)
    /// goes to stderr, then the lifecycle table (and with --timeline or --explain, every
    /// phase of the launch); the container's own output passes through.
    ///
    /// The container gets new mnt, uts, ipc, pid and net namespaces (and a cgroup namespace),
    /// an overlay root filesystem, a cgroup with the given limits, a veth on the tracer0
    /// bridge (--net bridge), Docker's mounts, masked and read-only paths, Docker's default
    /// capabilities and no_new_privs. Its output passes through; its exit code becomes this
    /// command's (128+N for a signal); SIGINT and SIGTERM are passed on to it. Everything it
    /// used is removed afterwards, whatever happens. Needs root.
    Run(RunArgs),
    /// Run a command that starts containers and explain every step of their launch.
    ///
    /// `tracer explain -- docker run --rm IMAGE echo hi` runs the command under trace (its
    /// output passes through) and then prints, for every container it started, the
    /// timeline with a sentence per phase, and the lifecycle table. Exits with the
    /// command's code. Needs root.
    Explain {
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Release what crashed `tracer run`s left behind (mounts, cgroups, veths, addresses).
    Cleanup,
    #[command(name = "__init", hide = true)]
    Init { state_dir: std::path::PathBuf },
    /// Show how each event kind is observed on this kernel.
    ///
    /// Loads the programs and attaches, for every event kind, the best hook that works here
    /// (the designed kprobes first, then fallbacks), and prints a table of every hook wanted,
    /// whether it is available and why not, and which one is used. Exits 0 when every kind
    /// has a hook, 1 otherwise.
    Check,
    /// Stream container lifecycle events live, host-wide, then show the containers seen.
    ///
    /// Events: exec, the mount family, pivot_root, namespaces, setns, veth, fork, exit and
    /// rename. Each line: TIME COMMAND PID ACTION CONTENT. ACTION ends in `!` when the syscall
    /// failed, and the error is shown at the end of CONTENT. By default the stream leaves out
    /// host processes unrelated to containers (--all shows them); --jsonl and --json always
    /// hold every event.
    ///
    /// Containers are recognised from Docker/containerd (shim), podman (conmon), plain runc
    /// and crun, and `tracer run`. When it stops (Ctrl-C, SIGTERM or --duration), a summary
    /// goes to stderr (events, lost and malformed per kind), then the lifecycle table of the
    /// containers seen (and their timelines with --timeline or --explain).
    Watch(WatchArgs),
    /// Show a saved trace: the lifecycle table, timelines, the document, or a Chrome trace.
    ///
    /// Reads what `watch --json` or `run --json` wrote (or `--jsonl` lines), works out the
    /// containers again, and needs no root. A damaged file gives a clear error, or a report
    /// with warnings (on stderr) when only parts of it are unreadable.
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Root filesystem directory, used read-only as the overlay's lower layer (default:
    /// a small skeleton with the host's /usr mounted read-only).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "image"])]
    rootfs: Option<std::path::PathBuf>,
    /// An OCI image layout (as `skopeo copy ... oci:DIR:TAG` or umoci make): layers are
    /// unpacked once into /var/lib/tracer/layers and stacked as overlay lower layers; the
    /// image's entrypoint, cmd, env and working directory apply. CMD, if given, replaces
    /// entrypoint and cmd.
    #[arg(long, value_name = "DIR[:TAG]", conflicts_with = "bundle")]
    image: Option<String>,
    /// An OCI runtime bundle (config.json + rootfs, as `runc spec` makes): its args, env,
    /// cwd, hostname, mounts, masked and read-only paths, capabilities, rlimits, user and
    /// namespaces are honoured; fields not applied are named in a warning. CMD, if given,
    /// replaces the bundle's args.
    #[arg(long, value_name = "DIR")]
    bundle: Option<std::path::PathBuf>,
    /// Keep the container's stdin open (it always is: stdio passes through); with -t, as in
    /// `docker run -it`.
    #[arg(short, long)]
    interactive: bool,
    /// Give the container a pseudo-terminal (its shell's job control, line editing and
    /// Ctrl-C work as at a console; the window size follows yours). Your terminal is in raw
    /// mode while it runs; the trace then goes only to --jsonl/--json, and the table and
    /// timeline print after it exits.
    #[arg(short, long)]
    tty: bool,
    /// Container name (default: its id).
    #[arg(long)]
    name: Option<String>,
    /// Hostname inside (default: the first 8 characters of the id).
    #[arg(long)]
    hostname: Option<String>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside.
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Network: a veth on the tracer0 bridge, only loopback, or the host's (default:
    /// bridge; with --bundle, what its namespaces say).
    #[arg(long, value_enum)]
    net: Option<tracer::runtime::NetMode>,
    /// Memory limit in bytes (suffixes K, M, G).
    #[arg(long, value_parser = parse_size)]
    memory: Option<u64>,
    /// Most processes the container may have.
    #[arg(long)]
    pids_limit: Option<u64>,
    /// The container's seccomp filter: Docker's default profile (refused calls fail with
    /// EPERM: keyctl, mount, unshare, ... without CAP_SYS_ADMIN), none, or a profile file
    /// (Docker's format or an OCI `linux.seccomp`). Default: default; with --bundle, what
    /// the bundle says (none when it says nothing, as runc).
    #[arg(long, value_name = "unconfined|default|FILE")]
    seccomp: Option<tracer::runtime::seccomp::Choice>,
    /// Run the container in a user namespace of its own: its root (uid and gid 0, and the
    /// ids after it) is HOSTID and the ids after it on the host, an unprivileged range;
    /// `auto` takes root's range in /etc/subuid and /etc/subgid. COUNT defaults to 65536.
    /// With --bundle, a user namespace in its `linux.namespaces` with its uid and gid
    /// mappings does the same.
    #[arg(long, value_name = "auto|HOSTID[:COUNT]")]
    userns: Option<tracer::runtime::UserNs>,
    /// Keep the state directory (/run/tracer/ID) for inspection.
    #[arg(long)]
    keep: bool,
    /// Run without tracing (the runtime alone, e.g. to compare with runc).
    #[arg(long)]
    no_trace: bool,
    /// Print neither the trace nor the table on stderr (files are still written).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    views: ViewArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    export: ExportArgs,
    /// Write the run's events as JSON Lines to FILE, as they come.
    #[arg(long, value_name = "FILE", conflicts_with = "no_trace")]
    jsonl: Option<std::path::PathBuf>,
    /// Export the trace as one versioned JSON document (docs/trace-format.md) to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "no_trace")]
    json: Option<std::path::PathBuf>,
    /// Draw the run as one self-contained HTML page (phases and processes on a time axis,
    /// each event and its explanation on hover, the table) to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "no_trace")]
    html: Option<std::path::PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required_unless_present_any = ["bundle", "image"], value_name = "CMD")]
    command: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct WatchArgs {
    /// Also write one JSON object per event to FILE (`-` for stdout, which then replaces
    /// the human-readable stream).
    #[arg(long, value_name = "FILE|-")]
    jsonl: Option<JsonlTarget>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Ring buffer size in bytes: a power of two, at least a page (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value_t = u64::from(DEFAULT_RING_BYTES))]
    ring_size: u64,
    /// Print no human-readable stream (the summary is still printed).
    #[arg(long, short)]
    quiet: bool,
    /// List every hook attached, not only the ones that failed.
    #[arg(long, short)]
    verbose: bool,
    /// Write the versioned trace document (host, hooks, events as they come, then counters
    /// and containers with phases and processes; docs/trace-format.md) to FILE. It is
    /// flushed at every batch: a watch killed at any moment leaves a document that reads
    /// back up to that moment. Read it with `tracer report FILE` (no root needed).
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// With --json: start a new part (FILE.1, FILE.2, ... before the extension) when one
    /// reaches SIZE bytes (suffixes K, M, G); `tracer report` reads the parts as one trace.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "json")]
    json_rotate: Option<u64>,
    /// With --json: when the watch stops, draw the document as one self-contained HTML page
    /// (phases and processes on a time axis, events on hover, the table) to FILE.
    #[arg(long, value_name = "FILE", requires = "json")]
    html: Option<std::path::PathBuf>,
    /// Containers kept in memory for the end-of-watch table and the document's containers:
    /// beyond, the oldest that have exited are dropped and counted (their events stay in
    /// the trace, and `tracer report` works them out again).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_containers: u64,
    /// Show the lifecycle table live in the terminal instead of the event stream: one row
    /// per container as it is created, starts, exits and goes away (q or Ctrl-C to stop;
    /// the final table is printed after).
    #[arg(long)]
    live: bool,
    /// Serve Prometheus metrics at http://[ADDR:]PORT/metrics (127.0.0.1 when no address
    /// is given): events, lost and malformed per kind, containers started and exited,
    /// start latency and phase durations as histograms, dropped spans.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = tracer::export::metrics::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    views: ViewArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// The trace files (`-` for stdin), read as one trace: the parts of a rotated document
    /// in any order (they are put back in the order written), or a quoted pattern such as
    /// 'trace*.json'.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
    /// What to print.
    #[arg(long, short, value_enum, default_value_t = tracer::render::report::Format::Table)]
    format: tracer::render::report::Format,
    /// With the timeline: a sentence per phase saying what it does and why.
    #[arg(long)]
    explain: bool,
    /// Also host processes unrelated to any container (timeline, chrome).
    #[arg(long)]
    all: bool,
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// With --format stats: JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Set two containers side by side, phase by phase (time and events, and what only one
    /// of them does): the first container of each of two traces, or the first two of one
    /// (choose them with --container).
    #[arg(long)]
    compare: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    export: ExportArgs,
    /// Only what happened from this time on: RFC 3339 (2026-12-01T14:03:07Z) or a time of
    /// day as the table shows it (14:03:07.250, local time, on the trace's first day).
    /// Containers alive at some point in the range are shown with all their facts.
    #[arg(long, value_name = "TIME")]
    since: Option<tracer::correlate::filter::TimeArg>,
    /// Only what happened up to this time (as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<tracer::correlate::filter::TimeArg>,
}

/// Where the telemetry goes, and what it must not carry.
#[derive(clap::Args, Debug, Clone, Default)]
struct ExportArgs {
    /// Send each container's lifecycle as an OpenTelemetry trace (a root span, a span per
    /// phase) over OTLP to ENDPOINT (e.g. http://collector:4317); without ENDPOINT, the
    /// standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT. A collector
    /// that is down or slow costs dropped spans (counted and shown), never the trace.
    #[arg(long, value_name = "ENDPOINT", num_args = 0..=1, default_missing_value = "")]
    otlp: Option<String>,
    /// OTLP transport (default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc).
    #[arg(long, value_enum, value_name = "PROTOCOL", requires = "otlp")]
    otlp_protocol: Option<tracer::export::otlp::Transport>,
    /// Blank what matches REGEX in every export (JSON Lines, --json, OTLP), on top of the
    /// defaults (values of --password=, --token=, --api-key=, *_KEY=, *_SECRET=, *_TOKEN=,
    /// URL passwords, and the argument after --password and the like); repeatable.
    #[arg(long, value_name = "REGEX")]
    redact: Vec<String>,
}

impl ExportArgs {
    fn options(&self, metrics: Option<std::net::SocketAddr>) -> tracer::export::ExportOptions {
        tracer::export::ExportOptions {
            otlp: self
                .otlp
                .as_ref()
                .map(|e| (!e.is_empty()).then(|| e.clone())),
            transport: self.otlp_protocol,
            metrics,
        }
    }
}

/// Which containers and events are shown (everything is still traced, correlated and
/// written to --json).
#[derive(clap::Args, Debug, Clone, Default)]
struct FilterArgs {
    /// Only the container with this id or name (a prefix is enough); repeatable.
    #[arg(long = "container", value_name = "ID|NAME")]
    containers: Vec<String>,
    /// Only containers started by this engine; repeatable.
    #[arg(long = "engine", value_name = "ENGINE", value_parser = ["docker", "podman", "containerd"])]
    engines: Vec<String>,
    /// Only containers made by this runtime; repeatable.
    #[arg(long = "runtime", value_name = "RUNTIME", value_parser = ["runc", "crun", "tracer"])]
    runtimes: Vec<String>,
    /// Only events of these kinds, comma-separated (exec,mount,...; see docs/trace-format.md).
    #[arg(long = "kind", value_name = "KIND,...", value_delimiter = ',', value_parser = tracer::correlate::filter::parse_kind)]
    kinds: Vec<tracer::event::EventKind>,
}

impl FilterArgs {
    fn into_filter(self) -> tracer::correlate::Filter {
        tracer::correlate::Filter::new(self.containers, self.engines, self.runtimes, self.kinds)
    }
}

/// What is shown about containers.
#[derive(clap::Args, Debug, Clone, Copy)]
struct ViewArgs {
    /// Show everything: the events of host processes unrelated to any container (stream)
    /// and their activity (timeline).
    #[arg(long)]
    all: bool,
    /// Print each container's timeline: its phases in order, with relative times and the
    /// event behind each.
    #[arg(long)]
    timeline: bool,
    /// Print the timeline with a plain sentence per phase saying what it does and why.
    #[arg(long)]
    explain: bool,
    /// Do not print the lifecycle table.
    #[arg(long)]
    no_table: bool,
}

impl From<ViewArgs> for Views {
    fn from(v: ViewArgs) -> Self {
        Self {
            all: v.all,
            timeline: v.timeline,
            explain: v.explain,
            no_table: v.no_table,
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a duration >= 0"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size in bytes (e.g. 16M)"))
}

/// `tracer run`: the runtime's options and the trace's.
async fn run(a: RunArgs) -> anyhow::Result<i32> {
    commands::privilege::require_root("tracer run")?;
    if a.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("-t needs a terminal on stdin (the input device is not a TTY)");
    }
    let options = tracer::runtime::RunOptions {
        id: tracer::runtime::new_id()?,
        command: a.command,
        bundle: a.bundle,
        image: a.image,
        name: a.name,
        hostname: a.hostname,
        env: a.env,
        workdir: a.workdir,
        net: a.net,
        memory: a.memory,
        pids_limit: a.pids_limit,
        keep: a.keep,
        rootfs: a.rootfs,
        terminal: a.tty,
        seccomp: a.seccomp,
        userns: a.userns,
    };
    let trace = commands::run::TraceOptions {
        enabled: !a.no_trace,
        jsonl: a.jsonl,
        json: a.json,
        quiet: a.quiet,
        views: a.views.into(),
        filter: a.filter.into_filter(),
        export: a.export.options(None),
        html: a.html,
    };
    commands::run::run(&options, &trace).await
}

/// The `--redact` rules, for every export of this process.
fn install_redaction(command: &Command) -> anyhow::Result<()> {
    let given = match command {
        Command::Run(a) => &a.export.redact,
        Command::Watch(a) => &a.export.redact,
        Command::Report(a) => &a.export.redact,
        _ => return Ok(()),
    };
    // The defaults are compiled when an export first needs them (3 ms of a start-up that
    // may export nothing); expressions given are compiled now, to refuse a bad one at once.
    if given.is_empty() {
        return Ok(());
    }
    tracer::event::redact::Redactor::new(given)?.install();
    Ok(())
}

fn main() -> ExitCode {
    // The container's init runs before anything else is set up (no threads, no runtime).
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__init") {
        let dir = args
            .next()
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        tracer::runtime::init::main(&dir);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    // A small heap, and a start-up that counts: no huge page zeroed for a few bytes of it.
    // A report's heap is large and read through: it keeps them.
    if !matches!(&cli.command, Command::Report(_)) {
        tracer::runtime::huge_pages::off_for_this_process();
    }
    // The loader's slow part starts now, beside the rest of the start-up.
    if matches!(&cli.command, Command::Watch(_) | Command::Check)
        || matches!(&cli.command, Command::Run(a) if !a.no_trace)
    {
        tracer::capture::loader::prepare();
    }
    if let Err(e) = install_redaction(&cli.command) {
        eprintln!("tracer: error: {e}");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Run(args) => return run(args).await,
            Command::Explain { command } => return commands::explain::explain(&command).await,
            Command::Report(args) => {
                give_freed_memory_back_soon();
                commands::report::report(&commands::report::Args {
                    files: args.files,
                    format: args.format,
                    explain: args.explain,
                    all: args.all,
                    output: args.output,
                    filter: args.filter.into_filter().between(args.since, args.until),
                    export: args.export.options(None),
                    json: args.json,
                    compare: args.compare,
                })
            }
            Command::Cleanup => commands::cleanup::cleanup().await,
            Command::Init { .. } => unreachable!("handled before the runtime starts"),
            Command::Check => commands::check::check(),
            Command::Watch(args) => commands::watch::watch(WatchOptions {
                jsonl: args.jsonl,
                duration: args.duration,
                ring_bytes: args.ring_size,
                quiet: args.quiet,
                verbose: args.verbose,
                json: args.json,
                json_rotate: args.json_rotate,
                views: args.views.into(),
                filter: args.filter.into_filter(),
                max_containers: args.max_containers,
                live: args.live,
                export: args.export.options(args.metrics),
                html: args.html,
            })
            .await
            .map(|_| ()),
        }
        .map(|()| 0)
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(e) => {
            eprintln!(
                "tracer: error: {}",
                tracer::capture::loader::error_chain(&e)
            );
            // A container that could not start: 127 for a missing command, 125 otherwise.
            let code = e
                .downcast_ref::<tracer::runtime::SetupFailed>()
                .map_or(1, |s| s.code);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
