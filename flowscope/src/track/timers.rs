//! Idle-timeout bookkeeping without table scans: one FIFO queue per timeout
//! class.
//!
//! Within a class every flow has the same timeout and the tracker clock only
//! moves forward, so new entries arrive in deadline order; entries queued
//! again are inserted in order ([`TimerQueues::push`]); so only the queue
//! heads need looking at. Entries are lazy: a flow is queued when it is
//! created or changes class, not on every packet; when its entry comes due,
//! the flow's real deadline (from its latest packet) decides whether it ends
//! now or is queued again. Entries of flows that ended some other way
//! (evicted, reused, finished) or changed class are dropped when they reach
//! the head, and the queues are compacted when stale entries pile up, so
//! their memory stays proportional to the flow table's.

use std::collections::VecDeque;

use super::slots::SlotId;

/// Number of timeout classes (see [`super::timeout::Timeouts::class_of`]).
pub(crate) const CLASSES: usize = 6;

/// One queued deadline: 16 bytes, naming the flow by its table slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    queues: [VecDeque<Entry>; CLASSES],
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
            total: 0,
            compact_at: floor,
            compact_floor: floor,
            next_due: u64::MAX,
        }
    }

    /// Queues a deadline in `class`, keeping the queue in deadline order.
    ///
    /// A new or reclassified flow's deadline is the clock plus the class's
    /// timeout, never earlier than the tail's: appended. A flow queued
    /// again (its entry came due but it had been active) has the deadline
    /// of its last packet, which can be earlier than entries queued since;
    /// appending it would let those later deadlines hold it past its own
    /// (a flow idle since 14.2 s with a 5 s timeout still open at 20.8 s).
    /// It is inserted in order instead: a binary search, and a shift of the
    /// entries queued after its last packet.
    pub(crate) fn push(&mut self, class: usize, entry: Entry) {
        if let Some(q) = self.queues.get_mut(class) {
            self.next_due = self.next_due.min(entry.deadline);
            match q.back() {
                Some(tail) if tail.deadline > entry.deadline => {
                    let at = q.partition_point(|e| e.deadline <= entry.deadline);
                    q.insert(at, entry);
                }
                _ => q.push_back(entry),
            }
            self.total += 1;
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
            .min()
            .unwrap_or(u64::MAX);
    }

    /// The head of `class` if its deadline has passed (`clock > deadline`).
    pub(crate) fn pop_due(&mut self, class: usize, clock: u64) -> Option<Entry> {
        let q = self.queues.get_mut(class)?;
        if q.front().is_some_and(|e| clock > e.deadline) {
            self.total -= 1;
            q.pop_front()
        } else {
            None
        }
    }

    /// The head of `class`, due or not.
    pub(crate) fn head(&self, class: usize) -> Option<Entry> {
        self.queues.get(class)?.front().copied()
    }

    /// Removes the head of `class`.
    pub(crate) fn pop(&mut self, class: usize) -> Option<Entry> {
        let e = self.queues.get_mut(class)?.pop_front()?;
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
        self.total = self.queues.iter().map(VecDeque::len).sum();
        self.compact_at = self.compact_floor.max(self.len().saturating_mul(2));
        self.refresh_next_due();
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        for q in &mut self.queues {
            q.clear();
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
        );
        self.total
    }
}
