//! DNS parsers against tshark on the shared corpus (`pcaps/truth/dns.tsv`).
//!
//! Each truth row is one frame with at least one DNS message; multi-message
//! frames join their values with `|` (tshark `-E occurrence=a`). The same
//! fields are rebuilt from our messages, frame by frame, through the real
//! factories: a flow gets a parser once its probe says `Match`.
//!
//! Rows where neither port is 53 nor 5353 are out of scope (tshark 4.0
//! found them by heuristics; our probe is port-bound by design) and are
//! left out of the agreement, but counted and printed.
//!
//! Field conventions mapped to tshark's: `dns_id` as `0x%04x`; the root
//! name `.` as tshark's `<Root>`; `rcode` only for responses; `a`/`aaaa`
//! list the A/AAAA records of all three sections; `answer_count` is the
//! header's ANCOUNT.
//!
//! Rows the test harness cannot deliver are counted apart (and bounded):
//! IP-fragmented responses (`ndpi__dns_fragmented` 3 6 9 12 17 39 42,
//! `zeek__dns-edns-ecs` 54 59 63 85, `zeek__ipv6-fragmented-dns` 8:
//! `naive_streams` has no defragmentation), DNS quoted inside ICMP errors
//! (`ndpi__KakaoTalk_chat` 57, `suricata__bug-5633-gre-02` 34 36: no UDP
//! flow carries them), and frames the extractor rejects for bad IP/UDP
//! lengths (`tcpdump__ipv4_invalid_total_length` 1, fuzz 7 21 25 104 136 269
//! 311 350 423 511 517 522 528 555 601 612 678).
//!
//! Differences on delivered rows (measured: ≥ 99.1% on every field but
//! qname 97.8% and qtype 98.2%; the 99.5% target is NOT met, see below):
//!
//! | rows | field(s) | tshark | here | why |
//! |---|---|---|---|---|
//! | iodine 63 66 67 69 | qname | its own lossy UTF-8 | one U+FFFD more or less | tunnel labels are raw bytes; our name keeps them exactly (`\DDD`), the test's re-rendering of Wireshark's replacement rule is approximate |
//! | fuzz 111 246 288 382 384 391 450 536 569 579 | qname, qtype | `<Unknown extended label>` and a "type" read from the bytes after it | no question | label types 01/10 have no known length (RFC 6891 §5 retires them): decoding stops, `malformed = BadLabelType` |
//! | zeek dns-invalid-names 2 | qname, qtype | `<Name contains a pointer that loops>`, type after it | no question | compression loop: decoding stops, `malformed = CompressionLoop` |
//! | tcpdump dns-badlabel 1; fuzz 295 304 320 452 588 605 615 671 | all | decoded | no message | the flow's first datagram failed the probe (OPCODE 15 or 3, or QDCOUNT that cannot fit), so no parser was made; tshark decodes by port |
//! | zeek dns-invalid-names 1 3 | id, flags, counts | decoded | no message | 14-byte datagrams announcing a question that cannot fit: probe says no |
//! | fuzz 332 | answer_count | none (tshark stopped) | 43690 | the header count as announced |
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use flowscope::proto::dns::{
    DnsDatagramFactory, DnsMessage, DnsRdata, DnsTcpFactory, DnsTcpParser, DnsUdpParser, ROOT_NAME,
};
use flowscope_core::{
    DatagramParser, DatagramParserFactory, FlowId, L4Proto, ParserContext, Probe, SessionEvent,
    SessionParser, SessionParserFactory,
};

const FIELDS: [&str; 9] = [
    "dns_id",
    "is_response",
    "opcode",
    "rcode",
    "qname",
    "qtype",
    "answer_count",
    "a",
    "aaaa",
];

enum FlowParser {
    Probing(Vec<u8>),
    Udp(DnsUdpParser),
    Tcp(DnsTcpParser),
    No,
}

/// Our messages per frame, and the frames that delivered any payload, for
/// one capture.
fn messages_by_frame(path: &std::path::Path) -> (HashMap<u64, Vec<DnsMessage>>, HashSet<u64>) {
    let udp = DnsDatagramFactory::default();
    let tcp = DnsTcpFactory::default();
    let mut flows: HashMap<FlowId, FlowParser> = HashMap::new();
    let mut by_frame: HashMap<u64, Vec<DnsMessage>> = HashMap::new();
    let mut delivered = HashSet::new();
    for p in common::naive_streams::pieces(path) {
        delivered.insert(p.frame);
        let ctx = ParserContext::new(p.l4, p.ports.0, p.ports.1);
        let mut got = Vec::new();
        let mut out = |e: SessionEvent<DnsMessage>| {
            if let SessionEvent::Message(m) = e {
                got.push(m);
            }
        };
        let st = flows
            .entry(p.flow)
            .or_insert_with(|| FlowParser::Probing(Vec::new()));
        match p.l4 {
            L4Proto::Udp => {
                if matches!(st, FlowParser::Probing(_))
                    && udp.probe(&ctx, p.side, &p.bytes) == Probe::Match
                {
                    *st = FlowParser::Udp(udp.new_parser(&ctx));
                }
                if let FlowParser::Udp(parser) = st {
                    parser.on_datagram(p.side, &p.bytes, p.ts, &mut out);
                }
            }
            L4Proto::Tcp => {
                if let FlowParser::Probing(seen) = st {
                    seen.extend_from_slice(&p.bytes);
                    match tcp.probe(&ctx, p.side, seen) {
                        Probe::Match => {
                            let mut parser = tcp.new_parser(&ctx);
                            let first = std::mem::take(seen);
                            parser.on_data(p.side, &first, p.ts, &mut out);
                            *st = FlowParser::Tcp(parser);
                        }
                        Probe::NoMatch => *st = FlowParser::No,
                        Probe::NeedMore => {}
                    }
                } else if let FlowParser::Tcp(parser) = st {
                    parser.on_data(p.side, &p.bytes, p.ts, &mut out);
                }
            }
            _ => {}
        }
        if !got.is_empty() {
            by_frame.entry(p.frame).or_default().extend(got);
        }
    }
    (by_frame, delivered)
}

/// A name as tshark 4.0 prints it: the root as `<Root>`, the label bytes
/// (recovered from our lossless RFC 1035 escapes) as lossy UTF-8, control
/// characters as C escapes or 3-digit octal (checked with crafted packets).
fn tshark_name(n: &str) -> String {
    if n == ROOT_NAME {
        return "<Root>".to_owned();
    }
    let mut bytes = Vec::new();
    let mut it = n.bytes().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match it.next() {
            Some(d @ b'0'..=b'9') => {
                let d2 = it.next().unwrap_or(b'0');
                let d3 = it.next().unwrap_or(b'0');
                let v = (d - b'0') as u32 * 100 + (d2 - b'0') as u32 * 10 + (d3 - b'0') as u32;
                bytes.push(v as u8);
            }
            Some(c) => bytes.push(c),
            None => {}
        }
    }
    let mut out = String::new();
    for ch in wireshark_lossy_utf8(&bytes).chars() {
        match ch {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                write!(out, "\\{:03o}", c as u32).unwrap();
            }
            c => out.push(c),
        }
    }
    out
}

/// UTF-8 decoding as Wireshark's string formatting does it: a lead byte
/// (by its bit pattern alone) and the continuation bytes that follow it, up to its length, are one
/// unit; an incomplete or invalid unit becomes a single U+FFFD (Rust's
/// `from_utf8_lossy` splits some of these into two).
fn wireshark_lossy_utf8(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let need = match b {
            0x00..=0x7f => {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            0xc0..=0xdf => 1,
            0xe0..=0xef => 2,
            0xf0..=0xf7 => 3,
            _ => 0,
        };
        let mut j = i + 1;
        while j <= i + need && bytes.get(j).is_some_and(|c| (0x80..=0xbf).contains(c)) {
            j += 1;
        }
        match std::str::from_utf8(&bytes[i..j]) {
            Ok(s) if j == i + need + 1 => out.push_str(s),
            _ => out.push('\u{fffd}'),
        }
        i = j;
    }
    out
}

/// The nine fields of one frame, as tshark would print them.
fn fields(ms: &[DnsMessage]) -> [String; 9] {
    let join = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join("|");
    let mut a = Vec::new();
    let mut aaaa = Vec::new();
    for m in ms {
        for r in m.answers.iter().chain(&m.authorities).chain(&m.additionals) {
            match &r.data {
                DnsRdata::A(x) => a.push(x.to_string()),
                DnsRdata::Aaaa(x) => aaaa.push(x.to_string()),
                _ => {}
            }
        }
    }
    [
        join(&mut ms.iter().map(|m| format!("0x{:04x}", m.id))),
        join(&mut ms.iter().map(|m| u8::from(m.is_response).to_string())),
        join(&mut ms.iter().map(|m| m.opcode.to_string())),
        join(
            &mut ms
                .iter()
                .filter(|m| m.is_response)
                .map(|m| m.rcode.to_string()),
        ),
        join(
            &mut ms
                .iter()
                .flat_map(|m| m.questions.iter().map(|q| tshark_name(&q.name))),
        ),
        join(
            &mut ms
                .iter()
                .flat_map(|m| m.questions.iter().map(|q| q.qtype.to_string())),
        ),
        join(&mut ms.iter().map(|m| m.counts.answers.to_string())),
        a.join("|"),
        aaaa.join("|"),
    ]
}

#[test]
fn dns_fields_agree_with_tshark() {
    let Some(dir) = common::corpus_dir() else {
        println!("SKIP: no corpus");
        return;
    };
    let truth = common::read_tsv_rows(&dir.join("pcaps/truth/dns.tsv"));
    let mut by_pcap: HashMap<String, Vec<&HashMap<String, String>>> = HashMap::new();
    for row in &truth {
        by_pcap.entry(row["pcap"].clone()).or_default().push(row);
    }
    let mut pcaps: Vec<_> = by_pcap.keys().cloned().collect();
    pcaps.sort();

    let (mut all, mut rows, mut out_of_scope, mut undelivered) = (0usize, 0usize, 0usize, 0usize);
    let mut agree = [0usize; 9];
    let mut agree_all = [0usize; 9];
    let mut report = String::new();
    for pcap in pcaps {
        let (ours, delivered) = messages_by_frame(&dir.join("pcaps").join(&pcap));
        for row in &by_pcap[&pcap] {
            all += 1;
            let frame: u64 = row["frame"].parse().unwrap();
            let got = fields(ours.get(&frame).map(Vec::as_slice).unwrap_or(&[]));
            let same: Vec<bool> = FIELDS
                .iter()
                .zip(&got)
                .map(|(f, g)| *g == row[*f])
                .collect();
            for (i, ok) in same.iter().enumerate() {
                agree_all[i] += usize::from(*ok);
            }
            let ports = [&row["src_port"], &row["dst_port"]];
            if !ports.iter().any(|p| *p == "53" || *p == "5353") {
                out_of_scope += 1;
                continue;
            }
            if !delivered.contains(&frame) {
                undelivered += 1;
                writeln!(report, "  {pcap} frame {frame}: no payload delivered").unwrap();
                continue;
            }
            rows += 1;
            for (i, f) in FIELDS.iter().enumerate() {
                if same[i] {
                    agree[i] += 1;
                } else {
                    writeln!(
                        report,
                        "  {pcap} frame {frame} {f}: tshark {:?} ours {:?}",
                        row[*f], got[i]
                    )
                    .unwrap();
                }
            }
        }
    }
    println!(
        "DNS vs tshark: {all} rows; {out_of_scope} not on port 53/5353, {undelivered} with no \
         payload from the test harness, {rows} compared"
    );
    let mut worst = 1.0f64;
    for (i, f) in FIELDS.iter().enumerate() {
        let pct = agree[i] as f64 / rows.max(1) as f64;
        worst = worst.min(pct);
        println!(
            "  {f:>12}: {}/{rows} = {:.2}% (all rows: {}/{all} = {:.2}%)",
            agree[i],
            pct * 100.0,
            agree_all[i],
            agree_all[i] as f64 * 100.0 / all.max(1) as f64
        );
    }
    println!("differences:\n{report}");
    assert!(
        rows > 1000,
        "the corpus has ~1070 DNS rows, compared {rows}"
    );
    // The harness limits (no defragmentation, no ICMP-quoted packets, frames
    // the extractor rejects) are listed in the module docs; more would mean
    // a regression there.
    assert!(undelivered <= 40, "{undelivered} rows had no payload");
    // Floor at today's measured level (see the table): any regression in
    // decoding, framing or pairing fails here.
    assert!(
        worst >= 0.975,
        "a field agrees on less than 97.5% of compared rows (worst {:.2}%)",
        worst * 100.0
    );
}
