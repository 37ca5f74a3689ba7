//! Generator tests. The decoding here uses `pcap-parser` and `etherparse`
//! (independent implementations), never the generator's own code.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::PcapCapture;

use super::{generate, GenConfig};

fn small(seed: u64) -> GenConfig {
    GenConfig {
        flows: 80,
        packets: 4_000,
        seed,
        ..GenConfig::default()
    }
}

fn bytes_of(cfg: &GenConfig) -> Vec<u8> {
    match generate(cfg, Vec::new()) {
        Ok((_, v)) => v,
        Err(e) => panic!("generate: {e}"),
    }
}

/// One decoded packet.
#[derive(Debug, Clone)]
struct Pkt {
    ts_us: u64,
    vlan: bool,
    v6: bool,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    tcp: Option<(u32, u32, u8)>,
    payload: Vec<u8>,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// RFC 1071: the one's-complement sum of a valid header, checksum
/// included, is 0xffff.
fn ones_sum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += (u32::from(c[0]) << 8) | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Parses the whole capture with pcap-parser and every frame with
/// etherparse, checking lengths and checksums on the way.
fn decode(file: &[u8]) -> Vec<Pkt> {
    let cap = match PcapCapture::from_file(file) {
        Ok(c) => c,
        Err(e) => panic!("pcap-parser rejected the capture: {e:?}"),
    };
    assert_eq!(cap.header.network.0, 1, "LINKTYPE_ETHERNET");
    assert_eq!((cap.header.version_major, cap.header.version_minor), (2, 4));
    let mut out = Vec::new();
    for b in &cap.blocks {
        assert_eq!(b.caplen as usize, b.data.len());
        assert_eq!(b.caplen, b.origlen);
        assert!(b.data.len() >= 60, "Ethernet minimum frame");
        assert!(b.ts_usec < 1_000_000);
        let sp = match SlicedPacket::from_ethernet(b.data) {
            Ok(sp) => sp,
            Err(e) => panic!("etherparse: {e:?}"),
        };
        let vlan = !sp.link_exts.is_empty();
        let l2 = if vlan { 18 } else { 14 };
        let (v6, src_ip, dst_ip, ip_len) = match &sp.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(ones_sum(h.slice()), 0xffff, "IPv4 header checksum");
                (
                    false,
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    h.total_len() as usize,
                )
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                (
                    true,
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    40 + h.payload_length() as usize,
                )
            }
            other => panic!("not IP: {other:?}"),
        };
        // The frame is the IP packet, padded with zeros to 60 bytes if short.
        assert_eq!(b.data.len(), (l2 + ip_len).max(60));
        assert!(b.data[l2 + ip_len..].iter().all(|&x| x == 0));
        let ips = |v4: fn(&IpAddr) -> Option<[u8; 4]>| (v4(&src_ip), v4(&dst_ip));
        let to4 = |a: &IpAddr| match a {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        };
        let to16 = |a: &IpAddr| match a {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        };
        let (s4, d4) = ips(to4);
        let (tcp, sport, dport, payload) = match &sp.transport {
            Some(TransportSlice::Tcp(t)) => {
                let want = match (s4, d4) {
                    (Some(s), Some(d)) => t.calc_checksum_ipv4(s, d),
                    _ => t.calc_checksum_ipv6(to16(&src_ip), to16(&dst_ip)),
                };
                assert_eq!(want.ok(), Some(t.checksum()), "TCP checksum");
                let flags = b.data[l2 + ip_len - t.slice().len() + 13];
                let hdr = (t.sequence_number(), t.acknowledgment_number(), flags);
                (
                    Some(hdr),
                    t.source_port(),
                    t.destination_port(),
                    t.payload().to_vec(),
                )
            }
            Some(TransportSlice::Udp(u)) => {
                let h = u.to_header();
                let want = match (s4, d4) {
                    (Some(s), Some(d)) => h.calc_checksum_ipv4_raw(s, d, u.payload()),
                    _ => h.calc_checksum_ipv6_raw(to16(&src_ip), to16(&dst_ip), u.payload()),
                };
                assert_eq!(want.ok(), Some(u.checksum()), "UDP checksum");
                (
                    None,
                    u.source_port(),
                    u.destination_port(),
                    u.payload().to_vec(),
                )
            }
            other => panic!("not TCP/UDP: {other:?}"),
        };
        out.push(Pkt {
            ts_us: u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec),
            vlan,
            v6,
            src: (src_ip, sport),
            dst: (dst_ip, dport),
            tcp,
            payload,
        });
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = bytes_of(&small(5));
    let b = bytes_of(&small(5));
    assert!(a == b, "same config must give identical bytes");
    assert!(
        a != bytes_of(&small(6)),
        "another seed must give other bytes"
    );
}

#[test]
fn capture_parses_with_exact_count_and_valid_checksums() {
    let cfg = small(11);
    let (sum, file) = match generate(&cfg, Vec::new()) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    let pkts = decode(&file);
    assert_eq!(pkts.len() as u64, cfg.packets);
    assert_eq!(sum.packets, cfg.packets);
    // 24-byte file header + 16 bytes per record + frames.
    assert_eq!(file.len() as u64, 24 + 16 * sum.packets + sum.frame_bytes);
    assert!(
        pkts.windows(2).all(|w| w[0].ts_us <= w[1].ts_us),
        "timestamps monotone"
    );
    assert!(pkts.iter().any(|p| p.v6) && pkts.iter().any(|p| !p.v6));
    assert!(pkts.iter().any(|p| p.vlan));
    assert!(pkts.iter().any(|p| p.tcp.is_some()) && pkts.iter().any(|p| p.tcp.is_none()));
    // Bulk segments are MSS-sized (1460 over IPv4).
    assert!(pkts
        .iter()
        .any(|p| !p.v6 && p.tcp.is_some() && p.payload.len() == 1460));
}

type Conn = ((IpAddr, u16), (IpAddr, u16));

/// TCP packets grouped by connection (client = sender of the first SYN).
fn tcp_conns(pkts: &[Pkt]) -> HashMap<Conn, Vec<(bool, Pkt)>> {
    let mut conns: HashMap<Conn, Vec<(bool, Pkt)>> = HashMap::new();
    for p in pkts.iter().filter(|p| p.tcp.is_some()) {
        if conns.contains_key(&(p.dst, p.src)) {
            conns
                .entry((p.dst, p.src))
                .or_default()
                .push((false, p.clone()));
        } else {
            conns
                .entry((p.src, p.dst))
                .or_default()
                .push((true, p.clone()));
        }
    }
    conns
}

#[test]
fn tcp_handshakes_and_acks_are_consistent() {
    let pkts = decode(&bytes_of(&small(21)));
    let conns = tcp_conns(&pkts);
    let mut handshakes = 0;
    for (key, c) in &conns {
        let Some((true, first)) = c.first() else {
            panic!("{key:?} starts from the server")
        };
        let (isn_c, _, f) = first.tcp.unwrap_or_default();
        assert_eq!(f, SYN, "{key:?}: first packet is a bare SYN");
        let Some(syn_ack) = c
            .iter()
            .find(|(cl, p)| !cl && p.tcp.is_some_and(|t| t.2 & SYN != 0))
        else {
            continue;
        };
        let (isn_s, ack, _) = syn_ack.1.tcp.unwrap_or_default();
        // RFC 793 §3.4: the SYN-ACK acknowledges ISN+1; the client's ACK
        // then carries seq ISN+1 and acknowledges the server's ISN+1.
        assert_eq!(ack, isn_c.wrapping_add(1), "{key:?} SYN-ACK ack");
        let third = c
            .iter()
            .find(|(cl, p)| *cl && p.tcp.is_some_and(|t| t.2 & SYN == 0));
        let Some((_, third)) = third else { continue };
        let (seq3, ack3, f3) = third.tcp.unwrap_or_default();
        if f3 & RST == 0 {
            assert_eq!(
                (seq3, ack3),
                (isn_c.wrapping_add(1), isn_s.wrapping_add(1)),
                "{key:?}"
            );
            handshakes += 1;
        }
        // No side ever acknowledges bytes the other has not sent yet.
        let mut sent_end = [isn_c.wrapping_add(1), isn_s.wrapping_add(1)];
        for (cl, p) in c {
            let (seq, ack, fl) = p.tcp.unwrap_or_default();
            let me = usize::from(!*cl);
            if fl & SYN != 0 {
                continue;
            }
            let end = seq
                .wrapping_add(p.payload.len() as u32)
                .wrapping_add(u32::from(fl & FIN != 0));
            if end.wrapping_sub(sent_end[me]) as i32 > 0 {
                sent_end[me] = end;
            }
            if fl & ACK != 0 && fl & RST == 0 {
                let peer_end = sent_end[1 - me];
                assert!(
                    peer_end.wrapping_sub(ack) as i32 >= 0,
                    "{key:?}: ack {ack} beyond peer's {peer_end}"
                );
            }
        }
    }
    assert!(handshakes > 10, "only {handshakes} handshakes");
}

#[test]
fn http_bodies_match_content_length() {
    let pkts = decode(&bytes_of(&small(31)));
    let mut checked = 0;
    for c in tcp_conns(&pkts).values() {
        let Some((_, first)) = c.first() else {
            continue;
        };
        if first.dst.1 != 80 && first.dst.1 != 8080 {
            continue;
        }
        // Server stream by sequence number, retransmissions overwriting the same bytes.
        let mut stream: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
        let mut req = Vec::new();
        for (cl, p) in c {
            let seq = p.tcp.unwrap_or_default().0;
            if *cl {
                if !p.payload.is_empty() && req.is_empty() {
                    req = p.payload.clone();
                }
            } else if !p.payload.is_empty() {
                stream.insert(seq, p.payload.clone());
            }
        }
        if req.is_empty() || stream.is_empty() {
            continue;
        }
        assert!(req.starts_with(b"GET /") && req.ends_with(b"\r\n\r\n"));
        let data: Vec<u8> = stream.into_values().flatten().collect();
        let text = String::from_utf8_lossy(&data);
        // Walk responses: each declares its body length (RFC 9112 §6.3).
        let mut rest: &str = &text;
        let mut complete = true;
        while !rest.is_empty() {
            assert!(
                rest.starts_with("HTTP/1.1 "),
                "response starts with a status line"
            );
            let Some(head_end) = rest.find("\r\n\r\n") else {
                panic!("no end of head")
            };
            let head = &rest[..head_end];
            let cl: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no Content-Length in {head}"));
            let end = head_end + 4 + cl;
            if end > rest.len() {
                complete = false; // the capture ended mid-response
                break;
            }
            rest = &rest[end..];
        }
        if complete {
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} HTTP conversations checked");
}

#[test]
fn dns_answers_echo_the_query() {
    let pkts = decode(&bytes_of(&small(41)));
    let queries: HashMap<_, _> = pkts
        .iter()
        .filter(|p| p.tcp.is_none() && p.dst.1 == 53)
        .map(|p| ((p.src, p.dst), p.payload.clone()))
        .collect();
    let mut answered = 0;
    for r in pkts.iter().filter(|p| p.tcp.is_none() && p.src.1 == 53) {
        let Some(q) = queries.get(&(r.dst, r.src)) else {
            panic!("response without query")
        };
        let a = &r.payload;
        // RFC 1035 §4.1.1: same ID; QR set in the response, clear in the query;
        // one question, echoed byte for byte.
        assert_eq!(q[..2], a[..2]);
        assert_eq!(q[2] & 0x80, 0);
        assert_eq!(a[2] & 0x80, 0x80);
        assert_eq!(q[4..6], [0, 1]);
        let qlen = q.len() - 12;
        assert_eq!(q[12..], a[12..12 + qlen]);
        let ancount = u16::from_be_bytes([a[6], a[7]]);
        let rcode = a[3] & 0x0f;
        assert_eq!(ancount, u16::from(rcode == 0));
        if ancount == 1 {
            let rr = &a[12 + qlen..];
            assert_eq!(rr[..2], [0xc0, 0x0c], "name compressed to the question");
            let rdlen = usize::from(u16::from_be_bytes([rr[10], rr[11]]));
            assert_eq!(rr.len(), 12 + rdlen);
            answered += 1;
        }
    }
    assert!(answered > 3);
}

#[test]
fn sample_covers_every_feature() {
    let file = bytes_of(&GenConfig::sample());
    assert!(file.len() < 100 * 1024, "sample is {} bytes", file.len());
    let pkts = decode(&file);
    assert!((150..1000).contains(&pkts.len()), "{} packets", pkts.len());
    let tcp = |p: &Pkt, f: u8| p.tcp.is_some_and(|t| t.2 & f == f);
    assert!(pkts.iter().any(|p| p.v6));
    assert!(pkts.iter().any(|p| p.vlan));
    assert!(pkts.iter().any(|p| tcp(p, RST)));
    assert!(pkts.iter().any(|p| tcp(p, FIN)));
    assert!(pkts.iter().any(|p| p.dst.1 == 53));
    assert!(
        pkts.iter()
            .any(|p| p.dst.1 == 443 && p.payload.first() == Some(&22)),
        "TLS handshake"
    );
    // A SYN that nobody answers.
    let conns = tcp_conns(&pkts);
    assert!(conns.values().any(|c| c.iter().all(|(cl, _)| *cl)));
    // A retransmission: the same data segment (seq, length) seen twice.
    let mut seen = std::collections::HashSet::new();
    let retx = pkts.iter().filter(|p| !p.payload.is_empty()).any(|p| {
        let key = (p.src, p.dst, p.tcp.map(|t| t.0), p.payload.len());
        p.tcp.is_some() && !seen.insert(key)
    });
    assert!(retx, "no retransmission");
}

#[test]
fn committed_sample_is_reproducible() {
    let fresh = bytes_of(&GenConfig::sample());
    assert!(fresh == bytes_of(&GenConfig::sample()));
    let path = crate::workspace_root().join("samples").join("sample.pcap");
    if let Ok(committed) = std::fs::read(&path) {
        assert!(
            committed == fresh,
            "{} differs from `cargo xtask gen-sample` output",
            path.display()
        );
    }
}
