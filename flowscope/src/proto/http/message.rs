//! What the HTTP parser reports: requests and responses paired into
//! transactions, and the limits it runs under.

use flowscope_core::Timestamp;

/// Limits of one [`HttpParser`](super::HttpParser). Every buffer the parser
/// keeps is bounded by one of these, whatever the input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest header block (start line, headers, final empty line) buffered
    /// per side while it arrives in pieces; also bounds a chunk-size line and
    /// a chunked body's trailer section. Past it the flow is given up on
    /// (`http.header_too_long`). Default 16 KiB.
    pub max_header_bytes: usize,
    /// Headers copied into [`HttpRequest::headers`] / [`HttpResponse::headers`];
    /// later ones are still parsed (framing, well-known fields) but not kept.
    /// Default 64.
    pub max_headers_kept: usize,
    /// Requests waiting for their response (pipelining). When full, the
    /// oldest is emitted unanswered (`http.too_many_pending`). Default 64.
    pub max_pending_requests: usize,
    /// Interim (1xx) statuses kept per response. Default 8.
    pub max_interim: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_header_bytes: 16 * 1024,
            max_headers_kept: 64,
            max_pending_requests: 64,
            max_interim: 8,
        }
    }
}

/// One request head and how much body followed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// Capture time of the packet that carried the request line's first byte.
    pub ts: Timestamp,
    /// The method token as sent (`GET`, `PROPFIND` …).
    pub method: String,
    /// The request target as sent (origin form, absolute form, `*` …).
    pub uri: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// The first `Host` header.
    pub host: Option<String>,
    /// The first `User-Agent` header.
    pub user_agent: Option<String>,
    /// The first `Referer` header.
    pub referer: Option<String>,
    /// The first `Content-Type` header.
    pub content_type: Option<String>,
    /// The first `X-Forwarded-For` header.
    pub xff: Option<String>,
    /// Headers in order, at most [`HttpConfig::max_headers_kept`]; values
    /// that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// Body bytes after transfer decoding (chunk framing removed), counting
    /// bytes lost in capture gaps inside the body.
    pub body_len: u64,
    /// The `Content-Length` header's value (the first valid one), whether
    /// or not framing used it (chunked coding wins over it).
    pub content_length: Option<u64>,
    /// True when the body was chunked.
    pub chunked: bool,
}

/// One final response head and how much body followed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// Capture time of the packet that carried the status line's first byte.
    pub ts: Timestamp,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// The `Content-Length` header's value (the first valid one), whether
    /// or not framing used it.
    pub content_length: Option<u64>,
    /// The `Transfer-Encoding` header(s), joined with `, ` when repeated.
    pub transfer_encoding: Option<String>,
    /// The first `Content-Type` header.
    pub content_type: Option<String>,
    /// The first `Location` header.
    pub location: Option<String>,
    /// Headers in order, at most [`HttpConfig::max_headers_kept`].
    pub headers: Vec<(String, String)>,
    /// Body bytes after transfer decoding, counting bytes lost in gaps.
    pub body_len: u64,
    /// Interim (1xx) statuses that came before this response, in order
    /// (`100` for `100 Continue`), at most [`HttpConfig::max_interim`].
    pub interim: Vec<u16>,
}

/// A request paired with its response.
///
/// Either side may be missing: `response: None` for a request never
/// answered before the flow ended (or whose response was lost in a gap),
/// `request: None` for a response with no request seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpTransaction {
    /// The request.
    pub request: Option<HttpRequest>,
    /// Its final (non-1xx) response.
    pub response: Option<HttpResponse>,
}
