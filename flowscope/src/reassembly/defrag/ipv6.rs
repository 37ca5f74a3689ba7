//! IPv6 fragments (RFC 8200 §4.5): finding the Fragment header, rebuilding
//! the packet without it.

use super::table::Key;
use super::Fragment;

/// Next-header value of the Fragment header.
const FRAGMENT: u8 = 44;
/// Most extension headers walked before the Fragment header. RFC 8200 §4.1
/// allows each once (destination options twice), so a real chain is shorter.
const MAX_EXT_HEADERS: usize = 8;

/// Reads an IPv6 fragment starting at its fixed header, walking the
/// extension headers of the unfragmentable part to the Fragment header.
///
/// Only Hop-by-Hop Options, Routing and Destination Options may precede the
/// Fragment header (RFC 8200 §4.5: the unfragmentable part is what nodes on
/// the path process); any other header first means this is not a fragment
/// or is malformed, and gives `None`. So does a packet cut short, not wholly
/// captured, or with a zero payload length (jumbograms are not supported).
/// Bytes past the payload length (link-layer padding) are ignored.
pub(super) fn parse(ip: &[u8]) -> Option<Fragment<'_>> {
    let h: &[u8; 40] = ip.first_chunk()?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let end = 40 + payload;
    if payload == 0 || end > ip.len() {
        return None;
    }
    let mut next = h[6];
    let mut next_pos = 6usize;
    let mut pos = 40usize;
    let mut walked = 0;
    while next != FRAGMENT {
        if !matches!(next, 0 | 43 | 60) || walked == MAX_EXT_HEADERS {
            return None;
        }
        let e: &[u8; 2] = ip.get(pos..)?.first_chunk()?;
        next = e[0];
        next_pos = pos;
        pos += (usize::from(e[1]) + 1) * 8;
        walked += 1;
    }
    let f: &[u8; 8] = ip.get(pos..end)?.first_chunk()?;
    let field = u16::from_be_bytes([f[2], f[3]]);
    Some(Fragment {
        key: Key {
            version: 6,
            // RFC 8200 §4.5 identifies a datagram by source, destination and
            // Identification only: the Next Header of non-first fragments
            // may differ and only the first one's counts.
            proto: 0,
            id: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
            src: u128::from_be_bytes(*h[8..].first_chunk::<16>()?),
            dst: u128::from_be_bytes(*h[24..].first_chunk::<16>()?),
        },
        offset: u32::from(field >> 3) * 8,
        more: field & 1 != 0,
        header: ip.get(..pos)?,
        data: ip.get(pos + 8..end)?,
        next_header: Some((next_pos, f[0])),
    })
}

/// Bytes the unfragmentable part adds to the 16-bit payload length field
/// (the fixed 40-byte header is not counted in it).
pub(super) fn header_overhead(header_len: usize) -> usize {
    header_len.saturating_sub(40)
}

/// Fixes a rebuilt packet in place: `packet` is the first fragment's
/// unfragmentable part followed by the whole fragmentable part. Sets the
/// payload length and writes `next` (the first fragment's Fragment header
/// Next Header) into the header that preceded the Fragment header, at
/// `next_pos`. False if the packet does not fit.
pub(super) fn finish(packet: &mut [u8], next_pos: usize, next: u8) -> bool {
    let Ok(payload) = u16::try_from(packet.len().saturating_sub(40)) else {
        return false;
    };
    let Some(len) = packet.get_mut(4..6) else {
        return false;
    };
    len.copy_from_slice(&payload.to_be_bytes());
    let Some(nh) = packet.get_mut(next_pos) else {
        return false;
    };
    *nh = next;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(exts: &[(u8, u8)], frag_next: u8, field: u16, data: &[u8]) -> Vec<u8> {
        // exts: (this header's type, unused) chained before the Fragment header.
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = exts.first().map_or(FRAGMENT, |e| e.0);
        for (i, _) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(FRAGMENT, |e| e.0);
            p.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
        }
        p.extend_from_slice(&[frag_next, 0]);
        p.extend_from_slice(&field.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(data);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn walks_to_the_fragment_header() {
        let p = packet(&[(0, 0), (60, 0)], 17, (1 << 3) | 1, &[9; 16]);
        let f = parse(&p).expect("a fragment");
        assert_eq!(f.offset, 8);
        assert!(f.more);
        assert_eq!(f.header.len(), 56);
        assert_eq!(f.data, &[9; 16]);
        assert_eq!(f.key.id, 7);
        // The destination options header at 48 named the Fragment header.
        assert_eq!(f.next_header, Some((48, 17)));
    }

    #[test]
    fn refuses_other_headers_before_the_fragment_header() {
        // An upper-layer header (UDP) before any Fragment header.
        let mut p = packet(&[], 17, 1, &[0; 8]);
        p[6] = 17;
        assert!(parse(&p).is_none());
        // Jumbogram marker: zero payload length.
        let mut p = packet(&[], 17, 1, &[0; 8]);
        p[4..6].copy_from_slice(&[0, 0]);
        assert!(parse(&p).is_none());
        // Cut short inside the Fragment header.
        let p = packet(&[], 17, 1, &[]);
        assert!(parse(&p[..44]).is_none());
    }
}
