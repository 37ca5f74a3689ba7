//! Tiny frame builders shared by the benches (each bench uses a subset).
//!
//! IPv4 header checksums are computed; TCP/UDP checksums are left 0, which
//! is fine because extraction does not verify them by default.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP flag bits.
pub const FIN: u8 = 0x01;
/// SYN.
pub const SYN: u8 = 0x02;
/// RST.
pub const RST: u8 = 0x04;
/// PSH.
pub const PSH: u8 = 0x08;
/// ACK.
pub const ACK: u8 = 0x10;

fn checksum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += (u32::from(c[0]) << 8) | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet II header (optionally one 802.1Q tag) followed by `l3`.
pub fn eth(vlan: Option<u16>, ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01, 0x02, 0x00, 0x0a, 0x01, 0x00, 0x01,
    ];
    if let Some(v) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// IPv4 header (no options, DF) followed by `l4`.
pub fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(l4);
    p
}

/// IPv6 header followed by `l4`.
pub fn ipv6(next: u8, src: Ipv6Addr, dst: Ipv6Addr, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(l4);
    p
}

/// An IP packet of either version.
pub fn ip(proto: u8, src: IpAddr, dst: IpAddr, l4: &[u8]) -> (u16, Vec<u8>) {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0x0800, ipv4(proto, s, d, l4)),
        (IpAddr::V6(s), IpAddr::V6(d)) => (0x86dd, ipv6(proto, s, d, l4)),
        _ => panic!("mixed address families"),
    }
}

/// TCP header (no options) followed by `payload`.
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0x01, 0xf6, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// UDP header followed by `payload`.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A VXLAN header (RFC 7348: flags 0x08, 24-bit VNI) followed by an inner Ethernet frame.
pub fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner);
    v
}

/// Client address number `i` (IPv4 10.x.y.z).
pub fn client_v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff))
}

/// Server address number `i` (IPv4 198.51.100.x).
pub fn server_v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, (i % 250 + 1) as u8)
}

/// Frames held back to back in one buffer, with their timestamps.
pub struct Frames {
    /// All frame bytes.
    pub buf: Vec<u8>,
    /// (start, end, timestamp ns) of each frame.
    pub index: Vec<(usize, usize, u64)>,
}

impl Frames {
    /// An empty set.
    pub fn new() -> Self {
        Frames {
            buf: Vec::new(),
            index: Vec::new(),
        }
    }
    /// Appends one frame.
    pub fn push(&mut self, frame: &[u8], ts_ns: u64) {
        let start = self.buf.len();
        self.buf.extend_from_slice(frame);
        self.index.push((start, self.buf.len(), ts_ns));
    }
}

/// A deterministic interleaving of `flows` flows, `per_flow` packets each:
/// 3 of 4 flows are TCP (handshake, request, MSS-sized response segments
/// with an ACK every second one, FIN close), the rest UDP request/response
/// pairs. Flow `i`'s `k`-th packet is packet `k * flows + i` of the whole.
pub fn mixed_capture(flows: u32, per_flow: u32) -> Frames {
    let mut out = Frames::new();
    let body = vec![0x61u8; 1460];
    let req = b"GET /index.html HTTP/1.1\r\nHost: bench.example\r\n\r\n";
    let t0 = 1_700_000_000_000_000_000u64;
    let per_flow = per_flow.max(6);
    for k in 0..per_flow {
        for i in 0..flows {
            let ts = t0 + (u64::from(k) * u64::from(flows) + u64::from(i)) * 10_000;
            let c = IpAddr::V4(client_v4(i + 1));
            let s = IpAddr::V4(server_v4(i));
            let cport = 32_768 + (i % 28_000) as u16;
            let (isn_c, isn_s) = (
                i.wrapping_mul(2_654_435_761),
                i.wrapping_mul(40_503) ^ 0xdead_beef,
            );
            let frame = if i % 4 == 3 {
                let (from_c, len) = if k % 2 == 0 { (true, 60) } else { (false, 400) };
                let u = udp(
                    if from_c { cport } else { 53 },
                    if from_c { 53 } else { cport },
                    &body[..len],
                );
                let (et, p) = if from_c {
                    ip(17, c, s, &u)
                } else {
                    ip(17, s, c, &u)
                };
                eth(None, et, &p)
            } else {
                let last = per_flow - 1;
                let data_k = k.saturating_sub(4);
                let s_off = data_k - data_k / 3; // server segments sent so far
                let s_seq = isn_s.wrapping_add(1 + s_off * 1460);
                let c_seq = isn_c.wrapping_add(1 + req.len() as u32);
                let (from_c, seg) = match k {
                    0 => (true, tcp(cport, 80, isn_c, 0, SYN, &[])),
                    1 => (
                        false,
                        tcp(80, cport, isn_s, isn_c.wrapping_add(1), SYN | ACK, &[]),
                    ),
                    2 => (
                        true,
                        tcp(
                            cport,
                            80,
                            isn_c.wrapping_add(1),
                            isn_s.wrapping_add(1),
                            ACK,
                            &[],
                        ),
                    ),
                    3 => (
                        true,
                        tcp(
                            cport,
                            80,
                            isn_c.wrapping_add(1),
                            isn_s.wrapping_add(1),
                            ACK | PSH,
                            req,
                        ),
                    ),
                    k if k == last => (true, tcp(cport, 80, c_seq, s_seq, FIN | ACK, &[])),
                    _ if data_k % 3 == 2 => (true, tcp(cport, 80, c_seq, s_seq, ACK, &[])),
                    _ => (false, tcp(80, cport, s_seq, c_seq, ACK, &body)),
                };
                let (et, p) = if from_c {
                    ip(6, c, s, &seg)
                } else {
                    ip(6, s, c, &seg)
                };
                eth(None, et, &p)
            };
            out.push(&frame, ts);
        }
    }
    out
}
