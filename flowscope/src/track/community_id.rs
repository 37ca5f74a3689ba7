//! Community ID v1 flow hashing (spec: github.com/corelight/community-id-spec;
//! reference implementation: corelight/pycommunityid `algo.py`, `icmp.py`,
//! `icmp6.py`).
//!
//! Hash input, all in network byte order: seed (2 bytes), source address,
//! destination address (4 or 16 bytes each), IP protocol (1 byte), one zero
//! pad byte, then — only for ICMP, TCP, UDP, ICMPv6 and SCTP — source and
//! destination port (2 bytes each). The endpoints are ordered so that the
//! smaller (address, port) comes first, except for ICMP/ICMPv6 messages whose
//! type has no request/reply counterpart: those are "one-way" and hashed in
//! the direction they were sent.

use std::net::IpAddr;

use flowscope_core::{CommunityId, FiveTuple, Orientation};

use crate::extract::icmp_counterpart;
use sha1::{Digest, Sha1};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

/// Community ID v1 of a 5-tuple flow (spec: corelight/community-id-spec).
///
/// `initiator` is the orientation of the flow's first sender relative to the
/// canonical key; it only matters for one-way ICMP types, whose key ports are
/// (type, code) in the sender's direction (see [`FiveTuple`]).
pub fn community_id(key: &FiveTuple, initiator: Orientation, seed: u16) -> CommunityId {
    let (src, sport, dst, dport) = key.directed(initiator);
    // The spec's (pycommunityid's `TYPE_MAPPER`) two-way ICMP types are the
    // extractor's counterpart table; an ICMP "port" is a type (< 256).
    let one_way = matches!(key.proto, PROTO_ICMP | PROTO_ICMPV6)
        && u8::try_from(sport)
            .ok()
            .and_then(|ty| icmp_counterpart(key.proto, ty))
            .is_none();
    // pycommunityid `is_lt`: strictly smaller address, or equal address and
    // strictly smaller port, keeps the order; anything else swaps.
    let keep = one_way || (src, sport) < (dst, dport);
    let (a, ap, b, bp) = if keep {
        (src, sport, dst, dport)
    } else {
        (dst, dport, src, sport)
    };

    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    update_addr(&mut h, a);
    update_addr(&mut h, b);
    h.update([key.proto, 0]);
    if matches!(
        key.proto,
        PROTO_ICMP | PROTO_TCP | PROTO_UDP | PROTO_ICMPV6 | PROTO_SCTP
    ) {
        h.update(ap.to_be_bytes());
        h.update(bp.to_be_bytes());
    }
    CommunityId(h.finalize().into())
}

fn update_addr(h: &mut Sha1, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flow whose initiator sent `saddr:sport -> daddr:dport`, keyed the
    /// way the extractor keys it.
    fn cid(proto: u8, saddr: &str, daddr: &str, sport: u16, dport: u16, seed: u16) -> String {
        let s: IpAddr = saddr.parse().expect("test address");
        let d: IpAddr = daddr.parse().expect("test address");
        let (key, o) = FiveTuple::from_directed(s, sport, d, dport, proto);
        community_id(&key, o, seed).to_string()
    }

    /// Every vector of community-id-spec `baseline/baseline_deflt.json`
    /// (seed 0), verbatim; ports `null` (protocol 46) are 0 in our keys.
    #[test]
    fn spec_baseline_seed0() {
        let v: &[(u8, &str, &str, u16, u16, &str)] = &[
            (
                58,
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                135,
                136,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "fe80::200:86ff:fe05:80da",
                136,
                135,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "fe80::200:86ff:fe05:80da",
                135,
                136,
                "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            ),
            (
                58,
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                136,
                135,
                "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            ),
            (
                58,
                "3ffe:501:1800:2345::2",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                3,
                0,
                "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
            ),
            (
                58,
                "3ffe:501:410:0:2c0:dfff:fe47:33e",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                1,
                4,
                "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
            ),
            (
                58,
                "3ffe:507:0:1:200:86ff:fe05:80da",
                "3ffe:501:0:1001::2",
                128,
                129,
                "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            ),
            (
                58,
                "3ffe:501:0:1001::2",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                129,
                128,
                "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            ),
            (
                58,
                "fe80::200:86ff:fe05:80da",
                "ff02::2",
                133,
                134,
                "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "ff02::1",
                134,
                133,
                "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
            ),
            (
                1,
                "192.168.0.89",
                "192.168.0.1",
                8,
                0,
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                1,
                "192.168.0.1",
                "192.168.0.89",
                0,
                8,
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                1,
                "10.0.0.1",
                "10.0.0.2",
                11,
                0,
                "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
            ),
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                "2607:f8b0:400c:c03::1a",
                63943,
                25,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                6,
                "2607:f8b0:400c:c03::1a",
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                25,
                63943,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                132,
                "192.168.170.8",
                "192.168.170.56",
                7,
                7,
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            ),
            (
                132,
                "192.168.170.56",
                "192.168.170.8",
                7,
                7,
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            ),
            (
                6,
                "128.232.110.120",
                "66.35.250.204",
                34855,
                80,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                6,
                "66.35.250.204",
                "128.232.110.120",
                80,
                34855,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                17,
                "192.168.1.52",
                "8.8.8.8",
                54585,
                53,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                17,
                "8.8.8.8",
                "192.168.1.52",
                53,
                54585,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                46,
                "10.1.12.1",
                "10.1.12.2",
                0,
                0,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
            (
                46,
                "10.1.12.2",
                "10.1.12.1",
                0,
                0,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
        ];
        for &(proto, s, d, sp, dp, want) in v {
            assert_eq!(
                cid(proto, s, d, sp, dp, 0),
                want,
                "{proto} {s}:{sp} -> {d}:{dp}"
            );
        }
    }

    /// A sample of community-id-spec `baseline/baseline_seed1.json` (seed 1).
    #[test]
    fn spec_baseline_seed1() {
        let v: &[(u8, &str, &str, u16, u16, &str)] = &[
            (
                6,
                "128.232.110.120",
                "66.35.250.204",
                34855,
                80,
                "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
            ),
            (
                6,
                "66.35.250.204",
                "128.232.110.120",
                80,
                34855,
                "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
            ),
            (
                17,
                "192.168.1.52",
                "8.8.8.8",
                54585,
                53,
                "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
            ),
            (
                1,
                "10.0.0.1",
                "10.0.0.2",
                11,
                0,
                "1:XjUibYHaafLQ3pxQeiMI8g25q20=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "fe80::200:86ff:fe05:80da",
                135,
                136,
                "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
            ),
            (
                46,
                "10.1.12.2",
                "10.1.12.1",
                0,
                0,
                "1:rYir8gphR31noO9iDRQmF/BteEI=",
            ),
        ];
        for &(proto, s, d, sp, dp, want) in v {
            assert_eq!(
                cid(proto, s, d, sp, dp, 1),
                want,
                "{proto} {s}:{sp} -> {d}:{dp}"
            );
        }
    }

    /// One-way ICMP (time exceeded, type 11) keeps the sender first even when
    /// its address is the larger one: the hash must equal SHA-1 over the
    /// spec's byte layout in send order, and differ from the swapped layout.
    #[test]
    fn icmp_one_way_is_not_reordered() {
        let got = cid(1, "10.0.0.2", "10.0.0.1", 11, 0, 0);
        let layout = |a: [u8; 4], b: [u8; 4], ap: u16, bp: u16| {
            let mut h = Sha1::new();
            h.update([0u8, 0]);
            h.update(a);
            h.update(b);
            h.update([1u8, 0]);
            h.update(ap.to_be_bytes());
            h.update(bp.to_be_bytes());
            CommunityId(h.finalize().into()).to_string()
        };
        assert_eq!(got, layout([10, 0, 0, 2], [10, 0, 0, 1], 11, 0));
        assert_ne!(got, layout([10, 0, 0, 1], [10, 0, 0, 2], 0, 11));
        // A two-way type (echo request 8 <-> reply 0) is reordered.
        assert_eq!(
            cid(1, "10.0.0.2", "10.0.0.1", 8, 0, 0),
            cid(1, "10.0.0.1", "10.0.0.2", 0, 8, 0)
        );
    }
}
