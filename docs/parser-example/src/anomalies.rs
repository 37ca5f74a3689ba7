//! The anomaly codes LenProto reports, as [`Anomaly`] constants.
//!
//! Codes follow flowscope's `layer.snake_case` rule so that outputs and
//! counters can use them as they are. Each constant says what the parser
//! does after reporting it.

use flowscope_core::Anomaly;

/// A header declares a body longer than [`LenProtoConfig::max_body`](crate::LenProtoConfig).
/// The parser is poisoned: it will not buffer the body, and a length that
/// large more likely means the stream is not (or no longer) LenProto.
pub const FRAME_TOO_LONG: Anomaly = Anomaly::new("lenproto.frame_too_long");

/// A header's version byte is not 1. The parser is poisoned: the header
/// layout belongs to the version, so the length field cannot be trusted.
pub const BAD_VERSION: Anomaly = Anomaly::new("lenproto.bad_version");

/// Bytes were lost where the parser needed them to keep its place (a header,
/// a hello body, or more than the rest of the current body). The parser is
/// poisoned: without a magic number there is no way to find the next frame.
pub const GAP: Anomaly = Anomaly::new("lenproto.gap");

/// A frame's kind is not hello, data or bye. The frame is skipped by its
/// length and parsing goes on.
pub const UNKNOWN_KIND: Anomaly = Anomaly::new("lenproto.unknown_kind");

/// The flow ended in the middle of a frame (reported by `on_close`, once per
/// side with an unfinished frame).
pub const TRUNCATED: Anomaly = Anomaly::new("lenproto.truncated");

/// The initiator's first frame is not a hello. Parsing goes on.
pub const MISSING_HELLO: Anomaly = Anomaly::new("lenproto.missing_hello");

/// A hello from the responder, or a second hello from the initiator. The
/// hello is still reported as a message.
pub const UNEXPECTED_HELLO: Anomaly = Anomaly::new("lenproto.unexpected_hello");

/// A hello body is not valid UTF-8. The hello is still reported, its name
/// decoded lossily (each invalid sequence becomes U+FFFD).
pub const BAD_CLIENT_NAME: Anomaly = Anomaly::new("lenproto.bad_client_name");
