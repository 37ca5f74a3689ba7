//! One flow's whole packet script, planned when the flow starts, then
//! emitted packet by packet as the scheduler reaches each step's time.

use super::content::{Dns, Filler, Stream};
use super::frame::{build_frame, Endpoints, IpFields, Transport};
use super::prng::Rng;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// What kind of conversation a flow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP to port 80: HTTP/1.1 requests and responses.
    Http,
    /// TCP to port 443: TLS-looking records, a handshake and chatty rounds.
    Tls,
    /// A SYN (and its retransmissions) that is never answered.
    SynNoAnswer,
    /// A SYN answered by RST-ACK (closed port).
    Rejected,
    /// UDP to port 53: a DNS query and its response.
    Dns,
    /// UDP bulk: a small request, then a stream of large datagrams.
    UdpBulk,
}

/// How a TCP conversation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Client FIN, server FIN, client ACK.
    ClientFin,
    /// Server FIN first.
    ServerFin,
    /// Client aborts with RST-ACK.
    ClientRst,
    /// Server aborts with RST-ACK.
    ServerRst,
    /// Still open when the capture ends.
    Open,
}

/// The choices that shape one flow.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Conversation kind.
    pub kind: Kind,
    /// IPv6 instead of IPv4.
    pub v6: bool,
    /// 802.1Q tag.
    pub vlan: Option<u16>,
    /// TCP: some data segments are sent twice.
    pub lossy: bool,
    /// TCP: the first response segment is certainly retransmitted.
    pub force_retx: bool,
    /// TCP close.
    pub close: Close,
    /// Rough packet budget for elastic kinds.
    pub budget: u64,
    /// Cap on response bytes per flow (keeps the sample capture small).
    pub max_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
enum Payload {
    None,
    /// Bytes `off..off + len` of the sender's TCP stream.
    Stream {
        off: u64,
        len: u16,
    },
    DnsQuery,
    DnsResponse,
    /// Opaque datagram number `n`.
    Opaque {
        n: u32,
        len: u16,
    },
}

#[derive(Clone, Copy, Debug)]
struct TcpHdr {
    seq: u32,
    ack: u32,
    flags: u8,
}

#[derive(Clone, Copy, Debug)]
struct Step {
    t: u64,
    from_client: bool,
    tcp: Option<TcpHdr>,
    payload: Payload,
}

/// Per-direction header state.
#[derive(Clone, Copy, Debug)]
struct Side {
    ip_id: u16,
    ttl: u8,
    flow_label: u32,
    window: u16,
    syn_opts: [u8; 12],
}

/// A planned flow.
pub struct Flow {
    ep: Endpoints,
    client: Side,
    server: Side,
    client_stream: Stream,
    server_stream: Stream,
    dns: Option<Dns>,
    steps: Vec<Step>,
    next: usize,
    salt: u32,
}

impl Flow {
    /// Time of the next packet, if any is left.
    pub fn next_time(&self) -> Option<u64> {
        self.steps.get(self.next).map(|s| s.t)
    }

    /// Writes the next packet's frame into `buf`; returns its time.
    pub fn emit(&mut self, buf: &mut Vec<u8>) -> Option<u64> {
        let step = *self.steps.get(self.next)?;
        self.next += 1;
        let side = if step.from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        let ip = IpFields {
            id: side.ip_id,
            ttl: side.ttl,
            flow_label: side.flow_label,
        };
        side.ip_id = side.ip_id.wrapping_add(1);
        let side = *side;
        let transport = match step.tcp {
            Some(h) => Transport::Tcp {
                seq: h.seq,
                ack: h.ack,
                flags: h.flags,
                window: if h.flags & SYN != 0 {
                    64_240
                } else {
                    side.window
                },
                options: if h.flags & SYN != 0 {
                    &side.syn_opts
                } else {
                    &[]
                },
            },
            None => Transport::Udp,
        };
        let stream = if step.from_client {
            &self.client_stream
        } else {
            &self.server_stream
        };
        let dns = self.dns.as_ref();
        let salt = self.salt;
        build_frame(
            buf,
            &self.ep,
            step.from_client,
            ip,
            transport,
            |b| match step.payload {
                Payload::None => {}
                Payload::Stream { off, len } => stream.write(b, off, usize::from(len)),
                Payload::DnsQuery => {
                    if let Some(d) = dns {
                        d.write_query(b)
                    }
                }
                Payload::DnsResponse => {
                    if let Some(d) = dns {
                        d.write_response(b)
                    }
                }
                Payload::Opaque { n, len } => {
                    super::content::fill(b, Filler::Binary, salt ^ n, 0, usize::from(len))
                }
            },
        );
        Some(step.t)
    }
}

/// MSS option value advertised and used: Ethernet MTU minus headers.
fn mss(v6: bool) -> u64 {
    if v6 {
        1440
    } else {
        1460
    }
}

/// SYN options, Linux-like order without timestamps: MSS, NOP, NOP,
/// SACK-permitted, NOP, window scale.
fn syn_options(mss: u16, wscale: u8) -> [u8; 12] {
    let m = mss.to_be_bytes();
    [2, 4, m[0], m[1], 1, 1, 4, 2, 1, 3, 3, wscale]
}

/// Plans flow number `n` starting at `t0`.
pub fn plan(rng: &mut Rng, n: u64, t0: u64, ep: Endpoints, p: &Profile) -> Flow {
    let client_ws = rng.range(6, 9) as u8;
    let server_ws = rng.range(7, 10) as u8;
    let m = mss(ep.v6) as u16;
    let hops = rng.range(4, 24) as u8;
    let server_ttl = if rng.chance(0.2) {
        128 - hops
    } else {
        64 - hops
    };
    let client = Side {
        ip_id: rng.next_u32() as u16,
        ttl: 64,
        flow_label: rng.next_u32() & 0xf_ffff,
        window: 502 + rng.below(1500) as u16,
        syn_opts: syn_options(m, client_ws),
    };
    let server = Side {
        ip_id: rng.next_u32() as u16,
        ttl: server_ttl,
        flow_label: rng.next_u32() & 0xf_ffff,
        window: 235 + rng.below(300) as u16,
        syn_opts: syn_options(m, server_ws),
    };
    let mut f = Flow {
        ep,
        client,
        server,
        client_stream: Stream::default(),
        server_stream: Stream::default(),
        dns: None,
        steps: Vec::new(),
        next: 0,
        salt: rng.next_u32(),
    };
    // Round-trip time seen from a capture point next to the clients.
    let rtt = if rng.chance(0.3) {
        rng.range(200 * US, 2 * MS)
    } else {
        rng.range(5 * MS, 120 * MS)
    };
    let mut s = Script {
        steps: Vec::new(),
        rng,
        rtt,
        mss: mss(ep.v6),
    };
    match p.kind {
        Kind::Http => {
            let rounds =
                http_messages(s.rng, n, &ep, p, &mut f.client_stream, &mut f.server_stream);
            s.tcp_conversation(t0, &rounds, p);
        }
        Kind::Tls => {
            let rounds = tls_messages(s.rng, n, p, &mut f.client_stream, &mut f.server_stream);
            s.tcp_conversation(t0, &rounds, p);
        }
        Kind::SynNoAnswer => {
            let isn = s.rng.next_u32();
            let tries = s.rng.range(1, 3);
            // Linux initial RTO 1 s, doubling.
            for dt in [0, SEC, 3 * SEC].into_iter().take(tries as usize) {
                s.tcp(t0 + dt, true, isn, 0, SYN);
            }
        }
        Kind::Rejected => {
            let isn = s.rng.next_u32();
            s.tcp(t0, true, isn, 0, SYN);
            s.tcp(t0 + s.rtt, false, 0, isn.wrapping_add(1), RST | ACK);
        }
        Kind::Dns => {
            f.dns = Some(dns_exchange(s.rng, n, &ep));
            s.dns_script(t0);
        }
        Kind::UdpBulk => s.udp_bulk(t0, p),
    }
    let mut steps = s.steps;
    // Events were planned per actor; order them in time (stable, so
    // same-time events keep their causal order).
    steps.sort_by_key(|st| st.t);
    f.steps = steps;
    f
}

/// Byte lengths written by client and server in one request/response round.
type Round = (u64, u64);

fn http_messages(
    rng: &mut Rng,
    n: u64,
    ep: &Endpoints,
    p: &Profile,
    c: &mut Stream,
    s: &mut Stream,
) -> Vec<Round> {
    let rounds = if rng.chance(0.7) { 1 } else { rng.range(2, 3) };
    let mss = mss(ep.v6);
    // Segments left once handshake, requests, acks and close are paid for;
    // a data segment costs ~1.5 packets with an ACK every second segment.
    let segs = p.budget.saturating_sub(8 + 2 * rounds) * 2 / 3;
    let total = (segs * mss + rng.below(mss)).min(p.max_bytes);
    let host = format!("www{}.example.com", ep.server_ip[3]);
    let mut out = Vec::new();
    for r in 0..rounds {
        let req = format!(
            "GET /obj/{n}/{r}.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flowscope-gen/1.0\r\nAccept: */*\r\n\r\n"
        );
        let cl = c.push(req.into_bytes(), 0, Filler::Text, 0);
        let (status, body) = if rng.chance(0.05) {
            ("404 Not Found", rng.range(100, 400))
        } else {
            ("200 OK", (total / rounds).max(1))
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nServer: flowscope-gen\r\nContent-Type: text/plain\r\nContent-Length: {body}\r\n\r\n"
        );
        let sl = s.push(head.into_bytes(), body, Filler::Text, rng.next_u32());
        out.push((cl, sl));
    }
    out
}

/// A TLS record header (RFC 8446 §5.1) for `body_len` bytes (at most 2^14).
fn tls_record_header(content_type: u8, body_len: u64) -> (Vec<u8>, u64) {
    let len = body_len.min(16_384);
    let mut h = vec![content_type, 0x03, 0x03];
    h.extend_from_slice(&(len as u16).to_be_bytes());
    (h, len)
}

/// Appends a 2-byte-length-prefixed vector.
fn vec16(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A handshake record holding one handshake message (RFC 8446 §4).
fn tls_handshake_record(hs_type: u8, msg: &[u8]) -> Vec<u8> {
    let mut hs = vec![hs_type];
    hs.extend_from_slice(&(msg.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(msg);
    let mut rec = vec![22, 0x03, 0x01];
    vec16(&mut rec, &hs);
    rec
}

/// A TLS 1.3 ClientHello (RFC 8446 §4.1.2) with server_name (RFC 6066 §3),
/// supported_versions and padding (RFC 7685) up to ~512 bytes, as browsers send.
fn client_hello(rng: &mut Rng, sni: &str, session_id: &[u8; 32]) -> Vec<u8> {
    let mut m = vec![0x03, 0x03];
    for _ in 0..4 {
        m.extend_from_slice(&rng.next_u64().to_be_bytes());
    }
    m.push(32);
    m.extend_from_slice(session_id);
    vec16(
        &mut m,
        &[0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f],
    );
    m.extend_from_slice(&[1, 0]); // compression methods: null
    let mut ext = Vec::new();
    let mut name = vec![0u8]; // host_name
    vec16(&mut name, sni.as_bytes());
    let mut list = Vec::new();
    vec16(&mut list, &name);
    ext.extend_from_slice(&0u16.to_be_bytes());
    vec16(&mut ext, &list);
    ext.extend_from_slice(&43u16.to_be_bytes());
    vec16(&mut ext, &[2, 0x03, 0x04]);
    // Padding to a 512-byte handshake message.
    let used = m.len() + 2 + ext.len() + 4;
    let pad = 512usize.saturating_sub(used);
    ext.extend_from_slice(&21u16.to_be_bytes());
    vec16(&mut ext, &vec![0u8; pad]);
    vec16(&mut m, &ext);
    tls_handshake_record(1, &m)
}

/// The matching TLS 1.3 ServerHello: TLS_AES_128_GCM_SHA256, supported_versions.
fn server_hello(rng: &mut Rng, session_id: &[u8; 32]) -> Vec<u8> {
    let mut m = vec![0x03, 0x03];
    for _ in 0..4 {
        m.extend_from_slice(&rng.next_u64().to_be_bytes());
    }
    m.push(32);
    m.extend_from_slice(session_id);
    m.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = Vec::new();
    ext.extend_from_slice(&43u16.to_be_bytes());
    vec16(&mut ext, &[0x03, 0x04]);
    vec16(&mut m, &ext);
    tls_handshake_record(2, &m)
}

fn tls_messages(rng: &mut Rng, n: u64, p: &Profile, c: &mut Stream, s: &mut Stream) -> Vec<Round> {
    let mut out = Vec::new();
    let salt = rng.next_u32();
    let mut sid = [0u8; 32];
    for chunk in sid.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
    }
    // TLS 1.3: ClientHello; ServerHello, ChangeCipherSpec and the encrypted
    // rest of the server's flight; client CCS + Finished.
    let cl = c.push(
        client_hello(rng, &format!("api{}.example.org", n % 97), &sid),
        0,
        Filler::Binary,
        salt,
    );
    let mut sl = s.push(server_hello(rng, &sid), 0, Filler::Binary, salt);
    sl += s.push(vec![20, 0x03, 0x03, 0, 1, 1], 0, Filler::Binary, salt);
    let (h, b) = tls_record_header(23, rng.range(1500, 4500));
    sl += s.push(h, b, Filler::Binary, salt);
    out.push((cl, sl));
    let mut fin = c.push(vec![20, 0x03, 0x03, 0, 1, 1], 0, Filler::Binary, salt);
    let (h, b) = tls_record_header(23, 53);
    fin += c.push(h, b, Filler::Binary, salt);
    // Application rounds: chatty request/response exchanges; the client's
    // Finished goes out with the first request.
    let rounds = 1 + rng.below((p.budget / 8).clamp(1, 40));
    let segs = p.budget.saturating_sub(14 + 3 * rounds) * 2 / 3;
    let total = (segs * 1400 + rng.below(1400)).min(p.max_bytes);
    for r in 0..rounds {
        let (h, b) = tls_record_header(23, rng.range(40, 700));
        let mut cl = c.push(h, b, Filler::Binary, salt);
        if r == 0 {
            cl += fin;
        }
        let mut want = (total / rounds).max(30) + rng.below(200);
        let mut sl = 0;
        while want > 0 {
            let (h, b) = tls_record_header(23, want);
            want = want.saturating_sub(b);
            sl += s.push(h, b, Filler::Binary, salt);
        }
        out.push((cl, sl));
    }
    out
}

fn dns_exchange(rng: &mut Rng, n: u64, ep: &Endpoints) -> Dns {
    let name = match rng.below(3) {
        0 => format!("www{}.example.com", rng.below(200)),
        1 => format!("host{n}.corp.example"),
        _ => format!("cdn{}.assets.example.net", rng.below(50)),
    };
    let mut addr = [0u8; 16];
    let qtype = if ep.v6 || rng.chance(0.3) { 28 } else { 1 };
    if qtype == 28 {
        addr[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        addr[15] = rng.range(1, 254) as u8;
    } else {
        addr[..4].copy_from_slice(&[203, 0, 113, rng.range(1, 254) as u8]);
    }
    Dns {
        id: rng.next_u32() as u16,
        qname: Dns::encode_name(&name),
        qtype,
        rcode: if rng.chance(0.08) { 3 } else { 0 },
        addr,
        ttl: rng.range(30, 3600) as u32,
    }
}

struct Script<'r> {
    steps: Vec<Step>,
    rng: &'r mut Rng,
    rtt: u64,
    mss: u64,
}

impl Script<'_> {
    fn tcp(&mut self, t: u64, from_client: bool, seq: u32, ack: u32, flags: u8) {
        self.steps.push(Step {
            t,
            from_client,
            tcp: Some(TcpHdr { seq, ack, flags }),
            payload: Payload::None,
        });
    }

    fn udp(&mut self, t: u64, from_client: bool, payload: Payload) {
        self.steps.push(Step {
            t,
            from_client,
            tcp: None,
            payload,
        });
    }

    fn dns_script(&mut self, t0: u64) {
        let rtt = self.rng.range(300 * US, 60 * MS);
        self.udp(t0, true, Payload::DnsQuery);
        match self.rng.below(20) {
            // Lost once, retried after the resolver's 1 s timeout.
            0 | 1 => {
                self.udp(t0 + SEC, true, Payload::DnsQuery);
                self.udp(t0 + SEC + rtt, false, Payload::DnsResponse);
            }
            // Never answered.
            2 => {}
            _ => self.udp(t0 + rtt, false, Payload::DnsResponse),
        }
    }

    fn udp_bulk(&mut self, t0: u64, p: &Profile) {
        let rtt = self.rtt;
        let n = p.budget.clamp(3, 100_000);
        let max_n = (p.max_bytes / 1200).max(2);
        let n = n.min(max_n);
        // A paced media stream (20 ms) or a burst of bulk datagrams.
        let pace = if self.rng.chance(0.4) {
            20 * MS
        } else {
            self.rng.range(40 * US, 400 * US)
        };
        let req = self.rng.range(80, 1200) as u16;
        self.udp(t0, true, Payload::Opaque { n: 0, len: req });
        let mut t = t0 + rtt;
        for i in 1..n {
            let len = self.rng.range(1000, 1350) as u16;
            self.udp(t, false, Payload::Opaque { n: i as u32, len });
            if i % 10 == 0 {
                let len = self.rng.range(40, 90) as u16;
                self.udp(t + rtt / 2, true, Payload::Opaque { n: i as u32, len });
            }
            t += pace + self.rng.below(pace / 4 + 1);
        }
    }

    /// Handshake, request/response rounds, close.
    fn tcp_conversation(&mut self, t0: u64, rounds: &[Round], p: &Profile) {
        let rtt = self.rtt;
        let isn_c = self.rng.next_u32();
        let isn_s = self.rng.next_u32();
        self.tcp(t0, true, isn_c, 0, SYN);
        self.tcp(t0 + rtt, false, isn_s, isn_c.wrapping_add(1), SYN | ACK);
        let mut t = t0 + rtt + self.rng.range(20 * US, 80 * US);
        // Stream positions are offsets past the SYN.
        let c_seq = |off: u64| isn_c.wrapping_add(1).wrapping_add(off as u32);
        let s_seq = |off: u64| isn_s.wrapping_add(1).wrapping_add(off as u32);
        self.tcp(t, true, c_seq(0), s_seq(0), ACK);
        let (mut c_off, mut s_off) = (0u64, 0u64);
        let mut force_retx = p.force_retx;
        for (i, &(c_len, s_len)) in rounds.iter().enumerate() {
            t += if i == 0 {
                self.rng.range(10 * US, 300 * US)
            } else {
                self.rng.range(MS, 300 * MS)
            };
            let think = if self.rng.chance(0.8) {
                self.rng.range(100 * US, 5 * MS)
            } else {
                self.rng.range(20 * MS, 200 * MS)
            };
            // A server that thinks long ACKs the request on its own first.
            let ack_req = think > 20 * MS;
            t = self.send(
                t,
                true,
                c_len,
                c_off,
                s_off,
                (isn_c, isn_s),
                p.lossy,
                false,
                ack_req,
            );
            c_off += c_len;
            t += rtt + think;
            t = self.send(
                t,
                false,
                s_len,
                s_off,
                c_off,
                (isn_c, isn_s),
                p.lossy,
                force_retx,
                true,
            );
            force_retx = false;
            s_off += s_len;
        }
        let last = self.steps.iter().map(|s| s.t).max().unwrap_or(t);
        let t = last + self.rng.range(50 * US, 30 * MS);
        let small = self.rng.range(20 * US, 2 * MS);
        match p.close {
            Close::ClientFin => {
                self.tcp(t, true, c_seq(c_off), s_seq(s_off), FIN | ACK);
                self.tcp(t + rtt, false, s_seq(s_off), c_seq(c_off + 1), FIN | ACK);
                self.tcp(
                    t + rtt + small,
                    true,
                    c_seq(c_off + 1),
                    s_seq(s_off + 1),
                    ACK,
                );
            }
            Close::ServerFin => {
                self.tcp(t, false, s_seq(s_off), c_seq(c_off), FIN | ACK);
                self.tcp(t + small, true, c_seq(c_off), s_seq(s_off + 1), FIN | ACK);
                self.tcp(
                    t + small + rtt,
                    false,
                    s_seq(s_off + 1),
                    c_seq(c_off + 1),
                    ACK,
                );
            }
            Close::ClientRst => self.tcp(t, true, c_seq(c_off), s_seq(s_off), RST | ACK),
            Close::ServerRst => self.tcp(t, false, s_seq(s_off), c_seq(c_off), RST | ACK),
            Close::Open => {}
        }
    }

    /// Sends `len` stream bytes from one side in MSS segments with slow-start
    /// pacing; the receiver ACKs every second segment. Returns the time of
    /// the last segment.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        mut t: u64,
        from_client: bool,
        len: u64,
        off: u64,
        peer_off: u64,
        (isn_c, isn_s): (u32, u32),
        lossy: bool,
        mut force_retx: bool,
        ack_last: bool,
    ) -> u64 {
        let (isn_me, isn_peer) = if from_client {
            (isn_c, isn_s)
        } else {
            (isn_s, isn_c)
        };
        let seq_me = |o: u64| isn_me.wrapping_add(1).wrapping_add(o as u32);
        let seq_peer = |o: u64| isn_peer.wrapping_add(1).wrapping_add(o as u32);
        // The capture point sits next to the clients: a client's ACK shows up
        // right after the segment, a server's one round trip later.
        let ack_delay = |rng: &mut Rng, rtt: u64| {
            if from_client {
                rtt + rng.range(10 * US, 200 * US)
            } else {
                rng.range(10 * US, 60 * US)
            }
        };
        let (mut sent, mut seg, mut in_window, mut cwnd) = (0u64, 0u64, 0u64, 10u64);
        while sent < len {
            let l = (len - sent).min(self.mss);
            let last = sent + l == len;
            let flags = if last { ACK | PSH } else { ACK };
            let payload = Payload::Stream {
                off: off + sent,
                len: l as u16,
            };
            let step = Step {
                t,
                from_client,
                tcp: Some(TcpHdr {
                    seq: seq_me(off + sent),
                    ack: seq_peer(peer_off),
                    flags,
                }),
                payload,
            };
            self.steps.push(step);
            if force_retx || (lossy && self.rng.chance(0.03)) {
                // Retransmission after a timeout: same bytes, same seq.
                let rto = (3 * self.rtt).max(200 * MS);
                self.steps.push(Step { t: t + rto, ..step });
                force_retx = false;
            }
            sent += l;
            seg += 1;
            if (seg % 2 == 0 && !last) || (last && ack_last) {
                let at = t + ack_delay(self.rng, self.rtt);
                self.tcp(
                    at,
                    !from_client,
                    seq_peer(peer_off),
                    seq_me(off + sent),
                    ACK,
                );
            }
            in_window += 1;
            if !last {
                if in_window == cwnd {
                    t += self.rtt;
                    cwnd = (cwnd * 2).min(64);
                    in_window = 0;
                } else {
                    t += self.rng.range(12 * US, 40 * US);
                }
            }
        }
        t
    }
}
