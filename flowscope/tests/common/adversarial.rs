//! Deterministic adversarial traffic (issue 6): each [`Scenario`] is a
//! sequence of Ethernet frames where frame `i` is a pure function of `i`
//! ([`Scenario::frame`]), so a test runs any prefix in memory without a
//! file and `cargo xtask flood --scenario NAME` writes the same bytes to a
//! capture. Std-only: xtask includes this file with `#[path]`.
//!
//! Addresses come from the benchmarking ranges (198.18.0.0/15, RFC 2544;
//! 2001:db8::/32, RFC 3849 documentation). Every header length and every
//! IPv4 header checksum is right; TCP/UDP checksums are computed for
//! unfragmented packets (fragments carry whatever the sender would).

/// Nanoseconds between two frames of any scenario (1 µs).
pub const FRAME_SPACING_NS: u64 = 1_000;

/// One adversarial traffic pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Unique SYNs, one flow each, never answered.
    Syn,
    /// Unique UDP flows, one datagram each.
    Udp,
    /// TCP streams whose segments jump far ahead: every other one inside
    /// the reassembly window (held until the caps), the others 2^30 out.
    SeqJump,
    /// One endless TCP stream of overlapping retransmissions, each with
    /// different bytes than what is held, behind a hole that a jumbo
    /// segment fills every 64 segments.
    OverlapRexmit,
    /// TCP streams of 2 048 one-byte segments sent in reverse order behind
    /// a one-byte hole (100 k segments by default).
    Ooo1Byte,
    /// IPv4 and IPv6 first fragments never completed, each followed by an
    /// overlapping fragment with different bytes.
    FragFlood,
    /// HTTP requests whose header line never ends (48 × 1 408-byte
    /// segments each, no CRLF after the first two lines).
    HttpEndlessHeader,
    /// One HTTP request with an endless chunked body (1 KiB chunks).
    HttpEndlessChunked,
    /// Connections of 10 000 pipelined GETs, then 10 000 responses.
    HttpPipelined10k,
    /// DNS responses whose names loop through compression pointers, after
    /// one valid query per flow.
    DnsCompressionLoop,
    /// TLS connections whose first handshake message announces 16 MiB
    /// (length 0xFFFFFF), followed by full 16 KiB records.
    Tls16MibRecord,
}

impl Scenario {
    /// Every scenario, in the order of issue 6.
    pub const ALL: [Scenario; 11] = [
        Scenario::Syn,
        Scenario::Udp,
        Scenario::SeqJump,
        Scenario::OverlapRexmit,
        Scenario::Ooo1Byte,
        Scenario::FragFlood,
        Scenario::HttpEndlessHeader,
        Scenario::HttpEndlessChunked,
        Scenario::HttpPipelined10k,
        Scenario::DnsCompressionLoop,
        Scenario::Tls16MibRecord,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Syn => "syn",
            Scenario::Udp => "udp",
            Scenario::SeqJump => "seq-jump",
            Scenario::OverlapRexmit => "overlap-rexmit",
            Scenario::Ooo1Byte => "ooo-1byte",
            Scenario::FragFlood => "frag-flood",
            Scenario::HttpEndlessHeader => "http-endless-header",
            Scenario::HttpEndlessChunked => "http-endless-chunked",
            Scenario::HttpPipelined10k => "http-pipelined-10k",
            Scenario::DnsCompressionLoop => "dns-compression-loop",
            Scenario::Tls16MibRecord => "tls-16mib-record",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Frames written when no count is given.
    pub fn default_packets(self) -> u64 {
        match self {
            Scenario::Syn | Scenario::Udp | Scenario::FragFlood => 1_000_000,
            Scenario::Ooo1Byte => OOO_CONN * 100_000 / OOO_SEGMENTS,
            Scenario::HttpPipelined10k => PIPE_CONN,
            _ => 100_000,
        }
    }

    /// Writes frame `i` into `buf` (cleared first) and returns its capture
    /// time in nanoseconds.
    pub fn frame(self, i: u64, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        match self {
            Scenario::Syn => syn(i, buf),
            Scenario::Udp => udp_flow(i, buf),
            Scenario::SeqJump => seq_jump(i, buf),
            Scenario::OverlapRexmit => overlap_rexmit(i, buf),
            Scenario::Ooo1Byte => ooo_1byte(i, buf),
            Scenario::FragFlood => frag_flood(i, buf),
            Scenario::HttpEndlessHeader => endless_header(i, buf),
            Scenario::HttpEndlessChunked => endless_chunked(i, buf),
            Scenario::HttpPipelined10k => pipelined(i, buf),
            Scenario::DnsCompressionLoop => dns_loop(i, buf),
            Scenario::Tls16MibRecord => tls_16mib(i, buf),
        }
        i * FRAME_SPACING_NS
    }
}

// ---------------------------------------------------------------- framing

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// Client `n`'s IPv4 address: 2^17 hosts of 198.18.0.0/15.
fn client_v4(n: u64) -> [u8; 4] {
    (0xc612_0000u32 | (n as u32 & 0x1_ffff)).to_be_bytes()
}

const SERVER_V4: [u8; 4] = [198, 19, 255, 1];

/// One TCP connection: unique per `index` (2^17 hosts × 16 384 ports).
struct Conn {
    client: [u8; 4],
    server: [u8; 4],
    cport: u16,
    sport: u16,
    cisn: u32,
    sisn: u32,
}

fn conn(index: u64, server_port: u16) -> Conn {
    Conn {
        client: client_v4(index >> 14),
        server: SERVER_V4,
        cport: 1024 + (index & 0x3fff) as u16,
        sport: server_port,
        cisn: (index as u32).wrapping_mul(2_654_435_761),
        sisn: (index as u32).wrapping_mul(40_503).wrapping_add(7),
    }
}

impl Conn {
    /// Frame `k` of the connection: 0–2 the handshake; from 3 on, the data
    /// segment `seg` returns (`from_client`, offset into that side's
    /// stream, payload writer).
    fn frame(&self, k: u64, buf: &mut Vec<u8>, seg: impl FnOnce(u64) -> (bool, u32, Payload)) {
        let (c1, s1) = (self.cisn.wrapping_add(1), self.sisn.wrapping_add(1));
        match k {
            0 => self.tcp(buf, true, self.cisn, 0, SYN, &mut |_| {}),
            1 => self.tcp(buf, false, self.sisn, c1, SYN | ACK, &mut |_| {}),
            2 => self.tcp(buf, true, c1, s1, ACK, &mut |_| {}),
            _ => {
                let (from_client, off, mut payload) = seg(k - 3);
                let (seq, ack) = if from_client {
                    (c1.wrapping_add(off), s1)
                } else {
                    (s1.wrapping_add(off), c1)
                };
                self.tcp(buf, from_client, seq, ack, PSH | ACK, &mut payload);
            }
        }
    }

    fn tcp(
        &self,
        buf: &mut Vec<u8>,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &mut dyn FnMut(&mut Vec<u8>),
    ) {
        let (src, dst, sp, dp) = if from_client {
            (self.client, self.server, self.cport, self.sport)
        } else {
            (self.server, self.client, self.sport, self.cport)
        };
        ipv4_start(buf, src, dst, 6, 0, 0x4000);
        buf.extend_from_slice(&sp.to_be_bytes());
        buf.extend_from_slice(&dp.to_be_bytes());
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&ack.to_be_bytes());
        buf.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        payload(buf);
        ipv4_finish(buf, Some(16));
    }
}

/// Writes into `buf` (cleared first) one client-to-server TCP segment of
/// connection `index` (the same addresses and ports as the scenarios'
/// connections), ack 0, with right lengths and checksums: for tests that
/// drive connections their own way.
#[allow(dead_code)] // Not every includer of this file builds its own traffic.
pub fn client_segment(
    buf: &mut Vec<u8>,
    index: u64,
    server_port: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) {
    buf.clear();
    conn(index, server_port).tcp(buf, true, seq, 0, flags, &mut |b| {
        b.extend_from_slice(payload)
    });
}

/// Appends a segment's payload.
type Payload = Box<dyn FnMut(&mut Vec<u8>)>;

/// Ethernet II header.
fn eth(buf: &mut Vec<u8>, ethertype: u16) {
    buf.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    buf.extend_from_slice(&ethertype.to_be_bytes());
}

/// Ethernet and an IPv4 header with lengths to patch; returns where L4 starts.
fn ipv4_start(
    buf: &mut Vec<u8>,
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: u16,
) -> usize {
    eth(buf, 0x0800);
    buf.extend_from_slice(&[0x45, 0, 0, 0]);
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&frag.to_be_bytes());
    buf.extend_from_slice(&[64, proto, 0, 0]);
    buf.extend_from_slice(&src);
    buf.extend_from_slice(&dst);
    buf.len()
}

/// Patches the IPv4 total length and checksum, and the L4 checksum at
/// `l4_csum` (offset in the L4 header) when given.
fn ipv4_finish(buf: &mut [u8], l4_csum: Option<usize>) {
    let total = (buf.len() - 14) as u16;
    buf[16..18].copy_from_slice(&total.to_be_bytes());
    let c = checksum(0, &buf[14..34]);
    buf[24..26].copy_from_slice(&c.to_be_bytes());
    if let Some(at) = l4_csum {
        let l4_len = buf.len() - 34;
        let mut pseudo = [0u8; 12];
        pseudo[..8].copy_from_slice(&buf[26..34]);
        pseudo[9] = buf[23];
        pseudo[10..].copy_from_slice(&(l4_len as u16).to_be_bytes());
        let c = checksum(sum(0, &pseudo), &buf[34..]);
        buf[34 + at..36 + at].copy_from_slice(&c.to_be_bytes());
    }
}

fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn checksum(acc: u32, data: &[u8]) -> u16 {
    let mut s = sum(acc, data);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A UDP datagram over IPv4 with a correct length and checksum.
fn udp4(buf: &mut Vec<u8>, src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, payload: &[u8]) {
    ipv4_start(buf, src, dst, 17, 0, 0x4000);
    buf.extend_from_slice(&sp.to_be_bytes());
    buf.extend_from_slice(&dp.to_be_bytes());
    buf.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
    ipv4_finish(buf, Some(6));
}

// -------------------------------------------------------------- scenarios

fn syn(i: u64, buf: &mut Vec<u8>) {
    conn(i, 80).frame(0, buf, |_| unreachable!());
}

fn udp_flow(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i, 9_999);
    let mut p = [0u8; 32];
    p[..8].copy_from_slice(&i.to_be_bytes());
    udp4(buf, c.client, c.server, c.cport, c.sport, &p);
}

/// Frames per seq-jump connection: the handshake and 61 segments.
const JUMP_CONN: u64 = 64;

fn seq_jump(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / JUMP_CONN, 5_001);
    c.frame(i % JUMP_CONN, buf, |j| {
        // Odd: somewhere in the first 900 kB (inside the 1 MiB default
        // window, so held); even: 2^30 ahead (out of any window).
        let off = if j == 0 {
            0
        } else if j % 2 == 1 {
            2_000 + (j as u32).wrapping_mul(37_813) % 900_000
        } else {
            (1 << 30) + j as u32 * 1_000
        };
        (true, off, fill(1_000, b'A' + (j % 26) as u8))
    });
}

fn fill(len: usize, byte: u8) -> Payload {
    Box::new(move |b: &mut Vec<u8>| b.resize(b.len() + len, byte))
}

/// Segments per overlap-rexmit epoch; the last one fills the epoch.
const REXMIT_EPOCH: u64 = 64;
/// Stream bytes per epoch (the filler's length).
const REXMIT_SPAN: u32 = 8_192;

fn overlap_rexmit(i: u64, buf: &mut Vec<u8>) {
    let c = conn(0, 5_002);
    c.frame(i, buf, |j| {
        let epoch = (j / REXMIT_EPOCH) as u32;
        let k = j % REXMIT_EPOCH;
        let base = epoch.wrapping_mul(REXMIT_SPAN);
        // Each copy's bytes differ from every earlier copy's (the byte is
        // the segment's index), so every overlap conflicts.
        let byte = (j % 251) as u8;
        if k == REXMIT_EPOCH - 1 {
            (true, base, fill(REXMIT_SPAN as usize, byte))
        } else {
            // Past the epoch's 100-byte hole: held, overlapping each other.
            let off = base + 100 + (k as u32 * 131) % 4_000;
            (true, off, fill(1_000, byte))
        }
    });
}

/// One-byte segments per ooo-1byte connection, and its frames.
const OOO_SEGMENTS: u64 = 2_048;
const OOO_CONN: u64 = 3 + OOO_SEGMENTS;

fn ooo_1byte(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / OOO_CONN, 5_003);
    c.frame(i % OOO_CONN, buf, |j| {
        // Reverse order; byte 0 never comes, so nothing is ever in order.
        let off = (OOO_SEGMENTS - j) as u32;
        (true, off, fill(1, b'a' + (j % 26) as u8))
    });
}

fn frag_flood(i: u64, buf: &mut Vec<u8>) {
    let g = i / 4;
    let id = g as u32 ^ 0x5a5a;
    let src = client_v4(g);
    let mut src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    src6[8..].copy_from_slice(&g.to_be_bytes());
    let mut dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dst6[15] = 1;
    match i % 4 {
        // IPv4 first fragment (offset 0, MF) of a 3 000-byte UDP datagram
        // whose other fragments never come.
        0 => {
            ipv4_start(buf, src, SERVER_V4, 17, id as u16, 0x2000);
            udp_header(buf, 3_000);
            buf.resize(buf.len() + 1_472, b'f');
            ipv4_finish(buf, None);
        }
        // Overlaps the first one's bytes 64..576 with different bytes.
        1 => {
            ipv4_start(buf, src, SERVER_V4, 17, id as u16, 0x2000 | 8);
            buf.resize(buf.len() + 512, b'o');
            ipv4_finish(buf, None);
        }
        // The same two over IPv6 (RFC 5722: the overlap discards the datagram).
        2 => {
            ipv6_fragment(buf, src6, dst6, id, 0, |b| {
                udp_header(b, 3_000);
                b.resize(b.len() + 1_448, b'f');
            });
        }
        _ => ipv6_fragment(buf, src6, dst6, id, 8, |b| b.resize(b.len() + 512, b'o')),
    }
}

/// A UDP header announcing `len` bytes (port 7 to port 9 999).
fn udp_header(buf: &mut Vec<u8>, len: u16) {
    buf.extend_from_slice(&7u16.to_be_bytes());
    buf.extend_from_slice(&9_999u16.to_be_bytes());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
}

/// An IPv6 fragment (MF set) at `offset8` × 8 bytes of a UDP datagram.
fn ipv6_fragment(
    buf: &mut Vec<u8>,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    offset8: u16,
    payload: impl FnOnce(&mut Vec<u8>),
) {
    eth(buf, 0x86dd);
    buf.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 44, 64]);
    buf.extend_from_slice(&src);
    buf.extend_from_slice(&dst);
    buf.extend_from_slice(&[17, 0]);
    buf.extend_from_slice(&((offset8 << 3) | 1).to_be_bytes());
    buf.extend_from_slice(&id.to_be_bytes());
    payload(buf);
    let plen = (buf.len() - 54) as u16;
    buf[18..20].copy_from_slice(&plen.to_be_bytes());
}

/// Header segments per endless-header connection, and their length.
const HEADER_SEGMENTS: u64 = 48;
const HEADER_SEGMENT: usize = 1_408;
const HEADER_START: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nX-Filler: ";

fn endless_header(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / (3 + HEADER_SEGMENTS), 80);
    c.frame(i % (3 + HEADER_SEGMENTS), buf, |j| {
        // One header line that never ends: 67 kB with no CRLF.
        let payload: Payload = Box::new(move |b: &mut Vec<u8>| {
            let end = b.len() + HEADER_SEGMENT;
            if j == 0 {
                b.extend_from_slice(HEADER_START);
            }
            b.resize(end, b'a');
        });
        (true, (j as usize * HEADER_SEGMENT) as u32, payload)
    });
}

const CHUNKED_HEAD: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
/// `400\r\n`, 1 024 bytes, `\r\n`.
const CHUNK_LEN: usize = 5 + 1_024 + 2;

fn endless_chunked(i: u64, buf: &mut Vec<u8>) {
    let c = conn(0, 80);
    c.frame(i, buf, |j| {
        if j == 0 {
            return (
                true,
                0,
                Box::new(|b: &mut Vec<u8>| b.extend_from_slice(CHUNKED_HEAD)),
            );
        }
        let off = (CHUNKED_HEAD.len() as u64 + (j - 1) * CHUNK_LEN as u64) as u32;
        let payload: Payload = Box::new(|b: &mut Vec<u8>| {
            b.extend_from_slice(b"400\r\n");
            b.resize(b.len() + 1_024, b'x');
            b.extend_from_slice(b"\r\n");
        });
        (true, off, payload)
    });
}

/// Requests per pipelined connection, and how many go in one segment.
const PIPE_REQUESTS: u64 = 10_000;
const PIPE_PER_SEGMENT: u64 = 40;
const PIPE_SEGMENTS: u64 = PIPE_REQUESTS / PIPE_PER_SEGMENT;
const PIPE_CONN: u64 = 3 + 2 * PIPE_SEGMENTS;
/// `GET /00000 HTTP/1.1\r\nHost: a\r\n\r\n`.
const PIPE_REQ_LEN: u64 = 32;
const PIPE_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

fn pipelined(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / PIPE_CONN, 80);
    c.frame(i % PIPE_CONN, buf, |j| {
        if j < PIPE_SEGMENTS {
            let payload: Payload = Box::new(move |b: &mut Vec<u8>| {
                for r in j * PIPE_PER_SEGMENT..(j + 1) * PIPE_PER_SEGMENT {
                    b.extend_from_slice(b"GET /");
                    b.extend_from_slice(&digits5(r));
                    b.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
                }
            });
            (true, (j * PIPE_PER_SEGMENT * PIPE_REQ_LEN) as u32, payload)
        } else {
            let j = j - PIPE_SEGMENTS;
            let off = (j * PIPE_PER_SEGMENT * PIPE_RESPONSE.len() as u64) as u32;
            let payload: Payload = Box::new(|b: &mut Vec<u8>| {
                for _ in 0..PIPE_PER_SEGMENT {
                    b.extend_from_slice(PIPE_RESPONSE);
                }
            });
            (false, off, payload)
        }
    });
}

fn digits5(n: u64) -> [u8; 5] {
    let mut d = [b'0'; 5];
    let mut n = n;
    for x in d.iter_mut().rev() {
        *x = b'0' + (n % 10) as u8;
        n /= 10;
    }
    d
}

/// Datagrams per DNS flow (the first a valid query).
const DNS_FLOW: u64 = 64;

fn dns_loop(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / DNS_FLOW, 53);
    let k = i % DNS_FLOW;
    let id = (i as u16).to_be_bytes();
    let mut msg = Vec::with_capacity(64);
    msg.extend_from_slice(&id);
    if k == 0 {
        // Standard query, RD, one question `example.com A IN`.
        msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        msg.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        udp4(buf, c.client, c.server, c.cport, c.sport, &msg);
        return;
    }
    // Response (QR, RD, RA), one question and one answer.
    msg.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    // The question, then one answer whose name points at the question's.
    match k % 3 {
        // The name is a pointer to itself (offset 12).
        0 => msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]),
        // A label, then a pointer back to that label: a.a.a.… forever.
        1 => msg.extend_from_slice(&[0x01, b'a', 0xc0, 0x0c, 0, 1, 0, 1]),
        // Two pointers pointing at each other: the name at 12 points at 14
        // (the QTYPE field), which reads as a pointer back to 12.
        _ => msg.extend_from_slice(&[0xc0, 0x0e, 0xc0, 0x0c, 0, 1]),
    }
    msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    udp4(buf, c.server, c.client, c.sport, c.cport, &msg);
}

/// Data segments per TLS connection (90 kB: past the 64 KiB handshake cap).
const TLS_SEGMENTS: u64 = 64;
const TLS_SEGMENT: usize = 1_400;
/// A record: 5-byte header and 16 384 bytes (the RFC 8446 §5.1 maximum).
const TLS_RECORD: usize = 5 + 16_384;

fn tls_16mib(i: u64, buf: &mut Vec<u8>) {
    let c = conn(i / (3 + TLS_SEGMENTS), 443);
    c.frame(i % (3 + TLS_SEGMENTS), buf, |j| {
        let start = j as usize * TLS_SEGMENT;
        let payload: Payload = Box::new(move |b: &mut Vec<u8>| {
            b.extend((start..start + TLS_SEGMENT).map(tls_stream_byte));
        });
        (true, start as u32, payload)
    });
}

/// Byte `o` of the client's stream: handshake records (type 22, TLS 1.2)
/// of 16 384 bytes; the first carries a ClientHello header announcing
/// 0xFFFFFF bytes (16 MiB − 1), and every later byte is filler.
fn tls_stream_byte(o: usize) -> u8 {
    const HEADER: [u8; 5] = [22, 3, 3, 0x40, 0x00];
    const HELLO: [u8; 4] = [1, 0xff, 0xff, 0xff];
    let in_record = o % TLS_RECORD;
    if in_record < 5 {
        return HEADER[in_record];
    }
    if o < 5 + HELLO.len() {
        return HELLO[o - 5];
    }
    0x41
}
