//! What UDP and TCP share once a whole message is in hand: decode it, pair
//! it, count it, emit it.

use flowscope_core::{Anomaly, Emit, FlowSide, SessionEvent, Timestamp};

use super::decode::decode;
use super::message::DnsMessage;
use super::pairing::{PendingQueries, Recorded};
use super::DnsConfig;

/// A message that is not DNS or not well formed (shorter than the header,
/// or a fault in its body).
pub const ANOMALY_MALFORMED: Anomaly = Anomaly::new("dns.malformed");
/// A query was dropped from the pending table to make room.
pub const ANOMALY_PENDING_OVERFLOW: Anomaly = Anomaly::new("dns.pending_overflow");
/// A query never answered before the flow ended (one per query).
pub const ANOMALY_UNANSWERED: Anomaly = Anomaly::new("dns.unanswered_query");
/// Bytes of a TCP stream were lost: the length framing cannot be recovered.
pub const ANOMALY_TCP_GAP: Anomaly = Anomaly::new("dns.tcp_gap");
/// The TCP stream ended inside a message.
pub const ANOMALY_TCP_INCOMPLETE: Anomaly = Anomaly::new("dns.tcp_incomplete_message");

/// Counters of one flow's DNS parser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsStats {
    /// Messages emitted (malformed ones included).
    pub messages: u64,
    /// Messages or datagrams that were malformed.
    pub malformed: u64,
    /// Responses paired with a query.
    pub paired: u64,
    /// Responses with no pending query.
    pub unsolicited: u64,
    /// Queries dropped because the pending table was full.
    pub pending_overflow: u64,
    /// Queries still unanswered when the flow closed.
    pub unanswered: u64,
}

/// Per-flow state common to both transports.
#[derive(Debug)]
pub(crate) struct DnsSession {
    max_records: usize,
    pending: PendingQueries,
    pub stats: DnsStats,
}

impl DnsSession {
    pub fn new(cfg: &DnsConfig) -> Self {
        DnsSession {
            max_records: cfg.max_records,
            pending: PendingQueries::new(cfg.max_pending),
            stats: DnsStats::default(),
        }
    }

    /// Heap bytes of the per-flow state (the pending-query queue).
    pub fn heap_bytes(&self) -> usize {
        self.pending.heap_bytes()
    }

    /// One whole message from `side`.
    pub fn message(
        &mut self,
        side: FlowSide,
        bytes: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, DnsMessage>,
    ) {
        let anomaly = |a| SessionEvent::Anomaly {
            side: Some(side),
            anomaly: a,
        };
        let Some(mut m) = decode(bytes, ts, side, self.max_records) else {
            self.stats.malformed += 1;
            out(anomaly(ANOMALY_MALFORMED));
            return;
        };
        if m.malformed.is_some() {
            self.stats.malformed += 1;
            out(anomaly(ANOMALY_MALFORMED));
        }
        if m.is_response {
            m.query_ts = self.pending.answer(&m);
            if m.query_ts.is_some() {
                self.stats.paired += 1;
            } else {
                self.stats.unsolicited += 1;
            }
        } else if self.pending.query(&m) == Recorded::EvictedOldest {
            self.stats.pending_overflow += 1;
            out(anomaly(ANOMALY_PENDING_OVERFLOW));
        }
        self.stats.messages += 1;
        out(SessionEvent::Message(m));
    }

    /// The flow ended: one anomaly per query never answered.
    pub fn close(&mut self, out: &mut Emit<'_, DnsMessage>) {
        let n = self.pending.len();
        self.stats.unanswered += n as u64;
        for _ in 0..n {
            out(SessionEvent::Anomaly {
                side: None,
                anomaly: ANOMALY_UNANSWERED,
            });
        }
        self.pending.clear();
    }
}
