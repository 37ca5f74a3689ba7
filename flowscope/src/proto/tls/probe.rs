//! Recognising TLS from a stream's first bytes.

use flowscope_core::{FlowSide, ParserContext, Probe, SessionParserFactory};

use super::record::plausible_record_header;
use super::{TlsConfig, TlsParser};

/// Handshake record content type.
const CT_HANDSHAKE: u8 = 22;

/// Makes [`TlsParser`]s; recognises TLS on any port.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsParserFactory {
    config: TlsConfig,
}

impl TlsParserFactory {
    /// A factory whose parsers use `config`.
    pub fn new(config: TlsConfig) -> Self {
        TlsParserFactory { config }
    }
}

/// The verdict on a stream's first bytes, from either side: a handshake
/// record header (type 22, version 3.0 to 3.4, length within TLS's
/// bounds), or an SSLv2-compatible CLIENT-HELLO (2-byte header with the
/// high bit set, message type 1, version 2.0 or 3.x).
pub fn probe_tls(data: &[u8]) -> Probe {
    match data {
        [b0, b1, 1, major, _, ..] if b0 & 0x80 != 0 => {
            let len = u16::from_be_bytes([b0 & 0x7f, *b1]);
            // CLIENT-HELLO is at least 9 bytes of fixed fields.
            if len >= 9 && (*major == 0 || *major == 3) {
                Probe::Match
            } else {
                Probe::NoMatch
            }
        }
        [ty, major, minor, hi, lo, ..] => {
            let hdr = [*ty, *major, *minor, *hi, *lo];
            if *ty == CT_HANDSHAKE
                && plausible_record_header(&hdr)
                && u16::from_be_bytes([*hi, *lo]) > 0
            {
                Probe::Match
            } else {
                Probe::NoMatch
            }
        }
        _ => Probe::NeedMore,
    }
}

impl SessionParserFactory for TlsParserFactory {
    type Parser = TlsParser;

    fn name(&self) -> &'static str {
        "tls"
    }

    fn probe(&self, _ctx: &ParserContext, _side: FlowSide, data: &[u8]) -> Probe {
        probe_tls(data)
    }

    fn new_parser(&self, _ctx: &ParserContext) -> TlsParser {
        TlsParser::new(self.config)
    }
}
