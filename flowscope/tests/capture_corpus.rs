//! Reads every capture of the shared corpus and checks packet counts, link
//! types and formats against capinfos/tshark (Wireshark 4.0.17), whose
//! results are recorded in `pcaps/SOURCES.tsv` and `pcaps/truth/summary.tsv`.
//!
//! The corpus lives outside the repository: set `FLOWSCOPE_CORPUS`, or place
//! it at `<workspace>/../shared/corpus`. Without it the test prints a note
//! and passes.
//!
//! Known differences from Wireshark, none of which changes a count:
//! - `suricata__bug-1450-04__tls_DER-incomplete-header.pcap`: Wireshark
//!   rejects the 7th record ("4325376-byte packet, bigger than maximum of
//!   262144") before reading it. We accept captured lengths up to 16 MiB when
//!   the bytes are present; here they are not (the file is 5.6 KB), so we
//!   stop at the same record, as `Corrupt` (its length exceeds both the
//!   snaplen and libpcap's 256 KiB maximum, so it is not a mere truncation).
//! - `gopacket__le__test901.pcapng`: the second section (offset 480) has
//!   version 2.0; both tools stop there, we with `Unsupported`.
//! - `ndpi__fuzz-2021-10-13.pcap`: a version 2.0 header, so the record
//!   length fields are in the pre-2.3 order (orig, incl), which libpcap and
//!   Wireshark swap back and so do we: 1 record of 197 bytes (24+16+197 =
//!   237), then 2 stray bytes, reported as `Truncated` at 237 (tshark: "cut
//!   short in the middle of a packet"). Read in the 2.4 order, the first
//!   record would claim 524501 bytes and no packet would come out.
//! - `gopacket__le__test202.pcapng`: capinfos counts 8 packets (6 EPB +
//!   2 SPB, which we return), tshark 11 "frames": tshark 4.0 also turns the
//!   3 pcapng Custom Blocks (types 0xBAD, 0x40000BAD, at offsets 216, 1412
//!   and 2468) into records. They carry no packet; we skip and count them.
//!   The file mixes little- and big-endian sections and has link types 1
//!   and 0 on its interfaces.
//! - `gopacket__be__test008.pcapng`: tshark 4.0 refuses interfaces whose
//!   snaplens differ ("an interface has a snapshot length 128 different
//!   from...") for its pcap output only; capinfos reads 4 packets, so do we.
#![cfg(feature = "pcap")]

mod common;

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};

use flowscope::capture::{Bytes, CaptureErrorKind, CaptureFormat, CaptureReader};
use flowscope_core::LinkType;

/// The leading integer of "6" or "6 (read before error)".
fn leading_int(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// LINKTYPE_* values for capinfos's encapsulation names (Wireshark's
/// wtap_encap short names). `rawip` is WTAP_ENCAP_RAW_IP, which Wireshark
/// uses for LINKTYPE_RAW (101) and the DLT_RAW values 12 and 14.
fn linktypes_for(name: &str) -> Option<&'static [u16]> {
    Some(match name {
        "ether" => &[1],
        "null" => &[0],
        "ppp" => &[9],
        "chdlc" => &[104],
        "rawip" => &[101, 12, 14],
        "rawip4" => &[228],
        "rawip6" => &[229],
        "linux-sll" => &[113],
        "linux-sll2" => &[276],
        _ => return None, // "per-packet", "?"
    })
}

#[test]
fn corpus_counts_match_capinfos_and_tshark() {
    let Some(root) = common::corpus_dir() else {
        return;
    };
    let pcaps = root.join("pcaps");
    let sources = common::read_tsv(&pcaps.join("SOURCES.tsv"));
    let summary = common::read_tsv(&pcaps.join("truth/summary.tsv"));
    let names: Vec<String> = common::captures(&root)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(!names.is_empty(), "no captures in {}", pcaps.display());

    let mut failures = Vec::new();
    let mut total_packets = 0u64;
    for name in &names {
        let Some(src) = sources.get(name) else {
            failures.push(format!("{name}: not listed in SOURCES.tsv"));
            continue;
        };
        let expected = leading_int(&src["packets"]).expect("packets column");
        // tshark's frame count, minus pcapng records that are not packets
        // (see the module comment).
        let tshark_non_packets = match name.as_str() {
            "gopacket__le__test202.pcapng" => 3,
            _ => 0,
        };
        if let Some(tshark) = summary.get(name).and_then(|r| leading_int(&r["packets"])) {
            assert_eq!(
                tshark - tshark_non_packets,
                expected,
                "{name}: capinfos and tshark disagree"
            );
        }
        let damaged = src["tags"].split(' ').any(|t| t == "damaged_file");
        let allowed = linktypes_for(&src["linktype"]);
        let size = fs::metadata(pcaps.join(name)).map(|m| m.len()).unwrap_or(0);

        let mut reader = match CaptureReader::open(pcaps.join(name)) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: cannot open: {e}"));
                continue;
            }
        };
        let format_ok = matches!(
            (src["file_format"].as_str(), reader.format()),
            ("pcap", CaptureFormat::Pcap { nanos: false, .. })
                | ("nsecpcap", CaptureFormat::Pcap { nanos: true, .. })
                | ("pcapng", CaptureFormat::Pcapng)
                | ("?", _)
        );
        if !format_ok {
            failures.push(format!(
                "{name}: format {:?}, capinfos says {}",
                reader.format(),
                src["file_format"]
            ));
        }
        let mut count = 0u64;
        let mut bad_link = None;
        let mut digest = DefaultHasher::new();
        let result = loop {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    count += 1;
                    (p.ts, p.link_type.0, p.wire_len, p.source, p.data).hash(&mut digest);
                    if let Some(allowed) = allowed {
                        if !allowed.contains(&p.link_type.0) && bad_link.is_none() {
                            bad_link = Some(p.link_type);
                        }
                    }
                    assert!(p.data.len() <= 16 << 20);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        total_packets += count;
        // The same bytes read in place must give the same packets and end.
        let in_place = fs::read(pcaps.join(name))
            .map_err(|e| e.to_string())
            .and_then(|b| CaptureReader::from_bytes(Bytes::from(b)).map_err(|e| e.to_string()))
            .map(|mut r| {
                let mut n = 0u64;
                let mut d = DefaultHasher::new();
                let end = loop {
                    match r.next_packet() {
                        Ok(Some(p)) => {
                            n += 1;
                            (p.ts, p.link_type.0, p.wire_len, p.source, p.data).hash(&mut d);
                        }
                        Ok(None) => break None,
                        Err(e) => break Some((e.kind, e.offset)),
                    }
                };
                (n, d.finish(), end, r.bytes_consumed())
            });
        let streamed = (
            count,
            digest.finish(),
            result.as_ref().err().map(|e| (e.kind, e.offset)),
            reader.bytes_consumed(),
        );
        if in_place != Ok(streamed) {
            failures.push(format!(
                "{name}: read in place {in_place:?}, streamed {streamed:?}"
            ));
        }
        if reader.stats().skipped_blocks < tshark_non_packets {
            failures.push(format!(
                "{name}: fewer skipped blocks than tshark's extra records"
            ));
        }
        if let Some(LinkType(l)) = bad_link {
            failures.push(format!(
                "{name}: link type {l}, capinfos says {}",
                src["linktype"]
            ));
        }
        if count != expected {
            failures.push(format!(
                "{name}: {count} packets, capinfos/tshark read {expected}"
            ));
        }
        match (damaged, result) {
            (false, Ok(())) => {
                assert_eq!(
                    reader.bytes_consumed(),
                    size,
                    "{name}: not all bytes consumed"
                );
            }
            (false, Err(e)) => failures.push(format!("{name}: unexpected error: {e}")),
            (true, Ok(())) => failures.push(format!("{name}: damaged file read cleanly")),
            (true, Err(e)) => {
                eprintln!("capture_corpus: {name}: {count} packets, then {e}");
                // Offsets worked out by hand from the files (module comment).
                let expected_at = match name.as_str() {
                    "gopacket__le__test901.pcapng" => Some((CaptureErrorKind::Unsupported, 480)),
                    "ndpi__fuzz-2021-10-13.pcap" => Some((CaptureErrorKind::Truncated, 237)),
                    // 24 + six records; the 7th claims 4325376 bytes.
                    "suricata__bug-1450-04__tls_DER-incomplete-header.pcap" => {
                        Some((CaptureErrorKind::Corrupt, 5035))
                    }
                    _ => None,
                };
                if let Some(want) = expected_at {
                    if (e.kind, e.offset) != want {
                        failures.push(format!("{name}: {e}, expected {want:?}"));
                    }
                }
                assert!(
                    e.offset < size,
                    "{name}: error offset {} past end",
                    e.offset
                );
                assert!(
                    e.offset >= reader.bytes_consumed(),
                    "{name}: offset before last packet"
                );
                assert!(matches!(
                    e.kind,
                    CaptureErrorKind::Truncated
                        | CaptureErrorKind::Corrupt
                        | CaptureErrorKind::Unsupported
                ));
            }
        }
    }
    eprintln!(
        "capture_corpus: {} files, {total_packets} packets, {} failures",
        names.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}
