//! The per-flow [`TlsParser`] and its configuration.

use flowscope_core::{Emit, FlowSide, SessionParser, Timestamp};

use super::record::{Shared, Side};
use super::TlsMessage;

/// Limits of a [`TlsParser`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Largest handshake message (or SSLv2 record) reassembled per side;
    /// a larger one is reported (`tls.handshake_too_large`) and that side's
    /// handshake is no longer parsed. Default 64 KiB.
    pub max_handshake_bytes: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            max_handshake_bytes: 64 * 1024,
        }
    }
}

impl TlsConfig {
    /// Sets [`TlsConfig::max_handshake_bytes`].
    pub fn with_max_handshake_bytes(mut self, n: usize) -> Self {
        self.max_handshake_bytes = n;
        self
    }
}

/// Parses the handshake of one TLS connection.
///
/// Emits [`TlsMessage::ClientHello`] and [`TlsMessage::ServerHello`] for
/// every hello (a second ClientHello after a HelloRetryRequest too) and
/// [`TlsMessage::Certificates`] for a chain sent in the clear. Memory is
/// bounded by [`TlsConfig::max_handshake_bytes`] per side; encrypted
/// records are skipped by their headers without being buffered.
#[derive(Debug)]
pub struct TlsParser {
    config: TlsConfig,
    initiator: Side,
    responder: Side,
    tls13: bool,
}

impl TlsParser {
    /// A parser with these limits.
    pub fn new(config: TlsConfig) -> Self {
        TlsParser {
            config,
            initiator: Side::default(),
            responder: Side::default(),
            tls13: false,
        }
    }

    /// Handshake bytes held for reassembly right now, both sides.
    pub fn buffered_bytes(&self) -> usize {
        self.initiator.buffered() + self.responder.buffered()
    }
}

impl Default for TlsParser {
    fn default() -> Self {
        TlsParser::new(TlsConfig::default())
    }
}

impl SessionParser for TlsParser {
    type Message = TlsMessage;

    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, TlsMessage>,
    ) {
        let st = match side {
            FlowSide::Initiator => &mut self.initiator,
            FlowSide::Responder => &mut self.responder,
        };
        let mut sh = Shared {
            cap: self.config.max_handshake_bytes,
            tls13: &mut self.tls13,
            side,
            ts,
            out,
        };
        st.feed(data, &mut sh);
    }

    fn on_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        _ts: Timestamp,
        _out: &mut Emit<'_, TlsMessage>,
    ) {
        match side {
            FlowSide::Initiator => self.initiator.gap(len),
            FlowSide::Responder => self.responder.gap(len),
        }
    }

    fn is_poisoned(&self) -> bool {
        self.initiator.is_stopped() && self.responder.is_stopped()
    }

    /// Both sides' handshake reassembly buffers (capacity).
    fn memory_used(&self) -> usize {
        self.initiator
            .heap_bytes()
            .saturating_add(self.responder.heap_bytes())
    }
}
