//! Workers over in-memory sources with generated packets.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::dispatch::Dispatcher;
use crate::test_frames::*;
use crate::SourceStats;
use flowscope::driver::SessionConfig;
use flowscope::extract::ExtractConfig;
use flowscope_core::{FiveTuple, FlowEvent, FlowRecord, LinkType, PacketView, Timestamp};

/// A source over frames in memory, `per_batch` at a time, then `End`
/// (or `Idle` forever when `endless`).
struct VecSource {
    frames: Vec<(Timestamp, Vec<u8>)>,
    next: usize,
    per_batch: usize,
    endless: bool,
}

impl PacketSource for VecSource {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
        let rest = self.frames.get(self.next..).unwrap_or(&[]);
        if rest.is_empty() {
            if self.endless {
                std::thread::sleep(std::time::Duration::from_millis(1));
                let now = self.frames.last().map_or(Timestamp::ZERO, |f| f.0);
                return Ok(Batch::Idle { now });
            }
            return Ok(Batch::End);
        }
        let n = rest.len().min(self.per_batch);
        for (ts, f) in rest.iter().take(n) {
            each(&PacketView::new(f, *ts, LinkType::ETHERNET));
        }
        self.next += n;
        Ok(Batch::Packets(n))
    }
    fn stats(&self) -> SourceStats {
        SourceStats {
            packets: self.next as u64,
            drops: 7,
            ..SourceStats::default()
        }
    }
}

/// `flows` UDP flows, each a query and a reply 1 ms apart, split by the
/// dispatcher over `workers` sources.
fn split_sources(flows: u32, workers: usize, endless: bool) -> Vec<Box<dyn PacketSource>> {
    let mut d = Dispatcher::new(ExtractConfig::default(), workers, true);
    let mut shares: Vec<Vec<(Timestamp, Vec<u8>)>> = vec![Vec::new(); workers];
    for i in 0..flows {
        for reply in [false, true] {
            let f = udp_flow_packet(i, reply);
            let ts =
                Timestamp::from_micros(1_000_000 + u64::from(i) * 2000 + u64::from(reply) * 1000);
            let w = d.worker_for(&PacketView::new(&f, ts, LinkType::ETHERNET));
            if let Some(s) = shares.get_mut(w) {
                s.push((ts, f));
            }
        }
    }
    shares
        .into_iter()
        .map(|frames| {
            Box::new(VecSource {
                frames,
                next: 0,
                per_batch: 64,
                endless,
            }) as Box<dyn PacketSource>
        })
        .collect()
}

fn ended(ev: DriverEvent<'_, ()>, out: &mut Emitter<'_, FlowRecord<FiveTuple>>) {
    if let DriverEvent::Flow {
        event: FlowEvent::Ended(rec),
        ..
    } = ev
    {
        out.emit(*rec);
    }
}

#[test]
fn every_flow_ends_once_across_workers() {
    let h = Harness::new(2, HarnessConfig::default());
    let mut recs = Vec::new();
    let reports = h
        .run(
            split_sources(500, 2, false),
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |r| recs.push(r),
        )
        .expect("run");
    assert_eq!(recs.len(), 500);
    let mut by_key: HashMap<FiveTuple, u64> = HashMap::new();
    for r in &recs {
        *by_key.entry(r.key).or_default() += 1;
        // Both directions were seen by the same tracker.
        assert_eq!(r.stats.initiator.packets, 1, "{:?}", r.key);
        assert_eq!(r.stats.responder.packets, 1, "{:?}", r.key);
    }
    assert_eq!(by_key.len(), 500);
    let t = Totals::of(&reports);
    assert_eq!(t.counters.packets, 1000);
    assert_eq!(t.tracker.flows_created, 500);
    assert_eq!(t.stats.events_sent, 500);
    assert_eq!(t.stats.events_dropped, 0);
    assert_eq!(t.stats.source.drops, 14);
    for r in &reports {
        assert!(r.stats.packets > 0, "worker {} idle", r.worker);
        assert_eq!(r.stats.flows_active, 0);
        assert!(r.error.is_none());
    }
    // Live counters end equal to the final ones.
    let live = h.live_stats();
    for (l, r) in live.iter().zip(&reports) {
        assert_eq!(*l, r.stats);
    }
}

#[test]
fn drop_backpressure_counts_what_it_discards() {
    let cfg = HarnessConfig {
        backpressure: Backpressure::Drop,
        channel_capacity: 1,
        ..HarnessConfig::default()
    };
    let h = Harness::new(2, cfg);
    let mut got = 0u64;
    let reports = h
        .run(
            split_sources(2000, 2, false),
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |_| {
                // A slow sink.
                std::thread::sleep(std::time::Duration::from_micros(200));
                got += 1;
            },
        )
        .expect("run");
    let t = Totals::of(&reports);
    assert!(t.stats.events_dropped > 0, "nothing dropped");
    assert_eq!(t.stats.events_sent, got);
    assert_eq!(t.stats.events_sent + t.stats.events_dropped, 2000);
}

#[test]
fn stop_flag_ends_endless_sources_and_flushes_their_flows() {
    let h = Harness::new(2, HarnessConfig::default());
    let seen = AtomicUsize::new(0);
    let stop = h.stop_flag();
    let mut recs = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            // Stop once the workers are past their packets.
            while h.live_stats().iter().map(|w| w.packets).sum::<u64>() < 200 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen.store(1, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        });
        h.run(
            split_sources(100, 2, true),
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |_| recs += 1,
        )
        .expect("run");
    });
    assert_eq!(seen.load(Ordering::Relaxed), 1);
    assert_eq!(recs, 100, "finish() ended every flow");
}

#[test]
fn idle_ticks_expire_flows() {
    // One UDP flow at t = 1 s, then only Idle ticks at t = 1 s + 2 min:
    // the 60 s UDP timeout ends it before the source ends.
    struct Ticking(u8);
    impl PacketSource for Ticking {
        fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
            self.0 += 1;
            match self.0 {
                1 => {
                    let f = udp_flow_packet(1, false);
                    each(&PacketView::new(
                        &f,
                        Timestamp::from_secs_nanos(1, 0),
                        LinkType::ETHERNET,
                    ));
                    Ok(Batch::Packets(1))
                }
                2 => Ok(Batch::Idle {
                    now: Timestamp::from_secs_nanos(121, 0),
                }),
                _ => Ok(Batch::End),
            }
        }
    }
    let h = Harness::new(1, HarnessConfig::default());
    let reports = h
        .run(
            vec![Box::new(Ticking(0))],
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |_| {},
        )
        .expect("run");
    let t = Totals::of(&reports);
    assert_eq!(t.tracker.ended_timeout, 1);
    assert_eq!(t.tracker.ended_finished, 0);
}

#[test]
fn source_errors_end_only_their_worker() {
    struct Failing;
    impl PacketSource for Failing {
        fn next_batch(&mut self, _: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
            Err(io::Error::other("ring gone"))
        }
    }
    let mut sources = split_sources(50, 2, false);
    sources.truncate(1);
    sources.push(Box::new(Failing));
    let h = Harness::new(2, HarnessConfig::default());
    let mut recs = 0;
    let reports = h
        .run(
            sources,
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |_| recs += 1,
        )
        .expect("run");
    assert!(reports[0].error.is_none());
    assert!(reports[1].error.is_some());
    assert!(recs > 0);
}

#[test]
fn wrong_number_of_sources_is_an_error() {
    let h = Harness::new(3, HarnessConfig::default());
    let r = h.run(
        split_sources(10, 2, false),
        |_| SessionDriver::<()>::new(SessionConfig::default()),
        |_| ended,
        |_| {},
    );
    assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
}

#[test]
fn workers_are_pinned_round_robin() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let h = Harness::new(3, HarnessConfig::default());
    let reports = h
        .run(
            split_sources(10, 3, false),
            |_| SessionDriver::<()>::new(SessionConfig::default()),
            |_| ended,
            |_| {},
        )
        .expect("run");
    if cores.is_empty() {
        eprintln!("SKIP: no core ids visible");
        return;
    }
    for r in &reports {
        assert_eq!(r.core, cores.get(r.worker % cores.len()).map(|c| c.id));
        assert_eq!(r.shares_core, cores.len() < 3);
    }
}
