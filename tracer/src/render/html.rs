//! A picture of the launch: one self-contained HTML file (inline CSS, SVG and a little
//! script; nothing fetched) with a time axis, one swimlane per container with its phases as
//! bars, under it one lane per process with its fork, exec and namespace, mount,
//! pivot_root and veth events as ticks, each bar and tick showing its event and the
//! `--explain` sentence when hovered or focused; a click on a container zooms to it; the
//! lifecycle table below. Drawn from the same model as the other formats: the containers the
//! report worked out, and the events it streamed with their owner.

use std::collections::HashMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{lifecycle, timeline};
use crate::{
    correlate::{Container, PhaseKind, Role},
    event::{Clock, Detail, Event},
    report::{End, Head, Prerender, Sink},
};

/// Ticks kept per container (the rest are counted): the page stays small.
const MAX_TICKS: usize = 4000;

const WIDTH: f64 = 1240.0;
const LEFT: f64 = 260.0;
const RIGHT: f64 = 40.0;
const ROW: f64 = 18.0;
const HEAD: f64 = 34.0;

/// One event drawn on a process's lane.
struct Tick {
    ts: u64,
    pid: u32,
    kind: &'static str,
    text: String,
}

/// Whether an event is drawn as a tick.
fn drawn(ev: &Event) -> Option<&'static str> {
    Some(match ev.detail {
        Detail::Fork { .. } => "fork",
        Detail::Exec { .. } => "exec",
        Detail::Exit { .. } => "exit",
        Detail::Namespaces { .. } | Detail::Setns { .. } => "ns",
        Detail::PivotRoot { .. } => "pivot",
        Detail::Veth { .. } | Detail::NetdevMove { .. } => "net",
        Detail::Mount { .. }
        | Detail::Umount { .. }
        | Detail::Fsopen { .. }
        | Detail::Fsconfig { .. }
        | Detail::Fsmount { .. }
        | Detail::MoveMount { .. }
        | Detail::OpenTree { .. }
        | Detail::MountSetattr { .. } => "mount",
        Detail::CgroupMkdir { .. } | Detail::CgroupAttach { .. } => "cgroup",
        Detail::Capset { .. } | Detail::Prctl { .. } | Detail::Seccomp { .. } => "security",
        Detail::IdMap { .. } => "ns",
        Detail::Rename { .. }
        | Detail::CgroupRmdir { .. }
        | Detail::OomKill { .. }
        | Detail::Signal { .. } => return None,
    })
}

/// The tick's text, rendered on a parser thread.
fn tick_text(ev: &Event, out: &mut Vec<u8>) {
    if drawn(ev).is_some() {
        out.extend_from_slice(format!("{} {} {}", ev.comm, ev.tgid, ev).as_bytes());
    }
}

/// The HTML output of `tracer report --format html`.
pub struct Html<'o> {
    out: &'o mut dyn std::io::Write,
    ticks: HashMap<usize, Vec<Tick>>,
    dropped: u64,
    kernel: String,
}

impl<'o> Html<'o> {
    pub fn new(out: &'o mut dyn std::io::Write) -> Self {
        Self {
            out,
            ticks: HashMap::new(),
            dropped: 0,
            kernel: String::new(),
        }
    }
}

impl Sink for Html<'_> {
    fn prerender(&self) -> Option<Prerender> {
        Some(tick_text)
    }

    fn begin(&mut self, head: &Head<'_>) -> std::io::Result<()> {
        self.kernel = head.host.map(|h| h.kernel.clone()).unwrap_or_default();
        Ok(())
    }

    fn event(&mut self, ev: &Event, text: &[u8], owner: Option<usize>) -> std::io::Result<()> {
        let (Some(c), Some(kind)) = (owner, drawn(ev)) else {
            return Ok(());
        };
        let ticks = self.ticks.entry(c).or_default();
        if ticks.len() >= MAX_TICKS {
            self.dropped += 1;
            return Ok(());
        }
        ticks.push(Tick {
            ts: ev.ts_ns,
            pid: ev.tgid,
            kind,
            text: String::from_utf8_lossy(text).into_owned(),
        });
        Ok(())
    }

    fn end(&mut self, end: &End<'_>) -> std::io::Result<()> {
        let clock = Clock::from_offset(end.host.map_or(0, |h| h.boot_to_wall_ns));
        let page = page(end, &self.ticks, self.dropped, &self.kernel, &clock);
        self.out.write_all(page.into_string().as_bytes())
    }
}

/// The span of time shown: every container from its first event to its last.
fn range(containers: &[Container]) -> (u64, u64) {
    let start = containers.iter().map(|c| c.created_ns).min().unwrap_or(0);
    let end = containers
        .iter()
        .map(Container::last_seen_ns)
        .max()
        .unwrap_or(start);
    (start, end.max(start + 1))
}

/// `12.3 ms`, `4.56 s`.
fn duration(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// A colour per phase kind, in launch order around the wheel.
fn colour(kind: PhaseKind) -> String {
    // The golden angle apart: neighbours in launch order never look alike.
    let hue = (kind as usize * 137 + 200) % 360;
    format!("hsl({hue} 62% 52%)")
}

/// The lanes of a container: its name, a row per phase, then a heading and a row per
/// process.
struct Layout {
    y: f64,
}

fn rows_of(c: &Container) -> usize {
    2 + c.phases.len() + c.processes.len()
}

fn page(
    end: &End<'_>,
    ticks: &HashMap<usize, Vec<Tick>>,
    dropped: u64,
    kernel: &str,
    clock: &Clock,
) -> Markup {
    let containers = end.containers;
    let (t0, t1) = range(containers);
    let x =
        |ns: u64| LEFT + (ns.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let rows: usize = containers.iter().map(rows_of).sum();
    let height = HEAD + ROW * rows as f64 + 10.0;
    let mut layout = Layout { y: HEAD };
    let count = format!(
        "{} container{}",
        containers.len(),
        if containers.len() == 1 { "" } else { "s" }
    );
    let title = format!("tracer: {count}");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "Container lifecycle" }
                    p.meta {
                        (count) ", from " (clock.time_of_day(t0))
                        " to " (clock.time_of_day(t1)) " (" (duration(t1 - t0)) ")"
                        @if !kernel.is_empty() { ", kernel " (kernel) }
                        ". Hover or focus a bar or a tick for its event; click a container to zoom to it, "
                        a href="#" id="unzoom" { "show all" } "."
                    }
                }
                div #detail role="status" aria-live="polite" { "Hover or focus a bar or a tick to see its event." }
                svg #chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {height}"))
                    width=(WIDTH) height=(height) data-t0=(t0) data-t1=(t1) role="img"
                    aria-label="phases and processes of each container on a time axis" {
                    defs {
                        clipPath #plot { rect x=(LEFT) y="0" width=(WIDTH - LEFT - RIGHT) height=(height) {} }
                    }
                    (axis(t0, t1, height, &x))
                    @for (i, c) in containers.iter().enumerate() {
                        (container(c, end.tracks.get(i).and_then(|t| ticks.get(t)), &mut layout, &x))
                    }
                }
                @if dropped > 0 {
                    p.note { (dropped) " more events were not drawn (at most " (MAX_TICKS) " per container)." }
                }
                (table(containers, clock))
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn axis(t0: u64, t1: u64, height: f64, x: &dyn Fn(u64) -> f64) -> Markup {
    let span = t1 - t0;
    // A step of 1, 2 or 5 times a power of ten giving about ten marks.
    let raw = span as f64 / 10.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(pow * 10.0)
        .max(1.0) as u64;
    let marks: Vec<u64> = (0..=span / step).map(|k| k * step).collect();
    html! {
        g.axis {
            @for m in &marks {
                line.grid x1=(x(t0 + m)) x2=(x(t0 + m)) y1=(HEAD - 8.0) y2=(height) data-s=(t0 + m) {}
                text.mark x=(x(t0 + m)) y=(HEAD - 12.0) data-s=(t0 + m) { "+" (duration(*m)) }
            }
        }
    }
}

fn container(
    c: &Container,
    ticks: Option<&Vec<Tick>>,
    layout: &mut Layout,
    x: &dyn Fn(u64) -> f64,
) -> Markup {
    let y = layout.y;
    layout.y += ROW * rows_of(c) as f64;
    let procs_y = y + ROW * (1 + c.phases.len()) as f64;
    let name = c.name.clone().unwrap_or_else(|| c.short_id().to_string());
    let label = format!("{name} · {} · {}", c.runtime_label(), c.command.join(" "));
    let gone = c.last_seen_ns();
    let no_ticks = Vec::new();
    let ticks = ticks.unwrap_or(&no_ticks);
    let lane_of: HashMap<u32, usize> = c
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pid, i))
        .collect();
    html! {
        g.container data-s=(c.created_ns) data-e=(gone) {
            rect.band x="0" y=(y) width=(WIDTH) height=(ROW * rows_of(c) as f64) {}
            text.clabel x="6" y=(y + 13.0) tabindex="0" data-zoom-s=(c.created_ns) data-zoom-e=(gone) {
                title { "Click to zoom to this container" }
                (lifecycle::truncate(&label, 38))
            }
            @for (i, p) in c.phases.iter().enumerate() {
                @let py = y + ROW * (1 + i) as f64;
                @let took = duration(p.end_ns - p.start_ns);
                @let text = format!("{}: {took} ({} events) · {}", p.kind.name(), p.events, p.key);
                text.phasename x="14" y=(py + 13.0) { (p.kind.name()) }
                text.took x=(LEFT - 8.0) y=(py + 13.0) { (took) }
                g clip-path="url(#plot)" {
                    rect.phase x=(x(p.start_ns)) y=(py + 3.0) width=((x(p.end_ns) - x(p.start_ns)).max(1.5)) height=(ROW - 6.0)
                        fill=(colour(p.kind)) tabindex="0" data-s=(p.start_ns) data-e=(p.end_ns)
                        data-kind=(p.kind.name()) data-text=(text) data-explain=(timeline::sentence(c, p)) {
                        title { (text) }
                    }
                }
            }
            text.sub x="14" y=(procs_y + 13.0) { "processes" }
            @for (i, p) in c.processes.iter().enumerate() {
                @let ly = procs_y + ROW * (1 + i) as f64;
                @let mine: Vec<&Tick> = ticks.iter().filter(|t| t.pid == p.pid).collect();
                @let born = ticks.iter().find(|t| t.kind == "fork" && t.text.contains(&format!("child={}", p.pid))).map(|t| t.ts);
                @let from = born.or_else(|| mine.first().map(|t| t.ts));
                @let to = mine.last().map(|t| t.ts);
                text.plabel x="14" y=(ly + 13.0) {
                    (lifecycle::truncate(&format!("{} {} ({})", p.pid, p.comms.join(" → "), role(p.role)), 40))
                }
                g.lane clip-path="url(#plot)" data-pid=(p.pid) data-lane=(lane_of[&p.pid]) {
                    @if let (Some(a), Some(b)) = (from, to) {
                        line.life x1=(x(a)) x2=(x(b.max(a))) y1=(ly + ROW / 2.0) y2=(ly + ROW / 2.0) data-s=(a) data-e=(b.max(a)) {}
                    }
                    @for t in &mine {
                        rect class=(format!("tick {}", t.kind)) x=(x(t.ts) - 2.0) y=(ly + 4.0) width="4" height=(ROW - 8.0)
                            tabindex="0" data-s=(t.ts) data-text=(t.text) {
                            title { (t.text) }
                        }
                    }
                }
            }
        }
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Shim => "shim",
        Role::Runtime => "runtime",
        Role::Hook => "hook",
        Role::Container => "container",
    }
}

fn table(containers: &[Container], clock: &Clock) -> Markup {
    let time = |ns: Option<u64>| ns.map_or("-".to_string(), |ns| clock.time_of_day(ns));
    html! {
        table.lifecycle {
            caption { "Lifecycle" }
            thead { tr {
                th { "container" } th { "runtime" } th { "command" } th { "created" } th { "started" }
                th { "exited" } th { "start latency" } th { "exit" } th { "new namespaces" } th { "veth" }
            } }
            tbody {
                @for c in containers {
                    tr {
                        td { (c.name.clone().unwrap_or_else(|| c.short_id().to_string())) }
                        td { (c.runtime_label()) }
                        td.cmd { (c.command.join(" ")) }
                        td { (time(Some(c.created_ns))) }
                        td { (time(c.started_ns)) }
                        td { (time(c.exited_ns)) }
                        td { (c.start_latency_ns().map_or("-".to_string(), duration)) }
                        td { (lifecycle::exit_text(c)) }
                        td { (c.new_namespaces.iter().map(|k| k.name()).collect::<Vec<_>>().join(" ")) }
                        td { (c.veths.join(" ")) }
                    }
                }
            }
        }
    }
}

const CSS: &str = r#"
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; max-width: 1280px; }
h1 { font-size: 18px; margin: 0 0 4px; }
.meta { color: #555; margin: 0 0 8px; }
#detail { position: sticky; top: 0; background: #fffbe6; border: 1px solid #e6d9a2; padding: 6px 8px;
  min-height: 2.8em; margin-bottom: 8px; white-space: pre-wrap; z-index: 1; }
svg { display: block; font-size: 11px; }
.band { fill: #fafafa; stroke: #e4e4e4; }
.clabel { font-weight: 600; cursor: zoom-in; fill: #1a4f8a; }
.sub { fill: #888; font-style: italic; }
.phasename { fill: #333; }
.took { fill: #666; text-anchor: end; font-variant-numeric: tabular-nums; }
.plabel { fill: #444; font-family: ui-monospace, monospace; font-size: 10.5px; }
.grid { stroke: #eee; }
.mark { fill: #777; text-anchor: middle; font-size: 10px; }
.phase { stroke: #0003; cursor: help; }
.phase:hover, .phase:focus, .tick:hover, .tick:focus { stroke: #000; stroke-width: 1.5; outline: none; }
.life { stroke: #bbb; stroke-width: 2; }
.tick { fill: #666; cursor: help; }
.tick.fork { fill: #2a9d8f; } .tick.exec { fill: #e76f51; } .tick.exit { fill: #264653; }
.tick.ns { fill: #8e44ad; } .tick.mount { fill: #b8860b; } .tick.pivot { fill: #c0392b; }
.tick.net { fill: #1f77b4; } .tick.cgroup { fill: #7f8c8d; } .tick.security { fill: #d35400; }
table.lifecycle { border-collapse: collapse; margin-top: 16px; width: 100%; }
.lifecycle caption { text-align: left; font-weight: 600; margin-bottom: 4px; }
.lifecycle th, .lifecycle td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
.lifecycle td.cmd { font-family: ui-monospace, monospace; word-break: break-all; }
.note { color: #a33; }
@media print { #detail { display: none; } body { margin: 0; } svg { width: 100%; height: auto; } }
"#;

/// Hover and focus fill the detail box; a click on a container's name zooms the time axis
/// to it (every drawn element carries its times in `data-s`/`data-e`).
const SCRIPT: &str = r#"
(function () {
  var svg = document.getElementById('chart'), detail = document.getElementById('detail');
  var LEFT = 260, RIGHT = 40, W = +svg.getAttribute('width');
  var T0 = +svg.dataset.t0, T1 = +svg.dataset.t1, t0 = T0, t1 = T1;
  function x(ns) { return LEFT + (ns - t0) / (t1 - t0) * (W - LEFT - RIGHT); }
  function show(e) {
    var el = e.target.closest('[data-text]');
    if (!el) return;
    detail.textContent = el.dataset.text + (el.dataset.explain ? '\n' + el.dataset.explain : '');
  }
  svg.addEventListener('mouseover', show);
  svg.addEventListener('focusin', show);
  function draw() {
    svg.querySelectorAll('[data-s]').forEach(function (el) {
      var s = +el.dataset.s, e = el.dataset.e ? +el.dataset.e : null, tag = el.tagName;
      if (tag === 'rect' && el.classList.contains('tick')) { el.setAttribute('x', x(s) - 2); }
      else if (tag === 'rect') { el.setAttribute('x', x(s)); el.setAttribute('width', Math.max(1.5, x(e) - x(s))); }
      else if (tag === 'line' && e !== null) { el.setAttribute('x1', x(s)); el.setAttribute('x2', x(e)); }
      else if (tag === 'line') { el.setAttribute('x1', x(s)); el.setAttribute('x2', x(s)); }
      else if (tag === 'text' && el.classList.contains('mark')) { el.setAttribute('x', x(s)); }
      if (el.classList.contains('mark') || el.classList.contains('grid')) {
        el.style.visibility = (x(s) < LEFT || x(s) > W - RIGHT) ? 'hidden' : '';
      }
    });
  }
  function zoom(s, e) { t0 = s; t1 = Math.max(e, s + 1); draw(); }
  svg.querySelectorAll('.clabel').forEach(function (el) {
    function go() { zoom(+el.dataset.zoomS, +el.dataset.zoomE); }
    el.addEventListener('click', go);
    el.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') go(); });
  });
  document.getElementById('unzoom').addEventListener('click', function (ev) { ev.preventDefault(); zoom(T0, T1); });
})();
"#;
