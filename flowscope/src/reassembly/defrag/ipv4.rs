//! IPv4 fragments (RFC 791 §3.2): reading one, rebuilding the whole header.

use super::table::Key;
use super::Fragment;

/// More-fragments flag in the flags/offset field.
const MF: u16 = 0x2000;
/// Don't-fragment flag.
const DF: u16 = 0x4000;

/// Reads an IPv4 fragment starting at its header.
///
/// `None` when the header is cut short or inconsistent, when the packet is
/// not wholly captured (a datagram cannot be rebuilt from a snapped
/// fragment), or when it is not a fragment at all (offset 0 and MF clear).
/// Bytes past the total length (link-layer padding) are ignored. The header
/// checksum is not verified: captures taken on the sending host often carry
/// offloaded, unfilled checksums, and the rebuilt header gets a fresh one.
pub(super) fn parse(ip: &[u8]) -> Option<Fragment<'_>> {
    let h: &[u8; 20] = ip.first_chunk()?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // A zero total length (TSO) cannot be trusted to place a fragment.
    if ihl < 20 || total < ihl || total > ip.len() {
        return None;
    }
    let field = u16::from_be_bytes([h[6], h[7]]);
    let offset = u32::from(field & 0x1fff) * 8;
    let more = field & MF != 0;
    if offset == 0 && !more {
        return None;
    }
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    Some(Fragment {
        key: Key {
            version: 4,
            proto: h[9],
            id: u32::from(u16::from_be_bytes([h[4], h[5]])),
            src: u128::from(src),
            dst: u128::from(dst),
        },
        offset,
        more,
        header: ip.get(..ihl)?,
        data: ip.get(ihl..total)?,
        next_header: None,
    })
}

/// Bytes the header adds to the 16-bit total length field.
pub(super) fn header_overhead(header_len: usize) -> usize {
    header_len
}

/// Fixes the header of a rebuilt datagram in place: `packet` is the first
/// fragment's header followed by the whole payload. Sets the total length,
/// clears MF and the offset (keeping DF as the first fragment had it) and
/// recomputes the header checksum. False if the header does not fit.
pub(super) fn finish(packet: &mut [u8], header_len: usize) -> bool {
    let Ok(total) = u16::try_from(packet.len()) else {
        return false;
    };
    let Some(h) = packet.get_mut(..header_len) else {
        return false;
    };
    let Some(flags) = h
        .get(6..)
        .and_then(<[u8]>::first_chunk::<2>)
        .map(|f| u16::from_be_bytes(*f) & DF)
    else {
        return false;
    };
    let [_, _, t0, t1, _, _, f0, f1, _, _, c0, c1, ..] = h else {
        return false;
    };
    [*t0, *t1] = total.to_be_bytes();
    [*f0, *f1] = flags.to_be_bytes();
    [*c0, *c1] = [0, 0];
    let sum = checksum(h);
    let Some(c) = h.get_mut(10..12) else {
        return false;
    };
    c.copy_from_slice(&sum.to_be_bytes());
    true
}

/// The Internet checksum (RFC 1071) of `bytes`: the one's complement of the
/// one's complement sum of its 16-bit words.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = bytes.chunks_exact(2);
    for w in words.by_ref() {
        if let [a, b] = *w {
            sum += u32::from(u16::from_be_bytes([a, b]));
        }
    }
    if let [last] = *words.remainder() {
        sum += u32::from(u16::from_be_bytes([last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: words 0001 f203 f4f5 f6f7 sum to
    /// 0xddf2 after the end-around carry, so the checksum is !0xddf2.
    #[test]
    fn checksum_matches_rfc_1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn rejects_non_fragments_and_truncation() {
        let mut h = [0u8; 28];
        h[0] = 0x45;
        h[3] = 28;
        // Offset 0, MF clear: a whole packet.
        assert!(parse(&h).is_none());
        h[6] = 0x20; // MF
        assert!(parse(&h).is_some());
        // Total length past the captured bytes.
        assert!(parse(&h[..27]).is_none());
        // IHL below 5 words.
        h[0] = 0x44;
        assert!(parse(&h).is_none());
        assert!(parse(&[]).is_none());
    }
}
