//! The flow table of one worker: lookup, creation, expiry and eviction.

use flowscope_core::{
    EndReason, Extracted, FlowEvent, FlowSide, L4Proto, PacketView, TcpEndpointState, Timestamp,
};

use super::flow::{first_extra, flow_id, Extra, ExtraSlab, FirstEncap, Flow, NO_EXTRA};
use super::history::scaled_hit;
use super::slots::{FlowSlots, SlotId};
use super::tcp::letter;
use super::timeout::Timeouts;
use super::timers::{Entry, TimerQueues, CLASSES};
use super::{TrackOutcome, TrackedKey, TrackerConfig, TrackerStats};

/// The flow table for one worker.
///
/// Flows live in a slab with an open-addressed index (`track::slots`): a
/// packet of an existing flow costs one hash lookup, touches its flow's slot
/// and nothing else, and allocates nothing. The tracker clock is the latest
/// packet time seen; a flow ends when the clock passes its deadline (last
/// packet time plus its state's timeout), found at the head of its timeout
/// class's queue (`track::timers`) or when its next packet arrives. When the
/// table is full, the flow idle the longest (oldest last packet) is evicted:
/// the timeout queues hold every flow in order of activity already, so no
/// per-packet LRU list is kept.
pub struct FlowTracker<K: TrackedKey> {
    config: TrackerConfig,
    timeouts: Timeouts,
    stats: TrackerStats,
    slots: FlowSlots<K, Flow>,
    extras: ExtraSlab,
    /// Deadlines by timeout class.
    timers: TimerQueues,
    /// Latest time seen (packets or `advance_to`), ns.
    clock: u64,
    /// Most flows held: `config.max_flows` clamped to 1 ..= 2^32 - 2.
    capacity: usize,
}

impl<K: TrackedKey> FlowTracker<K> {
    /// An empty table. `max_flows` of 0 is treated as 1.
    pub fn new(config: TrackerConfig) -> Self {
        let capacity = config.max_flows.clamp(1, u32::MAX as usize - 1);
        FlowTracker {
            timers: TimerQueues::new(capacity),
            timeouts: Timeouts::new(&config),
            config,
            stats: TrackerStats::default(),
            // A per-table random seed (ahash's): bucket placement only.
            slots: FlowSlots::new(ahash::RandomState::new().hash_one(0x5eed_u64)),
            extras: ExtraSlab::default(),
            clock: 0,
            capacity,
        }
    }

    /// Counts one extracted packet into its flow, creating, ending or
    /// expiring flows as needed; every event goes to `sink` in order.
    pub fn track(
        &mut self,
        pkt: &PacketView<'_>,
        ex: &Extracted<K>,
        sink: &mut impl FnMut(&FlowEvent<K>),
    ) -> TrackOutcome {
        let ts = pkt.ts.as_nanos();
        if ts < self.clock {
            self.stats.ts_backwards += 1;
        }
        self.clock = self.clock.max(ts);
        self.expire(sink);
        self.stats.packets += 1;

        let clock = self.clock;
        let Some(slot) = self.slots.find(&ex.key) else {
            return self.create(pkt, ex, sink);
        };
        let gen = self.slots.gen(slot);
        let Some((_, flow)) = self.slots.get_mut(slot) else {
            return self.create(pkt, ex, sink);
        };
        let end = if clock > flow.deadline(&self.timeouts) {
            // Idle past its timeout but not yet swept.
            EndReason::Timeout
        } else if is_reuse(flow, ex) {
            EndReason::Reused
        } else {
            let side = flow.side_of(ex.orientation);
            let class = flow.timeout_class();
            flow.count(side, pkt, ex);
            let side = apply(flow, side, ex, &mut self.extras);
            let first = flow.first();
            if flow.timeout_class() != class {
                arm(&mut self.timers, &self.timeouts, flow, slot, gen);
            }
            return TrackOutcome {
                first,
                side,
                new_flow: false,
            };
        };
        if let Some((k, f)) = self.slots.remove(slot) {
            self.end(k, f, end, sink);
        }
        self.create(pkt, ex, sink)
    }

    /// Moves the tracker's clock to `now` (if later) and ends every flow
    /// whose timeout has passed. For live capture when no packet arrives.
    pub fn advance_to(&mut self, now: Timestamp, sink: &mut impl FnMut(&FlowEvent<K>)) {
        self.clock = self.clock.max(now.as_nanos());
        self.expire(sink);
    }

    /// Ends every flow (`EndReason::Finished`), least recently active first
    /// (ties in slot order): call at end of input.
    pub fn finish(&mut self, sink: &mut impl FnMut(&FlowEvent<K>)) {
        let mut order: Vec<(u64, SlotId)> = self
            .slots
            .occupied()
            .filter_map(|s| self.slots.get(s).map(|(_, f)| (f.last_ns(), s)))
            .collect();
        order.sort_unstable();
        for (_, s) in order {
            if let Some((k, f)) = self.slots.remove(s) {
                self.end(k, f, EndReason::Finished, sink);
            }
        }
        self.timers.clear();
    }

    /// Records a content gap found by reassembly in `side`'s stream of the
    /// flow `key`: adds `missed_bytes` and the logarithmic `G`/`g` history
    /// letter (Zeek `TCP_Endpoint::Gap`). Returns false when no such flow is
    /// in the table. Does not count as activity.
    pub fn note_gap(&mut self, key: &K, side: FlowSide, missed_bytes: u64) -> bool {
        let Some((_, flow)) = self.slots.find(key).and_then(|s| self.slots.get_mut(s)) else {
            return false;
        };
        if flow.extra == NO_EXTRA {
            flow.extra = self.extras.alloc(Extra::default());
        }
        let i = usize::from(side == FlowSide::Responder);
        let gaps = match self.extras.get_mut(flow.extra) {
            Some(x) => {
                if let Some(m) = x.missed.get_mut(i) {
                    *m = m.saturating_add(missed_bytes);
                }
                match x.gaps.get_mut(i) {
                    Some(g) => {
                        *g = g.saturating_add(1);
                        *g
                    }
                    None => 0,
                }
            }
            // No slot left (over 4 billion live flows): the letter still counts once.
            None => 1,
        };
        if scaled_hit(gaps) {
            flow.history.push(letter(b'G', i == 0));
        }
        true
    }

    /// Counters so far.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Flows in the table now.
    pub fn active_flows(&self) -> usize {
        self.slots.len()
    }

    /// Ends the flow idle the longest (`EndReason::Evicted`, counted in
    /// `ended_evicted`), as a full table does, to give memory back under a
    /// budget. False when the table is empty.
    pub fn evict_idlest(&mut self, sink: &mut impl FnMut(&FlowEvent<K>)) -> bool {
        if self.slots.len() == 0 {
            return false;
        }
        self.evict_one(sink);
        true
    }

    /// Memory one flow takes in the table: its slot (key, state and a
    /// generation number), two index buckets (the index is kept at most half
    /// full; just after it doubles, four) and its one timer-queue entry. Not
    /// included: the out-of-line slot of flows with tunnel, capture-source
    /// or gap data.
    pub const fn entry_bytes() -> usize {
        FlowSlots::<K, Flow>::slot_bytes()
            + 2 * FlowSlots::<K, Flow>::bucket_bytes()
            + core::mem::size_of::<Entry>()
    }

    /// Ends every flow whose deadline passed, class by class in queue order.
    fn expire(&mut self, sink: &mut impl FnMut(&FlowEvent<K>)) {
        let clock = self.clock;
        if !self.timers.any_due(clock) && !self.timers.needs_compaction() {
            return;
        }
        for class in 0..CLASSES {
            while let Some(entry) = self.timers.pop_due(class, clock) {
                let Some(flow) = self.slots.get_gen_mut(entry.slot, entry.gen) else {
                    continue; // the flow ended some other way
                };
                flow.armed &= !(1 << class);
                if flow.timeout_class() != class {
                    continue; // moved to another class, queued there
                }
                let deadline = flow.deadline(&self.timeouts);
                if clock > deadline {
                    if let Some((k, f)) = self.slots.remove(entry.slot) {
                        self.end(k, f, EndReason::Timeout, sink);
                    }
                } else {
                    // Active since it was queued: queue it again.
                    flow.armed |= 1 << class;
                    self.timers.requeue(class, Entry { deadline, ..entry });
                }
            }
        }
        self.timers.refresh_next_due();
        if self.timers.needs_compaction() {
            self.compact_timers();
        }
    }

    /// Drops queued entries of flows that ended or changed class.
    fn compact_timers(&mut self) {
        let slots = &mut self.slots;
        self.timers
            .compact(|class, e| match slots.get_gen_mut(e.slot, e.gen) {
                Some(f) if f.timeout_class() == class => true,
                Some(f) => {
                    f.armed &= !(1 << class);
                    false
                }
                None => false,
            });
    }

    /// Ends the flow idle the longest to make room (`EndReason::Evicted`).
    ///
    /// Within a timeout class every flow has the same timeout, so its queue
    /// is in order of last activity once stale heads are dealt with: entries
    /// of ended flows are dropped, and a head whose flow was active since it
    /// was queued is queued again with its real deadline (as `expire` does).
    /// The oldest of the classes' valid heads is the victim.
    fn evict_one(&mut self, sink: &mut impl FnMut(&FlowEvent<K>)) {
        let mut victim: Option<(u64, usize)> = None;
        for class in 0..CLASSES {
            while let Some(entry) = self.timers.head(class) {
                let Some(flow) = self.slots.get_gen_mut(entry.slot, entry.gen) else {
                    self.timers.pop(class);
                    continue;
                };
                if flow.timeout_class() != class {
                    flow.armed &= !(1 << class);
                    self.timers.pop(class);
                    continue;
                }
                let deadline = flow.deadline(&self.timeouts);
                if deadline != entry.deadline {
                    // `last` only grows, so the real deadline is later.
                    self.timers.pop(class);
                    self.timers.requeue(class, Entry { deadline, ..entry });
                    continue;
                }
                let last = flow.last_ns();
                if victim.is_none_or(|(l, _)| last < l) {
                    victim = Some((last, class));
                }
                break;
            }
        }
        let slot = match victim.and_then(|(_, class)| self.timers.pop(class)) {
            Some(e) => Some(e.slot),
            // Every flow has an entry in its class's queue, so this is
            // unreachable; if the invariant ever broke, any flow will do.
            None => self.slots.occupied().next(),
        };
        self.timers.refresh_next_due();
        if let Some((k, f)) = slot.and_then(|s| self.slots.remove(s)) {
            self.end(k, f, EndReason::Evicted, sink);
        }
    }

    /// Creates the flow of a packet that has none.
    fn create(
        &mut self,
        pkt: &PacketView<'_>,
        ex: &Extracted<K>,
        sink: &mut impl FnMut(&FlowEvent<K>),
    ) -> TrackOutcome {
        // A SYN-ACK first: its receiver started the connection, and Zeek
        // marks the flip with `^` (Connection::FlipRoles).
        let syn_ack_first =
            ex.l4 == L4Proto::Tcp && ex.tcp.is_some_and(|t| t.flags.syn() && t.flags.ack());
        let initiator = if syn_ack_first {
            ex.orientation.reverse()
        } else {
            ex.orientation
        };
        let fe = FirstEncap::of(&ex.encap);
        let extra = first_extra(&fe, pkt.source).map_or(NO_EXTRA, |x| self.extras.alloc(x));
        let mut flow = Flow::new(pkt.ts, ex.l4, initiator, fe.vlans, fe.vlan_count, extra);
        if syn_ack_first {
            flow.history.push(b'^');
        }
        let side = flow.side_of(ex.orientation);
        flow.count(side, pkt, ex);
        let side = apply(&mut flow, side, ex, &mut self.extras);
        let id = flow_id(&ex.key, pkt.ts);
        self.stats.flows_created += 1;
        if self.slots.len() >= self.capacity {
            self.evict_one(sink);
        }
        let inserted = self.slots.insert(ex.key.clone(), flow);
        sink(&FlowEvent::Started {
            key: ex.key.clone(),
            id,
            ts: pkt.ts,
            initiator,
        });
        match inserted {
            Ok(slot) => {
                let gen = self.slots.gen(slot);
                if let Some((_, flow)) = self.slots.get_mut(slot) {
                    arm(&mut self.timers, &self.timeouts, flow, slot, gen);
                }
                self.stats.active = self.slots.len() as u64;
            }
            // No slot (impossible below 2^32 - 1 flows, which the capacity
            // clamp keeps us under): the flow ends at once, still counted.
            Err((k, f)) => self.end(k, f, EndReason::Evicted, sink),
        }
        TrackOutcome {
            first: pkt.ts,
            side,
            new_flow: true,
        }
    }

    /// Emits a flow's final record; the flow is already out of the table.
    fn end(&mut self, key: K, flow: Flow, reason: EndReason, sink: &mut impl FnMut(&FlowEvent<K>)) {
        let extra = match flow.extra {
            NO_EXTRA => None,
            i => self.extras.release(i),
        };
        let rec = flow.record(key, extra.as_ref(), reason, self.config.community_id_seed);
        match reason {
            EndReason::Evicted => self.stats.ended_evicted += 1,
            EndReason::Finished => self.stats.ended_finished += 1,
            EndReason::Reused => self.stats.ended_reused += 1,
            _ => self.stats.ended_timeout += 1,
        }
        self.stats.active = self.slots.len() as u64;
        sink(&FlowEvent::Ended(rec));
    }

    #[cfg(test)]
    pub(crate) fn timers_len(&self) -> usize {
        self.timers.len()
    }

    #[cfg(test)]
    pub(crate) fn extras_in_use(&self) -> usize {
        self.extras.in_use()
    }
}

/// Queues the flow's deadline in the queue of its current timeout class,
/// unless it already has an entry there.
fn arm(timers: &mut TimerQueues, timeouts: &Timeouts, flow: &mut Flow, slot: SlotId, gen: u32) {
    let class = flow.timeout_class();
    if flow.armed & (1 << class) == 0 {
        flow.armed |= 1 << class;
        let entry = Entry {
            deadline: flow.deadline(timeouts),
            slot,
            gen,
        };
        timers.push(class, entry);
    }
}

/// Runs the protocol logic for a packet of `side` and applies a role flip;
/// returns the sender's side afterwards.
fn apply<K>(flow: &mut Flow, side: usize, ex: &Extracted<K>, extras: &mut ExtraSlab) -> FlowSide {
    let mut side = side;
    if flow.observe(side, ex) {
        let x = extras.get_mut(flow.extra);
        flow.flip(x);
        side = 1 - side;
    }
    flow.refresh_class();
    if side == 0 {
        FlowSide::Initiator
    } else {
        FlowSide::Responder
    }
}

/// Whether a SYN starts a new connection on this tuple, exactly as Zeek's
/// `TCPSessionAdapter::IsReuse` (src/analyzer/protocol/tcp/TCP.cc) decides:
/// only SYNs count (a SYN-ACK only for a half connection whose originator was
/// never seen); once either endpoint has closed (`IsClosed()`: FIN or RST),
/// any such SYN is a new connection; on an open connection, a SYN whose
/// sequence number differs from the originator's start is one too, unless it
/// is the initial SYN of a connection whose SYN and SYN-ACK arrived swapped.
fn is_reuse<K>(flow: &Flow, ex: &Extracted<K>) -> bool {
    let Some(tcp) = ex.tcp else { return false };
    if flow.l4() != L4Proto::Tcp || ex.l4 != L4Proto::Tcp || !tcp.flags.syn() {
        return false;
    }
    let [orig, resp] = &flow.ends;
    let conn_orig = if tcp.flags.ack() {
        if orig.state() != TcpEndpointState::Inactive {
            return false; // not a half connection
        }
        // Deviation: Zeek would compare with the start of a responder it
        // has never seen (0) when the originator's only packets were
        // dropped for bad checksums; an unseen endpoint is no evidence of a
        // new connection.
        if resp.state() == TcpEndpointState::Inactive {
            return false;
        }
        resp
    } else {
        orig
    };
    let is_closed = orig.did_close() || resp.did_close();
    if is_closed {
        return true;
    }
    if tcp.seq == conn_orig.start_seq() {
        return false;
    }
    // SYN and SYN-ACK seen in swapped order: not a reuse (Zeek flips instead).
    !(!tcp.flags.ack()
        && conn_orig.state() == TcpEndpointState::SynAckSent
        && resp.state() == TcpEndpointState::Inactive
        && tcp.seq == resp.start_seq())
}
