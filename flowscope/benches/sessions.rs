//! SessionDriver (extract, defragment, track, reassemble TCP, parse) over
//! ~36 k in-memory frames of 2 000 interleaved HTTP, TLS, DNS and
//! unrecognised TCP sessions, with the built-in parsers and with none (the
//! difference is the parsers' cost).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::proto::AppMessage;
use flowscope_core::{LinkType, PacketView, SessionEvent, Timestamp};

/// Runs every frame and `finish`; returns the messages emitted.
fn run(d: &mut SessionDriver<AppMessage>, frames: &common::Frames) -> u64 {
    let mut messages = 0u64;
    let mut sink = |ev: DriverEvent<'_, AppMessage>| {
        if let DriverEvent::Session {
            event: SessionEvent::Message(_),
            ..
        } = &ev
        {
            messages += 1;
        }
        black_box(&ev);
    };
    for &(s, e, ts) in &frames.index {
        let data = frames.buf.get(s..e).unwrap_or(&[]);
        let pkt = PacketView::new(data, Timestamp::from_nanos(ts), LinkType::ETHERNET);
        d.process(&pkt, &mut sink);
    }
    d.finish(&mut sink);
    messages
}

fn bench_sessions(c: &mut Criterion) {
    let frames = common::session_capture(2_000);
    // The set must exercise every parser: 500 flows of each kind give 3
    // HTTP transactions, 2 TLS hellos and 8 DNS messages per flow.
    let mut probe = SessionDriver::with_default_parsers(SessionConfig::default());
    let messages = run(&mut probe, &frames);
    let counters = *probe.session_counters();
    assert_eq!(
        counters.stream_parsers, 1_000,
        "HTTP + TLS flows get a parser"
    );
    assert_eq!(counters.datagram_parsers, 500, "DNS flows get a parser");
    assert!(messages >= 500 * (3 + 2 + 8), "messages: {messages}");

    let mut g = c.benchmark_group("sessions");
    g.sample_size(20);
    g.throughput(Throughput::Elements(frames.index.len() as u64));
    g.bench_function("default_parsers_2k_flows", |b| {
        b.iter_batched_ref(
            || SessionDriver::with_default_parsers(SessionConfig::default()),
            |d| black_box(run(d, &frames)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("no_parsers_2k_flows", |b| {
        b.iter_batched_ref(
            || SessionDriver::<AppMessage>::new(SessionConfig::default()),
            |d| black_box(run(d, &frames)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_sessions);
criterion_main!(benches);
