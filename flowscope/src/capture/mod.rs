//! Capture file readers: classic pcap (both byte orders, µs and ns) and
//! pcapng (several sections and interfaces, each with its own link type and
//! timestamp resolution), from a file or any `Read` (stdin). A source of
//! [`PacketView`]s, nothing more.
//!
//! # Behaviour
//! - **Zero-copy, streaming.** [`CaptureReader::next_packet`] lends a slice
//!   of the reader's buffer, valid until the next call (the record counts
//!   as consumed as soon as it is lent). The buffer starts at
//!   [`DEFAULT_BUFFER_LEN`] and grows only when one record is larger, up to
//!   [`MAX_BLOCK_LEN`]. Nothing is allocated per packet.
//! - **Fast path.** A classic pcap record that is buffered whole and whose
//!   captured length is within the snaplen and the original length is framed
//!   by a few loads and comparisons (byte order chosen once per file);
//!   everything else (pcapng, refills, odd lengths, damage) takes the general
//!   path, which owns every error and counter, so both give the same result.
//! - **Timestamps** are nanoseconds since the epoch. pcapng `if_tsresol`
//!   (10^-n or 2^-n s, default 10^-6) and `if_tsoffset` (signed seconds) are
//!   honoured per interface; sub-nanosecond units are floored.
//! - **Simple Packet Blocks** carry no timestamp: they get the timestamp of
//!   the previous packet of the stream (zero if none), their interface is 0,
//!   and their captured length is min(original length, snaplen, block room).
//! - **Non-packet pcapng blocks** (name resolution, statistics, custom, …)
//!   are skipped and counted in [`CaptureStats::skipped_blocks`].
//! - **Damage.** A truncated or corrupt capture yields every packet before the
//!   damage, then one [`CaptureError`] naming the absolute byte offset of the
//!   bad record or block. After any error, `next_packet` returns `Ok(None)`.
//!   A record whose captured length exceeds its original length or the
//!   snaplen is still returned when its bytes are present (and counted in
//!   [`CaptureStats`]); a captured length above [`MAX_PACKET_LEN`] is
//!   [`CaptureErrorKind::Corrupt`].
//! - Never panics, whatever the input.

mod input;
mod pcap;
mod pcapng;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub use bytes::Bytes;

use flowscope_core::{LinkType, PacketView, Timestamp};

use input::{Fill, InputBuffer};
use pcap::{FastFraming, FastRecord, PcapState};
use pcapng::PcapngState;

/// Initial read-buffer size: large enough that refills (one `read` call
/// each) are rare, small enough to be cheap for tiny captures.
pub const DEFAULT_BUFFER_LEN: usize = 1 << 20;
/// Largest captured length accepted for one packet (16 MiB). Real snaplens
/// stop at 256 KiB; anything larger is a corrupt length field.
pub const MAX_PACKET_LEN: usize = 16 << 20;
/// Largest pcapng block (or pcap record) the reader will buffer: a maximal
/// packet plus room for block headers and options. Also the buffer's cap.
pub const MAX_BLOCK_LEN: usize = MAX_PACKET_LEN + (64 << 10);
/// Smallest buffer accepted by [`CaptureReader::with_buffer_len`].
const MIN_BUFFER_LEN: usize = 32;

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureFormat {
    /// Classic pcap.
    Pcap {
        /// Nanosecond timestamps (magic 0xa1b23c4d).
        nanos: bool,
        /// Written big-endian.
        big_endian: bool,
    },
    /// pcapng.
    Pcapng,
}

/// What went wrong reading a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureErrorKind {
    /// The input is not a pcap or pcapng capture (also: empty input).
    NotACapture,
    /// The input ends in the middle of a record.
    Truncated,
    /// A header or block is inconsistent.
    Corrupt,
    /// A well-formed capture variant this reader does not read (pcapng
    /// section of another major version, "modified" pcap, pcap before 2.0).
    Unsupported,
    /// The operating system reported an I/O error.
    Io,
}

/// A capture read error, naming the byte offset where the damage starts.
#[derive(Clone, Debug)]
pub struct CaptureError {
    /// What kind of failure.
    pub kind: CaptureErrorKind,
    /// Byte offset in the input where the bad record or block starts.
    pub offset: u64,
    /// A human-readable detail.
    pub detail: String,
}

impl CaptureError {
    fn new(kind: CaptureErrorKind, offset: u64, detail: impl Into<String>) -> Self {
        CaptureError {
            kind,
            offset,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} capture at byte offset {}: {}",
            self.kind, self.offset, self.detail
        )
    }
}

impl std::error::Error for CaptureError {}

fn io_error(e: io::Error, offset: u64) -> CaptureError {
    CaptureError::new(CaptureErrorKind::Io, offset, e.to_string())
}

/// Counters about the capture's structure, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureStats {
    /// pcapng Section Header Blocks read.
    pub sections: u64,
    /// pcapng Interface Description Blocks read.
    pub interfaces: u64,
    /// pcapng blocks skipped because they carry no packet (NRB, ISB, DSB,
    /// custom, unknown, …).
    pub skipped_blocks: u64,
    /// Packets without a timestamp of their own (Simple Packet Blocks),
    /// given the previous packet's timestamp.
    pub packets_without_timestamp: u64,
    /// Packets whose captured length exceeds their original length.
    pub caplen_over_wire_len: u64,
    /// Packets whose captured length exceeds the file's or interface's snaplen.
    pub caplen_over_snaplen: u64,
}

/// One pcapng interface of the current section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceInfo {
    /// The interface's link type.
    pub link_type: LinkType,
    /// Snapshot length (0: none given).
    pub snaplen: u32,
    /// Raw `if_tsresol`: 10^-n s, or 2^-n s when the top bit is set.
    pub tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub ts_offset_secs: i64,
}

/// Where the next packet lies in the buffer, and its metadata. Owned (no
/// borrow), so the block loop can return it and the view is built after.
#[derive(Clone, Copy, Debug)]
struct PacketMeta {
    /// Packet bytes start this far into the block.
    data_start: usize,
    data_len: usize,
    /// Whole record/block length, consumed on the next call.
    block_len: usize,
    ts: Timestamp,
    link_type: LinkType,
    wire_len: u32,
    source: Option<u32>,
}

/// What one framing step produced.
#[derive(Debug)]
enum Step {
    /// A packet; its block is still in the buffer.
    Packet(PacketMeta),
    /// A non-packet block of this many bytes, to consume now.
    Skip(usize),
    /// Clean end of input.
    End,
}

#[derive(Debug)]
enum Format {
    Pcap(PcapState),
    Pcapng(PcapngState),
}

/// Reads packets from a pcap or pcapng stream.
///
/// ```no_run
/// # fn main() -> Result<(), flowscope::capture::CaptureError> {
/// let mut reader = flowscope::capture::CaptureReader::open("trace.pcapng")?;
/// while let Some(pkt) = reader.next_packet()? {
///     println!("{} {:?} {} bytes", pkt.ts, pkt.link_type, pkt.data.len());
/// }
/// # Ok(()) }
/// ```
pub struct CaptureReader<R: Read> {
    input: InputBuffer<R>,
    format: CaptureFormat,
    state: Format,
    /// Classic pcap's per-record fast path; `None` for pcapng, for pcap
    /// files with swapped length fields, and once the reader has finished.
    fast: Option<FastFraming>,
    packets: u64,
    stats: CaptureStats,
    /// Set at the end of input or after an error: later calls return `Ok(None)`.
    finished: bool,
}

impl<R: Read> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("offset", &self.bytes_consumed())
            .field("packets", &self.packets)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl CaptureReader<Box<dyn Read + Send>> {
    /// Opens a file, or standard input when `path` is `-`.
    ///
    /// The file is read directly into the reader's buffer (no extra
    /// `BufReader` copy).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let r: Box<dyn Read + Send> = if path.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            let f = File::open(path).map_err(|e| {
                CaptureError::new(
                    CaptureErrorKind::Io,
                    0,
                    format!("cannot open {}: {e}", path.display()),
                )
            })?;
            Box::new(f)
        };
        Self::new(r)
    }
}

impl CaptureReader<io::Empty> {
    /// A reader over a whole capture already in memory (a mapped file, a
    /// buffer received whole): packets are lent straight out of `data`, with
    /// no copy and no read calls. Framing, limits, errors and their offsets
    /// are the same as reading the same bytes from a stream.
    ///
    /// `Bytes` can own any buffer (`Bytes::from(vec)`,
    /// `Bytes::from_owner(mmap)`) without copying it.
    pub fn from_bytes(data: Bytes) -> Result<Self, CaptureError> {
        Self::from_input(InputBuffer::shared(data, MAX_BLOCK_LEN))
    }
}

impl<R: Read + Send + 'static> CaptureReader<R> {
    /// The same reader behind a boxed `Read`, so readers of several kinds
    /// (in place, a file, standard input) can share one type.
    pub fn boxed(self) -> CaptureReader<Box<dyn Read + Send>> {
        CaptureReader {
            input: self.input.boxed(),
            format: self.format,
            state: self.state,
            fast: self.fast,
            packets: self.packets,
            stats: self.stats,
            finished: self.finished,
        }
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `r` and detects the format.
    pub fn new(r: R) -> Result<Self, CaptureError> {
        Self::with_buffer_len(r, DEFAULT_BUFFER_LEN)
    }

    /// Like [`CaptureReader::new`] with an initial buffer of `len` bytes
    /// (at least 32; it still grows for larger records, up to [`MAX_BLOCK_LEN`]).
    pub fn with_buffer_len(r: R, len: usize) -> Result<Self, CaptureError> {
        Self::from_input(InputBuffer::new(r, len.max(MIN_BUFFER_LEN), MAX_BLOCK_LEN))
    }

    /// Detects the format from the input's first bytes and reads the headers.
    fn from_input(mut input: InputBuffer<R>) -> Result<Self, CaptureError> {
        let mut stats = CaptureStats::default();
        if input.fill(4).map_err(|e| io_error(e, 0))? != Fill::Ready {
            let n = input.data().len();
            let detail = if n == 0 {
                "empty input".to_owned()
            } else {
                format!("only {n} bytes of input")
            };
            return Err(CaptureError::new(CaptureErrorKind::NotACapture, 0, detail));
        }
        let magic = input
            .data()
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes);
        let (state, format) = match magic {
            pcapng::SHB_TYPE => (
                Format::Pcapng(PcapngState::open(&mut input, &mut stats)?),
                CaptureFormat::Pcapng,
            ),
            pcap::MAGIC_US_LE
            | pcap::MAGIC_US_BE
            | pcap::MAGIC_NS_LE
            | pcap::MAGIC_NS_BE
            | pcap::MAGIC_MODIFIED => {
                let (s, f) = PcapState::from_header(&mut input, magic)?;
                (Format::Pcap(s), f)
            }
            _ => {
                return Err(CaptureError::new(
                    CaptureErrorKind::NotACapture,
                    0,
                    format!("unknown magic number {magic:#010x}"),
                ))
            }
        };
        let fast = match &state {
            Format::Pcap(p) => p.fast_framing(),
            Format::Pcapng(_) => None,
        };
        Ok(CaptureReader {
            input,
            format,
            state,
            fast,
            packets: 0,
            stats,
            finished: false,
        })
    }

    /// The next packet, `Ok(None)` at a clean end of input, or an error at
    /// the first damaged record (the packets before it were all returned).
    ///
    /// The packet borrows the reader's buffer until the next call. After
    /// the end of input or an error, every further call returns `Ok(None)`.
    // Always inlined: the common case is a few dozen instructions, and a call
    // returns the 40-byte `Result` through memory.
    #[inline(always)]
    pub fn next_packet(&mut self) -> Result<Option<PacketView<'_>>, CaptureError> {
        // Both paths yield owned metadata and one tail lends the bytes: the
        // common case then stays in registers instead of being merged with
        // the general path's result through memory.
        let fast = self
            .fast
            .and_then(|f| f.frame(self.input.data()).map(|r| (f, r)));
        let meta = match fast {
            Some((f, rec)) => PacketMeta {
                data_start: FastRecord::DATA_START,
                data_len: rec.caplen,
                block_len: rec.record_len(),
                ts: rec.ts,
                link_type: f.link_type,
                wire_len: rec.wire_len,
                source: None,
            },
            None => match self.next_meta()? {
                Some(m) => m,
                None => return Ok(None),
            },
        };
        // The record is consumed as it is lent out: its bytes stay in place
        // until the next refill, which needs `&mut self` and so cannot happen
        // while the returned view borrows the reader.
        let at = self.input.offset();
        match self
            .input
            .take(meta.block_len, meta.data_start, meta.data_len)
        {
            Some(data) => {
                self.packets += 1;
                let mut view =
                    PacketView::new(data, meta.ts, meta.link_type).with_wire_len(meta.wire_len);
                if let Some(s) = meta.source {
                    view = view.with_source(s);
                }
                Ok(Some(view))
            }
            // Unreachable: framing checked the block is buffered whole.
            // (Fields set one by one: `self.input` is still borrowed.)
            None => {
                self.finished = true;
                self.fast = None;
                Err(CaptureError::new(
                    CaptureErrorKind::Corrupt,
                    at,
                    "packet data outside its block",
                ))
            }
        }
    }

    /// Frames every record or block the fast path does not take: pcapng,
    /// refills, odd lengths, damage, the end of input. Kept out of line so
    /// the fast path stays small where it is inlined.
    #[inline(never)]
    fn next_meta(&mut self) -> Result<Option<PacketMeta>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let step = match &mut self.state {
                Format::Pcap(p) => p.next_record(&mut self.input, &mut self.stats),
                Format::Pcapng(n) => n.next_block(&mut self.input, &mut self.stats),
            };
            match step {
                Ok(Step::Packet(m)) => return Ok(Some(m)),
                Ok(Step::Skip(len)) => self.input.consume(len),
                Ok(Step::End) => {
                    self.finish();
                    return Ok(None);
                }
                Err(e) => {
                    self.finish();
                    return Err(e);
                }
            }
        }
    }

    /// End of input or an error: every later call returns `Ok(None)`.
    fn finish(&mut self) {
        self.finished = true;
        self.fast = None;
    }

    /// The detected container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Bytes of input consumed so far, including the packet last returned
    /// (for progress reporting).
    pub fn bytes_consumed(&self) -> u64 {
        self.input.offset()
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// Structural counters (skipped blocks, sections, odd lengths, …).
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// The snapshot length of a classic pcap file; `None` for pcapng, where
    /// each interface has its own (see [`CaptureReader::interfaces`]).
    pub fn snaplen(&self) -> Option<u32> {
        match &self.state {
            Format::Pcap(p) => Some(p.snaplen),
            Format::Pcapng(_) => None,
        }
    }

    /// The link type of a classic pcap file; `None` for pcapng.
    pub fn link_type(&self) -> Option<LinkType> {
        match &self.state {
            Format::Pcap(p) => Some(p.link_type),
            Format::Pcapng(_) => None,
        }
    }

    /// The interfaces of the current pcapng section read so far, indexed by
    /// interface id ([`PacketView::source`]); empty for classic pcap.
    pub fn interfaces(&self) -> impl Iterator<Item = &InterfaceInfo> + '_ {
        let ng = match &self.state {
            Format::Pcapng(n) => Some(n.interfaces()),
            Format::Pcap(_) => None,
        };
        ng.into_iter().flatten()
    }
}
