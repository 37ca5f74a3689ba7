//! FlowTracker on precomputed `Extracted` values: the existing-flow hit path
//! (TCP data and UDP on established flows) and the new-flow path (SYNs of
//! distinct 5-tuples into an empty table).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::net::IpAddr;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowscope::track::{FlowTracker, TrackerConfig};
use flowscope_core::{
    Extracted, FiveTuple, FlowEvent, L4Proto, LinkType, Orientation, PacketView, TcpFlags, TcpInfo,
    Timestamp,
};

const FLOWS: u32 = 10_000;
const T0: u64 = 1_700_000_000_000_000_000;

/// The canonical key and the client's orientation for flow `i`.
fn key(i: u32, proto: u8, dport: u16) -> (FiveTuple, Orientation) {
    let c = IpAddr::V4(client_v4(i + 1));
    let s = IpAddr::V4(server_v4(i));
    FiveTuple::from_directed(c, 32_768 + (i % 28_000) as u16, s, dport, proto)
}

fn tcp_ex(
    k: FiveTuple,
    o: Orientation,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u32,
) -> Extracted<FiveTuple> {
    let mut ex = Extracted::new(k, o, L4Proto::Tcp);
    ex.tcp = Some(TcpInfo::new(seq, ack, 502, TcpFlags(flags)));
    ex.ip_version = 4;
    ex.ip_len = 40 + len;
    ex.payload_wire_len = len;
    ex
}

fn udp_ex(k: FiveTuple, o: Orientation, len: u32) -> Extracted<FiveTuple> {
    let mut ex = Extracted::new(k, o, L4Proto::Udp);
    ex.ip_version = 4;
    ex.ip_len = 28 + len;
    ex.payload_wire_len = len;
    ex
}

fn bench_track(c: &mut Criterion) {
    let frame = [0u8; 60];
    let pkt_at = |ns: u64| PacketView::new(&frame, Timestamp::from_nanos(ns), LinkType::ETHERNET);
    let mut sink = |ev: &FlowEvent<FiveTuple>| {
        black_box(ev);
    };
    let mut g = c.benchmark_group("track");

    // Hit path, TCP: established flows, client data segments.
    let mut t = FlowTracker::new(TrackerConfig::default());
    let mut now = T0;
    let keys: Vec<_> = (0..FLOWS).map(|i| key(i, 6, 443)).collect();
    let isn = |i: u32| i.wrapping_mul(2_654_435_761);
    for (i, &(k, o)) in keys.iter().enumerate() {
        let i = i as u32;
        let r = o.reverse();
        now += 1_000;
        t.track(&pkt_at(now), &tcp_ex(k, o, isn(i), 0, SYN, 0), &mut sink);
        t.track(
            &pkt_at(now),
            &tcp_ex(k, r, 7, isn(i).wrapping_add(1), SYN | ACK, 0),
            &mut sink,
        );
        t.track(
            &pkt_at(now),
            &tcp_ex(k, o, isn(i).wrapping_add(1), 8, ACK, 0),
            &mut sink,
        );
    }
    let mut seq: Vec<u32> = (0..FLOWS).map(|i| isn(i).wrapping_add(1)).collect();
    g.throughput(Throughput::Elements(u64::from(FLOWS)));
    g.bench_function("hit_tcp_data", |b| {
        b.iter(|| {
            for (i, &(k, o)) in keys.iter().enumerate() {
                now += 100;
                let s = &mut seq[i];
                black_box(t.track(
                    &pkt_at(now),
                    &tcp_ex(k, o, *s, 8, ACK | PSH, 100),
                    &mut sink,
                ));
                *s = s.wrapping_add(100);
            }
        })
    });

    // Hit path, UDP.
    let mut t = FlowTracker::new(TrackerConfig::default());
    let ukeys: Vec<_> = (0..FLOWS).map(|i| key(i, 17, 53)).collect();
    for &(k, o) in &ukeys {
        now += 1_000;
        t.track(&pkt_at(now), &udp_ex(k, o, 40), &mut sink);
    }
    g.bench_function("hit_udp", |b| {
        b.iter(|| {
            for &(k, o) in &ukeys {
                now += 100;
                black_box(t.track(&pkt_at(now), &udp_ex(k, o, 40), &mut sink));
            }
        })
    });

    // New-flow path: SYNs of distinct tuples into an empty table.
    let syns: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, &(k, o))| tcp_ex(k, o, isn(i as u32), 0, SYN, 0))
        .collect();
    g.bench_function("new_flow_syn", |b| {
        b.iter_batched_ref(
            || FlowTracker::<FiveTuple>::new(TrackerConfig::default()),
            |t| {
                let mut ts = T0;
                for ex in &syns {
                    ts += 100;
                    black_box(t.track(&pkt_at(ts), ex, &mut sink));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_track);
criterion_main!(benches);
