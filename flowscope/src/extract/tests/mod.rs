//! Extractor tests over packets built in code (see `build`).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod build;
mod fast;
mod prop;

use std::net::IpAddr;

use flowscope_core::{
    ChecksumStatus, EncapLayer, Extracted, FiveTuple, FlowExtractor, FragmentInfo, IpPair, L4Proto,
    LinkType, MacPair, MalformedReason, Orientation, PacketView, Skip, TcpFlags, Timestamp,
};

use super::{ExtractConfig, FiveTupleExtractor, IpPairExtractor, MacPairExtractor};
use build::*;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

fn pv(data: &[u8], lt: LinkType) -> PacketView<'_> {
    PacketView::new(data, Timestamp::ZERO, lt)
}

fn ft_cfg(data: &[u8], lt: LinkType, cfg: ExtractConfig) -> Result<Extracted<FiveTuple>, Skip> {
    FiveTupleExtractor::new(cfg).extract(&pv(data, lt))
}

fn ft(data: &[u8], lt: LinkType) -> Result<Extracted<FiveTuple>, Skip> {
    ft_cfg(data, lt, ExtractConfig::default())
}

fn run(data: &[u8]) -> Result<Extracted<FiveTuple>, Skip> {
    ft(data, LinkType::ETHERNET)
}

fn malformed(r: MalformedReason) -> Result<(), Skip> {
    Err(Skip::Malformed(r))
}

fn verdict(r: Result<Extracted<FiveTuple>, Skip>) -> Result<(), Skip> {
    r.map(|_| ())
}

fn checking() -> ExtractConfig {
    ExtractConfig {
        verify_checksums: true,
        ..ExtractConfig::default()
    }
}

fn no_decap() -> ExtractConfig {
    ExtractConfig {
        decap_tunnels: false,
        ..ExtractConfig::default()
    }
}

/// The packet's own direction: (src, sport, dst, dport, proto).
fn directed(e: &Extracted<FiveTuple>) -> (IpAddr, u16, IpAddr, u16, u8) {
    let (s, sp, d, dp) = e.key.directed(e.orientation);
    (s, sp, d, dp, e.key.proto)
}

fn layers(e: &Extracted<FiveTuple>) -> Vec<EncapLayer> {
    e.encap.iter().copied().collect()
}

/// The inner C:1111 → D:80 TCP flow of the tunnel tests.
fn assert_inner_tcp(e: &Extracted<FiveTuple>, frame: &[u8]) {
    assert_eq!(directed(e), (ip(&V4_C), 1111, ip(&V4_D), 80, 6));
    assert_eq!(e.ip_len, 20 + 20 + 5);
    assert_eq!(e.payload.slice(frame), b"inner");
    assert!(e.encap.is_tunnelled());
}

fn outer_ip() -> EncapLayer {
    EncapLayer::Ip {
        src: ip(&V4_A),
        dst: ip(&V4_B),
    }
}

// ---------------------------------------------------------------- basics

#[test]
fn ethernet_ipv4_tcp_all_fields() {
    let f = eth_v4_tcp(40000, 80, PSH_ACK, b"hello");
    let e = run(&f).unwrap();
    // Canonical order: 10.0.0.1 < 10.0.0.2, so the sender is `lo`.
    assert_eq!(e.key.lo_addr, ip(&V4_A));
    assert_eq!((e.key.lo_port, e.key.hi_port, e.key.proto), (40000, 80, 6));
    assert_eq!(e.orientation, Orientation::LoToHi);
    assert_eq!(e.l4, L4Proto::Tcp);
    let t = e.tcp.unwrap();
    assert_eq!(
        (t.seq, t.ack, t.window, t.flags),
        (1000, 2000, 512, TcpFlags(PSH_ACK))
    );
    assert_eq!(t.window_scale, None);
    assert_eq!(e.ip_version, 4);
    assert_eq!(e.ip_len, 45);
    assert_eq!(e.payload_wire_len, 5);
    assert_eq!(e.payload.offset, 14 + 20 + 20);
    assert_eq!(e.payload.slice(&f), b"hello");
    assert!(e.encap.is_empty());
    assert_eq!(e.checksum, ChecksumStatus::Unchecked);
    assert_eq!(e.first_fragment, None);
}

#[test]
fn both_directions_share_the_canonical_key() {
    let a = eth_v4_tcp(40000, 80, SYN, b"");
    let b = eth_ab(
        0x0800,
        &ipv4(V4_B, V4_A, 6, &tcp(&V4_B, &V4_A, 80, 40000, SYN | ACK, b"")),
    );
    let (ea, eb) = (run(&a).unwrap(), run(&b).unwrap());
    assert_eq!(ea.key, eb.key);
    assert_eq!(ea.orientation, Orientation::LoToHi);
    assert_eq!(eb.orientation, Orientation::HiToLo);
    assert_eq!(directed(&eb), (ip(&V4_B), 80, ip(&V4_A), 40000, 6));
}

#[test]
fn window_scale_only_from_syn() {
    // MSS 1460, NOP, window scale 7: 8 option bytes.
    let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7];
    let syn = tcp_opts(&V4_A, &V4_B, 1, 2, 0, 0, SYN, 64240, &opts, b"");
    let e = run(&eth_ab(0x0800, &ipv4(V4_A, V4_B, 6, &syn))).unwrap();
    assert_eq!(e.tcp.unwrap().window_scale, Some(7));
    assert_eq!(e.payload_wire_len, 0);
    assert_eq!(e.payload.offset, 14 + 20 + 28);
    // RFC 7323 §2.2: ignored outside SYN segments.
    let data = tcp_opts(&V4_A, &V4_B, 1, 2, 0, 0, ACK, 64240, &opts, b"x");
    let e = run(&eth_ab(0x0800, &ipv4(V4_A, V4_B, 6, &data))).unwrap();
    assert_eq!(e.tcp.unwrap().window_scale, None);
    assert_eq!(e.payload_wire_len, 1);
}

#[test]
fn ipv6_udp() {
    let f = eth_ab(
        0x86dd,
        &ipv6(V6_B, V6_A, 17, &udp(&V6_B, &V6_A, 53, 5353, b"dns!")),
    );
    let e = run(&f).unwrap();
    assert_eq!(directed(&e), (ip(&V6_B), 53, ip(&V6_A), 5353, 17));
    assert_eq!(e.orientation, Orientation::HiToLo);
    assert_eq!(
        (e.ip_version, e.ip_len, e.payload_wire_len),
        (6, 40 + 12, 4)
    );
    assert_eq!(e.payload.slice(&f), b"dns!");
}

#[test]
fn sctp_ports_and_portless_protocols() {
    let mut sctp = vec![0x0b, 0xb8, 0x0e, 0x74, 0, 0, 0, 1, 0, 0, 0, 0];
    sctp.extend_from_slice(b"chunk");
    let e = run(&eth_ab(0x0800, &ipv4(V4_A, V4_B, 132, &sctp))).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 3000, ip(&V4_B), 3700, 132));
    assert_eq!((e.l4, e.payload_wire_len), (L4Proto::Sctp, 5));
    // ESP has no ports: the whole IP payload is the payload.
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 50, b"espdata!"));
    let e = run(&f).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 0, ip(&V4_B), 0, 50));
    assert_eq!(
        (e.l4, e.payload.slice(&f)),
        (L4Proto::Other(50), &b"espdata!"[..])
    );
}

// ---------------------------------------------------------------- ICMP

#[test]
fn icmp_echo_request_and_reply_share_a_key() {
    let req = eth_ab(
        0x0800,
        &ipv4(V4_A, V4_B, 1, &icmp4(8, 0, [0, 7, 0, 1], b"ping")),
    );
    let rep = eth_ab(
        0x0800,
        &ipv4(V4_B, V4_A, 1, &icmp4(0, 0, [0, 7, 0, 1], b"ping")),
    );
    let (a, b) = (run(&req).unwrap(), run(&rep).unwrap());
    // Community ID: sender port = type, receiver port = counterpart type.
    assert_eq!(directed(&a), (ip(&V4_A), 8, ip(&V4_B), 0, 1));
    assert_eq!(directed(&b), (ip(&V4_B), 0, ip(&V4_A), 8, 1));
    assert_eq!(a.key, b.key);
    assert_ne!(a.orientation, b.orientation);
    assert_eq!((a.l4, a.payload_wire_len), (L4Proto::Icmp, 4));
    assert_eq!(a.payload.slice(&req), b"ping");
}

#[test]
fn icmp_without_counterpart_uses_the_code() {
    // Destination unreachable (3), host unreachable (1): no counterpart.
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 1, &icmp4(3, 1, [0; 4], b"")));
    assert_eq!(directed(&run(&f).unwrap()), (ip(&V4_A), 3, ip(&V4_B), 1, 1));
    // Router solicitation 10 ↔ advertisement 9.
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 1, &icmp4(10, 0, [0; 4], b"")));
    assert_eq!(
        directed(&run(&f).unwrap()),
        (ip(&V4_A), 10, ip(&V4_B), 9, 1)
    );
}

#[test]
fn icmpv6_counterparts() {
    let ns = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 58, &icmp6(&V6_A, &V6_B, 135, 0, b"")),
    );
    let na = eth_ab(
        0x86dd,
        &ipv6(V6_B, V6_A, 58, &icmp6(&V6_B, &V6_A, 136, 0, b"")),
    );
    let (a, b) = (run(&ns).unwrap(), run(&na).unwrap());
    assert_eq!(directed(&a), (ip(&V6_A), 135, ip(&V6_B), 136, 58));
    assert_eq!(a.key, b.key);
    assert_eq!(a.l4, L4Proto::Icmpv6);
    let req = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 58, &icmp6(&V6_A, &V6_B, 128, 0, b"")),
    );
    assert_eq!(
        directed(&run(&req).unwrap()),
        (ip(&V6_A), 128, ip(&V6_B), 129, 58)
    );
    // Packet too big (2), code 0: no counterpart.
    let ptb = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 58, &icmp6(&V6_A, &V6_B, 2, 0, b"")),
    );
    assert_eq!(
        directed(&run(&ptb).unwrap()),
        (ip(&V6_A), 2, ip(&V6_B), 0, 58)
    );
}

#[test]
fn icmp_header_must_be_whole() {
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 1, &[8, 0, 0, 0]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::TruncatedTransport)
    );
}

// ---------------------------------------------------------------- link types

fn v4_tcp() -> Vec<u8> {
    ipv4(V4_A, V4_B, 6, &tcp(&V4_A, &V4_B, 1234, 80, SYN, b""))
}

fn v6_tcp() -> Vec<u8> {
    ipv6(V6_A, V6_B, 6, &tcp(&V6_A, &V6_B, 1234, 80, SYN, b""))
}

fn expect_v4(r: Result<Extracted<FiveTuple>, Skip>) {
    assert_eq!(directed(&r.unwrap()), (ip(&V4_A), 1234, ip(&V4_B), 80, 6));
}

fn expect_v6(r: Result<Extracted<FiveTuple>, Skip>) {
    assert_eq!(directed(&r.unwrap()), (ip(&V6_A), 1234, ip(&V6_B), 80, 6));
}

#[test]
fn raw_ip_link_types() {
    for lt in [LinkType::RAW, LinkType::RAW_DLT12, LinkType::RAW_DLT14] {
        expect_v4(ft(&v4_tcp(), lt));
        expect_v6(ft(&v6_tcp(), lt));
    }
    expect_v4(ft(&v4_tcp(), LinkType::IPV4));
    expect_v6(ft(&v6_tcp(), LinkType::IPV6));
    assert_eq!(
        verdict(ft(&v6_tcp(), LinkType::IPV4)),
        malformed(MalformedReason::BadIpVersion)
    );
    assert_eq!(
        verdict(ft(&v4_tcp(), LinkType::IPV6)),
        malformed(MalformedReason::BadIpVersion)
    );
    let mut v5 = v4_tcp();
    v5[0] = 0x55;
    assert_eq!(
        verdict(ft(&v5, LinkType::RAW)),
        malformed(MalformedReason::BadIpVersion)
    );
    assert_eq!(
        verdict(ft(&[], LinkType::RAW)),
        malformed(MalformedReason::TruncatedIp)
    );
}

#[test]
fn null_and_loop_address_families() {
    // DLT_NULL: host byte order, either one.
    expect_v4(ft(&cat(&[&2u32.to_le_bytes(), &v4_tcp()]), LinkType::NULL));
    expect_v4(ft(&cat(&[&2u32.to_be_bytes(), &v4_tcp()]), LinkType::NULL));
    for af in [24u32, 28, 30] {
        expect_v6(ft(&cat(&[&af.to_le_bytes(), &v6_tcp()]), LinkType::NULL));
        expect_v6(ft(&cat(&[&af.to_be_bytes(), &v6_tcp()]), LinkType::NULL));
        expect_v6(ft(&cat(&[&af.to_be_bytes(), &v6_tcp()]), LinkType::LOOP));
    }
    expect_v4(ft(&cat(&[&2u32.to_be_bytes(), &v4_tcp()]), LinkType::LOOP));
    // AF 7 (OSI) is not IP.
    let r = ft(&cat(&[&7u32.to_le_bytes(), &v4_tcp()]), LinkType::NULL);
    assert_eq!(verdict(r), Err(Skip::NotIp { ethertype: 7 }));
    assert_eq!(
        verdict(ft(&[2, 0], LinkType::NULL)),
        malformed(MalformedReason::TruncatedLink)
    );
    assert_eq!(
        verdict(ft(&[0, 0, 0], LinkType::LOOP)),
        malformed(MalformedReason::TruncatedLink)
    );
}

#[test]
fn linux_cooked_captures() {
    // SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a, 0, 0]);
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    expect_v4(ft(&cat(&[&sll, &v4_tcp()]), LinkType::LINUX_SLL));
    // SLL over a VLAN-tagged interface keeps the tag in the payload.
    let mut sll_vlan = sll.clone();
    sll_vlan[14..16].copy_from_slice(&0x8100u16.to_be_bytes());
    let e = ft(
        &cat(&[&sll_vlan, &vlan(5, 0x86dd, &v6_tcp())]),
        LinkType::LINUX_SLL,
    )
    .unwrap();
    assert_eq!(e.encap.vlan_ids().collect::<Vec<_>>(), [5]);
    // SLL2: protocol first, 20 bytes in all.
    let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 6, 2, 0, 0, 0, 0, 0, 0x0a]);
    assert_eq!(sll2.len(), 20);
    expect_v6(ft(&cat(&[&sll2, &v6_tcp()]), LinkType::LINUX_SLL2));
    // ARP over SLL is not IP.
    let mut arp = sll.clone();
    arp[14..16].copy_from_slice(&0x0806u16.to_be_bytes());
    let r = ft(&cat(&[&arp, &[0; 28]]), LinkType::LINUX_SLL);
    assert_eq!(verdict(r), Err(Skip::NotIp { ethertype: 0x0806 }));
    let r = ft(&sll[..15], LinkType::LINUX_SLL);
    assert_eq!(verdict(r), malformed(MalformedReason::TruncatedLink));
    let r = ft(&sll2[..19], LinkType::LINUX_SLL2);
    assert_eq!(verdict(r), malformed(MalformedReason::TruncatedLink));
}

#[test]
fn ppp_and_cisco_hdlc() {
    expect_v4(ft(
        &cat(&[&[0xff, 0x03, 0x00, 0x21], &v4_tcp()]),
        LinkType::PPP,
    ));
    expect_v6(ft(&cat(&[&[0x00, 0x57], &v6_tcp()]), LinkType::PPP));
    // Protocol-field compression (RFC 1661 §6.5): one odd byte.
    expect_v4(ft(&cat(&[&[0xff, 0x03, 0x21], &v4_tcp()]), LinkType::PPP));
    // MPLS unicast over PPP.
    let e = ft(
        &cat(&[&[0x02, 0x81], &mpls(100, true), &v4_tcp()]),
        LinkType::PPP,
    )
    .unwrap();
    assert_eq!(layers(&e), [EncapLayer::Mpls { label: 100 }]);
    // LCP is not IP.
    let r = ft(&[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4], LinkType::PPP);
    assert_eq!(verdict(r), Err(Skip::NotIp { ethertype: 0xc021 }));
    assert_eq!(
        verdict(ft(&[0xff, 0x03], LinkType::PPP)),
        malformed(MalformedReason::TruncatedLink)
    );
    // Cisco HDLC: address, control, EtherType.
    expect_v4(ft(
        &cat(&[&[0x0f, 0x00, 0x08, 0x00], &v4_tcp()]),
        LinkType::C_HDLC,
    ));
    expect_v6(ft(
        &cat(&[&[0x8f, 0x00, 0x86, 0xdd], &v6_tcp()]),
        LinkType::C_HDLC,
    ));
    let r = ft(&[0x8f, 0x00, 0x80, 0x35, 0, 0], LinkType::C_HDLC);
    assert_eq!(verdict(r), Err(Skip::NotIp { ethertype: 0x8035 }));
    assert_eq!(
        verdict(ft(&[0x0f, 0], LinkType::C_HDLC)),
        malformed(MalformedReason::TruncatedLink)
    );
}

#[test]
fn unknown_link_type() {
    let r = ft(&v4_tcp(), LinkType(147));
    assert_eq!(verdict(r), Err(Skip::UnsupportedLinkType(LinkType(147))));
}

#[test]
fn non_ip_ethernet() {
    let arp = eth_ab(0x0806, &[0; 28]);
    assert_eq!(verdict(run(&arp)), Err(Skip::NotIp { ethertype: 0x0806 }));
    // 802.3 length field with LLC (STP).
    let stp = eth([0x01, 0x80, 0xc2, 0, 0, 0], MAC_A, 38, &[0x42, 0x42, 3]);
    assert_eq!(verdict(run(&stp)), Err(Skip::NotIp { ethertype: 38 }));
    // PPPoE discovery.
    let padi = eth_ab(0x8863, &[0x11, 0x09, 0, 0, 0, 0]);
    assert_eq!(verdict(run(&padi)), Err(Skip::NotIp { ethertype: 0x8863 }));
    assert_eq!(
        verdict(run(&[0; 13])),
        malformed(MalformedReason::TruncatedLink)
    );
}

// ---------------------------------------------------------------- shims

#[test]
fn vlan_and_qinq() {
    let f = eth_ab(0x8100, &vlan(100, 0x0800, &v4_tcp()));
    let e = run(&f).unwrap();
    assert_eq!(layers(&e), [EncapLayer::Vlan { id: 100 }]);
    assert_eq!(e.payload.offset, 14 + 4 + 20 + 20);
    for outer in [0x88a8u16, 0x9100] {
        let f = eth_ab(outer, &vlan(10, 0x8100, &vlan(20, 0x86dd, &v6_tcp())));
        let e = run(&f).unwrap();
        assert_eq!(e.encap.vlan_ids().collect::<Vec<_>>(), [10, 20]);
        expect_v6(Ok(e));
    }
    // A tag cut short is a bad shim.
    let f = eth_ab(0x8100, &[0, 100]);
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    // ARP inside a VLAN is still not IP.
    let f = eth_ab(0x8100, &vlan(7, 0x0806, &[0; 28]));
    assert_eq!(verdict(run(&f)), Err(Skip::NotIp { ethertype: 0x0806 }));
}

#[test]
fn too_many_layers() {
    // 17 tags: one more than the default limit of 16.
    let mut p = vlan(1, 0x0800, &v4_tcp());
    for _ in 0..16 {
        p = vlan(1, 0x8100, &p);
    }
    let f = eth_ab(0x8100, &p);
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::TooDeep));
    // 16 tags pass.
    let mut p = vlan(1, 0x0800, &v4_tcp());
    for _ in 0..15 {
        p = vlan(1, 0x8100, &p);
    }
    assert_eq!(
        run(&eth_ab(0x8100, &p)).unwrap().encap.len(),
        8,
        "recorded up to capacity"
    );
    let cfg = ExtractConfig {
        max_layers: 1,
        ..ExtractConfig::default()
    };
    let two = eth_ab(0x88a8, &vlan(1, 0x8100, &vlan(2, 0x0800, &v4_tcp())));
    assert_eq!(
        verdict(ft_cfg(&two, LinkType::ETHERNET, cfg.clone())),
        malformed(MalformedReason::TooDeep)
    );
    let one = eth_ab(0x8100, &vlan(2, 0x0800, &v4_tcp()));
    assert!(ft_cfg(&one, LinkType::ETHERNET, cfg).is_ok());
}

#[test]
fn mpls_stack_and_pseudowire() {
    let f = eth_ab(
        0x8847,
        &cat(&[&mpls(16, false), &mpls(17, true), &v4_tcp()]),
    );
    let e = run(&f).unwrap();
    assert_eq!(
        layers(&e),
        [
            EncapLayer::Mpls { label: 16 },
            EncapLayer::Mpls { label: 17 }
        ]
    );
    expect_v4(Ok(e));
    expect_v6(run(&eth_ab(0x8848, &cat(&[&mpls(3, true), &v6_tcp()]))));
    // Ethernet pseudowire with the RFC 4385 control word (first nibble 0).
    let inner = eth(MAC_B, MAC_A, 0x0800, &inner_v4_tcp());
    let f = eth_ab(0x8847, &cat(&[&mpls(99, true), &[0, 0, 0, 5], &inner]));
    let e = run(&f).unwrap();
    assert_eq!(directed(&e), (ip(&V4_C), 1111, ip(&V4_D), 80, 6));
    assert_eq!(layers(&e), [EncapLayer::Mpls { label: 99 }]);
    // Associated channel (first nibble 1) carries no IP.
    let f = eth_ab(0x8847, &cat(&[&mpls(13, true), &[0x10, 0, 0, 0x21]]));
    assert_eq!(verdict(run(&f)), Err(Skip::NotIp { ethertype: 0x8847 }));
    // Stack cut before the bottom entry; unknown nibble after it.
    let f = eth_ab(0x8847, &cat(&[&mpls(16, false), &[0, 1]]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    let f = eth_ab(0x8847, &cat(&[&mpls(16, true), &[0x90, 0, 0, 0]]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
}

fn pppoe(session: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() + 2) as u16;
    cat(&[
        &[0x11, 0x00],
        &session.to_be_bytes(),
        &len.to_be_bytes(),
        &proto.to_be_bytes(),
        payload,
    ])
}

#[test]
fn pppoe_session() {
    let e = run(&eth_ab(0x8864, &pppoe(0x2a, 0x0021, &v4_tcp()))).unwrap();
    assert_eq!(layers(&e), [EncapLayer::Pppoe { session: 0x2a }]);
    expect_v4(Ok(e));
    expect_v6(run(&eth_ab(0x8864, &pppoe(1, 0x0057, &v6_tcp()))));
    let lcp = eth_ab(0x8864, &pppoe(1, 0xc021, &[1, 1, 0, 4]));
    assert_eq!(verdict(run(&lcp)), Err(Skip::NotIp { ethertype: 0xc021 }));
    let mut bad = eth_ab(0x8864, &pppoe(1, 0x0021, &v4_tcp()));
    bad[14] = 0x21; // version 2
    assert_eq!(
        verdict(run(&bad)),
        malformed(MalformedReason::BadEncapsulation)
    );
    let cut = eth_ab(0x8864, &[0x11, 0, 0, 1]);
    assert_eq!(
        verdict(run(&cut)),
        malformed(MalformedReason::BadEncapsulation)
    );
}

// ---------------------------------------------------------------- IPv4 details

#[test]
fn ethernet_padding_is_trimmed() {
    // 14 + 20 + 8 + 2 = 44 bytes: padded to the 60-byte minimum.
    let mut f = eth_ab(0x0800, &v4_udp(1000, 2000, b"hi"));
    f.resize(60, 0xee);
    let e = run(&f).unwrap();
    assert_eq!((e.ip_len, e.payload_wire_len), (30, 2));
    assert_eq!(e.payload.slice(&f), b"hi");
    // The checksum covers only the real datagram.
    let e = ft_cfg(&f, LinkType::ETHERNET, checking()).unwrap();
    assert_eq!(e.checksum, ChecksumStatus::Good);
}

#[test]
fn snapped_packets_clamp_the_payload() {
    let full = eth_v4_tcp(1, 2, ACK, &[7u8; 100]);
    let snap = &full[..80];
    let p = pv(snap, LinkType::ETHERNET).with_wire_len(full.len() as u32);
    let e = FiveTupleExtractor::default().extract(&p).unwrap();
    assert_eq!((e.ip_len, e.payload_wire_len), (140, 100));
    assert_eq!((e.payload.offset, e.payload.len), (54, 26));
    let e = FiveTupleExtractor::new(checking()).extract(&p).unwrap();
    assert_eq!(
        e.checksum,
        ChecksumStatus::Unchecked,
        "segment not captured whole"
    );
    // The same bytes claimed whole on the wire: the packet was cut in transit.
    assert_eq!(verdict(run(snap)), malformed(MalformedReason::TruncatedIp));
    // Snapped inside the TCP header.
    let p = pv(&full[..40], LinkType::ETHERNET).with_wire_len(full.len() as u32);
    let r = FiveTupleExtractor::default().extract(&p);
    assert_eq!(verdict(r), malformed(MalformedReason::TruncatedTransport));
}

#[test]
fn tso_zero_total_length_uses_the_captured_length() {
    let mut f = eth_v4_tcp(1, 2, ACK, b"abcdef");
    f[16] = 0;
    f[17] = 0;
    let e = run(&f).unwrap();
    assert_eq!((e.ip_len, e.payload_wire_len), (46, 6));
}

#[test]
fn ipv4_header_faults() {
    let good = eth_v4_tcp(1, 2, ACK, b"");
    let with = |i: usize, v: u8| {
        let mut f = good.clone();
        f[i] = v;
        verdict(run(&f))
    };
    assert_eq!(with(14, 0x44), malformed(MalformedReason::BadIpHeaderLen));
    assert_eq!(
        with(14, 0x4f),
        malformed(MalformedReason::BadIpHeaderLen),
        "60 > 40 captured"
    );
    assert_eq!(with(14, 0x65), malformed(MalformedReason::BadIpVersion));
    assert_eq!(with(17, 19), malformed(MalformedReason::BadIpTotalLen));
    assert_eq!(
        verdict(run(&good[..14 + 19])),
        malformed(MalformedReason::TruncatedIp)
    );
}

#[test]
fn ipv4_fragments() {
    let seg = udp(&V4_A, &V4_B, 5000, 53, &[1u8; 40]);
    // First fragment: 24 of 48 bytes, MF set.
    let first = eth_ab(
        0x0800,
        &ipv4_frag(V4_A, V4_B, 17, 0xbeef, 0x2000, &seg[..24]),
    );
    let e = run(&first).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 5000, ip(&V4_B), 53, 17));
    let info = FragmentInfo {
        ip_offset: 14,
        id: 0xbeef,
        offset: 0,
        more: true,
    };
    assert_eq!(e.first_fragment, Some(info));
    assert_eq!((e.ip_len, e.payload_wire_len), (44, 16));
    assert_eq!(e.payload.slice(&first), &[1u8; 16]);
    let e = ft_cfg(&first, LinkType::ETHERNET, checking()).unwrap();
    assert_eq!(e.checksum, ChecksumStatus::Unchecked);
    // Second fragment at byte 24 (field value 3 in 8-byte units).
    let second = eth_ab(0x0800, &ipv4_frag(V4_A, V4_B, 17, 0xbeef, 3, &seg[24..]));
    let info = FragmentInfo {
        ip_offset: 14,
        id: 0xbeef,
        offset: 24,
        more: false,
    };
    assert_eq!(verdict(run(&second)), Err(Skip::Fragment(info)));
}

// ---------------------------------------------------------------- IPv6 details

#[test]
fn ipv6_extension_headers() {
    // Hop-by-hop (8) → routing (16) → destination options (8) → TCP.
    let t = tcp(&V6_A, &V6_B, 1234, 80, SYN, b"xy");
    let chain = cat(&[&ext(43, 0), &ext(60, 1), &ext(6, 0), &t]);
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 0, &chain));
    let e = run(&f).unwrap();
    expect_v6(Ok(e));
    assert_eq!((e.ip_len, e.payload_wire_len), (40 + 32 + 22, 2));
    assert_eq!(e.payload.slice(&f), b"xy");
    // Authentication header: length in 4-byte units plus 2 (here 16 bytes).
    let ah = cat(&[&[6, 2], &[0u8; 14]]);
    expect_v6(run(&eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 51, &cat(&[&ah, &t])),
    )));
    // Mobility header (135) is walked too.
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 135, &cat(&[&ext(6, 0), &t])));
    expect_v6(run(&f));
    // No next header: no ports, no payload.
    let e = run(&eth_ab(0x86dd, &ipv6(V6_A, V6_B, 59, &[]))).unwrap();
    assert_eq!((e.l4, e.ip_len, e.payload.len), (L4Proto::Other(59), 40, 0));
}

#[test]
fn ipv6_extension_header_faults() {
    let t = tcp(&V6_A, &V6_B, 1234, 80, SYN, b"");
    // Eleven destination option headers: over the cap.
    let mut chain = t.clone();
    for i in 0..11 {
        chain = cat(&[&ext(if i == 0 { 6 } else { 60 }, 0), &chain]);
    }
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 60, &chain));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadIpv6ExtHeader)
    );
    // A header longer than the payload length.
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 0, &cat(&[&[6, 9], &[0u8; 6]])));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadIpv6ExtHeader)
    );
    // Cut inside the first two bytes.
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 60, &[6]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadIpv6ExtHeader)
    );
    // Payload length beyond the frame.
    let mut f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 6, &t));
    f[14 + 5] += 1;
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::TruncatedIp));
    assert_eq!(
        verdict(run(&f[..14 + 39])),
        malformed(MalformedReason::TruncatedIp)
    );
}

fn frag6(next: u8, offset_bytes: u16, more: bool, id: u32) -> Vec<u8> {
    let field = (offset_bytes / 8) << 3 | u16::from(more);
    cat(&[&[next, 0], &field.to_be_bytes(), &id.to_be_bytes()])
}

#[test]
fn ipv6_fragments() {
    let seg = udp(&V6_A, &V6_B, 7, 9, &[0u8; 32]);
    let first = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 44, &cat(&[&frag6(17, 0, true, 77), &seg[..16]])),
    );
    let e = run(&first).unwrap();
    assert_eq!(directed(&e), (ip(&V6_A), 7, ip(&V6_B), 9, 17));
    let info = FragmentInfo {
        ip_offset: 14,
        id: 77,
        offset: 0,
        more: true,
    };
    assert_eq!(e.first_fragment, Some(info));
    assert_eq!(e.payload_wire_len, 8);
    let rest = eth_ab(
        0x86dd,
        &ipv6(
            V6_A,
            V6_B,
            44,
            &cat(&[&frag6(17, 16, false, 77), &seg[16..]]),
        ),
    );
    let info = FragmentInfo {
        ip_offset: 14,
        id: 77,
        offset: 16,
        more: false,
    };
    assert_eq!(verdict(run(&rest)), Err(Skip::Fragment(info)));
    // Atomic fragment (offset 0, M clear, RFC 6946): a whole datagram.
    let atomic = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 44, &cat(&[&frag6(17, 0, false, 78), &seg])),
    );
    let e = run(&atomic).unwrap();
    assert_eq!((e.first_fragment, e.payload_wire_len), (None, 32));
}

// ---------------------------------------------------------------- tunnels

#[test]
fn ip_in_ip_and_6in4() {
    let f = outer_v4(4, &inner_v4_tcp());
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e), [outer_ip()]);
    // 6in4 (protocol 41).
    let e = run(&outer_v4(41, &v6_tcp())).unwrap();
    expect_v6(Ok(e));
    assert_eq!(layers(&e), [outer_ip()]);
    // IPv4 in IPv6.
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 4, &inner_v4_tcp()));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e),
        [EncapLayer::Ip {
            src: ip(&V6_A),
            dst: ip(&V6_B)
        }]
    );
    // Protocol says IPv4, payload is IPv6.
    let f = outer_v4(4, &v6_tcp());
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::BadIpVersion));
    // Without decapsulation the outer flow is keyed.
    let e = ft_cfg(
        &outer_v4(4, &inner_v4_tcp()),
        LinkType::ETHERNET,
        no_decap(),
    )
    .unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 0, ip(&V4_B), 0, 4));
    assert!(e.encap.is_empty());
}

#[test]
fn inner_length_beyond_the_outer_packet_is_malformed() {
    let mut inner = inner_v4_tcp();
    inner[3] += 10; // claims 10 bytes the outer packet does not carry
    let f = outer_v4(4, &inner);
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::TruncatedIp));
}

#[test]
fn ip_in_ip_loops_end() {
    // Nested IPv4-in-IPv4 down to an empty innermost packet.
    let mut p = ipv4(V4_A, V4_B, 6, &tcp(&V4_A, &V4_B, 1, 2, SYN, b""));
    for _ in 0..40 {
        p = ipv4(V4_A, V4_B, 4, &p);
    }
    assert_eq!(
        verdict(run(&eth_ab(0x0800, &p))),
        malformed(MalformedReason::TooDeep)
    );
    let mut g = inner_v4_tcp();
    for _ in 0..20 {
        g = ipv4(V4_A, V4_B, 47, &cat(&[&gre(0x0800, false, None, None), &g]));
    }
    assert_eq!(
        verdict(run(&eth_ab(0x0800, &g))),
        malformed(MalformedReason::TooDeep)
    );
}

#[test]
fn gre_plain_keyed_sequenced() {
    let f = outer_v4(
        47,
        &cat(&[&gre(0x0800, false, None, None), &inner_v4_tcp()]),
    );
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e), [outer_ip(), EncapLayer::Gre { proto: 0x0800 }]);
    let hdr = gre(0x0800, true, Some(0xabcd), Some(9));
    assert_eq!(hdr.len(), 16);
    let f = outer_v4(47, &cat(&[&hdr, &inner_v4_tcp()]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    let f = eth_ab(
        0x86dd,
        &ipv6(
            V6_A,
            V6_B,
            47,
            &cat(&[&gre(0x86dd, false, Some(1), None), &v6_tcp()]),
        ),
    );
    expect_v6(run(&f));
    // Transparent Ethernet bridging and MPLS over GRE.
    let bridged = eth(MAC_A, MAC_B, 0x0800, &inner_v4_tcp());
    let f = outer_v4(47, &cat(&[&gre(0x6558, false, Some(5), None), &bridged]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    let f = outer_v4(
        47,
        &cat(&[
            &gre(0x8847, false, None, None),
            &mpls(8, true),
            &inner_v4_tcp(),
        ]),
    );
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e)[2], EncapLayer::Mpls { label: 8 });
}

#[test]
fn gre_that_is_not_unwrapped_keys_the_outer_flow() {
    // Unknown payload protocol (WCCP 0x883e), unknown version, routing bit.
    for hdr in [
        gre(0x883e, false, None, None),
        vec![0, 2, 8, 0],
        vec![0x40, 0, 8, 0, 0, 0, 0, 0],
    ] {
        let f = outer_v4(47, &cat(&[&hdr, &inner_v4_tcp()]));
        let e = run(&f).unwrap();
        assert_eq!(directed(&e), (ip(&V4_A), 0, ip(&V4_B), 0, 47));
        assert!(e.encap.is_empty());
    }
    // Header cut short, or its optional words missing.
    let f = outer_v4(47, &[0, 0]);
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    let f = outer_v4(47, &gre(0x0800, true, Some(1), Some(2))[..12]);
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    // Valid GRE whose inner packet is cut.
    let f = outer_v4(
        47,
        &cat(&[&gre(0x0800, false, None, None), &inner_v4_tcp()[..10]]),
    );
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::TruncatedIp));
}

fn mirrored() -> Vec<u8> {
    eth(MAC_A, MAC_B, 0x0800, &inner_v4_tcp())
}

#[test]
fn erspan_types() {
    // Type I: GRE without sequence number, frame right after.
    let f = outer_v4(47, &cat(&[&gre(0x88be, false, None, None), &mirrored()]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e)[2],
        EncapLayer::Erspan {
            version: 1,
            session: 0
        }
    );
    // Type II: sequence number, 8-byte header (ver 1, VLAN 0, session 0x155).
    let ii = [0x10, 0x00, 0x01, 0x55, 0, 0, 0, 0];
    let f = outer_v4(
        47,
        &cat(&[&gre(0x88be, false, None, Some(1)), &ii, &mirrored()]),
    );
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e),
        [
            outer_ip(),
            EncapLayer::Gre { proto: 0x88be },
            EncapLayer::Erspan {
                version: 2,
                session: 0x155
            }
        ]
    );
    let bad_ver = [0x20, 0x00, 0x01, 0x55, 0, 0, 0, 0];
    let f = outer_v4(
        47,
        &cat(&[&gre(0x88be, false, None, Some(1)), &bad_ver, &mirrored()]),
    );
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    // Type III: 12-byte header (ver 2, session 7), Ethernet frame type.
    let iii = [0x20, 0x00, 0x00, 0x07, 0, 0, 0, 1, 0, 0, 0x00, 0x00];
    let f = outer_v4(
        47,
        &cat(&[&gre(0x22eb, false, None, Some(1)), &iii, &mirrored()]),
    );
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e)[2],
        EncapLayer::Erspan {
            version: 3,
            session: 7
        }
    );
    // Type III with the O flag: 8 more bytes of platform-specific subheader.
    let mut iii_o = iii;
    iii_o[11] = 0x01;
    let f = outer_v4(
        47,
        &cat(&[
            &gre(0x22eb, false, None, Some(1)),
            &iii_o,
            &[0xaa; 8],
            &mirrored(),
        ]),
    );
    assert_inner_tcp(&run(&f).unwrap(), &f);
    // Type III cut inside the header.
    let f = outer_v4(47, &cat(&[&gre(0x22eb, false, None, Some(1)), &iii[..6]]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
}

#[test]
fn pptp_enhanced_gre() {
    // Version 1, K and S set; payload length, call id, sequence number.
    let ppp = cat(&[&[0xff, 0x03, 0x00, 0x21], &inner_v4_tcp()]);
    let hdr = cat(&[
        &[0x30, 0x01, 0x88, 0x0b],
        &(ppp.len() as u16).to_be_bytes(),
        &[0, 9],
        &[0, 0, 0, 1],
    ]);
    let f = outer_v4(47, &cat(&[&hdr, &ppp]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e), [outer_ip(), EncapLayer::Gre { proto: 0x880b }]);
    // Acknowledgment only (A set, S clear, no payload): the GRE flow.
    let ack = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 9, 0, 0, 0, 1];
    let e = run(&outer_v4(47, &ack)).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 0, ip(&V4_B), 0, 47));
    // Encrypted PPP (CCP/MPPE 0x00fd): the GRE flow.
    let mppe = cat(&[
        &[0x30, 0x01, 0x88, 0x0b, 0, 6, 0, 9, 0, 0, 0, 2],
        &[0xff, 0x03, 0x00, 0xfd, 1, 2],
    ]);
    let e = run(&outer_v4(47, &mppe)).unwrap();
    assert_eq!(e.key.proto, 47);
}

fn vxlan_hdr(vni: u32) -> Vec<u8> {
    cat(&[&[0x08, 0, 0, 0], &(vni << 8).to_be_bytes()])
}

#[test]
fn vxlan() {
    let f = outer_udp(50000, 4789, &cat(&[&vxlan_hdr(4242), &mirrored()]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e),
        [
            outer_ip(),
            EncapLayer::Udp {
                sport: 50000,
                dport: 4789
            },
            EncapLayer::Vxlan { vni: 4242 }
        ]
    );
    // The Linux default port 8472 too.
    let f = outer_udp(50000, 8472, &cat(&[&vxlan_hdr(1), &mirrored()]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    // I flag clear: not VXLAN, the outer UDP flow.
    let mut hdr = vxlan_hdr(1);
    hdr[0] = 0;
    let f = outer_udp(50000, 4789, &cat(&[&hdr, &mirrored()]));
    let e = run(&f).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 50000, ip(&V4_B), 4789, 17));
    assert_eq!(
        (e.payload_wire_len, e.encap.is_empty()),
        ((8 + mirrored().len()) as u32, true)
    );
    // Valid header, inner Ethernet cut short.
    let f = outer_udp(50000, 4789, &cat(&[&vxlan_hdr(1), &[0u8; 10]]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    // Not unwrapped when asked not to.
    let f = outer_udp(50000, 4789, &cat(&[&vxlan_hdr(4242), &mirrored()]));
    let e = ft_cfg(&f, LinkType::ETHERNET, no_decap()).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 50000, ip(&V4_B), 4789, 17));
}

#[test]
fn geneve_with_options() {
    // Version 0, 2 words of options, protocol 0x6558, VNI 0x123456.
    let hdr = [0x02, 0x00, 0x65, 0x58, 0x12, 0x34, 0x56, 0x00];
    let opts = [0x01, 0x02, 0x03, 0x01, 0xaa, 0xbb, 0xcc, 0xdd];
    let f = outer_udp(1, 6081, &cat(&[&hdr, &opts, &mirrored()]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e)[2], EncapLayer::Geneve { vni: 0x123456 });
    // IPv4 directly inside.
    let hdr4 = [0x00, 0x00, 0x08, 0x00, 0, 0, 1, 0];
    let f = outer_udp(1, 6081, &cat(&[&hdr4, &inner_v4_tcp()]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    // Version 1: not Geneve, the outer flow.
    let v1 = [0x40, 0x00, 0x65, 0x58, 0, 0, 1, 0];
    let e = run(&outer_udp(1, 6081, &cat(&[&v1, &mirrored()]))).unwrap();
    assert_eq!(e.key.proto, 17);
    // Options claimed past the end.
    let long = [0x3f, 0x00, 0x65, 0x58, 0, 0, 1, 0];
    let f = outer_udp(1, 6081, &cat(&[&long, &[0u8; 20]]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
}

#[test]
fn gtp_u() {
    // Version 1, PT 1, no optional fields, G-PDU, TEID 0x01020304.
    let inner = inner_v4_tcp();
    let plain = cat(&[
        &[0x30, 0xff],
        &(inner.len() as u16).to_be_bytes(),
        &[1, 2, 3, 4],
    ]);
    let f = outer_udp(2152, 2152, &cat(&[&plain, &inner]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(layers(&e)[2], EncapLayer::GtpU { teid: 0x0102_0304 });
    // E and S set: sequence, N-PDU, next type 0x85 (PDU session container,
    // one 4-byte word), then no more extensions.
    let ext = cat(&[
        &[0x34, 0xff, 0, 0, 0, 0, 0, 9],
        &[0, 1, 0, 0x85],
        &[1, 0x10, 0x05, 0x00],
    ]);
    let f = outer_udp(40000, 2152, &cat(&[&ext, &inner]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    // GTP-U matched on the source port (downlink from the port 2152 side).
    let f = outer_udp(2152, 40000, &cat(&[&plain, &inner]));
    assert_inner_tcp(&run(&f).unwrap(), &f);
    // Echo request (type 1) stays the outer UDP flow.
    let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
    let e = run(&outer_udp(40000, 2152, &echo)).unwrap();
    assert_eq!(directed(&e), (ip(&V4_A), 40000, ip(&V4_B), 2152, 17));
    // Version 2 (GTPv2-C on the wrong port): not GTP-U.
    let e = run(&outer_udp(
        40000,
        2152,
        &cat(&[&[0x50, 0xff, 0, 0, 0, 0, 0, 0], &inner]),
    ))
    .unwrap();
    assert_eq!(e.key.proto, 17);
    // Extension header with zero length, and a chain running off the end.
    let zero = cat(&[
        &[0x34, 0xff, 0, 0, 0, 0, 0, 9],
        &[0, 1, 0, 0x85],
        &[0, 0, 0, 0],
    ]);
    let f = outer_udp(40000, 2152, &cat(&[&zero, &inner]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    let runaway = cat(&[&[0x34, 0xff, 0, 0, 0, 0, 0, 9], &[0, 1, 0, 0x85], &[9, 0]]);
    let f = outer_udp(40000, 2152, &runaway);
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadEncapsulation)
    );
    // G-PDU whose inner version nibble is not IP.
    let f = outer_udp(40000, 2152, &cat(&[&plain, &[0x50; 20]]));
    assert_eq!(verdict(run(&f)), malformed(MalformedReason::BadIpVersion));
}

#[test]
fn mpls_over_udp() {
    let f = outer_udp(49152, 6635, &cat(&[&mpls(1000, true), &inner_v4_tcp()]));
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e),
        [
            outer_ip(),
            EncapLayer::Udp {
                sport: 49152,
                dport: 6635
            },
            EncapLayer::Mpls { label: 1000 }
        ]
    );
}

#[test]
fn nested_tunnels_record_every_layer() {
    // VLAN → IPv4 → GRE → IPv4 → UDP → VXLAN → Ethernet → IPv4 → TCP.
    let vx = v4_udp(9, 4789, &cat(&[&vxlan_hdr(3), &mirrored()]));
    let f = eth_ab(
        0x8100,
        &vlan(
            12,
            0x0800,
            &ipv4(
                V4_A,
                V4_B,
                47,
                &cat(&[&gre(0x0800, false, None, None), &vx]),
            ),
        ),
    );
    let e = run(&f).unwrap();
    assert_inner_tcp(&e, &f);
    assert_eq!(
        layers(&e),
        [
            EncapLayer::Vlan { id: 12 },
            outer_ip(),
            EncapLayer::Gre { proto: 0x0800 },
            outer_ip(),
            EncapLayer::Udp {
                sport: 9,
                dport: 4789
            },
            EncapLayer::Vxlan { vni: 3 },
        ]
    );
}

// ---------------------------------------------------------------- transport faults

#[test]
fn transport_faults() {
    let mut t = tcp(&V4_A, &V4_B, 1, 2, ACK, b"abcd");
    t[12] = 0x40; // data offset 4
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 6, &t));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadTransportHeader)
    );
    t[12] = 0x70; // 28 bytes of header in a 24-byte segment
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 6, &t));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadTransportHeader)
    );
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 6, &[0u8; 12]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::TruncatedTransport)
    );
    let mut u = udp(&V4_A, &V4_B, 1, 2, b"abcd");
    u[5] = 4; // length below the header
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::BadTransportHeader)
    );
    u[5] = 40; // longer than the 12-byte IP payload: kept, as Zeek does
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u));
    let e = run(&f).expect("a UDP length past the IP payload is tolerated");
    assert!(e
        .anomalies
        .contains(flowscope_core::PacketAnomalies::UDP_LENGTH_EXCEEDS_IP));
    // The datagram ends with the IP payload: 12 - 8 header bytes.
    assert_eq!(e.payload_wire_len, 4);
    assert_eq!(e.payload.slice(&f), b"abcd");
    // Exactly as long as the IP payload: no anomaly.
    u[5] = 12;
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u));
    assert!(run(&f).is_ok_and(|e| e.anomalies.is_empty()));
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u[..6]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::TruncatedTransport)
    );
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 132, &[0u8; 8]));
    assert_eq!(
        verdict(run(&f)),
        malformed(MalformedReason::TruncatedTransport)
    );
}

#[test]
fn udp_length_shorter_than_ip_payload_trims_the_payload() {
    let mut u = udp(&V4_A, &V4_B, 1, 2, b"abcd");
    u.extend_from_slice(b"trailer");
    let f = eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u));
    let e = run(&f).unwrap();
    assert_eq!(e.payload_wire_len, 4);
    assert_eq!(e.payload.slice(&f), b"abcd");
}

// ---------------------------------------------------------------- checksums

fn check(f: &[u8]) -> ChecksumStatus {
    ft_cfg(f, LinkType::ETHERNET, checking()).unwrap().checksum
}

#[test]
fn checksums_good_and_bad() {
    let good = [
        eth_v4_tcp(1, 2, PSH_ACK, b"odd"),
        eth_ab(0x0800, &v4_udp(1, 2, b"even")),
        eth_ab(
            0x0800,
            &ipv4(V4_A, V4_B, 1, &icmp4(8, 0, [0, 1, 0, 1], b"ping!")),
        ),
        eth_ab(
            0x86dd,
            &ipv6(V6_A, V6_B, 6, &tcp(&V6_A, &V6_B, 1, 2, SYN, b"x")),
        ),
        eth_ab(
            0x86dd,
            &ipv6(V6_A, V6_B, 17, &udp(&V6_A, &V6_B, 1, 2, b"yy")),
        ),
        eth_ab(
            0x86dd,
            &ipv6(V6_A, V6_B, 58, &icmp6(&V6_A, &V6_B, 128, 0, b"z")),
        ),
    ];
    for f in &good {
        assert_eq!(check(f), ChecksumStatus::Good, "{f:02x?}");
        // Flip one payload bit: the transport checksum must catch it.
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        assert_eq!(check(&bad), ChecksumStatus::Bad, "{bad:02x?}");
        // Unverified by default.
        assert_eq!(run(f).unwrap().checksum, ChecksumStatus::Unchecked);
    }
    // IPv4 header checksum.
    let mut f = good[0].clone();
    f[14 + 8] = 63; // TTL changed, checksum not updated
    assert_eq!(check(&f), ChecksumStatus::Bad);
}

#[test]
fn zero_udp_checksum() {
    // IPv4: zero means "not computed" (RFC 768).
    let mut f = eth_ab(0x0800, &v4_udp(1, 2, b"data"));
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    assert_eq!(check(&f), ChecksumStatus::Good);
    // IPv6: the checksum is mandatory (RFC 8200 §8.1).
    let mut f = eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 17, &udp(&V6_A, &V6_B, 1, 2, b"data")),
    );
    f[14 + 40 + 6] = 0;
    f[14 + 40 + 7] = 0;
    assert_eq!(check(&f), ChecksumStatus::Bad);
}

#[test]
fn ipv6_routing_header_checksum_uses_the_final_destination() {
    // RFC 8200 §8.1: with segments left, the sender's pseudo-header carries
    // the last address of the routing header, not the current destination.
    let fin = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    let u = udp(&V6_A, &fin, 1, 2, b"routed");
    for (ty, segments_left, verdict) in [
        (0u8, 1u8, ChecksumStatus::Good),
        (2, 1, ChecksumStatus::Good),
        (0, 0, ChecksumStatus::Bad),
    ] {
        let rh = cat(&[&[17, 2, ty, segments_left, 0, 0, 0, 0], &fin]);
        let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 43, &cat(&[&rh, &u])));
        assert_eq!(
            check(&f),
            verdict,
            "type {ty}, segments left {segments_left}"
        );
    }
    // Segment routing header (type 4): the final segment is list entry 0.
    let srh = cat(&[&[17, 2, 4, 1, 0, 0, 0, 0], &fin]);
    let f = eth_ab(0x86dd, &ipv6(V6_A, V6_B, 43, &cat(&[&srh, &u])));
    assert_eq!(check(&f), ChecksumStatus::Good);
}

// ---------------------------------------------------------------- other extractors

#[test]
fn ip_pair_extractor() {
    let x = IpPairExtractor::default();
    let f = outer_v4(
        47,
        &cat(&[
            &gre(0x0800, false, None, None),
            &ipv4(V4_D, V4_C, 17, &udp(&V4_D, &V4_C, 1, 2, b"")),
        ]),
    );
    let e = x.extract(&pv(&f, LinkType::ETHERNET)).unwrap();
    assert_eq!(
        e.key,
        IpPair {
            lo: ip(&V4_C),
            hi: ip(&V4_D)
        }
    );
    assert_eq!(e.orientation, Orientation::HiToLo);
    assert_eq!((e.l4, e.ip_version, e.encap.len()), (L4Proto::Udp, 4, 2));
    let arp = eth_ab(0x0806, &[0; 28]);
    assert_eq!(
        x.extract(&pv(&arp, LinkType::ETHERNET)).map(|_| ()),
        Err(Skip::NotIp { ethertype: 0x0806 })
    );
}

#[test]
fn mac_pair_extractor() {
    let x = MacPairExtractor::default();
    // Outermost MACs even through a VXLAN whose inner frame swaps them.
    let f = outer_udp(5, 4789, &cat(&[&vxlan_hdr(1), &mirrored()]));
    let e = x.extract(&pv(&f, LinkType::ETHERNET)).unwrap();
    assert_eq!(
        e.key,
        MacPair {
            lo: MAC_A,
            hi: MAC_B
        }
    );
    assert_eq!(e.orientation, Orientation::LoToHi);
    assert_eq!((e.l4, e.ip_version), (L4Proto::Tcp, 4));
    // ARP from B to A: still a flow, protocol Other(0).
    let arp = eth(MAC_A, MAC_B, 0x0806, &[0; 28]);
    let e = x.extract(&pv(&arp, LinkType::ETHERNET)).unwrap();
    assert_eq!(
        (e.key, e.orientation, e.l4),
        (
            MacPair {
                lo: MAC_A,
                hi: MAC_B
            },
            Orientation::HiToLo,
            L4Proto::Other(0)
        )
    );
    assert_eq!(e.ip_version, 0);
    let r = x.extract(&pv(&v4_tcp(), LinkType::RAW)).map(|_| ());
    assert_eq!(r, Err(Skip::UnsupportedLinkType(LinkType::RAW)));
    let r = x.extract(&pv(&[0; 10], LinkType::ETHERNET)).map(|_| ());
    assert_eq!(r, malformed(MalformedReason::TruncatedLink));
    let mut broken = eth_v4_tcp(1, 2, ACK, b"");
    broken[14] = 0x44;
    let r = x.extract(&pv(&broken, LinkType::ETHERNET)).map(|_| ());
    assert_eq!(r, malformed(MalformedReason::BadIpHeaderLen));
}

#[test]
fn public_decode_matches_the_extractor() {
    let f = eth_v4_tcp(40000, 80, ACK, b"abc");
    let mut encap = flowscope_core::Encap::default();
    let d = super::decode(
        &pv(&f, LinkType::ETHERNET),
        &ExtractConfig::default(),
        &mut encap,
    )
    .unwrap();
    assert_eq!(
        (d.src(), d.sport, d.dst(), d.dport),
        (ip(&V4_A), 40000, ip(&V4_B), 80)
    );
    assert_eq!(d.payload.slice(&f), b"abc");
}
