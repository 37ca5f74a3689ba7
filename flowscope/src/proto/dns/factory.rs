//! Choosing DNS flows: the two factories and their probes.

use flowscope_core::{DatagramParserFactory, FlowSide, ParserContext, Probe, SessionParserFactory};

use super::decode::HEADER_LEN;
use super::tcp::DnsTcpParser;
use super::udp::DnsUdpParser;
use super::DnsConfig;

/// The ports DNS is recognised on: DNS (53) and multicast DNS (5353, RFC
/// 6762, same message format).
pub const DNS_PORTS: [u16; 2] = [53, 5353];

/// Makes [`DnsUdpParser`]s for UDP flows on port 53 or 5353.
///
/// The port decides, not the header: any OPCODE and any section counts are
/// accepted, because a malformed message on a DNS port is still DNS, better
/// decoded and flagged ([`DnsMessage::malformed`](super::DnsMessage::malformed))
/// than left unseen. Wireshark dissects these ports the same way.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsDatagramFactory {
    cfg: DnsConfig,
}

impl DnsDatagramFactory {
    /// A factory whose parsers use `cfg`.
    pub fn new(cfg: DnsConfig) -> Self {
        DnsDatagramFactory { cfg }
    }
}

impl DatagramParserFactory for DnsDatagramFactory {
    type Parser = DnsUdpParser;

    fn name(&self) -> &'static str {
        "dns"
    }

    /// [`Probe::Match`] when a port is 53 or 5353 and the datagram holds a
    /// whole header (12 bytes); never [`Probe::NeedMore`].
    fn probe(&self, ctx: &ParserContext, _side: FlowSide, data: &[u8]) -> Probe {
        if ctx.has_port(&DNS_PORTS) && data.len() >= HEADER_LEN {
            Probe::Match
        } else {
            Probe::NoMatch
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> DnsUdpParser {
        DnsUdpParser::new(&self.cfg)
    }
}

/// Makes [`DnsTcpParser`]s for TCP flows on port 53 or 5353 (RFC 7766);
/// like [`DnsDatagramFactory`], the header's contents are not judged.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsTcpFactory {
    cfg: DnsConfig,
}

impl DnsTcpFactory {
    /// A factory whose parsers use `cfg`.
    pub fn new(cfg: DnsConfig) -> Self {
        DnsTcpFactory { cfg }
    }
}

impl SessionParserFactory for DnsTcpFactory {
    type Parser = DnsTcpParser;

    fn name(&self) -> &'static str {
        "dns"
    }

    /// On port 53 or 5353: [`Probe::NeedMore`] until the two-byte length and
    /// the header are in, then [`Probe::Match`]; [`Probe::NoMatch`] when the
    /// announced length cannot hold a header.
    fn probe(&self, ctx: &ParserContext, _side: FlowSide, data: &[u8]) -> Probe {
        if !ctx.has_port(&DNS_PORTS) {
            return Probe::NoMatch;
        }
        let Some(&[hi, lo]) = data.get(..2) else {
            return Probe::NeedMore;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < HEADER_LEN {
            return Probe::NoMatch;
        }
        if data.len() < 2 + HEADER_LEN {
            Probe::NeedMore
        } else {
            Probe::Match
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> DnsTcpParser {
        DnsTcpParser::new(&self.cfg)
    }
}
