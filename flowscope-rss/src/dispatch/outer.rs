//! The dispatcher's fast path: the outer 5-tuple read straight from the
//! frame bytes, without running the extractor.
//!
//! [`classify`] answers for three cases, and only when the frame is
//! Ethernet (up to two 802.1Q/802.1ad tags), Linux cooked v1/v2 or raw IP
//! around an IPv4 or IPv6 header (IPv6 extension headers are walked):
//!
//! - **plain**: not a fragment, not a tunnel the extractor would unwrap
//!   (IP-in-IP, 6in4, GRE, UDP to the VXLAN, Geneve, GTP-U or MPLS-over-UDP
//!   ports), and a transport header the extractor accepts. The extractor's
//!   key is then exactly these addresses, ports (ICMP: type and counterpart
//!   type or code) and protocol, so the worker is the same;
//! - **first fragment** of such a packet, transport header included: keyed
//!   the same way, and the dispatcher records it in its fragment table as
//!   it does from the extractor's `first_fragment` report;
//! - **later fragment** (offset above 0) of that outer header: the
//!   extractor stops there too (`Skip::Fragment`), and the dispatcher looks
//!   it up in its table by the same datagram identity.
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

use flowscope::extract::{icmp_counterpart, ExtractConfig, MAX_IPV6_EXT_HEADERS};
use flowscope_core::{LinkType, PacketView};

/// 802.1Q/802.1ad tags the fast path walks (more go to the extractor).
const MAX_TAGS: u8 = 2;

/// What the frame bytes alone say about a packet's worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outer {
    /// A plain packet: the extractor keys it by this flow.
    Plain(Flow),
    /// The first fragment (offset 0, more to come) of a plain packet: keyed
    /// by its flow like a plain one, and remembered under its datagram
    /// identity for the later fragments, as the extractor's first-fragment
    /// report is.
    First(Flow, Frag),
    /// A later fragment (offset > 0) of the outer IP header: the extractor
    /// stops there with `Skip::Fragment` for this datagram.
    Fragment(Frag),
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
            Pair::V4(a, b) => super::flow_hash_v4(a, 0, b, 0, 0, seed),
            Pair::V6(a, b) => super::flow_hash_v6(a, 0, b, 0, 0, seed),
        }
    }
}

/// A packet's flow as the extractor keys it: addresses, "ports" (0 for
/// protocols without), protocol; source first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Flow {
    pair: Pair,
    sport: u16,
    dport: u16,
    proto: u8,
}

impl Flow {
    pub(super) fn new(pair: Pair, sport: u16, dport: u16, proto: u8) -> Self {
        Flow {
            pair,
            sport,
            dport,
            proto,
        }
    }

    /// [`super::flow_hash`] of the flow, without building `IpAddr`s.
    #[inline]
    pub(super) fn hash(self, seed: u64) -> u64 {
        let Flow {
            pair,
            sport,
            dport,
            proto,
        } = self;
        match pair {
            Pair::V4(a, b) => super::flow_hash_v4(a, sport, b, dport, proto, seed),
            Pair::V6(a, b) => super::flow_hash_v6(a, sport, b, dport, proto, seed),
        }
    }
}

/// A fragmented datagram's identity: source, destination, protocol and
/// identification for IPv4 (RFC 791 §3.2); source, destination and the
/// fragment header's identification for IPv6 (RFC 8200 §4.5, which leaves
/// the protocol out: it is 0 here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Frag {
    pub(super) pair: Pair,
    proto: u8,
    id: u32,
}

impl Frag {
    pub(super) fn v4(src: u32, dst: u32, proto: u8, id: u32) -> Self {
        Frag {
            pair: Pair::V4(src, dst),
            proto,
            id,
        }
    }

    pub(super) fn v6(pair: Pair, id: u32) -> Self {
        Frag { pair, proto: 0, id }
    }

    /// A keyed hash of the identity (directed: a datagram's fragments all
    /// have the same source). Never 0, the empty table slot's tag.
    #[inline]
    pub(super) fn ident(self, seed: u64) -> u64 {
        let extra = u64::from(self.proto) << 32 | u64::from(self.id);
        let h = match self.pair {
            Pair::V4(a, b) => super::absorb(seed, 0xf4, u64::from(a) << 32 | u64::from(b), extra),
            Pair::V6(a, b) => {
                let h = super::absorb(seed, 0xf6, (a >> 64) as u64, a as u64);
                super::absorb(h, extra, (b >> 64) as u64, b as u64)
            }
        };
        h | 1
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
    let ident = || Frag::v4(src, dst, h[9], u32::from(u16::from_be_bytes([h[4], h[5]])));
    if frag & 0x1fff != 0 {
        // A later fragment: nothing past this header is read (RFC 791).
        return Some(Outer::Fragment(ident()));
    }
    let first = frag & 0x2000 != 0;
    let end = off + total;
    if end > wire_end {
        return None;
    }
    let d = d.get(..end).unwrap_or(d);
    // A first fragment too short for its transport header is a lookup in
    // the extractor (`Skip::Fragment`): left to it, as are all failures.
    let (sport, dport) = transport(d, off + hdr_len, h[9], (total - hdr_len) as u32, config)?;
    let flow = Flow {
        pair: Pair::V4(src, dst),
        sport,
        dport,
        proto: h[9],
    };
    Some(if first {
        Outer::First(flow, ident())
    } else {
        Outer::Plain(flow)
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
                    return Some(Outer::Fragment(Frag::v6(v6_pair(h), id)));
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
    let (sport, dport) = transport(d, p, next, (end - p) as u32, config)?;
    let pair = v6_pair(h);
    let flow = Flow {
        pair,
        sport,
        dport,
        proto: next,
    };
    Some(match first {
        Some(id) => Outer::First(flow, Frag::v6(pair, id)),
        None => Outer::Plain(flow),
    })
}

/// The upper-layer protocol of an IPv6 packet (`ip` from its header on,
/// `next` the header's Next Header) and where its header starts, past the
/// extension headers (RFC 8200 §4), fragment header included.
pub(super) fn v6_upper_layer(ip: &[u8], mut next: u8) -> Option<(u8, usize)> {
    let mut p = 40;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let e: &[u8; 2] = ip.get(p..)?.first_chunk()?;
        let len = match next {
            0 | 60 | 43 | 135 => (usize::from(e[1]) + 1) * 8,
            51 => (usize::from(e[1]) + 2) * 4,
            44 => 8,
            _ => return Some((next, p)),
        };
        next = e[0];
        p += len;
    }
    None
}

/// The addresses of an IPv6 header.
#[inline(always)]
pub(super) fn v6_pair(h: &[u8; 40]) -> Pair {
    let addr = |at: usize| {
        h.get(at..at + 16)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map_or(0, u128::from_be_bytes)
    };
    Pair::V6(addr(8), addr(24))
}

/// The "ports" the extractor keys this transport header of protocol
/// `proto` at `off` (`wire` bytes of IP payload) by, when it keys it
/// without unwrapping a tunnel: TCP, UDP and SCTP ports, ICMP type and
/// counterpart type (or code), 0 and 0 for protocols without ports.
#[inline(always)]
fn transport(
    d: &[u8],
    off: usize,
    proto: u8,
    wire: u32,
    config: &ExtractConfig,
) -> Option<(u16, u16)> {
    let need = |n: usize| d.get(off..)?.get(..n);
    match proto {
        4 | 41 | 47 if config.decap_tunnels => None,
        6 => {
            let h = need(20)?;
            let hdr_len = usize::from(h.get(12)? >> 4) * 4;
            // The options must be captured whole.
            (wire >= 20 && hdr_len >= 20 && hdr_len as u32 <= wire)
                .then(|| need(hdr_len))
                .flatten()?;
            Some((be16(h, 0)?, be16(h, 2)?))
        }
        17 => {
            let h = need(8)?;
            let (sport, dport) = (be16(h, 0)?, be16(h, 2)?);
            let tunnel = config.decap_tunnels && config.is_udp_tunnel_port(sport, dport);
            (wire >= 8 && be16(h, 4)? >= 8 && !tunnel).then_some((sport, dport))
        }
        1 | 58 => {
            // Type and code stand for the ports (Community ID spec, as the
            // extractor keys them): the type, and the type answering it or
            // else the code.
            let h = (wire >= 8).then(|| need(8)).flatten()?;
            let (ty, code) = (*h.first()?, *h.get(1)?);
            let answer = icmp_counterpart(proto, ty).unwrap_or(code);
            Some((u16::from(ty), u16::from(answer)))
        }
        132 => {
            let h = (wire >= 12).then(|| need(12)).flatten()?;
            Some((be16(h, 0)?, be16(h, 2)?))
        }
        _ => Some((0, 0)),
    }
}
