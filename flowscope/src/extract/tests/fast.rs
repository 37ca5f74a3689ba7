//! The 5-tuple fast path (`extract/fast.rs`) against the general walk: on
//! frames it accepts and on mutated, truncated and lying ones, `extract`
//! and `extract_into` must give exactly what `extract_general` gives.

use flowscope_core::{FlowExtractor, LinkType, PacketView, Timestamp};
use proptest::prelude::*;

use super::build::*;
use super::*;

/// Fast-path `extract` and `extract_into` (over a result holding a VLAN tag
/// and another key, so that stale fields would show) agree with the
/// general walk. Returns whether the fast path took the frame.
fn agree(data: &[u8], link: LinkType, wire_len: u32, cfg: &ExtractConfig) -> bool {
    let x = FiveTupleExtractor::new(cfg.clone());
    let p = PacketView::new(data, Timestamp::ZERO, link).with_wire_len(wire_len);
    let general = x.extract_general(&p);
    let fast = x.extract(&p);
    match (&general, &fast) {
        (Ok(g), Ok(f)) => assert_eq!(g, f, "{data:02x?}"),
        (Err(g), Err(f)) => assert_eq!(g, f),
        _ => panic!("general {general:?} vs fast {fast:?} on {data:02x?}"),
    }
    let stale = eth_ab(
        0x8100,
        &vlan(
            7,
            0x0800,
            &ipv4(V4_C, V4_D, 17, &udp(&V4_C, &V4_D, 9, 9, b"x")),
        ),
    );
    let mut out = FiveTupleExtractor::default()
        .extract_general(&PacketView::new(
            &stale,
            Timestamp::ZERO,
            LinkType::ETHERNET,
        ))
        .unwrap();
    let into = x.extract_into(&p, &mut out);
    match (&general, into) {
        (Ok(g), Ok(())) => assert_eq!(*g, out, "{data:02x?}"),
        (Err(g), Err(i)) => assert_eq!(*g, i),
        (g, i) => panic!("general {g:?} vs fast extract_into {i:?} on {data:02x?}"),
    }
    x.takes_fast_path(&p)
}

/// A frame of each shape the fast path accepts (`shape` picks the link and
/// transport), before mutation.
fn template(shape: u8, sport: u16, dport: u16, payload: &[u8]) -> (Vec<u8>, LinkType) {
    // SYN with MSS, NOP, window scale 7, then two NOPs.
    let opts = [2, 4, 5, 0xb4, 1, 3, 3, 7];
    let t4 =
        |flags: u8, o: &[u8]| tcp_opts(&V4_A, &V4_B, sport, dport, 7, 9, flags, 1024, o, payload);
    let t6 = |flags: u8| {
        tcp_opts(
            &V6_A, &V6_B, sport, dport, 7, 9, flags, 1024, &opts, payload,
        )
    };
    let v4_tcp = ipv4(V4_A, V4_B, 6, &t4(0x02, &opts));
    let v4_ack = ipv4(V4_A, V4_B, 6, &t4(0x10, &[]));
    let v4_udp = ipv4(V4_A, V4_B, 17, &udp(&V4_A, &V4_B, sport, dport, payload));
    let v6_tcp = ipv6(V6_A, V6_B, 6, &t6(0x12));
    let v6_udp = ipv6(V6_A, V6_B, 17, &udp(&V6_A, &V6_B, sport, dport, payload));
    // Linux cooked v1: packet type, ARPHRD, address length, 8-byte address,
    // protocol. v2: protocol, reserved, ifindex, ARPHRD, type, length, address.
    let sll =
        |ty: u16, ip: &[u8]| cat(&[&[0, 0, 0, 1, 0, 6], &MAC_A, &[0, 0], &ty.to_be_bytes(), ip]);
    let sll2 = |ty: u16, ip: &[u8]| {
        cat(&[
            &ty.to_be_bytes(),
            &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6],
            &MAC_A,
            &[0, 0],
            ip,
        ])
    };
    // ICMP types from the ports, so mutations vary them: echo (8/128, with a
    // counterpart) and others (the code becomes the second "port").
    let (ty4, ty6) = ((sport % 20) as u8, 128 + (sport % 20) as u8);
    let v4_icmp = ipv4(
        V4_A,
        V4_B,
        1,
        &icmp4(ty4, dport as u8, [0, 1, 0, 1], payload),
    );
    let v6_icmp = icmp6(&V6_A, &V6_B, ty6, dport as u8, payload);
    // MLD reports and other router-alert packets: one hop-by-hop header.
    let v6_hbh_icmp = ipv6(V6_A, V6_B, 0, &cat(&[&ext(58, 0), &v6_icmp]));
    let v6_hbh_udp = ipv6(
        V6_A,
        V6_B,
        0,
        &cat(&[&ext(17, 1), &udp(&V6_A, &V6_B, sport, dport, payload)]),
    );
    let v6_icmp = ipv6(V6_A, V6_B, 58, &v6_icmp);
    match shape % SHAPES {
        0 => (eth_ab(0x0800, &v4_tcp), LinkType::ETHERNET),
        1 => (eth_ab(0x0800, &v4_ack), LinkType::ETHERNET),
        2 => (eth_ab(0x0800, &v4_udp), LinkType::ETHERNET),
        3 => (eth_ab(0x86dd, &v6_tcp), LinkType::ETHERNET),
        4 => (eth_ab(0x86dd, &v6_udp), LinkType::ETHERNET),
        5 => (
            eth_ab(0x8100, &vlan(100, 0x0800, &v4_ack)),
            LinkType::ETHERNET,
        ),
        6 => (
            eth_ab(0x88a8, &vlan(5, 0x86dd, &v6_udp)),
            LinkType::ETHERNET,
        ),
        7 => (v4_udp, LinkType::RAW),
        8 => (v6_tcp, LinkType::IPV6),
        9 => (v4_tcp, LinkType::IPV4),
        10 => (sll(0x0800, &v4_ack), LinkType::LINUX_SLL),
        11 => (sll2(0x86dd, &v6_udp), LinkType::LINUX_SLL2),
        12 => (eth_ab(0x0800, &v4_icmp), LinkType::ETHERNET),
        13 => (eth_ab(0x86dd, &v6_icmp), LinkType::ETHERNET),
        14 => (eth_ab(0x86dd, &v6_hbh_icmp), LinkType::ETHERNET),
        _ => (v6_hbh_udp, LinkType::RAW),
    }
}

/// How many frame shapes [`template`] builds.
const SHAPES: u8 = 16;

/// Ports that include every tunnel port of the default configuration.
fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(80u16),
        Just(4789),
        Just(8472),
        Just(6081),
        Just(2152),
        Just(6635),
        Just(53),
        any::<u16>(),
    ]
}

#[test]
fn every_template_takes_the_fast_path() {
    // The shapes the module comment promises; a regression that sends them
    // all to the general walk would otherwise pass the proptests silently.
    let cfg = ExtractConfig::default();
    for shape in 0..SHAPES {
        let (data, link) = template(shape, 40000, 80, b"hello");
        assert!(agree(&data, link, data.len() as u32, &cfg), "shape {shape}");
    }
}

#[test]
fn declines_what_it_does_not_handle() {
    let x = FiveTupleExtractor::default();
    let take =
        |data: &[u8], link: LinkType, wire: u32, cfg: &ExtractConfig| agree(data, link, wire, cfg);
    let cfg = ExtractConfig::default();
    let tcp4 = |ip: Vec<u8>| eth_ab(0x0800, &ip);
    // IPv4 options (IHL 6).
    let mut opt = ipv4(V4_A, V4_B, 6, &tcp(&V4_A, &V4_B, 1, 2, 0x10, b""));
    opt[0] = 0x46;
    opt.splice(20..20, [1, 1, 1, 0]);
    let total = opt.len() as u16;
    opt[2..4].copy_from_slice(&total.to_be_bytes());
    assert!(!take(&tcp4(opt), LinkType::ETHERNET, 0, &cfg));
    // A first fragment (MF set).
    let frag = ipv4_frag(V4_A, V4_B, 17, 1, 0x2000, &udp(&V4_A, &V4_B, 1, 2, b"x"));
    assert!(!take(&tcp4(frag), LinkType::ETHERNET, 0, &cfg));
    // Zero total length (TSO).
    let mut tso = ipv4(V4_A, V4_B, 6, &tcp(&V4_A, &V4_B, 1, 2, 0x10, b"abc"));
    tso[2..4].copy_from_slice(&[0, 0]);
    assert!(!take(&tcp4(tso), LinkType::ETHERNET, 0, &cfg));
    // Tunnel ports, either on by default or by configuration.
    for (sp, dp) in [
        (1, 4789),
        (1, 8472),
        (1, 6081),
        (1, 2152),
        (2152, 1),
        (1, 6635),
    ] {
        assert!(!take(
            &eth_ab(0x0800, &v4_udp(sp, dp, b"")),
            LinkType::ETHERNET,
            0,
            &cfg
        ));
    }
    let no_decap = ExtractConfig {
        decap_tunnels: false,
        ..ExtractConfig::default()
    };
    assert!(take(
        &eth_ab(0x0800, &v4_udp(1, 4789, b"")),
        LinkType::ETHERNET,
        0,
        &no_decap
    ));
    // UDP length past the IP payload (a counted anomaly).
    let mut long = v4_udp(1, 2, b"abcd");
    long[24..26].copy_from_slice(&100u16.to_be_bytes());
    assert!(!take(&eth_ab(0x0800, &long), LinkType::ETHERNET, 0, &cfg));
    // IPv6 extension header, ICMP, two VLAN tags, checksums on, and a VLAN
    // tag with no layer allowed.
    let v6_ext = ipv6(
        V6_A,
        V6_B,
        60,
        &cat(&[&ext(17, 0), &udp(&V6_A, &V6_B, 1, 2, b"")]),
    );
    assert!(!take(&eth_ab(0x86dd, &v6_ext), LinkType::ETHERNET, 0, &cfg));
    // ICMP with its header cut short on the wire, and SCTP.
    let short_icmp = ipv4(V4_A, V4_B, 1, &[8, 0, 0, 0]);
    assert!(!take(
        &eth_ab(0x0800, &short_icmp),
        LinkType::ETHERNET,
        0,
        &cfg
    ));
    let sctp = ipv4(V4_A, V4_B, 132, &[0; 12]);
    assert!(!take(&eth_ab(0x0800, &sctp), LinkType::ETHERNET, 0, &cfg));
    // Two extension headers, and a hop-by-hop header longer than the payload.
    let two_ext = ipv6(
        V6_A,
        V6_B,
        0,
        &cat(&[&ext(60, 0), &ext(17, 0), &udp(&V6_A, &V6_B, 1, 2, b"")]),
    );
    assert!(!take(
        &eth_ab(0x86dd, &two_ext),
        LinkType::ETHERNET,
        0,
        &cfg
    ));
    let long_hbh = ipv6(V6_A, V6_B, 0, &ext(58, 4)[..16]);
    assert!(!take(
        &eth_ab(0x86dd, &long_hbh),
        LinkType::ETHERNET,
        0,
        &cfg
    ));
    let qinq = eth_ab(
        0x88a8,
        &vlan(1, 0x8100, &vlan(2, 0x0800, &v4_udp(1, 2, b""))),
    );
    assert!(!take(&qinq, LinkType::ETHERNET, 0, &cfg));
    let plain = eth_v4_tcp(1, 2, 0x10, b"abc");
    let verify = ExtractConfig {
        verify_checksums: true,
        ..ExtractConfig::default()
    };
    assert!(!take(&plain, LinkType::ETHERNET, 0, &verify));
    let tagged = eth_ab(0x8100, &vlan(3, 0x0800, &v4_udp(1, 2, b"")));
    let flat = ExtractConfig {
        max_layers: 0,
        ..ExtractConfig::default()
    };
    assert!(!take(&tagged, LinkType::ETHERNET, 0, &flat));
    // An IP length past the frame on the wire (not snapped): TruncatedIp.
    let cut = &plain[..plain.len() - 1];
    assert!(!x.takes_fast_path(&PacketView::new(cut, Timestamp::ZERO, LinkType::ETHERNET)));
    assert_eq!(
        x.extract(&PacketView::new(cut, Timestamp::ZERO, LinkType::ETHERNET))
            .unwrap_err(),
        Skip::Malformed(MalformedReason::TruncatedIp)
    );
    // The same bytes from a snapped capture are fine, and fast.
    assert!(take(cut, LinkType::ETHERNET, plain.len() as u32, &cfg));
}

#[test]
fn fast_results_match_the_headers() {
    // Expected values read off the frame as built (not from either path):
    // keys order by address first, and 10.0.0.1 (A) < 10.0.0.2 (B), so the
    // sender A:40000 is `lo` whatever the ports.
    let (data, link) = template(0, 40000, 80, b"hello");
    let x = FiveTupleExtractor::default();
    let p = PacketView::new(&data, Timestamp::ZERO, link);
    assert!(x.takes_fast_path(&p));
    let e = x.extract(&p).unwrap();
    assert_eq!(e.key.lo_addr, ip(&V4_A));
    assert_eq!((e.key.lo_port, e.key.hi_port, e.key.proto), (40000, 80, 6));
    assert_eq!(e.orientation, Orientation::LoToHi);
    let t = e.tcp.unwrap();
    assert_eq!(
        (t.seq, t.ack, t.window, t.window_scale),
        (7, 9, 1024, Some(7))
    );
    // 14 Ethernet + 20 IPv4 + 28 TCP (8 bytes of options).
    assert_eq!(e.payload.offset, 62);
    assert_eq!(e.payload.slice(&data), b"hello");
    assert_eq!((e.ip_len, e.payload_wire_len), (20 + 28 + 5, 5));
    // Ethernet padding past the IP length is not payload.
    let padded = cat(&[&template(2, 1, 2, b"").0, &[0u8; 18]]);
    let e = x
        .extract(&PacketView::new(
            &padded,
            Timestamp::ZERO,
            LinkType::ETHERNET,
        ))
        .unwrap();
    assert_eq!(
        (e.payload.len, e.payload_wire_len, e.l4),
        (0, 0, L4Proto::Udp)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6000, ..ProptestConfig::default() })]

    #[test]
    fn fast_equals_general_on_mutated_frames(
        shape in any::<u8>(),
        sport in port(),
        dport in port(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        tunnel in 0usize..4,
        // Flips land in the first 80 bytes (the headers) most of the time.
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
        cut in proptest::option::of(any::<usize>()),
        wire in prop_oneof![Just(None), Just(Some(0u32)), any::<u32>().prop_map(Some)],
        decap in any::<bool>(),
        verify in proptest::bool::weighted(0.1),
        max_layers in prop_oneof![Just(16u8), Just(0), Just(1)],
    ) {
        // Sometimes the payload is a tunnel header and an inner packet, so a
        // fast path that took a tunnel port would key the wrong flow.
        let inner_eth = eth_ab(0x0800, &inner_v4_tcp());
        let prefix: Vec<u8> = match tunnel {
            1 => cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner_eth]),
            2 => cat(&[&[0x30, 0xff, 0, 40, 0, 0, 0, 1], &inner_v4_tcp()]),
            3 => cat(&[&[0, 0, 0x65, 0x58, 0, 0, 1, 0], &inner_eth]),
            _ => vec![],
        };
        let payload = cat(&[&prefix, &payload]);
        let (mut data, link) = template(shape, sport, dport, &payload);
        for (at, v) in flips {
            let n = data.len();
            data[at % n] ^= v;
        }
        let full = data.len() as u32;
        if let Some(c) = cut {
            data.truncate(c % (data.len() + 1));
        }
        let cfg = ExtractConfig {
            decap_tunnels: decap,
            verify_checksums: verify,
            max_layers,
            ..ExtractConfig::default()
        };
        agree(&data, link, wire.unwrap_or(full), &cfg);
    }

    #[test]
    fn fast_equals_general_when_lengths_lie(
        shape in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        // Which length field to overwrite: IPv4 total / IPv6 payload, TCP
        // data offset, UDP length; and its new value.
        field in 0u8..3,
        value in prop_oneof![0u16..100, any::<u16>()],
        extra in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let (mut data, link) = template(shape, 1234, 80, &payload);
        let off = match link {
            LinkType::ETHERNET if data[12..14] == [0x08, 0x00] || data[12..14] == [0x86, 0xdd] => 14,
            LinkType::ETHERNET => 18,
            LinkType::LINUX_SLL => 16,
            LinkType::LINUX_SLL2 => 20,
            _ => 0,
        };
        let v6 = data[off] >> 4 == 6;
        let toff = off + if v6 { 40 } else { 20 };
        let udp = data[off + if v6 { 6 } else { 9 }] == 17;
        match field {
            0 => {
                let at = off + if v6 { 4 } else { 2 };
                data[at..at + 2].copy_from_slice(&value.to_be_bytes());
            }
            1 if !udp && toff + 12 < data.len() => data[toff + 12] = (value as u8) << 4,
            _ => {
                if udp && toff + 6 <= data.len() {
                    data[toff + 4..toff + 6].copy_from_slice(&value.to_be_bytes());
                }
            }
        }
        // Trailer bytes after the packet (link padding or garbage).
        data.extend_from_slice(&extra);
        agree(&data, link, data.len() as u32, &ExtractConfig::default());
    }
}
