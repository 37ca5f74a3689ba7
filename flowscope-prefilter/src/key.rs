//! The map keys and values shared with `bpf/prefilter.c`, and the
//! direction-aware flow they are built from.
//!
//! Layout rule, the same on both sides: every multi-byte field holds the
//! packet's own bytes, in network byte order. The Rust structs spell that
//! out by using byte arrays (`[u8; 2]`, `[u8; 4]`), so no field can be
//! written in host order by mistake; the C structs use `__be16`/`__be32`
//! and copy the packet bytes without conversion. This includes the VLAN id:
//! the 12 VID bits of the outermost tag's TCI, **network byte order**, with
//! PCP and DEI masked off, 0 for an untagged frame.

use std::net::IpAddr;

use flowscope_core::extract::Extracted;
use flowscope_core::key::{FiveTuple, Orientation};
use flowscope_core::wire::{EncapLayer, L4Proto};

/// IPv4 key of `fs_bypass_v4`: C `struct flow_key_v4`, 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKeyV4 {
    /// Source address, network byte order.
    pub src_addr: [u8; 4],
    /// Destination address, network byte order.
    pub dst_addr: [u8; 4],
    /// Source port, network byte order.
    pub src_port: [u8; 2],
    /// Destination port, network byte order.
    pub dst_port: [u8; 2],
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Explicit padding; always 0 (the kernel hashes every key byte).
    pub pad: u8,
    /// Outermost VLAN id (12 bits), network byte order; 0 when untagged.
    pub vlan_id: [u8; 2],
}

/// IPv6 key of `fs_bypass_v6`: C `struct flow_key_v6`, 40 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKeyV6 {
    /// Source address, network byte order.
    pub src_addr: [u8; 16],
    /// Destination address, network byte order.
    pub dst_addr: [u8; 16],
    /// Source port, network byte order.
    pub src_port: [u8; 2],
    /// Destination port, network byte order.
    pub dst_port: [u8; 2],
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Explicit padding; always 0.
    pub pad: u8,
    /// Outermost VLAN id (12 bits), network byte order; 0 when untagged.
    pub vlan_id: [u8; 2],
}

/// A map value: C `struct flow_counters`. One per CPU in the kernel; the
/// manager sums them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowCounters {
    /// Frames dropped for this key on this CPU.
    pub packets: u64,
    /// Their bytes as XDP sees them: Ethernet header (and VLAN tags)
    /// included, no FCS; the captured length an AF_PACKET socket reports.
    pub bytes: u64,
}

// The layout pinned here must match the _Static_asserts in prefilter.c.
const _: () = {
    assert!(std::mem::size_of::<FlowKeyV4>() == 16);
    assert!(std::mem::offset_of!(FlowKeyV4, src_port) == 8);
    assert!(std::mem::offset_of!(FlowKeyV4, proto) == 12);
    assert!(std::mem::offset_of!(FlowKeyV4, vlan_id) == 14);
    assert!(std::mem::size_of::<FlowKeyV6>() == 40);
    assert!(std::mem::offset_of!(FlowKeyV6, src_port) == 32);
    assert!(std::mem::offset_of!(FlowKeyV6, proto) == 36);
    assert!(std::mem::offset_of!(FlowKeyV6, vlan_id) == 38);
    assert!(std::mem::size_of::<FlowCounters>() == 16);
};

/// The key of one map entry, either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapKey {
    /// An entry of `fs_bypass_v4`.
    V4(FlowKeyV4),
    /// An entry of `fs_bypass_v6`.
    V6(FlowKeyV6),
}

/// One direction of a TCP or UDP flow as the XDP program keys it: the
/// outermost IP header's addresses and the ports that follow it, plus the
/// outermost VLAN id. [`BypassFlow::key`] gives its map key; the manager
/// inserts a flow in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BypassFlow {
    /// Source address (both addresses must be of one family).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol: 6 (TCP) or 17 (UDP); other values never match.
    pub proto: u8,
    /// Outermost VLAN id, host order (only its low 12 bits are kept); 0
    /// for untagged traffic.
    pub vlan: u16,
}

/// Why a flow cannot be expressed as a [`BypassFlow`] the XDP program
/// would match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Source and destination are of different address families.
    MixedFamilies,
    /// Not TCP or UDP: the program looks up only those.
    NotTcpOrUdp,
    /// The packet was inside a tunnel, MPLS or PPPoE (the program keys the
    /// outermost IP header and does not parse those layers), or had more
    /// than two VLAN tags.
    Encapsulated,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyError::MixedFamilies => "source and destination address families differ",
            KeyError::NotTcpOrUdp => "only TCP and UDP flows can be bypassed",
            KeyError::Encapsulated => {
                "tunnelled, MPLS, PPPoE or triple-tagged traffic cannot be bypassed"
            }
        })
    }
}

impl std::error::Error for KeyError {}

impl BypassFlow {
    /// The same flow seen from the other side (the reply direction).
    pub fn reversed(&self) -> BypassFlow {
        BypassFlow {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }

    /// The map key of this direction.
    pub fn key(&self) -> Result<MapKey, KeyError> {
        if self.proto != 6 && self.proto != 17 {
            return Err(KeyError::NotTcpOrUdp);
        }
        let vlan_id = (self.vlan & 0x0fff).to_be_bytes();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ok(MapKey::V4(FlowKeyV4 {
                src_addr: s.octets(),
                dst_addr: d.octets(),
                src_port: self.src_port.to_be_bytes(),
                dst_port: self.dst_port.to_be_bytes(),
                proto: self.proto,
                pad: 0,
                vlan_id,
            })),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(MapKey::V6(FlowKeyV6 {
                src_addr: s.octets(),
                dst_addr: d.octets(),
                src_port: self.src_port.to_be_bytes(),
                dst_port: self.dst_port.to_be_bytes(),
                proto: self.proto,
                pad: 0,
                vlan_id,
            })),
            _ => Err(KeyError::MixedFamilies),
        }
    }

    /// The direction of the packet `ex` was extracted from (flowscope's
    /// [`FiveTupleExtractor`](https://docs.rs/flowscope) output), keyed the
    /// way the XDP program keys it. Refuses packets whose flow the program
    /// would key differently: inside tunnels (flowscope keys the inner
    /// header, XDP the outer), MPLS, PPPoE, or with more than two VLAN tags.
    pub fn from_extracted(ex: &Extracted<FiveTuple>) -> Result<BypassFlow, KeyError> {
        let proto = match ex.l4 {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
            _ => return Err(KeyError::NotTcpOrUdp),
        };
        let mut vlans = 0usize;
        let mut outer_vlan = 0u16;
        for layer in ex.encap.iter() {
            match layer {
                EncapLayer::Vlan { id } => {
                    if vlans == 0 {
                        outer_vlan = *id;
                    }
                    vlans += 1;
                }
                _ => return Err(KeyError::Encapsulated),
            }
        }
        if vlans > 2 || ex.encap.overflowed() {
            return Err(KeyError::Encapsulated);
        }
        let k = &ex.key;
        let lo_to_hi = BypassFlow {
            src: k.lo_addr,
            dst: k.hi_addr,
            src_port: k.lo_port,
            dst_port: k.hi_port,
            proto,
            vlan: outer_vlan,
        };
        let flow = match ex.orientation {
            Orientation::LoToHi => lo_to_hi,
            Orientation::HiToLo => lo_to_hi.reversed(),
        };
        flow.key()?;
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn flow4() -> BypassFlow {
        BypassFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 19, 2, 3)),
            src_port: 40000,
            dst_port: 443,
            proto: 6,
            vlan: 0x0123,
        }
    }

    #[test]
    fn v4_key_is_wire_bytes() {
        let MapKey::V4(k) = flow4().key().expect("v4") else {
            panic!("v4 flow gave a v6 key")
        };
        // 40000 = 0x9c40, 443 = 0x01bb, VLAN 0x123: big-endian as on the wire.
        assert_eq!(k.src_addr, [198, 18, 0, 1]);
        assert_eq!(k.dst_addr, [198, 19, 2, 3]);
        assert_eq!(k.src_port, [0x9c, 0x40]);
        assert_eq!(k.dst_port, [0x01, 0xbb]);
        assert_eq!(k.proto, 6);
        assert_eq!(k.pad, 0);
        assert_eq!(k.vlan_id, [0x01, 0x23]);
    }

    #[test]
    fn vlan_keeps_only_the_vid_bits() {
        // A TCI with PCP 7 and DEI set: 0xf123 -> VID 0x123.
        let f = BypassFlow {
            vlan: 0xf123,
            ..flow4()
        };
        let MapKey::V4(k) = f.key().expect("v4") else {
            panic!("family")
        };
        assert_eq!(k.vlan_id, [0x01, 0x23]);
    }

    #[test]
    fn reversed_swaps_endpoints_only() {
        let f = flow4();
        let r = f.reversed();
        assert_eq!((r.src, r.dst), (f.dst, f.src));
        assert_eq!((r.src_port, r.dst_port), (f.dst_port, f.src_port));
        assert_eq!((r.proto, r.vlan), (f.proto, f.vlan));
        assert_eq!(r.reversed(), f);
    }

    #[test]
    fn v6_key_and_errors() {
        let s: Ipv6Addr = "2001:2::1".parse().expect("addr");
        let d: Ipv6Addr = "2001:2::2".parse().expect("addr");
        let f = BypassFlow {
            src: IpAddr::V6(s),
            dst: IpAddr::V6(d),
            src_port: 1,
            dst_port: 2,
            proto: 17,
            vlan: 0,
        };
        let MapKey::V6(k) = f.key().expect("v6") else {
            panic!("family")
        };
        assert_eq!(k.src_addr, s.octets());
        assert_eq!(k.dst_port, [0, 2]);
        assert_eq!(k.vlan_id, [0, 0]);
        let mixed = BypassFlow {
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..f
        };
        assert_eq!(mixed.key(), Err(KeyError::MixedFamilies));
        let icmp = BypassFlow { proto: 1, ..f };
        assert_eq!(icmp.key(), Err(KeyError::NotTcpOrUdp));
    }

    fn extracted(orientation: Orientation, layers: &[EncapLayer]) -> Extracted<FiveTuple> {
        let key = FiveTuple {
            lo_addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            hi_addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2)),
            lo_port: 1000,
            hi_port: 53,
            proto: 17,
        };
        let mut ex = Extracted::new(key, orientation, L4Proto::Udp);
        for l in layers {
            ex.encap.push(*l);
        }
        ex
    }

    #[test]
    fn from_extracted_follows_orientation_and_outer_vlan() {
        let qinq = [EncapLayer::Vlan { id: 709 }, EncapLayer::Vlan { id: 10 }];
        let f = BypassFlow::from_extracted(&extracted(Orientation::LoToHi, &qinq)).expect("ok");
        assert_eq!(f.src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(
            (f.src_port, f.dst_port, f.proto, f.vlan),
            (1000, 53, 17, 709)
        );
        let r = BypassFlow::from_extracted(&extracted(Orientation::HiToLo, &qinq)).expect("ok");
        assert_eq!(r, f.reversed());
    }

    #[test]
    fn from_extracted_refuses_what_xdp_keys_differently() {
        let three = [EncapLayer::Vlan { id: 1 }; 3];
        assert_eq!(
            BypassFlow::from_extracted(&extracted(Orientation::LoToHi, &three)),
            Err(KeyError::Encapsulated)
        );
        let tunnel = [EncapLayer::Ip {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 9, 10)),
        }];
        assert_eq!(
            BypassFlow::from_extracted(&extracted(Orientation::LoToHi, &tunnel)),
            Err(KeyError::Encapsulated)
        );
        let mut icmp = extracted(Orientation::LoToHi, &[]);
        icmp.l4 = L4Proto::Icmp;
        assert_eq!(
            BypassFlow::from_extracted(&icmp),
            Err(KeyError::NotTcpOrUdp)
        );
    }
}
