//! Unit tests on hand-built handshakes. Expected values come from the
//! specs (FoxIO JA4.md's worked example, RFC 8446's HRR random) or from
//! tshark's output in the shared corpus truth, never from this code.
#![allow(clippy::unwrap_used)]

use flowscope_core::{FlowSide, Probe, SessionEvent, SessionParser, Timestamp};
use proptest::prelude::*;

use super::server_hello::HRR_RANDOM;
use super::*;

fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn u16_list(vals: &[u16], len_bytes: usize) -> Vec<u8> {
    let body: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut v = if len_bytes == 1 {
        vec![body.len() as u8]
    } else {
        (body.len() as u16).to_be_bytes().to_vec()
    };
    v.extend(body);
    v
}

fn hello_body(version: u16, random: [u8; 32], ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&random);
    b.push(0); // session id
    b.extend(u16_list(ciphers, 2));
    b.extend([1, 0]); // null compression
    let e: Vec<u8> = exts.concat();
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    b
}

fn server_body(version: u16, random: [u8; 32], cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&random);
    b.push(0);
    b.extend(cipher.to_be_bytes());
    b.push(0);
    let e: Vec<u8> = exts.concat();
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    b
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

/// `payload` in records of content type `ty`, at most `frag` bytes each.
fn records(ty: u8, payload: &[u8], frag: usize) -> Vec<u8> {
    payload
        .chunks(frag)
        .flat_map(|c| {
            let mut r = vec![ty, 3, 1];
            r.extend((c.len() as u16).to_be_bytes());
            r.extend_from_slice(c);
            r
        })
        .collect()
}

/// The ClientHello of FoxIO's JA4.md worked example: its ciphers,
/// extensions and signature algorithms, ALPN h2, TLS 1.3, an SNI.
fn foxio_example() -> Vec<u8> {
    let ciphers = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let order = [
        0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
        0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
    ];
    let sigs = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    let mut exts = vec![ext(0x0a0a, &[])]; // GREASE, ignored by JA4
    for ty in order {
        exts.push(match ty {
            0x0000 => ext(
                0,
                &[
                    0, 14, 0, 0, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o',
                    b'm',
                ],
            ),
            0x0010 => ext(0x10, &[0, 3, 2, b'h', b'2']),
            0x000d => ext(0x0d, &u16_list(&sigs, 2)),
            0x002b => ext(0x2b, &u16_list(&[0x3a3a, 0x0304, 0x0303], 1)),
            t => ext(t, &[]),
        });
    }
    let mut c = vec![0x2a2a];
    c.extend(ciphers);
    handshake(1, &hello_body(0x0303, [7; 32], &c, &exts))
}

fn run(p: &mut TlsParser, side: FlowSide, data: &[u8]) -> Vec<SessionEvent<TlsMessage>> {
    let mut ev = Vec::new();
    p.on_data(side, data, Timestamp::from_nanos(1), &mut |e| ev.push(e));
    ev
}

fn hellos(ev: &[SessionEvent<TlsMessage>]) -> Vec<&ClientHello> {
    ev.iter()
        .filter_map(|e| match e {
            SessionEvent::Message(TlsMessage::ClientHello(c)) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn probe_verdicts() {
    let rec = records(22, &foxio_example(), 16384);
    assert_eq!(probe_tls(&rec), Probe::Match);
    assert_eq!(probe_tls(&rec[..4]), Probe::NeedMore);
    assert_eq!(probe_tls(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
    // Application data first is no handshake.
    assert_eq!(probe_tls(&[23, 3, 3, 0, 10]), Probe::NoMatch);
    // SSLv2-compatible CLIENT-HELLO: 2-byte header, type 1, version 3.1.
    assert_eq!(probe_tls(&[0x80, 0x2e, 1, 3, 1, 0, 0x15]), Probe::Match);
}

#[test]
fn ja4_matches_foxio_worked_example() {
    let mut p = TlsParser::default();
    let ev = run(
        &mut p,
        FlowSide::Initiator,
        &records(22, &foxio_example(), 16384),
    );
    let ch = hellos(&ev);
    assert_eq!(ch.len(), 1);
    // JA4.md: "JA4 = t13d1516h2_8daaf6152771_e5627efa2ab1".
    assert_eq!(
        ch[0].ja4.as_deref(),
        Some("t13d1516h2_8daaf6152771_e5627efa2ab1")
    );
    assert!(ch[0].ja4_r.as_deref().unwrap().starts_with(
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,"
    ));
    assert_eq!(ch[0].sni.as_deref(), Some("example.com"));
    assert_eq!(ch[0].alpn, vec!["h2".to_owned()]);
    assert_eq!(ch[0].supported_versions, vec![0x3a3a, 0x0304, 0x0303]);
    assert_eq!(ch[0].extensions.first(), Some(&0x0a0a), "GREASE kept raw");
}

#[test]
fn ja3_matches_tshark() {
    // zeek__hrr.pcap frame 4, tshark: "771,4866-4867-4865-255,
    // 11-10-35-22-23-13-43-45-51,21-23-24,0-1-2" = 0f14b679807628ec7f9c02cada3ee941.
    // GREASE values added here must be dropped.
    let exts = vec![
        ext(0x1a1a, &[]),
        ext(11, &[3, 0, 1, 2]),
        ext(10, &u16_list(&[0x4a4a, 21, 23, 24], 2)),
        ext(35, &[]),
        ext(22, &[]),
        ext(23, &[]),
        ext(13, &u16_list(&[0x0403], 2)),
        ext(43, &u16_list(&[0x0304], 1)),
        ext(45, &[1, 1]),
        ext(51, &[0, 0]),
    ];
    let body = hello_body(0x0303, [1; 32], &[0xdada, 4866, 4867, 4865, 255], &exts);
    let mut p = TlsParser::default();
    let ev = run(
        &mut p,
        FlowSide::Initiator,
        &records(22, &handshake(1, &body), 16384),
    );
    let ch = hellos(&ev);
    assert_eq!(
        ch[0].ja3.as_deref(),
        Some("771,4866-4867-4865-255,11-10-35-22-23-13-43-45-51,21-23-24,0-1-2")
    );
    assert_eq!(
        ch[0].ja3_hash.as_deref(),
        Some("0f14b679807628ec7f9c02cada3ee941")
    );
}

#[test]
fn alpn_hex_rule_from_spec() {
    // JA4.md: 0xAB -> "ab", 0xAB 0xCD -> "ad", 0x30 0xAB -> "3b",
    // 0x30 0x31 0xAB 0xCD -> "3d", 0x30 0xAB 0xCD 0x31 -> "01".
    for (alpn, want) in [
        (&[0xab][..], "ab"),
        (&[0xab, 0xcd][..], "ad"),
        (&[0x30, 0xab][..], "3b"),
        (&[0x30, 0x31, 0xab, 0xcd][..], "3d"),
        (&[0x30, 0xab, 0xcd, 0x31][..], "01"),
        (&b"h"[..], "hh"),
    ] {
        let mut list = vec![0, alpn.len() as u8 + 1, alpn.len() as u8];
        list.extend_from_slice(alpn);
        let body = hello_body(0x0303, [1; 32], &[0x1301], &[ext(0x10, &list)]);
        let mut p = TlsParser::default();
        let ev = run(
            &mut p,
            FlowSide::Initiator,
            &records(22, &handshake(1, &body), 16384),
        );
        let ja4 = hellos(&ev)[0].ja4.clone().unwrap();
        assert_eq!(&ja4[8..10], want, "{alpn:?}");
    }
}

#[test]
fn hello_across_records_and_segments() {
    let whole = run(
        &mut TlsParser::default(),
        FlowSide::Initiator,
        &records(22, &foxio_example(), 16384),
    );
    // 40-byte records, fed one byte at a time.
    let bytes = records(22, &foxio_example(), 40);
    let mut p = TlsParser::default();
    let mut ev = Vec::new();
    for b in bytes.chunks(1) {
        ev.extend(run(&mut p, FlowSide::Initiator, b));
    }
    assert_eq!(hellos(&ev).len(), 1);
    assert_eq!(hellos(&ev)[0].ja4, hellos(&whole)[0].ja4);
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn hello_retry_request_and_second_client_hello() {
    let mut p = TlsParser::default();
    run(
        &mut p,
        FlowSide::Initiator,
        &records(22, &foxio_example(), 16384),
    );
    let hrr = server_body(0x0303, HRR_RANDOM, 0x1301, &[ext(0x2b, &[3, 4])]);
    let ev = run(
        &mut p,
        FlowSide::Responder,
        &records(22, &handshake(2, &hrr), 16384),
    );
    let SessionEvent::Message(TlsMessage::ServerHello(sh)) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(sh.is_hello_retry_request);
    assert_eq!(sh.selected_version, Some(0x0304));
    // RFC 8446 D.4: a dummy ChangeCipherSpec may precede the second hello.
    let mut second = records(20, &[1], 16384);
    second.extend(records(22, &foxio_example(), 16384));
    let ev = run(&mut p, FlowSide::Initiator, &second);
    assert_eq!(hellos(&ev).len(), 1);
}

#[test]
fn tls12_ciphertext_after_ccs_is_skipped() {
    let mut p = TlsParser::default();
    let sh = server_body(0x0303, [9; 32], 0xc02f, &[]);
    let mut s = records(22, &handshake(2, &sh), 16384);
    s.extend(records(20, &[1], 16384));
    // An encrypted Finished that happens to start like a ClientHello.
    s.extend(records(22, &handshake(1, &[0xff; 40]), 16384));
    s.extend(records(23, &[0xaa; 3000], 1000));
    let ev = run(&mut p, FlowSide::Responder, &s);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let SessionEvent::Message(TlsMessage::ServerHello(sh)) = &ev[0] else {
        panic!()
    };
    assert_eq!(sh.ja3s, "771,49199,");
    assert!(!p.is_poisoned());
}

#[test]
fn oversized_handshake_is_capped() {
    let mut p = TlsParser::new(TlsConfig::default().with_max_handshake_bytes(100));
    let ev = run(
        &mut p,
        FlowSide::Initiator,
        &records(22, &foxio_example(), 16384),
    );
    assert!(hellos(&ev).is_empty());
    assert!(ev.iter().any(|e| matches!(e,
        SessionEvent::Anomaly { anomaly, .. } if anomaly.code == "tls.handshake_too_large")));
    assert_eq!(p.buffered_bytes(), 0);
}

#[test]
fn sslv2_compatible_hello() {
    // CLIENT-HELLO: type 1, version 3.1, 6 bytes of specs (one SSLv2-only
    // spec 0x010080, one TLS suite 0x00002f), no session id, 16-byte challenge.
    let mut body = vec![
        1, 3, 1, 0, 6, 0, 0, 0, 16, 0x01, 0x00, 0x80, 0x00, 0x00, 0x2f,
    ];
    body.extend([0x55; 16]);
    let mut rec = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
    rec.extend(&body);
    assert_eq!(probe_tls(&rec), Probe::Match);
    let mut p = TlsParser::default();
    let ev = run(&mut p, FlowSide::Initiator, &rec);
    let ch = hellos(&ev);
    assert!(ch[0].sslv2);
    assert_eq!(ch[0].version, 0x0301);
    assert_eq!(ch[0].cipher_suites, vec![0x002f]);
    assert_eq!(ch[0].ja3, None);
}

#[test]
fn certificate_fingerprint_without_valid_der() {
    // Chain of one "certificate" whose bytes are "abc": no X.509, but the
    // SHA-1 (FIPS 180 test vector a9993e36…) is still the fingerprint.
    let body = [0, 0, 6, 0, 0, 3, b'a', b'b', b'c'];
    let mut p = TlsParser::default();
    let ev = run(
        &mut p,
        FlowSide::Responder,
        &records(22, &handshake(11, &body), 16384),
    );
    let c = ev
        .iter()
        .find_map(|e| match e {
            SessionEvent::Message(TlsMessage::Certificates(c)) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(c.chain_len, 1);
    assert_eq!(
        c.fingerprint.as_deref(),
        Some("a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d")
    );
    assert_eq!(c.subject, None);
}

#[test]
fn session_and_eve_version_names() {
    // Suricata's SSLVersionToString spellings.
    assert_eq!(suricata_version_name(0x0301), "TLSv1");
    assert_eq!(suricata_version_name(0x0303), "TLS 1.2");
    assert_eq!(suricata_version_name(0x7f1c), "TLS 1.3 draft-28");
    assert_eq!(suricata_version_name(0x1234), "0x1234");
    let mut s = TlsSession::default();
    let mut p = TlsParser::default();
    for e in run(
        &mut p,
        FlowSide::Initiator,
        &records(22, &foxio_example(), 16384),
    ) {
        if let SessionEvent::Message(m) = e {
            s.apply(&m);
        }
    }
    assert_eq!(s.client_hellos, 1);
    assert_eq!(s.version(), None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                   b in proptest::collection::vec(any::<u8>(), 0..600),
                                   cut in 0usize..600) {
        let mut p = TlsParser::new(TlsConfig::default().with_max_handshake_bytes(256));
        // A valid prefix then garbage, split anywhere, both sides, plus gaps.
        let mut s = records(22, &foxio_example(), 64);
        s.extend(&a);
        let cut = cut.min(s.len());
        run(&mut p, FlowSide::Initiator, &s[..cut]);
        p.on_gap(FlowSide::Initiator, 3, Timestamp::ZERO, &mut |_| {});
        run(&mut p, FlowSide::Initiator, &s[cut..]);
        run(&mut p, FlowSide::Responder, &b);
        prop_assert!(p.buffered_bytes() <= 2 * 256);
    }
}

#[test]
fn memory_used_counts_a_handshake_message_in_progress() {
    // A 20 000-byte ClientHello (RFC 8446 §4: type 1, 24-bit length) in
    // records of 16 384 bytes: after the first record its first 16 380
    // body bytes are collected, at least that much buffer.
    let body = vec![0u8; 20_000];
    let bytes = records(22, &handshake(1, &body), 16_384);
    let first = &bytes[..5 + 16_384];
    let mut p = TlsParser::default();
    assert_eq!(SessionParser::memory_used(&p), 0);
    p.on_data(FlowSide::Initiator, first, Timestamp::ZERO, &mut |_| {});
    assert_eq!(p.buffered_bytes(), 16_380);
    assert!(SessionParser::memory_used(&p) >= 16_380);
}
