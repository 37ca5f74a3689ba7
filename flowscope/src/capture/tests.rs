//! Unit tests over captures written byte by byte here, following the pcap
//! format (draft-ietf-opsawg-pcap) and pcapng (draft-ietf-opsawg-pcapng).

use std::io::{self, Read};

use flowscope_core::{LinkType, Timestamp};
use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------- builders

fn put32(v: &mut Vec<u8>, x: u32, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}
fn put16(v: &mut Vec<u8>, x: u16, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

/// A classic pcap file.
struct Pcap {
    be: bool,
    bytes: Vec<u8>,
    /// Offset after the header and after each record.
    ends: Vec<usize>,
}

impl Pcap {
    fn new(be: bool, nanos: bool, network: u32, snaplen: u32) -> Self {
        Self::with_version(be, nanos, network, snaplen, 2, 4)
    }
    fn with_version(
        be: bool,
        nanos: bool,
        network: u32,
        snaplen: u32,
        major: u16,
        minor: u16,
    ) -> Self {
        let mut b = Vec::new();
        put32(&mut b, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
        put16(&mut b, major, be);
        put16(&mut b, minor, be);
        put32(&mut b, 0, be); // thiszone
        put32(&mut b, 0, be); // sigfigs
        put32(&mut b, snaplen, be);
        put32(&mut b, network, be);
        let ends = vec![b.len()];
        Pcap { be, bytes: b, ends }
    }
    /// A record whose header claims `caplen` but carries `data`.
    fn raw_record(mut self, sec: u32, frac: u32, caplen: u32, orig: u32, data: &[u8]) -> Self {
        let be = self.be;
        put32(&mut self.bytes, sec, be);
        put32(&mut self.bytes, frac, be);
        put32(&mut self.bytes, caplen, be);
        put32(&mut self.bytes, orig, be);
        self.bytes.extend_from_slice(data);
        self.ends.push(self.bytes.len());
        self
    }
    fn record(self, sec: u32, frac: u32, data: &[u8]) -> Self {
        let n = data.len() as u32;
        self.raw_record(sec, frac, n, n, data)
    }
}

/// A pcapng file; blocks use the byte order of the last `shb`.
struct Ng {
    be: bool,
    bytes: Vec<u8>,
    /// Offset after each block.
    ends: Vec<usize>,
}

impl Ng {
    fn new() -> Self {
        Ng {
            be: false,
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }
    fn with(be: bool, bytes: Vec<u8>) -> Self {
        Ng {
            be,
            bytes,
            ends: Vec::new(),
        }
    }
    fn block(mut self, ty: u32, body: &[u8]) -> Self {
        let be = self.be;
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        put32(&mut self.bytes, ty, be);
        put32(&mut self.bytes, len, be);
        self.bytes.extend_from_slice(&body);
        put32(&mut self.bytes, len, be);
        self.ends.push(self.bytes.len());
        self
    }
    fn options(&self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        if opts.is_empty() {
            return v;
        }
        for (code, val) in opts {
            put16(&mut v, *code, self.be);
            put16(&mut v, val.len() as u16, self.be);
            v.extend_from_slice(val);
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
        }
        v.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        v
    }
    fn shb_version(mut self, be: bool, major: u16, minor: u16) -> Self {
        self.be = be;
        let mut body = Vec::new();
        put32(&mut body, 0x1a2b_3c4d, be);
        put16(&mut body, major, be);
        put16(&mut body, minor, be);
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        self.block(0x0a0d_0d0a, &body)
    }
    fn shb(self, be: bool) -> Self {
        self.shb_version(be, 1, 0)
    }
    fn idb(self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> Self {
        let be = self.be;
        let mut body = Vec::new();
        put16(&mut body, link, be);
        put16(&mut body, 0, be);
        put32(&mut body, snaplen, be);
        body.extend(self.options(opts));
        self.block(1, &body)
    }
    fn epb_raw(
        self,
        ty: u32,
        if_field: &[u8],
        ts: u64,
        caplen: u32,
        orig: u32,
        data: &[u8],
    ) -> Self {
        let be = self.be;
        let mut body = if_field.to_vec();
        put32(&mut body, (ts >> 32) as u32, be);
        put32(&mut body, ts as u32, be);
        put32(&mut body, caplen, be);
        put32(&mut body, orig, be);
        body.extend_from_slice(data);
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        // An epb_flags option, as Wireshark writes, to show options are skipped.
        if ty == 6 {
            body.extend(self.options(&[(2, &[0, 0, 0, 1])]));
        }
        self.block(ty, &body)
    }
    fn epb(self, if_id: u32, ts: u64, data: &[u8], orig: u32) -> Self {
        let mut f = Vec::new();
        put32(&mut f, if_id, self.be);
        self.epb_raw(6, &f, ts, data.len() as u32, orig, data)
    }
    fn spb(self, data: &[u8], orig: u32) -> Self {
        let mut body = Vec::new();
        put32(&mut body, orig, self.be);
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Got {
    data: Vec<u8>,
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    source: Option<u32>,
}

/// Reads everything: the packets, then the final error if any.
fn read_all<R: Read>(mut r: CaptureReader<R>) -> (Vec<Got>, Option<CaptureError>) {
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push(Got {
                data: p.data.to_vec(),
                ts: p.ts,
                link: p.link_type,
                wire_len: p.wire_len,
                source: p.source,
            }),
            Ok(None) => return (out, None),
            Err(e) => {
                // Documented: after an error, Ok(None) forever.
                assert!(matches!(r.next_packet(), Ok(None)));
                return (out, Some(e));
            }
        }
    }
}

/// Reads `b` as a stream and, checking it agrees, in place
/// ([`CaptureReader::from_bytes`]).
fn read_bytes(b: &[u8]) -> (Vec<Got>, Option<CaptureError>) {
    let streamed = read_all(CaptureReader::new(b).expect("header"));
    assert_same_in_place(b, &Ok(streamed.clone()));
    streamed
}

/// What a reader over `b` in memory yields: the open error, or the packets
/// and final error.
type Outcome = Result<(Vec<Got>, Option<CaptureError>), CaptureError>;

/// An outcome with errors reduced to what must agree: kind and offset.
#[allow(clippy::type_complexity)]
fn key(
    o: &Outcome,
) -> Result<(Vec<Got>, Option<(CaptureErrorKind, u64)>), (CaptureErrorKind, u64)> {
    match o {
        Err(e) => Err((e.kind, e.offset)),
        Ok((p, e)) => Ok((p.clone(), e.as_ref().map(|e| (e.kind, e.offset)))),
    }
}

fn read_in_place(b: &[u8]) -> Outcome {
    let whole = CaptureReader::from_bytes(Bytes::copy_from_slice(b)).map(read_all);
    // Boxing after the header changes nothing.
    let boxed = CaptureReader::from_bytes(Bytes::copy_from_slice(b)).map(|r| read_all(r.boxed()));
    assert_eq!(key(&whole), key(&boxed), "boxed");
    whole
}

/// The in-place reader yields exactly what the stream reader did: the same
/// packets, and the same error kind at the same offset.
fn assert_same_in_place(b: &[u8], streamed: &Outcome) {
    assert_eq!(key(&read_in_place(b)), key(streamed), "in place vs stream");
}

fn open_err(b: &[u8]) -> CaptureError {
    let streamed = CaptureReader::new(b).map(read_all);
    assert_same_in_place(b, &streamed);
    match streamed {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Hands out at most `chunk` bytes per `read`, like a pipe.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Every other call is EINTR, which must be retried, not reported.
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

// ------------------------------------------------------------ classic pcap

#[test]
fn pcap_le_microseconds() {
    let f = Pcap::new(false, false, 1, 65535)
        .record(1_700_000_000, 123_456, &[1, 2, 3])
        .record(1_700_000_001, 999_999, &[4; 60]);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    assert_eq!(
        r.format(),
        CaptureFormat::Pcap {
            nanos: false,
            big_endian: false
        }
    );
    assert_eq!(r.snaplen(), Some(65535));
    assert_eq!(r.link_type(), Some(LinkType::ETHERNET));
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(p.data, &[1, 2, 3]);
    assert_eq!(p.ts, Timestamp::from_secs_nanos(1_700_000_000, 123_456_000));
    assert_eq!(p.link_type, LinkType::ETHERNET);
    assert_eq!(p.wire_len, 3);
    assert_eq!(p.source, None);
    // The lent packet counts as consumed: header 24 + record 16 + 3.
    assert_eq!(r.bytes_consumed(), 43);
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(p.data, &[4; 60][..]);
    assert_eq!(p.ts, Timestamp::from_secs_nanos(1_700_000_001, 999_999_000));
    assert!(r.next_packet().expect("ok").is_none());
    assert!(r.next_packet().expect("ok").is_none());
    assert_eq!(r.packets_read(), 2);
    assert_eq!(r.bytes_consumed(), f.bytes.len() as u64);
}

#[test]
fn pcap_be_nanoseconds() {
    let f = Pcap::new(true, true, 101, 262_144).record(1_600_000_000, 987_654_321, &[0x45, 0, 0]);
    // The magic on disk is a1 b2 3c 4d in big-endian order.
    assert_eq!(&f.bytes[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
    let r = CaptureReader::new(&f.bytes[..]).expect("header");
    assert_eq!(
        r.format(),
        CaptureFormat::Pcap {
            nanos: true,
            big_endian: true
        }
    );
    let (pkts, err) = read_all(r);
    assert!(err.is_none());
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].ts.as_nanos(), 1_600_000_000_987_654_321);
    assert_eq!(pkts[0].link, LinkType::RAW);
}

#[test]
fn pcap_le_ns_and_be_us() {
    let a = Pcap::new(false, true, 1, 0).record(5, 7, &[9]);
    let (p, e) = read_bytes(&a.bytes);
    assert!(e.is_none());
    assert_eq!(p[0].ts.as_nanos(), 5_000_000_007);
    let b = Pcap::new(true, false, 1, 0).record(5, 7, &[9]);
    let (p, e) = read_bytes(&b.bytes);
    assert!(e.is_none());
    assert_eq!(p[0].ts.as_nanos(), 5_000_007_000);
}

#[test]
fn pcap_linktype_upper_bits_are_fcs_info() {
    // pcap spec: bits 16-31 of LinkType carry FCS length flags; 0x30000001
    // (as in tcpdump's gre-heapoverflow-1.pcap) is Ethernet.
    let f = Pcap::new(false, false, 0x3000_0001, 65535).record(0, 0, &[1]);
    let (p, _) = read_bytes(&f.bytes);
    assert_eq!(p[0].link, LinkType::ETHERNET);
}

#[test]
fn pcap_oversized_records_are_returned_and_counted() {
    // caplen 10 > orig 4, and caplen 10 > snaplen 8: present, so returned.
    let f = Pcap::new(false, false, 1, 8).raw_record(0, 0, 10, 4, &[7; 10]);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(p.data.len(), 10);
    assert_eq!(p.wire_len, 4);
    assert!(r.next_packet().expect("ok").is_none());
    assert_eq!(r.stats().caplen_over_wire_len, 1);
    assert_eq!(r.stats().caplen_over_snaplen, 1);
}

#[test]
fn pcap_pre_2_3_length_fields_are_swapped() {
    // libpcap sf-pcap.c / Wireshark libpcap.c: before 2.3 the record header
    // held (orig_len, incl_len); 2.3 files were written both ways, so swap
    // there only when "incl_len" > "orig_len"; 2.4 is never swapped.
    // Record: first length field 1500, second 3, then 3 bytes of data.
    for (minor, data_len, wire) in [(0u16, 3usize, 1500u32), (2, 3, 1500), (3, 3, 1500)] {
        let f = Pcap::with_version(false, false, 1, 0, 2, minor).raw_record(0, 0, 1500, 3, &[5; 3]);
        let (p, e) = read_bytes(&f.bytes);
        assert!(e.is_none(), "2.{minor}: {e:?}");
        assert_eq!(
            (p[0].data.len(), p[0].wire_len),
            (data_len, wire),
            "2.{minor}"
        );
    }
    // 2.3 with lengths in the modern order (3 captured of 1500) stays as is.
    let f = Pcap::with_version(false, false, 1, 0, 2, 3).raw_record(0, 0, 3, 1500, &[5; 3]);
    let (p, _) = read_bytes(&f.bytes);
    assert_eq!((p[0].data.len(), p[0].wire_len), (3, 1500));
    // 2.4: (1500, 3) means 1500 captured bytes, which are missing.
    let f = Pcap::with_version(false, false, 1, 0, 2, 4).raw_record(0, 0, 1500, 3, &[5; 3]);
    let e = read_bytes(&f.bytes).1.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Truncated, 24));
}

#[test]
fn pcap_truncated_final_record() {
    let good = Pcap::new(false, false, 1, 65535).record(1, 0, &[1; 20]);
    let second_at = good.bytes.len() as u64;
    let f = good.raw_record(2, 0, 100, 100, &[2; 30]);
    let (p, e) = read_bytes(&f.bytes);
    assert_eq!(p.len(), 1);
    let e = e.expect("error");
    assert_eq!(e.kind, CaptureErrorKind::Truncated);
    assert_eq!(e.offset, second_at);
    // Cut inside the record header too.
    let f = Pcap::new(false, false, 1, 65535).record(1, 0, &[1; 20]);
    let mut b = f.bytes.clone();
    b.extend_from_slice(&[0; 7]);
    let (p, e) = read_bytes(&b);
    assert_eq!(p.len(), 1);
    let e = e.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Truncated, 60));
}

#[test]
fn pcap_huge_caplen_is_corrupt_without_allocating() {
    let f = Pcap::new(false, false, 1, 65535)
        .record(1, 0, &[1; 4])
        .raw_record(2, 0, 0x7fff_ffff, 60, &[0; 60]);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    assert!(r.next_packet().expect("ok").is_some());
    let e = r.next_packet().expect_err("corrupt");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, 24 + 16 + 4));
    assert!(r.input.capacity() <= DEFAULT_BUFFER_LEN);
    assert!(r.next_packet().expect("ok after error").is_none());
}

#[test]
fn pcap_missing_implausible_record_is_corrupt() {
    // 4 MiB > max(snaplen, 256 KiB) and not present: a bad length field,
    // as in suricata's tls_DER-incomplete-header.pcap.
    let f = Pcap::new(false, false, 1, 262_144).raw_record(0, 0, 4 << 20, 4 << 20, &[0; 100]);
    let (p, e) = read_bytes(&f.bytes);
    assert!(p.is_empty());
    let e = e.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, 24));
}

#[test]
fn pcap_buffer_grows_for_large_records_and_survives_short_reads() {
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let f = Pcap::new(false, false, 1, 0)
        .record(1, 0, &[1; 10])
        .record(2, 0, &big)
        .record(3, 0, &[3; 10]);
    let t = Trickle {
        data: &f.bytes,
        chunk: 1000,
        interrupt: false,
    };
    let mut r = CaptureReader::with_buffer_len(t, 64).expect("header");
    let mut lens = Vec::new();
    while let Some(p) = r.next_packet().expect("clean") {
        if p.data.len() == big.len() {
            assert_eq!(p.data, &big[..]);
        }
        lens.push(p.data.len());
    }
    assert_eq!(lens, vec![10, 70_000, 10]);
    assert!(r.input.capacity() >= 70_016);
    assert!(r.input.capacity() <= MAX_BLOCK_LEN);
}

// --------------------------------------------------------- not a capture

#[test]
fn empty_garbage_and_short_inputs_are_not_captures() {
    for b in [&b""[..], b"ab", b"GET / HTTP/1.1\r\n\r\n", &[0u8; 100][..]] {
        let e = open_err(b);
        assert_eq!(
            (e.kind, e.offset),
            (CaptureErrorKind::NotACapture, 0),
            "{b:?}"
        );
    }
    // The pcapng magic is the text "\n\r\r\n": without a byte-order magic
    // after it this is text, not pcapng.
    let e = open_err(b"\n\r\r\nhello world, not a capture");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::NotACapture, 0));
}

#[test]
fn corrupt_headers() {
    // pcap magic, header cut at 10 bytes.
    let f = Pcap::new(false, false, 1, 0);
    let e = open_err(&f.bytes[..10]);
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Truncated, 0));
    // pcap version 1.0 is refused, as by libpcap.
    let mut b = f.bytes.clone();
    b[4] = 1;
    assert_eq!(open_err(&b).kind, CaptureErrorKind::Unsupported);
    // pcapng SHB whose trailing length disagrees.
    let mut b = Ng::new().shb(false).bytes;
    let n = b.len();
    b[n - 4] ^= 4;
    let e = open_err(&b);
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, 0));
}

// ------------------------------------------------------------------ pcapng

/// Two interfaces with different link types and resolutions.
#[test]
fn pcapng_two_interfaces() {
    let ts_us = (0x0004_c397u64 << 32) | 0x64ca_47aa;
    let f = Ng::new()
        .shb(false)
        .idb(1, 65535, &[(2, b"eth0")]) // if_name only: default 10^-6
        .idb(101, 0, &[(9, &[9]), (14, &100i64.to_le_bytes())]) // ns, +100 s
        .idb(113, 0, &[(9, &[0x80 | 20])]) // 2^-20 s
        .epb(0, ts_us, &[1, 2, 3, 4, 5], 1514)
        .epb(1, 1_000_000_007, &[0x45], 1)
        .epb(2, 3 << 20, &[6, 6], 2);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    assert_eq!(r.format(), CaptureFormat::Pcapng);
    // Interfaces become known as their blocks are read.
    assert_eq!(r.interfaces().count(), 0);
    assert!(r.next_packet().expect("ok").is_some());
    let ifs: Vec<InterfaceInfo> = r.interfaces().copied().collect();
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[1].tsresol, 9);
    assert_eq!(ifs[1].ts_offset_secs, 100);
    let (p, e) = read_all(CaptureReader::new(&f.bytes[..]).expect("header"));
    assert!(e.is_none(), "{e:?}");
    assert_eq!(p.len(), 3);
    // pcapng draft, ISB example: 97 c3 04 00 aa 47 ca 64 at 10^-6 is
    // 2012-06-29 07:28:25.298858 UTC = 1340954905.298858.
    assert_eq!(
        p[0].ts,
        Timestamp::from_secs_nanos(1_340_954_905, 298_858_000)
    );
    assert_eq!(p[0].link, LinkType::ETHERNET);
    assert_eq!(p[0].data, vec![1, 2, 3, 4, 5]);
    assert_eq!(p[0].wire_len, 1514);
    assert_eq!(p[0].source, Some(0));
    assert_eq!(p[1].ts, Timestamp::from_secs_nanos(101, 7));
    assert_eq!(p[1].link, LinkType::RAW);
    assert_eq!(p[1].source, Some(1));
    // 3 * 2^20 units of 2^-20 s = 3 s.
    assert_eq!(p[2].ts, Timestamp::from_secs_nanos(3, 0));
    assert_eq!(p[2].link, LinkType::LINUX_SLL);
}

#[test]
fn pcapng_big_endian_and_several_sections() {
    let ts = 1_700_000_000_000_000u64; // µs
    let b = Ng::new()
        .shb(true)
        .idb(1, 0, &[(14, &(-10i64).to_be_bytes())])
        .idb(228, 0, &[(9, &[3])]) // ms
        .epb(1, 42, &[1], 1)
        .epb(0, ts, &[2, 2], 2);
    // Big-endian on disk: the IDB type reads 00 00 00 01.
    assert_eq!(&b.bytes[28..32], &[0, 0, 0, 1]);
    let f = b
        .shb(false) // new section, little-endian, interface ids restart
        .idb(229, 0, &[])
        .epb(0, 5, &[3, 3, 3], 3);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    let mut got = Vec::new();
    while let Some(p) = r.next_packet().expect("clean") {
        got.push((p.link_type, p.source, p.ts, p.data.len()));
    }
    assert_eq!(
        got,
        vec![
            (
                LinkType::IPV4,
                Some(1),
                Timestamp::from_nanos(42_000_000),
                1
            ),
            // tsoffset -10 s, read big-endian.
            (
                LinkType::ETHERNET,
                Some(0),
                Timestamp::from_secs_nanos(1_699_999_990, 0),
                2
            ),
            (LinkType::IPV6, Some(0), Timestamp::from_micros(5), 3),
        ]
    );
    assert_eq!(r.stats().sections, 2);
    assert_eq!(r.stats().interfaces, 3);
    assert_eq!(r.interfaces().count(), 1);
}

#[test]
fn pcapng_simple_packet_block_reuses_timestamp() {
    for be in [false, true] {
        let f = Ng::new()
            .shb(be)
            .idb(1, 4, &[]) // snaplen 4
            .spb(&[9, 9, 9, 9], 60) // before any timestamp: zero
            .epb(0, 7, &[1], 1)
            .spb(&[8, 8, 8, 8], 60); // block holds 4, orig 60, snaplen 4
        let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
        let (p, e) = {
            let mut v = Vec::new();
            let mut err = None;
            loop {
                match r.next_packet() {
                    Ok(Some(p)) => v.push((p.ts, p.data.to_vec(), p.wire_len, p.source)),
                    Ok(None) => break,
                    Err(x) => {
                        err = Some(x);
                        break;
                    }
                }
            }
            (v, err)
        };
        assert!(e.is_none());
        assert_eq!(p[0], (Timestamp::ZERO, vec![9, 9, 9, 9], 60, Some(0)));
        assert_eq!(p[1].0, Timestamp::from_micros(7));
        assert_eq!(
            p[2],
            (Timestamp::from_micros(7), vec![8, 8, 8, 8], 60, Some(0))
        );
        assert_eq!(r.stats().packets_without_timestamp, 2);
    }
}

#[test]
fn pcapng_spb_length_bounded_by_original_length() {
    // 3-byte packet padded to 4 in the block: captured length is 3.
    let f = Ng::new().shb(false).idb(1, 0, &[]).spb(&[1, 2, 3], 3);
    let (p, e) = read_bytes(&f.bytes);
    assert!(e.is_none());
    assert_eq!(p[0].data, vec![1, 2, 3]);
}

#[test]
fn pcapng_obsolete_packet_block() {
    // Packet Block (type 2): 16-bit interface id, 16-bit drops count.
    let mut ifield = Vec::new();
    put16(&mut ifield, 1, false);
    put16(&mut ifield, 5, false);
    let f = Ng::new().shb(false).idb(1, 0, &[]).idb(0, 0, &[]).epb_raw(
        2,
        &ifield,
        2_000_000,
        2,
        4,
        &[0xaa, 0xbb],
    );
    let (p, e) = read_bytes(&f.bytes);
    assert!(e.is_none(), "{e:?}");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].source, Some(1));
    assert_eq!(p[0].link, LinkType::NULL);
    assert_eq!(p[0].ts, Timestamp::from_secs_nanos(2, 0));
    assert_eq!((p[0].data.clone(), p[0].wire_len), (vec![0xaa, 0xbb], 4));
}

#[test]
fn pcapng_non_packet_blocks_are_skipped_and_counted() {
    let f = Ng::new()
        .shb(false)
        .block(4, &[0, 0, 0, 0]) // NRB, empty
        .idb(1, 0, &[])
        .block(5, &[0; 12]) // ISB
        .epb(0, 1, &[1], 1)
        .block(0x0000_0bad, &[0; 8]) // custom
        .block(0x7777_7777, &[]) // unknown
        .epb(0, 2, &[2], 1);
    let mut r = CaptureReader::new(&f.bytes[..]).expect("header");
    let mut n = 0;
    while r.next_packet().expect("clean").is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    assert_eq!(r.stats().skipped_blocks, 4);
    assert_eq!(r.bytes_consumed(), f.bytes.len() as u64);
}

#[test]
fn pcapng_damage_is_reported_at_the_block_offset() {
    let base = Ng::new().shb(false).idb(1, 0, &[]).epb(0, 1, &[1; 9], 9);
    let at = base.bytes.len() as u64;
    let good = base.bytes.clone();

    // Truncated final block.
    let full = Ng::with(false, good.clone()).epb(0, 2, &[2; 40], 40).bytes;
    let (p, e) = read_bytes(&full[..full.len() - 10]);
    assert_eq!(p.len(), 1);
    let e = e.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Truncated, at));

    // Block length not a multiple of 4.
    let mut b = full.clone();
    b[at as usize + 4] = 0x45;
    let e = read_bytes(&b).1.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, at));

    // Trailing length differs.
    let mut b = full.clone();
    let n = b.len();
    b[n - 4] += 4;
    let e = read_bytes(&b).1.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, at));

    // Packet for an interface the section does not define.
    let b = Ng::with(false, good.clone()).epb(3, 2, &[2], 1).bytes;
    let e = read_bytes(&b).1.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, at));

    // Captured length that overruns the block.
    let mut f = Vec::new();
    put32(&mut f, 0, false);
    let b = Ng::with(false, good.clone())
        .epb_raw(6, &f, 2, 500, 500, &[1; 8])
        .bytes;
    let e = read_bytes(&b).1.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, at));

    // Block length beyond the hard cap: an error, no 4 GiB allocation.
    let mut b = good.clone();
    b.extend_from_slice(&6u32.to_le_bytes());
    b.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    b.extend_from_slice(&[0; 64]);
    let mut r = CaptureReader::new(&b[..]).expect("header");
    assert!(r.next_packet().expect("ok").is_some());
    let e = r.next_packet().expect_err("corrupt");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Corrupt, at));
    assert!(r.input.capacity() <= DEFAULT_BUFFER_LEN);

    // SPB with no interface in the section.
    let b = Ng::new().shb(false).spb(&[1], 1).bytes;
    let e = read_bytes(&b).1.expect("error");
    assert_eq!(e.kind, CaptureErrorKind::Corrupt);
}

#[test]
fn pcapng_unsupported_section_version_after_packets() {
    // Like gopacket's test901.pcapng: a second section of version 2.0.
    let first = Ng::new().shb(false).idb(1, 0, &[]).epb(0, 1, &[1], 1);
    let at = first.bytes.len() as u64;
    let f = first
        .shb_version(false, 2, 0)
        .idb(1, 0, &[])
        .epb(0, 1, &[1], 1);
    let (p, e) = read_bytes(&f.bytes);
    assert_eq!(p.len(), 1);
    let e = e.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Unsupported, at));
}

#[test]
fn io_errors_name_the_offset() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let f = Pcap::new(false, false, 1, 0)
        .record(1, 0, &[1; 10])
        .record(2, 0, &[2; 100]);
    // Everything but the last 50 bytes, then an error.
    let r = CaptureReader::with_buffer_len(Failing(&f.bytes[..f.bytes.len() - 50]), 32).expect("h");
    let (p, e) = read_all(r);
    assert_eq!(p.len(), 1);
    let e = e.expect("error");
    assert_eq!((e.kind, e.offset), (CaptureErrorKind::Io, 50));
}

#[test]
fn open_missing_file_and_display() {
    let e = CaptureReader::open("/nonexistent/flowscope/x.pcap").expect_err("missing");
    assert_eq!(e.kind, CaptureErrorKind::Io);
    assert!(e.to_string().contains("byte offset 0"));
}

// ------------------------------------------------------------- properties

fn sample_ng() -> (Vec<u8>, Vec<usize>) {
    let f = Ng::new()
        .shb(false)
        .idb(1, 0, &[])
        .epb(0, 1, &[1; 33], 33)
        .block(5, &[0; 12])
        .spb(&[2; 7], 7)
        .shb(true)
        .idb(101, 0, &[(9, &[9])])
        .epb(0, 5, &[3; 64], 64);
    (f.bytes, f.ends)
}

fn sample_pcap() -> (Vec<u8>, Vec<usize>) {
    let f = Pcap::new(true, true, 1, 0)
        .record(1, 2, &[1; 33])
        .record(3, 4, &[2; 7])
        .record(5, 6, &[3; 64]);
    (f.bytes, f.ends)
}

/// Cutting a capture anywhere yields exactly the packets wholly before the
/// cut; the end is clean only at a block boundary, else `Truncated` at the
/// start of the cut block. The first end is the file header / first SHB.
#[test]
fn every_prefix_yields_whole_packets_then_truncation() {
    // Packet block ends in the samples (the others are header/ISB/SHB/IDB).
    for ((file, ends), packet_ends) in
        [(sample_pcap(), vec![1, 2, 3]), (sample_ng(), vec![2, 4, 7])]
    {
        let packet_ends: Vec<usize> = packet_ends.iter().map(|&i| ends[i]).collect();
        for cut in 0..=file.len() {
            assert_same_in_place(
                &file[..cut],
                &CaptureReader::new(&file[..cut]).map(read_all),
            );
            let r = CaptureReader::new(&file[..cut]);
            let Ok(r) = r else {
                assert!(cut < ends[0], "cut at {cut}");
                continue;
            };
            let (p, e) = read_all(r);
            let whole = packet_ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(p.len(), whole, "cut at {cut}");
            let last_end = ends.iter().copied().filter(|&end| end <= cut).max();
            match e {
                None => assert!(ends.contains(&cut), "cut at {cut}"),
                Some(e) => {
                    assert_eq!(e.kind, CaptureErrorKind::Truncated, "cut at {cut}");
                    assert_eq!(Some(e.offset as usize), last_end, "cut at {cut}");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = CaptureReader::with_buffer_len(&data[..], 32) {
            let (_, e) = read_all(r);
            if let Some(e) = e { prop_assert!(e.offset <= data.len() as u64); }
        }
    }

    #[test]
    fn mutated_captures_never_panic(
        which in 0..2usize,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        chunk in 1..64usize,
    ) {
        let mut file = if which == 0 { sample_pcap().0 } else { sample_ng().0 };
        for (at, x) in flips {
            let n = file.len();
            file[at % n] ^= x;
        }
        let t = Trickle { data: &file, chunk, interrupt: false };
        let streamed = CaptureReader::with_buffer_len(t, 32).map(read_all);
        assert_same_in_place(&file, &streamed);
        if let Ok((p, e)) = streamed {
            prop_assert!(p.len() <= 8);
            if let Some(e) = e { prop_assert!(e.offset <= file.len() as u64); }
        }
    }
}

// ------------------------------------------------ classic pcap fast path

/// Everything observable about one full read: packets, final error (kind,
/// offset), counters and bytes consumed.
type Observed = (
    Vec<Got>,
    Option<(CaptureErrorKind, u64)>,
    CaptureStats,
    u64,
    u64,
);

/// Reads `bytes` with a `buffer`-byte initial buffer, with the per-record
/// fast path on or forced off (`fast = None`: every record through
/// `PcapState::next_record`, the general path).
fn observe(bytes: &[u8], buffer: usize, fast: bool) -> Observed {
    let mut r = CaptureReader::with_buffer_len(bytes, buffer).expect("header");
    assert!(r.fast.is_some(), "a 2.4 pcap has a fast path");
    if !fast {
        r.fast = None;
    }
    let mut pkts = Vec::new();
    let err = loop {
        match r.next_packet() {
            Ok(Some(p)) => pkts.push(Got {
                data: p.data.to_vec(),
                ts: p.ts,
                link: p.link_type,
                wire_len: p.wire_len,
                source: p.source,
            }),
            Ok(None) => break None,
            Err(e) => break Some((e.kind, e.offset)),
        }
    };
    (pkts, err, r.stats(), r.bytes_consumed(), r.packets_read())
}

fn same(a: &Observed, b: &Observed) -> bool {
    let key = |g: &Got| (g.data.clone(), g.ts, g.link, g.wire_len, g.source);
    a.0.iter().map(key).eq(b.0.iter().map(key))
        && a.1 == b.1
        && a.2 == b.2
        && (a.3, a.4) == (b.3, b.4)
}

#[test]
fn pcap_fast_path_counts_only_lengths_past_the_limits() {
    // snaplen 8: caplen == snaplen == orig is the fast case (nothing counted);
    // one byte more than the snaplen, or than the original length, is counted
    // by the general path the fast path hands it to.
    let f = Pcap::new(false, false, 1, 8)
        .raw_record(0, 0, 8, 8, &[1; 8])
        .raw_record(0, 0, 9, 9, &[2; 9])
        .raw_record(0, 0, 5, 4, &[3; 5])
        .raw_record(0, 0, 3, 1500, &[4; 3]);
    let (p, e, stats, consumed, n) = observe(&f.bytes, DEFAULT_BUFFER_LEN, true);
    assert!(e.is_none());
    assert_eq!(n, 4);
    assert_eq!(consumed, f.bytes.len() as u64);
    assert_eq!(
        p.iter()
            .map(|g| (g.data.len(), g.wire_len))
            .collect::<Vec<_>>(),
        [(8, 8), (9, 9), (5, 4), (3, 1500)]
    );
    assert_eq!(stats.caplen_over_snaplen, 1);
    assert_eq!(stats.caplen_over_wire_len, 1);
}

#[test]
fn pcap_fast_path_largest_timestamps_do_not_saturate() {
    // (2^32 - 1) s + (2^32 - 1) µs = 4_294_967_295 * 10^9 + 4_294_967_295 * 10^3
    // = 4_294_967_295_000_000_000 + 4_294_967_295_000 ns, below 2^64 - 1
    // (18_446_744_073_709_551_615), so exact, as the general path computes it.
    for be in [false, true] {
        let f = Pcap::new(be, false, 1, 0).record(u32::MAX, u32::MAX, &[1]);
        let (p, e, ..) = observe(&f.bytes, DEFAULT_BUFFER_LEN, true);
        assert!(e.is_none());
        assert_eq!(p[0].ts.as_nanos(), 4_294_971_589_967_295_000);
        // Nanosecond files: 4_294_967_295 * 10^9 + 4_294_967_295.
        let f = Pcap::new(be, true, 1, 0).record(u32::MAX, u32::MAX, &[1]);
        let (p, ..) = observe(&f.bytes, DEFAULT_BUFFER_LEN, true);
        assert_eq!(p[0].ts.as_nanos(), 4_294_967_299_294_967_295);
    }
}

#[test]
fn pcap_fast_path_is_off_for_swapped_length_files() {
    let f = Pcap::with_version(false, false, 1, 0, 2, 2).raw_record(0, 0, 60, 3, &[1; 3]);
    let r = CaptureReader::new(&f.bytes[..]).expect("header");
    assert!(r.fast.is_none());
}

proptest! {
    /// The fast path changes nothing observable: random records (lengths
    /// around the snaplen, the original length and the bytes present, both
    /// byte orders and resolutions, damaged tails) read the same as through
    /// the general path alone, also through small buffers that split records.
    #[test]
    fn pcap_fast_path_matches_general_path(
        be in any::<bool>(),
        nanos in any::<bool>(),
        snaplen in prop_oneof![Just(0u32), 1u32..80],
        recs in proptest::collection::vec(
            (any::<u32>(), any::<u32>(), 0u32..100, 0u32..100, -2i32..3), 0..12),
        cut in any::<usize>(),
        buffer in prop_oneof![Just(32usize), 33usize..300, Just(DEFAULT_BUFFER_LEN)],
    ) {
        let mut f = Pcap::new(be, nanos, 1, snaplen);
        for &(sec, frac, caplen, orig, delta) in &recs {
            // `delta` != 0 makes the header lie about the bytes that follow.
            let have = (caplen as i64 + i64::from(delta)).clamp(0, 120) as usize;
            f = f.raw_record(sec, frac, caplen, orig, &vec![0xab; have]);
        }
        // Cut anywhere after the file header (truncated tails included).
        let hdr = pcap::FILE_HEADER_LEN;
        let bytes = &f.bytes[..hdr + cut % (f.bytes.len() - hdr + 1)];
        let fast = observe(bytes, buffer, true);
        let general = observe(bytes, buffer, false);
        prop_assert!(same(&fast, &general));
    }
}
