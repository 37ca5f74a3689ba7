//! The flow table: bidirectional flows, the TCP state machine, Zeek history
//! and conn_state, timeouts, eviction and Community ID.
//!
//! Data flow for one packet ([`FlowTracker::track`]):
//! 1. the tracker clock moves to the packet time and flows whose timeout has
//!    passed are ended (`table.rs`; deadlines from `timeout.rs`);
//! 2. the packet's flow is looked up (one hash lookup) or created;
//! 3. counters are updated and, for TCP, the per-endpoint state machine and
//!    history letters advance (`tcp.rs`, after Zeek's TCP analyzer);
//! 4. when a flow ends, its [`FlowRecord`](flowscope_core::FlowRecord) is built
//!    with Zeek's `conn_state` (`conn_state.rs`) and the Community ID
//!    ([`community_id()`]).
//!
//! Everything is deterministic: time comes only from packet timestamps (or
//! [`FlowTracker::advance_to`]), flows end oldest first, and flow ids are a
//! fixed-seed hash of the key and the first timestamp.

mod community_id;
mod conn_state;
mod flow;
mod history;
pub(crate) mod slots;
mod table;
mod tcp;
mod timeout;
mod timers;

#[cfg(test)]
mod tests;

use core::time::Duration;

use flowscope_core::{
    CommunityId, FiveTuple, FlowId, FlowKey, FlowSide, IpPair, MacPair, Orientation, Timestamp,
};

pub use community_id::community_id;

/// Records a content gap found after `rec` was built (a hole reassembly
/// only finds when the flow ends): adds `missed_bytes` and a gap to the
/// side's counters and the logarithmic `G`/`g` history letter, exactly as
/// [`FlowTracker::note_gap`] does for a live flow.
pub fn record_gap<K>(rec: &mut flowscope_core::FlowRecord<K>, side: FlowSide, missed_bytes: u64) {
    let dir = match side {
        FlowSide::Initiator => &mut rec.stats.initiator,
        FlowSide::Responder => &mut rec.stats.responder,
    };
    dir.missed_bytes = dir.missed_bytes.saturating_add(missed_bytes);
    dir.gaps = dir.gaps.saturating_add(1);
    if history::scaled_hit(dir.gaps) {
        rec.history
            .push(tcp::letter(b'G', side == FlowSide::Initiator));
    }
}
pub use table::FlowTracker;

/// Flow table limits and timeouts. Defaults follow Zeek's.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TrackerConfig {
    /// Most flows held at once; past it the flow idle the longest (oldest
    /// last packet) is evicted (`EndReason::Evicted`). Default 262 144.
    pub max_flows: usize,
    /// Idle timeout of TCP flows past the handshake (Zeek `tcp_inactivity_timeout`, 300 s).
    pub tcp_timeout: Duration,
    /// Idle timeout of an unanswered SYN (Zeek `tcp_SYN_timeout`, 5 s).
    pub tcp_syn_timeout: Duration,
    /// Linger after a TCP flow closed by FIN or RST (Zeek `tcp_close_delay`, 5 s).
    pub tcp_closed_timeout: Duration,
    /// Idle timeout of UDP flows (60 s).
    pub udp_timeout: Duration,
    /// Idle timeout of ICMP flows (60 s).
    pub icmp_timeout: Duration,
    /// Idle timeout of flows of other IP protocols (60 s).
    pub other_timeout: Duration,
    /// Community ID seed (default 0).
    pub community_id_seed: u16,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_flows: 262_144,
            tcp_timeout: Duration::from_secs(300),
            tcp_syn_timeout: Duration::from_secs(5),
            tcp_closed_timeout: Duration::from_secs(5),
            udp_timeout: Duration::from_secs(60),
            icmp_timeout: Duration::from_secs(60),
            other_timeout: Duration::from_secs(60),
            community_id_seed: 0,
        }
    }
}

/// A key the tracker can hold; keys that know their endpoints give a Community ID.
pub trait TrackedKey: FlowKey {
    /// The Community ID v1 of a flow with this key whose initiator sends in
    /// orientation `initiator`; `None` for keys without transport endpoints.
    fn community_id(&self, _initiator: Orientation, _seed: u16) -> Option<CommunityId> {
        None
    }

    /// The flow table's hash of this key under the table's random `seed`
    /// (only bucket placement depends on it, never the output). The default
    /// feeds the key's `Hash` to a seeded folded-multiply hasher.
    #[inline]
    fn table_hash(&self, seed: u64) -> u64 {
        use core::hash::Hasher;
        let mut h = flow::StableHasher::with_seed(seed);
        self.hash(&mut h);
        h.finish()
    }
}

impl TrackedKey for FiveTuple {
    fn community_id(&self, initiator: Orientation, seed: u16) -> Option<CommunityId> {
        Some(community_id(self, initiator, seed))
    }

    /// Two to five folded multiplies over the key's words instead of the
    /// derived `Hash` (which walks both `IpAddr` enums field by field):
    /// the lookup runs once per packet.
    #[inline]
    fn table_hash(&self, seed: u64) -> u64 {
        use core::hash::Hasher;
        use std::net::IpAddr;
        let mut h = flow::StableHasher::with_seed(seed);
        let tail =
            u64::from(self.lo_port) | u64::from(self.hi_port) << 16 | u64::from(self.proto) << 32;
        match (self.lo_addr, self.hi_addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                h.mix(u64::from(u32::from(a)) << 32 | u64::from(u32::from(b)));
                h.mix(tail);
            }
            (a, b) => {
                let bits = |x: IpAddr| match x {
                    IpAddr::V4(v) => u128::from(u32::from(v)),
                    IpAddr::V6(v) => u128::from(v),
                };
                let (a, b) = (bits(a), bits(b));
                h.mix(a as u64);
                h.mix((a >> 64) as u64);
                h.mix(b as u64);
                h.mix((b >> 64) as u64);
                h.mix(tail | 1 << 40);
            }
        }
        h.finish()
    }
}
impl TrackedKey for IpPair {}
impl TrackedKey for MacPair {}

/// What the tracker did with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackOutcome {
    /// First packet time of the flow the packet was counted in; with the
    /// key it gives the flow's id ([`TrackOutcome::id`]).
    pub first: Timestamp,
    /// Which side of that flow sent it.
    pub side: FlowSide,
    /// True when this packet created the flow.
    pub new_flow: bool,
}

impl TrackOutcome {
    /// The id of the flow the packet was counted in (`key` is the packet's
    /// key). Computed on demand: the hot path does not need it.
    pub fn id<K: core::hash::Hash>(&self, key: &K) -> FlowId {
        flow::flow_id(key, self.first)
    }
}

/// Tracker counters. Invariant: `flows_created == ended() + active`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackerStats {
    /// Packets counted into a flow.
    pub packets: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows ended by idle or linger timeout.
    pub ended_timeout: u64,
    /// Flows evicted from a full table.
    pub ended_evicted: u64,
    /// Flows ended by `finish`.
    pub ended_finished: u64,
    /// Flows ended because a new connection reused the tuple.
    pub ended_reused: u64,
    /// Flows in the table now.
    pub active: u64,
    /// Packets whose timestamp was earlier than the tracker's clock.
    pub ts_backwards: u64,
}

impl TrackerStats {
    /// Flows ended for any reason.
    pub fn ended(&self) -> u64 {
        self.ended_timeout + self.ended_evicted + self.ended_finished + self.ended_reused
    }
}
