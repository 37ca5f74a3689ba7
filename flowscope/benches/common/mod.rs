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

/// One TCP connection's packets, built in order: sequence numbers and
/// acknowledgements follow the bytes each side sent.
struct TcpConv {
    c: IpAddr,
    s: IpAddr,
    cport: u16,
    sport: u16,
    /// Next sequence number of the client and of the server.
    seq: [u32; 2],
    frames: Vec<Vec<u8>>,
}

impl TcpConv {
    fn new(c: IpAddr, s: IpAddr, cport: u16, sport: u16, isn: u32) -> Self {
        TcpConv {
            c,
            s,
            cport,
            sport,
            seq: [isn, isn ^ 0x5a5a_5a5a],
            frames: Vec::new(),
        }
    }

    fn segment(&mut self, from_c: bool, flags: u8, payload: &[u8]) {
        let (i, o) = if from_c { (0, 1) } else { (1, 0) };
        let ack = if flags & ACK != 0 { self.seq[o] } else { 0 };
        let (sp, dp, src, dst) = if from_c {
            (self.cport, self.sport, self.c, self.s)
        } else {
            (self.sport, self.cport, self.s, self.c)
        };
        let seg = tcp(sp, dp, self.seq[i], ack, flags, payload);
        let (et, p) = ip(6, src, dst, &seg);
        self.frames.push(eth(None, et, &p));
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.seq[i] = self.seq[i].wrapping_add(used);
    }

    fn handshake(&mut self) {
        self.segment(true, SYN, &[]);
        self.segment(false, SYN | ACK, &[]);
        self.segment(true, ACK, &[]);
    }

    /// `data` in MSS-sized segments, then one ACK from the other side.
    fn send(&mut self, from_c: bool, data: &[u8]) {
        for chunk in data.chunks(1460) {
            self.segment(from_c, ACK | PSH, chunk);
        }
        self.segment(!from_c, ACK, &[]);
    }

    fn close(&mut self) {
        self.segment(true, FIN | ACK, &[]);
        self.segment(false, FIN | ACK, &[]);
        self.segment(true, ACK, &[]);
    }
}

/// A TLS handshake record (RFC 8446 §5.1, §4) around one message.
fn tls_handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![msg_type];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut r = vec![0x16, 0x03, 0x01];
    r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    r.extend_from_slice(&hs);
    r
}

/// A TLS 1.2 ClientHello with SNI (RFC 6066 §3) and ALPN (RFC 7301).
pub fn tls_client_hello(sni: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[0x11; 32]); // random
    b.push(0); // no session id
    b.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2f, 0x13, 0x01]); // cipher suites
    b.extend_from_slice(&[0x01, 0x00]); // null compression
    let name = sni.as_bytes();
    let mut ext = vec![0x00, 0x00];
    ext.extend_from_slice(&(name.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
    ext.push(0); // host_name
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let alpn: &[u8] = b"\x02h2\x08http/1.1";
    ext.extend_from_slice(&[0x00, 0x10]);
    ext.extend_from_slice(&(alpn.len() as u16 + 2).to_be_bytes());
    ext.extend_from_slice(&(alpn.len() as u16).to_be_bytes());
    ext.extend_from_slice(alpn);
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    tls_handshake(1, &b)
}

/// A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256, no extensions.
pub fn tls_server_hello() -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[0x22; 32]);
    b.push(0);
    b.extend_from_slice(&[0xc0, 0x2f, 0x00, 0x00, 0x00]);
    tls_handshake(2, &b)
}

/// A DNS query or answer (RFC 1035 §4.1) for an A record of `name`.
pub fn dns_message(id: u16, response: bool, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(if response {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if response {
        // Name pointer to offset 12, A, IN, TTL 3600, 192.0.2.1.
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
    }
    m
}

/// The packets of session flow `i`: by `i % 4`, an HTTP/1.1 keep-alive
/// connection (3 transactions of 4 000-byte bodies), a TLS connection
/// (hellos, then 4 application-data records each way), DNS over UDP
/// (4 query/answer pairs) or a TCP connection no parser recognises.
fn session_flow(i: u32) -> Vec<Vec<u8>> {
    let c = IpAddr::V4(client_v4(i + 1));
    let s = IpAddr::V4(server_v4(i));
    let cport = 32_768 + (i % 28_000) as u16;
    let isn = i.wrapping_mul(2_654_435_761);
    match i % 4 {
        0 => {
            let mut t = TcpConv::new(c, s, cport, 80, isn);
            t.handshake();
            for k in 0..3 {
                let req = format!(
                    "GET /obj/{i}/{k} HTTP/1.1\r\nHost: bench{i}.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
                );
                t.send(true, req.as_bytes());
                let mut resp =
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4000\r\n\r\n"
                        .to_vec();
                resp.resize(resp.len() + 4000, b'x');
                t.send(false, &resp);
            }
            t.close();
            t.frames
        }
        1 => {
            let mut t = TcpConv::new(c, s, cport, 443, isn);
            t.handshake();
            t.send(true, &tls_client_hello(&format!("bench{i}.example")));
            let mut sh = tls_server_hello();
            sh.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]); // ChangeCipherSpec
            t.send(false, &sh);
            let mut rec = vec![0x17, 0x03, 0x03, 0x05, 0x78]; // 1 400-byte application data
            rec.resize(5 + 1400, 0xa5);
            for _ in 0..4 {
                t.send(true, &rec);
                t.send(false, &rec);
            }
            t.close();
            t.frames
        }
        2 => {
            let name = format!("host{i}.bench.example");
            (0..8u16)
                .map(|k| {
                    let id = (i as u16).wrapping_mul(8).wrapping_add(k / 2);
                    let from_c = k % 2 == 0;
                    let msg = dns_message(id, !from_c, &name);
                    let (sp, dp, src, dst) = if from_c {
                        (cport, 53, c, s)
                    } else {
                        (53, cport, s, c)
                    };
                    let (et, p) = ip(17, src, dst, &udp(sp, dp, &msg));
                    eth(None, et, &p)
                })
                .collect()
        }
        _ => {
            let mut t = TcpConv::new(c, s, cport, 9000, isn);
            t.handshake();
            let bin: Vec<u8> = (0..8000u32).map(|b| (b * 167 + 13) as u8).collect();
            t.send(true, bin.get(..100).unwrap_or(&[]));
            t.send(false, &bin);
            t.close();
            t.frames
        }
    }
}

/// `flows` application sessions (HTTP, TLS, DNS, unknown TCP in turn; see
/// `session_flow`), interleaved one packet per flow in turn, 10 µs apart.
pub fn session_capture(flows: u32) -> Frames {
    let per_flow: Vec<Vec<Vec<u8>>> = (0..flows).map(session_flow).collect();
    let longest = per_flow.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Frames::new();
    let mut ts = 1_700_000_000_000_000_000u64;
    for k in 0..longest {
        for f in &per_flow {
            if let Some(frame) = f.get(k) {
                out.push(frame, ts);
                ts += 10_000;
            }
        }
    }
    out
}
