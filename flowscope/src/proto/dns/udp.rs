//! DNS over UDP: one message per datagram.

use flowscope_core::{DatagramParser, Emit, FlowSide, Timestamp};

use super::message::DnsMessage;
use super::session::{DnsSession, DnsStats};
use super::DnsConfig;

/// The DNS parser of one UDP flow.
#[derive(Debug)]
pub struct DnsUdpParser {
    session: DnsSession,
}

impl DnsUdpParser {
    /// A parser using `cfg`.
    pub fn new(cfg: &DnsConfig) -> Self {
        DnsUdpParser {
            session: DnsSession::new(cfg),
        }
    }

    /// This flow's counters.
    pub fn stats(&self) -> DnsStats {
        self.session.stats
    }
}

impl DatagramParser for DnsUdpParser {
    type Message = DnsMessage;

    fn on_datagram(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, DnsMessage>,
    ) {
        self.session.message(side, data, ts, out);
    }

    fn on_close(&mut self, _ts: Timestamp, out: &mut Emit<'_, DnsMessage>) {
        self.session.close(out);
    }

    /// The pending-query queue (capacity).
    fn memory_used(&self) -> usize {
        self.session.heap_bytes()
    }
}
