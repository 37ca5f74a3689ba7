//! Defragmentation over the corpus captures tagged `ipv4_frag`/`ipv6_frag`,
//! through the real [`SessionDriver`]: every fragment must be accounted for,
//! every completed datagram must extract again, and completed-datagram
//! counts must equal tshark's (checked by hand, see `EXPECTED`).

mod common;

use std::collections::BTreeMap;

use flowscope::capture::CaptureReader;
use flowscope::driver::{SessionConfig, SessionDriver};
use flowscope::proto::AppMessage;

/// Datagrams reassembled per capture. The counts are tshark 4.0.17's unless
/// a comment says why not: the number of distinct `ip.reassembled_in` plus
/// `ipv6.reassembled.in` frame numbers from `tshark -2 -n -r FILE -T fields
/// -e ip.reassembled_in -e ipv6.reassembled.in` (run by hand; each listed
/// file's fragment offsets and flags were also read with `-e
/// ip.frag_offset -e ip.flags.mf -e ipv6.fraghdr.offset -e
/// ipv6.fraghdr.more` to check the count by eye).
const EXPECTED: &[(&str, u64)] = &[
    // 2+3, 11+12, 16+17, 41+42 (IPv4); 5+6, 8+9, 38+39 (IPv6).
    ("ndpi__dns_fragmented.pcap", 7),
    // 53+54, 58+59, 62+63, 84+85.
    ("zeek__dns-edns-ecs.pcap", 4),
    // Frame 4 is a lone last fragment (offset 362×8, id 1); 6+7+8 complete.
    ("zeek__ipv6-fragmented-dns.pcap", 1),
    // tshark says 1 (frames 1+3+2, flagged "Malformed Packet", conflicting
    // overlap) but no consistent datagram exists: frame 1 is a non-last
    // fragment of 18 bytes (not a multiple of 8: malformed), frame 2 the
    // last one ending at byte 164, frame 3 a first fragment of 304 bytes
    // (past that end: malformed). Linux would discard it too
    // (ip_frag_queue: data past the known end discards the queue).
    ("zeek__fragmented-1.pcap", 0),
    ("suricata__exception-policy-defrag-01__ipv4frags.pcap", 1),
    // Three 8-byte-unit fragments behind a VLAN tag (offsets 0, 1, 2).
    // The first fragment carries only 8 bytes of the TCP SYN: too few to
    // key, so the extractor hands it on as a fragment too.
    (
        "suricata__bug-6887-defrag-eth-vlan-ipv4-tcp-syn__frag-eth-vlan-ip-tcp-syn.pcap",
        1,
    ),
    // Five IPv6 atomic fragments (offset 0, M clear) are whole packets the
    // extractor keys itself: nothing is pushed.
    ("zeek__ipv6-http-atomic-frag.pcap", 0),
    // tshark: 4 (frames 313, 626, 939, 1252): four rounds of one TCP
    // datagram with the same id, 312 fragments of 16 bytes and a last one
    // of 8 (offset 624×8, total 5000). Each round's first fragment carries
    // only 16 bytes, too few for a TCP header: the extractor hands it on as
    // a fragment, and all 4 complete.
    ("ndpi__ip_fragmented_garbage.pcap", 4),
    // Outer IPv4 fragments carrying GRE/ERSPAN and GTP-U tunnels: the
    // extractor reports the outer header, which is what gets rebuilt.
    ("zeek__erspan.pcap", 16),
    ("zeek__gtp2_different_udp_port.pcap", 42),
    // 39 812 IPv6 first fragments of 14 bytes with M set: not a multiple
    // of 8, so malformed (RFC 8200 §4.5); tshark reassembles none either.
    ("suricata__ipv6-dos-with-ext-headers-6__denial6-6.pcap", 0),
    // Fuzzed fragments, none completing in tshark either.
    ("ndpi__fuzz-2006-06-26-2594.pcap", 0),
    ("tcpdump__ip6_frag_asan.pcap", 0),
    ("tcpdump__ipv6_frag6_negative_len.pcap", 0),
];

/// Rebuilt datagrams whose own headers are bad, so they are counted as
/// rejected, not tracked.
const REJECTED: &[(&str, u64)] = &[
    // Of the four rebuilt TCP segments (frames 313, 626, 939, 1252), two
    // carry a TCP data offset below 5: tshark says "bogus TCP header length
    // (16, must be at least 20)" for 313 and "(8, …)" for 1252.
    ("ndpi__ip_fragmented_garbage.pcap", 2),
];

#[test]
fn defrag_corpus() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let rows = common::read_tsv_rows(&dir.join("pcaps/SOURCES.tsv"));
    let files: Vec<String> = rows
        .iter()
        .filter(|r| {
            r.get("tags").is_some_and(|t| {
                t.split_whitespace()
                    .any(|t| t == "ipv4_frag" || t == "ipv6_frag")
            })
        })
        .filter_map(|r| r.get("filename").cloned())
        .collect();
    assert!(
        !files.is_empty(),
        "no fragment captures tagged in SOURCES.tsv"
    );
    let expected: BTreeMap<&str, u64> = EXPECTED.iter().copied().collect();
    let mut checked = 0;
    for name in &files {
        let path = dir.join("pcaps").join(name);
        let Ok(mut reader) = CaptureReader::open(&path) else {
            eprintln!("{name}: unreadable, skipped");
            continue;
        };
        let mut driver: SessionDriver<AppMessage> =
            SessionDriver::with_default_parsers(SessionConfig::default());
        while let Ok(Some(pkt)) = reader.next_packet() {
            driver.process(&pkt, &mut |_| {});
        }
        driver.finish(&mut |_| {});
        let s = driver.defrag_stats();
        let c = driver.session_counters();
        println!(
            "{name}: {s:?}; rebuilt and tracked {}, rebuilt but rejected {}",
            c.datagrams_reassembled, c.reassembled_malformed
        );
        assert!(driver.counters().is_balanced(), "{name}");
        // Every fragment the extractor reported went to the defragmenter,
        // and each one ended somewhere.
        assert_eq!(s.fragments, driver.counters().fragments, "{name}");
        assert_eq!(s.accounted(), s.fragments, "{name}: {s:?}");
        assert_eq!(
            c.datagrams_reassembled + c.reassembled_malformed,
            s.datagrams_completed,
            "{name}"
        );
        let rejected = REJECTED
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, k)| *k);
        assert_eq!(
            c.reassembled_malformed, rejected,
            "{name}: rebuilt datagrams the extractor rejects"
        );
        if let Some(&want) = expected.get(name.as_str()) {
            assert_eq!(s.datagrams_completed, want, "{name}: datagrams reassembled");
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len(), "every hand-checked capture ran");
}
