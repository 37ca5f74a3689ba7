//! Bounds-checked big-endian reads over frame bytes.
//!
//! Every read returns `None` past the end instead of panicking; the decoder
//! turns `None` into the precise [`flowscope_core::Skip`] for the layer.

/// The `N` bytes at `off`, if all of them were captured.
#[inline(always)]
pub(crate) fn chunk<const N: usize>(d: &[u8], off: usize) -> Option<&[u8; N]> {
    d.get(off..)?.first_chunk::<N>()
}

/// The byte at `off`.
#[inline(always)]
pub(crate) fn u8_at(d: &[u8], off: usize) -> Option<u8> {
    d.get(off).copied()
}

/// The big-endian `u16` at `off`.
#[inline(always)]
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    chunk::<2>(d, off).map(|b| u16::from_be_bytes(*b))
}

/// The big-endian `u32` at `off`.
#[inline(always)]
pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    chunk::<4>(d, off).map(|b| u32::from_be_bytes(*b))
}

/// Big-endian `u16` from two bytes of a fixed-size header.
#[inline(always)]
pub(crate) const fn pair(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

/// Big-endian `u32` from four bytes of a fixed-size header.
#[inline(always)]
pub(crate) const fn quad(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let d = [1u8, 2, 3];
        assert_eq!(be16(&d, 1), Some(0x0203));
        assert_eq!(be16(&d, 2), None);
        assert_eq!(be32(&d, 0), None);
        assert_eq!(u8_at(&d, 3), None);
        assert_eq!(chunk::<2>(&d, usize::MAX), None);
        assert_eq!(quad(1, 2, 3, 4), 0x0102_0304);
    }
}
