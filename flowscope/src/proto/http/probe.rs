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

/// Shortest and longest extension method the probe accepts: registered
/// methods have 3 (`GET`, `PUT`, `ACL`) to 16 (`BASELINE-CONTROL`)
/// characters. The floor matters because the driver may probe a stream's
/// later chunks: `T /x` there is the tail of a request cut by a
/// conflicting overlap, not a method `T`.
const EXTENSION_METHOD_LEN: std::ops::RangeInclusive<usize> = 3..=24;

/// The stronger of two verdicts (`Match` > `NeedMore` > `NoMatch`).
fn either(a: Probe, b: Probe) -> Probe {
    match (a, b) {
        (Probe::Match, _) | (_, Probe::Match) => Probe::Match,
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        _ => Probe::NoMatch,
    }
}

/// A known method ended by a line break instead of a space (`OPTIONS\r\n`,
/// a request line with no target): malformed, yet an HTTP attempt that
/// servers answer and tshark dissects; Zeek's HTTP DPD signature likewise
/// allows any whitespace after the method. The parser reads it with
/// `http.invalid_request_line`.
fn probe_bare_method(data: &[u8]) -> Probe {
    let mut verdict = Probe::NoMatch;
    for m in METHODS {
        let name = m.strip_suffix(b" ").unwrap_or(m);
        match against(data, name) {
            Probe::Match => match data.get(name.len()) {
                None => verdict = either(verdict, Probe::NeedMore),
                Some(b'\r' | b'\n') => return Probe::Match,
                Some(_) => {}
            },
            other => verdict = either(verdict, other),
        }
    }
    verdict
}

/// An extension method (RFC 9110 §9.1: any token; by convention upper
/// case, as the probe requires) followed by a space and the start of a
/// request target in origin form (`/`), asterisk form (`*`) or absolute
/// form (`http://`), RFC 9112 §3.2. The target's first character keeps
/// word-and-space protocols (`EHLO host`, `USER name`) out.
fn probe_extension_method(data: &[u8]) -> Probe {
    let token = data
        .iter()
        .take_while(|&&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        .count();
    if data.first().is_some_and(|b| !b.is_ascii_uppercase()) || token > *EXTENSION_METHOD_LEN.end()
    {
        return Probe::NoMatch;
    }
    match data.get(token) {
        None => Probe::NeedMore,
        Some(b' ') if EXTENSION_METHOD_LEN.contains(&token) => {
            let target = data.get(token + 1..).unwrap_or(&[]);
            match target.first() {
                None => Probe::NeedMore,
                Some(b'/' | b'*') => Probe::Match,
                Some(_) => against(target, b"http://"),
            }
        }
        Some(_) => Probe::NoMatch,
    }
}

/// Does `data` start a request: a known method and a space, a known
/// method alone on its line, or an extension method and a request target?
pub(crate) fn probe_request(data: &[u8]) -> Probe {
    let mut verdict = Probe::NoMatch;
    for m in METHODS {
        match against(data, m) {
            // CONNECT's target is an authority (RFC 9110 §9.3.6: host:port);
            // NATS clients open with `CONNECT {json}`, which is not HTTP.
            Probe::Match if *m == b"CONNECT " => match data.get(m.len()) {
                None => verdict = Probe::NeedMore,
                Some(b) if b.is_ascii_alphanumeric() || *b == b'[' => return Probe::Match,
                Some(_) => {}
            },
            Probe::Match => return Probe::Match,
            Probe::NeedMore => verdict = Probe::NeedMore,
            Probe::NoMatch => {}
        }
    }
    let verdict = either(verdict, probe_bare_method(data));
    either(verdict, probe_extension_method(data))
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

    /// [`Probe::Match`] when the initiator starts a request line (a known
    /// method and a space or a line break, or an upper-case extension
    /// method, a space and `/`, `*` or `http://`), or the responder with
    /// `HTTP/1.`; [`Probe::NeedMore`] while
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
