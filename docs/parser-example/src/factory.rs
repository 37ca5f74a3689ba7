//! [`LenProtoFactory`]: recognises LenProto from a stream's first bytes and
//! makes one [`LenProtoParser`] per flow.

use flowscope_core::{FlowSide, ParserContext, Probe, SessionParserFactory};

use crate::config::LenProtoConfig;
use crate::frame::{KIND_HELLO, VERSION};
use crate::parser::LenProtoParser;

/// Chooses LenProto for a flow whose initiator opens with a hello header.
#[derive(Clone, Copy, Debug, Default)]
pub struct LenProtoFactory {
    config: LenProtoConfig,
}

impl LenProtoFactory {
    /// A factory whose parsers use `config`.
    pub const fn new(config: LenProtoConfig) -> Self {
        LenProtoFactory { config }
    }

    /// The configuration its parsers get.
    pub const fn config(&self) -> LenProtoConfig {
        self.config
    }
}

impl SessionParserFactory for LenProtoFactory {
    type Parser = LenProtoParser;

    fn name(&self) -> &'static str {
        "lenproto"
    }

    /// `Match` when `data` starts with a hello header the parser would
    /// accept (version 1, kind hello, length at most `max_body`) and the
    /// body bytes present so far are UTF-8; `NeedMore` while the bytes seen
    /// are a prefix of such a header; `NoMatch` as soon as one byte rules it
    /// out, and for the responder (a session opens with the initiator's
    /// hello). Ports play no part: LenProto has no assigned port.
    ///
    /// Answering `NoMatch` early matters: every `NeedMore` makes the caller
    /// hold the stream's first bytes and ask again.
    fn probe(&self, _ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe {
        if side == FlowSide::Responder {
            return Probe::NoMatch;
        }
        // Byte by byte, so that a short prefix is judged on what it has.
        match data.first() {
            None => return Probe::NeedMore,
            Some(&v) if v != VERSION => return Probe::NoMatch,
            Some(_) => {}
        }
        match data.get(1) {
            None => return Probe::NeedMore,
            Some(&k) if k != KIND_HELLO => return Probe::NoMatch,
            Some(_) => {}
        }
        let body_len = match (data.get(2), data.get(3)) {
            (Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
            // The high byte alone bounds the length from below.
            (Some(&hi), None) if u16::from_be_bytes([hi, 0]) > self.config.max_body => {
                return Probe::NoMatch
            }
            _ => return Probe::NeedMore,
        };
        if body_len > self.config.max_body {
            return Probe::NoMatch;
        }
        // Two fixed bytes are a weak signature (1 in 65 536 for random
        // data); the client name must also be UTF-8, which most binary
        // data is not. Only the bytes present are checked: a multi-byte
        // character cut at the end of `data` is not an error.
        let body = data.get(4..).unwrap_or_default();
        let body = body.get(..usize::from(body_len)).unwrap_or(body);
        match core::str::from_utf8(body) {
            Err(e) if e.error_len().is_some() => Probe::NoMatch,
            _ => Probe::Match,
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> LenProtoParser {
        LenProtoParser::new(self.config)
    }
}

#[cfg(test)]
mod tests {
    use flowscope_core::{L4Proto, SessionParser};

    use super::*;

    fn ctx() -> ParserContext {
        ParserContext::new(L4Proto::Tcp, 50123, 7000)
    }

    fn probe(data: &[u8]) -> Probe {
        LenProtoFactory::default().probe(&ctx(), FlowSide::Initiator, data)
    }

    #[test]
    fn name_is_lenproto() {
        assert_eq!(LenProtoFactory::default().name(), "lenproto");
    }

    #[test]
    fn valid_hello_header_matches() {
        assert_eq!(probe(&[1, 1, 0, 0]), Probe::Match);
        assert_eq!(probe(&[1, 1, 0, 3, b'a', b'b', b'c']), Probe::Match);
        // Body not all here yet: the header decides.
        assert_eq!(probe(&[1, 1, 0, 200, b'a']), Probe::Match);
        // Trailing bytes past the hello (the next frame) do not matter.
        assert_eq!(probe(&[1, 1, 0, 1, b'a', 0xFF, 0xFE]), Probe::Match);
    }

    #[test]
    fn fewer_than_four_bytes_of_a_valid_prefix_need_more() {
        assert_eq!(probe(&[]), Probe::NeedMore);
        assert_eq!(probe(&[1]), Probe::NeedMore);
        assert_eq!(probe(&[1, 1]), Probe::NeedMore);
        assert_eq!(probe(&[1, 1, 0x10]), Probe::NeedMore);
    }

    #[test]
    fn a_byte_that_rules_it_out_is_no_match_at_once() {
        assert_eq!(probe(&[2]), Probe::NoMatch);
        assert_eq!(probe(&[1, 2]), Probe::NoMatch, "data, not hello");
        assert_eq!(probe(&[1, 3, 0, 0]), Probe::NoMatch, "bye, not hello");
        // High length byte 0x11: at least 0x1100 = 4352 > 4096.
        assert_eq!(probe(&[1, 1, 0x11]), Probe::NoMatch);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
        // A TLS record header: 0x16 0x03 0x01.
        assert_eq!(probe(&[0x16, 0x03, 0x01, 0x02, 0x00]), Probe::NoMatch);
    }

    #[test]
    fn length_limit_is_the_configured_max() {
        // 0x1000 = 4096 is the default maximum, 0x1001 one past it.
        assert_eq!(probe(&[1, 1, 0x10, 0x00]), Probe::Match);
        assert_eq!(probe(&[1, 1, 0x10, 0x01]), Probe::NoMatch);
        let small = LenProtoFactory::new(LenProtoConfig::default().with_max_body(8));
        assert_eq!(
            small.probe(&ctx(), FlowSide::Initiator, &[1, 1, 0, 8]),
            Probe::Match
        );
        assert_eq!(
            small.probe(&ctx(), FlowSide::Initiator, &[1, 1, 0, 9]),
            Probe::NoMatch
        );
        assert_eq!(
            small.probe(&ctx(), FlowSide::Initiator, &[1, 1, 1]),
            Probe::NoMatch
        );
    }

    #[test]
    fn body_must_be_utf8_as_far_as_it_goes() {
        // 0xFF never occurs in UTF-8 (RFC 3629 section 1).
        assert_eq!(probe(&[1, 1, 0, 2, b'a', 0xFF]), Probe::NoMatch);
        // 0xC3 0xA9 is "é"; cut after 0xC3 it is incomplete, not invalid.
        assert_eq!(probe(&[1, 1, 0, 2, 0xC3]), Probe::Match);
        assert_eq!(probe(&[1, 1, 0, 2, 0xC3, 0xA9]), Probe::Match);
    }

    #[test]
    fn responder_never_matches() {
        let f = LenProtoFactory::default();
        assert_eq!(
            f.probe(&ctx(), FlowSide::Responder, &[1, 1, 0, 0]),
            Probe::NoMatch
        );
        assert_eq!(f.probe(&ctx(), FlowSide::Responder, &[]), Probe::NoMatch);
    }

    #[test]
    fn any_port() {
        let f = LenProtoFactory::default();
        for (a, b) in [(1, 2), (40000, 80), (0, 0), (65535, 443)] {
            let c = ParserContext::new(L4Proto::Tcp, a, b);
            assert_eq!(
                f.probe(&c, FlowSide::Initiator, &[1, 1, 0, 0]),
                Probe::Match
            );
        }
    }

    #[test]
    fn parser_gets_the_factory_config() {
        let f = LenProtoFactory::new(LenProtoConfig::default().with_max_body(2));
        let mut p = f.new_parser(&ctx());
        let mut events = Vec::new();
        // A 3-byte body is past the parser's max of 2.
        p.on_data(
            FlowSide::Initiator,
            &[1, 2, 0, 3],
            flowscope_core::Timestamp::ZERO,
            &mut |e| events.push(e),
        );
        assert!(p.is_poisoned());
    }
}
