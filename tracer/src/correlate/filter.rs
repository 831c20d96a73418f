//! Which containers and events are shown: `--container`, `--engine`, `--runtime`, `--kind`,
//! and on a saved trace `--since`/`--until`. A filter chooses what is shown, never what is
//! correlated: a container's facts come from all its events whichever are shown.

use super::model::Container;
use crate::event::{Clock, Event, EventKind};

/// A point in time given on the command line: RFC 3339, or a time of day as the tables
/// show it (`14:03:07.250`, local time), taken on the trace's first day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// Wall-clock nanoseconds since the epoch.
    Wall(i128),
    /// Nanoseconds since local midnight.
    OfDay(u64),
}

impl std::str::FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(TimeArg::Wall(wall_ns(&t.to_utc())));
        }
        for format in ["%H:%M:%S%.f", "%H:%M"] {
            if let Ok(t) = chrono::NaiveTime::parse_from_str(s, format) {
                let since_midnight = t - chrono::NaiveTime::MIN;
                let ns = since_midnight.num_nanoseconds().unwrap_or(0);
                return Ok(TimeArg::OfDay(u64::try_from(ns).unwrap_or(0)));
            }
        }
        Err(format!(
            "{s:?} is not a time: give RFC 3339 (2026-12-01T14:03:07Z) or a time of day as \
             the table shows it (14:03:07.250)"
        ))
    }
}

fn wall_ns(t: &chrono::DateTime<chrono::Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

impl TimeArg {
    /// In boot-time nanoseconds (what events carry), a time of day taken on the local day of
    /// `first_ns`.
    pub fn boot_ns(self, clock: &Clock, first_ns: u64) -> u64 {
        let wall = match self {
            TimeArg::Wall(ns) => ns,
            TimeArg::OfDay(of_day) => {
                let first = clock.wall_ns(first_ns);
                let secs = i64::try_from(first.div_euclid(1_000_000_000)).unwrap_or(0);
                let midnight = chrono::DateTime::from_timestamp(secs, 0)
                    .map(|t| t.with_timezone(&chrono::Local).date_naive())
                    .and_then(|d| {
                        d.and_time(chrono::NaiveTime::MIN)
                            .and_local_timezone(chrono::Local)
                            .earliest()
                    })
                    .map_or(0, |t| wall_ns(&t.to_utc()));
                midnight + i128::from(of_day)
            }
        };
        u64::try_from(wall - clock.offset_ns()).unwrap_or(0)
    }
}

/// What to show. Empty lists choose everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Ids or names, each matched as a prefix.
    pub containers: Vec<String>,
    pub engines: Vec<String>,
    pub runtimes: Vec<String>,
    pub kinds: Vec<EventKind>,
    pub since: Option<TimeArg>,
    pub until: Option<TimeArg>,
    /// `since` and `until` in boot-time nanoseconds, once the trace's clock is known.
    range: Option<(u64, u64)>,
}

impl Filter {
    /// A filter on containers and kinds (empty lists choose everything).
    pub fn new(
        containers: Vec<String>,
        engines: Vec<String>,
        runtimes: Vec<String>,
        kinds: Vec<EventKind>,
    ) -> Self {
        Self {
            containers,
            engines,
            runtimes,
            kinds,
            ..Self::default()
        }
    }

    /// Also a time range (either end may be open).
    pub fn between(self, since: Option<TimeArg>, until: Option<TimeArg>) -> Self {
        Self {
            since,
            until,
            ..self
        }
    }

    /// Whether it chooses containers (events of no container are then hidden).
    pub fn by_container(&self) -> bool {
        !self.containers.is_empty() || !self.engines.is_empty() || !self.runtimes.is_empty()
    }

    /// Whether it chooses anything at all.
    pub fn is_empty(&self) -> bool {
        !self.by_container()
            && self.kinds.is_empty()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Resolves `since` and `until` against the trace's clock and first event.
    pub fn resolve(&mut self, clock: &Clock, first_ns: u64) {
        if self.since.is_some() || self.until.is_some() {
            self.range = Some((
                self.since.map_or(0, |t| t.boot_ns(clock, first_ns)),
                self.until.map_or(u64::MAX, |t| t.boot_ns(clock, first_ns)),
            ));
        }
    }

    /// Whether container `c` is shown: it matches every criterion given and was alive at
    /// some point in the time range.
    pub fn container(&self, c: &Container) -> bool {
        let named = self.containers.is_empty()
            || self.containers.iter().any(|want| {
                c.id.starts_with(want.as_str())
                    || c.name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(want.as_str()))
            });
        let engine = self.engines.is_empty()
            || c.engine
                .as_ref()
                .is_some_and(|e| self.engines.iter().any(|w| w == e.name()));
        let runtime =
            self.runtimes.is_empty() || self.runtimes.iter().any(|w| w == c.runtime.name());
        let alive = self.range.is_none_or(|(since, until)| {
            c.created_ns <= until && c.exited_ns.is_none_or(|e| e >= since)
        });
        named && engine && runtime && alive
    }

    /// Whether event `ev` of container `owner` (if any) is shown.
    pub fn event(&self, ev: &Event, owner: Option<&Container>) -> bool {
        let kind = self.kinds.is_empty() || self.kinds.contains(&ev.detail.kind());
        let when = self
            .range
            .is_none_or(|(since, until)| (since..=until).contains(&ev.ts_ns));
        let whose = !self.by_container() || owner.is_some_and(|c| self.container(c));
        kind && when && whose
    }
}

/// Parses `--kind` names (`exec,mount`).
pub fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        format!(
            "unknown event kind {s:?}; the kinds are {}",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_resolve() {
        let clock = Clock::from_offset(1_000_000_000_000_000_000);
        let t: TimeArg = "2001-09-09T01:46:41Z".parse().unwrap();
        // 1_000_000_001 s after the epoch: 1 s of boot time.
        assert_eq!(t.boot_ns(&clock, 0), 1_000_000_000);
        let of_day: TimeArg = "01:02:03.5".parse().unwrap();
        assert_eq!(of_day, TimeArg::OfDay(3_723_500_000_000));
        assert_eq!(
            "14:03".parse::<TimeArg>().unwrap(),
            TimeArg::OfDay(50_580_000_000_000)
        );
        let e = "soon".parse::<TimeArg>().unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
        assert!(parse_kind("exec").is_ok());
        assert!(parse_kind("exce")
            .unwrap_err()
            .contains("the kinds are exec"));
    }
}
