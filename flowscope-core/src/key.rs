//! Bidirectional flow keys.
//!
//! Every key here is *canonical*: both directions of a conversation give the
//! same key, with the smaller endpoint stored as `lo`. An [`Orientation`]
//! says which way a particular packet went relative to that order.

use core::fmt::Debug;
use core::hash::Hash;
use std::net::IpAddr;

/// What the flow table can key flows by.
///
/// Implemented for every type with the needed traits, so a caller's own key
/// (say, a 5-tuple plus a VLAN id) works without ceremony.
pub trait FlowKey: Clone + Eq + Hash + Debug {}
impl<T: Clone + Eq + Hash + Debug> FlowKey for T {}

/// Which way a packet travelled relative to its canonical key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// The packet's source is the key's `lo` endpoint.
    LoToHi,
    /// The packet's source is the key's `hi` endpoint.
    HiToLo,
}

impl Orientation {
    /// The other way round.
    pub const fn reverse(self) -> Self {
        match self {
            Orientation::LoToHi => Orientation::HiToLo,
            Orientation::HiToLo => Orientation::LoToHi,
        }
    }
}

/// A bidirectional transport 5-tuple: two (address, port) endpoints and the
/// IP protocol number, with `(lo_addr, lo_port) <= (hi_addr, hi_port)`.
///
/// For ICMP and ICMPv6 the "ports" follow the Community ID convention: the
/// sender's port is the ICMP type and the receiver's port is the type of the
/// matching reply (echo request 8 ↔ echo reply 0, …), or the code when the
/// type has no counterpart. An echo request and its reply therefore share a key.
/// Protocols without ports use 0 for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FiveTuple {
    /// The smaller endpoint's address.
    pub lo_addr: IpAddr,
    /// The larger endpoint's address.
    pub hi_addr: IpAddr,
    /// The smaller endpoint's port.
    pub lo_port: u16,
    /// The larger endpoint's port.
    pub hi_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).
    pub proto: u8,
}

impl FiveTuple {
    /// The canonical key of a packet from `src:sport` to `dst:dport`, and the
    /// packet's orientation relative to it.
    #[inline]
    pub fn from_directed(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
    ) -> (Self, Orientation) {
        if (src, sport) <= (dst, dport) {
            let k = FiveTuple {
                lo_addr: src,
                hi_addr: dst,
                lo_port: sport,
                hi_port: dport,
                proto,
            };
            (k, Orientation::LoToHi)
        } else {
            let k = FiveTuple {
                lo_addr: dst,
                hi_addr: src,
                lo_port: dport,
                hi_port: sport,
                proto,
            };
            (k, Orientation::HiToLo)
        }
    }

    /// `(src, sport, dst, dport)` of a packet travelling in orientation `o`.
    #[inline]
    pub fn directed(&self, o: Orientation) -> (IpAddr, u16, IpAddr, u16) {
        match o {
            Orientation::LoToHi => (self.lo_addr, self.lo_port, self.hi_addr, self.hi_port),
            Orientation::HiToLo => (self.hi_addr, self.hi_port, self.lo_addr, self.lo_port),
        }
    }
}

/// A bidirectional pair of IP addresses (`lo <= hi`), for per-host-pair flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPair {
    /// The smaller address.
    pub lo: IpAddr,
    /// The larger address.
    pub hi: IpAddr,
}

impl IpPair {
    /// The canonical pair for a packet from `src` to `dst`, and its orientation.
    #[inline]
    pub fn from_directed(src: IpAddr, dst: IpAddr) -> (Self, Orientation) {
        if src <= dst {
            (IpPair { lo: src, hi: dst }, Orientation::LoToHi)
        } else {
            (IpPair { lo: dst, hi: src }, Orientation::HiToLo)
        }
    }
}

/// A bidirectional pair of MAC addresses (`lo <= hi`), for layer-2 flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacPair {
    /// The smaller address.
    pub lo: [u8; 6],
    /// The larger address.
    pub hi: [u8; 6],
}

impl MacPair {
    /// The canonical pair for a frame from `src` to `dst`, and its orientation.
    #[inline]
    pub fn from_directed(src: [u8; 6], dst: [u8; 6]) -> (Self, Orientation) {
        if src <= dst {
            (MacPair { lo: src, hi: dst }, Orientation::LoToHi)
        } else {
            (MacPair { lo: dst, hi: src }, Orientation::HiToLo)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn five_tuple_is_bidirectional() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let (k1, o1) = FiveTuple::from_directed(a, 40000, b, 80, 6);
        let (k2, o2) = FiveTuple::from_directed(b, 80, a, 40000, 6);
        assert_eq!(k1, k2);
        assert_eq!(o1, o2.reverse());
        assert_eq!(k1.directed(o1), (a, 40000, b, 80));
        assert_eq!(k1.directed(o2), (b, 80, a, 40000));
        // Same address both sides: ports decide.
        let (k3, o3) = FiveTuple::from_directed(a, 9, a, 7, 17);
        assert_eq!((k3.lo_port, k3.hi_port, o3), (7, 9, Orientation::HiToLo));
    }

    #[test]
    fn pairs_are_bidirectional() {
        let a = IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1));
        let b = IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2));
        assert_eq!(IpPair::from_directed(a, b).0, IpPair::from_directed(b, a).0);
        let (m, o) = MacPair::from_directed([2; 6], [1; 6]);
        assert_eq!((m.lo, o), ([1; 6], Orientation::HiToLo));
    }
}
