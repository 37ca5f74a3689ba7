//! A tiny packet builder for the extractor tests.
//!
//! Checksums here use the textbook 16-bit word loop of RFC 1071 §4.1,
//! independent of the library's 32-bit implementation.

use std::net::IpAddr;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const V4_A: [u8; 4] = [10, 0, 0, 1];
pub const V4_B: [u8; 4] = [10, 0, 0, 2];
pub const V4_C: [u8; 4] = [192, 0, 2, 1];
pub const V4_D: [u8; 4] = [192, 0, 2, 2];
pub const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub fn ip(a: &[u8]) -> IpAddr {
    match a.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(a).unwrap()),
        _ => IpAddr::from(<[u8; 16]>::try_from(a).unwrap()),
    }
}

/// RFC 1071 §4.1: 16-bit big-endian words, odd byte padded, carries folded.
pub fn csum(parts: &[&[u8]]) -> u16 {
    let all: Vec<u8> = parts.concat();
    let mut sum: u32 = 0;
    let mut i = 0;
    while i + 1 < all.len() {
        sum += u32::from(u16::from_be_bytes([all[i], all[i + 1]]));
        i += 2;
    }
    if i < all.len() {
        sum += u32::from(all[i]) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
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

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&dst, &src, &ty.to_be_bytes(), payload])
}

/// A plain A→B Ethernet frame.
pub fn eth_ab(ty: u16, payload: &[u8]) -> Vec<u8> {
    eth(MAC_B, MAC_A, ty, payload)
}

/// A VLAN tag (TCI, inner EtherType) followed by `payload`.
pub fn vlan(id: u16, inner: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &(id & 0x0fff | 0x2000).to_be_bytes(),
        &inner.to_be_bytes(),
        payload,
    ])
}

/// An MPLS label stack entry.
pub fn mpls(label: u32, bottom: bool) -> [u8; 4] {
    (label << 12 | u32::from(bottom) << 8 | 64).to_be_bytes()
}

/// IPv4 with the given identification and flags/fragment-offset field.
pub fn ipv4_frag(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, 0x1234, 0x4000, payload)
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 extension header of `len8` 8-byte units (beyond the first 8).
pub fn ext(next: u8, len8: u8) -> Vec<u8> {
    let mut e = vec![next, len8];
    e.resize(8 * (usize::from(len8) + 1), 1);
    e
}

#[allow(clippy::too_many_arguments)]
pub fn tcp_opts(
    src: &[u8],
    dst: &[u8],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let doff = (20 + options.len()) / 4;
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&ack.to_be_bytes());
    h.extend_from_slice(&[(doff as u8) << 4, flags]);
    h.extend_from_slice(&window.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(options);
    h.extend_from_slice(payload);
    let c = csum(&[&pseudo(src, dst, 6, h.len()), &h]);
    h[16..18].copy_from_slice(&c.to_be_bytes());
    h
}

pub fn tcp(src: &[u8], dst: &[u8], sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_opts(src, dst, sport, dport, 1000, 2000, flags, 512, &[], payload)
}

pub fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&(len as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    let mut c = csum(&[&pseudo(src, dst, 17, len), &h]);
    if c == 0 {
        c = 0xffff;
    }
    h[6..8].copy_from_slice(&c.to_be_bytes());
    h
}

/// ICMPv4 (no pseudo-header) with identifier/sequence or other rest-of-header.
pub fn icmp4(ty: u8, code: u8, rest: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0];
    h.extend_from_slice(&rest);
    h.extend_from_slice(payload);
    let c = csum(&[&h]);
    h[2..4].copy_from_slice(&c.to_be_bytes());
    h
}

/// ICMPv6 (pseudo-header with next header 58).
pub fn icmp6(src: &[u8], dst: &[u8], ty: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0, 0, 1, 0, 1];
    h.extend_from_slice(payload);
    let c = csum(&[&pseudo(src, dst, 58, h.len()), &h]);
    h[2..4].copy_from_slice(&c.to_be_bytes());
    h
}

/// Ethernet + IPv4 + TCP from A:sport to B:dport.
pub fn eth_v4_tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    eth_ab(
        0x0800,
        &ipv4(
            V4_A,
            V4_B,
            6,
            &tcp(&V4_A, &V4_B, sport, dport, flags, payload),
        ),
    )
}

/// IPv4 + UDP from A:sport to B:dport.
pub fn v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4(V4_A, V4_B, 17, &udp(&V4_A, &V4_B, sport, dport, payload))
}

/// The inner packet used by tunnel tests: IPv4 + TCP from C:1111 to D:80.
pub fn inner_v4_tcp() -> Vec<u8> {
    ipv4(V4_C, V4_D, 6, &tcp(&V4_C, &V4_D, 1111, 80, 0x18, b"inner"))
}

/// A GRE header with optional checksum, key and sequence words.
pub fn gre(proto: u16, checksum: bool, key: Option<u32>, seq: Option<u32>) -> Vec<u8> {
    let mut flags = 0u16;
    let mut words = Vec::new();
    if checksum {
        flags |= 0x8000;
        words.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = key {
        flags |= 0x2000;
        words.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = seq {
        flags |= 0x1000;
        words.extend_from_slice(&s.to_be_bytes());
    }
    cat(&[&flags.to_be_bytes(), &proto.to_be_bytes(), &words])
}

/// Outer Ethernet + IPv4 (A→B) carrying `proto` with `payload`.
pub fn outer_v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    eth_ab(0x0800, &ipv4(V4_A, V4_B, proto, payload))
}

/// Outer Ethernet + IPv4 + UDP (A:sport → B:dport) carrying `payload`.
pub fn outer_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    eth_ab(0x0800, &v4_udp(sport, dport, payload))
}
