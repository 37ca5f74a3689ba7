//! Request and response heads (start line and header block): parsed with
//! httparse, strictly first and leniently when that fails, into the owned
//! message types plus the facts that decide body framing.

use flowscope_core::Timestamp;

use super::message::{HttpConfig, HttpRequest, HttpResponse};

/// Headers parsed per head; more is `http.too_many_headers`. On the stack
/// (about 4 KiB), so parsing allocates nothing until a head is complete.
pub(crate) const MAX_HEADERS: usize = 128;

/// The outcome of parsing a head from the start of a buffer.
pub(crate) enum Head<T> {
    /// A whole head, and its length in bytes.
    Complete(T, usize),
    /// The head goes on past the buffer.
    Partial,
    /// Not a head: the anomaly code saying why.
    Invalid(&'static str),
}

/// A `Content-Length` as the headers gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LengthHeader {
    /// None sent.
    Absent,
    /// A valid length (the first one, when several differed).
    Value(u64),
    /// Not a decimal number.
    Invalid,
}

/// What `Transfer-Encoding` says about framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No `Transfer-Encoding`.
    Absent,
    /// `chunked` is the final coding.
    Chunked,
    /// A coding list whose final coding is not `chunked`.
    Other,
}

/// Header facts that decide how a body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    pub length: LengthHeader,
    pub coding: Coding,
    /// An `Upgrade` header was sent.
    pub upgrade: bool,
}

/// A parsed request head. Parsed with `full == false`, `req` only has its
/// `ts` (nothing is copied out of the head: no allocation); the method's
/// kind is known either way.
pub(crate) struct RequestHead {
    pub req: HttpRequest,
    pub framing: Framing,
    /// The method is `CONNECT`.
    pub connect: bool,
    /// The method is `HEAD`.
    pub head_method: bool,
}

/// A parsed response head (`resp` only has `ts` and `status` when parsed
/// with `full == false`).
pub(crate) struct ResponseHead {
    pub resp: HttpResponse,
    pub framing: Framing,
}

fn version_str(minor: Option<u8>) -> &'static str {
    match minor {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn error_code(e: httparse::Error, request: bool) -> &'static str {
    match e {
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            "http.invalid_header"
        }
        httparse::Error::TooManyHeaders => "http.too_many_headers",
        _ if request => "http.invalid_request_line",
        _ => "http.invalid_status_line",
    }
}

fn lenient_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_space_before_first_header_name(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parses a request head at the start of `buf`. Anomalies of a complete
/// head go to `anomaly`. With `full`, the head's fields are copied into
/// the owned [`HttpRequest`]; without, only framing and the method's kind
/// are found (the parser keeps the head's bytes and builds the message
/// when it is emitted).
pub(crate) fn parse_request(
    buf: &[u8],
    ts: Timestamp,
    cfg: &HttpConfig,
    full: bool,
    anomaly: &mut dyn FnMut(&'static str),
) -> Head<RequestHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => build_request(&req, n, ts, cfg, full, anomaly),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(strict) => {
            // A fresh header array: the strict pass may have filled some.
            let mut headers2 = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req2 = httparse::Request::new(&mut headers2);
            match lenient_config().parse_request(&mut req2, buf) {
                Ok(httparse::Status::Complete(n)) => {
                    anomaly(error_code(strict, true));
                    build_request(&req2, n, ts, cfg, full, anomaly)
                }
                Ok(httparse::Status::Partial) => Head::Partial,
                Err(httparse::Error::Token | httparse::Error::Version) => {
                    parse_request_loose(buf, ts, cfg, full, anomaly)
                }
                Err(e) => Head::Invalid(error_code(e, true)),
            }
        }
    }
}

/// Is `b` a token character (RFC 9110 §5.6.2)?
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A request line httparse refuses (no version, a truncated version,
/// spaces inside the target …), as tshark and Zeek still read it: a token
/// method, then the target, then the last word as the version when it
/// starts with `HTTP/`. The header block must still be well formed.
/// Reported as `http.invalid_request_line`.
fn parse_request_loose(
    buf: &[u8],
    ts: Timestamp,
    cfg: &HttpConfig,
    full: bool,
    anomaly: &mut dyn FnMut(&'static str),
) -> Head<RequestHead> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let Some(body) = buf.get(start..) else {
        return Head::Partial;
    };
    let Some(eol) = body.iter().position(|&b| b == b'\n') else {
        return Head::Partial;
    };
    let line = body.get(..eol).unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Head::Invalid("http.invalid_request_line");
    }
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let method = words.next().unwrap_or(&[]);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Head::Invalid("http.invalid_request_line");
    }
    // The last word is the version when it starts with `HTTP/` and a
    // target precedes it; the words between are the target. Counted, not
    // collected: nothing is allocated before the head is known complete.
    let n_rest = words.clone().count();
    let last = words.clone().next_back().unwrap_or(&[]);
    let (n_target, version): (usize, &[u8]) = if n_rest >= 2 && last.starts_with(b"HTTP/") {
        (n_rest - 1, last)
    } else {
        (n_rest, b"")
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let after = body.get(eol + 1..).unwrap_or(&[]);
    let (n, hs) = match httparse::parse_headers(after, &mut headers) {
        Ok(httparse::Status::Complete((n, hs))) => (n, hs),
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(e) => return Head::Invalid(error_code(e, true)),
    };
    anomaly("http.invalid_request_line");
    let connect = method.eq_ignore_ascii_case(b"CONNECT");
    let head_method = method.eq_ignore_ascii_case(b"HEAD");
    let used = start + eol + 1 + n;
    if !full {
        let framing = scan_headers(hs, cfg, None, anomaly, |_, _| {});
        let req = HttpRequest {
            ts,
            ..HttpRequest::default()
        };
        return Head::Complete(
            RequestHead {
                req,
                framing,
                connect,
                head_method,
            },
            used,
        );
    }
    let mut uri = Vec::new();
    for (i, w) in words.take(n_target).enumerate() {
        if i > 0 {
            uri.push(b' ');
        }
        uri.extend_from_slice(w);
    }
    let mut out = HttpRequest {
        ts,
        method: lossy(method),
        uri: lossy(&uri),
        version: lossy(version),
        ..HttpRequest::default()
    };
    let framing = request_fields(hs, cfg, &mut out, anomaly);
    Head::Complete(
        RequestHead {
            req: out,
            framing,
            connect,
            head_method,
        },
        used,
    )
}

fn build_request(
    req: &httparse::Request<'_, '_>,
    n: usize,
    ts: Timestamp,
    cfg: &HttpConfig,
    full: bool,
    anomaly: &mut dyn FnMut(&'static str),
) -> Head<RequestHead> {
    let (Some(method), Some(uri)) = (req.method, req.path) else {
        return Head::Invalid("http.invalid_request_line");
    };
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let head_method = method.eq_ignore_ascii_case("HEAD");
    if !full {
        let framing = scan_headers(req.headers, cfg, None, anomaly, |_, _| {});
        let req = HttpRequest {
            ts,
            ..HttpRequest::default()
        };
        return Head::Complete(
            RequestHead {
                req,
                framing,
                connect,
                head_method,
            },
            n,
        );
    }
    let mut out = HttpRequest {
        ts,
        method: method.to_owned(),
        uri: uri.to_owned(),
        version: version_str(req.version).to_owned(),
        ..HttpRequest::default()
    };
    let framing = request_fields(req.headers, cfg, &mut out, anomaly);
    Head::Complete(
        RequestHead {
            req: out,
            framing,
            connect,
            head_method,
        },
        n,
    )
}

/// Fills the request's header fields; returns the framing.
fn request_fields(
    headers: &[httparse::Header<'_>],
    cfg: &HttpConfig,
    out: &mut HttpRequest,
    anomaly: &mut dyn FnMut(&'static str),
) -> Framing {
    scan_headers(
        headers,
        cfg,
        Some(&mut out.headers),
        anomaly,
        |name, value| {
            let slot = if name.eq_ignore_ascii_case("host") {
                &mut out.host
            } else if name.eq_ignore_ascii_case("user-agent") {
                &mut out.user_agent
            } else if name.eq_ignore_ascii_case("referer") {
                &mut out.referer
            } else if name.eq_ignore_ascii_case("content-type") {
                &mut out.content_type
            } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                &mut out.xff
            } else {
                return;
            };
            if slot.is_none() {
                *slot = Some(lossy(value));
            }
        },
    )
}

/// Parses a response head at the start of `buf`.
pub(crate) fn parse_response(
    buf: &[u8],
    ts: Timestamp,
    cfg: &HttpConfig,
    full: bool,
    anomaly: &mut dyn FnMut(&'static str),
) -> Head<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => build_response(&resp, n, ts, cfg, full, anomaly),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(strict) => {
            // A fresh header array: the strict pass may have filled some.
            let mut headers2 = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp2 = httparse::Response::new(&mut headers2);
            match lenient_config().parse_response(&mut resp2, buf) {
                Ok(httparse::Status::Complete(n)) => {
                    anomaly(error_code(strict, false));
                    build_response(&resp2, n, ts, cfg, full, anomaly)
                }
                Ok(httparse::Status::Partial) => Head::Partial,
                Err(e) => Head::Invalid(error_code(e, false)),
            }
        }
    }
}

fn build_response(
    resp: &httparse::Response<'_, '_>,
    n: usize,
    ts: Timestamp,
    cfg: &HttpConfig,
    full: bool,
    anomaly: &mut dyn FnMut(&'static str),
) -> Head<ResponseHead> {
    let Some(status) = resp.code else {
        return Head::Invalid("http.invalid_status_line");
    };
    if !full {
        let framing = scan_headers(resp.headers, cfg, None, anomaly, |_, _| {});
        let resp = HttpResponse {
            ts,
            status,
            ..HttpResponse::default()
        };
        return Head::Complete(ResponseHead { resp, framing }, n);
    }
    let mut out = HttpResponse {
        ts,
        version: version_str(resp.version).to_owned(),
        status,
        reason: resp.reason.unwrap_or("").to_owned(),
        ..HttpResponse::default()
    };
    let mut te: Option<String> = None;
    let framing = scan_headers(
        resp.headers,
        cfg,
        Some(&mut out.headers),
        anomaly,
        |name, value| {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                let v = lossy(value);
                match te.as_mut() {
                    Some(t) => {
                        t.push_str(", ");
                        t.push_str(&v);
                    }
                    None => te = Some(v),
                }
                return;
            }
            let slot = if name.eq_ignore_ascii_case("content-type") {
                &mut out.content_type
            } else if name.eq_ignore_ascii_case("location") {
                &mut out.location
            } else {
                return;
            };
            if slot.is_none() {
                *slot = Some(lossy(value));
            }
        },
    );
    out.transfer_encoding = te;
    Head::Complete(ResponseHead { resp: out, framing }, n)
}

fn lossy(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Walks the headers once: keeps the first `max_headers_kept` (when
/// `kept` is given), hands each to `field`, and works out the framing
/// (RFC 9112 §6).
fn scan_headers(
    headers: &[httparse::Header<'_>],
    cfg: &HttpConfig,
    mut kept: Option<&mut Vec<(String, String)>>,
    anomaly: &mut dyn FnMut(&'static str),
    mut field: impl FnMut(&str, &[u8]),
) -> Framing {
    let mut length = LengthHeader::Absent;
    let mut differing_lengths = false;
    let mut te_seen = false;
    let mut last_coding_chunked = false;
    let mut upgrade = false;
    if let Some(k) = kept.as_deref_mut() {
        // One allocation for the list, not one per doubling.
        k.reserve_exact(headers.len().min(cfg.max_headers_kept));
    }
    for h in headers {
        if let Some(k) = kept.as_deref_mut() {
            if k.len() < cfg.max_headers_kept {
                k.push((h.name.to_owned(), lossy(h.value)));
            }
        }
        field(h.name, h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            // A list of equal values ("5, 5") is accepted (RFC 9110 §8.6).
            for part in h.value.split(|&b| b == b',') {
                match (parse_decimal(trim_ows(part)), length) {
                    (None, _) => length = LengthHeader::Invalid,
                    (Some(v), LengthHeader::Absent) => length = LengthHeader::Value(v),
                    (Some(v), LengthHeader::Value(first)) if v != first => differing_lengths = true,
                    _ => {}
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            // Only the final coding matters for framing (RFC 9112 §6.3).
            for part in h.value.split(|&b| b == b',') {
                let c = trim_ows(part);
                if !c.is_empty() {
                    last_coding_chunked = c.eq_ignore_ascii_case(b"chunked");
                }
            }
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if differing_lengths {
        anomaly("http.duplicate_content_length");
    }
    if length == LengthHeader::Invalid {
        anomaly("http.invalid_content_length");
    }
    if te_seen && length != LengthHeader::Absent {
        anomaly("http.ambiguous_framing");
    }
    let coding = match (te_seen, last_coding_chunked) {
        (false, _) => Coding::Absent,
        (true, true) => Coding::Chunked,
        (true, false) => Coding::Other,
    };
    Framing {
        length,
        coding,
        upgrade,
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A non-empty run of ASCII digits that fits in a `u64`.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_rejects_signs_and_overflow() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"+5"), None);
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"0x10"), None);
    }

    #[test]
    fn ows_trimmed_both_ends() {
        assert_eq!(trim_ows(b" \t5 \t"), b"5");
        assert_eq!(trim_ows(b"   "), b"");
    }
}
