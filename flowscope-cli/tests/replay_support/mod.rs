//! Small captures built in code for the `flow-replay` tests, with valid
//! IPv4 header and transport checksums (RFC 1071, computed here).
#![allow(dead_code, clippy::unwrap_used, clippy::too_many_arguments)]

pub mod netns;

use std::path::PathBuf;
use std::time::Duration;

use flowscope_cli::replay::pcap_out::PcapWriter;
use flowscope_core::{LinkType, Timestamp};

/// 2023-11-14T22:13:20Z: the fixtures' first timestamp.
pub const T0: u64 = 1_700_000_000;

pub fn ts(secs_after: f64) -> Timestamp {
    Timestamp::from_secs_nanos(T0, 0).saturating_add(Duration::from_secs_f64(secs_after))
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut s: u32 = parts.iter().map(|p| sum16(p)).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4 frame carrying `l4` (protocol `proto`), whose checksum
/// at `ck` is filled in (UDP 6, TCP 16).
pub fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, mut l4: Vec<u8>, ck: usize) -> Vec<u8> {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    let c = checksum(&[&pseudo, &l4]);
    l4[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

pub fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ipv4_frame(src, dst, 17, u, 6)
}

/// TCP flags: SYN 0x02, ACK 0x10, FIN 0x01, PSH 0x08.
pub fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    ipv4_frame(src, dst, 6, t, 16)
}

/// A pcap of `(time after T0 in seconds, frame)`.
pub fn pcap(link: LinkType, frames: &[(f64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link).unwrap();
    for (t, f) in frames {
        w.write(ts(*t), f, f.len() as u32).unwrap();
    }
    w.finish().unwrap()
}

pub const A: [u8; 4] = [10, 0, 0, 1];
pub const B: [u8; 4] = [10, 0, 0, 2];
pub const C: [u8; 4] = [192, 168, 1, 7];

/// A UDP exchange at 0 s (A:1000 <-> B:53), then a second, unrelated UDP
/// flow at 100 s (C:2000 -> B:53): with the default 60 s UDP timeout the
/// first flow ends, idle, at 60 s, long before the second packet.
pub fn idle_then_later() -> Vec<u8> {
    pcap(
        LinkType::ETHERNET,
        &[
            (0.0, udp(A, 1000, B, 53, b"q1")),
            (0.5, udp(B, 53, A, 1000, b"r1")),
            (100.0, udp(C, 2000, B, 53, b"q2")),
        ],
    )
}

/// A complete TCP connection (handshake, data both ways, FIN both ways)
/// and a UDP exchange, over 3 s.
pub fn small_mix() -> Vec<u8> {
    let (s, d) = (A, B);
    pcap(
        LinkType::ETHERNET,
        &[
            (0.0, tcp(s, 40000, d, 80, 100, 0, 0x02, b"")),
            (0.01, tcp(d, 80, s, 40000, 500, 101, 0x12, b"")),
            (0.02, tcp(s, 40000, d, 80, 101, 501, 0x10, b"")),
            (
                0.03,
                tcp(
                    s,
                    40000,
                    d,
                    80,
                    101,
                    501,
                    0x18,
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                ),
            ),
            (
                0.05,
                tcp(
                    d,
                    80,
                    s,
                    40000,
                    501,
                    128,
                    0x18,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                ),
            ),
            (0.06, tcp(s, 40000, d, 80, 128, 540, 0x11, b"")),
            (0.07, tcp(d, 80, s, 40000, 540, 129, 0x11, b"")),
            (0.08, tcp(s, 40000, d, 80, 129, 541, 0x10, b"")),
            (1.0, udp(C, 5353, B, 53, b"hello")),
            (3.0, udp(B, 53, C, 5353, b"world")),
        ],
    )
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flow-replay-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn corpus_pcaps() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOWSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/corpus"));
    if dir.join("pcaps").is_dir() {
        Some(dir.join("pcaps"))
    } else {
        eprintln!(
            "SKIP: shared corpus not found at {} (set FLOWSCOPE_CORPUS)",
            dir.display()
        );
        None
    }
}
