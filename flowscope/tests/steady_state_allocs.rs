//! No heap allocation per packet in steady state, except message payloads
//! (issue 3): once a driver has seen a flow like it, packets of an
//! existing flow that emit no message allocate nothing.
//!
//! Two shapes from the corpus mix: an echo connection (one byte per
//! segment each way, which the HTTP probe keeps asking more of, so the
//! bytes are held until every probe gave up) and an HTTP/1.1 keep-alive
//! connection whose responses' bodies span two segments (the request and
//! the response head arrive on packets that emit nothing: the transaction
//! comes out with the body's last segment).
//!
//! One test per binary: the allocation counter is global, so nothing else
//! may run next to it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

// The extractor tests' frame builder; only part of it is used here.
#[allow(dead_code)]
#[path = "../src/extract/tests/build.rs"]
mod build;

use std::alloc::System;

use build::*;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::proto::AppMessage;
use flowscope_core::{LinkType, PacketView, SessionEvent, Timestamp};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One TCP connection's frames, built ahead of time (building allocates).
struct Conn {
    sport: u16,
    dport: u16,
    /// Next sequence number of the client and of the server.
    cseq: u32,
    sseq: u32,
    frames: Vec<Vec<u8>>,
}

impl Conn {
    fn new(sport: u16, dport: u16) -> Self {
        let mut c = Conn {
            sport,
            dport,
            cseq: 1000,
            sseq: 9000,
            frames: Vec::new(),
        };
        c.push(true, SYN, b"");
        c.cseq += 1;
        c.push(false, SYN | ACK, b"");
        c.sseq += 1;
        c.push(true, ACK, b"");
        c
    }

    fn push(&mut self, c2s: bool, flags: u8, p: &[u8]) {
        let (s, d) = if c2s { (V4_A, V4_B) } else { (V4_B, V4_A) };
        let (sp, dp) = if c2s {
            (self.sport, self.dport)
        } else {
            (self.dport, self.sport)
        };
        let (seq, ack) = if c2s {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let t = tcp_opts(&s, &d, sp, dp, seq, ack, flags, 65535, &[], p);
        self.frames.push(eth_ab(0x0800, &ipv4(s, d, 6, &t)));
        let n = p.len() as u32;
        if c2s {
            self.cseq = self.cseq.wrapping_add(n);
        } else {
            self.sseq = self.sseq.wrapping_add(n);
        }
    }

    /// Data from one side, acknowledged by the other.
    fn send(&mut self, c2s: bool, p: &[u8]) {
        self.push(c2s, PSH | ACK, p);
        self.push(!c2s, ACK, b"");
    }

    fn close(mut self) -> Vec<Vec<u8>> {
        self.push(true, FIN | ACK, b"");
        self.cseq += 1;
        self.push(false, FIN | ACK, b"");
        self.sseq += 1;
        self.push(true, ACK, b"");
        self.frames
    }
}

/// Like the corpus's echo connections: the client sends one letter at a
/// time, the server echoes it.
fn echo(sport: u16, rounds: usize) -> Vec<Vec<u8>> {
    let mut c = Conn::new(sport, 7000);
    for i in 0..rounds {
        let b = [b'a' + (i % 26) as u8];
        c.send(true, &b);
        c.send(false, &b);
    }
    c.close()
}

/// HTTP/1.1 keep-alive: `n` GETs, each answered by a 200 whose body comes
/// in two segments.
fn http_keep_alive(sport: u16, n: usize) -> Vec<Vec<u8>> {
    let mut c = Conn::new(sport, 80);
    for i in 0..n {
        let req = format!(
            "GET /item/{i} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\n\
             Accept: */*\r\nCookie: session=abcdef{i}\r\n\r\n"
        );
        c.send(true, req.as_bytes());
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\
                    Server: test\r\n\r\n0123456789";
        c.send(false, head.as_bytes());
        c.send(false, b"abcdefghij");
    }
    c.close()
}

#[derive(Default)]
struct Tally {
    /// Packets that emitted no message, and those of them that allocated.
    silent: usize,
    silent_allocating: Vec<usize>,
    messages: usize,
}

/// Runs `frames` through `d`; from frame `measure_from` on, counts the
/// allocations of each packet that emitted no application message.
fn run(
    d: &mut SessionDriver<AppMessage>,
    frames: &[Vec<u8>],
    t0: u64,
    measure_from: usize,
) -> Tally {
    let mut tally = Tally::default();
    for (i, f) in frames.iter().enumerate() {
        let pkt = PacketView::new(
            f,
            Timestamp::from_nanos(t0 + i as u64 * 1_000_000),
            LinkType::ETHERNET,
        );
        let mut messages = 0usize;
        let region = Region::new(GLOBAL);
        d.process(&pkt, &mut |ev| {
            if let DriverEvent::Session {
                event: SessionEvent::Message(_),
                ..
            } = ev
            {
                messages += 1;
            }
        });
        let c = region.change();
        tally.messages += messages;
        if i >= measure_from && messages == 0 {
            tally.silent += 1;
            if c.allocations + c.reallocations > 0 {
                tally.silent_allocating.push(i);
            }
        }
    }
    tally
}

#[test]
fn no_allocation_on_silent_packets_of_existing_flows() {
    let mut d = SessionDriver::with_default_parsers(SessionConfig::default());
    // Built before any counting.
    let warm_echo = echo(40000, 60);
    let echo2 = echo(40001, 60);
    let http = http_keep_alive(40002, 40);
    let http2 = http_keep_alive(40003, 40);
    let sec = 1_000_000_000u64;

    // Warm-up: one flow of each shape start to end (the driver's buffers,
    // spare holds and maps reach their working size).
    run(&mut d, &warm_echo, sec, usize::MAX);
    let warm_http = run(&mut d, &http, 2 * sec, usize::MAX);
    assert_eq!(warm_http.messages, 40, "one transaction per request");

    // A new echo flow: from its first payload on (frame 3; frames 0–2 are
    // the handshake, where the flow itself is created) nothing allocates.
    let t = run(&mut d, &echo2, 3 * sec, 3);
    assert_eq!(t.messages, 0, "echo bytes are no protocol");
    assert!(t.silent > 200);
    assert!(
        t.silent_allocating.is_empty(),
        "echo: frames {:?} of {} allocated",
        t.silent_allocating,
        echo2.len()
    );

    // A new keep-alive flow: after its first transaction (first use of
    // the parser's own buffers, created with the flow), the request and
    // response-head packets allocate nothing; the transaction's strings
    // are built on the packet that completes it (its payload).
    let first_txn_end = 3 + 6;
    let t = run(&mut d, &http2, 4 * sec, first_txn_end);
    assert_eq!(t.messages, 40);
    assert!(t.silent > 150, "{} silent packets", t.silent);
    assert!(
        t.silent_allocating.is_empty(),
        "http: frames {:?} of {} allocated",
        t.silent_allocating,
        http2.len()
    );
}
