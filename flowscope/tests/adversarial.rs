//! Adversarial traffic (issue 6) through the real drivers: for every
//! scenario of `common/adversarial.rs` (the traffic `cargo xtask flood
//! --scenario NAME` writes),
//! (a) the live heap, sampled after every packet, stays under a bound
//!     derived from the configured caps (and does not grow with the input);
//! (b) the drops, evictions, overflows and anomalies the scenario forces
//!     are counted;
//! (c) every packet, flow and fragment is accounted for;
//! (d) 4 N packets cost less than 10 × what N cost (no quadratic path).
//!
//! The caps are set small so the bounds are tight and the tests fast. The
//! allocation counter is global, so the tests take a lock and run one at a
//! time; live bytes are measured from a baseline taken just before the
//! driver is built (its preallocated tables count).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[allow(dead_code)]
#[path = "common/adversarial.rs"]
mod adversarial;

use std::alloc::System;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use adversarial::Scenario;
use flowscope::driver::{DriverEvent, FlowPipeline, SessionConfig, SessionCounters, SessionDriver};
use flowscope::extract::ExtractConfig;
use flowscope::proto::AppMessage;
use flowscope::reassembly::defrag::DefragStats;
use flowscope::reassembly::tcp::ReassemblyStats;
use flowscope::track::{TrackerConfig, TrackerStats};
use flowscope_core::{FlowEvent, LinkType, PacketView, SessionEvent, Timestamp};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One test at a time: the counter is global.
static SERIAL: Mutex<()> = Mutex::new(());

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Flow table size of the floods.
const MAX_FLOWS: usize = 4_096;
/// Flow table size of the connection scenarios: small, so that the table
/// is full early in the short run and the long run shows any state an
/// evicted flow leaves behind as growth.
const MAX_CONNS: usize = 64;
/// Heap allowed per tracked flow for tracker entry, timer slots, session
/// state and reassembler bookkeeping together (docs/bounded-memory.md
/// budgets 256 B for the tracker entry; the rest is the session layer's).
/// Held payload is bounded separately by the byte caps below.
const PER_FLOW: usize = 2 * KIB;
/// Fixed overhead: extractor, defragmenter table, event buffers, the
/// test's own anomaly map.
const SLACK: usize = 2 * MIB;

/// Live heap bytes (allocated minus freed) right now. stats_alloc already
/// adds a `realloc`'s growth to `bytes_allocated` and its shrinkage to
/// `bytes_deallocated`; `bytes_reallocated` is the same delta again.
fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// The tests' configuration: every cap small, at most `max_flows` flows.
fn config(max_flows: usize) -> SessionConfig {
    let mut c = SessionConfig::default();
    c.track.max_flows = max_flows;
    c.reassembly = c
        .reassembly
        .with_max_held_per_side(64 * KIB)
        .with_max_held_total(MIB);
    c.defrag.max_datagrams = 256;
    c.defrag.max_memory = MIB;
    // Datagrams time out while the flood runs (it spans N µs).
    c.defrag.timeout = Duration::from_millis(5);
    c.hold_total = MIB;
    c
}

/// The bound on the session driver's live heap under `c`, before parser
/// buffers: flows, held out-of-order bytes, fragments, held unclaimed
/// bytes (in use and kept spare, each at most `hold_total`).
fn session_bound(c: &SessionConfig) -> usize {
    c.track.max_flows * PER_FLOW
        + c.reassembly.max_held_total
        + c.defrag.max_memory
        + 2 * c.hold_total
        + SLACK
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    peak: i64,
    elapsed: Duration,
    anomalies: BTreeMap<&'static str, u64>,
    messages: u64,
    session: SessionCounters,
    tracker: TrackerStats,
    reassembly: ReassemblyStats,
    defrag: DefragStats,
}

impl Outcome {
    fn anomaly(&self, code: &str) -> u64 {
        self.anomalies.get(code).copied().unwrap_or(0)
    }
}

/// Runs frames `0..n` of `s` through a `SessionDriver` with the default
/// parsers, checks the accounting invariants, and reports.
fn run_session(s: Scenario, n: u64, c: &SessionConfig) -> Outcome {
    let mut buf = Vec::with_capacity(16 * KIB);
    let mut out = Outcome::default();
    let mut anomalies = BTreeMap::new();
    let mut messages = 0u64;
    let base = live();
    let start = Instant::now();
    let mut d: SessionDriver<AppMessage> = SessionDriver::with_default_parsers(c.clone());
    let mut sink = |ev: DriverEvent<'_, AppMessage>| {
        if let DriverEvent::Session { event, .. } = ev {
            match event {
                SessionEvent::Anomaly { anomaly, .. } => {
                    *anomalies.entry(anomaly.code).or_insert(0u64) += 1
                }
                SessionEvent::Message(_) => messages += 1,
                _ => {}
            }
        }
    };
    let mut frame_bytes = 0u64;
    for i in 0..n {
        let ts = s.frame(i, &mut buf);
        frame_bytes += buf.len() as u64;
        let pkt = PacketView::new(&buf, Timestamp::from_nanos(ts), LinkType::ETHERNET);
        d.process(&pkt, &mut sink);
        out.peak = out.peak.max(live() - base);
    }
    assert!(d.held_bytes() <= c.hold_total);
    assert!(d.active_sessions() <= c.track.max_flows);
    // Past every timeout: fragments still waiting expire (finish ends
    // flows only).
    let end = Timestamp::from_nanos(n * adversarial::FRAME_SPACING_NS + 3_600_000_000_000);
    d.advance_to(end, &mut sink);
    d.finish(&mut sink);
    out.peak = out.peak.max(live() - base);
    out.elapsed = start.elapsed();

    // (c) accounting: every packet went somewhere, every flow ended, every
    // fragment ended in exactly one counter.
    let pc = *d.counters();
    assert_eq!(pc.packets, n, "{}", s.name());
    assert_eq!(pc.frame_bytes, frame_bytes, "{}", s.name());
    assert!(pc.is_balanced(), "{}: {pc:?}", s.name());
    let t = d.tracker_stats();
    assert_eq!(t.active, 0, "{}", s.name());
    assert_eq!(t.flows_created, t.ended() + t.active, "{}: {t:?}", s.name());
    let sc = *d.session_counters();
    assert_eq!(
        t.packets,
        pc.tracked + sc.datagrams_reassembled,
        "{}: tracker vs driver",
        s.name()
    );
    let df = d.defrag_stats();
    assert_eq!(df.fragments, df.accounted(), "{}: {df:?}", s.name());
    assert_eq!(df.fragments, pc.fragments, "{}", s.name());
    assert_eq!(df.held_now, 0, "{}: fragments left at the end", s.name());
    out.reassembly = *d.reassembly_stats();
    out.anomalies = anomalies;
    out.messages = messages;
    out.session = sc;
    out.tracker = t;
    out.defrag = df;
    out
}

/// Tracking only (`FlowPipeline`), for the floods: checks the accounting
/// and returns the peak live heap and the tracker's counters.
fn run_pipeline(s: Scenario, n: u64, track: &TrackerConfig) -> (i64, Duration, TrackerStats) {
    let mut buf = Vec::with_capacity(16 * KIB);
    let mut peak = 0i64;
    let mut ended = 0u64;
    let base = live();
    let start = Instant::now();
    let mut p = FlowPipeline::five_tuple(ExtractConfig::default(), track.clone());
    let mut sink = |ev: &FlowEvent<_>| {
        if let FlowEvent::Ended(_) = ev {
            ended += 1;
        }
    };
    for i in 0..n {
        let ts = s.frame(i, &mut buf);
        let pkt = PacketView::new(&buf, Timestamp::from_nanos(ts), LinkType::ETHERNET);
        p.process(&pkt, &mut sink);
        peak = peak.max(live() - base);
    }
    let before_finish = p.tracker_stats();
    p.finish(&mut sink);
    let elapsed = start.elapsed();
    let pc = *p.counters();
    assert_eq!(pc.packets, n);
    assert!(pc.is_balanced(), "{pc:?}");
    let t = p.tracker_stats();
    assert_eq!(t.flows_created, t.ended(), "{t:?}");
    assert_eq!(ended, t.ended());
    assert_eq!(t.packets, pc.tracked);
    (peak, elapsed, before_finish)
}

/// Packets of the short run: 4 × as many go in the long one.
fn scaled(release: u64) -> u64 {
    if cfg!(debug_assertions) {
        release / 4
    } else {
        release
    }
}

/// (d): the long run (4 × the packets) costs less than 10 × the short one,
/// so the per-packet cost is flat within a generous margin.
fn assert_linear(name: &str, short: Duration, long: Duration) {
    eprintln!("{name}: N in {short:?}, 4N in {long:?}");
    assert!(
        long < short * 10 + Duration::from_millis(20),
        "{name}: 4N took {long:?}, N took {short:?}: superlinear"
    );
}

/// (a): under the bound, and not growing with the input (the long run
/// peaks within 25 % + 256 KiB of the short one).
fn assert_bounded(name: &str, bound: usize, short: i64, long: i64) {
    eprintln!("{name}: peak live heap {short} B (N), {long} B (4N), bound {bound} B");
    assert!(
        long <= bound as i64,
        "{name}: peak {long} B > bound {bound} B"
    );
    assert!(
        long <= short + short / 4 + 256 * KIB as i64,
        "{name}: peak grew from {short} B to {long} B with 4 × the input"
    );
}

/// Runs `s` at N and 4 N through the session driver, checks (a), (c), (d)
/// and returns the long run for the scenario's own (b) checks.
fn session_scenario(s: Scenario, n: u64, c: &SessionConfig, bound: usize) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let short = run_session(s, n, c);
    let long = run_session(s, 4 * n, c);
    assert_bounded(s.name(), bound, short.peak, long.peak);
    assert_linear(s.name(), short.elapsed, long.elapsed);
    eprintln!(
        "{}: anomalies {:?}, messages {}, {:?}, {:?}, {:?}, {:?}",
        s.name(),
        long.anomalies,
        long.messages,
        long.session,
        long.tracker,
        long.reassembly,
        long.defrag
    );
    long
}

// ------------------------------------------------------------------ floods

/// A full table evicts exactly one flow per new one: with no timeout
/// reached (5 s SYN timeout, the flood spans 4 N µs), n unique flows into
/// a table of `MAX_FLOWS` evict n − MAX_FLOWS.
fn check_flood(s: Scenario, n: u64) {
    let c = config(MAX_FLOWS);
    let o = session_scenario(s, n, &c, session_bound(&c));
    assert_eq!(o.tracker.flows_created, 4 * n);
    assert_eq!(o.tracker.ended_evicted, 4 * n - MAX_FLOWS as u64);
    // The rest end at the advance past every timeout.
    assert_eq!(o.tracker.ended_timeout, MAX_FLOWS as u64);

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let track = c.track;
    let (short, t_short, _) = run_pipeline(s, n, &track);
    let (long, t_long, t) = run_pipeline(s, 4 * n, &track);
    // Tracking alone: table entries and timers only.
    assert_bounded(
        &format!("{} (pipeline)", s.name()),
        MAX_FLOWS * PER_FLOW + SLACK,
        short,
        long,
    );
    assert_linear(&format!("{} (pipeline)", s.name()), t_short, t_long);
    assert_eq!(t.active, MAX_FLOWS as u64, "the table is full");
    assert_eq!(t.ended_evicted, 4 * n - MAX_FLOWS as u64);
}

#[test]
fn syn_flood() {
    check_flood(Scenario::Syn, scaled(40_000));
}

#[test]
fn udp_flood() {
    check_flood(Scenario::Udp, scaled(40_000));
}

// ------------------------------------------------------------------- TCP

#[test]
fn seq_jump() {
    let o = session_scenario(
        Scenario::SeqJump,
        scaled(20_000),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    // Every even segment lands 2^30 ahead: out of the 1 MiB window.
    assert!(o.reassembly.out_of_window > 0);
    // 30 held kB per connection, 1 MiB over all: the total cap is hit.
    assert!(o.reassembly.overflows > 0);
    assert!(o.anomaly("tcp.seq_out_of_window") > 0);
    assert!(o.anomaly("tcp.reassembly_overflow") > 0);
}

#[test]
fn overlap_rexmit() {
    let o = session_scenario(
        Scenario::OverlapRexmit,
        scaled(20_000),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    assert!(o.reassembly.overlap_conflicts > 0);
    assert_eq!(
        o.anomaly("tcp.overlap_conflict"),
        o.reassembly.overlap_conflicts
    );
}

#[test]
fn ooo_1byte() {
    let o = session_scenario(
        Scenario::Ooo1Byte,
        scaled(25_000),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    // 2 048 pieces per side against a cap of 512: every connection overflows.
    let conns = (4 * scaled(25_000)).div_ceil(3 + 2_048);
    assert!(o.reassembly.overflows >= conns - 1, "{:?}", o.reassembly);
}

// ------------------------------------------------------------- fragments

#[test]
fn frag_flood() {
    let o = session_scenario(
        Scenario::FragFlood,
        scaled(40_000),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    let d = o.defrag;
    assert_eq!(d.fragments, 4 * scaled(40_000));
    assert!(d.dropped_overlap > 0, "{d:?}");
    assert!(d.datagrams_overlapped > 0, "{d:?}");
    assert!(d.timed_out > 0, "{d:?}");
    assert!(d.dropped_table_full + d.dropped_memory > 0, "{d:?}");
    assert_eq!(d.datagrams_completed, 0, "no datagram is ever complete");
}

// ------------------------------------------------------------------ HTTP

#[test]
fn http_endless_header() {
    let n = scaled(20_000);
    let o = session_scenario(
        Scenario::HttpEndlessHeader,
        n,
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)) + MAX_CONNS * 16 * KIB,
    );
    // 48 × 1 408 header bytes per connection, past the 16 KiB cap.
    let full = 4 * n / 51;
    assert!(
        o.anomaly("http.header_too_long") >= full,
        "{:?}",
        o.anomalies
    );
}

#[test]
fn http_endless_chunked() {
    let o = session_scenario(
        Scenario::HttpEndlessChunked,
        scaled(20_000),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    assert_eq!(o.session.stream_parsers, 1);
    assert_eq!(o.session.parsers_poisoned, 0);
}

#[test]
fn http_pipelined_10k() {
    // One connection of 10 000 requests and 10 000 responses is 503 frames.
    let o = session_scenario(
        Scenario::HttpPipelined10k,
        scaled(2_012),
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    assert!(o.anomaly("http.too_many_pending") > 0, "{:?}", o.anomalies);
    assert!(o.messages >= 10_000, "{}", o.messages);
}

// ------------------------------------------------------------------- DNS

#[test]
fn dns_compression_loop() {
    let n = scaled(20_000);
    let o = session_scenario(
        Scenario::DnsCompressionLoop,
        n,
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)),
    );
    assert!(o.anomaly("dns.malformed") > 0, "{:?}", o.anomalies);
}

// ------------------------------------------------------------------- TLS

#[test]
fn tls_16mib_record() {
    let n = scaled(20_000);
    let o = session_scenario(
        Scenario::Tls16MibRecord,
        n,
        &config(MAX_CONNS),
        session_bound(&config(MAX_CONNS)) + MAX_CONNS * 64 * KIB,
    );
    assert!(
        o.anomaly("tls.handshake_too_large") > 0,
        "{:?}",
        o.anomalies
    );
}

#[test]
fn scenario_names_round_trip() {
    for s in Scenario::ALL {
        assert_eq!(Scenario::from_name(s.name()), Some(s));
    }
}
