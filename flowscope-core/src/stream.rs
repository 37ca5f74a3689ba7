//! Streams and sessions: the contract between TCP reassembly, protocol
//! parsers and the driver that runs them.
//!
//! Data flow for one flow:
//! 1. the driver hands each TCP segment to the flow's [`Reassembler`], which
//!    emits [`StreamEvent`]s in stream order (in-order bytes, gaps, anomalies);
//! 2. the driver feeds those bytes to the flow's [`SessionParser`] (chosen
//!    by a [`SessionParserFactory`] from the ports and the first bytes), or
//!    each UDP payload to a [`DatagramParser`];
//! 3. parsers emit [`SessionEvent`]s carrying their own message type.
//!
//! Nothing here reads a clock or does I/O: every call carries the packet
//! timestamp. A parser crate depends on `flowscope-core` alone.

use crate::flow::FlowSide;
use crate::packet::Timestamp;
use crate::wire::{L4Proto, TcpFlags};

/// Something unusual found in the traffic: counted and reported, never fatal.
///
/// `code` is a stable `layer.snake_case` name (`"tcp.overlap_conflict"`,
/// `"http.ambiguous_framing"`, `"dns.compression_loop"` …) that outputs and
/// counters use as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Anomaly {
    /// The stable name of the anomaly.
    pub code: &'static str,
}

impl Anomaly {
    /// An anomaly with the given code.
    pub const fn new(code: &'static str) -> Self {
        Anomaly { code }
    }
}

/// One TCP segment of one side of a flow, as a [`Reassembler`] sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TcpSegment<'a> {
    /// Capture time of the packet.
    pub ts: Timestamp,
    /// Sequence number of the first byte (of the SYN, when `flags` has SYN).
    pub seq: u32,
    /// The segment's flags.
    pub flags: TcpFlags,
    /// The acknowledgment number, when the ACK flag is set. An ACK for
    /// bytes of the *other* side's stream that were never captured tells
    /// the reassembler they are lost (a gap), as Zeek and Suricata do.
    pub ack: Option<u32>,
    /// The captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length on the wire; larger than `payload.len()` when the
    /// capture's snap length cut the packet (the missing tail is a gap).
    pub wire_len: u32,
}

impl<'a> TcpSegment<'a> {
    /// A segment whose payload was captured whole.
    pub fn new(ts: Timestamp, seq: u32, flags: TcpFlags, payload: &'a [u8]) -> Self {
        TcpSegment {
            ts,
            seq,
            flags,
            ack: None,
            payload,
            wire_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        }
    }

    /// Sets the acknowledgment number (segments with the ACK flag).
    pub fn with_ack(mut self, ack: u32) -> Self {
        self.ack = Some(ack);
        self
    }

    /// Sets the on-wire payload length (for snap-length-cut captures).
    pub fn with_wire_len(mut self, wire_len: u32) -> Self {
        self.wire_len = wire_len;
        self
    }
}

/// What a [`Reassembler`] hands on for one side, in stream order.
///
/// Offsets count stream bytes from the first byte after the SYN (or from the
/// first byte seen, on midstream pickup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent<'a> {
    /// In-order bytes starting at stream offset `offset`. Borrowed from the
    /// segment just fed when it was in order (no copy), else from the
    /// reassembler's own buffer.
    Data {
        /// Stream offset of `bytes[0]`.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// `len` bytes at `offset` that will never be delivered (not captured,
    /// or given up on when a cap was reached).
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Number of missing bytes.
        len: u64,
    },
    /// Something unusual in this side's segments (conflicting overlap,
    /// buffer overflow, a sequence number far outside the window …).
    Anomaly(Anomaly),
}

/// Orders one flow's TCP segments into two byte streams.
///
/// One value per flow, made by a [`ReassemblerFactory`]. Implementations
/// bound their memory whatever the input, and never panic.
pub trait Reassembler {
    /// Feeds one segment sent by `side`; every event it makes ready goes to
    /// `out`, tagged with the side whose stream it belongs to, before this
    /// returns. (A segment's ACK can release the *other* side's held data
    /// past a hole the receiver acknowledged.)
    fn segment(
        &mut self,
        side: FlowSide,
        seg: &TcpSegment<'_>,
        out: &mut dyn FnMut(FlowSide, StreamEvent<'_>),
    );

    /// Ends `side`'s stream (FIN or RST seen, or the flow ended): data held
    /// past a hole is delivered after a [`StreamEvent::Gap`] for the hole.
    fn flush(&mut self, side: FlowSide, out: &mut dyn FnMut(FlowSide, StreamEvent<'_>));

    /// Payload bytes held out of order right now, both sides.
    fn buffered_bytes(&self) -> usize;
}

/// Makes one [`Reassembler`] per flow.
pub trait ReassemblerFactory {
    /// The reassembler type.
    type Reassembler: Reassembler;

    /// A reassembler for a new flow.
    fn new_reassembler(&self) -> Self::Reassembler;
}

/// What a parser reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent<M> {
    /// A complete application message (an HTTP transaction, a TLS hello, a
    /// DNS message …), in the parser's own type.
    Message(M),
    /// `len` bytes of `side`'s stream are missing (reported by the driver
    /// from reassembly; parsers may report it too).
    Gap {
        /// Whose stream has the hole.
        side: FlowSide,
        /// Missing bytes.
        len: u64,
    },
    /// Something unusual, with the side it came from when known.
    Anomaly {
        /// The side whose bytes showed it, if one.
        side: Option<FlowSide>,
        /// What it was.
        anomaly: Anomaly,
    },
    /// The session ended (flow ended or both streams closed).
    Closed,
}

impl<M> SessionEvent<M> {
    /// Converts the message type, leaving every other event as it is.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> SessionEvent<N> {
        match self {
            SessionEvent::Message(m) => SessionEvent::Message(f(m)),
            SessionEvent::Gap { side, len } => SessionEvent::Gap { side, len },
            SessionEvent::Anomaly { side, anomaly } => SessionEvent::Anomaly { side, anomaly },
            SessionEvent::Closed => SessionEvent::Closed,
        }
    }
}

/// Where a parser sends its events.
pub type Emit<'a, M> = dyn FnMut(SessionEvent<M>) + 'a;

/// What a factory knows of a flow when choosing and making a parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParserContext {
    /// Transport protocol.
    pub l4: L4Proto,
    /// The initiator's port (0 when the protocol has none).
    pub initiator_port: u16,
    /// The responder's port (0 when the protocol has none).
    pub responder_port: u16,
}

impl ParserContext {
    /// A context for a flow between these ports.
    pub fn new(l4: L4Proto, initiator_port: u16, responder_port: u16) -> Self {
        ParserContext {
            l4,
            initiator_port,
            responder_port,
        }
    }

    /// True when either port is one of `ports`.
    pub fn has_port(&self, ports: &[u16]) -> bool {
        ports.contains(&self.initiator_port) || ports.contains(&self.responder_port)
    }
}

/// A factory's verdict on the first bytes of a stream or datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// This protocol: make a parser.
    Match,
    /// Not this protocol.
    NoMatch,
    /// Too few bytes to tell; ask again with more.
    NeedMore,
}

/// A per-flow parser of a byte-stream protocol (over reassembled TCP).
///
/// The driver feeds each side's in-order bytes as they become ready, in
/// capture order across sides. A parser that can no longer make sense of
/// its input reports [`SessionParser::is_poisoned`]; the driver then stops
/// feeding it and counts the flow.
pub trait SessionParser {
    /// The messages it emits.
    type Message;

    /// In-order bytes of `side`'s stream, captured at `ts`.
    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, Self::Message>,
    );

    /// `len` bytes of `side`'s stream are missing. The default poisons
    /// nothing and ignores the gap; parsers that can resynchronise override it.
    fn on_gap(
        &mut self,
        _side: FlowSide,
        _len: u64,
        _ts: Timestamp,
        _out: &mut Emit<'_, Self::Message>,
    ) {
    }

    /// The flow ended at `ts`: emit what is pending (e.g. a request never answered).
    fn on_close(&mut self, _ts: Timestamp, _out: &mut Emit<'_, Self::Message>) {}

    /// True once the parser gave up on this flow.
    fn is_poisoned(&self) -> bool {
        false
    }

    /// Heap bytes this parser holds right now: the capacity of its buffers
    /// and queues, not its own `size_of`. A driver with a memory budget
    /// reads it after each call into the parser and counts the change, so
    /// it should be cheap (a few field reads, no walk over the input).
    /// The default, 0, leaves the parser's buffers out of the accounting.
    fn memory_used(&self) -> usize {
        0
    }
}

/// Chooses and makes [`SessionParser`]s.
pub trait SessionParserFactory {
    /// The parser type.
    type Parser: SessionParser;

    /// The protocol's name as outputs show it (`"http"`, `"tls"`, `"dns"`):
    /// Suricata's `app_proto` and Zeek's `service` vocabulary.
    fn name(&self) -> &'static str;

    /// Is this the protocol? `data` is the first bytes `side` sent (the
    /// driver may ask again with more when the answer is [`Probe::NeedMore`]).
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe;

    /// A parser for a flow this factory matched.
    fn new_parser(&self, ctx: &ParserContext) -> Self::Parser;
}

/// A per-flow parser of a datagram protocol: one call per UDP payload.
pub trait DatagramParser {
    /// The messages it emits.
    type Message;

    /// One datagram's payload, sent by `side` at `ts`.
    fn on_datagram(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, Self::Message>,
    );

    /// The flow ended at `ts`: emit what is pending (e.g. unanswered queries).
    fn on_close(&mut self, _ts: Timestamp, _out: &mut Emit<'_, Self::Message>) {}

    /// Heap bytes this parser holds right now, as
    /// [`SessionParser::memory_used`] (default 0: not accounted).
    fn memory_used(&self) -> usize {
        0
    }
}

/// Chooses and makes [`DatagramParser`]s.
pub trait DatagramParserFactory {
    /// The parser type.
    type Parser: DatagramParser;

    /// The protocol's name as outputs show it (`"dns"` …).
    fn name(&self) -> &'static str;

    /// Is this datagram the protocol? ([`Probe::NeedMore`] means "no" here:
    /// a datagram is whole.)
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe;

    /// A parser for a flow this factory matched.
    fn new_parser(&self, ctx: &ParserContext) -> Self::Parser;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_non_messages() {
        let gap: SessionEvent<u8> = SessionEvent::Gap {
            side: FlowSide::Responder,
            len: 7,
        };
        assert_eq!(
            gap.map(u16::from),
            SessionEvent::Gap {
                side: FlowSide::Responder,
                len: 7
            }
        );
        assert_eq!(
            SessionEvent::Message(3u8).map(|m| u16::from(m) * 100),
            SessionEvent::Message(300u16)
        );
    }

    #[test]
    fn context_ports() {
        let ctx = ParserContext::new(L4Proto::Udp, 40000, 53);
        assert!(ctx.has_port(&[53, 5353]));
        assert!(!ctx.has_port(&[80]));
    }

    #[test]
    fn segment_wire_len_defaults_to_payload() {
        let s = TcpSegment::new(Timestamp::from_nanos(1), 9, TcpFlags::default(), b"abc");
        assert_eq!(s.wire_len, 3);
        assert_eq!(s.ack, None);
        assert_eq!(s.with_wire_len(10).wire_len, 10);
        assert_eq!(s.with_ack(77).ack, Some(77));
    }
}
