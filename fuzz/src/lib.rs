//! Shared input decoding for flowscope's fuzz targets.
//!
//! Every target reads its input with [`Input`], a cursor that never fails:
//! reads past the end give zeros or short slices, so any byte string is a
//! valid input and the fuzzer spends its time in the library, not in
//! rejected inputs. The record layouts below are what `cargo xtask fuzz`
//! writes as seeds (`xtask/src/fuzz/seeds.rs` mirrors them; keep the two in
//! step).
//!
//! - Frame sequences (`tracker`, `session_driver`): one config byte, then
//!   records `[link selector u8][time step u16 LE][frame length u16 LE][frame]`.
//!   The link selector indexes [`LINK_TYPES`] (modulo its length); the time
//!   step is in units of 10 ms forwards, or backwards when its top bit is set.
//! - Chunk sequences (`http`, `tls`, `dns`): one config byte, then records
//!   `[tag u8][length u16 LE][bytes]`; see [`Chunk`].
//! - Single frames (`extract`): `[selector u8][frame]`, see [`frame_view`].

use core::time::Duration;

use flowscope_core::{FlowSide, LinkType, PacketView, Timestamp};

/// Every link type the extractor reads, then one it does not (to cover the
/// `UnsupportedLinkType` path). The order is part of the seed format.
pub const LINK_TYPES: [LinkType; 13] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::PPP,
    LinkType::C_HDLC,
    LinkType(147), // DLT_USER0: not read by the extractor
];

/// The link type a selector byte picks.
pub fn link_type(selector: u8) -> LinkType {
    LINK_TYPES
        .get(usize::from(selector) % LINK_TYPES.len())
        .copied()
        .unwrap_or(LinkType::ETHERNET)
}

/// A cursor over the fuzz input that never fails.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.first().copied().unwrap_or(0);
        self.data = self.data.get(1..).unwrap_or(&[]);
        b
    }

    /// The next little-endian u16 (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian u32 (missing bytes read as 0).
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// A single-frame input: selector byte (low nibble: link type index,
/// 0x10: verify checksums, 0x20: do not decapsulate tunnels, 0x40: the
/// frame was snapped, its wire length is larger), then the frame.
pub struct FrameInput<'a> {
    /// The frame as a packet.
    pub view: PacketView<'a>,
    /// Verify checksums.
    pub verify_checksums: bool,
    /// Unwrap tunnels.
    pub decap_tunnels: bool,
}

/// Decodes a single-frame input.
pub fn frame_view(data: &[u8]) -> FrameInput<'_> {
    let mut input = Input::new(data);
    let sel = input.u8();
    let frame = input.rest();
    let mut view = PacketView::new(
        frame,
        Timestamp::from_secs_nanos(1, 0),
        link_type(sel & 0x0f),
    );
    if sel & 0x40 != 0 {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        view = view.with_wire_len(len.saturating_add(100));
    }
    FrameInput {
        view,
        verify_checksums: sel & 0x10 != 0,
        decap_tunnels: sel & 0x20 == 0,
    }
}

/// One frame of a frame-sequence input.
pub struct Frame<'a> {
    /// Its link type.
    pub link: LinkType,
    /// Its capture time.
    pub ts: Timestamp,
    /// Its bytes.
    pub data: &'a [u8],
}

/// Splits a frame-sequence input (after its config byte) into frames,
/// with timestamps starting at 1 000 s.
pub struct Frames<'a> {
    input: Input<'a>,
    now: Timestamp,
}

impl<'a> Frames<'a> {
    /// The frames of `input`.
    pub fn new(input: Input<'a>) -> Self {
        Frames {
            input,
            now: Timestamp::from_secs_nanos(1000, 0),
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.input.is_empty() {
            return None;
        }
        let link = link_type(self.input.u8());
        let step = self.input.u16();
        let len = usize::from(self.input.u16());
        let data = self.input.bytes(len);
        let d = Duration::from_millis(u64::from(step & 0x7fff) * 10);
        self.now = if step & 0x8000 != 0 {
            self.now.saturating_sub(d)
        } else {
            self.now.saturating_add(d)
        };
        Some(Frame {
            link,
            ts: self.now,
            data,
        })
    }
}

/// One record of a chunk-sequence input.
#[derive(Clone, Copy, Debug)]
pub enum Chunk<'a> {
    /// Bytes sent by `side`.
    Data {
        /// The sender.
        side: FlowSide,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// `len` bytes of `side`'s stream are missing.
    Gap {
        /// Whose stream.
        side: FlowSide,
        /// How many bytes.
        len: u64,
    },
}

/// Splits a chunk-sequence input (after its config byte) into chunks.
///
/// Record: `[tag u8][length u16 LE][bytes]`. Tag bit 0 is the side
/// (0 initiator, 1 responder); when `tag & 0x0e == 0x0e` the record is a
/// gap of `length` bytes with no bytes following, else data of `length`
/// bytes (fewer at the end of the input). Seeds use tags 0 and 1.
pub struct Chunks<'a> {
    input: Input<'a>,
    /// Capture time of the current chunk (advances 1 ms per chunk).
    pub now: Timestamp,
}

impl<'a> Chunks<'a> {
    /// The chunks of `input`.
    pub fn new(input: Input<'a>) -> Self {
        Chunks {
            input,
            now: Timestamp::from_secs_nanos(1000, 0),
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        if self.input.is_empty() {
            return None;
        }
        let tag = self.input.u8();
        let len = self.input.u16();
        let side = if tag & 1 == 0 {
            FlowSide::Initiator
        } else {
            FlowSide::Responder
        };
        self.now = self.now.saturating_add(Duration::from_millis(1));
        if tag & 0x0e == 0x0e {
            return Some(Chunk::Gap {
                side,
                len: u64::from(len),
            });
        }
        Some(Chunk::Data {
            side,
            bytes: self.input.bytes(usize::from(len)),
        })
    }
}

/// Runs a stream parser made by `factory` over `chunks` the way the driver
/// does: probes each side's data (the probe must not panic whatever the
/// verdict), feeds in-order data and gaps until the parser is poisoned,
/// then closes it. `check` runs after every call with the parser;
/// `on_message` gets every message. Returns the number of messages.
pub fn run_stream<F>(
    factory: &F,
    ctx: &flowscope_core::ParserContext,
    chunks: Chunks<'_>,
    mut check: impl FnMut(&F::Parser),
    mut on_message: impl FnMut(<F::Parser as flowscope_core::SessionParser>::Message),
) -> u64
where
    F: flowscope_core::SessionParserFactory,
{
    use flowscope_core::{SessionEvent, SessionParser};
    let mut parser = factory.new_parser(ctx);
    let mut messages = 0u64;
    let mut closed = false;
    let mut now = Timestamp::ZERO;
    let mut chunks = chunks;
    let mut emit = |ev: SessionEvent<<F::Parser as SessionParser>::Message>| {
        // Nothing may come after Closed.
        assert!(!closed, "event after Closed");
        match ev {
            SessionEvent::Message(m) => {
                messages += 1;
                on_message(m);
            }
            SessionEvent::Closed => closed = true,
            _ => {}
        }
    };
    while let Some(chunk) = chunks.next() {
        now = chunks.now;
        if parser.is_poisoned() {
            break;
        }
        match chunk {
            Chunk::Data { side, bytes } => {
                let _ = factory.probe(ctx, side, bytes);
                parser.on_data(side, bytes, now, &mut emit);
            }
            Chunk::Gap { side, len } => parser.on_gap(side, len, now, &mut emit),
        }
        check(&parser);
    }
    parser.on_close(now, &mut emit);
    check(&parser);
    messages
}
