//! Choosing DNS flows: the two factories and their probes.

use flowscope_core::{DatagramParserFactory, FlowSide, ParserContext, Probe, SessionParserFactory};

use super::decode::{plausible, HEADER_LEN};
use super::tcp::DnsTcpParser;
use super::udp::DnsUdpParser;
use super::DnsConfig;

/// The ports DNS is recognised on: DNS (53) and multicast DNS (5353, RFC
/// 6762, same message format).
pub const DNS_PORTS: [u16; 2] = [53, 5353];

/// Makes [`DnsUdpParser`]s for UDP flows on port 53 or 5353 whose datagram
/// has a plausible DNS header.
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

    /// [`Probe::Match`] when a port is 53 or 5353 and the datagram has a
    /// plausible header (at least 12 bytes, an assigned OPCODE, a question
    /// count that fits its length); never [`Probe::NeedMore`].
    fn probe(&self, ctx: &ParserContext, _side: FlowSide, data: &[u8]) -> Probe {
        if ctx.has_port(&DNS_PORTS) && plausible(data, data.len()) {
            Probe::Match
        } else {
            Probe::NoMatch
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> DnsUdpParser {
        DnsUdpParser::new(&self.cfg)
    }
}

/// Makes [`DnsTcpParser`]s for TCP flows on port 53 or 5353 (RFC 7766).
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
    /// the header are in, then [`Probe::Match`] when the header is plausible
    /// for the announced length.
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
        match data.get(2..2 + HEADER_LEN) {
            None => Probe::NeedMore,
            Some(header) if plausible(header, len) => Probe::Match,
            Some(_) => Probe::NoMatch,
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> DnsTcpParser {
        DnsTcpParser::new(&self.cfg)
    }
}
