//! The dispatcher's fast path: the outer IP pair read straight from the
//! frame bytes, without running the extractor.
//!
//! [`classify`] answers for three cases, and only when the frame is
//! Ethernet (up to two 802.1Q/802.1ad tags), Linux cooked v1/v2 or raw IP
//! around an IPv4 or IPv6 header (IPv6 extension headers are walked):
//!
//! - **plain**: not a fragment, not a tunnel the extractor would unwrap
//!   (IP-in-IP, 6in4, GRE, UDP to the VXLAN, Geneve, GTP-U or MPLS-over-UDP
//!   ports), and a transport header the extractor accepts. The extractor's
//!   key is then exactly that IP pair, so the worker is the same;
//! - **first fragment** of such a packet, transport header included: keyed
//!   the same way, and the dispatcher records it in its fragment table as
//!   it does from the extractor's `first_fragment` report;
//! - **later fragment** (offset above 0) of that outer header: the
//!   extractor stops there too (`Skip::Fragment`), and the dispatcher looks
//!   it up in its table by the same addresses and IP id.
//!
//! Everything else (tunnels, MPLS, PPPoE, more tags, zero length fields,
//! broken IPv6 header chains, first fragments too short for their transport
//! header, truncated or malformed headers, other link types) returns `None`
//! and goes through the full extractor: the fast path never has to get an
//! error case right, only to recognise the cases it is sure of.
//!
//! The checks mirror `flowscope::extract` (`decode`, `ip`, `transport`);
//! `fast_path_tests` (a proptest over mutated frames) and
//! `tests/dispatch_corpus.rs` (every corpus packet) compare both paths, so
//! an extractor change this module does not follow fails them.

use std::net::IpAddr;

use flowscope::extract::ExtractConfig;
use flowscope_core::{LinkType, PacketView};

/// 802.1Q/802.1ad tags the fast path walks (more go to the extractor).
const MAX_TAGS: u8 = 2;
/// IPv6 extension headers the extractor walks before calling the chain
/// malformed (`flowscope::extract::ip::MAX_IPV6_EXT_HEADERS`).
const MAX_IPV6_EXT_HEADERS: usize = 10;
/// The MPLS-over-UDP port the extractor decodes (RFC 7510 §3).
const MPLS_UDP_PORT: u16 = 6635;

/// What the frame bytes alone say about a packet's worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outer {
    /// A plain packet: the extractor keys it by this pair.
    Plain(Pair),
    /// The first fragment (offset 0, more to come) of a plain packet: keyed
    /// by this pair like a plain one, and remembered under this IP id for
    /// the later fragments, as the extractor's first-fragment report does.
    First(Pair, u32),
    /// A later fragment (offset > 0) of the outer IP header: the extractor
    /// stops there with `Skip::Fragment` for this pair and IP id.
    Fragment(Pair, u32),
}

/// An outer IP address pair, source first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pair {
    /// IPv4 source and destination.
    V4(u32, u32),
    /// IPv6 source and destination.
    V6(u128, u128),
}

impl Pair {
    /// [`super::pair_hash`] of the pair, without building `IpAddr`s.
    #[inline]
    pub(super) fn hash(self, seed: u64) -> u64 {
        match self {
            Pair::V4(a, b) => super::pair_hash_v4(a, b, seed),
            Pair::V6(a, b) => super::pair_hash_v6(a, b, seed),
        }
    }

    /// Source and destination.
    pub(super) fn addrs(self) -> (IpAddr, IpAddr) {
        match self {
            Pair::V4(a, b) => (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes())),
            Pair::V6(a, b) => (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes())),
        }
    }
}

#[inline(always)]
fn be16(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*d.get(off..)?.first_chunk::<2>()?))
}

/// The pair the extractor would key `pkt` by, when `pkt` is a plain packet
/// (see the module docs); `None` when the extractor must decide.
#[inline]
pub(super) fn classify(pkt: &PacketView<'_>, config: &ExtractConfig) -> Option<Outer> {
    let d = pkt.data;
    // A wire length below the captured length is bogus (as in the extractor).
    let wire_end = (pkt.wire_len as usize).max(d.len());
    let (mut ty, mut off) = match pkt.link_type {
        LinkType::ETHERNET => (be16(d, 12)?, 14),
        // The extractor requires the whole 16-byte header: the EtherType
        // is its last field.
        LinkType::LINUX_SLL => (be16(d, 14)?, 16),
        LinkType::LINUX_SLL2 => {
            d.get(..20)?;
            (be16(d, 0)?, 20)
        }
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => {
            return match d.first()? >> 4 {
                4 => ipv4(d, 0, wire_end, config),
                6 => ipv6(d, 0, wire_end, config),
                _ => None,
            }
        }
        LinkType::IPV4 => return ipv4(d, 0, wire_end, config),
        LinkType::IPV6 => return ipv6(d, 0, wire_end, config),
        _ => return None,
    };
    let mut tags = 0u8;
    loop {
        match ty {
            0x0800 => return ipv4(d, off, wire_end, config),
            0x86dd => return ipv6(d, off, wire_end, config),
            0x8100 | 0x88a8 | 0x9100 => {
                // Each tag is a layer the extractor counts against its limit.
                tags += 1;
                if tags > MAX_TAGS || tags > config.max_layers {
                    return None;
                }
                ty = be16(d, off + 2)?;
                off += 4;
            }
            _ => return None,
        }
    }
}

#[inline(always)]
fn ipv4(d: &[u8], off: usize, wire_end: usize, config: &ExtractConfig) -> Option<Outer> {
    let h: &[u8; 20] = d.get(off..)?.first_chunk()?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let hdr_len = usize::from(h[0] & 0x0f) * 4;
    let captured = d.len().saturating_sub(off);
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Zero total length (TSO) changes the transport checks: extractor.
    if hdr_len < 20 || hdr_len > captured || total == 0 || total < hdr_len {
        return None;
    }
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let frag = u16::from_be_bytes([h[6], h[7]]);
    if frag & 0x1fff != 0 {
        // A later fragment: nothing past this header is read (RFC 791).
        let id = u32::from(u16::from_be_bytes([h[4], h[5]]));
        return Some(Outer::Fragment(Pair::V4(src, dst), id));
    }
    let first = frag & 0x2000 != 0;
    let end = off + total;
    if end > wire_end {
        return None;
    }
    let d = d.get(..end).unwrap_or(d);
    // A first fragment too short for its transport header is a lookup in
    // the extractor (`Skip::Fragment`): left to it, as are all failures.
    transport(d, off + hdr_len, h[9], (total - hdr_len) as u32, config)?;
    let pair = Pair::V4(src, dst);
    Some(if first {
        Outer::First(pair, u32::from(u16::from_be_bytes([h[4], h[5]])))
    } else {
        Outer::Plain(pair)
    })
}

#[inline(always)]
fn ipv6(d: &[u8], off: usize, wire_end: usize, config: &ExtractConfig) -> Option<Outer> {
    let h: &[u8; 40] = d.get(off..)?.first_chunk()?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let mut next = h[6];
    let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // A zero payload length (jumbogram, TSO) changes the length checks:
    // extractor.
    if payload == 0 {
        return None;
    }
    let end = off + 40 + payload;
    if end > wire_end {
        return None;
    }
    // Extension headers, walked as the extractor walks them (over the
    // uncut frame, RFC 8200 §4); a fragment header or a broken chain goes
    // to the extractor.
    let mut p = off + 40;
    let mut count = 0;
    let mut first = None;
    loop {
        let len = match next {
            0 | 60 | 135 => {
                let e: &[u8; 2] = d.get(p..)?.first_chunk()?;
                next = e[0];
                (usize::from(e[1]) + 1) * 8
            }
            43 => {
                let e: &[u8; 4] = d.get(p..)?.first_chunk()?;
                next = e[0];
                (usize::from(e[1]) + 1) * 8
            }
            51 => {
                let e: &[u8; 2] = d.get(p..)?.first_chunk()?;
                next = e[0];
                (usize::from(e[1]) + 2) * 4
            }
            44 => {
                let e: &[u8; 8] = d.get(p..)?.first_chunk()?;
                next = e[0];
                let field = u16::from_be_bytes([e[2], e[3]]);
                let id = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
                // A later fragment (RFC 8200 §4.5): the walk stops here.
                if field >> 3 != 0 {
                    return Some(Outer::Fragment(pair(h)?, id));
                }
                // A first fragment; offset 0 without M is an atomic
                // fragment (RFC 6946), a whole packet.
                if field & 1 != 0 {
                    first = Some(id);
                }
                8
            }
            _ => break,
        };
        count += 1;
        p += len;
        if count > MAX_IPV6_EXT_HEADERS || p > end {
            return None;
        }
    }
    let d = d.get(..end).unwrap_or(d);
    transport(d, p, next, (end - p) as u32, config)?;
    let pair = pair(h)?;
    Some(match first {
        Some(id) => Outer::First(pair, id),
        None => Outer::Plain(pair),
    })
}

/// The addresses of an IPv6 header.
#[inline(always)]
fn pair(h: &[u8; 40]) -> Option<Pair> {
    let src = u128::from_be_bytes(*h.get(8..)?.first_chunk::<16>()?);
    let dst = u128::from_be_bytes(*h.get(24..)?.first_chunk::<16>()?);
    Some(Pair::V6(src, dst))
}

/// `Some` when the extractor keys this transport header of protocol `proto`
/// at `off` (`wire` bytes of IP payload) without unwrapping a tunnel.
#[inline(always)]
fn transport(d: &[u8], off: usize, proto: u8, wire: u32, config: &ExtractConfig) -> Option<()> {
    let need = |n: usize| d.get(off..)?.get(..n);
    match proto {
        4 | 41 | 47 if config.decap_tunnels => None,
        6 => {
            let h = need(20)?;
            let hdr_len = usize::from(h.get(12)? >> 4) * 4;
            // The options must be captured whole.
            (wire >= 20 && hdr_len >= 20 && hdr_len as u32 <= wire)
                .then(|| need(hdr_len))
                .flatten()
                .map(drop)
        }
        17 => {
            let h = need(8)?;
            let (sport, dport) = (be16(h, 0)?, be16(h, 2)?);
            let tunnel = dport == config.vxlan_ports[0]
                || dport == config.vxlan_ports[1]
                || dport == config.geneve_port
                || dport == MPLS_UDP_PORT
                || dport == config.gtpu_port
                || sport == config.gtpu_port;
            (wire >= 8 && be16(h, 4)? >= 8 && !(config.decap_tunnels && tunnel)).then_some(())
        }
        1 | 58 => (wire >= 8).then(|| need(8)).flatten().map(drop),
        132 => (wire >= 12).then(|| need(12)).flatten().map(drop),
        _ => Some(()),
    }
}
