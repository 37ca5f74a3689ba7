//! IPv4 and IPv6 headers, IPv6 extension headers and fragments.

use flowscope_core::{FragmentInfo, MalformedReason, Skip};

use super::addr::Addrs;
use super::bytes::{chunk, pair, quad};

const TRUNCATED: Skip = Skip::Malformed(MalformedReason::TruncatedIp);
const BAD_EXT: Skip = Skip::Malformed(MalformedReason::BadIpv6ExtHeader);

/// Most IPv6 extension headers walked before the packet is judged malformed.
/// RFC 8200 §4.1 allows each header once (destination options twice), so a
/// legitimate chain is well below this.
pub const MAX_IPV6_EXT_HEADERS: usize = 10;

/// One decoded IP header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpHeader {
    pub version: u8,
    pub addrs: Addrs,
    /// Protocol of the payload (after IPv6 extension headers).
    pub proto: u8,
    /// Length of the fixed header (IPv4: IHL bytes, IPv6: 40).
    pub hdr_len: usize,
    /// Where the transport header starts (after any extension headers).
    pub transport_off: usize,
    /// Total length of the IP packet on the wire (header + payload).
    pub ip_len: u32,
    /// The length fields were zero (IPv6 jumbogram, or TSO-mangled IPv4):
    /// the captured length stands in for them.
    pub zero_len: bool,
    /// Set on the first fragment of a fragmented datagram.
    pub first_fragment: Option<FragmentInfo>,
    /// The final destination named by an IPv6 routing header that still has
    /// segments left: the transport checksum covers it, not the header's
    /// current destination (RFC 8200 §8.1).
    pub final_dst: Option<u128>,
}

impl IpHeader {
    /// Offset just past the packet on the wire.
    #[inline]
    pub fn end(&self, off: usize) -> usize {
        off.saturating_add(self.ip_len as usize)
    }

    /// Transport payload length on the wire (header fields), including the
    /// transport header itself.
    #[inline]
    pub fn transport_wire_len(&self, off: usize) -> u32 {
        self.end(off).saturating_sub(self.transport_off) as u32
    }
}

/// The version nibble of the IP header at `off`, checked against `want`.
#[inline]
pub(crate) fn version(d: &[u8], off: usize, want: Option<u8>) -> Result<u8, Skip> {
    let v = d.get(off).ok_or(TRUNCATED)? >> 4;
    match want {
        Some(w) if w != v => Err(Skip::Malformed(MalformedReason::BadIpVersion)),
        _ if v == 4 || v == 6 => Ok(v),
        _ => Err(Skip::Malformed(MalformedReason::BadIpVersion)),
    }
}

/// Decodes the IPv4 header at `off`. Non-first fragments are `Skip::Fragment`.
#[inline]
pub(crate) fn ipv4(d: &[u8], off: usize) -> Result<IpHeader, Skip> {
    let h: &[u8; 20] = chunk(d, off).ok_or(TRUNCATED)?;
    if h[0] >> 4 != 4 {
        return Err(Skip::Malformed(MalformedReason::BadIpVersion));
    }
    let hdr_len = usize::from(h[0] & 0x0f) * 4;
    let captured = d.len().saturating_sub(off);
    if hdr_len < 20 || hdr_len > captured {
        return Err(Skip::Malformed(MalformedReason::BadIpHeaderLen));
    }
    let mut total = usize::from(pair(h[2], h[3]));
    let zero_len = total == 0;
    if zero_len {
        // TCP segmentation offload leaves the field zero in captures taken
        // on the sending host; Zeek then falls back to the captured length.
        total = captured;
    } else if total < hdr_len {
        return Err(Skip::Malformed(MalformedReason::BadIpTotalLen));
    }
    let frag = pair(h[6], h[7]);
    let more = frag & 0x2000 != 0;
    let frag_off = u32::from(frag & 0x1fff) * 8;
    let info = FragmentInfo {
        ip_offset: off as u32,
        id: u32::from(pair(h[4], h[5])),
        offset: frag_off,
        more,
    };
    if frag_off > 0 {
        return Err(Skip::Fragment(info));
    }
    Ok(IpHeader {
        version: 4,
        addrs: Addrs::V4 {
            src: quad(h[12], h[13], h[14], h[15]),
            dst: quad(h[16], h[17], h[18], h[19]),
        },
        proto: h[9],
        hdr_len,
        transport_off: off + hdr_len,
        ip_len: total as u32,
        zero_len,
        first_fragment: more.then_some(info),
        final_dst: None,
    })
}

/// Decodes the IPv6 header at `off` and walks its extension headers.
#[inline]
pub(crate) fn ipv6(d: &[u8], off: usize) -> Result<IpHeader, Skip> {
    let h: &[u8; 40] = chunk(d, off).ok_or(TRUNCATED)?;
    if h[0] >> 4 != 6 {
        return Err(Skip::Malformed(MalformedReason::BadIpVersion));
    }
    let mut next = h[6];
    let mut payload = usize::from(pair(h[4], h[5]));
    // Zero means a jumbogram (RFC 2675) or a TSO capture; with no next
    // header it genuinely means an empty packet.
    let zero_len = payload == 0 && next != 59;
    if zero_len {
        payload = d.len().saturating_sub(off + 40);
    }
    let end = off + 40 + payload;
    let mut hdr = IpHeader {
        version: 6,
        addrs: Addrs::V6 {
            src: u128::from_be_bytes(*chunk::<16>(h, 8).ok_or(TRUNCATED)?),
            dst: u128::from_be_bytes(*chunk::<16>(h, 24).ok_or(TRUNCATED)?),
        },
        proto: next,
        hdr_len: 40,
        transport_off: off + 40,
        ip_len: (40 + payload) as u32,
        zero_len,
        first_fragment: None,
        final_dst: None,
    };
    let mut p = off + 40;
    let mut count = 0;
    loop {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility: length in
            // 8-byte units, not counting the first 8 (RFC 8200 §4.3-4.6, RFC 6275).
            0 | 60 | 135 => {
                let e: &[u8; 2] = chunk(d, p).ok_or(BAD_EXT)?;
                next = e[0];
                (usize::from(e[1]) + 1) * 8
            }
            43 => {
                let e: &[u8; 4] = chunk(d, p).ok_or(BAD_EXT)?;
                next = e[0];
                let len = (usize::from(e[1]) + 1) * 8;
                if e[3] > 0 {
                    hdr.final_dst = routing_final_dst(d, p, len, e[2]).or(hdr.final_dst);
                }
                len
            }
            // Authentication header: 4-byte units, minus 2 (RFC 4302 §2.2).
            51 => {
                let e: &[u8; 2] = chunk(d, p).ok_or(BAD_EXT)?;
                next = e[0];
                (usize::from(e[1]) + 2) * 4
            }
            44 => {
                let e: &[u8; 8] = chunk(d, p).ok_or(BAD_EXT)?;
                next = e[0];
                let field = pair(e[2], e[3]);
                let info = FragmentInfo {
                    ip_offset: off as u32,
                    id: quad(e[4], e[5], e[6], e[7]),
                    offset: u32::from(field >> 3) * 8,
                    more: field & 1 != 0,
                };
                if info.offset > 0 {
                    return Err(Skip::Fragment(info));
                }
                // Offset 0 without M is an atomic fragment (RFC 6946): whole.
                if info.more {
                    hdr.first_fragment = Some(info);
                }
                8
            }
            _ => break,
        };
        count += 1;
        p += len;
        if count > MAX_IPV6_EXT_HEADERS || p > end {
            return Err(BAD_EXT);
        }
    }
    hdr.proto = next;
    hdr.transport_off = p;
    Ok(hdr)
}

/// The final destination in a routing header of `len` bytes at `p` and type
/// `ty`: the last address of type 0 (RFC 2460) and type 2 (RFC 6275)
/// headers, the first segment of a segment routing header (RFC 8754 §2).
fn routing_final_dst(d: &[u8], p: usize, len: usize, ty: u8) -> Option<u128> {
    let at = match ty {
        0 | 2 if len >= 24 => p + len - 16,
        4 if len >= 24 => p + 8,
        _ => return None,
    };
    chunk::<16>(d, at).map(|a| u128::from_be_bytes(*a))
}
