//! What the flow tracker reports: per-flow statistics, Zeek-compatible
//! history and connection state, and flow events.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;

use crate::key::{FiveTuple, Orientation};
use crate::packet::Timestamp;
use crate::wire::{EncapLayer, L4Proto, TcpFlags};

/// A side of a flow, relative to who started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowSide {
    /// The endpoint that started the flow (Zeek's originator, Suricata's client / "toserver" sender).
    Initiator,
    /// The other endpoint.
    Responder,
}

impl FlowSide {
    /// The other side.
    pub const fn other(self) -> Self {
        match self {
            FlowSide::Initiator => FlowSide::Responder,
            FlowSide::Responder => FlowSide::Initiator,
        }
    }
}

/// A flow's identity: stable for a given key and first-packet time, so that
/// the same capture gives the same ids in every run and with any number of
/// workers. Fits in 53 bits (exact in JSON numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

/// Counters for one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirStats {
    /// Packets sent by this side.
    pub packets: u64,
    /// Frame bytes (link layer included, [`PacketView::wire_len`](crate::PacketView)) sent by
    /// this side; Suricata's `bytes_toserver`/`bytes_toclient` count these.
    pub frame_bytes: u64,
    /// IP bytes (header + payload as on the wire) sent by this side; Zeek's
    /// `orig_ip_bytes`/`resp_ip_bytes`.
    pub ip_bytes: u64,
    /// Transport payload bytes sent, counting every packet (retransmissions included).
    pub payload_bytes: u64,
    /// For TCP, the payload bytes covered by the sequence-number span
    /// (Zeek's `orig_bytes`/`resp_bytes`: retransmissions counted once);
    /// for other protocols, equal to `payload_bytes`.
    pub stream_bytes: u64,
    /// Stream bytes never seen (content gaps), as found by reassembly (Zeek's `missed_bytes`).
    pub missed_bytes: u64,
    /// Number of content gaps found by reassembly.
    pub gaps: u32,
}

/// Counters and times for a whole flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStats {
    /// Timestamp of the first packet.
    pub first: Timestamp,
    /// Timestamp of the latest packet (never earlier than `first`, even when
    /// capture time went backwards).
    pub last: Timestamp,
    /// What the initiator sent.
    pub initiator: DirStats,
    /// What the responder sent.
    pub responder: DirStats,
    /// The longest silence between two consecutive packets of the flow.
    pub max_idle: Duration,
}

impl FlowStats {
    /// The counters of one side.
    pub fn side(&self, side: FlowSide) -> &DirStats {
        match side {
            FlowSide::Initiator => &self.initiator,
            FlowSide::Responder => &self.responder,
        }
    }
    /// The counters of one side, mutably.
    pub fn side_mut(&mut self, side: FlowSide) -> &mut DirStats {
        match side {
            FlowSide::Initiator => &mut self.initiator,
            FlowSide::Responder => &mut self.responder,
        }
    }
    /// `last - first`.
    pub fn duration(&self) -> Duration {
        self.last.saturating_duration_since(self.first)
    }
    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.initiator.packets + self.responder.packets
    }
    /// IP bytes in both directions.
    pub fn ip_bytes(&self) -> u64 {
        self.initiator.ip_bytes + self.responder.ip_bytes
    }
}

/// Zeek's connection `history`: one letter per notable event, upper case
/// when the originator did it, lower case for the responder.
///
/// Stored inline (no allocation); letters past [`HistoryString::CAPACITY`]
/// are dropped and [`HistoryString::overflowed`] is set. The tracker applies
/// Zeek's repeat rules; this type only stores the letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryString {
    buf: [u8; HistoryString::CAPACITY],
    len: u8,
    overflowed: bool,
}

impl Default for HistoryString {
    fn default() -> Self {
        HistoryString {
            buf: [0; HistoryString::CAPACITY],
            len: 0,
            overflowed: false,
        }
    }
}

impl HistoryString {
    /// Letters kept at most.
    pub const CAPACITY: usize = 30;

    /// Appends a letter (expected: one of `SHADFRCGTWIQ^` in either case).
    #[inline]
    pub fn push(&mut self, letter: u8) {
        match self.buf.get_mut(self.len as usize) {
            Some(slot) if letter.is_ascii_graphic() => {
                *slot = letter;
                self.len += 1;
            }
            Some(_) => {}
            None => self.overflowed = true,
        }
    }
    /// The letters so far.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len as usize).unwrap_or(&[]);
        // Only ASCII graphic bytes are ever stored.
        core::str::from_utf8(bytes).unwrap_or("")
    }
    /// True when `letter` occurs.
    pub fn contains(&self, letter: u8) -> bool {
        self.as_str().as_bytes().contains(&letter)
    }
    /// Number of letters stored.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True when no letter has been stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when letters were dropped for lack of room.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl fmt::Display for HistoryString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HistoryString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HistoryString({:?})", self.as_str())
    }
}

/// The state of one TCP endpoint, as Zeek's TCP analyzer tracks it
/// (`TCP_INACTIVE` … `TCP_RESET`); `conn_state` is derived from the pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TcpEndpointState {
    /// Nothing seen from this endpoint.
    #[default]
    Inactive,
    /// Sent a SYN.
    SynSent,
    /// Sent a SYN-ACK.
    SynAckSent,
    /// Seen sending, but the start of its stream was missed.
    Partial,
    /// Handshake completed (or data flowing after one).
    Established,
    /// Sent a FIN.
    Closed,
    /// Sent a RST.
    Reset,
}

/// Zeek's `conn_state` summary of how a connection went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Connection established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    REJ,
    /// Established, close attempt by originator seen (no reply from responder).
    S2,
    /// Established, close attempt by responder seen (no reply from originator).
    S3,
    /// Established, originator aborted (sent a RST).
    RSTO,
    /// Responder sent a RST.
    RSTR,
    /// Originator sent a SYN followed by a RST; no SYN-ACK from the responder.
    RSTOS0,
    /// Responder sent a SYN-ACK followed by a RST; no SYN from the originator.
    RSTRH,
    /// Originator sent a SYN followed by a FIN; no SYN-ACK from the responder.
    SH,
    /// Responder sent a SYN-ACK followed by a FIN; no SYN from the originator.
    SHR,
    /// No SYN seen, just midstream traffic.
    OTH,
}

impl ConnState {
    /// Zeek's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a flow is in its life (Suricata's `flow.state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowState {
    /// Seen in one direction only (or TCP handshake not completed).
    #[default]
    New,
    /// Seen in both directions (TCP: handshake completed or data both ways).
    Established,
    /// TCP: ended by FIN or RST.
    Closed,
}

impl FlowState {
    /// Suricata's spelling in EVE `flow.state`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// Idle past its state's timeout (closed TCP flows end by their linger timeout too).
    Timeout,
    /// Pushed out of a full table (least recently used first).
    Evicted,
    /// Still active when the input ended ([`finish`](https://docs.rs/flowscope) was called).
    Finished,
    /// A new connection reused the tuple of a closed one (a fresh SYN after FIN/RST).
    Reused,
}

impl EndReason {
    /// Suricata's `flow.reason` vocabulary (`FLOW_END_FLAG_*` in its
    /// output-json-flow.c): `timeout`, `forced`, `shutdown` or `tcp_reuse`.
    pub const fn eve_reason(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Reused => "tcp_reuse",
            EndReason::Evicted => "forced",
            EndReason::Finished => "shutdown",
        }
    }
    /// A stable snake_case name (NDJSON, CSV).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "evicted",
            EndReason::Finished => "finished",
            EndReason::Reused => "reused",
        }
    }
}

/// A Community ID v1 flow hash (the 20 SHA-1 bytes); displays as `1:<base64>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommunityId(pub [u8; 20]);

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = [0u8; 30];
        out[0] = b'1';
        out[1] = b':';
        let mut o = 2;
        for chunk in self.0.chunks(3) {
            let b = [
                chunk.first().copied().unwrap_or(0),
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                let sextet = ((n >> (18 - 6 * i)) & 63) as usize;
                let c = match ALPHABET.get(sextet) {
                    Some(&c) if i <= chunk.len() => c,
                    _ => b'=',
                };
                // 20 hash bytes make 7 groups of 4: 2 + 28 = 30 bytes.
                if let Some(slot) = out.get_mut(o) {
                    *slot = c;
                }
                o += 1;
            }
        }
        f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommunityId({self})")
    }
}

/// A compact summary of how a flow's first packet was encapsulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EncapSummary {
    /// VLAN ids, outermost first (`vlan_count` of them are set).
    pub vlans: [u16; 2],
    /// How many of `vlans` are set.
    pub vlan_count: u8,
    /// The innermost tunnel layer (GRE, VXLAN, Geneve, GTP-U, ERSPAN), if any.
    pub tunnel: Option<EncapLayer>,
    /// The outermost tunnel endpoint addresses, if tunnelled.
    pub outer: Option<(IpAddr, IpAddr)>,
}

impl EncapSummary {
    /// The VLAN ids that are set.
    pub fn vlan_ids(&self) -> &[u16] {
        self.vlans.get(..self.vlan_count as usize).unwrap_or(&[])
    }
}

/// Everything known about a flow when it ends.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct FlowRecord<K> {
    /// The canonical key.
    pub key: K,
    /// The flow's id.
    pub id: FlowId,
    /// Which way the initiator's packets go relative to `key`.
    pub initiator: Orientation,
    /// Transport protocol.
    pub l4: L4Proto,
    /// Counters and times.
    pub stats: FlowStats,
    /// Life-cycle state at the end.
    pub state: FlowState,
    /// Why it ended.
    pub end_reason: EndReason,
    /// Zeek's history letters.
    pub history: HistoryString,
    /// Zeek's connection state.
    pub conn_state: ConnState,
    /// Per-endpoint TCP states (initiator, responder); `Inactive` for non-TCP.
    pub tcp_states: (TcpEndpointState, TcpEndpointState),
    /// Every TCP flag seen from (initiator, responder), OR-ed together.
    pub tcp_flags: (TcpFlags, TcpFlags),
    /// Community ID v1, for 5-tuple flows.
    pub community_id: Option<CommunityId>,
    /// How the first packet was encapsulated.
    pub encap: EncapSummary,
    /// The capture source of the first packet, if known.
    pub source: Option<u32>,
}

impl<K> FlowRecord<K> {
    /// A record for a flow that has seen nothing yet: zero counters, empty
    /// history, [`FlowState::New`], [`ConnState::OTH`], inactive TCP
    /// endpoints, no Community ID, no encapsulation, ended by
    /// [`EndReason::Finished`]. The struct is `#[non_exhaustive]`, so other
    /// crates (the tracker, tests) build records with this and then set the
    /// public fields.
    pub fn new(key: K, id: FlowId, initiator: Orientation, l4: L4Proto) -> Self {
        FlowRecord {
            key,
            id,
            initiator,
            l4,
            stats: FlowStats::default(),
            state: FlowState::New,
            end_reason: EndReason::Finished,
            history: HistoryString::default(),
            conn_state: ConnState::OTH,
            tcp_states: (TcpEndpointState::Inactive, TcpEndpointState::Inactive),
            tcp_flags: (TcpFlags::default(), TcpFlags::default()),
            community_id: None,
            encap: EncapSummary::default(),
            source: None,
        }
    }
}

impl FlowRecord<FiveTuple> {
    /// `(src, sport, dst, dport)` with the initiator as source.
    pub fn endpoints(&self) -> (IpAddr, u16, IpAddr, u16) {
        self.key.directed(self.initiator)
    }
}

/// What the tracker tells its caller.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // events are handed over by reference, never stored in bulk
pub enum FlowEvent<K> {
    /// A new flow was created by a packet.
    Started {
        /// The canonical key.
        key: K,
        /// The new flow's id.
        id: FlowId,
        /// Timestamp of its first packet.
        ts: Timestamp,
        /// Orientation of the initiator relative to `key`.
        initiator: Orientation,
    },
    /// A flow ended; its final record.
    Ended(FlowRecord<K>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded() {
        let mut h = HistoryString::default();
        for _ in 0..40 {
            h.push(b'T');
        }
        assert_eq!(h.len(), HistoryString::CAPACITY);
        assert!(h.overflowed());
        let mut h = HistoryString::default();
        h.push(b'S');
        h.push(b'h');
        h.push(0); // ignored: not a letter
        assert_eq!(h.as_str(), "Sh");
        assert!(h.contains(b'h') && !h.contains(b'H'));
    }

    #[test]
    fn community_id_base64() {
        // 20 zero bytes: base64 is 27 'A' and one '='.
        let s = CommunityId([0; 20]).to_string();
        assert_eq!(s, format!("1:{}=", "A".repeat(27)));
        // Known vector: bytes 0..20.
        let mut b = [0u8; 20];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        assert_eq!(CommunityId(b).to_string(), "1:AAECAwQFBgcICQoLDA0ODxAREhM=");
    }

    #[test]
    fn side_accessors() {
        let mut s = FlowStats::default();
        s.side_mut(FlowSide::Responder).packets = 3;
        s.initiator.packets = 2;
        assert_eq!(s.packets(), 5);
        assert_eq!(s.side(FlowSide::Responder).packets, 3);
        assert_eq!(FlowSide::Initiator.other(), FlowSide::Responder);
    }
}
