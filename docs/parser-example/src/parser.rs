//! [`LenProtoParser`]: the per-flow state machine that turns each side's
//! byte stream into [`LenProtoMessage`]s.
//!
//! Each side has its own [`SideState`]: where it is inside the current frame
//! and, for a hello, the name bytes so far. Segment boundaries mean nothing
//! to it: a frame may arrive one byte per call, or many frames in one call.

use flowscope_core::{Anomaly, Emit, FlowSide, SessionEvent, SessionParser, Timestamp};

use crate::anomalies;
use crate::config::LenProtoConfig;
use crate::frame::{FrameHeader, Kind, HEADER_LEN, VERSION};
use crate::message::{LenProtoMessage, MessageKind};

/// A LenProto parser for one flow.
///
/// Memory: at most `max_body` bytes per side for a hello body being
/// collected, plus up to three header bytes per side. Data, bye and unknown
/// bodies are counted past, never stored. One allocation per hello (its
/// name, which the message then owns); none otherwise.
#[derive(Debug)]
pub struct LenProtoParser {
    max_body: u16,
    initiator: SideState,
    responder: SideState,
    poisoned: bool,
}

impl LenProtoParser {
    /// A parser with the limits of `config`, waiting for the first frame on
    /// each side.
    pub fn new(config: LenProtoConfig) -> Self {
        LenProtoParser {
            max_body: config.max_body,
            initiator: SideState::new(),
            responder: SideState::new(),
            poisoned: false,
        }
    }

    /// Bytes held for unfinished frames, both sides: header bytes received
    /// so far plus the space reserved for a hello body being collected.
    /// Never more than `2 × (max_body + HEADER_LEN)`.
    pub fn buffered_bytes(&self) -> usize {
        self.initiator
            .buffered_bytes()
            .saturating_add(self.responder.buffered_bytes())
    }

    fn side_mut(&mut self, side: FlowSide) -> &mut SideState {
        match side {
            FlowSide::Initiator => &mut self.initiator,
            FlowSide::Responder => &mut self.responder,
        }
    }

    /// Reports why and gives up on the flow, freeing what both sides held:
    /// a poisoned parser keeps no memory.
    fn poison(&mut self, side: FlowSide, anomaly: Anomaly, out: &mut Emit<'_, LenProtoMessage>) {
        out(SessionEvent::Anomaly {
            side: Some(side),
            anomaly,
        });
        self.poisoned = true;
        self.initiator = SideState::new();
        self.responder = SideState::new();
    }
}

impl SessionParser for LenProtoParser {
    type Message = LenProtoMessage;

    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, LenProtoMessage>,
    ) {
        // The driver stops feeding a poisoned parser; this guard makes it
        // safe for any other caller that does not.
        if self.poisoned {
            return;
        }
        let max_body = self.max_body;
        if let Err(anomaly) = self.side_mut(side).feed(side, data, ts, max_body, out) {
            self.poison(side, anomaly, out);
        }
    }

    /// A gap wholly inside a data, bye or unknown body costs nothing: the
    /// body is not kept and its end is known from the header, so the parser
    /// counts the missing bytes as received and stays in step. Any other
    /// gap poisons the parser (see [`anomalies::GAP`]): a header may have
    /// been lost, and with no magic number nothing in the bytes after the
    /// hole says where a frame starts. Guessing would turn body bytes into
    /// headers and report invented frames.
    fn on_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        ts: Timestamp,
        out: &mut Emit<'_, LenProtoMessage>,
    ) {
        if self.poisoned || len == 0 {
            return;
        }
        if let Err(anomaly) = self.side_mut(side).skip_gap(side, len, ts, out) {
            self.poison(side, anomaly, out);
        }
    }

    /// Reports [`anomalies::TRUNCATED`] for each side that stopped inside a
    /// frame (initiator first), and drops what it held.
    fn on_close(&mut self, _ts: Timestamp, out: &mut Emit<'_, LenProtoMessage>) {
        if self.poisoned {
            return;
        }
        for side in [FlowSide::Initiator, FlowSide::Responder] {
            let state = self.side_mut(side);
            if state.in_frame() {
                out(SessionEvent::Anomaly {
                    side: Some(side),
                    anomaly: anomalies::TRUNCATED,
                });
            }
            state.drop_frame();
        }
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

/// Where one side's stream is.
#[derive(Debug)]
struct SideState {
    phase: Phase,
    /// The body of the hello being collected (empty otherwise). Bounded:
    /// it is reserved for the header's length, itself at most `max_body`.
    name: Vec<u8>,
    /// True once this side sent a complete header (for the hello rules).
    started: bool,
}

/// Inside a header, or inside a body.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `have` header bytes received so far (0 ≤ have < HEADER_LEN).
    Header { buf: [u8; HEADER_LEN], have: usize },
    /// `remaining` body bytes still to come (> 0).
    Body { frame: Frame, remaining: u16 },
}

/// Between frames.
const IDLE: Phase = Phase::Header {
    buf: [0; HEADER_LEN],
    have: 0,
};

/// A frame whose header was accepted.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// `None` for a kind this parser does not know (skipped).
    kind: Option<Kind>,
    body_len: u16,
}

impl SideState {
    const fn new() -> Self {
        SideState {
            phase: IDLE,
            name: Vec::new(),
            started: false,
        }
    }

    fn buffered_bytes(&self) -> usize {
        let header = match self.phase {
            Phase::Header { have, .. } => have,
            Phase::Body { .. } => 0,
        };
        header.saturating_add(self.name.capacity())
    }

    fn in_frame(&self) -> bool {
        !matches!(self.phase, Phase::Header { have: 0, .. })
    }

    fn drop_frame(&mut self) {
        self.phase = IDLE;
        self.name = Vec::new();
    }

    /// Consumes `data` whole. `Err` is the anomaly that poisons the parser.
    fn feed(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        max_body: u16,
        out: &mut Emit<'_, LenProtoMessage>,
    ) -> Result<(), Anomaly> {
        let mut rest = data;
        while !rest.is_empty() {
            match self.phase {
                Phase::Header { mut buf, have } => {
                    let (head, tail) = split_prefix(rest, HEADER_LEN.saturating_sub(have));
                    rest = tail;
                    // zip stops at the shorter side: no index can be out of range.
                    for (dst, src) in buf.iter_mut().skip(have).zip(head) {
                        *dst = *src;
                    }
                    let have = have.saturating_add(head.len());
                    if have < HEADER_LEN {
                        self.phase = Phase::Header { buf, have };
                    } else {
                        self.start_frame(side, FrameHeader::decode(buf), ts, max_body, out)?;
                    }
                }
                Phase::Body { frame, remaining } => {
                    let (head, tail) = split_prefix(rest, usize::from(remaining));
                    rest = tail;
                    if frame.kind == Some(Kind::Hello) {
                        // Within the reservation: head.len() ≤ remaining.
                        self.name.extend_from_slice(head);
                    }
                    let taken = u16::try_from(head.len()).unwrap_or(remaining);
                    self.advance_body(side, frame, remaining, taken, ts, out);
                }
            }
        }
        Ok(())
    }

    /// Checks a complete header and enters its body (or finishes the frame
    /// at once when the body is empty). Limits are checked here, before a
    /// single body byte is stored.
    fn start_frame(
        &mut self,
        side: FlowSide,
        header: FrameHeader,
        ts: Timestamp,
        max_body: u16,
        out: &mut Emit<'_, LenProtoMessage>,
    ) -> Result<(), Anomaly> {
        if header.version != VERSION {
            return Err(anomalies::BAD_VERSION);
        }
        if header.body_len > max_body {
            return Err(anomalies::FRAME_TOO_LONG);
        }
        let kind = Kind::from_code(header.kind);
        let first = !self.started;
        self.started = true;
        let mut report = |anomaly| {
            out(SessionEvent::Anomaly {
                side: Some(side),
                anomaly,
            })
        };
        if side == FlowSide::Initiator && first && kind != Some(Kind::Hello) {
            report(anomalies::MISSING_HELLO);
        }
        if kind == Some(Kind::Hello) && (side == FlowSide::Responder || !first) {
            report(anomalies::UNEXPECTED_HELLO);
        }
        if kind.is_none() {
            report(anomalies::UNKNOWN_KIND);
        }
        if kind == Some(Kind::Hello) {
            self.name.clear();
            // Exactly the body: capacity stays within max_body.
            self.name.reserve_exact(usize::from(header.body_len));
        }
        let frame = Frame {
            kind,
            body_len: header.body_len,
        };
        self.phase = IDLE;
        if header.body_len == 0 {
            self.finish(side, frame, ts, out);
        } else {
            self.phase = Phase::Body {
                frame,
                remaining: header.body_len,
            };
        }
        Ok(())
    }

    /// `taken` (≤ `remaining`) more body bytes are accounted for.
    fn advance_body(
        &mut self,
        side: FlowSide,
        frame: Frame,
        remaining: u16,
        taken: u16,
        ts: Timestamp,
        out: &mut Emit<'_, LenProtoMessage>,
    ) {
        let left = remaining.saturating_sub(taken);
        if left == 0 {
            self.phase = IDLE;
            self.finish(side, frame, ts, out);
        } else {
            self.phase = Phase::Body {
                frame,
                remaining: left,
            };
        }
    }

    /// Skips `len` lost bytes if that keeps the framing, else `Err(GAP)`.
    fn skip_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        ts: Timestamp,
        out: &mut Emit<'_, LenProtoMessage>,
    ) -> Result<(), Anomaly> {
        match self.phase {
            Phase::Body { frame, remaining }
                if frame.kind != Some(Kind::Hello) && len <= u64::from(remaining) =>
            {
                let taken = u16::try_from(len).unwrap_or(remaining);
                self.advance_body(side, frame, remaining, taken, ts, out);
                Ok(())
            }
            _ => Err(anomalies::GAP),
        }
    }

    /// Reports a complete frame (nothing for an unknown kind).
    fn finish(
        &mut self,
        side: FlowSide,
        frame: Frame,
        ts: Timestamp,
        out: &mut Emit<'_, LenProtoMessage>,
    ) {
        let kind = match frame.kind {
            None => return,
            Some(Kind::Data) => MessageKind::Data,
            Some(Kind::Bye) => MessageKind::Bye,
            Some(Kind::Hello) => {
                // The buffer becomes the message's String: no copy, and the
                // side holds nothing until the next hello.
                let bytes = core::mem::take(&mut self.name);
                let client_name = match String::from_utf8(bytes) {
                    Ok(name) => name,
                    Err(e) => {
                        out(SessionEvent::Anomaly {
                            side: Some(side),
                            anomaly: anomalies::BAD_CLIENT_NAME,
                        });
                        String::from_utf8_lossy(e.as_bytes()).into_owned()
                    }
                };
                MessageKind::Hello { client_name }
            }
        };
        out(SessionEvent::Message(LenProtoMessage {
            side,
            ts,
            body_len: frame.body_len,
            kind,
        }));
    }
}

/// `data` cut after at most `n` bytes, without a way to panic.
fn split_prefix(data: &[u8], n: usize) -> (&[u8], &[u8]) {
    data.split_at_checked(n.min(data.len()))
        .unwrap_or((data, &[]))
}

#[cfg(test)]
mod tests;
