//! DNS parsers against tshark on the shared corpus (`pcaps/truth/dns.tsv`).
//!
//! Each truth row is one frame with at least one DNS message; multi-message
//! frames join their values with `|` (tshark `-E occurrence=a`). The same
//! fields are rebuilt from the messages the real [`SessionDriver`] emits
//! (`common::driver_messages`: IP defragmentation, TCP reassembly, parsers
//! chosen by probes), each tagged with the frame that completed it.
//!
//! Field conventions mapped to tshark's: `dns_id` as `0x%04x`; the root
//! name `.` as tshark's `<Root>`; label bytes as Wireshark's lossy UTF-8
//! with C escapes; a question name that broke (`DnsQuestion::name_fault`)
//! as Wireshark's marker for that fault; `rcode` only for responses;
//! `a`/`aaaa` list the A/AAAA records of all three sections;
//! `answer_count` is the header's ANCOUNT, except in UPDATE messages where
//! that count is PRCOUNT (RFC 2136 §2.2) and tshark names it differently.
//!
//! Every field must agree on at least 99.5% of the compared rows. Measured
//! at the time of writing: 1071 rows, 1051 compared; `rcode`, `qname`,
//! `qtype`, `a`, `aaaa` 1051/1051 (100%), `dns_id`, `is_response`, `opcode`,
//! `answer_count` 1049/1051 (99.81%). The 20 rows left out are counted,
//! printed and bounded:
//!
//! | rows | why they are not compared |
//! |---|---|
//! | 6: fuzz 8 29 109 352 355 571 | neither port is 53 or 5353 (the fuzzer mutated them). tshark 4.0 found them with its `dns` UDP heuristic, which is on by default (`tshark -G heuristic-decodes`: `udp dns T`); our probe is port-bound by design, as Suricata's and Zeek's DNS port signatures are |
//! | 3: `ndpi__KakaoTalk_chat` 57, `suricata__bug-5633-gre-02` 34 36 | the DNS message is the quoted head of a datagram inside an ICMP error: no flow's DNS (Suricata and Zeek do not parse it either) |
//! | 11: `tcpdump__ipv4_invalid_total_length` 1; fuzz 25 104 136 350 511 517 555 601 612 678 | the IPv4 total length exceeds the bytes on the wire (not a snaplen cut): the extractor rejects the frame (`TruncatedIp`), as Zeek does (weird `truncated_IP_len`: `packet->len < total_len + hdr_size` in `packet_analysis/protocol/ip/IP.cc` drops the packet) and Suricata does (`IPV4_TRUNC_PKT`); tshark dissects what is there |
//!
//! The 7 fuzz rows 7 21 269 311 423 522 528, whose UDP length field exceeds
//! the IP payload, are compared: the extractor keeps such a packet with the
//! IP payload as the datagram and a counted anomaly
//! (`PacketAnomalies::UDP_LENGTH_EXCEEDS_IP`,
//! `PacketCounters::udp_length_exceeds_ip`), as Zeek does (`UDPAnalyzer::
//! DeliverPacket` forwards `min(IP payload, captured)` and raises the weird
//! `UDP_datagram_length_mismatch`); tshark reads the payload too ("Bad
//! length value"), Suricata drops it (`UDP_PKT_TOO_SMALL`). Five agree on
//! every field. In 269 and 311 the IPv4 total length (37) leaves 9 bytes of
//! UDP payload, fewer than a DNS header: we emit no message, as Zeek does
//! (`DNS_Interpreter::ParseMessage`: weird `DNS_truncated_len_lt_hdr_len`),
//! while tshark shows the header fields that fit (id, flags, QDCOUNT,
//! ANCOUNT) and an empty name: those two rows differ on `dns_id`,
//! `is_response`, `opcode` and `answer_count`.
//!
//! Rows of the last group are only left out when we have no message
//! for that frame. Malformed DNS on ports 53/5353 is compared like any
//! other row: the probes accept any OPCODE and any counts (so OPCODE 15,
//! QDCOUNT past the end, a 14-byte datagram still give a message), an
//! extended label type or a pointer loop in a question name keeps the
//! question with the type read after the name's in-place end, as
//! Wireshark's `expand_dns_name` does, and an 0x41 label or one as a name's
//! first byte gives no question, as in Wireshark (bit-string layout;
//! `MIN_DNAME_LEN`).
//!
//! [`SessionDriver`]: flowscope::driver::SessionDriver
#![cfg(all(feature = "dns", feature = "pcap"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use flowscope::capture::CaptureReader;
use flowscope::extract::FiveTupleExtractor;
use flowscope::proto::dns::{DnsError, DnsMessage, DnsQuestion, DnsRdata, ROOT_NAME};
use flowscope::proto::AppMessage;
use flowscope_core::{FlowExtractor, MalformedReason, Skip};

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

/// Our DNS messages per frame for one capture, through the real driver.
fn messages_by_frame(path: &std::path::Path) -> HashMap<u64, Vec<DnsMessage>> {
    let mut by_frame: HashMap<u64, Vec<DnsMessage>> = HashMap::new();
    for m in common::driver_messages::messages(path) {
        if let AppMessage::Dns(d) = m.message {
            by_frame.entry(m.frame).or_default().push(d);
        }
    }
    by_frame
}

/// What the extractor makes of each frame, for the rows we have no
/// message for.
#[derive(Default)]
struct FrameFacts {
    /// Frames whose innermost transport is ICMP/ICMPv6: a DNS message
    /// tshark finds there is the quoted head of a datagram an ICMP error
    /// returns, not a message of any flow.
    icmp: HashSet<u64>,
    /// Frames the extractor rejects as malformed, with why.
    malformed: HashMap<u64, MalformedReason>,
}

fn frame_facts(path: &std::path::Path) -> FrameFacts {
    let mut out = FrameFacts::default();
    let Ok(mut reader) = CaptureReader::open(path) else {
        return out;
    };
    let ex = FiveTupleExtractor::default();
    let mut frame = 0u64;
    while let Ok(Some(pkt)) = reader.next_packet() {
        frame += 1;
        match ex.extract(&pkt) {
            Ok(e) if matches!(e.key.proto, 1 | 58) => {
                out.icmp.insert(frame);
            }
            Err(Skip::Malformed(why)) => {
                out.malformed.insert(frame, why);
            }
            _ => {}
        }
    }
    out
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

/// A question name as tshark shows it: a name that broke is replaced by
/// Wireshark's marker for the fault (`expand_dns_name` in
/// `epan/dissectors/packet-dns.c`), which drops the labels read before it.
fn tshark_qname(q: &DnsQuestion) -> String {
    match q.name_fault {
        None => tshark_name(&q.name),
        Some(DnsError::BadLabelType) => "<Unknown extended label>".to_owned(),
        Some(DnsError::CompressionLoop) => "<Name contains a pointer that loops>".to_owned(),
        Some(DnsError::NameTooLong) => "<Name too long>".to_owned(),
        Some(other) => format!("<{other:?}>"),
    }
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
            // The 5- and 6-byte forms of the original UTF-8 (RFC 2279):
            // invalid today, but GLib still takes the bytes that follow
            // as one (invalid) unit.
            0xf8..=0xfb => 4,
            0xfc..=0xfd => 5,
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
        join(&mut ms.iter().flat_map(|m| m.questions.iter().map(tshark_qname))),
        join(
            &mut ms
                .iter()
                .flat_map(|m| m.questions.iter().map(|q| q.qtype.to_string())),
        ),
        // In an UPDATE (OPCODE 5) the second count is PRCOUNT (RFC 2136
        // §2.2), which tshark shows as `dns.count.prerequisites`.
        join(
            &mut ms
                .iter()
                .filter(|m| m.opcode != 5)
                .map(|m| m.counts.answers.to_string()),
        ),
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

    let (mut all, mut rows, mut out_of_scope) = (0usize, 0usize, 0usize);
    let (mut icmp, mut rejected) = (0usize, 0usize);
    let mut agree = [0usize; 9];
    let mut agree_all = [0usize; 9];
    let mut report = String::new();
    for pcap in pcaps {
        let path = dir.join("pcaps").join(&pcap);
        let ours = messages_by_frame(&path);
        let facts = frame_facts(&path);
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
            if facts.icmp.contains(&frame) {
                icmp += 1;
                writeln!(
                    report,
                    "  {pcap} frame {frame}: DNS quoted in an ICMP error"
                )
                .unwrap();
                continue;
            }
            if let (None, Some(why)) = (ours.get(&frame), facts.malformed.get(&frame)) {
                rejected += 1;
                writeln!(
                    report,
                    "  {pcap} frame {frame}: extractor rejects it: {why:?}"
                )
                .unwrap();
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
        "DNS vs tshark: {all} rows; {out_of_scope} not on port 53/5353, {icmp} quoted in ICMP \
         errors, {rejected} in frames the extractor rejects, {rows} compared"
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
        rows >= 1051,
        "the corpus has 1051 comparable rows, got {rows}"
    );
    // The left-out rows are listed in the module docs; more would mean a
    // regression (a probe, the extractor, the driver).
    assert!(out_of_scope <= 6, "{out_of_scope} rows off ports 53/5353");
    assert!(icmp <= 3, "{icmp} rows quoted in ICMP errors");
    assert!(
        rejected <= 11,
        "{rejected} rows in frames the extractor rejects"
    );
    assert!(
        worst >= 0.995,
        "a field agrees on less than 99.5% of compared rows (worst {:.2}%)",
        worst * 100.0
    );
}
