//! pcapng: a sequence of sections, each a Section Header Block (which fixes
//! the byte order) followed by Interface Description Blocks and packet blocks.
//!
//! Blocks are framed here (type, length, trailing length) so the reader
//! controls buffering and can name the offset of a bad block. Section and
//! interface headers are then decoded with `pcap-parser`. Packet blocks (EPB,
//! SPB, obsolete PB) are decoded here from their fixed fields: pcap-parser's
//! EPB parser collects the block's options into a `Vec`, which would allocate
//! per packet in captures that carry `epb_flags` and the like.
//!
//! Two pcap-parser 0.17 helpers are deliberately not used:
//! `InterfaceDescriptionBlock::if_tsoffset` always decodes little-endian (wrong
//! in big-endian sections), and `build_ts_resolution` rejects every
//! power-of-two `if_tsresol`. Both values are decoded here instead.

use std::io::Read;

use flowscope_core::{LinkType, Timestamp};
use pcap_parser::pcapng::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le,
    parse_sectionheaderblock,
};

use super::input::{Fill, InputBuffer};
use super::{
    io_error, CaptureError, CaptureErrorKind, CaptureStats, InterfaceInfo, PacketMeta, Step,
    MAX_BLOCK_LEN, MAX_PACKET_LEN,
};

/// Section Header Block type; a byte palindrome, so it reads the same in
/// either byte order.
pub(crate) const SHB_TYPE: u32 = 0x0a0d_0d0a;
const IDB_TYPE: u32 = 1;
/// The obsolete Packet Block (pcapng draft, appendix "Packet Block (obsolete)").
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
/// Byte-order magic, as read little-endian from a little-endian section.
const BOM_LE: u32 = 0x1a2b_3c4d;
const BOM_BE: u32 = 0x4d3c_2b1a;
/// Option codes in an IDB (pcapng draft, "Interface Description Block").
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// Default `if_tsresol`: microseconds.
const DEFAULT_TSRESOL: u8 = 6;
/// More interfaces than this in one section is treated as corruption: it
/// bounds the interface table a hostile file can make us build.
const MAX_INTERFACES: usize = 1 << 16;

/// How raw timestamp units convert to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units coarser than or equal to 1 ns: multiply.
    Mul(u64),
    /// Units finer than 1 ns (power of ten): divide.
    Div(u64),
    /// Units of 2^-n seconds.
    Pow2(u32),
    /// Units so fine (below 10^-28 s) that any u64 count is under 1 ns.
    Zero,
}

impl TsScale {
    /// From the `if_tsresol` byte: top bit clear means 10^-n seconds, set
    /// means 2^-n seconds, n being the low 7 bits.
    fn from_tsresol(r: u8) -> Self {
        let n = u32::from(r & 0x7f);
        if r & 0x80 == 0 {
            if n <= 9 {
                TsScale::Mul(10u64.pow(9 - n))
            } else {
                10u64.checked_pow(n - 9).map_or(TsScale::Zero, TsScale::Div)
            }
        } else {
            TsScale::Pow2(n)
        }
    }

    #[inline]
    fn to_nanos(self, raw: u64) -> u64 {
        match self {
            TsScale::Mul(m) => raw.saturating_mul(m),
            TsScale::Div(d) => raw / d,
            TsScale::Pow2(n) => {
                // raw * 1e9 < 2^94 fits in u128; n <= 127 is a valid shift.
                let ns = (u128::from(raw) * 1_000_000_000) >> n;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
            TsScale::Zero => 0,
        }
    }
}

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    info: InterfaceInfo,
    scale: TsScale,
}

impl Interface {
    #[inline]
    fn timestamp(&self, ts_high: u32, ts_low: u32) -> Timestamp {
        let raw = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let ns = self.scale.to_nanos(raw);
        if self.info.ts_offset_secs == 0 {
            return Timestamp::from_nanos(ns);
        }
        // if_tsoffset is signed seconds; clamp into the representable range.
        let t = i128::from(ns) + i128::from(self.info.ts_offset_secs) * 1_000_000_000;
        Timestamp::from_nanos(u64::try_from(t.max(0)).unwrap_or(u64::MAX))
    }
}

/// State of a pcapng stream: the current section's byte order and interfaces.
#[derive(Debug, Default)]
pub(crate) struct PcapngState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, reused by Simple Packet Blocks.
    last_ts: Timestamp,
}

#[inline]
fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes = <[u8; 4]>::try_from(b.get(at..at.checked_add(4)?)?).ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn corrupt(at: u64, detail: impl Into<String>) -> CaptureError {
    CaptureError::new(CaptureErrorKind::Corrupt, at, detail)
}

fn truncated(at: u64, detail: impl Into<String>) -> CaptureError {
    CaptureError::new(CaptureErrorKind::Truncated, at, detail)
}

impl PcapngState {
    /// Reads the first Section Header Block. The first 4 bytes are known to
    /// be the SHB type; a bad byte-order magic means this is not pcapng at
    /// all (the SHB type is also the text "\n\r\r\n").
    pub(crate) fn open<R: Read>(
        input: &mut InputBuffer<R>,
        stats: &mut CaptureStats,
    ) -> Result<Self, CaptureError> {
        let not_ng = |d: &str| {
            CaptureError::new(
                CaptureErrorKind::NotACapture,
                0,
                format!("starts like pcapng but {d}"),
            )
        };
        if input.fill(12).map_err(|e| io_error(e, 0))? != Fill::Ready {
            return Err(not_ng("is shorter than a section header"));
        }
        match u32_at(input.data(), 8, false) {
            Some(BOM_LE | BOM_BE) => {}
            _ => return Err(not_ng("has no byte-order magic")),
        }
        let mut state = PcapngState::default();
        match state.next_block(input, stats)? {
            Step::Skip(len) => input.consume(len),
            // Unreachable: the first block is an SHB, which is never a packet.
            _ => return Err(corrupt(0, "first block is not a section header")),
        }
        Ok(state)
    }

    /// The current section's interfaces.
    pub(crate) fn interfaces(&self) -> impl Iterator<Item = &InterfaceInfo> {
        self.interfaces.iter().map(|i| &i.info)
    }

    /// Frames and decodes the next block.
    #[inline]
    pub(crate) fn next_block<R: Read>(
        &mut self,
        input: &mut InputBuffer<R>,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        let at = input.offset();
        match input.fill(8).map_err(|e| io_error(e, at))? {
            Fill::Ready => {}
            _ if input.data().is_empty() => return Ok(Step::End),
            _ => {
                return Err(truncated(
                    at,
                    format!("block header cut short: {} of 8 bytes", input.data().len()),
                ))
            }
        }
        let block_type = u32_at(input.data(), 0, self.big_endian).unwrap_or(0);
        let big_endian = if block_type == SHB_TYPE {
            // A new section may switch byte order: read it from the BOM.
            if input.fill(12).map_err(|e| io_error(e, at))? != Fill::Ready {
                return Err(truncated(at, "section header cut short"));
            }
            match u32_at(input.data(), 8, false) {
                Some(BOM_LE) => false,
                Some(BOM_BE) => true,
                _ => return Err(corrupt(at, "section header with a bad byte-order magic")),
            }
        } else {
            self.big_endian
        };
        let len = u32_at(input.data(), 4, big_endian).unwrap_or(0) as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(corrupt(
                at,
                format!("block type {block_type:#x} has invalid total length {len}"),
            ));
        }
        if len > MAX_BLOCK_LEN {
            return Err(corrupt(
                at,
                format!("block type {block_type:#x} length {len} exceeds the {MAX_BLOCK_LEN}-byte limit"),
            ));
        }
        match input.fill(len).map_err(|e| io_error(e, at))? {
            Fill::Ready => {}
            Fill::Eof | Fill::TooLarge => {
                return Err(truncated(
                    at,
                    format!(
                        "block type {block_type:#x} of {len} bytes cut short: {} present",
                        input.data().len()
                    ),
                ))
            }
        }
        let block = input.data().get(..len).unwrap_or(&[]);
        if u32_at(block, len - 4, big_endian) != Some(len as u32) {
            return Err(corrupt(
                at,
                format!("block type {block_type:#x}: trailing length differs from {len}"),
            ));
        }
        match block_type {
            SHB_TYPE => {
                self.on_section(block, big_endian, at)?;
                stats.sections += 1;
                Ok(Step::Skip(len))
            }
            IDB_TYPE => {
                self.on_interface(block, at)?;
                stats.interfaces += 1;
                Ok(Step::Skip(len))
            }
            EPB_TYPE => self.packet(block, at, false, stats),
            PB_TYPE => self.packet(block, at, true, stats),
            SPB_TYPE => self.simple_packet(block, at, stats),
            _ => {
                stats.skipped_blocks += 1;
                Ok(Step::Skip(len))
            }
        }
    }

    fn on_section(&mut self, block: &[u8], big_endian: bool, at: u64) -> Result<(), CaptureError> {
        let shb = match parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            Err(_) => return Err(corrupt(at, "unreadable section header block")),
        };
        if shb.major_version != 1 {
            // The spec: a reader must not read a section of an unknown major version.
            return Err(CaptureError::new(
                CaptureErrorKind::Unsupported,
                at,
                format!(
                    "pcapng section version {}.{}",
                    shb.major_version, shb.minor_version
                ),
            ));
        }
        self.big_endian = big_endian;
        // Interface ids are per section.
        self.interfaces.clear();
        Ok(())
    }

    fn on_interface(&mut self, block: &[u8], at: u64) -> Result<(), CaptureError> {
        let parsed = if self.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let idb = match parsed {
            Ok((_, idb)) => idb,
            Err(_) => return Err(corrupt(at, "unreadable interface description block")),
        };
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(corrupt(
                at,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        let mut tsresol = None;
        let mut tsoffset = None;
        for opt in &idb.options {
            let Ok(value) = opt.as_bytes() else { continue };
            match opt.code.0 {
                OPT_ENDOFOPT => break,
                OPT_IF_TSRESOL if tsresol.is_none() => {
                    if let [r] = value {
                        tsresol = Some(*r);
                    }
                }
                OPT_IF_TSOFFSET if tsoffset.is_none() => {
                    if let Ok(b) = <[u8; 8]>::try_from(value) {
                        tsoffset = Some(if self.big_endian {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        });
                    }
                }
                _ => {}
            }
        }
        let tsresol = tsresol.unwrap_or(DEFAULT_TSRESOL);
        let info = InterfaceInfo {
            link_type: LinkType((idb.linktype.0 as u32 & 0xffff) as u16),
            snaplen: idb.snaplen,
            tsresol,
            ts_offset_secs: tsoffset.unwrap_or(0),
        };
        self.interfaces.push(Interface {
            info,
            scale: TsScale::from_tsresol(tsresol),
        });
        Ok(())
    }

    fn interface(&self, if_id: u32, at: u64) -> Result<&Interface, CaptureError> {
        self.interfaces.get(if_id as usize).ok_or_else(|| {
            corrupt(
                at,
                format!(
                    "packet for interface {if_id}, but the section has {}",
                    self.interfaces.len()
                ),
            )
        })
    }

    /// Enhanced Packet Block, or the obsolete Packet Block (16-bit interface
    /// id followed by a 16-bit drop count; otherwise the same layout).
    #[inline(always)]
    fn packet(
        &mut self,
        block: &[u8],
        at: u64,
        obsolete: bool,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        const HDR: usize = 28;
        let be = self.big_endian;
        let len = block.len();
        // One bounds check for the whole fixed header.
        let Some(h) = block
            .get(..HDR)
            .and_then(|h| <&[u8; HDR]>::try_from(h).ok())
        else {
            return Err(corrupt(
                at,
                format!("packet block of {len} bytes is too short"),
            ));
        };
        // Called with constant offsets <= 24 only: in bounds of the 28-byte array.
        #[allow(clippy::indexing_slicing)]
        let word = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let if_id = if obsolete {
            let b = [h[8], h[9]];
            u32::from(if be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        } else {
            word(8)
        };
        let (ts_high, ts_low, caplen, wire_len) = (word(12), word(16), word(20), word(24));
        // The trailing length takes the last 4 bytes (len >= 12 checked by the caller).
        if len < HDR + 4 || caplen as usize > len - HDR - 4 || caplen as usize > MAX_PACKET_LEN {
            return Err(corrupt(
                at,
                format!("packet captured length {caplen} overruns its {len}-byte block"),
            ));
        }
        let iface = self.interface(if_id, at)?;
        let ts = iface.timestamp(ts_high, ts_low);
        let link_type = iface.info.link_type;
        if caplen > wire_len {
            stats.caplen_over_wire_len += 1;
        }
        if iface.info.snaplen != 0 && caplen > iface.info.snaplen {
            stats.caplen_over_snaplen += 1;
        }
        self.last_ts = ts;
        Ok(Step::Packet(PacketMeta {
            data_start: HDR,
            data_len: caplen as usize,
            block_len: len,
            ts,
            link_type,
            wire_len,
            source: Some(if_id),
        }))
    }

    /// Simple Packet Block: interface 0, no timestamp (the previous packet's
    /// is reused), captured length implied by the block length and snaplen.
    #[inline]
    fn simple_packet(
        &mut self,
        block: &[u8],
        at: u64,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        const HDR: usize = 12;
        let len = block.len();
        if len < HDR + 4 {
            return Err(corrupt(
                at,
                format!("simple packet block of {len} bytes is too short"),
            ));
        }
        let wire_len = u32_at(block, 8, self.big_endian).unwrap_or(0);
        let iface = self.interface(0, at)?;
        // pcapng: captured length = min(original length, snaplen); the block
        // length bounds it too (the data is padded to 32 bits).
        let mut caplen = (len - HDR - 4).min(wire_len as usize);
        if iface.info.snaplen != 0 {
            caplen = caplen.min(iface.info.snaplen as usize);
        }
        stats.packets_without_timestamp += 1;
        Ok(Step::Packet(PacketMeta {
            data_start: HDR,
            data_len: caplen,
            block_len: len,
            ts: self.last_ts,
            link_type: iface.info.link_type,
            wire_len,
            source: Some(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::TsScale;

    #[test]
    fn tsresol_decoding() {
        // Default 10^-6: 1 unit = 1000 ns.
        assert_eq!(TsScale::from_tsresol(6).to_nanos(3), 3_000);
        assert_eq!(TsScale::from_tsresol(9).to_nanos(3), 3);
        assert_eq!(TsScale::from_tsresol(0).to_nanos(2), 2_000_000_000);
        // 10^-12 (ps): 1500 ps = 1 ns (floor).
        assert_eq!(TsScale::from_tsresol(12).to_nanos(1_500), 1);
        // 2^-10 s: 1024 units = 1 s; 1 unit = 976562.5 ns -> floor.
        assert_eq!(
            TsScale::from_tsresol(0x80 | 10).to_nanos(1024),
            1_000_000_000
        );
        assert_eq!(TsScale::from_tsresol(0x80 | 10).to_nanos(1), 976_562);
        // 2^-0: seconds, saturating at u64::MAX ns.
        assert_eq!(TsScale::from_tsresol(0x80).to_nanos(u64::MAX), u64::MAX);
        // Absurd resolutions never panic.
        assert_eq!(TsScale::from_tsresol(127).to_nanos(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(0xff).to_nanos(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(28), TsScale::Div(10u64.pow(19)));
        assert_eq!(TsScale::from_tsresol(29), TsScale::Zero);
    }
}
