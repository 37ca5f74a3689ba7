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
    let c = IpAddr::from([192, 0, 2, 2]);
    assert_eq!(
        flow_hash((a, 1), (c, 2), 6, 1),
        flow_hash((c, 2), (a, 1), 6, 1)
    );
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
    // A reply's fragments too (its own datagram identity, RFC 791 §3.2).
    let reply = udp(53, 5000, &[9; 16]);
    let back_first = eth(
        0x0800,
        &ipv4(b, a, UDP, 78, 0, true, reply.get(..16).unwrap_or(&[])),
    );
    let back = eth(
        0x0800,
        &ipv4(b, a, UDP, 78, 2, false, reply.get(16..).unwrap_or(&[])),
    );
    assert_eq!(worker(&mut d, &back_first), flow);
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
    // The reply, fragmented (RFC 8200 §4.5): 16 bytes of a 24-byte UDP
    // datagram, then the rest at offset 2 units.
    let dgram = udp(53, 5000, &[3; 16]);
    let first = eth(
        0x86dd,
        &ipv6(
            b,
            a,
            44,
            &ipv6_frag(UDP, 0, true, 5, dgram.get(..16).unwrap_or(&[])),
        ),
    );
    let later = eth(
        0x86dd,
        &ipv6(
            b,
            a,
            44,
            &ipv6_frag(UDP, 2, false, 5, dgram.get(16..).unwrap_or(&[])),
        ),
    );
    assert_eq!(worker(&mut d, &first), 1);
    assert_eq!(worker(&mut d, &later), 1);
}

/// The deliveries of `frames` (in order) through `dispatch`, then `flush`:
/// `(worker, index of the frame in `frames`)`.
fn deliveries(d: &mut Dispatcher, frames: &[(u64, Vec<u8>)]) -> Vec<(usize, usize)> {
    let index_of = |p: &PacketView<'_>| {
        frames
            .iter()
            .position(|(_, f)| f.as_slice() == p.data)
            .unwrap_or(usize::MAX)
    };
    let mut out = Vec::new();
    for (secs, f) in frames {
        let p = PacketView::new(f, Timestamp::from_secs_nanos(*secs, 0), LinkType::ETHERNET);
        d.dispatch(&p, &mut |w, p| out.push((w, index_of(p))));
    }
    d.flush(&mut |w, p| out.push((w, index_of(p))));
    out
}

/// Two flows between the same hosts whose 5-tuples hash to different
/// workers (so a fragment sent by the address pair would be caught on one
/// of them): `(flow to worker 0's ports, flow to worker 1's ports)`.
fn ports_on_both_workers(d: &Dispatcher, a: [u8; 4], b: [u8; 4], proto: u8) -> [(u16, usize); 2] {
    let mut d = d.clone();
    let pair_worker = reduce(pair_hash(IpAddr::from(a), IpAddr::from(b), DEFAULT_SEED), 2);
    let mut pick = |want: usize| {
        (1000..3000u16)
            .find(|&sport| {
                worker(
                    &mut d,
                    &eth(
                        0x0800,
                        &ipv4(
                            a,
                            b,
                            proto,
                            1,
                            0,
                            false,
                            &if proto == TCP {
                                tcp(sport, 53, b"")
                            } else {
                                udp(sport, 53, b"")
                            },
                        ),
                    ),
                ) == want
            })
            .unwrap_or(0)
    };
    // The one on the other worker than the pair's first: that is the one a
    // guess by addresses would get wrong.
    let other = 1 - pair_worker;
    [(pick(other), other), (pick(pair_worker), pair_worker)]
}

/// A datagram whose fragments arrive last first (Linux has sent them so):
/// the later fragments are held, then delivered to the first fragment's
/// worker right before it, in capture order, so that worker's defragmenter
/// has every piece when the first one completes the datagram.
#[test]
fn fragments_arriving_before_their_first_fragment_are_held_for_it() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let (a, b) = (v4(1), v4(2));
    let [(sport, w), _] = ports_on_both_workers(&d, a, b, UDP);
    // A 40-byte UDP datagram in three fragments of 16, 16 and 8 bytes
    // (offsets 0, 2 and 4 units of 8 bytes, RFC 791 §3.1).
    let dgram = udp(sport, 53, &[7; 32]);
    let part = |r: std::ops::Range<usize>| dgram.get(r).unwrap_or(&[]).to_vec();
    let frames = vec![
        (
            1,
            eth(0x0800, &ipv4(a, b, UDP, 300, 4, false, &part(32..40))),
        ),
        (
            1,
            eth(0x0800, &ipv4(a, b, UDP, 300, 2, true, &part(16..32))),
        ),
        // An unrelated packet in between is not held back.
        (
            1,
            eth(
                0x0800,
                &ipv4(v4(8), v4(9), TCP, 1, 0, false, &tcp(1, 2, b"")),
            ),
        ),
        (2, eth(0x0800, &ipv4(a, b, UDP, 300, 0, true, &part(0..16)))),
    ];
    let out = deliveries(&mut d, &frames);
    let unrelated = worker(&mut d.clone(), &frames[2].1);
    assert_eq!(out, vec![(unrelated, 2), (w, 0), (w, 1), (w, 3)]);
    let c = d.counters();
    assert_eq!(
        (
            c.fragments_held,
            c.fragments_released,
            c.fragments_unmatched
        ),
        (2, 2, 0)
    );
}

/// A later fragment whose first fragment never comes is delivered once, to
/// its address pair's worker: at the end of the input, after the hold
/// timeout, or when the store is full.
#[test]
fn fragments_whose_first_fragment_never_comes_go_to_their_pair() {
    let (a, b) = (v4(1), v4(2));
    let pair_worker = reduce(pair_hash(IpAddr::from(a), IpAddr::from(b), DEFAULT_SEED), 2);
    let orphan = |id: u16| eth(0x0800, &ipv4(a, b, UDP, id, 2, false, &[1; 8]));
    let other = eth(
        0x0800,
        &ipv4(v4(8), v4(9), TCP, 1, 0, false, &tcp(1, 2, b"")),
    );

    // End of input.
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let other_worker = worker(&mut d.clone(), &other);
    let out = deliveries(&mut d, &[(1, orphan(7)), (2, other.clone())]);
    assert_eq!(out, vec![(other_worker, 1), (pair_worker, 0)]);
    assert_eq!(d.counters().fragments_unmatched, 1);

    // Timeout: 30 s of capture time (HOLD_TIMEOUT) is not yet too long,
    // 31 s is; the fragment goes before the packet that showed it.
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let out = deliveries(
        &mut d,
        &[(1, orphan(7)), (31, other.clone()), (32, orphan(8))],
    );
    assert_eq!(
        out,
        vec![(other_worker, 1), (pair_worker, 0), (pair_worker, 2)]
    );
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut seen = Vec::new();
    for (secs, f) in [(1, orphan(7)), (31, other.clone())] {
        let p = PacketView::new(&f, Timestamp::from_secs_nanos(secs, 0), LinkType::ETHERNET);
        d.dispatch(&p, &mut |w, _| seen.push(w));
    }
    assert_eq!(seen, vec![other_worker], "held at exactly 30 s");

    // Bound: the oldest is let go when one more than MAX_HELD_FRAGMENTS
    // are held; every fragment is still delivered exactly once.
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut count = 0usize;
    let held = MAX_HELD_FRAGMENTS as u16;
    for id in 0..=held {
        let f = orphan(id);
        let p = PacketView::new(&f, Timestamp::from_secs_nanos(1, 0), LinkType::ETHERNET);
        d.dispatch(&p, &mut |w, p| {
            assert_eq!((w, p.data), (pair_worker, orphan(0).as_slice()));
            count += 1;
        });
    }
    assert_eq!(count, 1);
    d.flush(&mut |_, _| count += 1);
    assert_eq!(count, MAX_HELD_FRAGMENTS + 1);
    let c = d.counters();
    assert_eq!(
        (
            c.fragments_held,
            c.fragments_released,
            c.fragments_unmatched
        ),
        (
            MAX_HELD_FRAGMENTS as u64 + 1,
            0,
            MAX_HELD_FRAGMENTS as u64 + 1
        )
    );
}

/// Flows between the same two hosts spread over the workers by their
/// ports: one busy host pair no longer loads one worker.
#[test]
fn flows_of_one_host_pair_spread_by_port() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut counts = [0usize; 2];
    // 2000 flows: a uniform hash gives 1000 ± 22 (σ = sqrt(2000/4)); 150 is
    // > 6 σ.
    for sport in 30_000..32_000u16 {
        let f = eth(
            0x0800,
            &ipv4(v4(1), v4(2), TCP, 0, 0, false, &tcp(sport, 5432, b"")),
        );
        if let Some(c) = counts.get_mut(worker(&mut d, &f)) {
            *c += 1;
        }
    }
    assert!(counts.iter().all(|c| c.abs_diff(1000) < 150), "{counts:?}");
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
    // Where a fragment with no known first fragment goes.
    let outer_worker = reduce(
        pair_hash(IpAddr::from(oa), IpAddr::from(ob), DEFAULT_SEED),
        2,
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

/// A TCP SYN cut after 8 bytes of its header (as in Suricata's
/// bug-6887 capture): the extractor cannot key the first fragment, but its
/// ports are there, and the reassembled datagram is keyed by them. It goes
/// to its 5-tuple's worker, with its later fragment, held or not.
#[test]
fn first_fragment_short_of_its_tcp_header_goes_by_its_ports() {
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let (a, b) = (v4(1), v4(2));
    let [(sport, w), _] = ports_on_both_workers(&d, a, b, TCP);
    let syn = tcp(sport, 53, b"");
    let frames = vec![
        (
            1,
            eth(
                0x0800,
                &ipv4(a, b, TCP, 1, 1, true, syn.get(8..16).unwrap_or(&[])),
            ),
        ),
        (
            1,
            eth(
                0x0800,
                &ipv4(a, b, TCP, 1, 0, true, syn.get(..8).unwrap_or(&[])),
            ),
        ),
        (
            1,
            eth(
                0x0800,
                &ipv4(a, b, TCP, 1, 2, false, syn.get(16..).unwrap_or(&[])),
            ),
        ),
    ];
    for fast_path in [true, false] {
        let mut d = d.clone().with_fast_path(fast_path);
        assert_eq!(deliveries(&mut d, &frames), vec![(w, 0), (w, 1), (w, 2)]);
    }
    // The same SYN whole goes there too.
    let whole = eth(0x0800, &ipv4(a, b, TCP, 1, 0, false, &syn));
    assert_eq!(worker(&mut d.clone(), &whole), w);
}
