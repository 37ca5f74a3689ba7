//! One flow's state as the table holds it, the rarely used parts kept out of
//! line, and the final [`FlowRecord`].
//!
//! The in-table state ([`Flow`]) is kept at 176 bytes so that a 5-tuple
//! flow, with its slot's generation, index buckets and timer entry, stays
//! within 256 bytes:
//! counters are packed (48-bit byte counters, 32-bit packet counters, all
//! saturating), history letters take 5 bits each, and what only some flows
//! need (tunnel endpoints, capture source, content gaps) lives in an
//! [`ExtraSlab`] slot referenced by a 32-bit index.

use core::hash::{Hash, Hasher};
use core::time::Duration;
use std::net::IpAddr;

use flowscope_core::{
    ChecksumStatus, ConnState, DirStats, Encap, EncapLayer, EncapSummary, EndReason, Extracted,
    FlowId, FlowRecord, FlowSide, FlowState, L4Proto, Orientation, PacketView, TcpEndpointState,
    TcpFlags, Timestamp,
};

use super::history::{PackedHistory, Seen};
use super::tcp::{self, Endpoint, Segment};
use super::timeout::Timeouts;
use super::{conn_state, TrackedKey};

/// Index value meaning "no extra slot".
pub(crate) const NO_EXTRA: u32 = u32::MAX;

/// Byte counters saturate here (256 TiB per direction).
const MAX48: u64 = (1 << 48) - 1;

/// Byte counter kinds, per side: frame, IP, payload.
const FRAME: usize = 0;
const IP: usize = 1;
const PAYLOAD: usize = 2;

const INITIATOR_HI: u8 = 0x01;
const VLAN_SHIFT: u8 = 1;
const VLAN_MASK: u8 = 0x03 << VLAN_SHIFT;

/// The per-flow data only some flows need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extra {
    /// Innermost tunnel layer of the first packet.
    pub(crate) tunnel: Option<EncapLayer>,
    /// Outermost tunnel IP pair of the first packet.
    pub(crate) outer: Option<(IpAddr, IpAddr)>,
    /// Capture source of the first packet.
    pub(crate) source: Option<u32>,
    /// Bytes missed in content gaps, by side (0 = initiator).
    pub(crate) missed: [u64; 2],
    /// Content gaps, by side.
    pub(crate) gaps: [u32; 2],
}

impl Extra {
    fn is_empty(&self) -> bool {
        *self == Extra::default()
    }
}

/// Slots for [`Extra`] data, reused through a free list: after warm-up no
/// allocation happens, and at most one slot exists per flow in the table.
#[derive(Debug, Default)]
pub(crate) struct ExtraSlab {
    slots: Vec<Extra>,
    free: Vec<u32>,
}

impl ExtraSlab {
    /// Stores `e`, returning its index ([`NO_EXTRA`] if the index space is
    /// exhausted, which needs more than 4 billion live flows).
    pub(crate) fn alloc(&mut self, e: Extra) -> u32 {
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(i as usize) {
                *slot = e;
                return i;
            }
        }
        match u32::try_from(self.slots.len()) {
            Ok(i) if i != NO_EXTRA => {
                self.slots.push(e);
                i
            }
            _ => NO_EXTRA,
        }
    }
    #[cfg(test)]
    pub(crate) fn get(&self, i: u32) -> Option<&Extra> {
        self.slots.get(i as usize)
    }
    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut Extra> {
        self.slots.get_mut(i as usize)
    }
    /// Frees slot `i`, returning what it held.
    pub(crate) fn release(&mut self, i: u32) -> Option<Extra> {
        let e = core::mem::take(self.slots.get_mut(i as usize)?);
        self.free.push(i);
        Some(e)
    }
    /// Slots in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// A flow as the table holds it. Sides are indexed 0 = initiator,
/// 1 = responder.
#[derive(Clone, Debug)]
pub(crate) struct Flow {
    /// First packet time, ns.
    first: u64,
    /// Latest packet time, ns (never before `first`).
    last: u64,
    /// Frame, IP and payload bytes by side: low 32 and high 16 bits.
    bytes_lo: [u32; 6],
    bytes_hi: [u16; 6],
    /// Packets by side, saturating.
    packets: [u32; 2],
    /// Longest gap between packets, in µs, saturating (~71 minutes, more
    /// than any default timeout allows).
    max_idle_us: u32,
    /// Per-side endpoint state (TCP machine, history bits, counters).
    pub(crate) ends: [Endpoint; 2],
    pub(crate) history: PackedHistory,
    /// VLAN ids of the first packet, outermost first.
    vlans: [u16; 2],
    /// Index into the [`ExtraSlab`], or [`NO_EXTRA`].
    pub(crate) extra: u32,
    /// IP protocol number.
    l4: u8,
    /// Initiator orientation and VLAN count.
    bits: u8,
    /// Timeout classes this flow has an entry queued in, one bit per class
    /// (see `timers`): at most one entry per class and flow.
    pub(crate) armed: u8,
    /// The timeout class of the current state, kept up to date by
    /// [`Flow::refresh_class`] (read twice per packet, changed rarely).
    class: u8,
}

/// The encapsulation facts of a flow's first packet.
pub(crate) struct FirstEncap {
    pub(crate) vlans: [u16; 2],
    pub(crate) vlan_count: u8,
    pub(crate) tunnel: Option<EncapLayer>,
    pub(crate) outer: Option<(IpAddr, IpAddr)>,
}

impl FirstEncap {
    /// VLAN ids, innermost tunnel layer and outermost tunnel IP pair.
    pub(crate) fn of(encap: &Encap) -> Self {
        let mut vlans = [0u16; 2];
        let mut vlan_count = 0u8;
        for (slot, id) in vlans.iter_mut().zip(encap.vlan_ids()) {
            *slot = id;
            vlan_count += 1;
        }
        let tunnel = encap
            .iter()
            .filter(|l| {
                matches!(
                    l,
                    EncapLayer::Gre { .. }
                        | EncapLayer::Erspan { .. }
                        | EncapLayer::Vxlan { .. }
                        | EncapLayer::Geneve { .. }
                        | EncapLayer::GtpU { .. }
                )
            })
            .last()
            .copied();
        let outer = encap.iter().find_map(|l| match l {
            EncapLayer::Ip { src, dst } => Some((*src, *dst)),
            _ => None,
        });
        FirstEncap {
            vlans,
            vlan_count,
            tunnel,
            outer,
        }
    }
}

impl Flow {
    /// A flow whose first packet arrives at `ts`; `extra` is its slab index.
    pub(crate) fn new(
        ts: Timestamp,
        l4: L4Proto,
        initiator: Orientation,
        vlans: [u16; 2],
        vlan_count: u8,
        extra: u32,
    ) -> Self {
        let mut bits = (vlan_count.min(2) << VLAN_SHIFT) & VLAN_MASK;
        if initiator == Orientation::HiToLo {
            bits |= INITIATOR_HI;
        }
        Flow {
            first: ts.as_nanos(),
            last: ts.as_nanos(),
            bytes_lo: [0; 6],
            bytes_hi: [0; 6],
            packets: [0; 2],
            max_idle_us: 0,
            ends: [Endpoint::default(); 2],
            history: PackedHistory::default(),
            vlans,
            extra,
            l4: l4.ip_proto(),
            bits,
            armed: 0,
            class: Timeouts::class_of(l4, (TcpEndpointState::Inactive, TcpEndpointState::Inactive))
                as u8,
        }
    }

    pub(crate) fn first(&self) -> Timestamp {
        Timestamp::from_nanos(self.first)
    }
    pub(crate) fn last(&self) -> Timestamp {
        Timestamp::from_nanos(self.last)
    }
    pub(crate) fn l4(&self) -> L4Proto {
        L4Proto::from_ip_proto(self.l4)
    }
    pub(crate) fn initiator(&self) -> Orientation {
        if self.bits & INITIATOR_HI != 0 {
            Orientation::HiToLo
        } else {
            Orientation::LoToHi
        }
    }
    /// The side (0 = initiator) of a packet sent in orientation `o`.
    pub(crate) fn side_of(&self, o: Orientation) -> usize {
        usize::from(o != self.initiator())
    }
    pub(crate) fn tcp_states(&self) -> (TcpEndpointState, TcpEndpointState) {
        let [i, r] = &self.ends;
        (i.state(), r.state())
    }
    fn bytes(&self, side: usize, kind: usize) -> u64 {
        let i = side * 3 + kind;
        let lo = self.bytes_lo.get(i).copied().unwrap_or(0);
        let hi = self.bytes_hi.get(i).copied().unwrap_or(0);
        (u64::from(hi) << 32) | u64::from(lo)
    }
    fn add_bytes(&mut self, side: usize, kind: usize, n: u32) {
        let v = self
            .bytes(side, kind)
            .saturating_add(u64::from(n))
            .min(MAX48);
        let i = side * 3 + kind;
        if let (Some(lo), Some(hi)) = (self.bytes_lo.get_mut(i), self.bytes_hi.get_mut(i)) {
            *lo = v as u32;
            *hi = (v >> 32) as u16;
        }
    }
    fn packets(&self, side: usize) -> u64 {
        u64::from(self.packets.get(side).copied().unwrap_or(0))
    }

    /// Life-cycle state (Suricata's `flow.state`).
    pub(crate) fn state(&self) -> FlowState {
        let replied = self.packets(0) > 0 && self.packets(1) > 0;
        if self.l4() != L4Proto::Tcp {
            return if replied {
                FlowState::Established
            } else {
                FlowState::New
            };
        }
        use TcpEndpointState::*;
        match self.tcp_states() {
            (Closed | Reset, _) | (_, Closed | Reset) => FlowState::Closed,
            (Established | Partial, Established | Partial) => FlowState::Established,
            _ if self.bytes(0, PAYLOAD) > 0 && self.bytes(1, PAYLOAD) > 0 => FlowState::Established,
            _ => FlowState::New,
        }
    }

    /// Last packet time plus the timeout of the current state, in ns.
    pub(crate) fn deadline(&self, t: &Timeouts) -> u64 {
        self.last.saturating_add(t.of_class(self.timeout_class()))
    }

    /// The timeout class of the flow's current state.
    #[inline]
    pub(crate) fn timeout_class(&self) -> usize {
        usize::from(self.class)
    }

    /// Recomputes the timeout class after the TCP states may have changed
    /// (other protocols keep the class they were created with).
    #[inline]
    pub(crate) fn refresh_class(&mut self) {
        if self.l4() == L4Proto::Tcp {
            self.class = Timeouts::class_of(L4Proto::Tcp, self.tcp_states()) as u8;
        }
    }

    /// Latest packet time, ns.
    pub(crate) fn last_ns(&self) -> u64 {
        self.last
    }

    /// Counts one packet of `side` into the statistics.
    pub(crate) fn count<K>(&mut self, side: usize, pkt: &PacketView<'_>, ex: &Extracted<K>) {
        self.add_bytes(side, FRAME, pkt.wire_len);
        self.add_bytes(side, IP, ex.ip_len);
        self.add_bytes(side, PAYLOAD, ex.payload_wire_len);
        if let Some(p) = self.packets.get_mut(side) {
            *p = p.saturating_add(1);
        }
        let ts = pkt.ts.as_nanos();
        // A packet earlier than the latest one moves nothing: `last` never
        // goes back, and its idle time is zero.
        if ts > self.last {
            let idle_us = (ts - self.last) / 1_000;
            self.max_idle_us = self
                .max_idle_us
                .max(u32::try_from(idle_us).unwrap_or(u32::MAX));
            self.last = ts;
        }
    }

    /// Runs the protocol logic (TCP machine, history) for one packet of
    /// `side`. Returns true when the roles must flip. A TCP segment with a
    /// bad checksum only adds `c`: like Zeek, its flags, sequence numbers and
    /// state changes are ignored (its bytes are still counted).
    pub(crate) fn observe<K>(&mut self, side: usize, ex: &Extracted<K>) -> bool {
        let is_orig = side == 0;
        let l4 = self.l4();
        let Some(e) = self.ends.get_mut(side) else {
            return false;
        };
        match (l4, ex.l4, ex.tcp) {
            (L4Proto::Tcp, L4Proto::Tcp, Some(t)) => {
                // Zeek drops a segment with a bad checksum before the state
                // machine sees it (TCPAnalyzer::ValidateChecksum).
                if ex.checksum == ChecksumStatus::Bad {
                    e.bad_checksum(is_orig, &mut self.history);
                    return false;
                }
                let seg = Segment {
                    seq: t.seq,
                    ack: t.ack,
                    window: t.window,
                    flags: t.flags,
                    len: ex.payload_wire_len,
                };
                tcp::process(&mut self.ends, side, &seg, &mut self.history)
            }
            (L4Proto::Udp, L4Proto::Udp, _) => {
                // Zeek UDPAnalyzer::DeliverPacket: a bad checksum counts `c`
                // and the datagram is otherwise ignored; a good one is `d`
                // once per direction and makes the side active.
                if ex.checksum == ChecksumStatus::Bad {
                    e.bad_checksum(is_orig, &mut self.history);
                } else {
                    e.check_history(Seen::DATA, b'D', is_orig, &mut self.history);
                }
                false
            }
            _ => false,
        }
    }

    /// Swaps initiator and responder (Zeek `Connection::FlipRoles`), moving
    /// every per-side counter along; the once-per-direction history bits
    /// stay with the role, as Zeek keeps them in the connection.
    pub(crate) fn flip(&mut self, extra: Option<&mut Extra>) {
        let [a, b] = &mut self.ends;
        core::mem::swap(a, b);
        core::mem::swap(&mut a.seen, &mut b.seen);
        for k in 0..3 {
            self.bytes_lo.swap(k, 3 + k);
            self.bytes_hi.swap(k, 3 + k);
        }
        self.packets.swap(0, 1);
        if let Some(x) = extra {
            x.missed.swap(0, 1);
            x.gaps.swap(0, 1);
        }
        self.bits ^= INITIATOR_HI;
        self.history.push(b'^');
    }

    /// The final record of this flow.
    pub(crate) fn record<K: TrackedKey>(
        &self,
        key: K,
        extra: Option<&Extra>,
        end_reason: EndReason,
        seed: u16,
    ) -> FlowRecord<K> {
        let initiator = self.initiator();
        let id = flow_id(&key, self.first());
        let community_id = key.community_id(initiator, seed);
        let l4 = self.l4();
        let mut r = FlowRecord::new(key, id, initiator, l4);
        r.stats.first = self.first();
        r.stats.last = self.last();
        r.stats.max_idle = Duration::from_micros(u64::from(self.max_idle_us));
        let [ini, resp] = &self.ends;
        for (side, fs) in [(0usize, FlowSide::Initiator), (1, FlowSide::Responder)] {
            let d: &mut DirStats = r.stats.side_mut(fs);
            d.packets = self.packets(side);
            d.frame_bytes = self.bytes(side, FRAME);
            d.ip_bytes = self.bytes(side, IP);
            d.payload_bytes = self.bytes(side, PAYLOAD);
            d.stream_bytes = match (l4, side) {
                (L4Proto::Tcp, 0) => tcp::stream_size(ini, resp),
                (L4Proto::Tcp, _) => tcp::stream_size(resp, ini),
                _ => d.payload_bytes,
            };
            if let Some(x) = extra {
                d.missed_bytes = x.missed.get(side).copied().unwrap_or(0);
                d.gaps = x.gaps.get(side).copied().unwrap_or(0);
            }
        }
        r.state = self.state();
        r.end_reason = end_reason;
        r.history = self.history.unpack();
        r.conn_state = match l4 {
            L4Proto::Tcp => conn_state::tcp(
                ini.state(),
                resp.state(),
                r.stats.initiator.stream_bytes,
                r.stats.responder.stream_bytes,
                &r.history,
            ),
            L4Proto::Udp => {
                conn_state::udp(ini.seen & Seen::DATA != 0, resp.seen & Seen::DATA != 0)
            }
            _ => ConnState::OTH,
        };
        r.tcp_states = (ini.state(), resp.state());
        r.tcp_flags = (TcpFlags(ini.flags), TcpFlags(resp.flags));
        r.community_id = community_id;
        let mut encap = EncapSummary::default();
        encap.vlans = self.vlans;
        encap.vlan_count = (self.bits & VLAN_MASK) >> VLAN_SHIFT;
        if let Some(x) = extra {
            encap.tunnel = x.tunnel;
            encap.outer = x.outer;
            r.source = x.source;
        }
        r.encap = encap;
        r
    }
}

/// Builds the [`Extra`] for a new flow, if it needs one.
pub(crate) fn first_extra(fe: &FirstEncap, source: Option<u32>) -> Option<Extra> {
    let x = Extra {
        tunnel: fe.tunnel,
        outer: fe.outer,
        source,
        ..Extra::default()
    };
    (!x.is_empty()).then_some(x)
}

/// A flow's id: a fixed-seed hash of its key and first timestamp, masked to
/// 53 bits. The hasher fixes byte order and integer widths, so ids are the
/// same on every platform and in every run.
pub(crate) fn flow_id<K: Hash>(key: &K, first: Timestamp) -> FlowId {
    let mut h = StableHasher::new();
    key.hash(&mut h);
    h.write_u64(first.as_nanos());
    FlowId(h.finish() & ((1 << 53) - 1))
}

/// A small deterministic hasher: every integer is widened to a 64-bit word
/// and mixed with a 128-bit folded multiply; `finish` applies the
/// SplitMix64 finaliser.
pub(crate) struct StableHasher {
    h: u64,
}

impl StableHasher {
    const SEED: u64 = 0x243f_6a88_85a3_08d3; // pi's fractional digits
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15; // 2^64 / golden ratio

    fn new() -> Self {
        StableHasher { h: Self::SEED }
    }
    /// A hasher started from `seed` instead of the fixed seed.
    pub(crate) fn with_seed(seed: u64) -> Self {
        StableHasher { h: seed }
    }
    #[inline]
    pub(crate) fn mix(&mut self, w: u64) {
        let m = u128::from(self.h ^ w) * u128::from(Self::MUL);
        self.h = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(chunk) {
                *d = *s;
            }
            self.mix(u64::from_le_bytes(w));
        }
        // The length keeps "ab" + "c" apart from "a" + "bc".
        self.mix(bytes.len() as u64);
    }
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.mix(i as i64 as u64);
    }
    fn finish(&self) -> u64 {
        let mut z = self.h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope_core::FiveTuple;

    #[test]
    fn flow_is_176_bytes() {
        assert_eq!(core::mem::size_of::<Flow>(), 176);
    }

    #[test]
    fn byte_counters_saturate_at_48_bits() {
        let mut f = Flow::new(
            Timestamp::ZERO,
            L4Proto::Udp,
            Orientation::LoToHi,
            [0; 2],
            0,
            NO_EXTRA,
        );
        f.add_bytes(1, IP, u32::MAX);
        f.add_bytes(1, IP, 1);
        assert_eq!(f.bytes(1, IP), 1 << 32);
        for _ in 0..70_000 {
            f.add_bytes(0, FRAME, u32::MAX);
        }
        assert_eq!(f.bytes(0, FRAME), MAX48);
        assert_eq!(f.bytes(0, IP), 0);
    }

    #[test]
    fn flow_id_is_stable_and_53_bits() {
        let a = "10.0.0.1".parse().expect("addr");
        let b = "10.0.0.2".parse().expect("addr");
        let (k, _) = FiveTuple::from_directed(a, 1234, b, 80, 6);
        let t = Timestamp::from_secs_nanos(1_700_000_000, 5);
        let id = flow_id(&k, t);
        assert_eq!(id, flow_id(&k, t));
        assert!(id.0 < 1 << 53);
        assert_ne!(
            id,
            flow_id(&k, Timestamp::from_secs_nanos(1_700_000_000, 6))
        );
        let (k2, _) = FiveTuple::from_directed(a, 1235, b, 80, 6);
        assert_ne!(id, flow_id(&k2, t));
    }

    #[test]
    fn stable_hasher_is_deterministic_and_length_aware() {
        let run = |parts: &[&[u8]]| {
            let mut h = StableHasher::new();
            for p in parts {
                h.write(p);
            }
            h.finish()
        };
        assert_eq!(run(&[&[1, 2, 3]]), run(&[&[1, 2, 3]]));
        assert_ne!(run(&[&[1, 2, 3]]), run(&[&[1, 2], &[3]]));
        // Integer widths are normalised: the same value hashes the same
        // whether written as a usize or a u64.
        let mut a = StableHasher::new();
        a.write_usize(7);
        let mut b = StableHasher::new();
        b.write_u64(7);
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn slab_reuses_slots() {
        let mut s = ExtraSlab::default();
        let x = Extra {
            source: Some(3),
            ..Extra::default()
        };
        let a = s.alloc(x.clone());
        let b = s.alloc(x.clone());
        assert_eq!(s.in_use(), 2);
        assert_eq!(s.release(a), Some(x.clone()));
        assert_eq!(s.alloc(Extra::default()), a);
        assert_eq!(s.get(b).and_then(|e| e.source), Some(3));
        assert_eq!(s.release(NO_EXTRA), None);
    }
}
