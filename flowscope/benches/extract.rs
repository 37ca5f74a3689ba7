//! FiveTupleExtractor on representative frames: Ethernet/IPv4/TCP,
//! IPv6/UDP, VLAN + IPv4, and VXLAN-in-UDP (decapsulated to the inner flow).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::net::Ipv6Addr;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{FlowExtractor, LinkType, PacketView, Timestamp};

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let c = client_v4(1);
    let s = server_v4(1);
    let payload = [0x42u8; 1460];
    let tcp4 = eth(
        None,
        0x0800,
        &ipv4(6, c, s, &tcp(40_000, 443, 1, 2, ACK, &payload)),
    );
    let c6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let s6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
    let udp6 = eth(
        None,
        0x86dd,
        &ipv6(17, c6, s6, &udp(40_001, 53, &[0u8; 40])),
    );
    let vlan4 = eth(
        Some(100),
        0x0800,
        &ipv4(6, c, s, &tcp(40_002, 80, 1, 0, SYN, &[])),
    );
    let inner = eth(
        None,
        0x0800,
        &ipv4(6, c, s, &tcp(40_003, 22, 7, 9, ACK | PSH, &payload[..200])),
    );
    let outer_v = vxlan(4242, &inner);
    let vx = eth(
        None,
        0x0800,
        &ipv4(
            17,
            client_v4(99),
            server_v4(99),
            &udp(51_000, 4789, &outer_v),
        ),
    );
    vec![
        ("eth_ipv4_tcp", tcp4),
        ("eth_ipv6_udp", udp6),
        ("vlan_ipv4_tcp", vlan4),
        ("vxlan_ipv4_tcp", vx),
    ]
}

fn bench_extract(c: &mut Criterion) {
    let x = FiveTupleExtractor::new(ExtractConfig::default());
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in frames() {
        let pkt = PacketView::new(
            &frame,
            Timestamp::from_secs_nanos(1_700_000_000, 0),
            LinkType::ETHERNET,
        );
        g.bench_function(name, |b| b.iter(|| black_box(x.extract(black_box(&pkt)))));
    }
    g.finish();
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
