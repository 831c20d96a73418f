//! Event times: boot-time nanoseconds (`CLOCK_BOOTTIME`, what the kernel stamps) turned into
//! wall-clock time.

/// Converts boot-time nanoseconds to local wall-clock text.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, in nanoseconds, measured once.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Self {
        use nix::time::{clock_gettime, ClockId};
        let ns = |c| {
            clock_gettime(c).map_or(0, |t| {
                i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
            })
        };
        let boot = ns(ClockId::CLOCK_BOOTTIME);
        let real = ns(ClockId::CLOCK_REALTIME);
        Self {
            offset_ns: real - boot,
        }
    }

    /// `CLOCK_BOOTTIME` now, in nanoseconds: the time events carry.
    pub fn boot_now_ns() -> u64 {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
    }

    /// The clock of a saved trace.
    pub fn from_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, in nanoseconds.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// Wall-clock nanoseconds since the epoch of a boot-time stamp.
    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        i128::from(boot_ns) + self.offset_ns
    }

    /// `HH:MM:SS.mmm` in local time.
    pub fn time_of_day(&self, boot_ns: u64) -> String {
        let wall = self.wall_ns(boot_ns);
        let secs = i64::try_from(wall.div_euclid(1_000_000_000)).unwrap_or(0);
        let nanos = wall.rem_euclid(1_000_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(t) => t
                .with_timezone(&chrono::Local)
                .format("%H:%M:%S%.3f")
                .to_string(),
            None => format!("{boot_ns}"),
        }
    }
}
