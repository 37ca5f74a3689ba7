//! [`SessionDriver`] end to end on frames built in code: parser choice by
//! content, reassembly, defragmentation, gaps, and packet accounting.
//!
//! Expected values come from the protocols (RFC 9112 request/status lines,
//! RFC 6066 SNI, RFC 1035 / RFC 7766 DNS framing, RFC 791 / RFC 8200
//! fragmentation, Zeek's `g` history letter), not from the driver's output.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

// The extractor tests' frame builder (RFC 1071 checksums written apart from
// the library's); only part of it is used here. `extract::tests` is private
// to `extract`, so the file is compiled a second time here rather than
// reached by a `use`.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../extract/tests/build.rs"]
mod build;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use flowscope_core::{
    FiveTuple, FlowEvent, FlowRecord, FlowSide, LinkType, PacketView, SessionEvent, Timestamp,
};

use super::{DriverEvent, SessionConfig, SessionDriver, SessionInfo};
use crate::proto::dns::{DnsMessage, DnsRdata};
use crate::proto::http::HttpTransaction;
use crate::proto::tls::TlsMessage;
use crate::proto::AppMessage;
use build::*;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Client and server ISNs used by every handshake here.
const C_ISN: u32 = 1000;
const S_ISN: u32 = 5000;

/// One driver event, owned.
#[derive(Debug)]
enum Ev {
    Started,
    Ended {
        rec: FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
    },
    Msg {
        info: SessionInfo,
        msg: AppMessage,
    },
    Gap {
        side: FlowSide,
        len: u64,
    },
    Anomaly {
        code: &'static str,
    },
    Closed {
        info: SessionInfo,
    },
}

fn record(log: &mut Vec<Ev>, ev: DriverEvent<'_, AppMessage>) {
    match ev {
        DriverEvent::Flow { event, app_proto } => match event {
            FlowEvent::Started { .. } => log.push(Ev::Started),
            FlowEvent::Ended(rec) => log.push(Ev::Ended {
                rec: *rec,
                app_proto,
            }),
            _ => {}
        },
        DriverEvent::Session { info, event, .. } => match event {
            SessionEvent::Message(msg) => log.push(Ev::Msg { info: *info, msg }),
            SessionEvent::Gap { side, len } => log.push(Ev::Gap { side, len }),
            SessionEvent::Anomaly { anomaly, .. } => log.push(Ev::Anomaly { code: anomaly.code }),
            SessionEvent::Closed => log.push(Ev::Closed { info: *info }),
            _ => {}
        },
    }
}

/// A driver with the built-in parsers, its event log and a clock that moves
/// 1 ms per frame.
struct Harness {
    d: SessionDriver<AppMessage>,
    log: Vec<Ev>,
    now: Timestamp,
    defrag: bool,
}

impl Harness {
    fn new() -> Self {
        Harness::with_config(SessionConfig::default())
    }

    fn with_config(cfg: SessionConfig) -> Self {
        Harness {
            defrag: !cfg.no_defrag,
            d: SessionDriver::with_default_parsers(cfg),
            log: Vec::new(),
            now: Timestamp::from_secs_nanos(1_000, 0),
        }
    }

    /// Feeds one Ethernet frame; returns its timestamp.
    fn feed(&mut self, frame: &[u8]) -> Timestamp {
        self.now = self.now.saturating_add(Duration::from_millis(1));
        let pv = PacketView::new(frame, self.now, LinkType::ETHERNET);
        let log = &mut self.log;
        self.d.process(&pv, &mut |ev| record(log, ev));
        self.check_balanced();
        self.now
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
        let log = &mut self.log;
        self.d.advance_to(self.now, &mut |ev| record(log, ev));
        self.check_balanced();
    }

    /// Ends every flow, then checks what must hold once no session is left.
    fn finish(&mut self) {
        let log = &mut self.log;
        self.d.finish(&mut |ev| record(log, ev));
        self.check_balanced();
        assert_eq!(self.d.active_sessions(), 0, "sessions left after finish");
        let sc = *self.d.session_counters();
        let logged_msgs = self.msgs().count() as u64;
        assert_eq!(sc.messages, logged_msgs, "messages counter vs events");
        // Every reassembler was merged at its flow's end; parsers report no
        // gaps of their own, so the driver's gap events are reassembly's.
        assert_eq!(sc.gaps, self.d.reassembly_stats().gaps, "gap events");
        let gap_events = self
            .log
            .iter()
            .filter(|e| matches!(e, Ev::Gap { .. }))
            .count() as u64;
        assert_eq!(sc.gaps, gap_events);
        let ds = self.d.defrag_stats();
        assert_eq!(ds.fragments, ds.accounted(), "defrag accounting");
        if self.defrag {
            assert_eq!(ds.fragments, self.d.counters().fragments);
        }
        assert_eq!(
            ds.datagrams_completed,
            sc.datagrams_reassembled + sc.reassembled_malformed
        );
        let ts = self.d.tracker_stats();
        assert_eq!(
            ts.packets,
            self.d.counters().tracked + sc.datagrams_reassembled,
            "tracker packets vs tracked + rebuilt datagrams"
        );
        assert_eq!(ts.active, 0);
    }

    fn check_balanced(&self) {
        let c = self.d.counters();
        assert!(c.is_balanced(), "unbalanced: {c:?}");
    }

    fn msgs(&self) -> impl Iterator<Item = (&SessionInfo, &AppMessage)> {
        self.log.iter().filter_map(|e| match e {
            Ev::Msg { info, msg } => Some((info, msg)),
            _ => None,
        })
    }

    fn http(&self) -> Vec<&HttpTransaction> {
        self.msgs()
            .filter_map(|(_, m)| match m {
                AppMessage::Http(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn dns(&self) -> Vec<&DnsMessage> {
        self.msgs()
            .filter_map(|(_, m)| match m {
                AppMessage::Dns(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn ended(&self) -> Vec<(&FlowRecord<FiveTuple>, Option<&'static str>)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Ev::Ended { rec, app_proto } => Some((rec, *app_proto)),
                _ => None,
            })
            .collect()
    }

    fn anomalies(&self) -> Vec<&'static str> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Ev::Anomaly { code } => Some(*code),
                _ => None,
            })
            .collect()
    }
}

/// One IPv4 TCP connection: client C:cport, server S:sport.
struct Conn {
    c: [u8; 4],
    s: [u8; 4],
    cport: u16,
    sport: u16,
}

impl Conn {
    fn new(cport: u16, sport: u16) -> Self {
        Conn {
            c: V4_A,
            s: V4_B,
            cport,
            sport,
        }
    }

    fn c2s(&self, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let t = tcp_opts(
            &self.c,
            &self.s,
            self.cport,
            self.sport,
            seq,
            ack,
            flags,
            65535,
            &[],
            payload,
        );
        eth_ab(0x0800, &ipv4(self.c, self.s, 6, &t))
    }

    fn s2c(&self, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let t = tcp_opts(
            &self.s,
            &self.c,
            self.sport,
            self.cport,
            seq,
            ack,
            flags,
            65535,
            &[],
            payload,
        );
        eth(MAC_A, MAC_B, 0x0800, &ipv4(self.s, self.c, 6, &t))
    }

    /// SYN, SYN-ACK, ACK with ISNs [`C_ISN`] and [`S_ISN`].
    fn handshake(&self, h: &mut Harness) {
        h.feed(&self.c2s(C_ISN, 0, SYN, &[]));
        h.feed(&self.s2c(S_ISN, C_ISN + 1, SYN | ACK, &[]));
        h.feed(&self.c2s(C_ISN + 1, S_ISN + 1, ACK, &[]));
    }

    /// FIN from each side, each acknowledged, after `c_len` client and
    /// `s_len` server payload bytes.
    fn close(&self, h: &mut Harness, c_len: u32, s_len: u32) {
        let c_next = C_ISN + 1 + c_len;
        let s_next = S_ISN + 1 + s_len;
        h.feed(&self.c2s(c_next, s_next, FIN | ACK, &[]));
        h.feed(&self.s2c(s_next, c_next + 1, FIN | ACK, &[]));
        h.feed(&self.c2s(c_next + 1, s_next + 1, ACK, &[]));
    }
}

/// The (src, sport, dst, dport) the initiator of `info`'s flow sends with.
fn initiator_endpoints(info: &SessionInfo) -> (IpAddr, u16, IpAddr, u16) {
    info.endpoints(FlowSide::Initiator)
}

// ---------------------------------------------------------------- DNS bytes

/// RFC 1035 §3.1: a name as length-prefixed labels ending in the root.
fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// RFC 1035 §4.1: a standard query (RD set) for `name`, type A, class IN.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    m
}

/// The answer to [`dns_query`]: QR, RD, RA, NOERROR, one A record per
/// address, each naming the question by a pointer to offset 12 (`0xC00C`).
fn dns_response(id: u16, name: &str, addrs: &[[u8; 4]]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x8180u16.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for a in addrs {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        m.extend_from_slice(&300u32.to_be_bytes());
        m.extend_from_slice(&[0, 4]);
        m.extend_from_slice(a);
    }
    m
}

/// RFC 7766 §8: a DNS message over TCP, with its two-byte length.
fn tcp_framed(msg: &[u8]) -> Vec<u8> {
    cat(&[&(msg.len() as u16).to_be_bytes(), msg])
}

fn addrs(n: usize) -> Vec<[u8; 4]> {
    (0..n).map(|i| [198, 51, 100, i as u8]).collect()
}

// ---------------------------------------------------------------- TLS bytes

/// A TLS 1.2 ClientHello record (RFC 5246 §7.4.1.2) with one extension,
/// server_name (RFC 6066 §3) naming `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sn = Vec::new();
    sn.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes()); // ServerNameList
    sn.push(0); // host_name
    sn.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sn.extend_from_slice(name);
    let mut exts = vec![0, 0]; // server_name
    exts.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sn);
    let mut body = vec![3, 3]; // client_version TLS 1.2
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // empty session id
    body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0x9c]); // two suites
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1]; // handshake record, TLS 1.0 record version
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

// ---------------------------------------------------------------- fragments

/// IPv4 flags/fragment-offset word (RFC 791 §3.1): MF and the offset in
/// 8-byte units.
fn v4_frag_word(offset_bytes: usize, more: bool) -> u16 {
    assert_eq!(offset_bytes % 8, 0);
    (offset_bytes / 8) as u16 | if more { 0x2000 } else { 0 }
}

/// An IPv6 Fragment header (RFC 8200 §4.5) followed by `chunk`.
fn v6_frag(next: u8, offset_bytes: usize, more: bool, id: u32, chunk: &[u8]) -> Vec<u8> {
    assert_eq!(offset_bytes % 8, 0);
    // The 13-bit offset in 8-byte units sits above 2 reserved bits and M,
    // which makes the 16-bit word the byte offset itself plus M.
    let word = offset_bytes as u16 | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&word.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(chunk);
    h
}

// ======================================================================
// HTTP

#[test]
fn http_on_port_8081_out_of_order_and_retransmitted() {
    let mut h = Harness::new();
    let conn = Conn::new(40000, 8081);
    let req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let (p1, p2) = req.split_at(10);
    let (rl, sl) = (req.len() as u32, resp.len() as u32);

    conn.handshake(&mut h);
    // The request's second piece first, then its first, then the first again.
    h.feed(&conn.c2s(C_ISN + 1 + 10, S_ISN + 1, PSH | ACK, p2));
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, p1));
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, p1));
    h.feed(&conn.s2c(S_ISN + 1, C_ISN + 1 + rl, PSH | ACK, resp));
    h.feed(&conn.c2s(C_ISN + 1 + rl, S_ISN + 1 + sl, ACK, &[]));
    conn.close(&mut h, rl, sl);
    assert!(
        h.ended().is_empty(),
        "closed flows linger (Zeek tcp_close_delay)"
    );
    // Past the 5 s close linger: the flow ends by time, not by `finish`.
    h.advance(Duration::from_secs(10));

    let txs = h.http();
    assert_eq!(txs.len(), 1, "{:?}", h.log);
    let rq = txs[0].request.as_ref().unwrap();
    assert_eq!(rq.method, "GET");
    assert_eq!(rq.uri, "/index.html");
    assert_eq!(rq.host.as_deref(), Some("example.com"));
    let rs = txs[0].response.as_ref().unwrap();
    assert_eq!(rs.status, 200);
    assert_eq!(rs.body_len, 5);
    let (info, _) = h.msgs().next().unwrap();
    assert_eq!(
        initiator_endpoints(info),
        (ip(&V4_A), 40000, ip(&V4_B), 8081)
    );
    assert_eq!(info.app_proto, Some("http"));

    // Closed, then the flow's record with app_proto "http", nothing between.
    let closed = h
        .log
        .iter()
        .position(|e| matches!(e, Ev::Closed { .. }))
        .expect("a Closed event");
    let ended = h
        .log
        .iter()
        .position(|e| matches!(e, Ev::Ended { .. }))
        .expect("an Ended flow");
    assert_eq!(closed + 1, ended, "{:?}", h.log);
    let Ev::Closed { info: closed_info } = &h.log[closed] else {
        unreachable!()
    };
    assert_eq!(closed_info.app_proto, Some("http"));
    assert_eq!(closed_info.key, info.key);
    assert!(matches!(h.log.first(), Some(Ev::Started)));
    let (rec, app) = h.ended()[0];
    assert_eq!(app, Some("http"));
    assert_eq!(rec.stats.initiator.missed_bytes, 0);
    assert!(h.anomalies().is_empty(), "{:?}", h.anomalies());

    let sc = *h.d.session_counters();
    assert_eq!(
        (sc.stream_parsers, sc.messages, sc.gaps),
        (1, 1, 0),
        "{sc:?}"
    );
    let rs = *h.d.reassembly_stats();
    // p2 came before the byte it follows; p1's copy repeats 10 delivered bytes.
    assert_eq!(rs.out_of_order_segments, 1, "{rs:?}");
    assert_eq!(rs.retransmitted_bytes, 10, "{rs:?}");
    assert_eq!(rs.bytes_delivered, u64::from(rl + sl), "{rs:?}");
    h.finish();
}

#[test]
fn checksum_bad_segment_is_not_reassembled() {
    // With checksums verified, a segment failing its checksum is what the
    // receiver dropped: Zeek's TCPAnalyzer::ValidateChecksum fails it before
    // the reassembler, and the tracker here already ignores its flags and
    // sequence numbers. An attacker's bad-checksum copy must not win over the
    // good one carrying the same sequence numbers.
    let mut cfg = SessionConfig::default();
    cfg.extract.verify_checksums = true;
    let mut h = Harness::with_config(cfg);
    let conn = Conn::new(40001, 8080);
    let good = b"GET /good HTTP/1.1\r\nHost: a\r\n\r\n";
    let evil = b"GET /evil HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(good.len(), evil.len());
    conn.handshake(&mut h);
    let mut bad = conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, evil);
    // TCP checksum: Ethernet 14 + IPv4 20 + 16.
    bad[14 + 20 + 16] ^= 0xff;
    h.feed(&bad);
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, good));
    let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
    h.feed(&conn.s2c(S_ISN + 1, C_ISN + 1 + good.len() as u32, PSH | ACK, resp));
    h.finish();
    let txs = h.http();
    assert_eq!(txs.len(), 1, "{:?}", h.log);
    assert_eq!(txs[0].request.as_ref().unwrap().uri, "/good");
    assert_eq!(txs[0].response.as_ref().unwrap().status, 204);
}

#[test]
fn checksum_bad_datagram_is_not_parsed() {
    // Zeek's UDP analyzer also stops at a bad checksum (`bad_UDP_checksum`)
    // before any child analyzer sees the payload.
    let mut cfg = SessionConfig::default();
    cfg.extract.verify_checksums = true;
    let mut h = Harness::with_config(cfg);
    let mut bad = dns_c2s(50009, &dns_query(0x0bad, "evil.example"));
    // UDP checksum: Ethernet 14 + IPv4 20 + 6.
    bad[14 + 20 + 6] ^= 0xff;
    h.feed(&bad);
    h.feed(&dns_c2s(50009, &dns_query(0x0600d, "good.example")));
    h.finish();
    let m = h.dns();
    assert_eq!(m.len(), 1, "{:?}", h.log);
    assert_eq!(m[0].questions[0].name, "good.example");
}

// ======================================================================
// TLS

fn client_hellos(h: &Harness) -> Vec<&crate::proto::tls::ClientHello> {
    h.msgs()
        .filter_map(|(_, m)| match m {
            AppMessage::Tls(TlsMessage::ClientHello(ch)) => Some(ch),
            _ => None,
        })
        .collect()
}

#[test]
fn tls_client_hello_in_three_segments() {
    let mut h = Harness::new();
    let conn = Conn::new(40002, 8443);
    let ch = client_hello("www.example.org");
    // 3 bytes: too few for the record header, so the probe must wait.
    let (a, rest) = ch.split_at(3);
    let (b, c) = rest.split_at(20);
    conn.handshake(&mut h);
    let seq_b = C_ISN + 1 + a.len() as u32;
    let seq_c = seq_b + b.len() as u32;
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, a));
    // The third piece overtakes the second.
    h.feed(&conn.c2s(seq_c, S_ISN + 1, PSH | ACK, c));
    assert!(client_hellos(&h).is_empty());
    h.feed(&conn.c2s(seq_b, S_ISN + 1, PSH | ACK, b));
    let hellos = client_hellos(&h);
    assert_eq!(hellos.len(), 1, "{:?}", h.log);
    assert_eq!(hellos[0].sni.as_deref(), Some("www.example.org"));
    assert_eq!(hellos[0].cipher_suites, vec![0xc02f, 0x009c]);
    h.finish();
    assert_eq!(h.ended()[0].1, Some("tls"));
    assert_eq!(h.d.session_counters().stream_parsers, 1);
    assert_eq!(h.d.session_counters().unidentified_streams, 0);
}

// ======================================================================
// DNS over UDP

/// Client A:port → server B:53 over IPv4.
fn dns_c2s(cport: u16, msg: &[u8]) -> Vec<u8> {
    eth_ab(
        0x0800,
        &ipv4(V4_A, V4_B, 17, &udp(&V4_A, &V4_B, cport, 53, msg)),
    )
}

fn dns_s2c(cport: u16, msg: &[u8]) -> Vec<u8> {
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(V4_B, V4_A, 17, &udp(&V4_B, &V4_A, 53, cport, msg)),
    )
}

#[test]
fn dns_udp_query_and_paired_response() {
    let mut h = Harness::new();
    let q_ts = h.feed(&dns_c2s(50000, &dns_query(0xbeef, "example.com")));
    h.feed(&dns_s2c(
        50000,
        &dns_response(0xbeef, "example.com", &[[93, 184, 216, 34]]),
    ));
    h.finish();
    let m = h.dns();
    assert_eq!(m.len(), 2, "{:?}", h.log);
    assert!(!m[0].is_response && m[1].is_response);
    assert_eq!((m[0].id, m[1].id), (0xbeef, 0xbeef));
    assert_eq!(m[0].side, FlowSide::Initiator);
    assert_eq!(m[1].side, FlowSide::Responder);
    assert_eq!(m[0].questions[0].name, "example.com");
    assert_eq!(m[1].query_ts, Some(q_ts));
    assert_eq!(
        m[1].answers[0].data,
        DnsRdata::A(Ipv4Addr::new(93, 184, 216, 34))
    );
    let sc = *h.d.session_counters();
    assert_eq!((sc.datagram_parsers, sc.messages), (1, 2));
    assert_eq!(h.ended()[0].1, Some("dns"));
    // A datagram flow is closed too, before its record.
    let closed = h.log.iter().position(|e| matches!(e, Ev::Closed { .. }));
    let ended = h.log.iter().position(|e| matches!(e, Ev::Ended { .. }));
    assert!(closed.unwrap() < ended.unwrap());
}

/// A UDP length field past the IP payload: kept and counted, and DNS gets
/// the IP payload (Zeek's `UDP_datagram_length_mismatch` handling: the
/// payload forwarded is `min(IP payload, captured)`).
#[test]
fn dns_in_udp_whose_length_exceeds_the_ip_payload() {
    let q = dns_query(0x1234, "example.com");
    let mut u = udp(&V4_A, &V4_B, 50000, 53, &q);
    // Claim 100 bytes more than the datagram has.
    let claimed = (u.len() + 100) as u16;
    u[4..6].copy_from_slice(&claimed.to_be_bytes());
    let mut h = Harness::new();
    h.feed(&eth_ab(0x0800, &ipv4(V4_A, V4_B, 17, &u)));
    h.feed(&dns_c2s(50001, &q)); // a consistent one: not counted
    h.finish();
    let c = *h.d.counters();
    assert_eq!((c.tracked, c.udp_length_exceeds_ip), (2, 1));
    assert_eq!(c.malformed_total(), 0);
    let m = h.dns();
    assert_eq!(m.len(), 2, "{:?}", h.log);
    assert_eq!(m[0].id, 0x1234);
    assert_eq!(m[0].questions[0].name, "example.com");
}

#[test]
fn dns_udp_response_in_two_ipv4_fragments() {
    let mut h = Harness::new();
    let q_ts = h.feed(&dns_c2s(50001, &dns_query(7, "big.example")));
    // 12 header + 17 question + 40 × 16-byte answers = 669 bytes of DNS.
    let resp = dns_response(7, "big.example", &addrs(40));
    assert_eq!(resp.len(), 12 + 17 + 40 * 16);
    let dgram = udp(&V4_B, &V4_A, 53, 50001, &resp);
    let (first, second) = dgram.split_at(512);
    let f1 = ipv4_frag(V4_B, V4_A, 17, 0x4242, v4_frag_word(0, true), first);
    let f2 = ipv4_frag(V4_B, V4_A, 17, 0x4242, v4_frag_word(512, false), second);
    // The tail first: nothing until the head arrives.
    h.feed(&eth(MAC_A, MAC_B, 0x0800, &f2));
    assert_eq!(h.dns().len(), 1);
    h.feed(&eth(MAC_A, MAC_B, 0x0800, &f1));
    let m = h.dns();
    assert_eq!(m.len(), 2, "{:?}", h.log);
    assert!(m[1].is_response);
    assert_eq!(m[1].answers.len(), 40);
    assert_eq!(
        m[1].answers[39].data,
        DnsRdata::A(Ipv4Addr::new(198, 51, 100, 39))
    );
    assert_eq!(m[1].query_ts, Some(q_ts));
    assert!(m[1].malformed.is_none());

    let c = *h.d.counters();
    assert_eq!((c.packets, c.tracked, c.fragments), (3, 1, 2));
    assert_eq!(h.d.session_counters().datagrams_reassembled, 1);
    let ds = h.d.defrag_stats();
    assert_eq!((ds.fragments, ds.datagrams_completed), (2, 1));
    assert_eq!((ds.fragments_completed, ds.held_now), (2, 0));
    h.finish();
    let (rec, app) = h.ended()[0];
    assert_eq!(app, Some("dns"));
    // One query, one rebuilt response: one packet each way in the flow.
    assert_eq!(
        (rec.stats.initiator.packets, rec.stats.responder.packets),
        (1, 1)
    );
}

#[test]
fn dns_udp_response_in_two_ipv6_fragments() {
    let mut h = Harness::new();
    let q = dns_query(9, "six.example");
    let q_ts = h.feed(&eth_ab(
        0x86dd,
        &ipv6(V6_A, V6_B, 17, &udp(&V6_A, &V6_B, 50002, 53, &q)),
    ));
    let resp = dns_response(9, "six.example", &addrs(30));
    let dgram = udp(&V6_B, &V6_A, 53, 50002, &resp);
    let (first, second) = dgram.split_at(256);
    let f1 = ipv6(V6_B, V6_A, 44, &v6_frag(17, 0, true, 0xdead_beef, first));
    let f2 = ipv6(
        V6_B,
        V6_A,
        44,
        &v6_frag(17, 256, false, 0xdead_beef, second),
    );
    h.feed(&eth(MAC_A, MAC_B, 0x86dd, &f1));
    assert_eq!(h.dns().len(), 1);
    h.feed(&eth(MAC_A, MAC_B, 0x86dd, &f2));
    let m = h.dns();
    assert_eq!(m.len(), 2, "{:?}", h.log);
    assert_eq!(m[1].answers.len(), 30);
    assert_eq!(m[1].query_ts, Some(q_ts));
    let c = *h.d.counters();
    assert_eq!((c.packets, c.tracked, c.fragments), (3, 1, 2));
    assert_eq!(h.d.session_counters().datagrams_reassembled, 1);
    h.finish();
    assert_eq!(
        h.ended().len(),
        1,
        "the rebuilt response joins the query's flow"
    );
}

#[test]
fn fragments_only_counted_when_defrag_is_off() {
    let cfg = SessionConfig {
        no_defrag: true,
        ..SessionConfig::default()
    };
    let mut h = Harness::with_config(cfg);
    h.feed(&dns_c2s(50003, &dns_query(3, "off.example")));
    let resp = dns_response(3, "off.example", &addrs(40));
    let dgram = udp(&V4_B, &V4_A, 53, 50003, &resp);
    let (first, second) = dgram.split_at(512);
    h.feed(&eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4_frag(V4_B, V4_A, 17, 1, v4_frag_word(0, true), first),
    ));
    h.feed(&eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4_frag(V4_B, V4_A, 17, 1, v4_frag_word(512, false), second),
    ));
    h.finish();
    // The first fragment has the UDP header and is tracked; the second has
    // no ports and is only counted. Neither is a whole DNS message.
    let c = *h.d.counters();
    assert_eq!((c.packets, c.tracked, c.fragments), (3, 2, 1));
    assert_eq!(h.d.session_counters().datagrams_reassembled, 0);
    assert!(h
        .dns()
        .iter()
        .all(|m| !m.is_response || m.answers.len() < 40));
}

// ======================================================================
// DNS over TCP

#[test]
fn dns_tcp_two_messages_in_one_segment() {
    let mut h = Harness::new();
    let conn = Conn::new(40003, 53);
    conn.handshake(&mut h);
    let qs = cat(&[
        &tcp_framed(&dns_query(1, "a.example")),
        &tcp_framed(&dns_query(2, "b.example")),
    ]);
    let rs = cat(&[
        &tcp_framed(&dns_response(1, "a.example", &addrs(1))),
        &tcp_framed(&dns_response(2, "b.example", &addrs(2))),
    ]);
    let q_ts = h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, &qs));
    h.feed(&conn.s2c(S_ISN + 1, C_ISN + 1 + qs.len() as u32, PSH | ACK, &rs));
    conn.close(&mut h, qs.len() as u32, rs.len() as u32);
    h.finish();
    let m = h.dns();
    assert_eq!(m.len(), 4, "{:?}", h.log);
    let ids: Vec<_> = m.iter().map(|m| (m.id, m.is_response)).collect();
    assert_eq!(ids, vec![(1, false), (2, false), (1, true), (2, true)]);
    assert_eq!((m[2].query_ts, m[3].query_ts), (Some(q_ts), Some(q_ts)));
    assert_eq!(m[3].answers.len(), 2);
    assert_eq!(h.ended()[0].1, Some("dns"));
}

#[test]
fn dns_tcp_length_prefix_in_its_own_segment() {
    // Resolvers often write the two-byte length apart from the message: the
    // probe must wait for the header and the parser still get every byte.
    let mut h = Harness::new();
    let conn = Conn::new(40004, 53);
    conn.handshake(&mut h);
    let framed = tcp_framed(&dns_query(0x77, "split.example"));
    let (len, msg) = framed.split_at(2);
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, len));
    h.feed(&conn.c2s(C_ISN + 3, S_ISN + 1, PSH | ACK, msg));
    h.finish();
    let m = h.dns();
    assert_eq!(m.len(), 1, "{:?}", h.log);
    assert_eq!(m[0].id, 0x77);
    assert_eq!(m[0].questions[0].name, "split.example");
}

// ======================================================================
// Gaps

#[test]
fn acked_lost_segment_is_a_gap() {
    let mut h = Harness::new();
    let conn = Conn::new(40005, 80);
    let req = b"GET /big HTTP/1.1\r\nHost: b\r\n\r\n";
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n";
    let body = [b'x'; 300];
    let rl = req.len() as u32;
    conn.handshake(&mut h);
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, req));
    let seg_a = cat(&[head, &body[..100]]);
    let a_len = seg_a.len() as u32;
    let s1 = S_ISN + 1;
    h.feed(&conn.s2c(s1, C_ISN + 1 + rl, ACK, &seg_a));
    // body[100..200] is never captured.
    h.feed(&conn.s2c(s1 + a_len + 100, C_ISN + 1 + rl, PSH | ACK, &body[200..]));
    assert!(!h.log.iter().any(|e| matches!(e, Ev::Gap { .. })));
    // The client acknowledges everything: the 100 bytes are lost for good.
    let s_total = a_len + 200;
    h.feed(&conn.c2s(C_ISN + 1 + rl, s1 + s_total, ACK, &[]));
    let gaps: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Gap { side, len } => Some((*side, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![(FlowSide::Responder, 100)]);
    conn.close(&mut h, rl, s_total);
    h.finish();
    let (rec, app) = h.ended()[0];
    assert_eq!(app, Some("http"));
    assert_eq!(rec.stats.responder.missed_bytes, 100);
    assert_eq!(rec.stats.responder.gaps, 1);
    assert_eq!(rec.stats.initiator.missed_bytes, 0);
    // Zeek: `g` is a content gap from the responder, `G` from the originator.
    let hist = rec.history.as_str();
    assert!(hist.contains('g') && !hist.contains('G'), "{hist}");
    let rs = *h.d.reassembly_stats();
    assert_eq!((rs.gaps, rs.gap_bytes), (1, 100), "{rs:?}");
    // The response still completes: the gap counts as body.
    let txs = h.http();
    assert_eq!(txs.len(), 1, "{:?}", h.log);
    assert_eq!(txs[0].response.as_ref().unwrap().status, 200);
}

#[test]
fn rst_flushes_held_data_after_a_gap() {
    // A request whose middle is lost, then RST: the held tail must still
    // reach the parser after a gap for the hole (Reassembler::flush).
    let mut h = Harness::new();
    let conn = Conn::new(40006, 80);
    conn.handshake(&mut h);
    let req = b"GET /r HTTP/1.1\r\nHost: r\r\n\r\n";
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, &req[..5]));
    h.feed(&conn.c2s(C_ISN + 1 + 10, S_ISN + 1, PSH | ACK, &req[10..]));
    h.feed(&conn.c2s(C_ISN + 1 + req.len() as u32, S_ISN + 1, RST, &[]));
    let gaps: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Gap { side, len } => Some((*side, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![(FlowSide::Initiator, 5)]);
    h.finish();
}

// ======================================================================
// Unidentified streams, floods

#[test]
fn unrecognised_tcp_payload_is_unidentified() {
    let mut h = Harness::new();
    let conn = Conn::new(40007, 9999);
    conn.handshake(&mut h);
    // Starts with no HTTP method, no TLS record type (0x00), not on a DNS port.
    let c_data = b"\x00\x01\x02proprietary hello";
    let s_data = b"\x00\x09proprietary welcome";
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, c_data));
    h.feed(&conn.s2c(
        S_ISN + 1,
        C_ISN + 1 + c_data.len() as u32,
        PSH | ACK,
        s_data,
    ));
    h.finish();
    let sc = *h.d.session_counters();
    assert_eq!(sc.unidentified_streams, 1, "{sc:?}");
    assert_eq!((sc.messages, sc.stream_parsers), (0, 0));
    assert_eq!(h.msgs().count(), 0);
    assert_eq!(h.ended()[0].1, None);
    assert!(!h.log.iter().any(|e| matches!(e, Ev::Closed { .. })));
}

#[test]
fn syn_flood_keeps_no_session_state() {
    let mut h = Harness::new();
    for i in 0..10_000u32 {
        let src = [10, 1, (i >> 8) as u8, i as u8];
        let sport = 1024 + (i % 60_000) as u16;
        let t = tcp_opts(&src, &V4_B, sport, 80, i, 0, SYN, 1024, &[], &[]);
        h.feed(&eth_ab(0x0800, &ipv4(src, V4_B, 6, &t)));
        assert_eq!(h.d.active_sessions(), 0);
    }
    // The flows exist (the tracker's job; the earliest may have timed out
    // by their SYN timeout): only the session layer stays empty.
    assert_eq!(h.d.tracker_stats().flows_created, 10_000);
    assert_eq!(h.d.counters().tracked, 10_000);
    assert_eq!(*h.d.session_counters(), Default::default());
    h.finish();
    assert_eq!(h.d.session_counters().unidentified_streams, 0);
}

#[test]
fn syn_ack_flood_sessions_bounded_by_max_flows() {
    // Backscatter: SYN-ACKs do make sessions (their ACK names the peer's
    // ISN), so the flow table's bound must bound them too.
    let mut cfg = SessionConfig::default();
    cfg.track.max_flows = 64;
    let mut h = Harness::with_config(cfg);
    for i in 0..1_000u32 {
        let dst = [10, 2, (i >> 8) as u8, i as u8];
        let t = tcp_opts(&V4_B, &dst, 80, 2000, i, 77, SYN | ACK, 1024, &[], &[]);
        h.feed(&eth_ab(0x0800, &ipv4(V4_B, dst, 6, &t)));
        assert!(h.d.active_sessions() <= 64);
    }
    assert!(h.d.tracker_stats().ended_evicted >= 1_000 - 64);
    h.finish();
}

#[test]
fn hole_found_at_flow_end_is_in_the_record() {
    // A hole never acknowledged is only found when the flow ends and the
    // reassembler is flushed. The driver reports it (a Gap event, counted in
    // `SessionCounters::gaps`); the flow's record must agree, as it does for
    // gaps found while the flow is live (`FlowTracker::note_gap`).
    let mut h = Harness::new();
    let conn = Conn::new(40008, 9998);
    conn.handshake(&mut h);
    let first = b"GET /a HTTP/1.1\r\n";
    h.feed(&conn.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, first));
    h.feed(&conn.c2s(C_ISN + 1 + 100, S_ISN + 1, PSH | ACK, b"tail"));
    h.finish();
    let hole = 100 - first.len() as u64;
    let gaps: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Gap { side, len } => Some((*side, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![(FlowSide::Initiator, hole)]);
    let (rec, _) = h.ended()[0];
    assert_eq!(rec.stats.initiator.missed_bytes, hole);
    assert!(rec.history.contains(b'G'), "{}", rec.history.as_str());
}

// ======================================================================
// Bytes held until a parser is chosen

/// What [`Pong`]'s parser was fed, one entry per call.
type Fed = (FlowSide, Vec<u8>, Timestamp);

/// A protocol only the responder's first bytes identify (`PONG`), so it
/// needs the second side's chunk to be recognised; its parser reports every
/// call as a message, so a test sees exactly what it was fed.
struct Pong;

struct PongParser;

impl flowscope_core::SessionParser for PongParser {
    type Message = AppMessage;
    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut flowscope_core::Emit<'_, AppMessage>,
    ) {
        let fed: Fed = (side, data.to_vec(), ts);
        out(SessionEvent::Message(AppMessage::Other(Box::new(fed))));
    }
}

impl flowscope_core::SessionParserFactory for Pong {
    type Parser = PongParser;
    fn name(&self) -> &'static str {
        "pong"
    }
    fn probe(
        &self,
        _ctx: &flowscope_core::ParserContext,
        side: FlowSide,
        data: &[u8],
    ) -> flowscope_core::Probe {
        use flowscope_core::Probe;
        match side {
            FlowSide::Initiator => Probe::NoMatch,
            FlowSide::Responder if data.starts_with(b"PONG") => Probe::Match,
            FlowSide::Responder if b"PONG".starts_with(data) => Probe::NeedMore,
            FlowSide::Responder => Probe::NoMatch,
        }
    }
    fn new_parser(&self, _ctx: &flowscope_core::ParserContext) -> PongParser {
        PongParser
    }
}

fn pong_harness(cfg: SessionConfig) -> Harness {
    let mut d = SessionDriver::new(cfg.clone());
    d.add_stream_parser(Pong);
    Harness {
        defrag: !cfg.no_defrag,
        d,
        log: Vec::new(),
        now: Timestamp::from_secs_nanos(1_000, 0),
    }
}

fn fed(h: &Harness) -> Vec<Fed> {
    h.msgs()
        .filter_map(|(_, m)| match m {
            AppMessage::Other(b) => b.downcast_ref::<Fed>().cloned(),
            _ => None,
        })
        .collect()
}

#[test]
fn chunks_before_the_parser_is_chosen_are_replayed_in_order() {
    let mut h = pong_harness(SessionConfig::default());
    let c = Conn::new(40000, 7000);
    c.handshake(&mut h);
    let t1 = h.feed(&c.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, b"PING one "));
    let t2 = h.feed(&c.c2s(C_ISN + 10, S_ISN + 1, PSH | ACK, b"PING two"));
    assert_eq!(h.d.held_bytes(), 17, "both client chunks held");
    let t3 = h.feed(&c.s2c(S_ISN + 1, C_ISN + 18, PSH | ACK, b"PONG!"));
    assert_eq!(h.d.held_bytes(), 0, "the hold is freed once replayed");
    c.close(&mut h, 17, 5);
    h.finish();
    // Every byte, in wire order, each chunk with its own capture time.
    assert_eq!(
        fed(&h),
        vec![
            (FlowSide::Initiator, b"PING one ".to_vec(), t1),
            (FlowSide::Initiator, b"PING two".to_vec(), t2),
            (FlowSide::Responder, b"PONG!".to_vec(), t3),
        ]
    );
    let sc = *h.d.session_counters();
    assert_eq!((sc.stream_parsers, sc.held_bytes_replayed), (1, 17));
    assert_eq!(sc.hold_overflows, 0);
    assert_eq!(h.ended()[0].1, Some("pong"));
}

#[test]
fn a_probe_run_across_chunks_is_fed_whole() {
    // "PO" then "NG": the probe asks for more, then matches on the two
    // chunks together; the parser gets both, not only the second.
    let mut h = pong_harness(SessionConfig::default());
    let c = Conn::new(40001, 7000);
    c.handshake(&mut h);
    let t1 = h.feed(&c.s2c(S_ISN + 1, C_ISN + 1, PSH | ACK, b"PO"));
    let t2 = h.feed(&c.s2c(S_ISN + 3, C_ISN + 1, PSH | ACK, b"NG"));
    c.close(&mut h, 0, 4);
    h.finish();
    assert_eq!(
        fed(&h),
        vec![
            (FlowSide::Responder, b"PO".to_vec(), t1),
            (FlowSide::Responder, b"NG".to_vec(), t2),
        ]
    );
    assert_eq!(h.d.session_counters().held_bytes_replayed, 2);
}

#[test]
fn hold_past_the_side_cap_is_given_up_and_counted() {
    let mut h = pong_harness(SessionConfig {
        hold_per_side: 8,
        ..SessionConfig::default()
    });
    let c = Conn::new(40002, 7000);
    c.handshake(&mut h);
    h.feed(&c.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, b"PING one ")); // 9 > 8
    assert_eq!(h.d.held_bytes(), 0);
    let t = h.feed(&c.s2c(S_ISN + 1, C_ISN + 10, PSH | ACK, b"PONG!"));
    c.close(&mut h, 9, 5);
    h.finish();
    // The parser starts without the client's bytes, as before holding.
    assert_eq!(fed(&h), vec![(FlowSide::Responder, b"PONG!".to_vec(), t)]);
    let sc = *h.d.session_counters();
    assert_eq!((sc.hold_overflows, sc.held_bytes_replayed), (1, 0));
}

#[test]
fn hold_past_the_global_budget_is_given_up_and_counted() {
    let mut h = pong_harness(SessionConfig {
        hold_total: 12,
        ..SessionConfig::default()
    });
    let (a, b) = (Conn::new(40003, 7000), Conn::new(40004, 7000));
    a.handshake(&mut h);
    b.handshake(&mut h);
    h.feed(&a.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, b"PING one "));
    assert_eq!(h.d.held_bytes(), 9);
    // 9 + 9 > 12: the second flow's side is given up.
    h.feed(&b.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, b"PING two "));
    assert_eq!(h.d.held_bytes(), 9);
    assert_eq!(h.d.session_counters().hold_overflows, 1);
    h.finish();
    // Flows that end unparsed give their hold back.
    assert_eq!(h.d.held_bytes(), 0);
}

// ======================================================================
// The global memory budget (SessionConfig::memory_budget)

fn budget_config(budget: usize) -> SessionConfig {
    SessionConfig {
        memory_budget: budget,
        ..SessionConfig::default()
    }
}

/// A driver with no parsers: only flows, reassembly, defragmentation.
fn bare_harness(cfg: SessionConfig) -> Harness {
    Harness {
        defrag: !cfg.no_defrag,
        d: SessionDriver::new(cfg),
        log: Vec::new(),
        now: Timestamp::from_secs_nanos(1_000, 0),
    }
}

/// `len` bytes of a client stream, `offset` bytes after its first.
fn client_seg(c: &Conn, offset: u32, payload: &[u8]) -> Vec<u8> {
    c.c2s(C_ISN + 1 + offset, S_ISN + 1, PSH | ACK, payload)
}

#[test]
fn memory_components_count_what_is_held_and_return_to_zero() {
    let mut h = Harness::new();
    let m0 = h.d.memory_stats();
    assert_eq!(m0.budget, super::DEFAULT_MEMORY_BUDGET);
    // 90 % of 256 MiB, rounded down.
    assert_eq!(m0.low_water, (256u64 << 20) as usize * 9 / 10);
    assert_eq!(m0.used, 0);

    // Flow 1: 3 000 bytes held out of order behind a 1-byte hole.
    let a = Conn::new(41000, 9000);
    a.handshake(&mut h);
    let one_flow = h.d.memory_stats().flows;
    assert!(one_flow > 0);
    h.feed(&client_seg(&a, 1, &[b'x'; 3000]));
    let m = h.d.memory_stats();
    assert_eq!(m.reassembly, 3000, "payload bytes held, exactly");
    assert_eq!(m.parsers, 0, "no parser chosen");

    // Flow 2: an HTTP head in progress; the parser buffers its 1 000 bytes.
    let b = Conn::new(41001, 80);
    b.handshake(&mut h);
    let m = h.d.memory_stats();
    assert_eq!(m.flows, 2 * one_flow, "linear in live flows");
    let mut head = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    head.resize(1000, b'a');
    h.feed(&client_seg(&b, 0, &head));
    let m = h.d.memory_stats();
    let http_size = std::mem::size_of::<crate::proto::http::HttpParser>();
    assert!(
        m.parsers >= http_size + 1000,
        "the parser's own size and its 1 000-byte head buffer: {m:?}"
    );
    assert_eq!(
        m.used,
        m.flows + m.reassembly + m.defrag + m.holds + m.parsers
    );
    assert!(m.peak >= m.used);
    h.finish();
    // Every flow ended: nothing is left accounted to flows, out-of-order
    // bytes or parsers (no drift in the deltas).
    let m = h.d.memory_stats();
    assert_eq!((m.flows, m.reassembly, m.parsers), (0, 0, 0), "{m:?}");
    assert_eq!(m.emergency_entries, 0);
    assert_eq!(m.shed_total(), 0);
}

#[test]
fn budget_sheds_oldest_datagram_first() {
    // Three first fragments of UDP datagrams that never complete. The
    // budget fits two and a half datagrams' buffers.
    let frag = |id: u16| {
        let dgram = udp(&V4_B, &V4_A, 7, 9999, &[0u8; 2000]);
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(V4_B, V4_A, 17, id, v4_frag_word(0, true), &dgram[..1000]),
        )
    };
    let mut probe = bare_harness(SessionConfig::default());
    probe.feed(&frag(1));
    let one = probe.d.memory_stats().defrag;
    assert!(one >= 1000, "at least the fragment's bytes: {one}");

    let mut h = bare_harness(budget_config(one * 5 / 2));
    h.feed(&frag(1));
    h.feed(&frag(2));
    assert_eq!(h.d.memory_stats().emergency_entries, 0);
    h.feed(&frag(3));
    let m = h.d.memory_stats();
    assert_eq!(m.emergency_entries, 1, "{m:?}");
    assert_eq!(m.shed_datagrams, 1, "{m:?}");
    assert!(m.used <= m.low_water && !m.in_emergency, "{m:?}");
    let ds = h.d.defrag_stats();
    assert_eq!((ds.shed, ds.datagrams_shed, ds.held_now), (1, 1, 2));
    assert_eq!(ds.fragments, ds.accounted());
    // Nothing past step 2 was needed.
    assert_eq!((m.shed_reassembly, m.shed_parsers, m.shed_flows), (0, 0, 0));
    // Datagram 1 was the one shed: datagram 3's second fragment completes
    // it, datagram 1's completes nothing.
    let tail = |id: u16| {
        let dgram = udp(&V4_B, &V4_A, 7, 9999, &[0u8; 2000]);
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(
                V4_B,
                V4_A,
                17,
                id,
                v4_frag_word(1000, false),
                &dgram[1000..],
            ),
        )
    };
    h.feed(&tail(3));
    assert_eq!(h.d.defrag_stats().datagrams_completed, 1);
    h.feed(&tail(1));
    assert_eq!(h.d.defrag_stats().datagrams_completed, 1);
    h.advance(Duration::from_secs(60));
    h.finish();
}

#[test]
fn budget_turns_held_out_of_order_bytes_into_gaps() {
    // Two flows each hold 2 000 bytes behind a 1-byte hole; the budget
    // passes with the second one's. Shedding delivers the first flow's
    // held bytes (no parser here) after a 1-byte gap; nothing else is shed.
    let (a, b) = (Conn::new(41010, 9000), Conn::new(41011, 9000));
    let run = |h: &mut Harness| {
        a.handshake(h);
        b.handshake(h);
        h.feed(&client_seg(&a, 1, &[b'a'; 2000]));
    };
    let mut probe = bare_harness(SessionConfig::default());
    run(&mut probe);
    let base = probe.d.memory_stats().used;
    assert_eq!(probe.d.memory_stats().reassembly, 2000);

    let mut h = bare_harness(budget_config(base + 1000));
    run(&mut h);
    assert!(h.log.iter().all(|e| !matches!(e, Ev::Gap { .. })));
    h.feed(&client_seg(&b, 1, &[b'b'; 2000]));
    let m = h.d.memory_stats();
    assert_eq!((m.emergency_entries, m.shed_reassembly), (1, 1), "{m:?}");
    assert_eq!(m.reassembly, 2000, "one flow's bytes are still held");
    assert!(m.used <= m.low_water, "{m:?}");
    assert_eq!((m.shed_holds, m.shed_parsers, m.shed_flows), (0, 0, 0));
    let gaps: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Gap { side, len } => Some((*side, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![(FlowSide::Initiator, 1)]);
    h.finish();
    // The hole is in one flow's record, as a gap found by reassembly is.
    let missed: Vec<u64> = h
        .ended()
        .iter()
        .map(|(r, _)| r.stats.initiator.missed_bytes)
        .collect();
    assert!(missed.contains(&1), "{missed:?}");
}

#[test]
fn budget_drops_bytes_held_for_a_parser_not_chosen_yet() {
    // The client's "PING" chunk is held until the server's reply decides;
    // the budget passes while it is held, and no earlier step frees enough.
    let c = Conn::new(41020, 7000);
    let mut probe = pong_harness(SessionConfig::default());
    c.handshake(&mut probe);
    let base = probe.d.memory_stats().used;

    let mut h = pong_harness(budget_config(base + 100));
    c.handshake(&mut h);
    h.feed(&c.c2s(C_ISN + 1, S_ISN + 1, PSH | ACK, &[b'P'; 400]));
    let m = h.d.memory_stats();
    assert_eq!((m.emergency_entries, m.shed_holds), (1, 1), "{m:?}");
    assert_eq!(h.d.held_bytes(), 0);
    assert_eq!((m.shed_parsers, m.shed_flows), (0, 0), "{m:?}");
    let t = h.feed(&c.s2c(S_ISN + 1, C_ISN + 401, PSH | ACK, b"PONG!"));
    // The parser starts without the client's dropped bytes.
    assert_eq!(fed(&h), vec![(FlowSide::Responder, b"PONG!".to_vec(), t)]);
    h.finish();
}

#[test]
fn budget_gives_up_the_largest_parser_first() {
    // Two HTTP heads in progress: 200 bytes on flow a, then 6 000 on flow
    // b. The budget passes with b's; b's parser (the largest) is given up,
    // a's goes on and still parses its request.
    let (a, b) = (Conn::new(41030, 80), Conn::new(41031, 80));
    let head = |n: usize| {
        let mut v = b"GET /a HTTP/1.1\r\nX-Long: ".to_vec();
        v.resize(n, b'a');
        v
    };
    let setup = |h: &mut Harness| {
        a.handshake(h);
        b.handshake(h);
        h.feed(&client_seg(&a, 0, &head(200)));
    };
    let mut probe = Harness::new();
    setup(&mut probe);
    let base = probe.d.memory_stats().used;

    let mut h = Harness::with_config(budget_config(base + 3000));
    setup(&mut h);
    h.feed(&client_seg(&b, 0, &head(6000)));
    let m = h.d.memory_stats();
    assert_eq!((m.emergency_entries, m.shed_parsers), (1, 1), "{m:?}");
    assert_eq!(m.shed_flows, 0, "{m:?}");
    assert!(m.used <= m.low_water, "{m:?}");
    assert_eq!(
        h.anomalies()
            .iter()
            .filter(|c| **c == super::PARSER_SHED.code)
            .count(),
        1
    );
    // Flow a's parser is intact: its head completes into a transaction.
    h.feed(&client_seg(&a, 200, b"\r\n\r\n"));
    h.feed(&a.s2c(
        S_ISN + 1,
        C_ISN + 205,
        PSH | ACK,
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ));
    let txs = h.http();
    assert_eq!(txs.len(), 1, "{:?}", h.log);
    assert_eq!(txs[0].request.as_ref().unwrap().uri, "/a");
    h.finish();
    // Both flows still carry "http" in their records.
    assert!(h.ended().iter().all(|(_, p)| *p == Some("http")));
}

#[test]
fn budget_evicts_the_longest_idle_flows_first() {
    // UDP flows with no parser: only flow memory, so only step 6 helps.
    // The budget holds ten flows; twenty arrive.
    let flow = |port: u16| {
        eth_ab(
            0x0800,
            &ipv4(V4_A, V4_B, 17, &udp(&V4_A, &V4_B, port, 9999, b"x")),
        )
    };
    let mut probe = bare_harness(SessionConfig::default());
    probe.feed(&flow(1));
    let one = probe.d.memory_stats().flows;

    let budget = 10 * one;
    let mut h = bare_harness(budget_config(budget));
    for p in 1..=20u16 {
        h.feed(&flow(p));
        let m = h.d.memory_stats();
        assert!(m.used <= budget, "{m:?}");
    }
    let m = h.d.memory_stats();
    let t = h.d.tracker_stats();
    assert!(m.shed_flows >= 10, "{m:?}");
    assert_eq!(t.ended_evicted, m.shed_flows);
    assert!(m.emergency_entries >= 1);
    // Idle the longest first: the flows still live are the newest.
    let evicted_ports: Vec<u16> = h.ended().iter().map(|(r, _)| r.key.lo_port).collect();
    let n = evicted_ports.len() as u16;
    assert_eq!(evicted_ports, (1..=n).collect::<Vec<_>>());
    h.finish();
}
