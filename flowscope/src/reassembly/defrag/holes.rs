//! Which parts of one datagram have arrived (the holes are the rest).
//!
//! Fragment offsets count 8-byte blocks and every fragment but the last
//! carries whole blocks, so arrival is tracked as one bit per block: exact
//! whatever the arrival order or fragment size (no cap on the number of
//! separate pieces for tiny shuffled fragments to exploit), at most 1 KiB
//! for the largest datagram. The last fragment may end inside its final
//! block; the caller's length checks keep any other fragment out of it.

/// Bytes per fragment-offset unit.
const BLOCK: u32 = 8;

/// How a new fragment's range `[start, end)` sits against what has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fit {
    /// No byte of it has arrived yet.
    New,
    /// Every byte of it has arrived (a duplicate if the bytes match).
    Inside,
    /// Some bytes have arrived and some have not.
    Partial,
}

/// The blocks of one datagram that have arrived.
#[derive(Clone, Debug, Default)]
pub(super) struct Received {
    /// Bit `b` of word `w`: block `64 w + b` has arrived.
    bits: Vec<u64>,
    /// Blocks set.
    blocks: u32,
    /// One past the last byte received.
    max_end: u32,
}

/// The blocks `[first, last)` that `[start, end)` (start a multiple of 8) covers.
fn blocks(start: u32, end: u32) -> (u32, u32) {
    (start / BLOCK, end.div_ceil(BLOCK))
}

impl Received {
    /// Words of bitmap needed to record a range ending at `end`.
    pub(super) fn words_for(end: u32) -> usize {
        end.div_ceil(BLOCK).div_ceil(64) as usize
    }

    /// The bitmap's buffer, for the memory budget.
    pub(super) fn bits_mut(&mut self) -> &mut Vec<u64> {
        &mut self.bits
    }

    /// Bytes of buffer held.
    pub(super) fn capacity_bytes(&self) -> usize {
        self.bits.capacity() * 8
    }

    /// Gives the buffer back to the allocator.
    pub(super) fn release(&mut self) {
        *self = Received::default();
    }

    /// Forgets everything, keeping the buffer (the entry is reused).
    pub(super) fn clear(&mut self) {
        self.bits.clear();
        self.blocks = 0;
        self.max_end = 0;
    }

    /// Is block `b` set? Blocks past the bitmap have not arrived.
    fn has(&self, b: u32) -> bool {
        self.bits
            .get((b / 64) as usize)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// Where `[start, end)` (non-empty, start a multiple of 8) sits.
    pub(super) fn fit(&self, start: u32, end: u32) -> Fit {
        let (first, last) = blocks(start, end);
        let mut set = 0u32;
        for b in first..last {
            set += u32::from(self.has(b));
        }
        match set {
            0 => Fit::New,
            n if n == last - first => Fit::Inside,
            _ => Fit::Partial,
        }
    }

    /// Records `[start, end)`, which must be [`Fit::New`]. False, changing
    /// nothing, if the bitmap has not been given room for it (see
    /// [`Received::words_for`]).
    pub(super) fn insert(&mut self, start: u32, end: u32) -> bool {
        let (first, last) = blocks(start, end);
        let words = Self::words_for(end);
        if words > self.bits.capacity() {
            return false;
        }
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
        for b in first..last {
            if let Some(w) = self.bits.get_mut((b / 64) as usize) {
                if *w & (1 << (b % 64)) == 0 {
                    *w |= 1 << (b % 64);
                    self.blocks += 1;
                }
            }
        }
        self.max_end = self.max_end.max(end);
        true
    }

    /// One past the last byte received (0 when nothing has).
    pub(super) fn max_end(&self) -> u32 {
        self.max_end
    }

    /// True when exactly `[0, total)` has arrived.
    pub(super) fn is_complete(&self, total: u32) -> bool {
        self.max_end == total && self.blocks == total.div_ceil(BLOCK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_room(end: u32) -> Received {
        let mut r = Received::default();
        r.bits_mut().reserve_exact(Received::words_for(end));
        r
    }

    #[test]
    fn completes_in_any_order() {
        let mut r = with_room(20);
        assert!(r.insert(16, 20));
        assert!(!r.is_complete(20));
        assert!(r.insert(0, 8));
        assert_eq!(r.fit(8, 16), Fit::New);
        assert!(!r.is_complete(20));
        assert!(r.insert(8, 16));
        assert!(r.is_complete(20));
        assert!(!r.is_complete(24));
        assert_eq!(r.max_end(), 20);
    }

    #[test]
    fn classifies_inside_partial_and_new() {
        let mut r = with_room(32);
        assert!(r.insert(8, 32));
        assert_eq!(r.fit(8, 32), Fit::Inside);
        assert_eq!(r.fit(16, 24), Fit::Inside);
        assert_eq!(r.fit(0, 16), Fit::Partial);
        assert_eq!(r.fit(24, 40), Fit::Partial);
        assert_eq!(r.fit(0, 40), Fit::Partial);
        // Touching is not overlapping: [0, 8) ends where [8, 32) starts.
        assert_eq!(r.fit(0, 8), Fit::New);
        assert_eq!(r.fit(32, 40), Fit::New);
    }

    #[test]
    fn tiny_pieces_across_words_and_the_largest_datagram() {
        // Every other block of a 65 535-byte datagram, then the rest.
        let total = 65_535;
        let mut r = with_room(total);
        assert_eq!(Received::words_for(total), 128);
        let last = total.div_ceil(8);
        for b in (0..last).step_by(2) {
            assert!(r.insert(b * 8, (b * 8 + 8).min(total)));
        }
        assert!(!r.is_complete(total));
        assert_eq!(r.fit(8, 24), Fit::Partial);
        for b in (1..last).step_by(2) {
            assert_eq!(r.fit(b * 8, b * 8 + 8), Fit::New);
            assert!(r.insert(b * 8, (b * 8 + 8).min(total)));
        }
        assert!(r.is_complete(total));
    }

    #[test]
    fn refuses_a_range_without_room() {
        let mut r = with_room(64 * 8);
        assert!(!r.insert(64 * 8, 65 * 8));
        assert_eq!(r.max_end(), 0);
        assert!(r.insert(0, 8));
    }
}
