//! The containers, by the index every map refers to them with. A container dropped to stay
//! within `--max-containers` leaves an empty slot (one pointer), so indices never move.

use super::State;

#[derive(Debug, Default)]
pub(super) struct Slots {
    items: Vec<Option<Box<State>>>,
    live: usize,
    /// No slot before this one holds a container that could be dropped.
    oldest: usize,
}

impl Slots {
    pub(super) fn push(&mut self, st: State) -> usize {
        self.items.push(Some(Box::new(st)));
        self.live += 1;
        self.items.len() - 1
    }

    /// Containers kept.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// The kept containers with their indices.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = (usize, &State)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_deref()?)))
    }

    /// The latest kept container for which `f` holds.
    pub(super) fn rposition(&self, mut f: impl FnMut(&State) -> bool) -> Option<usize> {
        self.iter().rev().find(|(_, st)| f(st)).map(|(i, _)| i)
    }

    /// The oldest container that has exited, taken out of its slot.
    pub(super) fn drop_oldest_exited(&mut self) -> Option<(usize, Box<State>)> {
        while self.items.get(self.oldest).is_some_and(Option::is_none) {
            self.oldest += 1;
        }
        let i = (self.oldest..self.items.len()).find(|&i| {
            self.items[i]
                .as_ref()
                .is_some_and(|st| st.c.exited_ns.is_some())
        })?;
        self.live -= 1;
        Some((i, self.items[i].take()?))
    }

    /// Every kept container, in order.
    pub(super) fn into_states(self) -> impl Iterator<Item = State> {
        self.items.into_iter().flatten().map(|b| *b)
    }
}

impl std::ops::Index<usize> for Slots {
    type Output = State;
    /// Dropped containers are forgotten by every map: an index to one is a bug.
    fn index(&self, i: usize) -> &State {
        self.items[i].as_deref().expect("a kept container")
    }
}

impl std::ops::IndexMut<usize> for Slots {
    fn index_mut(&mut self, i: usize) -> &mut State {
        self.items[i].as_deref_mut().expect("a kept container")
    }
}
