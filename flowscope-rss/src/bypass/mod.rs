//! Bypass policy for the workers: when a flow is no longer worth
//! inspecting, hand it to the XDP prefilter, which then drops (and counts)
//! its packets in the kernel; when the flow ends, add what the kernel
//! counted to its record, so its packet and byte totals stay complete.
//!
//! # When a flow is bypassed ([`BypassPolicy`])
//!
//! - **TLS handshake done** ([`BypassPolicy::after_tls_handshake`]): for
//!   TLS 1.3 at the (final, not HelloRetryRequest) ServerHello, since
//!   everything after it is encrypted; for TLS 1.2 and older at the
//!   server's Certificate message, the last thing flowscope's TLS parser
//!   reads. A TLS 1.2 handshake without a certificate in the clear
//!   (session resumption, PSK) is not bypassed.
//! - **Depth** ([`BypassPolicy::after_bytes`]): once either direction has
//!   sent more than `depth` transport payload bytes (retransmissions
//!   included, as on the wire).
//! - **Caller's verdict** ([`BypassPolicy::with_verdict`]): a callback
//!   that sees every session event (messages, gaps, anomalies) with the
//!   flow's [`SessionInfo`] and returns `true` to bypass it.
//!
//! The flow is inserted (both directions) into the prefilter's maps right
//! after the packet that triggered the decision, keyed from that packet
//! ([`BypassFlow::from_extracted`]); flows the XDP program would key
//! differently (tunnels, MPLS, PPPoE, non-Ethernet links) are not bypassed
//! and counted in [`BypassStats::not_keyable`]. Packets already queued in
//! the ring still reach the worker and are counted by the tracker as
//! usual; the kernel counts only what it dropped, so nothing is counted
//! twice.
//!
//! # How a bypassed flow ends
//!
//! The tracker no longer sees the flow's packets, so it ends the flow at
//! its idle timeout (or at a FIN/RST that slipped through before the
//! insert) while traffic may still be flowing in the kernel. The worker
//! keeps its own table of bypassed flows and intercepts that end: it
//! applies Suricata's rule ([`Prefilter::expire_idle`](flowscope_prefilter::Prefilter::expire_idle)): if the kernel
//! counters moved since the last look (the first look compares with the
//! zeroes of the insert), the flow is alive: its final record is **held**
//! and looked at again one idle timeout later (on the worker's clock, the
//! packets' and idle ticks' timestamps), until the counters stop moving.
//! Then the entries are deleted and the record is emitted with the kernel's
//! counts added. At the end of capture ([`Bypasser::finish`]) every
//! bypassed flow, held or still tracked, is removed from the maps and
//! emitted at once.
//!
//! # What the record then holds
//!
//! Per direction, the kernel's packets are added to `packets` and its
//! bytes to `frame_bytes`: both exact (XDP counts the frame as the packet
//! socket would report it, Ethernet header and VLAN tags included).
//! `ip_bytes` gets the kernel's bytes minus `packets × link header`, the
//! link header being that of the packet that triggered the bypass (14
//! bytes, plus 4 per VLAN tag): exact when every frame of the flow has the
//! same link header and no Ethernet padding (frames shorter than 60 bytes
//! are padded on a real wire, so a bypassed bare TCP ACK adds up to 6 bytes
//! too many). Payload and stream bytes, TCP flags, history and
//! `conn_state` cover only what userspace saw, and `last` is the last
//! packet userspace saw. The kernel's counts are also given separately
//! ([`BypassedFlow::bypassed`]).
//!
//! Known limits, as in Suricata: a new connection on the same 5-tuple while
//! the entries exist is dropped and counted into the old flow; IP fragments
//! always pass (the XDP program never drops them) and reach the tracker.

mod maps;
#[cfg(test)]
mod tests;

pub use maps::{BypassMaps, SharedPrefilter};

use std::collections::HashMap;
use std::time::Duration;

use flowscope::driver::{DriverEvent, SessionDriver, SessionInfo};
use flowscope::extract::ExtractConfig;
use flowscope::extract::FiveTupleExtractor;
use flowscope::proto::tls::TlsMessage;
use flowscope::proto::AppMessage;
use flowscope::track::TrackerConfig;
use flowscope_core::{
    FiveTuple, FlowEvent, FlowExtractor, FlowId, FlowRecord, FlowSide, L4Proto, LinkType,
    Orientation, PacketView, SessionEvent, Timestamp,
};
use flowscope_prefilter::{BidiCounters, BypassFlow, Expiry, FlowCounters};

/// A caller's bypass verdict: sees every session event of a flow and
/// returns `true` to bypass the flow from the packet that caused it on.
pub type Verdict<M> = Box<dyn FnMut(&SessionInfo, &SessionEvent<M>) -> bool + Send>;

/// When a worker bypasses a flow (any rule that fires is enough).
pub struct BypassPolicy<M> {
    handshake_done: Option<fn(&M) -> bool>,
    depth: Option<u64>,
    verdict: Option<Verdict<M>>,
}

impl<M> Default for BypassPolicy<M> {
    fn default() -> Self {
        BypassPolicy {
            handshake_done: None,
            depth: None,
            verdict: None,
        }
    }
}

impl<M> std::fmt::Debug for BypassPolicy<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BypassPolicy")
            .field("handshake_done", &self.handshake_done.is_some())
            .field("depth", &self.depth)
            .field("verdict", &self.verdict.is_some())
            .finish()
    }
}

impl<M> BypassPolicy<M> {
    /// A policy that bypasses nothing (add rules with the methods below).
    pub fn new() -> Self {
        Self::default()
    }

    /// Bypasses a flow after a message for which `done` returns true (the
    /// generic form of [`BypassPolicy::after_tls_handshake`], for a
    /// caller's own message type).
    pub fn after_message(mut self, done: fn(&M) -> bool) -> Self {
        self.handshake_done = Some(done);
        self
    }

    /// Bypasses a flow once either direction sent more than `depth`
    /// transport payload bytes.
    pub fn after_bytes(mut self, depth: u64) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Bypasses a flow when `verdict` says so.
    pub fn with_verdict(
        mut self,
        verdict: impl FnMut(&SessionInfo, &SessionEvent<M>) -> bool + Send + 'static,
    ) -> Self {
        self.verdict = Some(Box::new(verdict));
        self
    }

    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.handshake_done.is_none() && self.depth.is_none() && self.verdict.is_none()
    }
}

impl BypassPolicy<AppMessage> {
    /// Bypasses TLS flows once the handshake is done
    /// ([`tls_handshake_done`]).
    pub fn after_tls_handshake(self) -> Self {
        self.after_message(tls_handshake_done)
    }
}

/// The point after which a TLS flow holds nothing more flowscope reads: a
/// final TLS 1.3 ServerHello (the rest is encrypted), or the server's
/// certificate chain of TLS 1.2 and older.
pub fn tls_handshake_done(m: &AppMessage) -> bool {
    match m {
        AppMessage::Tls(TlsMessage::ServerHello(sh)) => {
            !sh.is_hello_retry_request && sh.negotiated_version() >= 0x0304
        }
        AppMessage::Tls(TlsMessage::Certificates(_)) => true,
        _ => false,
    }
}

/// What the kernel dropped of one flow, per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BypassedCounts {
    /// Frames the initiator sent (frame bytes, link header included).
    pub initiator: FlowCounters,
    /// Frames the responder sent.
    pub responder: FlowCounters,
}

/// A bypassed flow's final record, with the kernel's counts added to its
/// statistics (see the module docs for which fields).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct BypassedFlow {
    /// The record, kernel counts included.
    pub record: FlowRecord<FiveTuple>,
    /// The parser that ran on it.
    pub app_proto: Option<&'static str>,
    /// What the kernel dropped (already in `record`).
    pub bypassed: BypassedCounts,
}

/// What a [`Bypasser`] passes on: the driver's events, except the ends of
/// bypassed flows, which come as [`BypassedFlow`]s.
#[derive(Debug)]
#[non_exhaustive]
pub enum BypassOutput<'a, M> {
    /// A driver event, unchanged.
    Event(DriverEvent<'a, M>),
    /// A bypassed flow ended.
    Ended(&'a BypassedFlow),
}

/// A worker's bypass counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BypassStats {
    /// Flows inserted into the prefilter.
    pub flows: u64,
    /// Flows the policy chose that could not be keyed the XDP program's
    /// way (tunnel, MPLS, PPPoE, not Ethernet, not TCP/UDP).
    pub not_keyable: u64,
    /// Flows whose insert failed (map full, kernel error), or refused
    /// because the worker's bypass table was full: they stay in userspace.
    pub insert_failed: u64,
    /// Ends delayed because the kernel counters were still moving.
    pub held: u64,
    /// Bypassed flows whose entries were gone at the end (evicted from an
    /// LRU map): their kernel counts since the last look are lost.
    pub lost: u64,
    /// Map operations that failed at a flow's end.
    pub map_errors: u64,
    /// Packets the kernel dropped for the flows ended so far.
    pub packets: u64,
    /// Their frame bytes.
    pub bytes: u64,
}

impl BypassStats {
    /// Adds `other` to these counters.
    pub fn merge(&mut self, o: &BypassStats) {
        self.flows += o.flows;
        self.not_keyable += o.not_keyable;
        self.insert_failed += o.insert_failed;
        self.held += o.held;
        self.lost += o.lost;
        self.map_errors += o.map_errors;
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// Payload bytes per direction of a tracked flow (depth rule only).
struct Depth {
    id: FlowId,
    /// Indexed by orientation: `LoToHi`, `HiToLo`.
    bytes: [u64; 2],
}

/// A record held until the kernel counters stop moving.
struct Held {
    record: FlowRecord<FiveTuple>,
    app_proto: Option<&'static str>,
    deadline: Timestamp,
}

/// One bypassed flow.
struct Entry {
    id: FlowId,
    flow: BypassFlow,
    /// The orientation of `flow`'s direction relative to the key.
    forward: Orientation,
    /// Link header bytes per frame (14 + 4 per VLAN tag).
    link_len: u64,
    idle: Duration,
    last_seen: BidiCounters,
    held: Option<Held>,
}

/// A worker's bypass state: wraps its driver's `process`, `advance_to` and
/// `finish` (see the module docs).
pub struct Bypasser<M> {
    policy: BypassPolicy<M>,
    maps: Box<dyn BypassMaps>,
    extractor: FiveTupleExtractor,
    tcp_idle: Duration,
    udp_idle: Duration,
    max_flows: usize,
    clock: Timestamp,
    /// The flow the current packet's events asked to bypass.
    pending: Option<(FiveTuple, FlowId)>,
    depth: HashMap<FiveTuple, Depth>,
    flows: HashMap<FiveTuple, Entry>,
    next_check: Option<Timestamp>,
    finishing: bool,
    stats: BypassStats,
}

impl<M: 'static> std::fmt::Debug for Bypasser<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bypasser")
            .field("policy", &self.policy)
            .field("flows", &self.flows.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<M: 'static> Bypasser<M> {
    /// A worker's bypass state. `extract` must be its driver's extraction
    /// options (the trigger packet is keyed again with them) and `track`
    /// its tracker's (the idle timeouts pace the expiry checks, and
    /// `max_flows` bounds the bypass table).
    pub fn new(
        policy: BypassPolicy<M>,
        maps: Box<dyn BypassMaps>,
        extract: ExtractConfig,
        track: &TrackerConfig,
    ) -> Self {
        Bypasser {
            policy,
            maps,
            extractor: FiveTupleExtractor::new(extract),
            tcp_idle: track.tcp_timeout,
            udp_idle: track.udp_timeout,
            max_flows: track.max_flows.max(1),
            clock: Timestamp::ZERO,
            pending: None,
            depth: HashMap::new(),
            flows: HashMap::new(),
            next_check: None,
            finishing: false,
            stats: BypassStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> BypassStats {
        self.stats
    }

    /// Bypassed flows not ended yet (in the tracker or held).
    pub fn active(&self) -> usize {
        self.flows.len()
    }

    /// Runs one packet through `driver`, applying the policy.
    pub fn process(
        &mut self,
        driver: &mut SessionDriver<M>,
        pkt: &PacketView<'_>,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        self.clock = self.clock.max(pkt.ts);
        driver.process(pkt, &mut |ev| self.on_event(ev, sink));
        self.count_depth(pkt);
        if let Some((key, id)) = self.pending.take() {
            self.start(pkt, key, id);
        }
        self.check_held(sink);
    }

    /// Moves time to `now` (an idle tick): the driver's idle flows expire,
    /// and held bypassed flows due for a look are looked at.
    pub fn advance_to(
        &mut self,
        driver: &mut SessionDriver<M>,
        now: Timestamp,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        self.clock = self.clock.max(now);
        driver.advance_to(now, &mut |ev| self.on_event(ev, sink));
        self.check_held(sink);
    }

    /// Ends everything at the end of capture: the driver's flows, then
    /// every held flow; each bypassed flow is removed from the maps and
    /// emitted with its last counters.
    pub fn finish(
        &mut self,
        driver: &mut SessionDriver<M>,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        self.finishing = true;
        driver.finish(&mut |ev| self.on_event(ev, sink));
        let held: Vec<FiveTuple> = self.flows.keys().copied().collect();
        for key in held {
            if let Some(mut e) = self.flows.remove(&key) {
                match e.held.take() {
                    Some(h) => self.remove_and_emit(e, h.record, h.app_proto, sink),
                    // Still tracked after the driver finished: cannot
                    // happen (finish ends every flow); drop the entries.
                    None => {
                        let _ = self.maps.remove(&e.flow);
                    }
                }
            }
        }
        self.next_check = None;
    }

    fn on_event(&mut self, ev: DriverEvent<'_, M>, sink: &mut dyn FnMut(BypassOutput<'_, M>)) {
        match &ev {
            DriverEvent::Session { info, event, .. }
                if !self.flows.contains_key(&info.key) && self.pending.is_none() =>
            {
                let done = match (event, self.policy.handshake_done) {
                    (SessionEvent::Message(m), Some(done)) => done(m),
                    _ => false,
                };
                // The verdict is asked only when the built-in rules did not fire.
                if done || self.policy.verdict.as_mut().is_some_and(|v| v(info, event)) {
                    self.pending = Some((info.key, info.id));
                }
            }
            DriverEvent::Flow {
                event: FlowEvent::Started { key, id, .. },
                ..
            } if self.policy.depth.is_some() && self.depth.len() < self.max_flows => {
                let depth = Depth {
                    id: *id,
                    bytes: [0; 2],
                };
                self.depth.insert(*key, depth);
            }
            DriverEvent::Flow {
                event: FlowEvent::Ended(rec),
                app_proto,
            } => {
                self.depth.remove(&rec.key);
                if self
                    .pending
                    .is_some_and(|(k, id)| k == rec.key && id == rec.id)
                {
                    self.pending = None;
                }
                let ours = self
                    .flows
                    .get(&rec.key)
                    .is_some_and(|e| e.id == rec.id && e.held.is_none());
                if ours {
                    if let Some(e) = self.flows.remove(&rec.key) {
                        self.flow_ended(e, *rec, *app_proto, sink);
                    }
                    return;
                }
            }
            _ => {}
        }
        sink(BypassOutput::Event(ev));
    }

    /// The depth rule, counted after the driver saw the packet (so a flow
    /// it ended and restarted with this packet counts from zero).
    fn count_depth(&mut self, pkt: &PacketView<'_>) {
        let Some(limit) = self.policy.depth else {
            return;
        };
        let Ok(ex) = self.extractor.extract(pkt) else {
            return;
        };
        let Some(d) = self.depth.get_mut(&ex.key) else {
            return;
        };
        let i = match ex.orientation {
            Orientation::LoToHi => 0,
            Orientation::HiToLo => 1,
        };
        let Some(b) = d.bytes.get_mut(i) else {
            return;
        };
        *b = b.saturating_add(u64::from(ex.payload_wire_len));
        if *b > limit && self.pending.is_none() {
            self.pending = Some((ex.key, d.id));
        }
    }

    /// Inserts the flow `key` keyed from `pkt`, its trigger packet.
    fn start(&mut self, pkt: &PacketView<'_>, key: FiveTuple, id: FlowId) {
        let ex = match self.extractor.extract(pkt) {
            Ok(ex) if ex.key == key && pkt.link_type == LinkType::ETHERNET => ex,
            // The decision came from another flow's event (a parser flushed
            // at its end), or the link has no fixed Ethernet header.
            _ => {
                self.stats.not_keyable += 1;
                return;
            }
        };
        let Ok(flow) = BypassFlow::from_extracted(&ex) else {
            self.stats.not_keyable += 1;
            return;
        };
        if self.flows.len() >= self.max_flows {
            self.stats.insert_failed += 1;
            return;
        }
        if self.maps.insert(&flow).is_err() {
            self.stats.insert_failed += 1;
            return;
        }
        self.depth.remove(&key);
        // from_extracted accepted only VLAN layers: each adds a 4-byte tag.
        let tags = ex.encap.iter().count() as u64;
        self.stats.flows += 1;
        self.flows.insert(
            key,
            Entry {
                id,
                flow,
                forward: ex.orientation,
                link_len: 14 + 4 * tags,
                idle: match ex.l4 {
                    L4Proto::Tcp => self.tcp_idle,
                    _ => self.udp_idle,
                },
                last_seen: BidiCounters::default(),
                held: None,
            },
        );
    }

    /// The tracker ended bypassed flow `e`: Suricata's look at its
    /// counters decides between emitting it now and holding it.
    fn flow_ended(
        &mut self,
        mut e: Entry,
        record: FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        if self.finishing {
            self.remove_and_emit(e, record, app_proto, sink);
            return;
        }
        match self.maps.expire_idle(&e.flow, &e.last_seen) {
            Ok(Expiry::Active(now)) => {
                e.last_seen = now;
                let deadline = self.clock.saturating_add(e.idle);
                e.held = Some(Held {
                    record,
                    app_proto,
                    deadline,
                });
                self.stats.held += 1;
                self.next_check = Some(self.next_check.map_or(deadline, |d| d.min(deadline)));
                self.flows.insert(record.key, e);
            }
            Ok(Expiry::Expired(last)) => self.emit(&e, record, app_proto, last, sink),
            Ok(Expiry::Missing) => {
                self.stats.lost += 1;
                let last = e.last_seen;
                self.emit(&e, record, app_proto, last, sink);
            }
            Err(_) => self.remove_and_emit(e, record, app_proto, sink),
        }
    }

    /// Looks at held flows whose deadline has passed.
    fn check_held(&mut self, sink: &mut dyn FnMut(BypassOutput<'_, M>)) {
        if self.next_check.is_none_or(|t| self.clock < t) {
            return;
        }
        let clock = self.clock;
        let due: Vec<FiveTuple> = self
            .flows
            .iter()
            .filter(|(_, e)| e.held.as_ref().is_some_and(|h| h.deadline <= clock))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(mut e) = self.flows.remove(&key) else {
                continue;
            };
            let Some(h) = e.held.take() else { continue };
            match self.maps.expire_idle(&e.flow, &e.last_seen) {
                Ok(Expiry::Active(now)) => {
                    e.last_seen = now;
                    e.held = Some(Held {
                        deadline: clock.saturating_add(e.idle),
                        ..h
                    });
                    self.flows.insert(key, e);
                }
                Ok(Expiry::Expired(last)) => self.emit(&e, h.record, h.app_proto, last, sink),
                Ok(Expiry::Missing) => {
                    self.stats.lost += 1;
                    let last = e.last_seen;
                    self.emit(&e, h.record, h.app_proto, last, sink);
                }
                Err(_) => self.remove_and_emit(e, h.record, h.app_proto, sink),
            }
        }
        self.next_check = self
            .flows
            .values()
            .filter_map(|e| e.held.as_ref().map(|h| h.deadline))
            .min();
    }

    /// Deletes `e`'s entries and emits its record with their last counters.
    fn remove_and_emit(
        &mut self,
        e: Entry,
        record: FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        let last = match self.maps.remove(&e.flow) {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.stats.lost += 1;
                e.last_seen
            }
            Err(_) => {
                self.stats.map_errors += 1;
                e.last_seen
            }
        };
        self.emit(&e, record, app_proto, last, sink);
    }

    fn emit(
        &mut self,
        e: &Entry,
        mut record: FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
        last: BidiCounters,
        sink: &mut dyn FnMut(BypassOutput<'_, M>),
    ) {
        let bypassed = add_bypassed(&mut record, e.forward, e.link_len, &last);
        let t = last.total();
        self.stats.packets = self.stats.packets.saturating_add(t.packets);
        self.stats.bytes = self.stats.bytes.saturating_add(t.bytes);
        sink(BypassOutput::Ended(&BypassedFlow {
            record,
            app_proto,
            bypassed,
        }));
    }
}

/// Adds the kernel's counters to `record` (see the module docs): `forward`
/// is the orientation of the counters' forward direction, `link_len` the
/// link header bytes per frame.
pub fn add_bypassed(
    record: &mut FlowRecord<FiveTuple>,
    forward: Orientation,
    link_len: u64,
    c: &BidiCounters,
) -> BypassedCounts {
    let fwd_side = if forward == record.initiator {
        FlowSide::Initiator
    } else {
        FlowSide::Responder
    };
    let mut out = BypassedCounts::default();
    for (side, n) in [(fwd_side, c.forward), (fwd_side.other(), c.reverse)] {
        let d = record.stats.side_mut(side);
        d.packets = d.packets.saturating_add(n.packets);
        d.frame_bytes = d.frame_bytes.saturating_add(n.bytes);
        let ip = n.bytes.saturating_sub(n.packets.saturating_mul(link_len));
        d.ip_bytes = d.ip_bytes.saturating_add(ip);
        match side {
            FlowSide::Initiator => out.initiator = n,
            FlowSide::Responder => out.responder = n,
        }
    }
    out
}
