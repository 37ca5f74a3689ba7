//! # flowscope-example-lenproto
//!
//! A complete third-party flowscope parser, written against `flowscope-core`
//! alone: the worked example of `docs/parser-guide.md`.
//!
//! ## The LenProto protocol
//!
//! LenProto is a small length-prefixed binary protocol over TCP (any port).
//! Each side's byte stream is a sequence of frames; a frame is a 4-byte
//! header followed by the body:
//!
//! ```text
//!  0        1        2                 4
//! +--------+--------+--------+--------+-------- … --------+
//! |version |  kind  |  body length    |  body (length B)  |
//! |  = 1   |        | (big-endian u16)|                   |
//! +--------+--------+--------+--------+-------- … --------+
//! ```
//!
//! - `version` must be 1. The header layout belongs to the version, so under
//!   any other version the length field cannot be trusted.
//! - `kind`: 1 = hello, 2 = data, 3 = bye. Other kinds are unknown to this
//!   parser; their bodies are skipped by length.
//! - The header has no magic number and no checksum: nothing in a frame
//!   marks where it starts. Framing exists only by counting lengths from the
//!   first byte of the stream.
//! - A session starts with a hello from the initiator; a hello body is the
//!   client's name in UTF-8. Data and bye bodies are opaque.
//!
//! ## What this crate reports
//!
//! [`LenProtoFactory`] recognises the protocol from the initiator's first
//! bytes (a valid hello header); [`LenProtoParser`] turns each side's stream
//! into [`LenProtoMessage`]s (side, capture time, kind, body length, and the
//! client name of a hello). Everything unusual is an [`anomalies`] code.
//! Memory is bounded by [`LenProtoConfig::max_body`] per side, and no input
//! makes it panic.
//!
//! ```
//! use flowscope_core::{
//!     FlowSide, L4Proto, ParserContext, Probe, SessionEvent, SessionParser,
//!     SessionParserFactory, Timestamp,
//! };
//! use flowscope_example_lenproto::{LenProtoFactory, MessageKind};
//!
//! // hello "cli", then a data frame with a 2-byte body.
//! let stream = [1, 1, 0, 3, b'c', b'l', b'i', 1, 2, 0, 2, 0xAB, 0xCD];
//! let factory = LenProtoFactory::default();
//! let ctx = ParserContext::new(L4Proto::Tcp, 50000, 7000);
//! assert_eq!(factory.probe(&ctx, FlowSide::Initiator, &stream), Probe::Match);
//!
//! let mut parser = factory.new_parser(&ctx);
//! let mut events = Vec::new();
//! let ts = Timestamp::from_secs_nanos(1_700_000_000, 0);
//! parser.on_data(FlowSide::Initiator, &stream, ts, &mut |e| events.push(e));
//!
//! assert_eq!(events.len(), 2);
//! let SessionEvent::Message(hello) = &events[0] else { panic!("{events:?}") };
//! assert_eq!(hello.kind, MessageKind::Hello { client_name: "cli".to_owned() });
//! let SessionEvent::Message(data) = &events[1] else { panic!("{events:?}") };
//! assert_eq!((data.kind.code(), data.body_len), (2, 2));
//! ```
#![forbid(unsafe_code)]
// Packet bytes are hostile: every failure is a reported anomaly, never a
// panic. Indexing, slicing and unchecked arithmetic are the usual ways a
// parser panics without writing `unwrap`, so they are denied too.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unreachable,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![warn(missing_docs)]

pub mod anomalies;
mod config;
mod factory;
mod frame;
mod message;
mod parser;

pub use config::LenProtoConfig;
pub use factory::LenProtoFactory;
pub use frame::{HEADER_LEN, KIND_BYE, KIND_DATA, KIND_HELLO, VERSION};
pub use message::{LenProtoMessage, MessageKind};
pub use parser::LenProtoParser;
