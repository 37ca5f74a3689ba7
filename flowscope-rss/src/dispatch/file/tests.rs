//! The two file splits deliver exactly the packets the dispatcher assigns,
//! in capture order, with clock ticks that follow the capture.

use std::io::Cursor;

use std::net::IpAddr;

use super::*;
use crate::dispatch::{pair_hash, reduce, DEFAULT_SEED};
use crate::test_frames::*;
use flowscope::extract::ExtractConfig;

/// 3000 packets of 300 flows (both directions), 1 ms apart, plus an ARP
/// frame every 100 packets; the payload's first byte… is not unique, so
/// packets are told apart by their timestamp.
fn capture() -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let mut frames = Vec::new();
    for k in 0..3000u32 {
        let us = 1_000_000 + u64::from(k) * 1000;
        let f = if k % 100 == 99 {
            eth(0x0806, &[0; 28])
        } else {
            udp_flow_packet(k % 300, k % 2 == 1)
        };
        frames.push((us, f));
    }
    (pcap(&frames), frames)
}

fn expected(d: &Dispatcher, frames: &[(u64, Vec<u8>)], me: usize) -> Vec<u64> {
    let mut d = d.clone();
    let mut mine = Vec::new();
    let mut take = |w: usize, p: &PacketView<'_>| {
        if w == me {
            mine.push(p.ts.as_nanos() / 1000);
        }
    };
    for (us, f) in frames {
        let v = PacketView::new(f, Timestamp::from_micros(*us), LinkType::ETHERNET);
        d.dispatch(&v, &mut take);
    }
    d.flush(&mut take);
    mine
}

/// Drains a source: the timestamps (µs) of its packets and its Idle ticks.
fn drain(src: &mut dyn PacketSource) -> (Vec<u64>, Vec<u64>) {
    let mut got = Vec::new();
    let mut ticks = Vec::new();
    loop {
        let r = src.next_batch(&mut |p| got.push(p.ts.as_nanos() / 1000));
        match r {
            Ok(Batch::Packets(_)) => {}
            Ok(Batch::Idle { now }) => ticks.push(now.as_nanos() / 1000),
            Ok(Batch::End) => break,
            Err(e) => panic!("source error {e}"),
        }
    }
    (got, ticks)
}

fn check(d: &Dispatcher, frames: &[(u64, Vec<u8>)], per_worker: &[(Vec<u64>, Vec<u64>)]) {
    let last = frames.last().map(|(us, _)| *us).unwrap_or(0);
    let mut total = 0;
    for (w, (got, ticks)) in per_worker.iter().enumerate() {
        assert_eq!(got, &expected(d, frames, w), "worker {w}'s packets");
        assert!(!got.is_empty(), "worker {w} got nothing");
        assert!(ticks.windows(2).all(|t| t[0] <= t[1]), "ticks go backwards");
        // A worker hears the capture's final clock unless its own packet
        // was the last (its driver then already moved to that time).
        if got.last() == Some(&last) {
            assert!(
                ticks.last().is_none_or(|t| *t < last),
                "worker {w}: tick after its own last packet"
            );
        } else {
            assert_eq!(
                ticks.last(),
                Some(&last),
                "worker {w}'s last tick is the capture's end"
            );
        }
        total += got.len();
    }
    assert_eq!(total, frames.len());
}

#[test]
fn feeder_hands_each_worker_its_packets_in_order() {
    let (bytes, frames) = capture();
    let d = Dispatcher::new(ExtractConfig::default(), 3, true);
    let reader = CaptureReader::new(Cursor::new(bytes)).expect("pcap header");
    let (feeder, sources) = FileFeeder::new(reader, d.clone());
    let (report, results) = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .into_iter()
            .map(|mut src| s.spawn(move || drain(&mut src)))
            .collect();
        let report = feeder.run(&mut |_| {});
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect();
        (report, results)
    });
    assert_eq!(report.packets, 3000);
    assert_eq!(report.undelivered, 0);
    assert!(report.damage.is_none());
    check(&d, &frames, &results);
}

#[test]
fn feeder_ticks_idle_workers_on_the_capture_clock() {
    // Every packet is one flow's, so one worker gets all of them; the
    // other must still see the clock move (every TICK_PACKETS packets).
    let frames: Vec<(u64, Vec<u8>)> = (0..10_000u64)
        .map(|k| (k * 1000, udp_flow_packet(5, k % 2 == 0)))
        .collect();
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let busy = d.clone().worker_for(&PacketView::new(
        &frames[0].1,
        Timestamp::ZERO,
        LinkType::ETHERNET,
    ));
    let reader = CaptureReader::new(Cursor::new(pcap(&frames))).expect("pcap header");
    let (feeder, sources) = FileFeeder::new(reader, d);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .into_iter()
            .map(|mut src| s.spawn(move || drain(&mut src)))
            .collect();
        feeder.run(&mut |_| {});
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect::<Vec<_>>()
    });
    let idle = &results[1 - busy];
    assert!(idle.0.is_empty());
    // Ticks at packets 4096 and 8192 (ts of the packet read last) and at the end.
    assert_eq!(idle.1, vec![4095 * 1000, 8191 * 1000, 9999 * 1000]);
}

#[test]
fn feeder_reports_damage_after_delivering_what_came_before() {
    let (mut bytes, frames) = capture();
    // Cut the last record in half.
    let cut = bytes.len() - 10;
    bytes.truncate(cut);
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let reader = CaptureReader::new(Cursor::new(bytes)).expect("pcap header");
    let (feeder, sources) = FileFeeder::new(reader, d);
    let (report, delivered) = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .into_iter()
            .map(|mut src| s.spawn(move || drain(&mut src).0.len()))
            .collect();
        let report = feeder.run(&mut |_| {});
        (
            report,
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .sum::<usize>(),
        )
    });
    assert!(report.damage.is_some());
    assert_eq!(report.packets, frames.len() as u64 - 1);
    assert_eq!(delivered, frames.len() - 1);
}

#[test]
fn feeder_stops_reading_when_every_worker_is_gone() {
    let (bytes, _) = capture();
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let reader = CaptureReader::new(Cursor::new(bytes)).expect("pcap header");
    let (feeder, sources) = FileFeeder::new(reader, d);
    drop(sources);
    let report = feeder.run(&mut |_| {});
    // Gone before the first tick: everything after is not read.
    assert!(report.packets <= TICK_PACKETS);
    assert_eq!(report.undelivered, report.packets);
}

#[test]
fn whole_file_shares_partition_the_capture() {
    let (bytes, frames) = capture();
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let results: Vec<_> = (0..2)
        .map(|me| {
            let reader = CaptureReader::new(Cursor::new(bytes.clone())).expect("pcap header");
            let mut src = WholeFileShare::new(reader, d.clone(), me);
            let r = drain(&mut src);
            assert_eq!(src.stats().packets, r.0.len() as u64);
            r
        })
        .collect();
    check(&d, &frames, &results);
}

/// Timestamps that go backwards: the Idle before a late packet carries the
/// clock the single driver had reached, and no tick follows a worker's own
/// last packet.
#[test]
fn backwards_timestamps_get_the_single_drivers_clock() {
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut probe = d.clone();
    let on = |p: &mut Dispatcher, f: &[u8]| {
        p.worker_for(&PacketView::new(f, Timestamp::ZERO, LinkType::ETHERNET))
    };
    // Two flows on different workers.
    let a = udp_flow_packet(0, false);
    let Some(b) = (1..500)
        .map(|i| udp_flow_packet(i, false))
        .find(|f| on(&mut probe, f) != on(&mut probe, &a))
    else {
        panic!("no flow on the other worker");
    };
    let wa = on(&mut probe, &a);
    // a@10s, b@100s, a@20s (backwards), a@21s.
    let frames = vec![
        (10_000_000, a.clone()),
        (100_000_000, b),
        (20_000_000, a.clone()),
        (21_000_000, a),
    ];
    for split in 0..2 {
        let reader = CaptureReader::new(Cursor::new(pcap(&frames))).expect("pcap header");
        let results: Vec<(Vec<u64>, ())> = if split == 0 {
            let (feeder, sources) = FileFeeder::new(reader, d.clone());
            std::thread::scope(|s| {
                let hs: Vec<_> = sources
                    .into_iter()
                    .map(|mut src| s.spawn(move || drain_events(&mut src)))
                    .collect();
                feeder.run(&mut |_| {});
                hs.into_iter().map(|h| h.join().expect("worker")).collect()
            })
        } else {
            let bytes = pcap(&frames);
            (0..2)
                .map(|me| {
                    let r = CaptureReader::new(Cursor::new(bytes.clone())).expect("pcap header");
                    drain_events(&mut WholeFileShare::new(r, d.clone(), me))
                })
                .collect()
        };
        // Worker of a: packet@10, Idle@100 (before the late packet), packet@20,
        // packet@21, and nothing after (its packet was the last one read).
        let (events, _) = &results[wa];
        assert_eq!(
            events,
            &vec![10_000_000, 0, 100_000_000, 20_000_000, 21_000_000],
            "split {split}"
        );
    }
}

/// A source's packets (µs) and Idle ticks (0 then the tick's µs), in order.
fn drain_events(src: &mut dyn PacketSource) -> (Vec<u64>, ()) {
    let mut out = Vec::new();
    loop {
        let r = src.next_batch(&mut |p| out.push(p.ts.as_nanos() / 1000));
        match r {
            Ok(Batch::Packets(_)) => {}
            Ok(Batch::Idle { now }) => {
                out.push(0);
                out.push(now.as_nanos() / 1000);
            }
            Ok(Batch::End) => break,
            Err(e) => panic!("source error {e}"),
        }
    }
    (out, ())
}

/// [`capture`] with fragmented UDP datagrams (RFC 791 §3.1) whose
/// fragments come last first, one every 500 packets, and one fragment whose
/// first fragment never comes: `(pcap, frames, [(later, first)] timestamps)`.
#[allow(clippy::type_complexity)]
fn capture_with_fragments() -> (Vec<u8>, Vec<(u64, Vec<u8>)>, Vec<(u64, u64)>, u64) {
    let (_, mut frames) = capture();
    let mut datagrams = Vec::new();
    let mut orphan = 0;
    for (n, k) in (250..3000).step_by(500).enumerate() {
        let i = n as u32;
        let (a, b) = (v4(100 + i), v4(200 + i));
        let dgram = udp(4000 + n as u16, 53, &[n as u8; 16]);
        let us = frames.get(k).map_or(0, |(us, _)| *us);
        let later = eth(
            0x0800,
            &ipv4(
                a,
                b,
                UDP,
                900 + n as u16,
                2,
                false,
                dgram.get(16..).unwrap_or(&[]),
            ),
        );
        let first = eth(
            0x0800,
            &ipv4(
                a,
                b,
                UDP,
                900 + n as u16,
                0,
                true,
                dgram.get(..16).unwrap_or(&[]),
            ),
        );
        // Later fragment 1 µs after packet k, first fragment 5 ms later.
        frames.insert(k + 1, (us + 1, later));
        frames.insert(k + 6, (us + 5001, first));
        datagrams.push((us + 1, us + 5001));
        if n == 2 {
            orphan = us + 2;
            frames.insert(
                k + 2,
                (orphan, eth(0x0800, &ipv4(a, b, UDP, 7, 2, false, &[0; 8]))),
            );
        }
    }
    (pcap(&frames), frames, datagrams, orphan)
}

#[test]
fn held_fragments_reach_their_first_fragments_worker_through_both_splits() {
    let (bytes, frames, datagrams, orphan) = capture_with_fragments();
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let fed = {
        let reader = CaptureReader::new(Cursor::new(bytes.clone())).expect("pcap header");
        let (feeder, sources) = FileFeeder::new(reader, d.clone());
        std::thread::scope(|s| {
            let handles: Vec<_> = sources
                .into_iter()
                .map(|mut src| s.spawn(move || drain(&mut src)))
                .collect();
            let report = feeder.run(&mut |_| {});
            assert_eq!(report.undelivered, 0);
            handles
                .into_iter()
                .map(|h| h.join().expect("worker"))
                .collect::<Vec<_>>()
        })
    };
    let whole: Vec<_> = (0..2)
        .map(|me| {
            let reader = CaptureReader::new(Cursor::new(bytes.clone())).expect("pcap header");
            drain(&mut WholeFileShare::new(reader, d.clone(), me))
        })
        .collect();
    for results in [&fed, &whole] {
        let mut all: Vec<u64> = results.iter().flat_map(|(got, _)| got.clone()).collect();
        all.sort_unstable();
        let mut want: Vec<u64> = frames.iter().map(|(us, _)| *us).collect();
        want.sort_unstable();
        assert_eq!(all, want, "every packet exactly once");
        for (w, (got, _)) in results.iter().enumerate() {
            assert_eq!(got, &expected(&d, &frames, w), "worker {w}");
        }
        for &(later, first) in &datagrams {
            // The held fragment right before its first fragment.
            let on = results
                .iter()
                .find(|(got, _)| got.contains(&first))
                .map(|(got, _)| got);
            let at = on.and_then(|got| got.iter().position(|&t| t == first));
            let before = on.zip(at).and_then(|(got, i)| got.get(i.checked_sub(1)?));
            assert_eq!(before, Some(&later), "datagram {first}");
        }
        // The orphan comes last (end of input), on its pair's worker.
        let pair = reduce(
            pair_hash(IpAddr::from(v4(102)), IpAddr::from(v4(202)), DEFAULT_SEED),
            2,
        );
        assert_eq!(
            results.get(pair).and_then(|(got, _)| got.last()),
            Some(&orphan)
        );
    }
}

#[test]
fn whole_file_shares_deliver_held_fragments_before_reporting_damage() {
    let (mut bytes, frames, _, orphan) = capture_with_fragments();
    // Cut the last record in half: the orphan fragment is still held then.
    bytes.truncate(bytes.len() - 10);
    let d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let mut all = Vec::new();
    let mut errors = 0;
    for me in 0..2 {
        let reader = CaptureReader::new(Cursor::new(bytes.clone())).expect("pcap header");
        let mut src = WholeFileShare::new(reader, d.clone(), me);
        loop {
            match src.next_batch(&mut |p| all.push(p.ts.as_nanos() / 1000)) {
                Ok(Batch::End) => break,
                Ok(_) => {}
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(errors, 2, "each share reports the damage");
    all.sort_unstable();
    let mut want: Vec<u64> = frames.iter().map(|(us, _)| *us).collect();
    want.sort_unstable();
    let last = frames.last().map(|(us, _)| *us);
    want.retain(|us| Some(*us) != last);
    assert!(want.contains(&orphan));
    assert_eq!(all, want, "every packet before the damage, once");
}
