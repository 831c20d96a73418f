//! What is printed about containers when `watch` or `run` ends.

use super::{lifecycle, timeline};
use crate::{
    correlate::{Container, Correlation, Filter},
    event::Clock,
};

/// The correlated views printed at the end of `watch` and `run`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Views {
    /// Also the events of host processes unrelated to containers (stream) and the host's
    /// activity (timeline).
    pub all: bool,
    /// The per-container timeline.
    pub timeline: bool,
    /// A sentence per phase saying what it does (implies the timeline).
    pub explain: bool,
    /// No lifecycle table.
    pub no_table: bool,
}

impl Views {
    /// Renders the end-of-session views.
    /// The containers `filter` chooses.
    pub fn render(
        &self,
        found: &Correlation,
        filter: &Filter,
        clock: &Clock,
        color: bool,
    ) -> String {
        let containers: Vec<Container> = found
            .containers
            .iter()
            .filter(|c| filter.container(c))
            .cloned()
            .collect();
        let containers = &containers;
        let mut out = String::new();
        if self.timeline || self.explain {
            out.push_str(&timeline::render(containers, self.explain));
            out.push_str(&timeline::unattributed(
                &found.unattributed,
                found.unattributed_total,
            ));
        }
        if !self.no_table {
            out.push_str(&lifecycle::table(
                containers,
                clock,
                lifecycle::width(),
                color,
            ));
            out.push('\n');
            if found.containers_dropped > 0 {
                out.push_str(&format!(
                    "{} earlier containers were dropped to stay within --max-containers (their \
                     events are in the trace: `tracer report` lists them)\n",
                    found.containers_dropped
                ));
            }
        }
        out
    }
}
