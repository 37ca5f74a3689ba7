//! Idle-timeout bookkeeping without table scans: one FIFO queue per timeout
//! class.
//!
//! Within a class every flow has the same timeout and the tracker clock only
//! moves forward, so new entries arrive in deadline order and a FIFO keeps
//! them sorted. An entry queued again (its flow was active when it came
//! due) carries its last packet's deadline, which can be earlier than
//! entries queued since: it goes to the class's min-heap instead, so a later
//! deadline ahead in the FIFO cannot hold it past its own. The class's head
//! is the earlier of the two heads, so only heads need looking at. Entries are lazy: a flow is queued when it is
//! created or changes class, not on every packet; when its entry comes due,
//! the flow's real deadline (from its latest packet) decides whether it ends
//! now or is queued again. Entries of flows that ended some other way
//! (evicted, reused, finished) or changed class are dropped when they reach
//! the head, and the queues are compacted when stale entries pile up, so
//! their memory stays proportional to the flow table's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::slots::SlotId;

/// Number of timeout classes (see [`super::timeout::Timeouts::class_of`]).
pub(crate) const CLASSES: usize = 6;

/// One queued deadline: 16 bytes, naming the flow by its table slot.
/// Ordered by deadline first (the heap's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// When the flow would expire if it saw no packet after being queued, ns.
    pub(crate) deadline: u64,
    /// The flow's slot in the table.
    pub(crate) slot: SlotId,
    /// The slot's generation when queued: tells this flow from a later flow
    /// given the same slot.
    pub(crate) gen: u32,
}

/// The per-class queues.
#[derive(Debug)]
pub(crate) struct TimerQueues {
    /// New and reclassified flows, in deadline order by construction.
    queues: [VecDeque<Entry>; CLASSES],
    /// Flows queued again, earliest deadline on top.
    requeued: [BinaryHeap<Reverse<Entry>>; CLASSES],
    /// Entries in all queues (kept, not summed: it is checked per packet).
    total: usize,
    /// Total entries at which stale ones are swept out.
    compact_at: usize,
    /// The floor of `compact_at`: a multiple of the table's capacity.
    compact_floor: usize,
    /// No head deadline is earlier than this: while the clock has not passed
    /// it, nothing is due and the per-packet check is one comparison.
    next_due: u64,
}

impl TimerQueues {
    pub(crate) fn new(max_flows: usize) -> Self {
        let floor = max_flows.saturating_add(1024);
        TimerQueues {
            queues: Default::default(),
            requeued: Default::default(),
            total: 0,
            compact_at: floor,
            compact_floor: floor,
            next_due: u64::MAX,
        }
    }

    /// Queues a new or reclassified flow's deadline: its packet's time plus
    /// the class's timeout, in order behind the FIFO's tail unless the
    /// packet's time went backwards, in which case it goes to the heap.
    pub(crate) fn push(&mut self, class: usize, entry: Entry) {
        let Some(q) = self.queues.get_mut(class) else {
            return;
        };
        if q.back().is_some_and(|tail| tail.deadline > entry.deadline) {
            return self.requeue(class, entry);
        }
        self.next_due = self.next_due.min(entry.deadline);
        q.push_back(entry);
        self.total += 1;
    }

    /// Queues again a flow whose entry came due while it was active, with
    /// its real deadline (O(log n): a hostile pattern of flows each active
    /// once per timeout cannot make it shift the queue).
    pub(crate) fn requeue(&mut self, class: usize, entry: Entry) {
        if let Some(h) = self.requeued.get_mut(class) {
            self.next_due = self.next_due.min(entry.deadline);
            h.push(Reverse(entry));
            self.total += 1;
        }
    }

    /// Which of the class's two heads comes first: `Some(true)` the heap's.
    fn earlier_is_heap(&self, class: usize) -> Option<bool> {
        let fifo = self.queues.get(class)?.front();
        let heap = self.requeued.get(class)?.peek().map(|r| &r.0);
        match (fifo, heap) {
            (None, None) => None,
            (Some(_), None) => Some(false),
            (None, Some(_)) => Some(true),
            (Some(f), Some(h)) => Some(h < f),
        }
    }

    /// True when some head may be due at `clock`.
    #[inline]
    pub(crate) fn any_due(&self, clock: u64) -> bool {
        clock > self.next_due
    }

    /// Recomputes the earliest head deadline; call after popping.
    pub(crate) fn refresh_next_due(&mut self) {
        self.next_due = self
            .queues
            .iter()
            .filter_map(|q| q.front().map(|e| e.deadline))
            .chain(
                self.requeued
                    .iter()
                    .filter_map(|h| h.peek().map(|r| r.0.deadline)),
            )
            .min()
            .unwrap_or(u64::MAX);
    }

    /// The head of `class` if its deadline has passed (`clock > deadline`).
    pub(crate) fn pop_due(&mut self, class: usize, clock: u64) -> Option<Entry> {
        if self.head(class).is_some_and(|e| clock > e.deadline) {
            self.pop(class)
        } else {
            None
        }
    }

    /// The head of `class` (the earliest deadline), due or not.
    pub(crate) fn head(&self, class: usize) -> Option<Entry> {
        if self.earlier_is_heap(class)? {
            self.requeued.get(class)?.peek().map(|r| r.0)
        } else {
            self.queues.get(class)?.front().copied()
        }
    }

    /// Removes the head of `class`.
    pub(crate) fn pop(&mut self, class: usize) -> Option<Entry> {
        let e = if self.earlier_is_heap(class)? {
            self.requeued.get_mut(class)?.pop()?.0
        } else {
            self.queues.get_mut(class)?.pop_front()?
        };
        self.total -= 1;
        Some(e)
    }

    /// True when stale entries should be swept out.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.len() > self.compact_at
    }

    /// Keeps only the entries `keep` accepts, then sets the next compaction
    /// point so that compaction stays amortised O(1) per entry.
    pub(crate) fn compact(&mut self, mut keep: impl FnMut(usize, &Entry) -> bool) {
        for (class, q) in self.queues.iter_mut().enumerate() {
            q.retain(|e| keep(class, e));
            q.shrink_to(q.len().max(64));
        }
        for (class, h) in self.requeued.iter_mut().enumerate() {
            h.retain(|r| keep(class, &r.0));
            h.shrink_to(h.len().max(64));
        }
        self.total = self.queues.iter().map(VecDeque::len).sum::<usize>()
            + self.requeued.iter().map(BinaryHeap::len).sum::<usize>();
        self.compact_at = self.compact_floor.max(self.len().saturating_mul(2));
        self.refresh_next_due();
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        for q in &mut self.queues {
            q.clear();
        }
        for h in &mut self.requeued {
            h.clear();
        }
        self.total = 0;
        self.compact_at = self.compact_floor;
        self.next_due = u64::MAX;
    }

    /// Entries queued in all classes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(
            self.total,
            self.queues.iter().map(VecDeque::len).sum::<usize>()
                + self.requeued.iter().map(BinaryHeap::len).sum::<usize>()
        );
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(deadline: u64, slot: u32) -> Entry {
        Entry {
            deadline,
            slot,
            gen: 0,
        }
    }

    #[test]
    fn heads_come_out_in_deadline_order_across_fifo_and_heap() {
        let mut t = TimerQueues::new(16);
        for (d, s) in [(10, 1), (20, 2), (30, 3)] {
            t.push(0, e(d, s));
        }
        t.requeue(0, e(15, 4));
        t.requeue(0, e(25, 5));
        // Behind the tail's 30: a backwards packet time goes to the heap.
        t.push(0, e(5, 6));
        t.push(1, e(1, 7));
        t.refresh_next_due();
        assert_eq!(t.len(), 7);
        assert!(t.any_due(2) && !t.any_due(1));
        assert_eq!(t.pop_due(0, 5), None, "5 is not past 5");
        let mut order = Vec::new();
        while let Some(x) = t.pop_due(0, 100) {
            order.push(x.deadline);
        }
        assert_eq!(order, [5, 10, 15, 20, 25, 30]);
        assert_eq!(t.head(1), Some(e(1, 7)));
        t.compact(|class, _| class != 1);
        assert_eq!(t.len(), 0);
    }
}
