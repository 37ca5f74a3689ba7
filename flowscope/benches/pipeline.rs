//! FlowPipeline (extract + track) over ~100 k in-memory frames of 1 000
//! interleaved flows, built by a tiny deterministic generator.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowscope::driver::FlowPipeline;
use flowscope::extract::ExtractConfig;
use flowscope::track::TrackerConfig;
use flowscope_core::{FiveTuple, FlowEvent, LinkType, PacketView, Timestamp};

fn bench_pipeline(c: &mut Criterion) {
    let frames = common::mixed_capture(1_000, 100);
    let bytes: usize = frames.index.iter().map(|&(s, e, _)| e - s).sum();
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20);
    g.throughput(Throughput::Elements(frames.index.len() as u64));
    g.bench_function("five_tuple_100k_packets", |b| {
        b.iter_batched_ref(
            || FlowPipeline::five_tuple(ExtractConfig::default(), TrackerConfig::default()),
            |pl| {
                let mut sink = |ev: &FlowEvent<FiveTuple>| {
                    black_box(ev);
                };
                for &(s, e, ts) in &frames.index {
                    let data = frames.buf.get(s..e).unwrap_or(&[]);
                    let pkt = PacketView::new(data, Timestamp::from_nanos(ts), LinkType::ETHERNET);
                    pl.process(&pkt, &mut sink);
                }
                pl.finish(&mut sink);
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
