//! The reorder window: events put back in time order within a span of time, so a nearly
//! sorted trace comes out sorted without ever being held whole.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::Event;

/// Events are put back in time order within this window; one later than that is taken
/// where it arrives (and said so).
pub(super) const REORDER_WINDOW_NS: u64 = 2_000_000_000;

/// An event waiting in the window.
pub(super) struct Pending {
    ts: u64,
    seq: u64,
    pub(super) ev: Event,
    /// The event as the output writes it (rendered by a parser thread).
    pub(super) text: Bytes,
}

#[derive(Default)]
pub(super) struct Window {
    /// Ordered by (ts, seq). Input is nearly sorted, so nearly every event goes on the
    /// back (a heap moved each ~250-byte event a dozen times).
    queue: VecDeque<Pending>,
    seq: u64,
    /// The latest time seen.
    max_ts: u64,
}

impl Window {
    /// Puts an event at its place in time (ties in arrival order).
    pub(super) fn place(&mut self, ev: Event, text: Bytes) {
        self.max_ts = self.max_ts.max(ev.ts_ns);
        let p = Pending {
            ts: ev.ts_ns,
            seq: self.seq,
            ev,
            text,
        };
        self.seq += 1;
        let key = (p.ts, p.seq);
        let at = match self.queue.back() {
            Some(last) if (last.ts, last.seq) > key => {
                self.queue.partition_point(|q| (q.ts, q.seq) <= key)
            }
            _ => self.queue.len(),
        };
        self.queue.insert(at, p);
    }

    /// The oldest event, once it is older than the window (no earlier one can still come).
    pub(super) fn pop_ready(&mut self) -> Option<Pending> {
        let p = self.queue.front()?;
        if p.ts.saturating_add(REORDER_WINDOW_NS) > self.max_ts {
            return None;
        }
        self.queue.pop_front()
    }

    /// The oldest event, whatever its age: at the end of the input.
    pub(super) fn pop(&mut self) -> Option<Pending> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    fn at(ts: u64) -> Event {
        Event {
            ts_ns: ts,
            ..Event::for_test(1, Detail::Fork { child_pid: 2 })
        }
    }

    #[test]
    fn sorts_within_the_window_and_holds_back_what_is_recent() {
        let mut w = Window::default();
        for ts in [5, 3, 4, 1] {
            w.place(at(ts), Bytes::new());
        }
        assert!(w.pop_ready().is_none(), "all within the window");
        w.place(at(REORDER_WINDOW_NS + 4), Bytes::new());
        let ready: Vec<u64> = std::iter::from_fn(|| w.pop_ready())
            .map(|p| p.ev.ts_ns)
            .collect();
        assert_eq!(ready, [1, 3, 4]);
        let rest: Vec<u64> = std::iter::from_fn(|| w.pop()).map(|p| p.ev.ts_ns).collect();
        assert_eq!(rest, [5, REORDER_WINDOW_NS + 4]);
    }
}
