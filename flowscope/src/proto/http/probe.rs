//! Recognising HTTP/1.x from a stream's first bytes, and the factory.

use flowscope_core::{FlowSide, ParserContext, Probe, SessionParserFactory};

use super::message::HttpConfig;
use super::parser::HttpParser;

/// Request methods recognised at the start of the initiator's stream, each
/// followed by the space that ends the token: RFC 9110 §9, PATCH (RFC 5789)
/// and WebDAV / DeltaV / CalDAV extensions (RFC 4918, 3253, 4791, 5323, 3648),
/// plus a few widespread non-standard ones (PURGE, SSDP's M-SEARCH/NOTIFY).
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"TRACE ",
    b"PATCH ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"SEARCH ",
    b"REPORT ",
    b"MKACTIVITY ",
    b"CHECKOUT ",
    b"CHECKIN ",
    b"MERGE ",
    b"UPDATE ",
    b"LABEL ",
    b"VERSION-CONTROL ",
    b"UNCHECKOUT ",
    b"MKWORKSPACE ",
    b"BASELINE-CONTROL ",
    b"MKCALENDAR ",
    b"ACL ",
    b"ORDERPATCH ",
    b"BIND ",
    b"UNBIND ",
    b"REBIND ",
    b"PURGE ",
    b"M-SEARCH ",
    b"NOTIFY ",
    b"SUBSCRIBE ",
    b"UNSUBSCRIBE ",
];

/// What a response starts with.
const RESPONSE_PREFIX: &[u8] = b"HTTP/1.";

/// Compares `data` with one pattern: a full match, a strict prefix of it,
/// or neither.
fn against(data: &[u8], pattern: &[u8]) -> Probe {
    if data.len() >= pattern.len() {
        if data.get(..pattern.len()) == Some(pattern) {
            Probe::Match
        } else {
            Probe::NoMatch
        }
    } else if pattern.get(..data.len()) == Some(data) {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

/// Does `data` start a request (`METHOD `)?
pub(crate) fn probe_request(data: &[u8]) -> Probe {
    let mut verdict = Probe::NoMatch;
    for m in METHODS {
        match against(data, m) {
            Probe::Match => return Probe::Match,
            Probe::NeedMore => verdict = Probe::NeedMore,
            Probe::NoMatch => {}
        }
    }
    verdict
}

/// Does `data` start a response (`HTTP/1.`)?
pub(crate) fn probe_response(data: &[u8]) -> Probe {
    against(data, RESPONSE_PREFIX)
}

/// Makes [`HttpParser`]s for flows whose first bytes look like HTTP/1.x,
/// on any port.
#[derive(Clone, Debug, Default)]
pub struct HttpParserFactory {
    config: HttpConfig,
}

impl HttpParserFactory {
    /// A factory whose parsers use `config`.
    pub fn new(config: HttpConfig) -> Self {
        HttpParserFactory { config }
    }

    /// The limits its parsers use.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }
}

impl SessionParserFactory for HttpParserFactory {
    type Parser = HttpParser;

    fn name(&self) -> &'static str {
        "http"
    }

    /// [`Probe::Match`] when the initiator starts with a known method and a
    /// space, or the responder with `HTTP/1.`; [`Probe::NeedMore`] while
    /// the bytes so far are a prefix of one of those (nothing at all
    /// included); else [`Probe::NoMatch`]. Ports are not looked at.
    fn probe(&self, _ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe {
        match side {
            FlowSide::Initiator => probe_request(data),
            FlowSide::Responder => probe_response(data),
        }
    }

    fn new_parser(&self, _ctx: &ParserContext) -> HttpParser {
        HttpParser::new(self.config.clone())
    }
}
