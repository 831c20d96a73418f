//! `tracer explain -- CMD...`: runs CMD (`docker run --rm IMAGE echo hi`, `podman run ...`,
//! `runc run ...`) under trace and prints the explained timeline and the table of every
//! container it started, so a teacher needs no second terminal.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use super::privilege;
use crate::{
    capture::session::Session,
    correlate::{engine::Engine, Context, Correlation},
    event::{Clock, HostNs},
    render::{lifecycle, timeline},
};

/// How long after CMD exits the trace goes on: the teardown its daemons finish after it.
const TEARDOWN: Duration = Duration::from_millis(1500);

/// Runs `command` traced; its exit code.
pub async fn explain(command: &[String]) -> anyhow::Result<i32> {
    privilege::require_tracing("tracer explain")?;
    let (program, args) = command.split_first().context(
        "tracer explain needs a command: tracer explain -- docker run --rm IMAGE echo hi",
    )?;
    let mut session = Session::open(tracer_common::DEFAULT_RING_BYTES).await?;
    let clock = Clock::now();
    let mut engine = Engine::new(&Context {
        host: HostNs::detect(),
        cgroups: &Default::default(),
    });
    let began = Clock::boot_now_ns();
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    // SAFETY: one async-signal-safe call between fork and exec.
    unsafe {
        command.pre_exec(|| {
            crate::runtime::huge_pages::restore_in_child();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("running {program}"))?;
    // Ctrl-C is the command's to handle; the explanation still follows.
    let mut int = signal(SignalKind::interrupt())?;
    let mut batch = Vec::new();
    let feed = |batch: &mut Vec<_>, session: &mut Session, engine: &mut Engine| {
        for (id, path) in session.cgroups.fresh() {
            engine.learn_cgroup(id, &path);
        }
        batch.sort_by_key(|e: &crate::event::Event| e.ts_ns);
        for ev in batch.drain(..) {
            engine.feed(&ev);
        }
    };
    let status = loop {
        tokio::select! {
            s = child.wait() => break s?,
            r = session.next_batch(&mut batch) => {
                r?;
                feed(&mut batch, &mut session, &mut engine);
            }
            _ = int.recv() => {}
        }
    };
    let until = tokio::time::Instant::now() + TEARDOWN;
    while let Ok(r) = tokio::time::timeout_at(until, session.next_batch(&mut batch)).await {
        r?;
        feed(&mut batch, &mut session, &mut engine);
    }
    session.drain(&mut batch);
    feed(&mut batch, &mut session, &mut engine);
    let counters = session.finish();
    let found = started_by(engine.finish_all(), began);
    if found.containers.is_empty() {
        eprintln!("tracer: {program} started no container");
    } else {
        eprint!("{}", timeline::render(&found.containers, true));
        let color = lifecycle::color_on(&std::io::stderr());
        eprintln!(
            "{}",
            lifecycle::table(&found.containers, &clock, lifecycle::width(), color)
        );
    }
    if counters.total_lost() > 0 {
        eprintln!(
            "tracer: warning: {} events lost (ring buffer full): the explanation may be incomplete",
            counters.total_lost()
        );
    }
    Ok(status.code().unwrap_or(128))
}

/// The containers created once the command ran.
fn started_by(mut found: Correlation, began: u64) -> Correlation {
    found.containers.retain(|c| c.created_ns >= began);
    found
}
