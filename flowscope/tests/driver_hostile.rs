//! Hostile input through the whole [`SessionDriver`]: valid TCP, UDP and
//! fragment frames, mutated (bytes flipped, frames cut, sequence and
//! acknowledgment numbers and flags rewritten, fragments made to overlap)
//! and mixed with random bytes, under small caps.
//!
//! Whatever the input: no panic, every packet accounted for, session state
//! bounded by the flow table, and the reassembly and defragmentation
//! counters add up.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

// The extractor tests' frame builder; only part of it is used here.
#[allow(dead_code)]
#[path = "../src/extract/tests/build.rs"]
mod build;

use std::time::Duration;

use build::*;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::proto::AppMessage;
use flowscope_core::{FlowEvent, L4Proto, LinkType, PacketView, SessionEvent, Timestamp};
use proptest::prelude::*;

const MAX_FLOWS: usize = 8;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Ethernet + IPv4 + TCP; `c2s` picks the direction A→B or B→A.
fn tcp4(c2s: bool, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, p: &[u8]) -> Vec<u8> {
    let (s, d) = if c2s { (V4_A, V4_B) } else { (V4_B, V4_A) };
    let (sp, dp) = if c2s { (sport, dport) } else { (dport, sport) };
    let t = tcp_opts(&s, &d, sp, dp, seq, ack, flags, 65535, &[], p);
    eth_ab(0x0800, &ipv4(s, d, 6, &t))
}

fn udp4(c2s: bool, cport: u16, sport: u16, p: &[u8]) -> Vec<u8> {
    let (s, d) = if c2s { (V4_A, V4_B) } else { (V4_B, V4_A) };
    let (sp, dp) = if c2s { (cport, sport) } else { (sport, cport) };
    eth_ab(0x0800, &ipv4(s, d, 17, &udp(&s, &d, sp, dp, p)))
}

fn dns_query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m
}

fn dns_response(id: u16, answers: u8) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, answers, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    for i in 0..answers {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, i]);
    }
    m
}

fn client_hello() -> Vec<u8> {
    let sni = b"hostile.example";
    let mut ext = vec![0, 0, 0, sni.len() as u8 + 5, 0, sni.len() as u8 + 3, 0, 0];
    ext.push(sni.len() as u8);
    ext.extend_from_slice(sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Valid frames of a few conversations: the material mutations start from.
fn corpus() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    // HTTP on 8080, client ISN 100, server ISN 900.
    let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    let rl = req.len() as u32;
    v.push(tcp4(true, 40000, 8080, 100, 0, SYN, &[]));
    v.push(tcp4(false, 40000, 8080, 900, 101, SYN | ACK, &[]));
    v.push(tcp4(true, 40000, 8080, 101, 901, ACK, &[]));
    v.push(tcp4(true, 40000, 8080, 101, 901, PSH | ACK, &req[..7]));
    v.push(tcp4(true, 40000, 8080, 108, 901, PSH | ACK, &req[7..]));
    v.push(tcp4(false, 40000, 8080, 901, 101 + rl, PSH | ACK, resp));
    v.push(tcp4(true, 40000, 8080, 101 + rl, 950, FIN | ACK, &[]));
    v.push(tcp4(false, 40000, 8080, 901, 101, RST, &[]));
    // TLS ClientHello in two pieces on 443.
    let ch = client_hello();
    v.push(tcp4(true, 40001, 443, 5001, 1, PSH | ACK, &ch[..4]));
    v.push(tcp4(true, 40001, 443, 5005, 1, PSH | ACK, &ch[4..]));
    // DNS over TCP, two messages in one segment.
    let mut two = Vec::new();
    for id in [1u16, 2] {
        let q = dns_query(id);
        two.extend_from_slice(&(q.len() as u16).to_be_bytes());
        two.extend_from_slice(&q);
    }
    v.push(tcp4(true, 40002, 53, 1, 1, PSH | ACK, &two));
    // DNS over UDP.
    v.push(udp4(true, 40003, 53, &dns_query(9)));
    v.push(udp4(false, 40003, 53, &dns_response(9, 2)));
    // A DNS response in two IPv4 fragments.
    let dgram = udp(&V4_B, &V4_A, 53, 40003, &dns_response(9, 40));
    let (f1, f2) = dgram.split_at(256);
    v.push(eth_ab(0x0800, &ipv4_frag(V4_B, V4_A, 17, 77, 0x2000, f1)));
    v.push(eth_ab(0x0800, &ipv4_frag(V4_B, V4_A, 17, 77, 256 / 8, f2)));
    // The same in two IPv6 fragments.
    let dgram6 = udp(&V6_B, &V6_A, 53, 40004, &dns_response(3, 40));
    let (g1, g2) = dgram6.split_at(256);
    for (off, more, chunk) in [(0u16, 1u16, g1), (256, 0, g2)] {
        let mut fh = vec![17, 0];
        fh.extend_from_slice(&(off | more).to_be_bytes());
        fh.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        fh.extend_from_slice(chunk);
        v.push(eth_ab(0x86dd, &ipv6(V6_B, V6_A, 44, &fh)));
    }
    v
}

/// What is done to one corpus frame.
#[derive(Clone, Debug)]
enum Mutation {
    Keep,
    /// Overwrite the byte at `at % len` with `value`.
    Byte {
        at: usize,
        value: u8,
    },
    /// Keep only the first `len % frame_len` bytes.
    Truncate {
        len: usize,
    },
    /// Rewrite the TCP sequence number (IPv4 frames).
    Seq(u32),
    /// Rewrite the TCP acknowledgment number.
    Ack(u32),
    /// Rewrite the TCP flags.
    Flags(u8),
    /// Append random bytes.
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => Just(Mutation::Keep),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        1 => any::<u32>().prop_map(Mutation::Seq),
        1 => any::<u32>().prop_map(Mutation::Ack),
        1 => any::<u8>().prop_map(Mutation::Flags),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Extend),
    ]
}

/// Ethernet 14 + IPv4 20: where the TCP header starts in corpus frames.
const TCP_AT: usize = 34;

fn apply(frame: &[u8], m: &Mutation) -> Vec<u8> {
    let mut f = frame.to_vec();
    let is_tcp4 = f.get(23) == Some(&6) && f.get(12..14) == Some(&[0x08, 0x00]);
    match m {
        Mutation::Keep => {}
        Mutation::Byte { at, value } => {
            let n = f.len();
            if let Some(b) = f.get_mut(at % n.max(1)) {
                *b = *value;
            }
        }
        Mutation::Truncate { len } => f.truncate(len % f.len().max(1)),
        Mutation::Seq(s) if is_tcp4 => f[TCP_AT + 4..TCP_AT + 8].copy_from_slice(&s.to_be_bytes()),
        Mutation::Ack(a) if is_tcp4 => f[TCP_AT + 8..TCP_AT + 12].copy_from_slice(&a.to_be_bytes()),
        Mutation::Flags(x) if is_tcp4 => f[TCP_AT + 13] = *x,
        Mutation::Extend(tail) => f.extend_from_slice(tail),
        _ => {}
    }
    f
}

/// A fragment of one fixed 600-byte UDP datagram (A→B, IPv4 id 0x5151):
/// random offset, length and MF, so fragments overlap, repeat and leave
/// holes.
fn overlapping_fragment() -> impl Strategy<Value = Vec<u8>> {
    (0usize..80, 1usize..40, any::<bool>()).prop_map(|(off8, len8, more)| {
        let dgram = udp(&V4_A, &V4_B, 40005, 53, &dns_response(5, 36));
        let start = (off8 * 8).min(dgram.len());
        let end = (start + len8 * 8).min(dgram.len());
        let word = (start / 8) as u16 | if more { 0x2000 } else { 0 };
        eth_ab(
            0x0800,
            &ipv4_frag(V4_A, V4_B, 17, 0x5151, word, &dgram[start..end]),
        )
    })
}

/// One input frame: a (possibly mutated) corpus frame, an overlapping
/// fragment, or random bytes; with the time that passes before it.
#[derive(Clone, Debug)]
enum Input {
    Corpus(usize, Mutation),
    Fragment(Vec<u8>),
    Random(Vec<u8>, bool),
}

fn input() -> impl Strategy<Value = (Input, u64)> {
    let frame = prop_oneof![
        6 => (any::<usize>(), mutation()).prop_map(|(i, m)| Input::Corpus(i, m)),
        2 => overlapping_fragment().prop_map(Input::Fragment),
        1 => (prop::collection::vec(any::<u8>(), 0..128), any::<bool>())
            .prop_map(|(b, raw)| Input::Random(b, raw)),
    ];
    // Mostly a millisecond, sometimes long enough for timeouts to fire.
    let gap_ms = prop_oneof![8 => 0u64..5, 1 => 1_000u64..120_000];
    (frame, gap_ms)
}

fn small_config(verify: bool, no_defrag: bool) -> SessionConfig {
    let mut cfg = SessionConfig::default();
    cfg.track.max_flows = MAX_FLOWS;
    cfg.extract.verify_checksums = verify;
    cfg.no_defrag = no_defrag;
    cfg.reassembly = cfg
        .reassembly
        .with_max_held_per_side(512)
        .with_max_held_segments_per_side(4)
        .with_max_held_total(2048)
        .with_window(4096);
    cfg.defrag.max_datagrams = 2;
    cfg.defrag.max_memory = 4096;
    cfg.defrag.max_datagram_len = 2000;
    cfg
}

/// What the sink saw.
#[derive(Default)]
struct Seen {
    messages: u64,
    gaps: u64,
    anomalies: u64,
    tcp_payload_ended: u64,
    ended: u64,
}

fn observe(seen: &mut Seen, ev: DriverEvent<'_, AppMessage>) {
    match ev {
        DriverEvent::Session { event, .. } => match event {
            SessionEvent::Message(_) => seen.messages += 1,
            SessionEvent::Gap { .. } => seen.gaps += 1,
            SessionEvent::Anomaly { .. } => seen.anomalies += 1,
            _ => {}
        },
        DriverEvent::Flow {
            event: FlowEvent::Ended(rec),
            ..
        } => {
            seen.ended += 1;
            if rec.l4 == L4Proto::Tcp {
                seen.tcp_payload_ended +=
                    rec.stats.initiator.payload_bytes + rec.stats.responder.payload_bytes;
            }
        }
        _ => {}
    }
}

fn run(inputs: &[(Input, u64)], verify: bool, no_defrag: bool) -> Result<(), TestCaseError> {
    let corpus = corpus();
    let mut d = SessionDriver::with_default_parsers(small_config(verify, no_defrag));
    let mut seen = Seen::default();
    let mut now = Timestamp::from_secs_nanos(1_700_000_000, 0);
    for (inp, gap_ms) in inputs {
        now = now.saturating_add(Duration::from_millis(*gap_ms));
        let (frame, link) = match inp {
            Input::Corpus(i, m) => (apply(&corpus[i % corpus.len()], m), LinkType::ETHERNET),
            Input::Fragment(f) => (f.clone(), LinkType::ETHERNET),
            Input::Random(b, raw) => (
                b.clone(),
                if *raw {
                    LinkType::RAW
                } else {
                    LinkType::ETHERNET
                },
            ),
        };
        d.process(&PacketView::new(&frame, now, link), &mut |ev| {
            observe(&mut seen, ev)
        });
        let c = d.counters();
        prop_assert!(c.is_balanced(), "{c:?}");
        prop_assert!(d.active_sessions() <= MAX_FLOWS);
        let ds = d.defrag_stats();
        prop_assert_eq!(ds.fragments, ds.accounted(), "{:?}", ds);
        prop_assert!(ds.datagrams_held_now <= 2, "{:?}", ds);
        prop_assert!(ds.memory_reserved <= 4096, "{:?}", ds);
    }
    d.finish(&mut |ev| observe(&mut seen, ev));

    let c = *d.counters();
    let sc = *d.session_counters();
    let ds = d.defrag_stats();
    let rs = *d.reassembly_stats();
    let ts = d.tracker_stats();
    prop_assert!(c.is_balanced(), "{c:?}");
    prop_assert_eq!(d.active_sessions(), 0);
    prop_assert_eq!(ts.active, 0);
    // Every tracked frame and rebuilt datagram is one tracker packet.
    prop_assert_eq!(ts.packets, c.tracked + sc.datagrams_reassembled);
    prop_assert_eq!(ts.flows_created, seen.ended);
    // Defragmentation: every fragment counted by the driver was pushed, and
    // every completed datagram was either tracked or rejected.
    prop_assert_eq!(ds.fragments, ds.accounted());
    if no_defrag {
        prop_assert_eq!(ds.fragments, 0);
        prop_assert_eq!(sc.datagrams_reassembled + sc.reassembled_malformed, 0);
    } else {
        prop_assert_eq!(ds.fragments, c.fragments);
        prop_assert_eq!(
            ds.datagrams_completed,
            sc.datagrams_reassembled + sc.reassembled_malformed
        );
    }
    // Reassembly: the driver's gap events are reassembly's (parsers emit
    // none), and no more bytes come out than went in.
    prop_assert_eq!(sc.gaps, rs.gaps, "{:?} {:?}", sc, rs);
    prop_assert_eq!(sc.gaps, seen.gaps);
    prop_assert!(rs.in_order_segments + rs.out_of_order_segments <= rs.segments);
    prop_assert!(
        rs.bytes_delivered <= seen.tcp_payload_ended,
        "{:?} vs {}",
        rs,
        seen.tcp_payload_ended
    );
    prop_assert_eq!(sc.messages, seen.messages);
    prop_assert_eq!(sc.anomalies, seen.anomalies);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_traffic_keeps_accounting(
        inputs in prop::collection::vec(input(), 1..80),
        verify in any::<bool>(),
    ) {
        run(&inputs, verify, false)?;
    }

    #[test]
    fn mutated_traffic_without_defrag(inputs in prop::collection::vec(input(), 1..60)) {
        run(&inputs, false, true)?;
    }

    #[test]
    fn overlapping_fragments_only(frags in prop::collection::vec(overlapping_fragment(), 1..40)) {
        let inputs: Vec<_> = frags.into_iter().map(|f| (Input::Fragment(f), 1)).collect();
        run(&inputs, false, false)?;
    }

    #[test]
    fn unmutated_corpus_in_any_order(order in prop::collection::vec(any::<usize>(), 1..60)) {
        let inputs: Vec<_> = order
            .into_iter()
            .map(|i| (Input::Corpus(i, Mutation::Keep), 1))
            .collect();
        run(&inputs, true, false)?;
    }
}

/// The whole corpus in order, unmutated: the parsers find what was built.
#[test]
fn corpus_in_order_is_parsed() {
    let mut d = SessionDriver::with_default_parsers(small_config(true, false));
    let mut seen = Seen::default();
    let mut now = Timestamp::from_secs_nanos(1_700_000_000, 0);
    for f in corpus() {
        now = now.saturating_add(Duration::from_millis(1));
        d.process(&PacketView::new(&f, now, LinkType::ETHERNET), &mut |ev| {
            observe(&mut seen, ev)
        });
    }
    d.finish(&mut |ev| observe(&mut seen, ev));
    let sc = *d.session_counters();
    // HTTP: one transaction; TLS: one ClientHello; DNS/TCP: two queries;
    // DNS/UDP: query, response, and the v4-rebuilt response. The v6 one
    // answers no query of its flow but is still a message.
    assert_eq!(sc.messages, 1 + 1 + 2 + 3 + 1, "{sc:?}");
    assert_eq!(sc.datagrams_reassembled, 2, "{sc:?}");
    assert!(d.counters().is_balanced());
    assert_eq!(d.counters().fragments, 4);
}
