//! IP address pairs as plain integers, and the canonical keys built from them.
//!
//! The walk keeps addresses as `u32`/`u128` rather than [`IpAddr`]: an
//! `IpAddr::V4` is written as a 1-byte tag plus 4 bytes but copied as 17,
//! and that narrow-store/wide-load pattern stalls store forwarding twice per
//! packet. Integers compare in the same order as `IpAddr` (big-endian value
//! of the octets, IPv4 before IPv6), so the keys are exactly those of
//! [`FiveTuple::from_directed`] and [`IpPair::from_directed`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flowscope_core::{FiveTuple, IpPair, Orientation};

/// Source and destination of one IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addrs {
    V4 { src: u32, dst: u32 },
    V6 { src: u128, dst: u128 },
}

impl Addrs {
    /// The source address.
    #[inline]
    pub fn src(self) -> IpAddr {
        match self {
            Addrs::V4 { src, .. } => IpAddr::V4(Ipv4Addr::from(src)),
            Addrs::V6 { src, .. } => IpAddr::V6(Ipv6Addr::from(src)),
        }
    }

    /// The destination address.
    #[inline]
    pub fn dst(self) -> IpAddr {
        match self {
            Addrs::V4 { dst, .. } => IpAddr::V4(Ipv4Addr::from(dst)),
            Addrs::V6 { dst, .. } => IpAddr::V6(Ipv6Addr::from(dst)),
        }
    }

    /// True when `(src, sport) <= (dst, dport)`, as `IpAddr` orders them.
    #[inline(always)]
    fn src_first(self, sport: u16, dport: u16) -> bool {
        match self {
            Addrs::V4 { src, dst } => (src, sport) <= (dst, dport),
            Addrs::V6 { src, dst } => (src, sport) <= (dst, dport),
        }
    }

    /// The canonical 5-tuple of a packet from `src:sport` to `dst:dport`.
    #[inline(always)]
    pub fn five_tuple(self, sport: u16, dport: u16, proto: u8) -> (FiveTuple, Orientation) {
        let (s, d) = (self.src(), self.dst());
        if self.src_first(sport, dport) {
            let k = FiveTuple {
                lo_addr: s,
                hi_addr: d,
                lo_port: sport,
                hi_port: dport,
                proto,
            };
            (k, Orientation::LoToHi)
        } else {
            let k = FiveTuple {
                lo_addr: d,
                hi_addr: s,
                lo_port: dport,
                hi_port: sport,
                proto,
            };
            (k, Orientation::HiToLo)
        }
    }

    /// The canonical address pair.
    #[inline(always)]
    pub fn ip_pair(self) -> (IpPair, Orientation) {
        let (s, d) = (self.src(), self.dst());
        if self.src_first(0, 0) {
            (IpPair { lo: s, hi: d }, Orientation::LoToHi)
        } else {
            (IpPair { lo: d, hi: s }, Orientation::HiToLo)
        }
    }

    /// Ones'-complement sum of both addresses (for pseudo-headers), in
    /// 32-bit words as [`super::checksum::add`] sums.
    #[inline]
    pub fn checksum_sum(self) -> u64 {
        match self {
            Addrs::V4 { src, dst } => u64::from(src) + u64::from(dst),
            Addrs::V6 { src, dst } => (0..4)
                .map(|i| u64::from((src >> (32 * i)) as u32) + u64::from((dst >> (32 * i)) as u32))
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_match_the_core_constructors(
            a in any::<u128>(), b in any::<u128>(), sp in any::<u16>(), dp in any::<u16>(),
            same in any::<bool>(), v6 in any::<bool>(),
        ) {
            let b = if same { a } else { b };
            let addrs = if v6 {
                Addrs::V6 { src: a, dst: b }
            } else {
                Addrs::V4 { src: a as u32, dst: b as u32 }
            };
            let (s, d) = (addrs.src(), addrs.dst());
            prop_assert_eq!(addrs.five_tuple(sp, dp, 6), FiveTuple::from_directed(s, sp, d, dp, 6));
            prop_assert_eq!(addrs.ip_pair(), IpPair::from_directed(s, d));
        }
    }
}
