//! Hand-built messages (RFC 1035 §4.1 layouts) and hostile variants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use flowscope_core::{
    DatagramParser, DatagramParserFactory, FlowSide, L4Proto, ParserContext, Probe, SessionEvent,
    SessionParser, SessionParserFactory, Timestamp,
};

use super::*;

const I: FlowSide = FlowSide::Initiator;
const R: FlowSide = FlowSide::Responder;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

/// Header: id, flags, counts.
fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [id, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

/// Uncompressed wire name from dotted ASCII.
fn wname(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

fn rr(name: &[u8], t: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut v = name.to_vec();
    v.extend_from_slice(&t.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&ttl.to_be_bytes());
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = header(id, 0x0100, 1, 0, 0, 0);
    m.extend(wname(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// Runs datagrams through one UDP parser; returns messages and anomaly codes.
fn udp(dgrams: &[(FlowSide, &[u8])]) -> (Vec<DnsMessage>, Vec<&'static str>, DnsStats) {
    udp_with(DnsConfig::default(), dgrams)
}

fn udp_with(
    cfg: DnsConfig,
    dgrams: &[(FlowSide, &[u8])],
) -> (Vec<DnsMessage>, Vec<&'static str>, DnsStats) {
    let f = DnsDatagramFactory::new(cfg);
    let mut p = f.new_parser(&ParserContext::new(L4Proto::Udp, 40000, 53));
    let (mut ms, mut an) = (Vec::new(), Vec::new());
    let mut out = |e: SessionEvent<DnsMessage>| match e {
        SessionEvent::Message(m) => ms.push(m),
        SessionEvent::Anomaly { anomaly, .. } => an.push(anomaly.code),
        _ => {}
    };
    for (i, (side, d)) in dgrams.iter().enumerate() {
        p.on_datagram(*side, d, ts(i as u64 + 1), &mut out);
    }
    p.on_close(ts(1000), &mut out);
    (ms, an, p.stats())
}

fn one(msg: &[u8]) -> DnsMessage {
    let (mut ms, _, _) = udp(&[(I, msg)]);
    assert_eq!(ms.len(), 1);
    ms.remove(0)
}

#[test]
fn query_header_and_question() {
    // id 0x1234, RD set (0x0100), one question www.example.com A IN.
    let m = one(&query(0x1234, "www.example.com", 1));
    assert_eq!(m.id, 0x1234);
    assert!(!m.is_response);
    assert_eq!((m.opcode, m.rcode), (0, 0));
    assert!(m.flags.rd && !m.flags.aa && !m.flags.z);
    assert_eq!(m.counts.questions, 1);
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].name, "www.example.com");
    assert_eq!((m.questions[0].qtype, m.questions[0].qclass), (1, 1));
    assert_eq!(m.malformed, None);
    assert_eq!(m.flags_word(), 0x0100);
    assert_eq!(
        usize::from(m.len),
        query(0x1234, "www.example.com", 1).len()
    );
}

#[test]
fn response_with_compression_and_every_rdata_kind() {
    // Question at offset 12: "example.com" (13 bytes), pointer 0xC00C to it.
    let ptr = [0xc0, 0x0c];
    let mut m = header(7, 0x8180, 1, 10, 0, 1);
    m.extend(wname("example.com"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend(rr(&ptr, 1, 60, &[192, 0, 2, 1]));
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    m.extend(rr(&ptr, 28, 60, &v6.octets()));
    // CNAME "www" + pointer to example.com.
    m.extend(rr(&ptr, 5, 60, &[3, b'w', b'w', b'w', 0xc0, 0x0c]));
    m.extend(rr(&ptr, 15, 60, &[0, 10, 2, b'm', b'x', 0xc0, 0x0c]));
    m.extend(rr(&ptr, 16, 60, &[2, b'h', b'i', 0, 3, b'a', b'\\', 0xff]));
    let mut soa = vec![2, b'n', b's', 0xc0, 0x0c, 1, b'h', 0xc0, 0x0c];
    for n in [2024u32, 3600, 600, 86400, 300] {
        soa.extend_from_slice(&n.to_be_bytes());
    }
    m.extend(rr(&ptr, 6, 60, &soa));
    m.extend(rr(&ptr, 33, 60, &[0, 1, 0, 2, 0x13, 0xc4, 0xc0, 0x0c]));
    // HTTPS: priority 1, target root, one param (alpn h2) left undecoded.
    m.extend(rr(&ptr, 65, 60, &[0, 1, 0, 0, 1, 0, 3, 2, b'h', b'2']));
    m.extend(rr(&ptr, 12, 60, &[0xc0, 0x0c]));
    m.extend(rr(&ptr, 99, 60, &[1, 2, 3]));
    // OPT: root owner, class = 1232 (UDP size), one option code 10 (cookie).
    let mut opt = vec![0, 0, 41];
    opt.extend_from_slice(&1232u16.to_be_bytes());
    opt.extend_from_slice(&[0, 0, 0, 0, 0, 6, 0, 10, 0, 2, 0xab, 0xcd]);
    m.extend(opt);

    let d = one(&m);
    assert_eq!(d.malformed, None);
    assert!(d.is_response && d.flags.rd && d.flags.ra);
    let data: Vec<&DnsRdata> = d.answers.iter().map(|r| &r.data).collect();
    assert!(d
        .answers
        .iter()
        .all(|r| r.name == "example.com" && r.ttl == 60));
    assert_eq!(data[0], &DnsRdata::A(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(data[1], &DnsRdata::Aaaa(v6));
    assert_eq!(data[2], &DnsRdata::Cname("www.example.com".into()));
    assert_eq!(
        data[3],
        &DnsRdata::Mx {
            preference: 10,
            exchange: "mx.example.com".into()
        }
    );
    assert_eq!(
        data[4],
        &DnsRdata::Txt(vec![b"hi".to_vec(), vec![], b"a\\\xff".to_vec()])
    );
    let DnsRdata::Soa(s) = data[5] else {
        panic!("not SOA: {:?}", data[5])
    };
    assert_eq!(
        (s.mname.as_str(), s.rname.as_str()),
        ("ns.example.com", "h.example.com")
    );
    assert_eq!(
        (s.serial, s.refresh, s.retry, s.expire, s.minimum),
        (2024, 3600, 600, 86400, 300)
    );
    assert_eq!(
        data[6],
        &DnsRdata::Srv {
            priority: 1,
            weight: 2,
            port: 5060,
            target: "example.com".into()
        }
    );
    assert_eq!(
        data[7],
        &DnsRdata::Svcb {
            rtype: 65,
            priority: 1,
            target: ROOT_NAME.into(),
            params_len: 7
        }
    );
    assert_eq!(data[8], &DnsRdata::Ptr("example.com".into()));
    assert_eq!(data[9], &DnsRdata::Other { rtype: 99, len: 3 });
    let o = &d.additionals[0];
    assert_eq!((o.name.as_str(), o.rtype, o.rclass), (ROOT_NAME, 41, 1232));
    let DnsRdata::Opt(opts) = &o.data else {
        panic!("not OPT")
    };
    assert_eq!(
        (opts[0].code, opts[0].data.as_slice()),
        (10, &[0xab, 0xcd][..])
    );
}

#[test]
fn names_are_escaped_presentation_format() {
    // RFC 1035 §5.1: "\." for a dot inside a label, "\DDD" for other bytes.
    let mut m = header(1, 0, 1, 0, 0, 0);
    m.extend_from_slice(&[
        3, b'a', b'.', b'b', 3, 0xff, b' ', b'\\', 3, b'c', b'o', b'm', 0,
    ]);
    m.extend_from_slice(&[0, 1, 0, 1]);
    assert_eq!(one(&m).questions[0].name, "a\\.b.\\255\\032\\\\.com");
    // The root alone.
    let mut m = header(1, 0, 1, 0, 0, 0);
    m.extend_from_slice(&[0, 0, 2, 0, 1]);
    assert_eq!(one(&m).questions[0].name, ROOT_NAME);
}

/// A message whose question name is `name`, then QTYPE/QCLASS.
fn with_qname(name: &[u8]) -> Vec<u8> {
    let mut m = header(9, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

fn malformed(msg: &[u8]) -> (DnsMessage, Vec<&'static str>) {
    let (mut ms, an, st) = udp(&[(I, msg)]);
    assert_eq!(ms.len(), 1, "the header is always kept");
    // A query also leaves an unanswered-query report at close.
    assert_eq!(an.first(), Some(&"dns.malformed"));
    assert_eq!(an.iter().filter(|a| **a == "dns.malformed").count(), 1);
    assert_eq!(st.malformed, 1);
    (ms.remove(0), an)
}

#[test]
fn pointer_to_itself_is_a_loop() {
    let (m, _) = malformed(&with_qname(&[0xc0, 0x0c]));
    assert_eq!(m.malformed, Some(DnsError::CompressionLoop));
    assert_eq!(m.id, 9);
    // The name ends after its first pointer (RFC 1035 §4.1.4), so QTYPE and
    // QCLASS are the four bytes after it; the name itself is lost.
    let q = &m.questions[0];
    assert_eq!(q.name_fault, Some(DnsError::CompressionLoop));
    assert_eq!((q.name.as_str(), q.qtype, q.qclass), ("", 1, 1));
}

#[test]
fn nothing_is_decoded_after_a_broken_question_name() {
    // Two questions, the first looping, then an answer: the first
    // question's type is kept, the rest is not read.
    let mut m = header(9, 0x8100, 2, 1, 0, 0);
    m.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1]);
    m.extend(wname("a.b"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend(rr(&[0xc0, 0x12], 1, 5, &[1, 2, 3, 4]));
    let (m, _) = malformed(&m);
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].qtype, 28);
    assert!(m.answers.is_empty());
    assert_eq!(m.counts.answers, 1);
}

#[test]
fn two_pointers_pointing_at_each_other_loop() {
    // Offset 12: pointer to 14; offset 14: pointer to 12.
    let (m, _) = malformed(&with_qname(&[0xc0, 0x0e, 0xc0, 0x0c]));
    assert_eq!(m.malformed, Some(DnsError::CompressionLoop));
}

#[test]
fn label_then_pointer_back_grows_until_too_long() {
    // "a" then a pointer back to itself: each turn adds 2 wire bytes.
    let (m, _) = malformed(&with_qname(&[1, b'a', 0xc0, 0x0c]));
    assert_eq!(m.malformed, Some(DnsError::NameTooLong));
    // In place the name is "a" and a pointer: QTYPE follows the pointer.
    assert_eq!(m.questions[0].qtype, 1);
    assert!(m.questions[0].name.starts_with("a.a.a"));
}

#[test]
fn pointer_past_the_end_and_truncated_names() {
    let (m, _) = malformed(&with_qname(&[0xc0, 0xff]));
    assert_eq!(m.malformed, Some(DnsError::Truncated));
    // A label running past the end of the message.
    let mut m = header(9, 0, 1, 0, 0, 0);
    m.extend_from_slice(&[10, b'a', b'b']);
    assert_eq!(malformed(&m).0.malformed, Some(DnsError::Truncated));
    // A pointer cut after its first byte.
    let mut m = header(9, 0, 1, 0, 0, 0);
    m.push(0xc0);
    assert_eq!(malformed(&m).0.malformed, Some(DnsError::Truncated));
}

#[test]
fn forward_pointers_are_followed() {
    // Question name = pointer to offset 18, where "abc" sits after QTYPE/QCLASS.
    let mut m = header(9, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1]);
    m.extend(wname("abc"));
    let d = one(&m);
    assert_eq!(d.questions[0].name, "abc");
    // The bytes after the question are not part of any section.
    assert_eq!(d.malformed, Some(DnsError::TrailingBytes));
}

#[test]
fn label_types_01_and_10_are_rejected() {
    // "abc", a label byte of type 01 or 10, then 00 1c 00 01.
    for t in [0x40u8, 0x41, 0x42, 0x7f, 0x80, 0xbf] {
        let mut m = header(9, 0x0100, 1, 0, 0, 0);
        m.extend_from_slice(&[3, b'a', b'b', b'c', t, 0, 28, 0, 1]);
        let (m, _) = malformed(&m);
        assert_eq!(m.malformed, Some(DnsError::BadLabelType), "{t:#x}");
        if t < 0x80 && t != 0x41 {
            // Extended label types have no known length: the name ends at
            // that byte and QTYPE is the next two bytes, as Wireshark reads it
            // (`expand_dns_name` returns the offset past the label byte).
            let q = &m.questions[0];
            assert_eq!(q.name_fault, Some(DnsError::BadLabelType));
            assert_eq!((q.name.as_str(), q.qtype, q.qclass), ("abc", 28, 1));
        } else {
            // Type 10 is reserved with no layout at all, and 0x41 (RFC 2673
            // bit-string) has data after it: the name cannot end there, so
            // there is no question.
            assert!(m.questions.is_empty(), "{t:#x}");
        }
    }
    // An extended label as the name's first byte would make a one-byte
    // name that is not the root: no question either.
    let mut m = header(9, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0x70, 0, 28, 0, 1]);
    let (m, _) = malformed(&m);
    assert_eq!(m.malformed, Some(DnsError::BadLabelType));
    assert!(m.questions.is_empty());
    // After a pointer the name's end is known: the question is kept.
    let mut m = header(9, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0xc0, 18, 0, 28, 0, 1, 1, b'x', 0x70]);
    let (m, _) = malformed(&m);
    assert_eq!(m.questions[0].qtype, 28);
    assert_eq!(m.questions[0].name, "x");
    assert_eq!(m.questions[0].name_fault, Some(DnsError::BadLabelType));
}

#[test]
fn names_over_255_bytes_are_rejected() {
    // Four 63-byte labels = 4 * 64 + 1 = 257 wire bytes (limit 255).
    let mut n = Vec::new();
    for _ in 0..4 {
        n.push(63);
        n.extend_from_slice(&[b'x'; 63]);
    }
    n.push(0);
    let (m, _) = malformed(&with_qname(&n));
    assert_eq!(m.malformed, Some(DnsError::NameTooLong));
    // Its labels still end at the root byte: QTYPE/QCLASS follow it.
    let q = &m.questions[0];
    assert_eq!(q.name_fault, Some(DnsError::NameTooLong));
    assert_eq!((q.qtype, q.qclass), (1, 1));
    assert!(q.name.len() < 255);
    // Three 63-byte labels and one of 61 = exactly 255: accepted.
    let mut n = Vec::new();
    for len in [63usize, 63, 63, 61] {
        n.push(len as u8);
        n.extend(std::iter::repeat_n(b'y', len));
    }
    n.push(0);
    assert_eq!(one(&with_qname(&n)).malformed, None);
}

#[test]
fn truncated_rdata_keeps_earlier_records() {
    let mut m = header(3, 0x8180, 0, 2, 0, 0);
    m.extend(rr(&wname("a"), 1, 5, &[10, 0, 0, 1]));
    let mut bad = rr(&wname("b"), 1, 5, &[10, 0, 0, 2]);
    bad.truncate(bad.len() - 2);
    m.extend(bad);
    let (d, _) = malformed(&m);
    assert_eq!(d.malformed, Some(DnsError::Truncated));
    assert_eq!(d.answers.len(), 1);
    assert_eq!(d.answers[0].data, DnsRdata::A(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn bad_rdata_length_is_flagged_and_decoding_goes_on() {
    let mut m = header(3, 0x8180, 0, 2, 0, 0);
    m.extend(rr(&wname("a"), 1, 5, &[10, 0, 0]));
    // A CNAME whose name overruns its RDLENGTH of 2.
    m.extend(rr(&wname("b"), 5, 5, &[0xc0]));
    let mut m2 = m.clone();
    m2.extend(rr(&wname("c"), 1, 5, &[10, 0, 0, 3]));
    m2[7] = 3; // ANCOUNT = 3
    let (d, _) = malformed(&m2);
    assert_eq!(d.malformed, Some(DnsError::BadRdata));
    assert_eq!(d.answers[0].data, DnsRdata::Malformed { rtype: 1, len: 3 });
    assert_eq!(d.answers[1].data, DnsRdata::Malformed { rtype: 5, len: 1 });
    assert_eq!(d.answers[2].data, DnsRdata::A(Ipv4Addr::new(10, 0, 0, 3)));
}

#[test]
fn huge_counts_allocate_nothing_up_front() {
    // 12 bytes announcing 65 535 records of every kind: one fault, no records.
    let m = header(1, 0x8180, 0xffff, 0xffff, 0xffff, 0xffff);
    let (d, _) = malformed(&m);
    assert_eq!(d.malformed, Some(DnsError::Truncated));
    assert_eq!(d.counts.answers, 0xffff);
    assert!(d.questions.is_empty());
}

#[test]
fn records_kept_per_message_are_capped() {
    let mut m = header(1, 0x8180, 0, 5, 0, 0);
    for _ in 0..5 {
        m.extend(rr(&[0], 1, 1, &[1, 2, 3, 4]));
    }
    let (ms, an, _) = udp_with(DnsConfig::default().with_max_records(3), &[(R, &m)]);
    assert_eq!(ms[0].answers.len(), 3);
    assert_eq!(ms[0].malformed, Some(DnsError::TooManyRecords));
    assert_eq!(an, vec!["dns.malformed"]);
}

#[test]
fn shorter_than_a_header_is_an_anomaly_only() {
    let (ms, an, st) = udp(&[(I, &[1, 2, 3])]);
    assert!(ms.is_empty());
    assert_eq!(an, vec!["dns.malformed"]);
    assert_eq!(st.malformed, 1);
}

#[test]
fn decoding_random_bytes_never_panics() {
    // A fixed xorshift stream: reproducible, no dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards pointers and small counts so deep paths get exercised.
        for v in b.iter_mut().skip(12) {
            if next() % 4 == 0 {
                *v |= 0xc0;
            }
        }
        if b.len() >= 12 {
            b[4] = 0;
            b[5] = (next() % 3) as u8;
            b[7] = (next() % 3) as u8;
        }
        let _ = udp(&[(I, &b)]);
    }
}

#[test]
fn responses_pair_with_their_query() {
    let q = query(0xbeef, "Example.COM", 1);
    let mut r = header(0xbeef, 0x8180, 1, 0, 0, 0);
    // 0x20 case randomisation: the response echoes another case.
    r.extend(wname("eXample.com"));
    r.extend_from_slice(&[0, 1, 0, 1]);
    let (ms, an, st) = udp(&[(I, &q), (R, &r)]);
    assert_eq!(ms[0].query_ts, None);
    assert_eq!(ms[1].query_ts, Some(ts(1)));
    assert!(an.is_empty(), "{an:?}");
    assert_eq!((st.paired, st.unsolicited, st.unanswered), (1, 0, 0));
}

#[test]
fn same_id_other_question_does_not_pair() {
    let q = query(5, "a.example", 1);
    let mut r = header(5, 0x8180, 1, 0, 0, 0);
    r.extend(wname("a.example"));
    r.extend_from_slice(&[0, 28, 0, 1]); // AAAA, not A
    let (ms, an, st) = udp(&[(I, &q), (R, &r)]);
    assert_eq!(ms[1].query_ts, None);
    assert_eq!((st.unsolicited, st.unanswered), (1, 1));
    assert_eq!(an, vec!["dns.unanswered_query"]);
}

#[test]
fn pending_queries_are_bounded() {
    let qs: Vec<Vec<u8>> = (0..5u16).map(|i| query(i, "x", 1)).collect();
    let dg: Vec<(FlowSide, &[u8])> = qs.iter().map(|q| (I, q.as_slice())).collect();
    let (_, an, st) = udp_with(DnsConfig::default().with_max_pending(3), &dg);
    assert_eq!(st.pending_overflow, 2);
    assert_eq!(st.unanswered, 3);
    let overflow = an.iter().filter(|a| **a == "dns.pending_overflow").count();
    assert_eq!(overflow, 2);
    // A retransmission (same id and question) is not a second entry.
    let q = query(1, "x", 1);
    let (_, _, st) = udp(&[(I, &q), (I, &q)]);
    assert_eq!(st.unanswered, 1);
}

#[test]
fn udp_probe() {
    let f = DnsDatagramFactory::default();
    assert_eq!(f.name(), "dns");
    let on53 = ParserContext::new(L4Proto::Udp, 40000, 53);
    let mdns = ParserContext::new(L4Proto::Udp, 5353, 5353);
    let off = ParserContext::new(L4Proto::Udp, 40000, 8053);
    let q = query(1, "a.b", 1);
    assert_eq!(f.probe(&on53, I, &q), Probe::Match);
    assert_eq!(f.probe(&mdns, I, &q), Probe::Match);
    assert_eq!(f.probe(&off, I, &q), Probe::NoMatch);
    assert_eq!(f.probe(&on53, I, &q[..11]), Probe::NoMatch);
    // On a DNS port the header's contents do not decide: an unassigned
    // OPCODE (3, RFC 6895 §2.2) or a question count that cannot fit still
    // gives a parser, which flags the message as malformed.
    let mut odd = q.clone();
    odd[2] |= 3 << 3;
    assert_eq!(f.probe(&on53, I, &odd), Probe::Match);
    let mut odd = q.clone();
    odd[5] = 40;
    assert_eq!(f.probe(&on53, I, &odd), Probe::Match);
    assert_eq!(f.probe(&on53, I, &q[..12]), Probe::Match);
    let (ms, _, st) = udp(&[(I, &odd)]);
    assert_eq!(ms[0].counts.questions, 40);
    assert_eq!(ms[0].malformed, Some(DnsError::Truncated));
    assert_eq!(st.malformed, 1);
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

/// Feeds TCP deliveries; `None` as data means a gap.
fn tcp(feeds: &[(FlowSide, Option<&[u8]>)]) -> (Vec<DnsMessage>, Vec<&'static str>, DnsTcpParser) {
    let f = DnsTcpFactory::default();
    let mut p = f.new_parser(&ParserContext::new(L4Proto::Tcp, 40000, 53));
    let (mut ms, mut an) = (Vec::new(), Vec::new());
    let mut out = |e: SessionEvent<DnsMessage>| match e {
        SessionEvent::Message(m) => ms.push(m),
        SessionEvent::Anomaly { anomaly, .. } => an.push(anomaly.code),
        _ => {}
    };
    for (i, (side, d)) in feeds.iter().enumerate() {
        match d {
            Some(d) => p.on_data(*side, d, ts(i as u64 + 1), &mut out),
            None => p.on_gap(*side, 10, ts(i as u64 + 1), &mut out),
        }
    }
    (ms, an, p)
}

#[test]
fn tcp_several_messages_in_one_segment() {
    let mut seg = framed(&query(1, "a.example", 1));
    seg.extend(framed(&query(2, "b.example", 1)));
    seg.extend(framed(&query(3, "c.example", 28)));
    let (ms, an, p) = tcp(&[(I, Some(&seg))]);
    let ids: Vec<u16> = ms.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(an.is_empty());
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn tcp_message_across_segments_split_anywhere() {
    let whole = framed(&query(7, "split.example", 1));
    // Every split point, the length prefix itself included.
    for cut in 1..whole.len() {
        let (a, b) = whole.split_at(cut);
        let (ms, _, p) = tcp(&[(I, Some(a)), (I, Some(b))]);
        assert_eq!(ms.len(), 1, "cut at {cut}");
        assert_eq!(ms[0].questions[0].name, "split.example");
        assert_eq!(ms[0].ts, ts(2), "time of the completing delivery");
        assert_eq!(p.buffered_bytes(), 0);
    }
    // One byte at a time.
    let feeds: Vec<(FlowSide, Option<&[u8]>)> = whole.chunks(1).map(|c| (I, Some(c))).collect();
    assert_eq!(tcp(&feeds).0.len(), 1);
}

#[test]
fn tcp_only_the_partial_message_is_buffered() {
    let mut seg = framed(&query(1, "done.example", 1));
    let next = framed(&query(2, "partial.example", 1));
    seg.extend_from_slice(&next[..5]);
    let (ms, _, p) = tcp(&[(I, Some(&seg))]);
    assert_eq!(ms.len(), 1);
    assert_eq!(p.buffered_bytes(), 5);
    // A 65 535-byte announcement holds at most 2 + 65 534 bytes while open.
    let mut big = vec![0xff, 0xff];
    big.extend(vec![0u8; 65_534]);
    let (ms, _, p) = tcp(&[(R, Some(&big))]);
    assert!(ms.is_empty());
    assert_eq!(p.buffered_bytes(), 65_536);
}

#[test]
fn tcp_gap_poisons_and_reports() {
    let q = framed(&query(1, "a.example", 1));
    let (ms, an, p) = tcp(&[(I, Some(&q[..4])), (I, None), (I, Some(&q))]);
    assert!(ms.is_empty(), "nothing decoded after the gap");
    assert_eq!(an, vec!["dns.tcp_gap"]);
    assert!(p.is_poisoned());
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn tcp_close_reports_the_unfinished_message() {
    let q = framed(&query(1, "a.example", 1));
    let (_, _, mut p) = tcp(&[(I, Some(&q[..6]))]);
    let mut an = Vec::new();
    p.on_close(ts(9), &mut |e| {
        if let SessionEvent::Anomaly { anomaly, .. } = e {
            an.push(anomaly.code);
        }
    });
    assert_eq!(an, vec!["dns.tcp_incomplete_message"]);
}

#[test]
fn tcp_probe() {
    let f = DnsTcpFactory::default();
    assert_eq!(f.name(), "dns");
    let ctx = ParserContext::new(L4Proto::Tcp, 40000, 53);
    let q = framed(&query(1, "a.b", 1));
    assert_eq!(f.probe(&ctx, I, &q[..1]), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, &q[..10]), Probe::NeedMore);
    assert_eq!(f.probe(&ctx, I, &q[..14]), Probe::Match);
    assert_eq!(f.probe(&ctx, I, &[0, 5, 1, 2, 3, 4, 5]), Probe::NoMatch);
    // OPCODE 15 and 65 535 questions: still DNS on port 53, decoded and flagged.
    let mut odd = q.clone();
    odd[4] |= 0x78;
    odd[6] = 0xff;
    odd[7] = 0xff;
    assert_eq!(f.probe(&ctx, I, &odd), Probe::Match);
    let off = ParserContext::new(L4Proto::Tcp, 40000, 80);
    assert_eq!(f.probe(&off, I, &q), Probe::NoMatch);
}

#[test]
fn agrees_with_simple_dns_encoder() {
    // An independent encoder (simple-dns, with name compression) builds the
    // message; the decoder must give back what was put in.
    use simple_dns::rdata::{RData, A, CNAME, MX};
    use simple_dns::{Name, Packet, Question, ResourceRecord, CLASS, QCLASS, QTYPE, TYPE};
    let mut p = Packet::new_reply(0x4242);
    let n = Name::new_unchecked("mail.Example.org");
    p.questions.push(Question::new(
        n.clone(),
        QTYPE::TYPE(TYPE::MX),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.answers.push(ResourceRecord::new(
        n.clone(),
        CLASS::IN,
        300,
        RData::MX(MX {
            preference: 5,
            exchange: Name::new_unchecked("mx1.Example.org"),
        }),
    ));
    p.answers.push(ResourceRecord::new(
        Name::new_unchecked("alias.example.org"),
        CLASS::IN,
        30,
        RData::CNAME(CNAME(Name::new_unchecked("mail.Example.org"))),
    ));
    p.answers.push(ResourceRecord::new(
        n,
        CLASS::IN,
        30,
        RData::A(A {
            address: 0xc000_0207,
        }),
    ));
    let wire = p.build_bytes_vec_compressed().unwrap();
    let d = one(&wire);
    assert_eq!(d.malformed, None);
    assert_eq!((d.id, d.is_response), (0x4242, true));
    assert_eq!(d.questions[0].name, "mail.Example.org");
    assert_eq!(d.questions[0].qtype, 15);
    assert_eq!(
        d.answers[0].data,
        DnsRdata::Mx {
            preference: 5,
            exchange: "mx1.Example.org".into()
        }
    );
    assert_eq!(d.answers[1].name, "alias.example.org");
    assert_eq!(
        d.answers[1].data,
        DnsRdata::Cname("mail.Example.org".into())
    );
    assert_eq!(d.answers[2].data, DnsRdata::A(Ipv4Addr::new(192, 0, 2, 7)));
}

#[test]
fn tcp_memory_used_counts_an_unfinished_message() {
    // A length prefix announcing 1 000 bytes (RFC 1035 §4.2.2) and 600 of
    // them: the framer holds 602 bytes.
    let mut p = DnsTcpParser::new(&DnsConfig::default());
    assert_eq!(SessionParser::memory_used(&p), 0);
    let mut part = 1000u16.to_be_bytes().to_vec();
    part.resize(602, 0);
    p.on_data(FlowSide::Initiator, &part, ts(1), &mut |_| {});
    assert_eq!(p.buffered_bytes(), 602);
    assert!(SessionParser::memory_used(&p) >= 602);
}
