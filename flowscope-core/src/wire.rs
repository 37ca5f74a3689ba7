//! Facts decoded from one packet's headers.

use core::fmt;
use std::net::IpAddr;

/// The transport protocol of a packet or flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum L4Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP for IPv4 (1).
    Icmp,
    /// ICMP for IPv6 (58).
    Icmpv6,
    /// SCTP (132).
    Sctp,
    /// Any other IP protocol number.
    Other(u8),
}

impl L4Proto {
    /// From an IP protocol number.
    pub const fn from_ip_proto(p: u8) -> Self {
        match p {
            6 => L4Proto::Tcp,
            17 => L4Proto::Udp,
            1 => L4Proto::Icmp,
            58 => L4Proto::Icmpv6,
            132 => L4Proto::Sctp,
            o => L4Proto::Other(o),
        }
    }
    /// The IP protocol number.
    pub const fn ip_proto(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
            L4Proto::Icmp => 1,
            L4Proto::Icmpv6 => 58,
            L4Proto::Sctp => 132,
            L4Proto::Other(o) => o,
        }
    }
    /// The name Suricata's EVE uses in `proto` ("TCP", "UDP", "ICMP", "IPv6-ICMP", "SCTP", or the number).
    pub fn eve_name(self) -> std::borrow::Cow<'static, str> {
        match self {
            L4Proto::Tcp => "TCP".into(),
            L4Proto::Udp => "UDP".into(),
            L4Proto::Icmp => "ICMP".into(),
            L4Proto::Icmpv6 => "IPv6-ICMP".into(),
            L4Proto::Sctp => "SCTP".into(),
            L4Proto::Other(o) => o.to_string().into(),
        }
    }
    /// The name Zeek's conn.log uses in `proto` ("tcp", "udp", "icmp", or "unknown_transport").
    pub fn zeek_name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Icmp | L4Proto::Icmpv6 => "icmp",
            _ => "unknown_transport",
        }
    }
}

/// TCP header flags, as the flag byte of the header (CWR … FIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push function.
    pub const PSH: u8 = 0x08;
    /// ACK: acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// URG: urgent pointer field significant.
    pub const URG: u8 = 0x20;
    /// ECE: ECN echo.
    pub const ECE: u8 = 0x40;
    /// CWR: congestion window reduced.
    pub const CWR: u8 = 0x80;

    /// True when every bit of `mask` is set.
    #[inline]
    pub const fn contains(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
    /// SYN set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// ACK set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// FIN set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// RST set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump-like letters: `S`, `SA`, `FA`, `R`, `P`, … (`.` when none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(u8, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'C'),
        ];
        if self.0 == 0 {
            return f.write_str(".");
        }
        for (bit, c) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The TCP header fields the tracker and reassembler need.
///
/// The segment's payload is [`crate::Extracted::payload`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpInfo {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Advertised window, unscaled (as on the wire).
    pub window: u16,
    /// Header flags.
    pub flags: TcpFlags,
    /// Window scale option, when the segment carries one (SYN / SYN-ACK).
    pub window_scale: Option<u8>,
}

impl TcpInfo {
    /// A header with these fields and no options.
    pub const fn new(seq: u32, ack: u32, window: u16, flags: TcpFlags) -> Self {
        TcpInfo {
            seq,
            ack,
            window,
            flags,
            window_scale: None,
        }
    }
}

/// Whether the transport checksum was verified, and its verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumStatus {
    /// Not checked (the default: offloaded captures carry wrong checksums).
    #[default]
    Unchecked,
    /// Checked and correct.
    Good,
    /// Checked and wrong (Zeek's history letter `c`).
    Bad,
}

/// Header inconsistencies the extractor tolerated: the packet is still
/// keyed and tracked, and callers count each kind (one bit per kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketAnomalies(pub u8);

impl PacketAnomalies {
    /// None.
    pub const NONE: PacketAnomalies = PacketAnomalies(0);
    /// The UDP length field is larger than the IP payload: the payload is
    /// taken from the IP length, as Zeek does (its weird
    /// `UDP_datagram_length_mismatch`).
    pub const UDP_LENGTH_EXCEEDS_IP: PacketAnomalies = PacketAnomalies(1);

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: PacketAnomalies) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// True when nothing was tolerated.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One outer layer that was peeled off to reach the inner flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncapLayer {
    /// An 802.1Q (or 802.1ad outer) tag with its VLAN id.
    Vlan {
        /// 12-bit VLAN identifier.
        id: u16,
    },
    /// An MPLS label stack entry.
    Mpls {
        /// 20-bit label.
        label: u32,
    },
    /// A PPPoE session header.
    Pppoe {
        /// Session id.
        session: u16,
    },
    /// An outer IP header of a tunnel (GRE, VXLAN, Geneve, GTP-U, IP-in-IP …).
    Ip {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
    },
    /// A GRE header with the EtherType of what it carries.
    Gre {
        /// Protocol type field.
        proto: u16,
    },
    /// ERSPAN type II or III.
    Erspan {
        /// 2 for type II, 3 for type III.
        version: u8,
        /// Session id.
        session: u16,
    },
    /// VXLAN with its network identifier.
    Vxlan {
        /// 24-bit VNI.
        vni: u32,
    },
    /// Geneve with its network identifier.
    Geneve {
        /// 24-bit VNI.
        vni: u32,
    },
    /// GTP-U with its tunnel endpoint identifier.
    GtpU {
        /// TEID.
        teid: u32,
    },
    /// An outer UDP header of a UDP-based tunnel.
    Udp {
        /// Outer source port.
        sport: u16,
        /// Outer destination port.
        dport: u16,
    },
}

/// The outer layers of a packet, outermost first: a small fixed-size stack
/// so that extraction never allocates.
///
/// Equality and hashing look only at the recorded layers: [`Encap::clear`]
/// leaves old slots in place (so that reusing a stack per packet costs one
/// store, not a 300-byte reset).
#[derive(Clone, Copy, Debug)]
pub struct Encap {
    layers: [Option<EncapLayer>; Encap::CAPACITY],
    len: u8,
    overflowed: bool,
}

impl PartialEq for Encap {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.overflowed == other.overflowed && self.iter().eq(other.iter())
    }
}

impl Eq for Encap {}

impl core::hash::Hash for Encap {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.overflowed.hash(state);
        for l in self.iter() {
            l.hash(state);
        }
    }
}

impl Default for Encap {
    fn default() -> Self {
        Encap {
            layers: [None; Encap::CAPACITY],
            len: 0,
            overflowed: false,
        }
    }
}

impl Encap {
    /// How many layers are kept; deeper stacks are still decoded, and
    /// [`Encap::overflowed`] says that some were not recorded.
    pub const CAPACITY: usize = 8;

    /// Records one more (inner) layer.
    #[inline]
    pub fn push(&mut self, layer: EncapLayer) {
        match self.layers.get_mut(self.len as usize) {
            Some(slot) => {
                *slot = Some(layer);
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }
    /// Forgets every layer (slots beyond the length are ignored from then on).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
    /// The recorded layers, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = &EncapLayer> {
        self.layers.iter().take(self.len as usize).flatten()
    }
    /// Number of recorded layers.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True when the packet had no outer layers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when more layers were peeled than [`Encap::CAPACITY`].
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
    /// The VLAN ids, outermost first.
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.iter().filter_map(|l| match l {
            EncapLayer::Vlan { id } => Some(*id),
            _ => None,
        })
    }
    /// True when the packet came through a tunnel (an outer IP header).
    pub fn is_tunnelled(&self) -> bool {
        self.iter().any(|l| matches!(l, EncapLayer::Ip { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_display() {
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "SA");
        assert_eq!(TcpFlags(0).to_string(), ".");
        assert!(TcpFlags(0x12).contains(TcpFlags::SYN | TcpFlags::ACK));
    }

    #[test]
    fn l4_round_trip() {
        for p in 0..=255u8 {
            assert_eq!(L4Proto::from_ip_proto(p).ip_proto(), p);
        }
        assert_eq!(L4Proto::Icmpv6.eve_name(), "IPv6-ICMP");
    }

    #[test]
    fn encap_stack_is_bounded() {
        let mut e = Encap::default();
        for id in 0..10 {
            e.push(EncapLayer::Vlan { id });
        }
        assert_eq!(e.len(), Encap::CAPACITY);
        assert!(e.overflowed());
        assert_eq!(e.vlan_ids().next(), Some(0));
        e.clear();
        assert!(e.is_empty() && !e.overflowed());
    }
}
