//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message follows a
//! two-byte length. A segment may carry several messages, a message may
//! span segments; only the unfinished message is buffered (at most
//! 2 + 65 535 bytes per side), and a message wholly inside one delivery is
//! decoded in place without a copy.

use flowscope_core::{Emit, FlowSide, SessionEvent, SessionParser, Timestamp};

use super::message::DnsMessage;
use super::session::{DnsSession, DnsStats, ANOMALY_TCP_GAP, ANOMALY_TCP_INCOMPLETE};
use super::DnsConfig;

/// Buffers larger than this are released once their message is done, so a
/// single 64 KiB message does not pin 64 KiB for the rest of the flow.
const KEEP_CAPACITY: usize = 4096;

/// One side's unfinished message: its length prefix and the bytes so far.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Bytes still needed to finish the prefix, or then the message.
    fn missing(&self) -> usize {
        match self.buf.as_slice() {
            [hi, lo, body @ ..] => {
                usize::from(u16::from_be_bytes([*hi, *lo])).saturating_sub(body.len())
            }
            short => 2 - short.len(),
        }
    }

    /// True when a prefix and its whole message are buffered.
    fn is_complete(&self) -> bool {
        self.buf.len() >= 2 && self.missing() == 0
    }

    fn reset(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }
}

/// The DNS parser of one TCP flow.
#[derive(Debug)]
pub struct DnsTcpParser {
    session: DnsSession,
    framers: [Framer; 2],
    poisoned: bool,
}

impl DnsTcpParser {
    /// A parser using `cfg`.
    pub fn new(cfg: &DnsConfig) -> Self {
        DnsTcpParser {
            session: DnsSession::new(cfg),
            framers: Default::default(),
            poisoned: false,
        }
    }

    /// This flow's counters.
    pub fn stats(&self) -> DnsStats {
        self.session.stats
    }

    /// Bytes held for unfinished messages, both sides.
    pub fn buffered_bytes(&self) -> usize {
        self.framers.iter().map(|f| f.buf.len()).sum()
    }
}

impl SessionParser for DnsTcpParser {
    type Message = DnsMessage;

    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, DnsMessage>,
    ) {
        if self.poisoned {
            return;
        }
        let [initiator, responder] = &mut self.framers;
        let framer = match side {
            FlowSide::Initiator => initiator,
            FlowSide::Responder => responder,
        };
        let mut rest = data;
        while !rest.is_empty() {
            if framer.buf.is_empty() {
                // Whole messages straight from the delivered bytes.
                if let Some(&[hi, lo]) = rest.get(..2) {
                    let end = 2 + usize::from(u16::from_be_bytes([hi, lo]));
                    if let (Some(msg), Some(tail)) = (rest.get(2..end), rest.get(end..)) {
                        self.session.message(side, msg, ts, out);
                        rest = tail;
                        continue;
                    }
                }
                // An unfinished message: shorter than 2 + 65 535 bytes.
                framer.buf.extend_from_slice(rest);
                return;
            }
            let take = framer.missing().min(rest.len());
            let (head, tail) = rest.split_at(take);
            framer.buf.extend_from_slice(head);
            rest = tail;
            if framer.is_complete() {
                if let Some(msg) = framer.buf.get(2..) {
                    self.session.message(side, msg, ts, out);
                }
                framer.reset();
            }
        }
    }

    /// A hole in the stream hides where the next length prefix is: stop.
    fn on_gap(
        &mut self,
        side: FlowSide,
        _len: u64,
        _ts: Timestamp,
        out: &mut Emit<'_, DnsMessage>,
    ) {
        if self.poisoned {
            return;
        }
        self.poisoned = true;
        for f in &mut self.framers {
            f.reset();
        }
        out(SessionEvent::Anomaly {
            side: Some(side),
            anomaly: ANOMALY_TCP_GAP,
        });
    }

    fn on_close(&mut self, _ts: Timestamp, out: &mut Emit<'_, DnsMessage>) {
        for (f, side) in self
            .framers
            .iter_mut()
            .zip([FlowSide::Initiator, FlowSide::Responder])
        {
            if !f.buf.is_empty() {
                out(SessionEvent::Anomaly {
                    side: Some(side),
                    anomaly: ANOMALY_TCP_INCOMPLETE,
                });
                f.reset();
            }
        }
        self.session.close(out);
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Both sides' framing buffers (capacity) and the pending queries.
    fn memory_used(&self) -> usize {
        self.framers
            .iter()
            .map(|f| f.buf.capacity())
            .fold(self.session.heap_bytes(), usize::saturating_add)
    }
}
