//! Frames built by hand (RFC 791 / RFC 8200 / RFC 7348 layouts).

use super::*;
use crate::test_frames::*;
use flowscope_core::{LinkType, Timestamp};

fn worker(d: &mut Dispatcher, frame: &[u8]) -> usize {
    d.worker_for(&PacketView::new(
        frame,
        Timestamp::from_secs_nanos(1, 0),
        LinkType::ETHERNET,
    ))
}

/// Finds a flow that does not go to worker 0, so a test that expects the
/// flow's worker cannot pass by everything landing on the unkeyed worker.
fn flow_off_worker_zero(d: &mut Dispatcher) -> (u32, u32) {
    (1..1000)
        .map(|i| (i, i + 5000))
        .find(|&(a, b)| {
            worker(
                d,
                &eth(
                    0x0800,
                    &ipv4(v4(a), v4(b), TCP, 1, 0, false, &tcp(1, 2, b"")),
                ),
            ) != 0
        })
        .unwrap_or((0, 0))
}

#[test]
fn both_directions_go_to_the_same_worker() {
    for n in [2, 3, 8] {
        let mut d = Dispatcher::new(ExtractConfig::default(), n, true);
        for i in 0..500u32 {
            let (a, b) = (v4(i), v4(i * 7 + 10_000));
            let fwd = eth(
                0x0800,
                &ipv4(a, b, TCP, 1, 0, false, &tcp(40_000, 443, b"x")),
            );
            let rev = eth(
                0x0800,
                &ipv4(b, a, TCP, 2, 0, false, &tcp(443, 40_000, b"y")),
            );
            assert_eq!(
                worker(&mut d, &fwd),
                worker(&mut d, &rev),
                "flow {i} over {n} workers"
            );
        }
    }
}

#[test]
fn pair_hash_is_symmetric_and_keyed() {
    let a = IpAddr::from([192, 0, 2, 1]);
    let b = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert_eq!(pair_hash(a, b, 1), pair_hash(b, a, 1));
    assert_ne!(pair_hash(a, b, 1), pair_hash(a, b, 2));
}

#[test]
fn ipv4_fragments_go_with_their_flow() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let (a, b) = flow_off_worker_zero(&mut d);
    let (a, b) = (v4(a), v4(b));
    let flow = worker(
        &mut d,
        &eth(0x0800, &ipv4(a, b, UDP, 9, 0, false, &udp(5000, 53, b"q"))),
    );
    assert_eq!(flow, 1);
    // A 24-byte UDP datagram in two fragments: the first (offset 0, MF)
    // has the UDP header, the second (offset 2 units = 16 bytes) has none.
    let dgram = udp(5000, 53, &[7; 16]);
    let first = eth(
        0x0800,
        &ipv4(a, b, UDP, 77, 0, true, dgram.get(..16).unwrap_or(&[])),
    );
    let second = eth(
        0x0800,
        &ipv4(a, b, UDP, 77, 2, false, dgram.get(16..).unwrap_or(&[])),
    );
    assert_eq!(worker(&mut d, &first), flow);
    assert_eq!(worker(&mut d, &second), flow);
    // A reply's fragments too.
    let back = eth(0x0800, &ipv4(b, a, UDP, 78, 2, false, &[1; 8]));
    assert_eq!(worker(&mut d, &back), flow);
}

#[test]
fn ipv6_fragments_go_with_their_flow() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    let found = (1..1000u16).find_map(|i| {
        let mut b = a;
        b[14..].copy_from_slice(&i.to_be_bytes());
        let f = eth(0x86dd, &ipv6(a, b, UDP, &udp(5000, 53, b"q")));
        (worker(&mut d, &f) == 1).then_some(b)
    });
    let Some(b) = found else {
        panic!("no IPv6 flow hashed to worker 1 in 1000 tries");
    };
    let later = eth(
        0x86dd,
        &ipv6(b, a, 44, &ipv6_frag(UDP, 2, false, 5, &[3; 8])),
    );
    assert_eq!(worker(&mut d, &later), 1);
}

#[test]
fn tunnelled_packets_hash_like_their_inner_flow() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 4, true);
    for i in 0..200u32 {
        let (a, b) = (v4(i), v4(i + 20_000));
        let inner_ip = ipv4(a, b, TCP, 1, 0, false, &tcp(1234, 80, b"GET"));
        let plain = eth(0x0800, &inner_ip);
        // VXLAN (RFC 7348): outer UDP to 4789, 8-byte header with the I
        // flag, then the inner Ethernet frame.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&eth(0x0800, &inner_ip));
        let outer = eth(
            0x0800,
            &ipv4(
                [192, 0, 2, 1],
                [192, 0, 2, 2],
                UDP,
                3,
                0,
                false,
                &udp(50_000, 4789, &vx),
            ),
        );
        assert_eq!(
            worker(&mut d, &outer),
            worker(&mut d, &plain),
            "inner flow {i}"
        );
    }
}

#[test]
fn without_decap_the_outer_pair_is_hashed() {
    let mut cfg = ExtractConfig::default();
    cfg.decap_tunnels = false;
    let mut d = Dispatcher::new(cfg, 2, true);
    let outer_of = |i: u32| -> Vec<u8> {
        let inner_ip = ipv4(v4(i), v4(i + 20_000), TCP, 1, 0, false, &tcp(1234, 80, b""));
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&eth(0x0800, &inner_ip));
        eth(
            0x0800,
            &ipv4(
                [192, 0, 2, 1],
                [192, 0, 2, 2],
                UDP,
                3,
                0,
                false,
                &udp(50_000, 4789, &vx),
            ),
        )
    };
    let w = worker(&mut d, &outer_of(0));
    assert!((1..100).all(|i| worker(&mut d, &outer_of(i)) == w));
}

#[test]
fn unkeyed_packets_go_to_worker_zero() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 4, true);
    let arp = eth(0x0806, &[0; 28]);
    assert_eq!(worker(&mut d, &arp), UNKEYED_WORKER);
    let truncated = eth(0x0800, &[0x45, 0, 0]);
    assert_eq!(worker(&mut d, &truncated), UNKEYED_WORKER);
    assert_eq!(worker(&mut d, &[]), UNKEYED_WORKER);
}

#[test]
fn many_flows_spread_evenly() {
    // 4000 host pairs over 2 and 4 workers: a uniform hash puts each
    // worker's share within a few standard deviations (sqrt(n p (1-p)) ≈
    // 32 for n = 4000, p = 1/2; ≈ 27 for p = 1/4) of n/k; 200 is > 6 σ.
    for k in [2usize, 4] {
        let mut d = Dispatcher::new(ExtractConfig::default(), k, true);
        let mut counts = vec![0usize; k];
        for i in 0..4000u32 {
            let f = eth(
                0x0800,
                &ipv4(
                    v4(i),
                    v4(i ^ 0x00ff_0000),
                    UDP,
                    0,
                    0,
                    false,
                    &udp(1, 2, b""),
                ),
            );
            if let Some(c) = counts.get_mut(worker(&mut d, &f)) {
                *c += 1;
            }
        }
        for c in &counts {
            assert!(c.abs_diff(4000 / k) < 200, "{k} workers: {counts:?}");
        }
    }
}

#[test]
fn one_worker_takes_everything() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 0, true);
    assert_eq!(d.workers(), 1);
    let f = eth(
        0x0800,
        &ipv4(v4(1), v4(2), TCP, 0, 0, false, &tcp(1, 2, b"")),
    );
    assert_eq!(worker(&mut d, &f), 0);
}

#[test]
fn fragments_of_a_fragmented_tunnel_follow_the_inner_flow() {
    // IP-in-IP (protocol 4, RFC 2003) whose outer datagram is fragmented:
    // the first fragment shows the inner 5-tuple, the second only the
    // outer addresses. Pick an inner flow whose worker differs from the
    // outer pair's, so following the outer pair would be caught.
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let (oa, ob) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let outer_worker = worker(
        &mut d,
        &eth(0x0800, &ipv4(oa, ob, UDP, 1, 0, false, &udp(9, 9, b""))),
    );
    let found = (0..1000u32).find_map(|i| {
        let inner = ipv4(
            v4(i),
            v4(i + 9000),
            TCP,
            1,
            0,
            false,
            &tcp(1234, 80, &[5; 40]),
        );
        let w = worker(&mut d, &eth(0x0800, &inner));
        (w != outer_worker).then_some((inner, w))
    });
    let Some((inner, inner_worker)) = found else {
        panic!("every inner flow hashed like the outer pair");
    };
    // Outer payload = inner datagram (80 bytes); fragment at 48 bytes.
    let first = eth(
        0x0800,
        &ipv4(oa, ob, 4, 4242, 0, true, inner.get(..48).unwrap_or(&[])),
    );
    let second = eth(
        0x0800,
        &ipv4(oa, ob, 4, 4242, 6, false, inner.get(48..).unwrap_or(&[])),
    );
    assert_eq!(worker(&mut d, &first), inner_worker);
    assert_eq!(worker(&mut d, &second), inner_worker);
    // Another datagram's fragment (other id) is not taken for this one.
    let stray = eth(
        0x0800,
        &ipv4(oa, ob, 4, 4243, 6, false, inner.get(48..).unwrap_or(&[])),
    );
    assert_eq!(worker(&mut d, &stray), outer_worker);
}
