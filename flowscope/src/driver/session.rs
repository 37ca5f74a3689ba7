//! The session driver: one packet in, flow events and typed application
//! messages out, in wire order.
//!
//! Per packet: extract → (defragment) → track → reassemble (TCP) → parse.
//! Parsers are chosen per flow by their factories' probes on the first bytes
//! each side sends (so HTTP and TLS are found on any port, DNS on its
//! ports). State per flow lives in one map keyed like the tracker's table and
//! is dropped when the tracker ends the flow, so it is bounded by the
//! tracker's `max_flows`.

use flowscope_core::{
    ChecksumStatus, DatagramParserFactory, FiveTuple, FlowEvent, FlowExtractor, FlowId, FlowRecord,
    FlowSide, FragmentInfo, L4Proto, Orientation, PacketView, ParserContext, Probe, Reassembler,
    ReassemblerFactory, SessionEvent, SessionParserFactory, Skip, StreamEvent, TcpSegment,
    Timestamp,
};

use super::erased::{DatagramFactoryDyn, DatagramParserDyn, StreamFactoryDyn, StreamParserDyn};
use super::memory::{MemoryBudget, MemoryStats, DEFAULT_MEMORY_BUDGET};
use super::PacketCounters;
use crate::extract::{ExtractConfig, FiveTupleExtractor};
use crate::reassembly::defrag::{DefragConfig, DefragOutcome, DefragStats, Defragmenter};
use crate::reassembly::tcp::{
    ReassemblyStats, TcpReassembler, TcpReassemblerFactory, TcpReassemblyConfig,
};
use crate::track::slots::FlowSlots;
use crate::track::{FlowTracker, TrackerConfig, TrackerStats};

/// Most bytes of a side that probes see at once while they ask for more.
const PROBE_BYTES: usize = 32;
/// Chunks of each side probed before the side is given up on: a protocol
/// may start after a preamble (TLS after a SOCKS or STARTTLS exchange, a
/// stray byte before a hello), as tshark's heuristics also allow.
const PROBE_CHUNKS: u8 = 8;

/// Reported once per parser the memory budget gave up (the flow's parser
/// was closed and is no longer fed; the flow itself is still tracked).
pub const PARSER_SHED: flowscope_core::Anomaly = flowscope_core::Anomaly::new("memory.parser_shed");

/// Everything a [`SessionDriver`] can be tuned with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Link layers and tunnels.
    pub extract: ExtractConfig,
    /// Flow table limits and timeouts.
    pub track: TrackerConfig,
    /// TCP reassembly caps and overlap policy.
    pub reassembly: TcpReassemblyConfig,
    /// IP defragmentation limits.
    pub defrag: DefragConfig,
    /// Skip IP defragmentation (fragments are then only counted).
    pub no_defrag: bool,
    /// Most bytes of one side held while no parser has claimed the flow
    /// (default 4 KiB), so that the parser chosen later still sees them.
    pub hold_per_side: usize,
    /// Most bytes held that way over all flows (default 32 MiB). Holds
    /// that flows let go are kept for reuse by later flows, at most this
    /// many heap bytes of them too.
    pub hold_total: usize,
    /// Memory the driver may hold over all its components together: flows,
    /// out-of-order bytes, fragments, unclaimed bytes and parser state
    /// (default [`DEFAULT_MEMORY_BUDGET`], 256 MiB; `usize::MAX` turns it
    /// off). The per-component caps above still apply. Checked after every
    /// packet from counters each component keeps (no scan); once passed,
    /// the driver enters emergency mode and sheds, cheapest loss first,
    /// until it is down to 90 % of the budget:
    /// 1. spare buffers kept for reuse (holds, fragment buffers): nothing lost;
    /// 2. datagrams being defragmented, oldest first;
    /// 3. out-of-order bytes: each flow's held bytes are delivered at once
    ///    and the holes before them become gaps;
    /// 4. bytes held for parsers not chosen yet;
    /// 5. parsers, the largest first: closed (pending messages emitted),
    ///    then no longer fed, with the anomaly [`PARSER_SHED`];
    /// 6. flows, idle the longest first (`EndReason::Evicted`).
    ///
    /// Every step is counted in [`MemoryStats`]
    /// ([`SessionDriver::memory_stats`]).
    pub memory_budget: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            extract: ExtractConfig::default(),
            track: TrackerConfig::default(),
            reassembly: TcpReassemblyConfig::default(),
            defrag: DefragConfig::default(),
            no_defrag: false,
            hold_per_side: 4 * 1024,
            hold_total: 32 * 1024 * 1024,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// What a flow's application events are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The flow's id (as in its [`FlowRecord`]).
    pub id: FlowId,
    /// The flow's key.
    pub key: FiveTuple,
    /// Which way the initiator's packets go relative to `key`.
    pub initiator: Orientation,
    /// The parser's protocol name once one was chosen.
    pub app_proto: Option<&'static str>,
}

impl SessionInfo {
    /// `(src ip, src port, dst ip, dst port)` of a packet sent by `side`.
    pub fn endpoints(&self, side: FlowSide) -> (std::net::IpAddr, u16, std::net::IpAddr, u16) {
        match side {
            FlowSide::Initiator => self.key.directed(self.initiator),
            FlowSide::Responder => self.key.directed(self.initiator.reverse()),
        }
    }
}

/// What the driver reports, in wire order.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverEvent<'a, M> {
    /// A flow event from the tracker; for an ended flow, `app_proto` names
    /// the parser that ran on it.
    Flow {
        /// The event.
        event: &'a FlowEvent<FiveTuple>,
        /// The flow's application protocol, if a parser matched.
        app_proto: Option<&'static str>,
    },
    /// An event from a flow's parser (or from reassembly: gaps, anomalies).
    Session {
        /// The flow it belongs to.
        info: &'a SessionInfo,
        /// Capture time of the packet that made it.
        ts: Timestamp,
        /// The event.
        event: SessionEvent<M>,
    },
}

/// Counters of the session layer. With [`PacketCounters`] they account for
/// every packet and every parsed flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCounters {
    /// Datagrams rebuilt from fragments and tracked as one packet each.
    pub datagrams_reassembled: u64,
    /// Rebuilt datagrams the extractor still rejected.
    pub reassembled_malformed: u64,
    /// Flows given a stream (TCP) parser.
    pub stream_parsers: u64,
    /// Flows given a datagram (UDP) parser.
    pub datagram_parsers: u64,
    /// Flows whose parser gave up (poisoned).
    pub parsers_poisoned: u64,
    /// TCP flows with payload (or a SYN-ACK) that ended with no parser matched.
    pub unidentified_streams: u64,
    /// Application messages emitted.
    pub messages: u64,
    /// Anomalies reported by reassembly or parsers.
    pub anomalies: u64,
    /// Content gaps reported by reassembly.
    pub gaps: u64,
    /// Sides whose not-yet-claimed bytes outgrew the per-side or the global
    /// hold limit: what was held is dropped and nothing more is held, so
    /// a parser chosen later starts without that side's earlier bytes.
    pub hold_overflows: u64,
    /// Held bytes replayed into a parser once it was chosen.
    pub held_bytes_replayed: u64,
}

enum ParserSlot<M> {
    /// No parser chosen yet; probes run on each side's first chunks
    /// (`tries`: chunks that matched nothing, per side).
    Probing {
        tries: [u8; 2],
    },
    Stream(Box<dyn StreamParserDyn<M>>),
    Datagram(Box<dyn DatagramParserDyn<M>>),
    /// No parser matched, or the parser gave up.
    Idle,
}

/// A side's stream event held while no parser has claimed the flow.
#[derive(Clone, Copy, Debug)]
enum HeldItem {
    /// `len` bytes at `start` in the side's buffer.
    Data {
        side: FlowSide,
        ts: Timestamp,
        start: usize,
        len: usize,
    },
    /// A hole in the side's stream.
    Gap {
        side: FlowSide,
        ts: Timestamp,
        len: u64,
    },
}

/// What both sides sent before a parser claimed the flow, bounded, so the
/// parser chosen later sees its stream from the start. Needed only when a
/// side's first chunk does not decide the parser; reused from flow to flow
/// (see [`HoldBudget`]).
#[derive(Debug, Default)]
struct Held {
    /// Both sides' events, in arrival order.
    items: Vec<HeldItem>,
    /// Per side (initiator, responder): the held bytes, contiguous.
    bytes: [Vec<u8>; 2],
    /// Per side: where in `bytes` the current probe run starts. Bytes
    /// before it were rejected by every probe as an opening (a preamble).
    run_start: [usize; 2],
    /// Per side: the first item of the current run, once a run was reset.
    /// A parser matched on this side is fed items from there on (both
    /// sides); with no reset, from the flow's first item.
    reset_at: [Option<usize>; 2],
    /// Per side: held bytes dropped for a limit; nothing more is held.
    overflowed: [bool; 2],
}

impl Held {
    fn size(&self) -> usize {
        self.bytes.iter().map(Vec::len).sum()
    }

    /// Heap bytes its buffers take (capacity, not length).
    fn footprint(&self) -> usize {
        let items = self.items.capacity() * std::mem::size_of::<HeldItem>();
        self.bytes
            .iter()
            .map(Vec::capacity)
            .fold(items, usize::saturating_add)
            .saturating_add(std::mem::size_of::<Held>())
    }

    /// Emptied for another flow, keeping its buffers.
    fn clear(&mut self) {
        self.items.clear();
        for b in &mut self.bytes {
            b.clear();
        }
        self.run_start = [0; 2];
        self.reset_at = [None; 2];
        self.overflowed = [false; 2];
    }
}

/// The held-bytes budget shared by every flow of a driver, and the holds
/// released by ended or decided flows, kept for reuse: holding a new
/// flow's first chunks then allocates nothing once the driver is warm.
#[derive(Debug)]
struct HoldBudget {
    per_side: usize,
    total: usize,
    used: usize,
    /// Spare holds; their heap footprint is at most `total`. Boxed as the
    /// flows hold them, so reusing one moves a pointer, not a `Held`.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Held>>,
    /// Heap bytes of the spare holds.
    spare_bytes: usize,
}

impl HoldBudget {
    /// Heap bytes accounted to holds: bytes held now and spare holds.
    fn accounted(&self) -> usize {
        self.used.saturating_add(self.spare_bytes)
    }

    /// Frees the spare holds; returns their heap bytes.
    fn drop_spare(&mut self) -> usize {
        self.spare = Vec::new();
        std::mem::take(&mut self.spare_bytes)
    }

    /// Gives back what `held` holds and frees it (no reuse).
    fn discard(&mut self, held: Option<Box<Held>>) {
        if let Some(h) = held {
            self.used = self.used.saturating_sub(h.size());
        }
    }

    /// Gives back what `held` holds, and keeps the hold for reuse.
    fn release(&mut self, held: Option<Box<Held>>) {
        let Some(mut h) = held else { return };
        self.used = self.used.saturating_sub(h.size());
        let size = h.footprint();
        if self.spare_bytes.saturating_add(size) <= self.total {
            h.clear();
            self.spare_bytes += size;
            self.spare.push(h);
        }
    }

    /// An empty hold: a spare one if any.
    fn take_spare(&mut self) -> Box<Held> {
        if let Some(h) = self.spare.pop() {
            self.spare_bytes = self.spare_bytes.saturating_sub(h.footprint());
            return h;
        }
        Box::new(Held {
            // Room for the chunks of both sides' probe windows at once.
            items: Vec::with_capacity(2 * usize::from(PROBE_CHUNKS)),
            ..Held::default()
        })
    }
}

fn side_index(side: FlowSide) -> usize {
    usize::from(side == FlowSide::Responder)
}

/// Appends `bytes` to `side`'s held stream, within the limits; false (and
/// the side's bytes dropped, counted) when they do not fit.
fn hold_data(
    held: &mut Option<Box<Held>>,
    side: FlowSide,
    bytes: &[u8],
    ts: Timestamp,
    budget: &mut HoldBudget,
    counters: &mut SessionCounters,
) -> bool {
    let i = side_index(side);
    let h = held.get_or_insert_with(|| budget.take_spare());
    let (Some(held_len), Some(&over)) = (h.bytes.get(i).map(Vec::len), h.overflowed.get(i)) else {
        return false;
    };
    if over {
        return false;
    }
    let fits = held_len.saturating_add(bytes.len()) <= budget.per_side
        && budget.used.saturating_add(bytes.len()) <= budget.total;
    if !fits {
        counters.hold_overflows += 1;
        budget.used = budget.used.saturating_sub(held_len);
        if let Some(b) = h.bytes.get_mut(i) {
            *b = Vec::new();
        }
        if let Some(o) = h.overflowed.get_mut(i) {
            *o = true;
        }
        // The side's items now point past its (empty) buffer: replay
        // skips them, and item indices stay valid.
        if let Some(r) = h.run_start.get_mut(i) {
            *r = 0;
        }
        return false;
    }
    let Some(buf) = h.bytes.get_mut(i) else {
        return false;
    };
    if buf.capacity() == 0 {
        // One allocation for the usual few small chunks; the budget counts
        // bytes held, so the capacity may exceed it by Vec's doubling slack.
        buf.reserve(bytes.len().max(512).min(budget.per_side));
    }
    let start = buf.len();
    buf.extend_from_slice(bytes);
    budget.used += bytes.len();
    h.items.push(HeldItem::Data {
        side,
        ts,
        start,
        len: bytes.len(),
    });
    true
}

/// Starts a new probe run on `side` after its held bytes were rejected
/// (or cut by a gap): they are not fed to a parser chosen on this side.
fn reset_run(h: &mut Held, side: FlowSide) {
    let i = side_index(side);
    let end = h.bytes.get(i).map_or(0, Vec::len);
    if let Some(r) = h.run_start.get_mut(i) {
        *r = end;
    }
    let next = h.items.len();
    if let Some(r) = h.reset_at.get_mut(i) {
        *r = Some(next);
    }
}

struct Session<M> {
    info: SessionInfo,
    ctx: ParserContext,
    reasm: Option<TcpReassembler>,
    parser: ParserSlot<M>,
    /// Bytes no parser has claimed yet (None until needed).
    held: Option<Box<Held>>,
    /// The parser's memory as last accounted ([`parser_footprint`]).
    parser_mem: usize,
}

/// What a flow's parser takes: its own (boxed) size and its heap.
fn parser_footprint<M>(p: &ParserSlot<M>) -> usize {
    match p {
        ParserSlot::Stream(p) => std::mem::size_of_val(&**p).saturating_add(p.memory_used()),
        ParserSlot::Datagram(p) => std::mem::size_of_val(&**p).saturating_add(p.memory_used()),
        _ => 0,
    }
}

/// Accounts the change in a flow's parser memory since it was last read.
fn account_parser<M>(parser: &ParserSlot<M>, last: &mut usize, total: &mut usize) {
    let now = parser_footprint(parser);
    *total = total.saturating_sub(*last).saturating_add(now);
    *last = now;
}

/// Extractor, defragmenter, tracker, reassembler and parsers for one worker.
///
/// `M` is the message type every registered parser's messages convert into
/// (see [`crate::proto::AppMessage`] for the built-in one).
pub struct SessionDriver<M> {
    extractor: FiveTupleExtractor,
    tracker: FlowTracker<FiveTuple>,
    defrag: Option<Defragmenter>,
    reasm: TcpReassemblerFactory,
    stream_factories: Vec<Box<dyn StreamFactoryDyn<M>>>,
    datagram_factories: Vec<Box<dyn DatagramFactoryDyn<M>>>,
    /// Per-flow session state, in a table like the tracker's (same fast
    /// key hash, no per-lookup allocation), dropped when the flow ends.
    sessions: FlowSlots<FiveTuple, Session<M>>,
    counters: PacketCounters,
    session_counters: SessionCounters,
    reassembly_stats: ReassemblyStats,
    /// Rebuilt datagrams, with the original link-layer prefix.
    scratch: Vec<u8>,
    /// Bytes held for parsers not chosen yet, over all flows.
    hold: HoldBudget,
    /// The global memory budget.
    mem: MemoryBudget,
}

impl<M: 'static> SessionDriver<M> {
    /// A driver with no parsers: flows, reassembly and defragmentation only.
    pub fn new(config: SessionConfig) -> Self {
        SessionDriver {
            extractor: FiveTupleExtractor::new(config.extract),
            tracker: FlowTracker::new(config.track),
            defrag: (!config.no_defrag).then(|| Defragmenter::new(config.defrag)),
            reasm: TcpReassemblerFactory::new(config.reassembly),
            stream_factories: Vec::new(),
            datagram_factories: Vec::new(),
            sessions: FlowSlots::new(ahash::RandomState::new().hash_one(0x5e55_u64)),
            counters: PacketCounters::default(),
            session_counters: SessionCounters::default(),
            reassembly_stats: ReassemblyStats::default(),
            scratch: Vec::new(),
            hold: HoldBudget {
                per_side: config.hold_per_side,
                total: config.hold_total,
                used: 0,
                spare: Vec::new(),
                spare_bytes: 0,
            },
            mem: MemoryBudget::new(config.memory_budget),
        }
    }

    /// Adds a stream (TCP) parser; factories are probed in the order added.
    pub fn add_stream_parser<F>(&mut self, factory: F) -> &mut Self
    where
        F: SessionParserFactory + Send + 'static,
        F::Parser: Send + 'static,
        <F::Parser as flowscope_core::SessionParser>::Message: Into<M>,
    {
        self.stream_factories.push(Box::new(factory));
        self
    }

    /// Adds a datagram (UDP) parser; factories are probed in the order added.
    pub fn add_datagram_parser<F>(&mut self, factory: F) -> &mut Self
    where
        F: DatagramParserFactory + Send + 'static,
        F::Parser: Send + 'static,
        <F::Parser as flowscope_core::DatagramParser>::Message: Into<M>,
    {
        self.datagram_factories.push(Box::new(factory));
        self
    }

    /// Runs one packet; every event it causes goes to `sink` in order.
    pub fn process(&mut self, pkt: &PacketView<'_>, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        self.process_packet(pkt, sink);
        self.enforce_budget(pkt.ts, sink);
    }

    fn process_packet(&mut self, pkt: &PacketView<'_>, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        self.counters.packets += 1;
        self.counters.frame_bytes += u64::from(pkt.wire_len);
        let fragment = match self.extractor.extract(pkt) {
            Ok(ex) => match ex.first_fragment {
                Some(info) if self.defrag.is_some() => info,
                _ => {
                    self.counters.count_tracked(ex.anomalies);
                    self.track_and_parse(pkt, &ex, sink);
                    return;
                }
            },
            Err(Skip::Fragment(info)) if self.defrag.is_some() => info,
            Err(skip) => {
                self.counters.count_skip(skip);
                self.advance_to(pkt.ts, sink);
                return;
            }
        };
        self.counters.fragments += 1;
        self.defragment(pkt, fragment, sink);
    }

    /// Moves time to `now` without a packet, expiring idle flows and
    /// stale fragments.
    pub fn advance_to(&mut self, now: Timestamp, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        if let Some(d) = self.defrag.as_mut() {
            d.advance_to(now);
        }
        let Self {
            tracker,
            sessions,
            session_counters,
            reassembly_stats,
            hold,
            mem,
            ..
        } = self;
        tracker.advance_to(now, &mut |ev| {
            on_flow_event(
                ev,
                sessions,
                session_counters,
                reassembly_stats,
                hold,
                &mut mem.parsers,
                sink,
            )
        });
    }

    /// Ends every flow at end of input: parsers flush what is pending.
    pub fn finish(&mut self, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        let Self {
            tracker,
            sessions,
            session_counters,
            reassembly_stats,
            hold,
            mem,
            ..
        } = self;
        tracker.finish(&mut |ev| {
            on_flow_event(
                ev,
                sessions,
                session_counters,
                reassembly_stats,
                hold,
                &mut mem.parsers,
                sink,
            )
        });
    }

    /// Where the packets went.
    pub fn counters(&self) -> &PacketCounters {
        &self.counters
    }

    /// Session-layer counters.
    pub fn session_counters(&self) -> &SessionCounters {
        &self.session_counters
    }

    /// The tracker's counters.
    pub fn tracker_stats(&self) -> TrackerStats {
        self.tracker.stats()
    }

    /// Reassembly counters of every flow that ended so far.
    pub fn reassembly_stats(&self) -> &ReassemblyStats {
        &self.reassembly_stats
    }

    /// Defragmentation counters (all zero when defragmentation is off).
    pub fn defrag_stats(&self) -> DefragStats {
        self.defrag
            .as_ref()
            .map(Defragmenter::stats)
            .unwrap_or_default()
    }

    /// Bytes held now for flows whose parser is not chosen yet (at most
    /// [`SessionConfig::hold_total`]).
    pub fn held_bytes(&self) -> usize {
        self.hold.used
    }

    /// Flows with session state now (at most the tracker's `max_flows`).
    pub fn active_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The memory budget: what is accounted now, per component, the peak,
    /// and what emergency mode shed (see [`SessionConfig::memory_budget`]).
    /// O(1).
    pub fn memory_stats(&self) -> MemoryStats {
        let mut s = self.mem.stats;
        s.flows = flow_bytes::<M>(self.tracker.active_flows(), self.sessions.len());
        s.reassembly = self.reasm.held_total();
        s.defrag = self
            .defrag
            .as_ref()
            .map_or(0, Defragmenter::memory_reserved);
        s.holds = self.hold.accounted();
        s.parsers = self.mem.parsers;
        s.used = [s.flows, s.reassembly, s.defrag, s.holds, s.parsers]
            .into_iter()
            .fold(0, usize::saturating_add);
        s
    }

    /// Memory accounted now: a sum of counters, O(1).
    fn memory_used(&self) -> usize {
        accounted::<M>(
            self.tracker.active_flows(),
            self.sessions.len(),
            &self.reasm,
            self.defrag.as_ref(),
            &self.hold,
            self.mem.parsers,
        )
    }

    /// After each packet: records the peak and, past the budget, enters
    /// emergency mode and sheds down to the low-water mark. Emergency mode
    /// ends at or below the low-water mark.
    #[inline]
    fn enforce_budget(&mut self, now: Timestamp, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        let used = self.memory_used();
        let st = &mut self.mem.stats;
        if used > st.peak {
            st.peak = used;
        }
        if used > st.budget || st.in_emergency {
            self.under_pressure(used, now, sink);
        }
    }

    /// The budget was passed (or emergency mode is on): the rare path.
    #[cold]
    #[inline(never)]
    fn under_pressure(
        &mut self,
        used: usize,
        now: Timestamp,
        sink: &mut impl FnMut(DriverEvent<'_, M>),
    ) {
        if used > self.mem.stats.budget {
            let st = &mut self.mem.stats;
            if !st.in_emergency {
                st.in_emergency = true;
                st.emergency_entries += 1;
            }
            self.shed(now, sink);
        }
        if self.memory_used() <= self.mem.stats.low_water {
            self.mem.stats.in_emergency = false;
        }
    }

    /// Sheds, cheapest loss first, until the accounted memory is at or
    /// below the low-water mark (the order of
    /// [`SessionConfig::memory_budget`]). Whole-table passes, but only
    /// here: after one, at least 10 % of the budget must fill again before
    /// the next.
    fn shed(&mut self, now: Timestamp, sink: &mut impl FnMut(DriverEvent<'_, M>)) {
        let target = self.mem.stats.low_water;
        // 1. Spare buffers: nothing is lost.
        let mut freed = self.hold.drop_spare();
        if let Some(d) = self.defrag.as_mut() {
            freed = freed.saturating_add(d.release_spare());
        }
        self.mem.stats.shed_spare_bytes += freed as u64;
        // 2. Datagrams in progress, oldest first.
        if let Some(before) = self.defrag.as_ref().map(|d| d.stats().datagrams_shed) {
            while self.memory_used() > target
                && self.defrag.as_mut().is_some_and(Defragmenter::shed_oldest)
            {}
            let after = self
                .defrag
                .as_ref()
                .map_or(before, |d| d.stats().datagrams_shed);
            self.mem.stats.shed_datagrams += after.saturating_sub(before);
        }
        let Self {
            tracker,
            sessions,
            session_counters,
            reassembly_stats,
            reasm,
            stream_factories,
            defrag,
            hold,
            mem,
            ..
        } = self;
        let n_sessions = sessions.len();
        let used = |tracker: &FlowTracker<FiveTuple>, hold: &HoldBudget, parsers: usize| {
            accounted::<M>(
                tracker.active_flows(),
                n_sessions,
                reasm,
                defrag.as_ref(),
                hold,
                parsers,
            )
        };
        // 3. Out-of-order bytes: delivered now, the holes become gaps.
        for (key, s) in sessions.iter_mut() {
            if used(tracker, hold, mem.parsers) <= target {
                return;
            }
            let Session {
                info,
                ctx,
                reasm: Some(r),
                parser,
                held,
                parser_mem,
            } = s
            else {
                continue;
            };
            if r.buffered_bytes() == 0 {
                continue;
            }
            let key = *key;
            r.skip_holes(&mut |side, ev| {
                on_stream_event(
                    side,
                    ev,
                    now,
                    info,
                    ctx,
                    parser,
                    held,
                    hold,
                    stream_factories,
                    session_counters,
                    &mut |side, len| {
                        tracker.note_gap(&key, side, len);
                    },
                    sink,
                )
            });
            account_parser(parser, parser_mem, &mut mem.parsers);
            mem.stats.shed_reassembly += 1;
        }
        // 4. Bytes held for parsers not chosen yet.
        for (_, s) in sessions.iter_mut() {
            if used(tracker, hold, mem.parsers) <= target {
                return;
            }
            if s.held.is_some() {
                hold.discard(s.held.take());
                mem.stats.shed_holds += 1;
            }
        }
        // 5. Parsers, largest first: each round gives up every parser of at
        // least half the largest one's size, so a few rounds suffice.
        loop {
            if used(tracker, hold, mem.parsers) <= target {
                return;
            }
            let largest = sessions
                .iter_mut()
                .map(|(_, s)| s.parser_mem)
                .max()
                .unwrap_or(0);
            if largest == 0 {
                break;
            }
            let threshold = (largest / 2).max(1);
            for (_, s) in sessions.iter_mut() {
                if used(tracker, hold, mem.parsers) <= target {
                    return;
                }
                if s.parser_mem >= threshold {
                    shed_parser(s, now, session_counters, sink);
                    mem.parsers = mem.parsers.saturating_sub(s.parser_mem);
                    s.parser_mem = 0;
                    mem.stats.shed_parsers += 1;
                }
            }
        }
        // 6. Flows, idle the longest first. Their holds go back to the
        // spare list when they end: freed again at the end.
        while accounted::<M>(
            tracker.active_flows(),
            sessions.len(),
            reasm,
            defrag.as_ref(),
            hold,
            mem.parsers,
        ) > target
        {
            let evicted = tracker.evict_idlest(&mut |ev| {
                on_flow_event(
                    ev,
                    sessions,
                    session_counters,
                    reassembly_stats,
                    hold,
                    &mut mem.parsers,
                    sink,
                )
            });
            if !evicted {
                break;
            }
            mem.stats.shed_flows += 1;
        }
        mem.stats.shed_spare_bytes += hold.drop_spare() as u64;
    }

    fn defragment(
        &mut self,
        pkt: &PacketView<'_>,
        info: FragmentInfo,
        sink: &mut impl FnMut(DriverEvent<'_, M>),
    ) {
        let prefix_len = info.ip_offset as usize;
        let (Some(prefix), Some(ip), Some(defrag)) = (
            pkt.data.get(..prefix_len),
            pkt.data.get(prefix_len..),
            self.defrag.as_mut(),
        ) else {
            self.advance_to(pkt.ts, sink);
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let complete = match defrag.push(pkt.ts, ip) {
            DefragOutcome::Complete(dgram) => {
                scratch.clear();
                scratch.extend_from_slice(prefix);
                scratch.extend_from_slice(dgram);
                true
            }
            _ => false,
        };
        if !complete {
            self.scratch = scratch;
            self.advance_to(pkt.ts, sink);
            return;
        }
        // The rebuilt datagram behind the frame's own link and tunnel
        // headers keeps the flow's encapsulation; when outer length fields
        // (an outer IP or UDP header) no longer fit, it is read as raw IP.
        let mut view = PacketView::new(&scratch, pkt.ts, pkt.link_type);
        if let Some(src) = pkt.source {
            view = view.with_source(src);
        }
        let extracted = match self.extractor.extract(&view) {
            Ok(ex) if ex.first_fragment.is_none() => Some((ex, view)),
            _ => {
                let raw = scratch.get(prefix_len..).unwrap_or(&[]);
                let mut rv = PacketView::new(raw, pkt.ts, flowscope_core::LinkType::RAW);
                if let Some(src) = pkt.source {
                    rv = rv.with_source(src);
                }
                match self.extractor.extract(&rv) {
                    Ok(ex) if ex.first_fragment.is_none() => Some((ex, rv)),
                    _ => None,
                }
            }
        };
        match extracted {
            Some((ex, v)) => {
                self.session_counters.datagrams_reassembled += 1;
                self.track_and_parse(&v, &ex, sink);
            }
            None => {
                self.session_counters.reassembled_malformed += 1;
                self.advance_to(pkt.ts, sink);
            }
        }
        self.scratch = scratch;
    }

    fn track_and_parse(
        &mut self,
        pkt: &PacketView<'_>,
        ex: &flowscope_core::Extracted<FiveTuple>,
        sink: &mut impl FnMut(DriverEvent<'_, M>),
    ) {
        let Self {
            tracker,
            sessions,
            session_counters,
            reassembly_stats,
            reasm,
            stream_factories,
            datagram_factories,
            hold,
            mem,
            ..
        } = self;
        let outcome = tracker.track(pkt, ex, &mut |ev| {
            on_flow_event(
                ev,
                sessions,
                session_counters,
                reassembly_stats,
                hold,
                &mut mem.parsers,
                sink,
            )
        });
        // A segment with a bad checksum counts for the flow but its bytes
        // are not the stream's (Zeek drops them before any analyzer): an
        // attacker's corrupt copy must not win over the real one.
        if ex.checksum == ChecksumStatus::Bad {
            return;
        }
        let payload = ex.payload.slice(pkt.data);
        let side = outcome.side;
        let ts = pkt.ts;
        match (ex.l4, ex.tcp) {
            (L4Proto::Tcp, Some(tcp)) => {
                let synack = tcp.flags.syn() && tcp.flags.ack();
                let session = match sessions.find(&ex.key) {
                    Some(slot) => sessions.get_mut(slot).map(|(_, v)| v),
                    None if !payload.is_empty() || synack => {
                        let info = session_info(&outcome, ex);
                        let ctx = parser_context(&info, L4Proto::Tcp);
                        sessions.insert_new(
                            ex.key,
                            Session {
                                info,
                                ctx,
                                reasm: None,
                                parser: ParserSlot::Probing { tries: [0; 2] },
                                held: None,
                                parser_mem: 0,
                            },
                        )
                    }
                    None => None,
                };
                // No session: a bare SYN or ACK (or, impossibly, no slot left).
                let Some(session) = session else { return };
                let Session {
                    info,
                    ctx,
                    reasm: slot,
                    parser,
                    held,
                    parser_mem,
                } = session;
                let r = slot.get_or_insert_with(|| {
                    let mut r = reasm.new_reassembler();
                    // Created on the SYN-ACK: its ACK names the initiator's
                    // ISN, so both streams start at their first byte.
                    if synack && side == FlowSide::Responder {
                        let syn = TcpSegment::new(
                            ts,
                            tcp.ack.wrapping_sub(1),
                            flowscope_core::TcpFlags(flowscope_core::TcpFlags::SYN),
                            &[],
                        );
                        r.segment(FlowSide::Initiator, &syn, &mut |_, _| {});
                    }
                    r
                });
                let mut seg = TcpSegment::new(ts, tcp.seq, tcp.flags, payload)
                    .with_wire_len(ex.payload_wire_len);
                if tcp.flags.ack() {
                    seg = seg.with_ack(tcp.ack);
                }
                let key = ex.key;
                let mut on_stream = |s: FlowSide, ev: StreamEvent<'_>| {
                    on_stream_event(
                        s,
                        ev,
                        ts,
                        info,
                        ctx,
                        parser,
                        held,
                        hold,
                        stream_factories,
                        session_counters,
                        &mut |side, len| {
                            tracker.note_gap(&key, side, len);
                        },
                        sink,
                    )
                };
                r.segment(side, &seg, &mut on_stream);
                if tcp.flags.rst() {
                    r.flush(FlowSide::Initiator, &mut on_stream);
                    r.flush(FlowSide::Responder, &mut on_stream);
                }
                account_parser(parser, parser_mem, &mut mem.parsers);
            }
            (L4Proto::Udp, _) if !payload.is_empty() => {
                let session = match sessions.find(&ex.key) {
                    Some(slot) => sessions.get_mut(slot).map(|(_, v)| v),
                    None => {
                        let info = session_info(&outcome, ex);
                        let ctx = parser_context(&info, L4Proto::Udp);
                        let Some(f) = datagram_factories
                            .iter()
                            .find(|f| f.probe(&ctx, side, payload) == Probe::Match)
                        else {
                            return;
                        };
                        session_counters.datagram_parsers += 1;
                        sessions.insert_new(
                            ex.key,
                            Session {
                                info: SessionInfo {
                                    app_proto: Some(f.name()),
                                    ..info
                                },
                                ctx,
                                reasm: None,
                                parser: ParserSlot::Datagram(f.make(&ctx)),
                                held: None,
                                parser_mem: 0,
                            },
                        )
                    }
                };
                let Some(session) = session else { return };
                if let Session {
                    info,
                    parser: ParserSlot::Datagram(p),
                    ..
                } = session
                {
                    let info: &SessionInfo = info;
                    p.on_datagram(side, payload, ts, &mut |event| {
                        count_event(session_counters, &event);
                        sink(DriverEvent::Session { info, ts, event })
                    });
                }
                account_parser(&session.parser, &mut session.parser_mem, &mut mem.parsers);
            }
            _ => {}
        }
    }
}

/// Memory live flows take in both tables: the tracker's entry and, for
/// flows with session state, the session table's slot and index share.
fn flow_bytes<M>(flows: usize, sessions: usize) -> usize {
    type Slots<M> = FlowSlots<FiveTuple, Session<M>>;
    let session = Slots::<M>::slot_bytes().saturating_add(2 * Slots::<M>::bucket_bytes());
    flows
        .saturating_mul(FlowTracker::<FiveTuple>::entry_bytes())
        .saturating_add(sessions.saturating_mul(session))
}

/// The sum of the budget's components.
fn accounted<M>(
    flows: usize,
    sessions: usize,
    reasm: &TcpReassemblerFactory,
    defrag: Option<&Defragmenter>,
    hold: &HoldBudget,
    parsers: usize,
) -> usize {
    [
        flow_bytes::<M>(flows, sessions),
        reasm.held_total(),
        defrag.map_or(0, Defragmenter::memory_reserved),
        hold.accounted(),
        parsers,
    ]
    .into_iter()
    .fold(0, usize::saturating_add)
}

/// Gives up a flow's parser for memory: it is closed (what it has pending
/// is emitted), reported with [`PARSER_SHED`], and not fed again.
fn shed_parser<M>(
    s: &mut Session<M>,
    ts: Timestamp,
    counters: &mut SessionCounters,
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) {
    let parser = std::mem::replace(&mut s.parser, ParserSlot::Idle);
    let info = &s.info;
    let mut out = |event: SessionEvent<M>| {
        count_event(counters, &event);
        sink(DriverEvent::Session { info, ts, event })
    };
    match parser {
        ParserSlot::Stream(mut p) => p.on_close(ts, &mut out),
        ParserSlot::Datagram(mut p) => p.on_close(ts, &mut out),
        _ => {}
    }
    out(SessionEvent::Anomaly {
        side: None,
        anomaly: PARSER_SHED,
    });
}

fn session_info(
    outcome: &crate::track::TrackOutcome,
    ex: &flowscope_core::Extracted<FiveTuple>,
) -> SessionInfo {
    let initiator = match outcome.side {
        FlowSide::Initiator => ex.orientation,
        FlowSide::Responder => ex.orientation.reverse(),
    };
    SessionInfo {
        id: outcome.id(&ex.key),
        key: ex.key,
        initiator,
        app_proto: None,
    }
}

fn parser_context(info: &SessionInfo, l4: L4Proto) -> ParserContext {
    let (_, iport, _, rport) = info.endpoints(FlowSide::Initiator);
    ParserContext::new(l4, iport, rport)
}

fn count_event<M>(c: &mut SessionCounters, ev: &SessionEvent<M>) {
    match ev {
        SessionEvent::Message(_) => c.messages += 1,
        SessionEvent::Anomaly { .. } => c.anomalies += 1,
        SessionEvent::Gap { .. } => c.gaps += 1,
        _ => {}
    }
}

/// One reassembly event of one flow: gaps go to `note_gap` (the tracker's
/// live flow, or the finished record) and the sink, data to the parser
/// (choosing one first if needed; until one is chosen, both are held).
#[allow(clippy::too_many_arguments)]
fn on_stream_event<M>(
    side: FlowSide,
    ev: StreamEvent<'_>,
    ts: Timestamp,
    info: &mut SessionInfo,
    ctx: &ParserContext,
    parser: &mut ParserSlot<M>,
    held: &mut Option<Box<Held>>,
    budget: &mut HoldBudget,
    factories: &[Box<dyn StreamFactoryDyn<M>>],
    counters: &mut SessionCounters,
    note_gap: &mut dyn FnMut(FlowSide, u64),
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) {
    match ev {
        StreamEvent::Data { bytes, .. } => {
            if let ParserSlot::Probing { tries } = parser {
                let mut tries = *tries;
                *parser = choose_parser(
                    side, bytes, ts, info, ctx, &mut tries, held, budget, factories, counters, sink,
                )
                .unwrap_or(ParserSlot::Probing { tries });
                return;
            }
            if let ParserSlot::Stream(p) = parser {
                let info: &SessionInfo = info;
                p.on_data(side, bytes, ts, &mut |event| {
                    count_event(counters, &event);
                    sink(DriverEvent::Session { info, ts, event })
                });
                if p.is_poisoned() {
                    counters.parsers_poisoned += 1;
                    *parser = ParserSlot::Idle;
                }
            }
        }
        StreamEvent::Gap { len, .. } => {
            note_gap(side, len);
            let event = SessionEvent::Gap { side, len };
            count_event(counters, &event);
            let info: &SessionInfo = info;
            sink(DriverEvent::Session { info, ts, event });
            match parser {
                ParserSlot::Stream(p) => {
                    p.on_gap(side, len, ts, &mut |event| {
                        count_event(counters, &event);
                        sink(DriverEvent::Session { info, ts, event })
                    });
                    if p.is_poisoned() {
                        counters.parsers_poisoned += 1;
                        *parser = ParserSlot::Idle;
                    }
                }
                ParserSlot::Probing { .. } => {
                    // Held for the parser to come; bytes on both sides of a
                    // hole never form one probe run.
                    let h = held.get_or_insert_with(|| budget.take_spare());
                    h.items.push(HeldItem::Gap { side, ts, len });
                    reset_run(h, side);
                }
                _ => {}
            }
        }
        StreamEvent::Anomaly(anomaly) => {
            let event = SessionEvent::Anomaly {
                side: Some(side),
                anomaly,
            };
            count_event(counters, &event);
            sink(DriverEvent::Session { info, ts, event });
        }
        _ => {}
    }
}

/// Length of side `i`'s current probe run (held bytes since its last reset).
fn run_len(held: &Option<Box<Held>>, i: usize) -> usize {
    held.as_deref()
        .and_then(|h| Some(h.bytes.get(i)?.len().saturating_sub(*h.run_start.get(i)?)))
        .unwrap_or(0)
}

/// Probes every factory with `candidate`: the first that matches, and
/// whether any asked for more bytes.
fn probe_factories<M>(
    factories: &[Box<dyn StreamFactoryDyn<M>>],
    ctx: &ParserContext,
    side: FlowSide,
    candidate: &[u8],
) -> (Option<usize>, bool) {
    let mut need_more = false;
    for (k, f) in factories.iter().enumerate() {
        match f.probe(ctx, side, candidate) {
            Probe::Match => return (Some(k), need_more),
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    (None, need_more)
}

/// Probes the factories with `side`'s bytes: the current run (held chunks
/// the probes asked more for, seen up to [`PROBE_BYTES`]) plus `bytes`, or
/// `bytes` alone. A chunk that does not decide is held (bounded) for
/// whichever parser is chosen later. Returns the new parser slot once
/// decided (a parser, fed what was held, or `Idle`).
#[allow(clippy::too_many_arguments)]
fn choose_parser<M>(
    side: FlowSide,
    bytes: &[u8],
    ts: Timestamp,
    info: &mut SessionInfo,
    ctx: &ParserContext,
    tries: &mut [u8; 2],
    held: &mut Option<Box<Held>>,
    budget: &mut HoldBudget,
    factories: &[Box<dyn StreamFactoryDyn<M>>],
    counters: &mut SessionCounters,
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) -> Option<ParserSlot<M>> {
    let i = side_index(side);
    if factories.is_empty() {
        // No parser can ever be chosen (a driver with none, or the final
        // flush of an ended flow): nothing to probe or hold for.
        return Some(ParserSlot::Idle);
    }
    if tries.get(i).copied().unwrap_or(PROBE_CHUNKS) >= PROBE_CHUNKS {
        // This side is done probing; its bytes may still matter to a
        // parser the other side's probes choose.
        hold_data(held, side, bytes, ts, budget, counters);
        return None;
    }
    // `in_hold`: `bytes` is the last held item. `with_run`: probe the run
    // (which then ends with `bytes`) rather than `bytes` alone.
    let mut in_hold = false;
    let mut with_run = false;
    if run_len(held, i) > 0 && hold_data(held, side, bytes, ts, budget, counters) {
        in_hold = true;
        with_run = true;
    }
    loop {
        let (matched, need_more, cand_len) = {
            let run = if with_run {
                held.as_deref().and_then(|h| {
                    let run = h.bytes.get(i)?.get(*h.run_start.get(i)?..)?;
                    run.get(..run.len().min(PROBE_BYTES))
                })
            } else {
                None
            };
            let candidate = run.unwrap_or(bytes);
            let (m, n) = probe_factories(factories, ctx, side, candidate);
            (m, n, candidate.len())
        };
        if let Some(k) = matched {
            return Some(start_parser(
                k, side, bytes, ts, in_hold, info, ctx, held, budget, factories, counters, sink,
            ));
        }
        if need_more && cand_len < PROBE_BYTES {
            if !in_hold {
                // Opens the run (a failed hold leaves the next chunk alone).
                hold_data(held, side, bytes, ts, budget, counters);
            }
            return None;
        }
        // Nothing matched: the chunk stays held for the other side's sake.
        if !in_hold {
            in_hold = hold_data(held, side, bytes, ts, budget, counters);
        }
        if let Some(t) = tries.get_mut(i) {
            *t += 1;
        }
        if tries.iter().all(|t| *t >= PROBE_CHUNKS) {
            budget.release(held.take());
            return Some(ParserSlot::Idle);
        }
        if with_run {
            // The held prefix may be a stray byte before the protocol: the
            // new chunk gets a probe of its own, as the start of a new run.
            if let Some(h) = held.as_deref_mut() {
                let end = h.bytes.get(i).map_or(0, Vec::len);
                if let Some(r) = h.run_start.get_mut(i) {
                    *r = end.saturating_sub(bytes.len());
                }
                let last = h.items.len().saturating_sub(1);
                if let Some(r) = h.reset_at.get_mut(i) {
                    *r = Some(last);
                }
            }
            with_run = false;
            continue;
        }
        if let Some(h) = held.as_deref_mut() {
            reset_run(h, side);
        }
        return None;
    }
}

/// Makes factory `k`'s parser and feeds it what was held — from the
/// matching side's current run on, both sides, in arrival order, each
/// chunk with its own timestamp — then `bytes` unless it was held; frees
/// the hold.
#[allow(clippy::too_many_arguments)]
fn start_parser<M>(
    k: usize,
    side: FlowSide,
    bytes: &[u8],
    ts: Timestamp,
    in_hold: bool,
    info: &mut SessionInfo,
    ctx: &ParserContext,
    held: &mut Option<Box<Held>>,
    budget: &mut HoldBudget,
    factories: &[Box<dyn StreamFactoryDyn<M>>],
    counters: &mut SessionCounters,
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) -> ParserSlot<M> {
    let Some(f) = factories.get(k) else {
        return ParserSlot::Idle;
    };
    counters.stream_parsers += 1;
    info.app_proto = Some(f.name());
    let mut p = f.make(ctx);
    let info: &SessionInfo = info;
    let h = held.take();
    if let Some(h) = h.as_deref() {
        let from = h
            .reset_at
            .get(side_index(side))
            .copied()
            .flatten()
            .unwrap_or(0);
        let last = h.items.len().saturating_sub(1);
        for (n, item) in h.items.iter().enumerate().skip(from) {
            if p.is_poisoned() {
                break;
            }
            match *item {
                HeldItem::Data {
                    side: s,
                    ts: t,
                    start,
                    len,
                } => {
                    let Some(b) = h
                        .bytes
                        .get(side_index(s))
                        .and_then(|v| v.get(start..start.saturating_add(len)))
                    else {
                        continue;
                    };
                    if !(in_hold && n == last) {
                        counters.held_bytes_replayed += len as u64;
                    }
                    p.on_data(s, b, t, &mut |event| {
                        count_event(counters, &event);
                        sink(DriverEvent::Session { info, ts: t, event })
                    });
                }
                HeldItem::Gap {
                    side: s,
                    ts: t,
                    len,
                } => p.on_gap(s, len, t, &mut |event| {
                    count_event(counters, &event);
                    sink(DriverEvent::Session { info, ts: t, event })
                }),
            }
        }
    }
    budget.release(h);
    if !in_hold && !p.is_poisoned() {
        p.on_data(side, bytes, ts, &mut |event| {
            count_event(counters, &event);
            sink(DriverEvent::Session { info, ts, event })
        });
    }
    if p.is_poisoned() {
        counters.parsers_poisoned += 1;
        return ParserSlot::Idle;
    }
    ParserSlot::Stream(p)
}

/// A flow event from the tracker: an ended flow's session is flushed and
/// closed before the flow's own record goes out.
fn on_flow_event<M>(
    ev: &FlowEvent<FiveTuple>,
    sessions: &mut FlowSlots<FiveTuple, Session<M>>,
    counters: &mut SessionCounters,
    reassembly_stats: &mut ReassemblyStats,
    budget: &mut HoldBudget,
    parser_bytes: &mut usize,
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) {
    let FlowEvent::Ended(rec) = ev else {
        sink(DriverEvent::Flow {
            event: ev,
            app_proto: None,
        });
        return;
    };
    match sessions.remove_key(&rec.key) {
        Some(s) => {
            // Holes found by the final flush still belong in the record.
            let mut rec = *rec;
            *parser_bytes = parser_bytes.saturating_sub(s.parser_mem);
            let app_proto = close_session(s, &mut rec, counters, reassembly_stats, budget, sink);
            sink(DriverEvent::Flow {
                event: &FlowEvent::Ended(rec),
                app_proto,
            });
        }
        None => sink(DriverEvent::Flow {
            event: ev,
            app_proto: None,
        }),
    }
}

fn close_session<M>(
    s: Session<M>,
    rec: &mut FlowRecord<FiveTuple>,
    counters: &mut SessionCounters,
    reassembly_stats: &mut ReassemblyStats,
    budget: &mut HoldBudget,
    sink: &mut impl FnMut(DriverEvent<'_, M>),
) -> Option<&'static str> {
    let Session {
        mut info,
        ctx,
        mut parser,
        reasm,
        mut held,
        parser_mem: _,
    } = s;
    let ts = rec.stats.last;
    if let Some(mut r) = reasm {
        // Held data past holes still reaches the parser, after its gap; the
        // record is final, so gaps are added to it. No parser is chosen
        // this late (no factories).
        let mut on_stream = |side: FlowSide, ev: StreamEvent<'_>| {
            on_stream_event(
                side,
                ev,
                ts,
                &mut info,
                &ctx,
                &mut parser,
                &mut held,
                budget,
                &[],
                counters,
                &mut |side, len| crate::track::record_gap(rec, side, len),
                sink,
            )
        };
        r.flush(FlowSide::Initiator, &mut on_stream);
        r.flush(FlowSide::Responder, &mut on_stream);
        reassembly_stats.merge(r.stats());
    }
    // No parser is chosen this late: what was held is let go.
    budget.release(held);
    let mut out = |event: SessionEvent<M>| {
        count_event(counters, &event);
        sink(DriverEvent::Session {
            info: &info,
            ts,
            event,
        })
    };
    match &mut parser {
        ParserSlot::Stream(p) => p.on_close(ts, &mut out),
        ParserSlot::Datagram(p) => p.on_close(ts, &mut out),
        _ => {}
    }
    if info.app_proto.is_some() {
        out(SessionEvent::Closed);
    } else {
        counters.unidentified_streams += 1;
    }
    info.app_proto
}

impl SessionDriver<crate::proto::AppMessage> {
    /// A driver with every built-in parser this build has: DNS (UDP and
    /// TCP, on ports 53 and 5353), TLS and HTTP (any port, by content).
    pub fn with_default_parsers(config: SessionConfig) -> Self {
        let mut d = SessionDriver::new(config);
        #[cfg(feature = "dns")]
        {
            d.add_datagram_parser(crate::proto::dns::DnsDatagramFactory::default());
            d.add_stream_parser(crate::proto::dns::DnsTcpFactory::default());
        }
        #[cfg(feature = "tls")]
        d.add_stream_parser(crate::proto::tls::TlsParserFactory::default());
        #[cfg(feature = "http")]
        d.add_stream_parser(crate::proto::http::HttpParserFactory::default());
        d
    }
}
