//! Capture file readers: classic pcap (both byte orders, µs and ns) and
//! pcapng (several interfaces with their own link types and timestamp
//! resolutions), from a file or any `Read` (stdin). A source of
//! [`PacketView`]s, nothing more.
//!
//! SKELETON: the public API below is the contract the other modules build
//! against; bodies are filled in by the capture work.

use std::fmt;
use std::io::Read;
use std::path::Path;

use flowscope_core::PacketView;

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
    /// The input is not a pcap or pcapng capture.
    NotACapture,
    /// The input ends in the middle of a record.
    Truncated,
    /// A header or block is inconsistent.
    Corrupt,
    /// The operating system reported an I/O error.
    Io,
}

/// A capture read error, naming the byte offset where the damage starts.
#[derive(Debug)]
pub struct CaptureError {
    /// What kind of failure.
    pub kind: CaptureErrorKind,
    /// Byte offset in the input where the bad record or block starts.
    pub offset: u64,
    /// A human-readable detail.
    pub detail: String,
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

/// Reads packets from a pcap or pcapng stream.
pub struct CaptureReader<R: Read> {
    _r: R,
}

impl CaptureReader<Box<dyn Read + Send>> {
    /// Opens a file, or standard input when `path` is `-`.
    pub fn open(_path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        todo!("open")
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `r` and detects the format.
    pub fn new(_r: R) -> Result<Self, CaptureError> {
        todo!("new")
    }

    /// The next packet, `Ok(None)` at a clean end of input, or an error at
    /// the first damaged record (the packets before it were all returned).
    pub fn next_packet(&mut self) -> Result<Option<PacketView<'_>>, CaptureError> {
        todo!("next_packet")
    }

    /// The detected container format.
    pub fn format(&self) -> CaptureFormat {
        todo!("format")
    }

    /// Bytes of input consumed so far (for progress reporting).
    pub fn bytes_consumed(&self) -> u64 {
        todo!("bytes_consumed")
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        todo!("packets_read")
    }
}
