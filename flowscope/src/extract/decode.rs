//! The layer walk: link header to innermost IP and transport header.
//!
//! One pass over the frame's bytes, no allocation: a small state machine
//! ([`Step`]) moves from the link header through shims (VLAN, MPLS, PPPoE)
//! and tunnels to the innermost IP header, whose facts land in a
//! [`Decoded`]. Every offset only grows and every peeled layer is counted
//! against [`ExtractConfig::max_layers`], so hostile nesting (GRE in GRE in
//! GRE …) ends quickly.

use std::net::IpAddr;

use flowscope_core::{
    ChecksumStatus, Encap, EncapLayer, FragmentInfo, L4Proto, LinkType, MalformedReason,
    PacketAnomalies, PacketView, PayloadRange, Skip, TcpInfo,
};

use super::addr::Addrs;
use super::bytes::{be16, be32, chunk, pair};
use super::checksum;
use super::ip::{self, IpHeader};
use super::shim::{self, ethertype};
use super::transport::{self, IpContext, Transport};
use super::tunnel::{self, Tunnel, MPLS_UDP_PORT};
use super::ExtractConfig;

/// The next header to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An Ethernet header; `outer` when it is the frame's own link header.
    Ether { off: usize, outer: bool },
    /// A payload of this EtherType.
    EtherType { ty: u16, off: usize },
    /// An MPLS label stack.
    Mpls { off: usize },
    /// An IP header, its version required to be `version` when given.
    Ip { off: usize, version: Option<u8> },
}

/// Everything one frame says about its innermost IP packet: the shared
/// output of the layer walk from which each extractor derives its key.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Decoded {
    /// Innermost IP addresses (see [`Decoded::src`], [`Decoded::dst`]).
    pub(crate) addrs: Addrs,
    /// Sender's port (ICMP: the type, per the Community ID spec; 0 when the
    /// protocol has no ports).
    pub sport: u16,
    /// Receiver's port (ICMP: the counterpart type or the code).
    pub dport: u16,
    /// Transport protocol.
    pub l4: L4Proto,
    /// IP protocol number of the transport (the number behind `l4`).
    pub proto: u8,
    /// TCP header facts, for TCP.
    pub tcp: Option<TcpInfo>,
    /// Innermost IP version (4 or 6).
    pub ip_version: u8,
    /// Innermost IP packet length on the wire (from its length fields).
    pub ip_len: u32,
    /// Transport payload length on the wire.
    pub payload_wire_len: u32,
    /// Captured transport payload inside the frame.
    pub payload: PayloadRange,
    /// Checksum verdict (only when the config asks for verification).
    pub checksum: ChecksumStatus,
    /// Set when the innermost datagram (or an enclosing one) is a first fragment.
    pub first_fragment: Option<FragmentInfo>,
    /// Inconsistencies tolerated in the innermost headers.
    pub anomalies: PacketAnomalies,
}

impl Decoded {
    /// Innermost IP source address.
    pub fn src(&self) -> IpAddr {
        self.addrs.src()
    }
    /// Innermost IP destination address.
    pub fn dst(&self) -> IpAddr {
        self.addrs.dst()
    }
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded {
            addrs: Addrs::V4 { src: 0, dst: 0 },
            sport: 0,
            dport: 0,
            l4: L4Proto::Other(0),
            proto: 0,
            tcp: None,
            ip_version: 0,
            ip_len: 0,
            payload_wire_len: 0,
            payload: PayloadRange::default(),
            checksum: ChecksumStatus::Unchecked,
            first_fragment: None,
            anomalies: PacketAnomalies::NONE,
        }
    }
}

/// Decodes `pkt` down to its innermost IP packet and transport header,
/// recording the peeled outer layers in `encap` (outermost first).
///
/// Never panics and never allocates; every frame that is not a keyable IP
/// packet ends as a [`Skip`] saying why (`encap` then holds the layers
/// peeled before the walk stopped). The caller owns `encap` so that it can
/// live in its final place, such as [`flowscope_core::Extracted::encap`].
#[inline(always)]
pub fn decode(
    pkt: &PacketView<'_>,
    config: &ExtractConfig,
    encap: &mut Encap,
) -> Result<Decoded, Skip> {
    let mut out = Decoded::default();
    let mut w = Walker {
        d: pkt.data,
        // A reader's wire length below the captured length is bogus; the
        // captured bytes were certainly on the wire.
        wire_end: (pkt.wire_len as usize).max(pkt.data.len()),
        partial: false,
        layers: 0,
        config,
        out: &mut out,
        encap,
    };
    let mut step = link_start(pkt.link_type, pkt.data)?;
    loop {
        step = match step {
            Step::Ether { off, outer } => shim::ether(w.d, off, outer)?,
            Step::EtherType { ty, off } => w.ethertype(ty, off)?,
            Step::Mpls { off } => w.mpls(off)?,
            Step::Ip { off, version } => match w.ip(off, version)? {
                Some(next) => next,
                None => return Ok(out),
            },
        };
    }
}

/// Where the link-layer header of `link` leads.
#[inline]
fn link_start(link: LinkType, d: &[u8]) -> Result<Step, Skip> {
    const TRUNCATED: Skip = Skip::Malformed(MalformedReason::TruncatedLink);
    match link {
        LinkType::ETHERNET => Ok(Step::Ether {
            off: 0,
            outer: true,
        }),
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => Ok(Step::Ip {
            off: 0,
            version: None,
        }),
        LinkType::IPV4 => Ok(Step::Ip {
            off: 0,
            version: Some(4),
        }),
        LinkType::IPV6 => Ok(Step::Ip {
            off: 0,
            version: Some(6),
        }),
        LinkType::NULL => {
            // Host byte order of the capturing machine: a family fits in 16
            // bits, so a big value means the other order.
            let b: &[u8; 4] = chunk(d, 0).ok_or(TRUNCATED)?;
            let be = u32::from_be_bytes(*b);
            address_family(if be <= 0xffff {
                be
            } else {
                u32::from_le_bytes(*b)
            })
        }
        LinkType::LOOP => address_family(be32(d, 0).ok_or(TRUNCATED)?),
        LinkType::LINUX_SLL => {
            let h: &[u8; 16] = chunk(d, 0).ok_or(TRUNCATED)?;
            Ok(Step::EtherType {
                ty: pair(h[14], h[15]),
                off: 16,
            })
        }
        LinkType::LINUX_SLL2 => {
            let h: &[u8; 20] = chunk(d, 0).ok_or(TRUNCATED)?;
            Ok(Step::EtherType {
                ty: pair(h[0], h[1]),
                off: 20,
            })
        }
        LinkType::PPP => {
            let (proto, off) = shim::ppp_protocol(d, 0).ok_or(TRUNCATED)?;
            shim::ppp_step(proto, off)
        }
        LinkType::C_HDLC => {
            // Address, control, then an EtherType.
            let ty = be16(d, 2).ok_or(TRUNCATED)?;
            Ok(Step::EtherType { ty, off: 4 })
        }
        other => Err(Skip::UnsupportedLinkType(other)),
    }
}

/// BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 is 24
/// (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).
fn address_family(af: u32) -> Result<Step, Skip> {
    match af {
        2 => Ok(Step::Ip {
            off: 4,
            version: Some(4),
        }),
        24 | 28 | 30 => Ok(Step::Ip {
            off: 4,
            version: Some(6),
        }),
        other => Err(Skip::NotIp {
            ethertype: u16::try_from(other).unwrap_or(u16::MAX),
        }),
    }
}

struct Walker<'a, 'o> {
    /// Captured bytes, cut to the end of the current IP packet (so link
    /// padding and outer trailers are never read as inner data).
    d: &'a [u8],
    /// Offset just past the current packet on the wire.
    wire_end: usize,
    /// Inside a first fragment: inner lengths may exceed what this packet holds.
    partial: bool,
    /// Encapsulation layers peeled so far.
    layers: u16,
    config: &'o ExtractConfig,
    out: &'o mut Decoded,
    encap: &'o mut Encap,
}

impl Walker<'_, '_> {
    #[inline(always)]
    fn push(&mut self, layer: EncapLayer) -> Result<(), Skip> {
        self.layers += 1;
        if self.layers > u16::from(self.config.max_layers) {
            return Err(Skip::Malformed(MalformedReason::TooDeep));
        }
        self.encap.push(layer);
        Ok(())
    }

    #[inline(always)]
    fn ethertype(&mut self, ty: u16, off: usize) -> Result<Step, Skip> {
        match ty {
            ethertype::IPV4 => Ok(Step::Ip {
                off,
                version: Some(4),
            }),
            ethertype::IPV6 => Ok(Step::Ip {
                off,
                version: Some(6),
            }),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                let (id, inner) = shim::vlan(self.d, off)?;
                self.push(EncapLayer::Vlan { id })?;
                Ok(Step::EtherType {
                    ty: inner,
                    off: off + 4,
                })
            }
            ethertype::MPLS | ethertype::MPLS_MCAST => Ok(Step::Mpls { off }),
            ethertype::PPPOE_SESSION => {
                let (session, next) = shim::pppoe(self.d, off)?;
                self.push(EncapLayer::Pppoe { session })?;
                next
            }
            other => Err(Skip::NotIp { ethertype: other }),
        }
    }

    #[inline(always)]
    fn mpls(&mut self, mut off: usize) -> Result<Step, Skip> {
        loop {
            let (label, bottom) = shim::mpls_entry(self.d, off)?;
            self.push(EncapLayer::Mpls { label })?;
            off += 4;
            if bottom {
                return shim::after_mpls(self.d, off);
            }
        }
    }

    /// Decodes an IP header; returns the next step when it is a tunnel to
    /// unwrap, or `None` once the innermost packet has been recorded.
    #[inline(always)]
    fn ip(&mut self, off: usize, want: Option<u8>) -> Result<Option<Step>, Skip> {
        let h = match ip::version(self.d, off, want)? {
            4 => ip::ipv4(self.d, off)?,
            _ => ip::ipv6(self.d, off)?,
        };
        let end = h.end(off);
        if !self.partial && end > self.wire_end {
            // More bytes claimed than the frame had on the wire: truncated
            // in transit, not by the capture's snap length.
            return Err(Skip::Malformed(MalformedReason::TruncatedIp));
        }
        self.wire_end = self.wire_end.min(end);
        self.d = self.d.get(..end).unwrap_or(self.d);
        if h.first_fragment.is_some() {
            self.out.first_fragment = h.first_fragment;
        }

        // Only these protocols can be tunnels; testing first keeps the
        // common TCP path free of the (out-of-line) tunnel parser.
        if self.config.decap_tunnels && matches!(h.proto, 4 | 41 | 47 | 17) {
            if let Some(t) = tunnel_of(self.d, &h, self.config)? {
                self.push(EncapLayer::Ip {
                    src: h.addrs.src(),
                    dst: h.addrs.dst(),
                })?;
                for layer in t.layers.into_iter().flatten() {
                    self.push(layer)?;
                }
                self.partial |= h.first_fragment.is_some();
                return Ok(Some(t.next));
            }
        }
        self.innermost(off, &h)?;
        Ok(None)
    }

    /// Records the innermost IP packet and its transport header.
    #[inline(always)]
    fn innermost(&mut self, off: usize, h: &IpHeader) -> Result<(), Skip> {
        let partial = self.partial || h.first_fragment.is_some();
        let wire = h.transport_wire_len(off);
        let t = match transport::parse(
            self.d,
            h.transport_off,
            h.proto,
            IpContext {
                wire,
                partial,
                zero_len: h.zero_len,
            },
        ) {
            Ok(t) => t,
            // A first fragment too short for its transport header can only
            // be keyed once the datagram is reassembled.
            Err(Skip::Malformed(MalformedReason::TruncatedTransport)) => {
                return Err(match h.first_fragment {
                    Some(info) => Skip::Fragment(info),
                    None => Skip::Malformed(MalformedReason::TruncatedTransport),
                })
            }
            Err(e) => return Err(e),
        };
        let poff = (h.transport_off + t.hdr_len).min(self.d.len());
        let captured = (self.d.len() - poff).min(t.payload_wire as usize);
        let out = &mut *self.out;
        out.addrs = h.addrs;
        out.sport = t.sport;
        out.dport = t.dport;
        out.l4 = t.l4;
        out.proto = h.proto;
        out.tcp = t.tcp;
        out.ip_version = h.version;
        out.ip_len = h.ip_len;
        out.payload_wire_len = t.payload_wire;
        out.anomalies = t.anomalies;
        out.payload = PayloadRange {
            offset: u32::try_from(poff).unwrap_or(u32::MAX),
            len: captured as u32,
        };
        if self.config.verify_checksums {
            out.checksum = verify(self.d, off, h, &t, partial);
        }
        Ok(())
    }
}

/// The tunnel carried by the IP packet `h`, if it is one flowscope unwraps.
/// (A free function: the hot path keeps the encapsulation stack's address
/// from escaping, so the result is built in place.)
fn tunnel_of(d: &[u8], h: &IpHeader, config: &ExtractConfig) -> Result<Option<Tunnel>, Skip> {
    let off = h.transport_off;
    match h.proto {
        4 => Ok(Some(Tunnel {
            layers: [None; 2],
            next: Step::Ip {
                off,
                version: Some(4),
            },
        })),
        41 => Ok(Some(Tunnel {
            layers: [None; 2],
            next: Step::Ip {
                off,
                version: Some(6),
            },
        })),
        47 => tunnel::gre(d, off),
        17 => {
            let Some(u) = chunk::<8>(d, off) else {
                return Ok(None);
            };
            let (sport, dport) = (pair(u[0], u[1]), pair(u[2], u[3]));
            let p = off + 8;
            let c = config;
            let inner = if c.vxlan_ports.contains(&dport) {
                tunnel::vxlan(d, p)
            } else if dport == c.geneve_port {
                tunnel::geneve(d, p)?
            } else if dport == MPLS_UDP_PORT {
                tunnel::mpls_udp(d, p).map(|next| Tunnel {
                    layers: [None; 2],
                    next,
                })
            } else if dport == c.gtpu_port || sport == c.gtpu_port {
                tunnel::gtpu(d, p)?
            } else {
                None
            };
            Ok(inner.map(|t| {
                let udp = EncapLayer::Udp { sport, dport };
                // The tunnel's own layer goes after the UDP one.
                Tunnel {
                    layers: [Some(udp), t.layers[0]],
                    next: t.next,
                }
            }))
        }
        _ => Ok(None),
    }
}

/// The checksum verdict for the innermost packet: the IPv4 header checksum,
/// then the transport checksum when the whole segment was captured.
fn verify(d: &[u8], off: usize, h: &IpHeader, t: &Transport, partial: bool) -> ChecksumStatus {
    if h.version == 4 {
        let hdr = d.get(off..off + h.hdr_len).unwrap_or(&[]);
        if !checksum::verifies(hdr, 0) {
            return ChecksumStatus::Bad;
        }
    }
    if partial {
        return ChecksumStatus::Unchecked;
    }
    let addrs = match (h.addrs, h.final_dst) {
        (Addrs::V6 { src, .. }, Some(dst)) => Addrs::V6 { src, dst },
        (a, _) => a,
    };
    let start = h.transport_off;
    let Some(seg) = d.get(start..start.saturating_add(t.seg_len as usize)) else {
        return ChecksumStatus::Unchecked;
    };
    let ok = match t.l4 {
        L4Proto::Udp if t.csum_field == 0 => h.version == 4,
        L4Proto::Tcp | L4Proto::Udp => {
            let ph = checksum::pseudo_header(addrs, h.proto, t.seg_len);
            checksum::verifies(seg, ph)
        }
        L4Proto::Icmpv6 => {
            let ph = checksum::pseudo_header(addrs, 58, t.seg_len);
            checksum::verifies(seg, ph)
        }
        L4Proto::Icmp => checksum::verifies(seg, 0),
        _ => return ChecksumStatus::Unchecked,
    };
    if ok {
        ChecksumStatus::Good
    } else {
        ChecksumStatus::Bad
    }
}
