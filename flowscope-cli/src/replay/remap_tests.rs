//! Checksums are verified from scratch (RFC 1071: the one's-complement sum
//! of pseudo-header and segment, checksum field included, must be all
//! ones), independently of the incremental update under test.

use super::*;

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn checksum(parts: &[&[u8]]) -> u16 {
    !fold(parts.iter().map(|p| sum16(p)).sum())
}

fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    if src.len() == 4 {
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
    }
    p
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A transport segment with its checksum (at `ck`) computed for these addresses.
fn seg(src: &[u8], dst: &[u8], proto: u8, mut s: Vec<u8>, ck: usize) -> Vec<u8> {
    let c = checksum(&[&pseudo(src, dst, proto, s.len()), &s]);
    s[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
    s
}

fn tcp_bytes(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(b"hello, remap");
    t
}

fn udp_bytes(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let t = seg(&src, &dst, 6, tcp_bytes(sport, dport), 16);
    eth(0x0800, &ipv4(src, dst, 6, 0, &t))
}

/// The IPv4 header at 14 checks out.
fn ip4_header_ok(f: &[u8]) -> bool {
    let ihl = usize::from(f[14] & 15) * 4;
    fold(sum16(&f[14..14 + ihl])) == 0xffff
}

/// The transport checksum of the IPv4 packet at 14 checks out.
fn l4_ok_v4(f: &[u8]) -> bool {
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 15) * 4;
    let seg = &ip[ihl..];
    fold(sum16(&pseudo(&ip[12..16], &ip[16..20], ip[9], seg.len())) + sum16(seg)) == 0xffff
}

fn l4_ok_v6(f: &[u8], proto: u8, l4_at: usize) -> bool {
    let ip = &f[14..];
    let seg = &ip[l4_at..];
    fold(sum16(&pseudo(&ip[8..24], &ip[24..40], proto, seg.len())) + sum16(seg)) == 0xffff
}

fn net4() -> Ipv4Net {
    "198.18.0.0/15".parse().unwrap()
}
fn net6() -> Ipv6Net {
    "2001:2::/48".parse().unwrap()
}
fn v4(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(<[u8; 4]>::try_from(&f[at..at + 4]).unwrap())
}
fn v6(f: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&f[at..at + 16]).unwrap())
}

#[test]
fn rfc1624_worked_example() {
    // RFC 1624 section 4: m = 0x5555 -> 0x3285 with HC = 0xDD2F gives 0x0000.
    assert_eq!(adjust(0xdd2f, &[0x55, 0x55], &[0x32, 0x85]), 0x0000);
}

#[test]
fn cidr_parsing() {
    assert_eq!(net4().to_string(), "198.18.0.0/15");
    assert_eq!(
        "198.19.7.7/15".parse::<Ipv4Net>().unwrap().to_string(),
        "198.18.0.0/15"
    );
    assert!(net4().contains(Ipv4Addr::new(198, 19, 255, 255)));
    assert!(!net4().contains(Ipv4Addr::new(198, 20, 0, 0)));
    assert_eq!(net6().to_string(), "2001:2::/48");
    for bad in [
        "198.18.0.0",
        "198.18.0.0/33",
        "1.2.3/8",
        "x/8",
        "198.18.0.0/-1",
    ] {
        assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
    }
    assert!("2001:2::/129".parse::<Ipv6Net>().is_err());
    assert!("::/0".parse::<Ipv6Net>().is_ok());
}

#[test]
fn tcp_v4_checksums_valid_after_remap() {
    let orig = tcp4([10, 1, 2, 3], [192, 0, 2, 9], 40000, 80);
    assert!(ip4_header_ok(&orig) && l4_ok_v4(&orig), "fixture is valid");
    let mut r = Remapper::new(Some(net4()), None);
    let mut f = orig.clone();
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    // Host bits kept: 10.1.2.3 has second-octet low bit 1 -> 198.19.2.3;
    // 192.0.2.9 -> 198.18.2.9.
    assert_eq!(v4(&f, 26), Ipv4Addr::new(198, 19, 2, 3));
    assert_eq!(v4(&f, 30), Ipv4Addr::new(198, 18, 2, 9));
    assert!(ip4_header_ok(&f), "IPv4 header checksum");
    assert!(l4_ok_v4(&f), "TCP checksum");
    // The checker can fail: the same address change without the fix does.
    let mut naive = orig.clone();
    naive[26..34].copy_from_slice(&f[26..34]);
    assert!(!ip4_header_ok(&naive) && !l4_ok_v4(&naive));
    assert_eq!(r.stats().rewritten, 1);
}

#[test]
fn both_directions_map_consistently() {
    let a = [10, 0, 0, 1];
    let b = [172, 16, 5, 5];
    let mut r = Remapper::new(Some(net4()), None);
    let mut fwd = tcp4(a, b, 1234, 443);
    let mut rev = tcp4(b, a, 443, 1234);
    r.remap_frame(LinkType::ETHERNET, &mut fwd);
    r.remap_frame(LinkType::ETHERNET, &mut rev);
    assert_eq!(v4(&fwd, 26), v4(&rev, 30));
    assert_eq!(v4(&fwd, 30), v4(&rev, 26));
    assert_ne!(v4(&fwd, 26), v4(&fwd, 30));
    assert!(l4_ok_v4(&fwd) && l4_ok_v4(&rev));
    assert_eq!(r.map_v4(Ipv4Addr::from(a)), Some(v4(&fwd, 26)));
}

#[test]
fn distinct_addresses_stay_distinct() {
    let mut r = Remapper::new(Some(net4()), None);
    // 10.0.0.1 and 192.168.0.1 share their 17 low bits (10 is 0b1010 and
    // 168 is 0b10101000, both even in the /15's one prefix bit of octet 2).
    let x = r.map_v4(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
    let y = r.map_v4(Ipv4Addr::new(192, 168, 0, 1)).unwrap();
    assert_eq!(x, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(y, Ipv4Addr::new(198, 18, 0, 2), "next free host");
    assert_eq!(r.map_v4(Ipv4Addr::new(10, 0, 0, 1)), Some(x), "stable");
    let mut seen = std::collections::HashSet::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..5000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let a = Ipv4Addr::from(state as u32 & 0xff0f_00ff);
        let n = r.map_v4(a).unwrap();
        assert!(net4().contains(n));
        seen.insert((a, n));
    }
    let origs: std::collections::HashSet<_> = seen.iter().map(|p| p.0).collect();
    let news: std::collections::HashSet<_> = seen.iter().map(|p| p.1).collect();
    assert_eq!(origs.len(), news.len(), "injective");
    assert_eq!(r.stats().overflow, 0);
}

#[test]
fn full_range_is_counted_not_a_panic() {
    let mut r = Remapper::new(Some("198.18.0.0/31".parse().unwrap()), None);
    let a = r.map_v4(Ipv4Addr::new(1, 1, 1, 1)).unwrap();
    let b = r.map_v4(Ipv4Addr::new(2, 2, 2, 2)).unwrap();
    assert_ne!(a, b);
    let c = r.map_v4(Ipv4Addr::new(3, 3, 3, 3)).unwrap();
    assert!(net4().contains(c));
    assert_eq!(r.stats().overflow, 1);
}

#[test]
fn fragments_map_consistently_and_reassemble_valid() {
    let (src, dst) = ([10, 9, 8, 7], [10, 9, 8, 6]);
    let payload: Vec<u8> = (0..100u8).collect();
    let dgram = seg(&src, &dst, 17, udp_bytes(5353, 53, &payload), 6);
    // First fragment: 48 bytes (offset 0, MF); second: the rest at offset 6 (x8).
    let mut f1 = eth(0x0800, &ipv4(src, dst, 17, 0x2000, &dgram[..48]));
    let mut f2 = eth(0x0800, &ipv4(src, dst, 17, 6, &dgram[48..]));
    let mut r = Remapper::new(Some(net4()), None);
    // The later fragment first: order must not matter.
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f2),
        Verdict::Rewritten
    );
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f1),
        Verdict::Rewritten
    );
    assert!(ip4_header_ok(&f1) && ip4_header_ok(&f2));
    assert_eq!((v4(&f1, 26), v4(&f1, 30)), (v4(&f2, 26), v4(&f2, 30)));
    assert_eq!(&f2[34..], &dgram[48..], "later fragment payload untouched");
    let mut whole = f1[34..].to_vec();
    whole.extend_from_slice(&f2[34..]);
    let new_src = &f1[26..30];
    let new_dst = &f1[30..34];
    assert_eq!(
        fold(sum16(&pseudo(new_src, new_dst, 17, whole.len())) + sum16(&whole)),
        0xffff,
        "UDP checksum of the reassembled datagram"
    );
}

#[test]
fn udp_v4_zero_checksum_stays_zero() {
    let u = udp_bytes(1000, 2000, b"x");
    let mut f = eth(0x0800, &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, 0, &u));
    let mut r = Remapper::new(Some(net4()), None);
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert_eq!(&f[40..42], &[0, 0]);
    assert!(ip4_header_ok(&f));
}

fn a6(last: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

#[test]
fn udp_and_icmpv6_checksums_valid_after_remap() {
    let (s, d) = (a6(1), a6(2));
    let u = seg(&s, &d, 17, udp_bytes(5000, 53, b"query"), 6);
    let mut f = eth(0x86dd, &ipv6(s, d, 17, &u));
    let icmp = seg(&s, &d, 58, vec![128, 0, 0, 0, 0, 1, 0, 1, 9, 9, 9], 2);
    let mut g = eth(0x86dd, &ipv6(d, s, 58, &icmp));
    assert!(l4_ok_v6(&f, 17, 40) && l4_ok_v6(&g, 58, 40));
    let mut r = Remapper::new(None, Some(net6()));
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut g),
        Verdict::Rewritten
    );
    // Host bits (the low 80) kept: 2001:db8::1 -> 2001:2::1.
    assert_eq!(v6(&f, 22), "2001:2::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v6(&f, 38), v6(&g, 22));
    assert!(l4_ok_v6(&f, 17, 40), "UDP");
    assert!(l4_ok_v6(&g, 58, 40), "ICMPv6");
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let (s, d) = (a6(7), a6(8));
    let t = seg(&s, &d, 6, tcp_bytes(1, 2), 16);
    // Hop-by-hop (8 bytes, next = fragment), fragment (offset 0, M), then TCP.
    let mut p = vec![44, 0, 1, 4, 0, 0, 0, 0];
    p.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 42]);
    p.extend_from_slice(&t);
    let mut f = eth(0x86dd, &ipv6(s, d, 0, &p));
    let mut r = Remapper::new(None, Some(net6()));
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert!(l4_ok_v6(&f, 6, 56));
    // A routing header with segments left is refused.
    let mut p = vec![17, 0, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(&udp_bytes(1, 2, b""));
    let mut f = eth(0x86dd, &ipv6(s, d, 43, &p));
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Refused(Refusal::RoutingHeader)
    );
}

#[test]
fn ip_in_ip_inner_rewritten() {
    let (is, id) = ([10, 0, 0, 5], [10, 0, 0, 6]);
    let inner = ipv4(is, id, 6, 0, &seg(&is, &id, 6, tcp_bytes(7, 8), 16));
    let mut f = eth(
        0x0800,
        &ipv4([203, 0, 113, 1], [203, 0, 113, 2], 4, 0, &inner),
    );
    let mut r = Remapper::new(Some(net4()), None);
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert!(ip4_header_ok(&f));
    let inner_frame = eth(0x0800, &f[34..]);
    assert!(ip4_header_ok(&inner_frame) && l4_ok_v4(&inner_frame));
    for at in [26, 30, 46, 50] {
        assert!(net4().contains(v4(&f, at)), "address at {at}");
    }
}

#[test]
fn refusals_and_pass_through() {
    let mut r = Remapper::new(Some(net4()), None);
    let gre = ipv4([1, 1, 1, 1], [2, 2, 2, 2], 47, 0, &[0, 0, 0x08, 0, 0x45]);
    let mut f = eth(0x0800, &gre);
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Refused(Refusal::Tunnel)
    );
    let vx = udp_bytes(5555, 4789, &[8, 0, 0, 0, 0, 0, 1, 0]);
    let mut f = eth(0x0800, &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 17, 0, &vx));
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Refused(Refusal::Tunnel)
    );
    let mut f = eth(0x86dd, &ipv6(a6(1), a6(2), 59, &[]));
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Refused(Refusal::NoRange)
    );
    let lldp = eth(0x88cc, &[1, 2, 3]);
    let mut f = lldp.clone();
    assert_eq!(r.remap_frame(LinkType::ETHERNET, &mut f), Verdict::NotIp);
    assert_eq!(f, lldp);
    // Ethernet/IPv4 ARP: sender and target protocol addresses mapped.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    let mut f = eth(0x0806, &arp);
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert_eq!(v4(&f, 28), r.map_v4(Ipv4Addr::new(10, 0, 0, 1)).unwrap());
    assert_eq!(v4(&f, 38), r.map_v4(Ipv4Addr::new(10, 0, 0, 2)).unwrap());
    let s = r.stats();
    assert_eq!(
        (s.refused_tunnel, s.refused_no_range, s.not_ip, s.rewritten),
        (2, 1, 1, 1)
    );
}

#[test]
fn raw_ip_and_truncation_never_panic() {
    let full = tcp4([10, 1, 2, 3], [10, 3, 2, 1], 1, 2);
    let mut r = Remapper::new(Some(net4()), Some(net6()));
    // Raw IP link type: the same packet without its Ethernet header.
    let mut raw = full[14..].to_vec();
    assert_eq!(r.remap_frame(LinkType::RAW, &mut raw), Verdict::Rewritten);
    assert!(l4_ok_v4(&eth(0x0800, &raw)));
    for cut in 0..full.len() {
        let mut f = full[..cut].to_vec();
        let _ = r.remap_frame(LinkType::ETHERNET, &mut f);
    }
    // Snapped inside the TCP header: rewritten, checksum noted as not captured.
    let mut f = full[..40].to_vec();
    assert_eq!(
        r.remap_frame(LinkType::ETHERNET, &mut f),
        Verdict::Rewritten
    );
    assert!(r.stats().checksum_not_captured >= 1);
    let mut state = 7u64;
    for len in 0..300usize {
        let mut f: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        if f.len() > 14 {
            let et: u16 = if len % 2 == 0 { 0x86dd } else { 0x0800 };
            f[12..14].copy_from_slice(&et.to_be_bytes());
            f[14] = if len % 2 == 0 { 0x60 } else { 0x45 };
        }
        let _ = r.remap_frame(LinkType::ETHERNET, &mut f);
    }
}

#[test]
fn checksum_in_a_later_fragment_and_padding_untouched() {
    // A 20-byte TCP SYN header in three fragments of 8, 8 and 4 bytes: the
    // checksum (datagram bytes 16..18) travels in the third. Each frame is
    // padded to Ethernet's 60-byte minimum with 0xee.
    let (src, dst) = ([1, 1, 1, 1], [2, 2, 2, 2]);
    let mut t = tcp_bytes(12345, 8080);
    t.truncate(20);
    t[13] = 0x02;
    let t = seg(&src, &dst, 6, t, 16);
    let pad = |mut f: Vec<u8>| {
        f.resize(60, 0xee);
        f
    };
    let mut frags = [
        pad(eth(0x0800, &ipv4(src, dst, 6, 0x2000, &t[..8]))),
        pad(eth(0x0800, &ipv4(src, dst, 6, 0x2001, &t[8..16]))),
        pad(eth(0x0800, &ipv4(src, dst, 6, 2, &t[16..]))),
    ];
    let mut r = Remapper::new(Some(net4()), None);
    for f in &mut frags {
        assert_eq!(r.remap_frame(LinkType::ETHERNET, f), Verdict::Rewritten);
        assert!(ip4_header_ok(f));
    }
    assert!(frags[0][42..].iter().all(|b| *b == 0xee), "padding kept");
    assert!(frags[2][38..].iter().all(|b| *b == 0xee), "padding kept");
    let mut whole = frags[0][34..42].to_vec();
    whole.extend_from_slice(&frags[1][34..42]);
    whole.extend_from_slice(&frags[2][34..38]);
    assert_eq!(
        fold(sum16(&pseudo(&frags[0][26..30], &frags[0][30..34], 6, 20)) + sum16(&whole)),
        0xffff,
        "TCP checksum of the reassembled segment"
    );
}
