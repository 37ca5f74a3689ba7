//! Classic pcap: a 24-byte file header, then 16-byte record headers each
//! followed by the captured bytes.
//!
//! The file header is parsed with `pcap-parser`. Records are framed here
//! (16 fixed bytes) because the framing decides how much to read and whether
//! a short record is truncation or corruption, which a parser that only sees
//! "incomplete" cannot tell.

use std::io::Read;

use flowscope_core::{LinkType, Timestamp};

use super::input::{Fill, InputBuffer};
use super::{
    io_error, CaptureError, CaptureErrorKind, CaptureFormat, CaptureStats, PacketMeta, Step,
    MAX_PACKET_LEN,
};

/// Size of the classic pcap file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;
/// Size of a classic pcap record header.
const RECORD_HEADER_LEN: usize = 16;
/// libpcap's largest snapshot length for ordinary link types
/// (`MAXIMUM_SNAPLEN`). A missing record longer than this and than the file's
/// snaplen is a corrupt length field rather than a cut-off file.
const LIBPCAP_MAX_SNAPLEN: u32 = 262_144;

/// Magic numbers as they read little-endian from the first 4 bytes.
pub(crate) const MAGIC_US_LE: u32 = 0xa1b2_c3d4;
pub(crate) const MAGIC_US_BE: u32 = 0xd4c3_b2a1;
pub(crate) const MAGIC_NS_LE: u32 = 0xa1b2_3c4d;
pub(crate) const MAGIC_NS_BE: u32 = 0x4d3c_b2a1;
/// Alexey Kuznetsov's "modified" pcap (24-byte record headers).
pub(crate) const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// Order of the two length fields in record headers. Before format 2.3
/// they were (original, captured); libpcap and Wireshark both swap them back
/// for versions 2.0-2.2 and DG/UX's 543.0, and for 2.3 when the captured
/// length exceeds the original one (2.3 files were written both ways).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LengthOrder {
    Normal,
    Swapped,
    MaybeSwapped,
}

impl LengthOrder {
    fn for_version(major: u16, minor: u16) -> Self {
        match (major, minor) {
            (2, 0..=2) | (543, _) => LengthOrder::Swapped,
            (2, 3) => LengthOrder::MaybeSwapped,
            _ => LengthOrder::Normal,
        }
    }
}

/// State of a classic pcap stream after its file header.
#[derive(Debug)]
pub(crate) struct PcapState {
    big_endian: bool,
    nanos: bool,
    lengths: LengthOrder,
    pub(crate) link_type: LinkType,
    pub(crate) snaplen: u32,
}

impl PcapState {
    /// Parses the file header at the start of `input` and consumes it.
    pub(crate) fn from_header<R: Read>(
        input: &mut InputBuffer<R>,
        magic: u32,
    ) -> Result<(Self, CaptureFormat), CaptureError> {
        if magic == MAGIC_MODIFIED {
            return Err(CaptureError::new(
                CaptureErrorKind::Unsupported,
                0,
                "modified (Kuznetsov) pcap format is not supported",
            ));
        }
        match input.fill(FILE_HEADER_LEN).map_err(|e| io_error(e, 0))? {
            Fill::Ready => {}
            Fill::Eof | Fill::TooLarge => {
                return Err(CaptureError::new(
                    CaptureErrorKind::Truncated,
                    0,
                    format!(
                        "pcap file header cut short: {} of {FILE_HEADER_LEN} bytes",
                        input.data().len()
                    ),
                ))
            }
        }
        let hdr = match pcap_parser::parse_pcap_header(input.data()) {
            Ok((_, h)) => h,
            Err(_) => {
                return Err(CaptureError::new(
                    CaptureErrorKind::NotACapture,
                    0,
                    "pcap magic number with an unreadable file header",
                ))
            }
        };
        if hdr.version_major < 2 {
            // libpcap refuses these too ("archaic pcap savefile format").
            return Err(CaptureError::new(
                CaptureErrorKind::Unsupported,
                0,
                format!("pcap version {}.{}", hdr.version_major, hdr.version_minor),
            ));
        }
        let big_endian = matches!(magic, MAGIC_US_BE | MAGIC_NS_BE);
        let nanos = matches!(magic, MAGIC_NS_LE | MAGIC_NS_BE);
        // The upper 16 bits of the link-type field carry FCS information
        // (pcap spec, "LinkType and additional information"); the link type
        // proper is the low 16 bits.
        let link_type = LinkType((hdr.network.0 as u32 & 0xffff) as u16);
        input.consume(FILE_HEADER_LEN);
        let state = PcapState {
            big_endian,
            nanos,
            lengths: LengthOrder::for_version(hdr.version_major, hdr.version_minor),
            link_type,
            snaplen: hdr.snaplen,
        };
        Ok((state, CaptureFormat::Pcap { nanos, big_endian }))
    }

    /// The fast framing for this file, or `None` when its records need the
    /// general path every time (length fields written swapped).
    pub(crate) fn fast_framing(&self) -> Option<FastFraming> {
        if self.lengths != LengthOrder::Normal {
            return None;
        }
        let snaplen_cap = if self.snaplen == 0 {
            u32::MAX
        } else {
            self.snaplen
        };
        Some(FastFraming {
            big_endian: self.big_endian,
            caplen_max: snaplen_cap.min(MAX_PACKET_LEN as u32),
            frac_ns: if self.nanos { 1 } else { 1_000 },
            link_type: self.link_type,
        })
    }

    #[inline]
    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let bytes = b
            .get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .unwrap_or([0; 4]);
        if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    }

    /// Frames the next record.
    #[inline]
    pub(crate) fn next_record<R: Read>(
        &self,
        input: &mut InputBuffer<R>,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        let at = input.offset();
        match input.fill(RECORD_HEADER_LEN).map_err(|e| io_error(e, at))? {
            Fill::Ready => {}
            _ if input.data().is_empty() => return Ok(Step::End),
            _ => {
                return Err(CaptureError::new(
                    CaptureErrorKind::Truncated,
                    at,
                    format!(
                        "record header cut short: {} of {RECORD_HEADER_LEN} bytes",
                        input.data().len()
                    ),
                ))
            }
        }
        let h = input.data();
        let ts_sec = self.u32_at(h, 0);
        let ts_frac = self.u32_at(h, 4);
        let (mut caplen, mut wire_len) = (self.u32_at(h, 8), self.u32_at(h, 12));
        let swap = match self.lengths {
            LengthOrder::Normal => false,
            LengthOrder::Swapped => true,
            LengthOrder::MaybeSwapped => caplen > wire_len,
        };
        if swap {
            (caplen, wire_len) = (wire_len, caplen);
        }
        if caplen as usize > MAX_PACKET_LEN {
            return Err(CaptureError::new(
                CaptureErrorKind::Corrupt,
                at,
                format!("record captured length {caplen} exceeds the {MAX_PACKET_LEN}-byte limit"),
            ));
        }
        let total = RECORD_HEADER_LEN + caplen as usize;
        match input.fill(total).map_err(|e| io_error(e, at))? {
            Fill::Ready => {}
            Fill::Eof | Fill::TooLarge => {
                let have = input.data().len().saturating_sub(RECORD_HEADER_LEN);
                let kind = if caplen > self.snaplen.max(LIBPCAP_MAX_SNAPLEN) {
                    CaptureErrorKind::Corrupt
                } else {
                    CaptureErrorKind::Truncated
                };
                return Err(CaptureError::new(
                    kind,
                    at,
                    format!(
                        "record of {caplen} captured bytes (snaplen {}) cut short: {have} present",
                        self.snaplen
                    ),
                ));
            }
        }
        if caplen > wire_len {
            stats.caplen_over_wire_len += 1;
        }
        if self.snaplen != 0 && caplen > self.snaplen {
            stats.caplen_over_snaplen += 1;
        }
        // A fraction of 1 s or more is out of spec; it is carried into the
        // seconds rather than rejected, so a sloppy writer costs no packets.
        let frac_ns = if self.nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1_000
        };
        let ts = Timestamp::from_nanos(
            u64::from(ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(frac_ns),
        );
        Ok(Step::Packet(PacketMeta {
            data_start: RECORD_HEADER_LEN,
            data_len: caplen as usize,
            block_len: total,
            ts,
            link_type: self.link_type,
            wire_len,
            source: None,
        }))
    }
}

/// The common case of [`PcapState::next_record`], decided once per file: a
/// record whose header is buffered whole, whose captured length is within the
/// snaplen, the original length and [`MAX_PACKET_LEN`] (so no counter moves
/// and no error is possible), and whose bytes are buffered. Anything else is
/// left to `next_record`, which frames it again and owns every error and
/// counter, so the fast path changes no behaviour.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastFraming {
    big_endian: bool,
    /// min(snaplen or `u32::MAX` when 0, `MAX_PACKET_LEN`).
    caplen_max: u32,
    /// Nanoseconds per unit of the fraction field (1 or 1000).
    frac_ns: u64,
    pub(crate) link_type: LinkType,
}

/// A record framed by [`FastFraming::frame`]; its bytes are the `caplen`
/// bytes after the 16-byte header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastRecord {
    pub(crate) caplen: usize,
    pub(crate) wire_len: u32,
    pub(crate) ts: Timestamp,
}

impl FastRecord {
    /// Header plus captured bytes.
    #[inline(always)]
    pub(crate) fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.caplen
    }

    /// Where the packet bytes start in the record.
    pub(crate) const DATA_START: usize = RECORD_HEADER_LEN;
}

impl FastFraming {
    /// Frames the record at the start of `buffered`, or `None` when it is
    /// not the common case (see [`FastFraming`]).
    #[inline(always)]
    pub(crate) fn frame(&self, buffered: &[u8]) -> Option<FastRecord> {
        if self.big_endian {
            self.frame_in::<true>(buffered)
        } else {
            self.frame_in::<false>(buffered)
        }
    }

    /// One copy per byte order, so no field read branches on it.
    #[inline(always)]
    fn frame_in<const BE: bool>(&self, buffered: &[u8]) -> Option<FastRecord> {
        let (h, rest) = buffered.split_first_chunk::<RECORD_HEADER_LEN>()?;
        // The four header fields are the four 32-bit lanes of the 16 bytes
        // read little-endian; big-endian files swap each lane.
        let all = u128::from_le_bytes(*h);
        let field = |lane: u32| {
            let v = (all >> (32 * lane)) as u32;
            if BE {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (ts_sec, ts_frac, caplen, wire_len) = (field(0), field(1), field(2), field(3));
        if caplen > wire_len || caplen > self.caplen_max || caplen as usize > rest.len() {
            return None;
        }
        // No saturation needed: (2^32 - 1) * 10^9 + (2^32 - 1) * 10^3 < 2^64,
        // so this equals the saturating sum of the general path.
        let ns = u64::from(ts_sec) * 1_000_000_000 + u64::from(ts_frac) * self.frac_ns;
        Some(FastRecord {
            caplen: caplen as usize,
            wire_len,
            ts: Timestamp::from_nanos(ns),
        })
    }
}
