//! [`LenProtoMessage`]: what the parser reports for each complete frame.

use flowscope_core::{FlowSide, Timestamp};

use crate::frame::{KIND_BYE, KIND_DATA, KIND_HELLO};

/// One complete frame of a known kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LenProtoMessage {
    /// The side that sent it.
    pub side: FlowSide,
    /// Capture time of the bytes that completed the frame: its last byte,
    /// or its header when the body is empty, or the gap that skipped the
    /// rest of its body.
    pub ts: Timestamp,
    /// The body length from the header.
    pub body_len: u16,
    /// The kind, with what the parser keeps of the body.
    pub kind: MessageKind,
}

/// A frame's kind and the body fields kept for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// A hello: the session's opening frame.
    Hello {
        /// The client name from the body (decoded lossily when the body was
        /// not UTF-8, with a [`BAD_CLIENT_NAME`](crate::anomalies::BAD_CLIENT_NAME) anomaly).
        client_name: String,
    },
    /// A data frame (its body is not kept).
    Data,
    /// A bye frame (its body is not kept).
    Bye,
}

impl MessageKind {
    /// The kind byte on the wire.
    pub const fn code(&self) -> u8 {
        match self {
            MessageKind::Hello { .. } => KIND_HELLO,
            MessageKind::Data => KIND_DATA,
            MessageKind::Bye => KIND_BYE,
        }
    }
}
