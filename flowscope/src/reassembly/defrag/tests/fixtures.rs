//! Hand-built IPv4 and IPv6 UDP datagrams and their fragments.
//!
//! Checksums use the textbook 16-bit word loop of RFC 1071 §4.1, written
//! apart from the defragmenter's; the extractor (with checksum verification)
//! then acts as an independent check that the fixtures are right.

use flowscope_core::{ChecksumStatus, FlowExtractor, L4Proto, LinkType, PacketView, Timestamp};

use crate::extract::{ExtractConfig, FiveTupleExtractor};

pub const V4_SRC: [u8; 4] = [192, 0, 2, 1];
pub const V4_DST: [u8; 4] = [198, 51, 100, 2];
pub const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const SPORT: u16 = 5353;
pub const DPORT: u16 = 53;

/// RFC 1071 §4.1: 16-bit big-endian words, odd byte padded, carries folded.
pub fn csum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    if i < bytes.len() {
        sum += u32::from(bytes[i]) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A recognisable payload: byte `i` is `i * 7 + seed` (mod 256).
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// A UDP header and payload with the checksum over `pseudo`.
fn udp(pseudo: &[u8], data: &[u8]) -> Vec<u8> {
    let len = (8 + data.len()) as u16;
    let mut u = Vec::new();
    u.extend_from_slice(&SPORT.to_be_bytes());
    u.extend_from_slice(&DPORT.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut all = pseudo.to_vec();
    all.extend_from_slice(&u);
    let c = csum(&all);
    u[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    u
}

/// An IPv4 header (`options` appended, a multiple of 4 bytes) with a valid
/// checksum for a `payload_len`-byte payload.
pub fn ipv4_header(id: u16, proto: u8, field: u16, options: &[u8], payload_len: usize) -> Vec<u8> {
    let ihl = 20 + options.len();
    let mut h = vec![0u8; 20];
    h[0] = 0x40 | (ihl / 4) as u8;
    h[2..4].copy_from_slice(&((ihl + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&field.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&V4_SRC);
    h[16..20].copy_from_slice(&V4_DST);
    h.extend_from_slice(options);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A whole IPv4 UDP packet carrying `data`.
pub fn udp_v4(id: u16, options: &[u8], data: &[u8]) -> Vec<u8> {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&V4_SRC);
    pseudo.extend_from_slice(&V4_DST);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    let u = udp(&pseudo, data);
    let mut p = ipv4_header(id, 17, 0, options, u.len());
    p.extend_from_slice(&u);
    p
}

/// One IPv4 fragment: `header` (from the whole packet) re-fielded, carrying
/// `chunk` at byte `offset` (a multiple of 8).
pub fn v4_fragment(whole: &[u8], offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
    let ihl = usize::from(whole[0] & 0x0f) * 4;
    let id = u16::from_be_bytes([whole[4], whole[5]]);
    let field = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut f = ipv4_header(id, whole[9], field, &whole[20..ihl], chunk.len());
    f.extend_from_slice(chunk);
    f
}

/// Cuts an IPv4 packet into fragments of `size` payload bytes (a multiple of 8).
pub fn fragment_v4(whole: &[u8], size: usize) -> Vec<Vec<u8>> {
    let ihl = usize::from(whole[0] & 0x0f) * 4;
    let body = &whole[ihl..];
    body.chunks(size)
        .enumerate()
        .map(|(i, c)| v4_fragment(whole, i * size, (i + 1) * size < body.len(), c))
        .collect()
}

/// Length of the Hop-by-Hop header the IPv6 fixtures carry in front.
pub const HBH_LEN: usize = 8;

/// A whole IPv6 UDP packet carrying `data`, behind a Hop-by-Hop Options
/// header (PadN only) when `hbh`.
pub fn udp_v6(hbh: bool, data: &[u8]) -> Vec<u8> {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&V6_SRC);
    pseudo.extend_from_slice(&V6_DST);
    pseudo.extend_from_slice(&((8 + data.len()) as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    let u = udp(&pseudo, data);
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[7] = 64;
    p[8..24].copy_from_slice(&V6_SRC);
    p[24..40].copy_from_slice(&V6_DST);
    if hbh {
        p[6] = 0;
        // Next header UDP, length 0 (8 bytes), PadN option of 4 bytes.
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    } else {
        p[6] = 17;
    }
    p.extend_from_slice(&u);
    let plen = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p
}

/// One IPv6 fragment of `whole` (built by [`udp_v6`]) carrying `chunk` of
/// the fragmentable part at byte `offset`.
pub fn v6_fragment(whole: &[u8], id: u32, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
    let unfrag = if whole[6] == 0 { 40 + HBH_LEN } else { 40 };
    let mut f = whole[..unfrag].to_vec();
    // The header before the Fragment header now names it; the Fragment
    // header names what that header used to name.
    let (pos, next) = if unfrag == 40 {
        (6, whole[6])
    } else {
        (40, whole[40])
    };
    f[pos] = 44;
    f.push(next);
    f.push(0);
    let field = (offset as u16) | u16::from(more);
    f.extend_from_slice(&field.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(chunk);
    let plen = (f.len() - 40) as u16;
    f[4..6].copy_from_slice(&plen.to_be_bytes());
    f
}

/// Cuts an IPv6 packet into fragments of `size` fragmentable bytes.
pub fn fragment_v6(whole: &[u8], id: u32, size: usize) -> Vec<Vec<u8>> {
    let unfrag = if whole[6] == 0 { 40 + HBH_LEN } else { 40 };
    let body = &whole[unfrag..];
    body.chunks(size)
        .enumerate()
        .map(|(i, c)| v6_fragment(whole, id, i * size, (i + 1) * size < body.len(), c))
        .collect()
}

/// Runs `packet` through the extractor as a raw-IP frame with checksum
/// verification and checks it is one whole UDP datagram carrying `data`.
pub fn assert_whole_udp(packet: &[u8], data: &[u8]) {
    let config = ExtractConfig {
        verify_checksums: true,
        ..Default::default()
    };
    let ex = FiveTupleExtractor::new(config);
    let view = PacketView::new(packet, Timestamp::ZERO, LinkType::RAW);
    let x = ex.extract(&view).expect("the rebuilt packet extracts");
    assert_eq!(x.l4, L4Proto::Udp);
    assert_eq!(x.first_fragment, None);
    assert_eq!(x.checksum, ChecksumStatus::Good, "IP and UDP checksums");
    assert_eq!(x.payload.slice(packet), data, "whole UDP payload");
    assert_eq!(x.key.lo_port.min(x.key.hi_port), DPORT.min(SPORT));
}
