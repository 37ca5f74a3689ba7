//! The 5-tuple fast path: one straight-line decode for the frame shapes that
//! make up most real traffic (71 % of the corpus mix).
//!
//! Why it exists: the general walk ([`super::decode`]) is a state machine
//! that can peel any stack of shims and tunnels; for a plain TCP segment it
//! still pays for its generality (the step loop, the `IpHeader`,
//! `Transport` and `Decoded` records moved between layers, the IPv6
//! extension-header loop). Issue 2 (≥ 10 M packets/s tracked on one core)
//! needs that cost gone for the common case.
//!
//! What it accepts, and nothing else:
//! - link: Ethernet with at most one 802.1Q/802.1ad tag, raw IP (101, 12,
//!   14, 228, 229), Linux cooked v1/v2 (113, 276) carrying IPv4 or IPv6;
//! - IPv4 with a 20-byte header (no options), a non-zero total length, not a
//!   fragment (MF clear, offset 0); or IPv6 with a non-zero payload length
//!   whose transport header comes first or after one hop-by-hop options
//!   header (MLD reports and other router-alert packets carry one);
//! - the IP packet no longer than the frame on the wire;
//! - TCP with a consistent, fully captured header (options included);
//! - UDP whose length fits the IP payload, and, when tunnels are unwrapped,
//!   on none of the ports the general walk treats as tunnels (VXLAN, Geneve,
//!   GTP-U in either direction, MPLS over UDP);
//! - ICMP or ICMPv6 with its 8-byte header captured (ports: the Community
//!   ID mapping of type and code, as the general walk).
//!
//! Checksum verification, any other link type or protocol, and any header
//! that is short, inconsistent or unusual returns `None`, and the caller runs
//! the general walk from scratch. For every frame it accepts, the result is
//! exactly the general walk's (`flowscope/tests/extract_fast_corpus.rs` and
//! the proptests in `extract/tests/fast.rs` check this, as does the `extract`
//! fuzz target). Every read is a bounds-checked fixed-size `chunk`; nothing
//! allocates.

use flowscope_core::{
    ChecksumStatus, EncapLayer, Extracted, FiveTuple, L4Proto, LinkType, PacketAnomalies,
    PacketView, PayloadRange, TcpFlags, TcpInfo,
};

use super::addr::Addrs;
use super::bytes::{chunk, pair, quad};
use super::shim::ethertype;
use super::transport::{icmp_counterpart, window_scale};
use super::ExtractConfig;

/// What the fast path read from one frame: everything [`Extracted`] holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fast {
    vlan: Option<u16>,
    addrs: Addrs,
    sport: u16,
    dport: u16,
    /// 6 (TCP), 17 (UDP), 1 (ICMP) or 58 (ICMPv6).
    proto: u8,
    l4: L4Proto,
    tcp: Option<TcpInfo>,
    ip_version: u8,
    ip_len: u32,
    payload_wire_len: u32,
    payload: PayloadRange,
}

impl Fast {
    /// Writes the whole result into `out` (every field, as the general path does).
    #[inline(always)]
    pub(crate) fn write(&self, out: &mut Extracted<FiveTuple>) {
        out.encap.clear();
        if let Some(id) = self.vlan {
            out.encap.push(EncapLayer::Vlan { id });
        }
        (out.key, out.orientation) = self.addrs.five_tuple(self.sport, self.dport, self.proto);
        out.l4 = self.l4;
        out.tcp = self.tcp;
        out.ip_version = self.ip_version;
        out.ip_len = self.ip_len;
        out.payload_wire_len = self.payload_wire_len;
        out.payload = self.payload;
        out.checksum = ChecksumStatus::Unchecked;
        out.first_fragment = None;
        out.anomalies = PacketAnomalies::NONE;
    }
}

/// The IP header the link layer leads to.
#[derive(Clone, Copy)]
enum Next {
    V4,
    V6,
}

/// Decodes `pkt` when it is one of the plain shapes above; `None` sends it
/// to the general walk.
#[inline(always)]
pub(crate) fn parse(pkt: &PacketView<'_>, config: &ExtractConfig) -> Option<Fast> {
    if config.verify_checksums {
        return None;
    }
    let d = pkt.data;
    let (off, next, vlan) = link(pkt.link_type, d, config)?;

    // The IP header: addresses, protocol, where the transport header starts
    // and where the packet ends.
    let (addrs, proto, ip_version, hdr_len, ip_len) = match next {
        Next::V4 => {
            let h: &[u8; 20] = chunk(d, off)?;
            let total = pair(h[2], h[3]);
            // Version 4 with IHL 5; zero (TSO) or short total lengths, and
            // MF or a fragment offset, are the general walk's business.
            if h[0] != 0x45 || total < 20 || pair(h[6], h[7]) & 0x3fff != 0 {
                return None;
            }
            let addrs = Addrs::V4 {
                src: quad(h[12], h[13], h[14], h[15]),
                dst: quad(h[16], h[17], h[18], h[19]),
            };
            (addrs, h[9], 4, 20, usize::from(total))
        }
        Next::V6 => {
            let h: &[u8; 40] = chunk(d, off)?;
            let payload = usize::from(pair(h[4], h[5]));
            // Zero is a jumbogram or TSO: the general walk's business.
            if h[0] >> 4 != 6 || payload == 0 {
                return None;
            }
            // One hop-by-hop header (RFC 8200 §4.3: length in 8-byte units
            // past the first 8) may come first; it must end inside the
            // payload, as the general walk requires. Any other next header
            // may be another extension header: general walk.
            let (proto, ext_len) = if h[6] == 0 {
                let e: &[u8; 2] = chunk(d, off + 40)?;
                let len = (usize::from(e[1]) + 1) * 8;
                if len > payload {
                    return None;
                }
                (e[0], len)
            } else {
                (h[6], 0)
            };
            if !matches!(proto, 6 | 17 | 1 | 58) {
                return None;
            }
            let addrs = Addrs::V6 {
                src: u128::from_be_bytes(*chunk::<16>(h, 8)?),
                dst: u128::from_be_bytes(*chunk::<16>(h, 24)?),
            };
            (addrs, proto, 6, 40 + ext_len, 40 + payload)
        }
    };
    // More bytes claimed than the frame had on the wire is malformed (the
    // general walk says which way); bytes past the IP length are trailer.
    let end = off + ip_len;
    if end > (pkt.wire_len as usize).max(d.len()) {
        return None;
    }
    let d = d.get(..end).unwrap_or(d);
    let toff = off + hdr_len;
    // IP payload on the wire, transport header included.
    let wire = ip_len - hdr_len;

    let (l4, sport, dport, tcp, thdr_len, payload_wire) = match proto {
        6 => {
            let t: &[u8; 20] = chunk(d, toff)?;
            let thdr_len = usize::from(t[12] >> 4) * 4;
            if thdr_len < 20 || thdr_len > wire {
                return None;
            }
            // Options must be captured whole, as in the general walk.
            let opts = d.get(toff + 20..toff + thdr_len)?;
            let flags = TcpFlags(t[13]);
            let mut info = TcpInfo::new(
                quad(t[4], t[5], t[6], t[7]),
                quad(t[8], t[9], t[10], t[11]),
                pair(t[14], t[15]),
                flags,
            );
            if flags.syn() {
                info.window_scale = window_scale(opts);
            }
            let (sport, dport) = (pair(t[0], t[1]), pair(t[2], t[3]));
            let l4 = L4Proto::Tcp;
            (l4, sport, dport, Some(info), thdr_len, wire - thdr_len)
        }
        17 => {
            let u: &[u8; 8] = chunk(d, toff)?;
            let (sport, dport) = (pair(u[0], u[1]), pair(u[2], u[3]));
            if config.decap_tunnels && config.is_udp_tunnel_port(sport, dport) {
                return None;
            }
            let len = usize::from(pair(u[4], u[5]));
            // A UDP length past the IP payload is a counted anomaly: general.
            if len < 8 || len > wire {
                return None;
            }
            (L4Proto::Udp, sport, dport, None, 8, len - 8)
        }
        1 | 58 => {
            // Zeek's ICMP_MINLEN: the 8-byte header on the wire and captured.
            let h: &[u8; 8] = chunk(d, toff)?;
            if wire < 8 {
                return None;
            }
            let (ty, code) = (h[0], h[1]);
            let l4 = if proto == 1 {
                L4Proto::Icmp
            } else {
                L4Proto::Icmpv6
            };
            let dport = u16::from(icmp_counterpart(proto, ty).unwrap_or(code));
            (l4, u16::from(ty), dport, None, 8, wire - 8)
        }
        _ => return None,
    };
    let poff = toff + thdr_len;
    let captured = d.len().saturating_sub(poff).min(payload_wire);
    Some(Fast {
        vlan,
        addrs,
        sport,
        dport,
        proto,
        l4,
        tcp,
        ip_version,
        // Exact conversions: an IP packet is at most 40 + 65535 bytes, the
        // payload offset at most 20 (link) + 40 (IPv6) + 2048 (hop-by-hop)
        // + 60 (TCP), and `captured` at most `payload_wire`: all < 2^17.
        ip_len: ip_len as u32,
        payload_wire_len: payload_wire as u32,
        payload: PayloadRange {
            offset: poff as u32,
            len: captured as u32,
        },
    })
}

/// Where the IP header starts, which version the link layer announces, and
/// the VLAN tag peeled on the way.
#[inline(always)]
fn link(lt: LinkType, d: &[u8], config: &ExtractConfig) -> Option<(usize, Next, Option<u16>)> {
    let by_type = |ty: u16| match ty {
        ethertype::IPV4 => Some(Next::V4),
        ethertype::IPV6 => Some(Next::V6),
        _ => None,
    };
    // Ethernet first: it is nearly every capture.
    if lt == LinkType::ETHERNET {
        let h: &[u8; 14] = chunk(d, 0)?;
        return match pair(h[12], h[13]) {
            ethertype::IPV4 => Some((14, Next::V4, None)),
            ethertype::IPV6 => Some((14, Next::V6, None)),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                // The tag counts against the layer limit.
                if config.max_layers == 0 {
                    return None;
                }
                let t: &[u8; 4] = chunk(d, 14)?;
                let next = by_type(pair(t[2], t[3]))?;
                Some((18, next, Some(pair(t[0], t[1]) & 0x0fff)))
            }
            _ => None,
        };
    }
    match lt {
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => {
            match d.first().copied()? >> 4 {
                4 => Some((0, Next::V4, None)),
                6 => Some((0, Next::V6, None)),
                _ => None,
            }
        }
        LinkType::IPV4 => Some((0, Next::V4, None)),
        LinkType::IPV6 => Some((0, Next::V6, None)),
        LinkType::LINUX_SLL => {
            let h: &[u8; 16] = chunk(d, 0)?;
            Some((16, by_type(pair(h[14], h[15]))?, None))
        }
        LinkType::LINUX_SLL2 => {
            let h: &[u8; 20] = chunk(d, 0)?;
            Some((20, by_type(pair(h[0], h[1]))?, None))
        }
        _ => None,
    }
}
