//! Hostile input: arbitrary bytes, alone or behind valid header prefixes,
//! under every link type and configuration, must never panic and must keep
//! the payload range inside the frame.

use flowscope_core::{FlowExtractor, LinkType, PacketView, Timestamp};
use proptest::prelude::*;

use super::build::*;
use super::*;

const LINKS: [LinkType; 13] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::PPP,
    LinkType::RAW,
    LinkType::C_HDLC,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType(147),
];

/// Valid header prefixes that steer the walk deep before the random tail.
fn prefixes() -> Vec<Vec<u8>> {
    let v4 = |proto: u8| ipv4(V4_A, V4_B, proto, &[]);
    vec![
        vec![],
        eth_ab(0x0800, &[]),
        eth_ab(0x86dd, &[]),
        eth_ab(0x8100, &[0, 1, 0x88, 0xa8]),
        eth_ab(0x8847, &mpls(5, false)),
        eth_ab(0x8864, &[0x11, 0, 0, 1, 0, 100, 0, 0x21]),
        eth_ab(0x0800, &v4(47)),
        eth_ab(0x0800, &cat(&[&v4(47), &gre(0x88be, false, None, Some(1))])),
        eth_ab(0x0800, &cat(&[&v4(47), &gre(0x22eb, false, None, Some(1))])),
        eth_ab(0x0800, &cat(&[&v4(47), &[0x30, 0x81, 0x88, 0x0b]])),
        eth_ab(
            0x0800,
            &cat(&[
                &v4(17),
                &[0, 1, 0x12, 0xb5, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0],
            ]),
        ),
        eth_ab(0x0800, &cat(&[&v4(17), &[0, 1, 0x17, 0xc1, 0, 0, 0, 0]])),
        eth_ab(
            0x0800,
            &cat(&[&v4(17), &[0x08, 0x68, 0, 1, 0, 0, 0, 0, 0x34, 0xff]]),
        ),
        eth_ab(0x0800, &cat(&[&v4(17), &[0, 1, 0x19, 0xeb, 0, 0, 0, 0]])),
        eth_ab(0x0800, &v4(4)),
        ipv6(V6_A, V6_B, 0, &[]),
        ipv6(V6_A, V6_B, 44, &[]),
        ipv6(V6_A, V6_B, 41, &[]),
        v4(6),
        v4(1),
    ]
}

fn config(decap: bool, verify: bool, max_layers: u8) -> ExtractConfig {
    ExtractConfig {
        decap_tunnels: decap,
        verify_checksums: verify,
        max_layers,
        ..ExtractConfig::default()
    }
}

fn check_all(data: &[u8], link: LinkType, wire_len: u32, cfg: &ExtractConfig) {
    let p = PacketView::new(data, Timestamp::ZERO, link).with_wire_len(wire_len);
    let inside = |off: u32, len: u32| u64::from(off) + u64::from(len) <= data.len() as u64;
    if let Ok(e) = FiveTupleExtractor::new(cfg.clone()).extract(&p) {
        assert!(inside(e.payload.offset, e.payload.len), "{e:?}");
        assert!(e.payload.len <= e.payload_wire_len);
        assert!(e.ip_version == 4 || e.ip_version == 6);
        assert!(e.encap.len() <= usize::from(cfg.max_layers));
    }
    if let Ok(e) = IpPairExtractor::new(cfg.clone()).extract(&p) {
        assert!(inside(e.payload.offset, e.payload.len));
    }
    if let Ok(e) = MacPairExtractor::new(cfg.clone()).extract(&p) {
        assert!(inside(e.payload.offset, e.payload.len));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        link in 0..LINKS.len(),
        prefix in 0..prefixes().len(),
        tail in proptest::collection::vec(any::<u8>(), 0..160),
        decap in any::<bool>(),
        verify in any::<bool>(),
        max_layers in 0u8..20,
        extra_wire in 0u32..3000,
        short_wire in any::<bool>(),
    ) {
        let data = cat(&[&prefixes()[prefix], &tail]);
        let wire = if short_wire { 0 } else { data.len() as u32 + extra_wire };
        check_all(&data, LINKS[link], wire, &config(decap, verify, max_layers));
    }

    #[test]
    fn mutated_and_truncated_valid_packets_never_panic(
        which in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        verify in any::<bool>(),
    ) {
        let mirrored = eth(MAC_A, MAC_B, 0x0800, &inner_v4_tcp());
        let mut data = match which {
            0 => eth_v4_tcp(1, 2, 0x02, &[2, 4, 5, 0xb4, 1, 3, 3, 7]),
            1 => outer_udp(1, 4789, &cat(&[&[8, 0, 0, 0, 0, 0, 1, 0], &mirrored])),
            2 => outer_v4(47, &cat(&[&gre(0x88be, false, None, Some(1)), &[0x10, 0, 0, 1, 0, 0, 0, 0], &mirrored])),
            3 => outer_udp(2152, 2152, &cat(&[&[0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 0, 0], &inner_v4_tcp()])),
            4 => eth_ab(0x86dd, &ipv6(V6_A, V6_B, 0, &cat(&[&ext(44, 0), &[17, 0, 0, 1, 0, 0, 0, 1], &udp(&V6_A, &V6_B, 1, 2, b"x")]))),
            _ => eth_ab(0x8847, &cat(&[&mpls(1, true), &[0, 0, 0, 0], &mirrored])),
        };
        for (at, v) in flips {
            let n = data.len();
            data[at % n] = v;
        }
        let wire = data.len() as u32;
        data.truncate(cut % (data.len() + 1));
        for decap in [true, false] {
            check_all(&data, LinkType::ETHERNET, wire, &config(decap, verify, 16));
        }
    }
}
