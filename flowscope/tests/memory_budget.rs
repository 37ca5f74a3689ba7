//! The global memory budget (`SessionConfig::memory_budget`) against
//! traffic that no per-flow cap bounds in sum: 512 concurrent
//! connections, interleaved, each growing a parser buffer toward its
//! per-flow cap (TLS ClientHellos of 60 KiB, HTTP header lines that never
//! end). Without the budget the parsers' buffers alone grow to tens
//! of MiB (checked, so the test can fail); with a 4 MiB budget
//! (a) the live heap, sampled after every packet with a counting
//!     allocator, stays under the budget plus the fixed overhead of the
//!     tables (sized by `max_flows`, not by traffic);
//! (b) the accounted peak passes the budget by at most one packet's worth;
//! (c) what was shed is counted, and every packet is accounted for.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::alloc::System;
use std::sync::Mutex;

use flowscope::driver::{DriverEvent, MemoryStats, SessionConfig, SessionDriver, PARSER_SHED};
use flowscope::proto::AppMessage;
use flowscope_core::{LinkType, PacketView, SessionEvent, Timestamp};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

// Only its connection framing is used here.
#[allow(dead_code)]
#[path = "common/adversarial.rs"]
mod adversarial;

use adversarial::client_segment;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One test at a time: the counter is global.
static SERIAL: Mutex<()> = Mutex::new(());

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Concurrent connections.
const CONNS: u32 = 512;
/// The flow table: room for every connection (nothing is evicted for
/// want of slots), so only the budget bounds the parsers.
const MAX_FLOWS: usize = 1_024;
/// Data segments per connection and their size.
const SEGMENT: usize = 1_300;
/// The budget under test.
const BUDGET: usize = 4 * MIB;
/// Heap per flow-table slot (tracker entry, timers, session slot and
/// index; the adversarial tests allow the same): the tables keep their
/// grown capacity, which the budget counts only while flows live.
const PER_FLOW: usize = 2 * KIB;
/// Fixed overhead: extractor, defragmenter table, scratch buffers.
const SLACK: usize = 2 * MIB;
/// What one packet may add to the accounted memory before the check that
/// follows it: a segment's bytes, a parser buffer doubling toward its
/// 64 KiB cap, a flow's entries.
const ONE_PACKET: usize = 128 * KIB;

fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// What a connection's client sends: byte `o` of its stream.
#[derive(Clone, Copy)]
enum Attack {
    /// TLS handshake records (16 KiB each) carrying one ClientHello that
    /// announces 61 440 bytes, just under the 64 KiB cap, so the parser
    /// collects it. (A hello announcing 16 MiB is refused by that cap at
    /// its header and holds nothing: the `tls-16mib-record` scenario of
    /// `adversarial.rs`.)
    TlsLargeHello,
    /// An HTTP request whose header line never ends: the parser buffers
    /// toward its 16 KiB cap.
    HttpEndlessHeader,
}

impl Attack {
    fn port(self) -> u16 {
        match self {
            Attack::TlsLargeHello => 443,
            Attack::HttpEndlessHeader => 80,
        }
    }

    /// Data segments per connection: just under the per-flow cap, so
    /// no parser gives up on its own.
    fn segments(self) -> usize {
        match self {
            // 59 800 bytes: 4 record headers, the 4-byte message header,
            // and 59 776 of the hello's 61 440 bytes.
            Attack::TlsLargeHello => 46,
            Attack::HttpEndlessHeader => 12, // 15 600 bytes < 16 KiB
        }
    }

    fn stream(self, from: usize, out: &mut Vec<u8>) {
        // RFC 8446 §5.1: type 22 (handshake), version 3.3, 16 384 bytes.
        const RECORD: [u8; 5] = [22, 3, 3, 0x40, 0x00];
        const RECORD_LEN: usize = 5 + 16_384;
        // §4: ClientHello (1), 24-bit length 0x00F000 = 61 440.
        const HELLO: [u8; 4] = [1, 0x00, 0xf0, 0x00];
        const HTTP: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nX-Filler: ";
        out.clear();
        for o in from..from + SEGMENT {
            let b = match self {
                Attack::TlsLargeHello => {
                    let r = o % RECORD_LEN;
                    match (RECORD.get(r), o.checked_sub(5).and_then(|h| HELLO.get(h))) {
                        (Some(&b), _) => b,
                        (None, Some(&b)) => b,
                        _ => b'a',
                    }
                }
                Attack::HttpEndlessHeader => HTTP.get(o).copied().unwrap_or(b'a'),
            };
            out.push(b);
        }
    }
}

/// What one run saw.
struct Run {
    peak_live: i64,
    memory: MemoryStats,
    shed_anomalies: u64,
}

/// Handshakes of every connection, then round after round one data
/// segment from each: all connections grow their buffers together.
fn run(attack: Attack, budget: usize) -> Run {
    let mut c = SessionConfig::default();
    c.track.max_flows = MAX_FLOWS;
    c.memory_budget = budget;
    let mut buf = Vec::with_capacity(2 * KIB);
    let mut payload = Vec::with_capacity(2 * KIB);
    let mut shed_anomalies = 0u64;
    let mut sink = |ev: DriverEvent<'_, AppMessage>| {
        if let DriverEvent::Session {
            event: SessionEvent::Anomaly { anomaly, .. },
            ..
        } = ev
        {
            if anomaly == PARSER_SHED {
                shed_anomalies += 1;
            }
        }
    };
    let base = live();
    let mut peak_live = 0i64;
    let mut d: SessionDriver<AppMessage> = SessionDriver::with_default_parsers(c);
    let mut packets = 0u64;
    let mut feed = |d: &mut SessionDriver<AppMessage>, buf: &[u8]| {
        packets += 1;
        let pkt = PacketView::new(
            buf,
            Timestamp::from_nanos(packets * 1_000),
            LinkType::ETHERNET,
        );
        d.process(&pkt, &mut sink);
        peak_live = peak_live.max(live() - base);
    };
    let isn = |n: u32| n.wrapping_mul(2_654_435_761);
    for n in 0..CONNS {
        // A SYN from the client (its stream starts at ISN + 1); no
        // answer is needed for the client's bytes to be reassembled.
        client_segment(&mut buf, u64::from(n), attack.port(), isn(n), 0x02, &[]);
        feed(&mut d, &buf);
    }
    for k in 0..attack.segments() {
        for n in 0..CONNS {
            attack.stream(k * SEGMENT, &mut payload);
            let seq = isn(n).wrapping_add(1 + (k * SEGMENT) as u32);
            client_segment(&mut buf, u64::from(n), attack.port(), seq, 0x18, &payload);
            feed(&mut d, &buf);
        }
    }
    let memory = d.memory_stats();
    let counters = *d.counters();
    assert!(counters.is_balanced(), "{counters:?}");
    assert_eq!(counters.packets, packets);
    d.finish(&mut |_| {});
    let t = d.tracker_stats();
    assert_eq!(t.flows_created, t.ended(), "{t:?}");
    let after = d.memory_stats();
    assert_eq!((after.flows, after.parsers, after.reassembly), (0, 0, 0));
    Run {
        peak_live,
        memory,
        shed_anomalies,
    }
}

fn check(attack: Attack, name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Control: with no budget the same traffic holds far more than the
    // budget, so the bounds below are a real test.
    let free = run(attack, usize::MAX);
    eprintln!(
        "{name} without budget: {:?}, live peak {} B",
        free.memory, free.peak_live
    );
    assert!(free.memory.peak > 2 * BUDGET, "{name}: {:?}", free.memory);
    assert!(free.peak_live > (2 * BUDGET) as i64);
    assert_eq!(free.memory.emergency_entries, 0);

    let r = run(attack, BUDGET);
    let m = r.memory;
    eprintln!("{name} with budget: {m:?}, live peak {} B", r.peak_live);
    // (a) the live heap.
    let bound = BUDGET + MAX_FLOWS * PER_FLOW + SLACK;
    assert!(
        r.peak_live <= bound as i64,
        "{name}: live peak {} B > bound {bound} B",
        r.peak_live
    );
    // (b) the accounted memory.
    assert!(m.peak <= BUDGET + ONE_PACKET, "{name}: {m:?}");
    assert!(m.used <= BUDGET, "{name}: {m:?}");
    // (c) shedding happened and was counted: parsers given up (with one
    // anomaly each), not flows (parsers go first and suffice here).
    assert!(m.emergency_entries > 0, "{name}: {m:?}");
    assert!(m.shed_parsers > 0, "{name}: {m:?}");
    assert_eq!(r.shed_anomalies, m.shed_parsers, "{name}");
    assert_eq!(m.shed_flows, 0, "{name}: {m:?}");
}

#[test]
fn tls_hellos_just_under_the_cap_across_512_flows() {
    check(Attack::TlsLargeHello, "tls-large-hello");
}

#[test]
fn endless_http_headers_across_512_flows() {
    check(Attack::HttpEndlessHeader, "http-endless-header");
}
