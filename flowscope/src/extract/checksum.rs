//! Internet checksums (RFC 1071) over IPv4 headers and transport segments.
//!
//! Summing 32-bit big-endian words into a `u64` and folding at the end gives
//! the same ones'-complement result as summing 16-bit words (RFC 1071 §2),
//! with half the loop iterations.

use super::addr::Addrs;

/// Adds `data` to a ones'-complement accumulator. An odd final byte is the
/// high byte of a zero-padded 16-bit word, as RFC 1071 requires.
#[inline]
pub(crate) fn add(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        if let Some(w) = w.first_chunk::<4>() {
            acc += u64::from(u32::from_be_bytes(*w));
        }
    }
    let mut tail = [0u8; 4];
    for (slot, b) in tail.iter_mut().zip(words.remainder()) {
        *slot = *b;
    }
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Folds the accumulator to 16 bits.
#[inline]
pub(crate) fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// True when `data` (checksum field included) sums to all ones.
#[inline]
pub(crate) fn verifies(data: &[u8], acc: u64) -> bool {
    fold(add(data, acc)) == 0xffff
}

/// The TCP/UDP/ICMPv6 pseudo-header sum (RFC 793, RFC 768, RFC 8200 §8.1).
#[inline]
pub(crate) fn pseudo_header(addrs: Addrs, proto: u8, len: u32) -> u64 {
    // The upper-layer length and protocol occupy the low bits either way:
    // IPv4 has (0, proto, len16), IPv6 has (len32, 0, 0, 0, proto).
    addrs.checksum_sum() + u64::from(proto) + u64::from(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_worked_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(&data, 0)), 0xddf2);
        // Odd length: a trailing byte is the high half of a padded word.
        assert_eq!(fold(add(&[0x01, 0x02, 0x03], 0)), 0x0102 + 0x0300);
    }

    #[test]
    fn ipv4_header_known_answer() {
        // A widely quoted IPv4 header whose checksum field is 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verifies(&hdr, 0));
        let mut bad = hdr;
        bad[11] ^= 1;
        assert!(!verifies(&bad, 0));
    }
}
