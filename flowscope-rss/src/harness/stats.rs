//! Per-worker statistics: live atomics for a reporter thread, the final
//! report of each worker, and the sum over workers.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use flowscope::driver::{PacketCounters, SessionCounters, SessionDriver};
use flowscope::reassembly::defrag::DefragStats;
use flowscope::reassembly::tcp::ReassemblyStats;
use flowscope::track::TrackerStats;

use super::Emitter;
use crate::bypass::BypassStats;
use crate::SourceStats;

/// One worker's headline counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Packets the worker's driver processed.
    pub packets: u64,
    /// Their frame bytes (wire length).
    pub bytes: u64,
    /// Flows in the worker's table (0 once it finished).
    pub flows_active: u64,
    /// Items the handler emitted that reached the channel.
    pub events_sent: u64,
    /// Items discarded: channel full under [`super::Backpressure::Drop`],
    /// or the sink gone.
    pub events_dropped: u64,
    /// The source's own counters (kernel receive and drop counts).
    pub source: SourceStats,
}

/// A worker's final report.
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker's index.
    pub worker: usize,
    /// The core it was pinned to (`None`: not pinned, or pinning failed).
    pub core: Option<usize>,
    /// True when there were more workers than cores, so cores are shared.
    pub shares_core: bool,
    /// Headline counters.
    pub stats: WorkerStats,
    /// Where its packets went.
    pub counters: PacketCounters,
    /// Its session layer.
    pub session: SessionCounters,
    /// Its tracker.
    pub tracker: TrackerStats,
    /// Its TCP reassembly.
    pub reassembly: ReassemblyStats,
    /// Its defragmenter.
    pub defrag: DefragStats,
    /// Its bypass policy's counters (zero without one).
    pub bypass: BypassStats,
    /// The source error that ended it early, if any.
    pub error: Option<io::Error>,
}

impl WorkerReport {
    pub(super) fn new<M: 'static>(
        worker: usize,
        stats: WorkerStats,
        driver: &SessionDriver<M>,
        error: Option<io::Error>,
    ) -> Self {
        WorkerReport {
            worker,
            core: None,
            shares_core: false,
            stats,
            counters: *driver.counters(),
            session: *driver.session_counters(),
            tracker: driver.tracker_stats(),
            reassembly: *driver.reassembly_stats(),
            defrag: driver.defrag_stats(),
            bypass: BypassStats::default(),
            error,
        }
    }
}

pub(super) fn worker_stats<M: 'static, T>(
    driver: &SessionDriver<M>,
    emitter: &Emitter<'_, T>,
    source: SourceStats,
) -> WorkerStats {
    let c = driver.counters();
    WorkerStats {
        packets: c.packets,
        bytes: c.frame_bytes,
        flows_active: driver.tracker_stats().active,
        events_sent: emitter.sent,
        events_dropped: emitter.dropped,
        source,
    }
}

/// Counters summed over every worker: what one driver would have counted
/// for the same packets (each packet goes to exactly one worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Totals {
    /// Headline counters.
    pub stats: WorkerStats,
    /// Packet accounting.
    pub counters: PacketCounters,
    /// Session layer.
    pub session: SessionCounters,
    /// Trackers.
    pub tracker: TrackerStats,
    /// TCP reassembly.
    pub reassembly: ReassemblyStats,
    /// Bypass.
    pub bypass: BypassStats,
}

impl Totals {
    /// The sum of `reports`.
    // The flowscope counter structs are non-exhaustive and have no `merge`
    // of their own (except reassembly), so they are added field by field.
    pub fn of(reports: &[WorkerReport]) -> Self {
        let mut t = Totals::default();
        for r in reports {
            let s = &mut t.stats;
            s.packets += r.stats.packets;
            s.bytes += r.stats.bytes;
            s.flows_active += r.stats.flows_active;
            s.events_sent += r.stats.events_sent;
            s.events_dropped += r.stats.events_dropped;
            s.source.packets += r.stats.source.packets;
            s.source.drops += r.stats.source.drops;
            s.source.freezes += r.stats.source.freezes;

            let c = &mut t.counters;
            c.packets += r.counters.packets;
            c.frame_bytes += r.counters.frame_bytes;
            c.tracked += r.counters.tracked;
            c.not_ip += r.counters.not_ip;
            c.unsupported_link += r.counters.unsupported_link;
            c.fragments += r.counters.fragments;
            for (a, b) in c.malformed.iter_mut().zip(r.counters.malformed.iter()) {
                *a += b;
            }

            let x = &mut t.session;
            let y = &r.session;
            x.datagrams_reassembled += y.datagrams_reassembled;
            x.reassembled_malformed += y.reassembled_malformed;
            x.stream_parsers += y.stream_parsers;
            x.datagram_parsers += y.datagram_parsers;
            x.parsers_poisoned += y.parsers_poisoned;
            x.unidentified_streams += y.unidentified_streams;
            x.messages += y.messages;
            x.anomalies += y.anomalies;
            x.gaps += y.gaps;

            let k = &mut t.tracker;
            let l = &r.tracker;
            k.packets += l.packets;
            k.flows_created += l.flows_created;
            k.ended_timeout += l.ended_timeout;
            k.ended_evicted += l.ended_evicted;
            k.ended_finished += l.ended_finished;
            k.ended_reused += l.ended_reused;
            k.active += l.active;
            k.ts_backwards += l.ts_backwards;

            t.reassembly.merge(&r.reassembly);
            t.bypass.merge(&r.bypass);
        }
        t
    }
}

/// A worker's [`WorkerStats`] as atomics, stored after every batch.
#[derive(Default)]
pub(super) struct LiveCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    flows_active: AtomicU64,
    events_sent: AtomicU64,
    events_dropped: AtomicU64,
    source_packets: AtomicU64,
    source_drops: AtomicU64,
    source_freezes: AtomicU64,
}

impl LiveCounters {
    pub(super) fn store(&self, s: &WorkerStats) {
        // Relaxed: each counter is read on its own; a reporter may see one
        // batch's packets with the previous batch's events.
        self.packets.store(s.packets, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
        self.flows_active.store(s.flows_active, Ordering::Relaxed);
        self.events_sent.store(s.events_sent, Ordering::Relaxed);
        self.events_dropped
            .store(s.events_dropped, Ordering::Relaxed);
        self.source_packets
            .store(s.source.packets, Ordering::Relaxed);
        self.source_drops.store(s.source.drops, Ordering::Relaxed);
        self.source_freezes
            .store(s.source.freezes, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            flows_active: self.flows_active.load(Ordering::Relaxed),
            events_sent: self.events_sent.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            source: SourceStats {
                packets: self.source_packets.load(Ordering::Relaxed),
                drops: self.source_drops.load(Ordering::Relaxed),
                freezes: self.source_freezes.load(Ordering::Relaxed),
            },
        }
    }
}
