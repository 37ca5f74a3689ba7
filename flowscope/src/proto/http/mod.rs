//! HTTP/1.x: requests and responses paired into transactions.
//!
//! [`HttpParserFactory`] recognises a flow from its first bytes (a method
//! token from the initiator, `HTTP/1.` from the responder) on any port and
//! makes one [`HttpParser`] per flow, which emits [`HttpTransaction`]s.
//!
//! Data flow inside the parser, one side at a time:
//! - `head`: start line and header block, parsed with httparse (strictly,
//!   then leniently with an anomaly when the strict parse fails), straight
//!   from the segment when it holds the whole head, else from a bounded
//!   per-side buffer;
//! - `body`: body framing (Content-Length, chunked, until close) counted
//!   byte by byte, nothing buffered;
//! - `parser`: pairing (FIFO, pipelining, 1xx interim responses, HEAD /
//!   204 / 304, protocol switches), gaps and the end of the flow.
//!
//! Anomaly codes it reports (all `SessionEvent::Anomaly`):
//! `http.ambiguous_framing` (both Content-Length and Transfer-Encoding),
//! `http.duplicate_content_length` (differing values),
//! `http.invalid_content_length`, `http.invalid_transfer_encoding`,
//! `http.invalid_header`, `http.invalid_request_line`,
//! `http.invalid_status_line`, `http.too_many_headers`,
//! `http.header_too_long`, `http.invalid_chunk_size`,
//! `http.chunk_line_too_long`, `http.chunk_missing_crlf`,
//! `http.unsolicited_response`, `http.too_many_pending`,
//! `http.gap_in_headers`, `http.gap_in_framing`, `http.truncated_body`,
//! `http.truncated_header`.

mod body;
mod head;
mod message;
mod parser;
mod probe;

pub use message::{HttpConfig, HttpRequest, HttpResponse, HttpTransaction};
pub use parser::HttpParser;
pub use probe::HttpParserFactory;

#[cfg(test)]
mod tests;
