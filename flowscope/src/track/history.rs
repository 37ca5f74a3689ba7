//! Zeek's connection history: compact per-flow storage of the letters and
//! the repeat rules that decide when a letter is recorded.
//!
//! Repeat rules (Zeek `Conn.h` `CheckHistory` / `Conn.cc`
//! `ScaledHistoryEntry`, letters documented in
//! `scripts/base/protocols/conn/main.zeek`):
//! - `a d i q` (and UDP `d`): once per direction, tracked by a "seen" bit
//!   per direction ([`Seen`]);
//! - `s h f r`: recorded again only when the sequence number differs from the
//!   last packet with that flag (handled in [`super::tcp`]);
//! - `c g t w`: logarithmic, at the 1st, 10th, 100th … occurrence
//!   ([`scaled_hit`]).

use flowscope_core::HistoryString;

/// Once-per-direction history bits of one endpoint (Zeek
/// `TCP_Endpoint::HistoryMasks`; Zeek keeps them per role in the connection,
/// shifted by 16 for the responder).
pub(crate) struct Seen;

impl Seen {
    pub(crate) const SYN: u8 = 0x01;
    pub(crate) const FIN: u8 = 0x02;
    pub(crate) const RST: u8 = 0x04;
    pub(crate) const FIN_RST: u8 = 0x08;
    pub(crate) const DATA: u8 = 0x10;
    pub(crate) const ACK: u8 = 0x20;
    pub(crate) const MULTI_FLAG: u8 = 0x40;
}

/// True when a counter that just reached `count` crosses Zeek's next
/// logarithmic threshold: 1, 10, 100, … (`ScaledHistoryEntry` with base 10;
/// Zeek's `uint32_t` thresholds stop being powers of ten past 10^9, where a
/// saturating counter never gets).
#[inline]
pub(crate) fn scaled_hit(count: u32) -> bool {
    matches!(
        count,
        1 | 10
            | 100
            | 1_000
            | 10_000
            | 100_000
            | 1_000_000
            | 10_000_000
            | 100_000_000
            | 1_000_000_000
    )
}

/// The history letters, upper case first; a letter's code is its index.
/// `^` has no lower case, so there are 25 codes, which fit in 5 bits.
const ALPHABET: &[u8; 25] = b"SHADFRCGTWIQ^shadfrcgtwiq";
const BITS: usize = 5;
const LEN_MASK: u8 = 0x1f;
const OVERFLOW: u8 = 0x80;

/// Up to [`HistoryString::CAPACITY`] history letters packed 5 bits each:
/// 20 bytes instead of 32, which keeps the per-flow entry small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PackedHistory {
    bits: [u8; (HistoryString::CAPACITY * BITS).div_ceil(8)],
    /// Letter count in the low 5 bits, [`OVERFLOW`] when letters were dropped.
    len: u8,
}

impl PackedHistory {
    /// Appends a letter; letters outside Zeek's alphabet are ignored, letters
    /// past the capacity are dropped and remembered as an overflow.
    #[inline]
    pub(crate) fn push(&mut self, letter: u8) {
        let Some(code) = ALPHABET.iter().position(|&c| c == letter) else {
            return;
        };
        let n = usize::from(self.len & LEN_MASK);
        if n >= HistoryString::CAPACITY {
            self.len |= OVERFLOW;
            return;
        }
        let bit = n * BITS;
        // The 5 bits may straddle two bytes; write them as a 16-bit window.
        let (byte, shift) = (bit / 8, bit % 8);
        let window = (code as u16) << shift;
        if let Some(b) = self.bits.get_mut(byte) {
            *b |= window as u8;
        }
        if let Some(b) = self.bits.get_mut(byte + 1) {
            *b |= (window >> 8) as u8;
        }
        self.len += 1;
    }

    /// The letters as Zeek's history string.
    pub(crate) fn unpack(&self) -> HistoryString {
        let mut h = HistoryString::default();
        for i in 0..usize::from(self.len & LEN_MASK) {
            let bit = i * BITS;
            let (byte, shift) = (bit / 8, bit % 8);
            let lo = u16::from(self.bits.get(byte).copied().unwrap_or(0));
            let hi = u16::from(self.bits.get(byte + 1).copied().unwrap_or(0));
            let code = (((hi << 8) | lo) >> shift) & 0x1f;
            if let Some(&c) = ALPHABET.get(usize::from(code)) {
                h.push(c);
            }
        }
        // Overflow is only ever set once all CAPACITY letters are stored, so
        // `h` is full here and one more push just sets its overflow flag.
        if self.len & OVERFLOW != 0 && h.len() == HistoryString::CAPACITY {
            h.push(b'^');
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_letter_at_every_position() {
        let mut p = PackedHistory::default();
        let mut want = String::new();
        for i in 0..HistoryString::CAPACITY {
            let c = ALPHABET[(i * 7) % ALPHABET.len()];
            p.push(c);
            want.push(c as char);
            assert_eq!(p.unpack().as_str(), want);
        }
        assert!(!p.unpack().overflowed());
        p.push(b'S');
        let h = p.unpack();
        assert!(h.overflowed());
        assert_eq!(h.as_str(), want);
    }

    #[test]
    fn ignores_unknown_letters() {
        let mut p = PackedHistory::default();
        p.push(b'S');
        p.push(b'x');
        p.push(0);
        p.push(b'h');
        assert_eq!(p.unpack().as_str(), "Sh");
    }

    #[test]
    fn scaled_thresholds() {
        let hits: Vec<u32> = (1..=100_000).filter(|&c| scaled_hit(c)).collect();
        assert_eq!(hits, [1, 10, 100, 1_000, 10_000, 100_000]);
        assert!(!scaled_hit(u32::MAX) && !scaled_hit(0));
    }
}
