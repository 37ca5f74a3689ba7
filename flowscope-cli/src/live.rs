//! The live end of `flow-summary --iface`: when capture stops, how the
//! workers drain their rings, and the statistics printed at the end.
//!
//! Stopping is a request, not a cut: [`Draining`] wraps each worker's
//! source, and once the stop flag is raised (SIGINT, SIGTERM, `--duration`)
//! it keeps handing over what the kernel has already queued until one poll
//! finds the ring empty (or [`DRAIN_LIMIT`] passes on a link that never goes
//! quiet), then ends the source. The harness then finishes the worker's
//! flows, so every flow is reported once, and the kernel counters are read
//! after the last block.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowscope_core::PacketView;
use flowscope_rss::bypass::BypassStats;
use flowscope_rss::harness::{Totals, WorkerReport, WorkerStats};
use flowscope_rss::{Batch, PacketSource, SourceStats};

/// Longest a worker keeps reading its ring after the stop request, on a link
/// that never goes quiet.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Exit status after a second SIGINT (128 + 2, the shell's convention):
/// the process ends at once, without flushing.
pub const EXIT_FORCED_SIGINT: i32 = 130;
/// Exit status after a second SIGTERM (128 + 15).
pub const EXIT_FORCED_SIGTERM: i32 = 143;

/// Makes SIGINT and SIGTERM raise `stop` instead of killing the process; a
/// second one, while `stop` is already raised, ends the process at once
/// (exit [`EXIT_FORCED_SIGINT`] / [`EXIT_FORCED_SIGTERM`]) so a stuck
/// shutdown can still be interrupted.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for (sig, code) in [(SIGINT, EXIT_FORCED_SIGINT), (SIGTERM, EXIT_FORCED_SIGTERM)] {
        // Order matters (signal-hook's documented pattern): the shutdown
        // check runs first, so the first signal only raises the flag.
        signal_hook::flag::register_conditional_shutdown(sig, code, Arc::clone(stop))?;
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

/// When the capture should end: a raised flag, or a deadline.
#[derive(Clone, Debug)]
pub struct StopWhen {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl StopWhen {
    /// Stop when `flag` is raised or, if given, `after` has passed from now.
    pub fn new(flag: Arc<AtomicBool>, after: Option<Duration>) -> Self {
        StopWhen {
            flag,
            deadline: after.and_then(|d| Instant::now().checked_add(d)),
        }
    }

    /// True once stopping was asked for.
    pub fn due(&self, now: Instant) -> bool {
        self.flag.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| now >= d)
    }
}

/// A live source that ends itself after a stop request, once what the
/// kernel already queued is read (see the module docs).
pub struct Draining<S> {
    inner: S,
    stop: StopWhen,
    /// Set when the stop request was seen: the drain ends by then at the latest.
    drain_until: Option<Instant>,
    ended: bool,
}

impl<S> Draining<S> {
    /// Wraps `inner`, ending it on `stop`.
    pub fn new(inner: S, stop: StopWhen) -> Self {
        Draining {
            inner,
            stop,
            drain_until: None,
            ended: false,
        }
    }
}

impl<S: PacketSource> PacketSource for Draining<S> {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
        if self.ended {
            return Ok(Batch::End);
        }
        let now = Instant::now();
        if self.drain_until.is_none() && self.stop.due(now) {
            self.drain_until = Some(now + DRAIN_LIMIT);
        }
        if self.drain_until.is_some_and(|until| now >= until) {
            self.ended = true;
            return Ok(Batch::End);
        }
        let batch = self.inner.next_batch(each)?;
        Ok(match batch {
            // A live source's idle tick means one whole poll found nothing:
            // the ring is empty, the drain is done.
            Batch::Idle { .. } if self.drain_until.is_some() => {
                self.ended = true;
                Batch::End
            }
            Batch::End => {
                self.ended = true;
                Batch::End
            }
            other => other,
        })
    }

    fn stats(&self) -> SourceStats {
        self.inner.stats()
    }
}

/// Frames the kernel queued for this worker (passed the filter, found ring
/// space) that it never processed: still in the ring when it stopped.
/// `kernel packets − kernel drops − packets`, at least 0.
pub fn unread(stats: &WorkerStats) -> u64 {
    stats
        .source
        .packets
        .saturating_sub(stats.source.drops)
        .saturating_sub(stats.packets)
}

/// One `key=value` line of a worker's final counters (no trailing newline).
/// The kernel counters are printed exactly as the source reports them.
pub fn worker_line(r: &WorkerReport) -> String {
    let mut s = format!("worker {}", r.worker);
    match r.core {
        Some(c) => {
            let _ = write!(s, " core={c}");
        }
        None => s.push_str(" core=-"),
    }
    push_stats(&mut s, &r.stats);
    let _ = write!(s, " flows={}", r.tracker.flows_created);
    push_bypass(&mut s, &r.bypass);
    if let Some(e) = &r.error {
        let _ = write!(s, " error=\"{e}\"");
    }
    s
}

/// The same counters summed over the workers.
pub fn totals_line(t: &Totals) -> String {
    let mut s = String::from("total");
    push_stats(&mut s, &t.stats);
    let _ = write!(s, " flows={}", t.tracker.flows_created);
    push_bypass(&mut s, &t.bypass);
    s
}

/// The bypass counters, when a bypass policy ran (all zero otherwise).
fn push_bypass(s: &mut String, b: &BypassStats) {
    if *b == BypassStats::default() {
        return;
    }
    let _ = write!(
        s,
        " bypassed_flows={} bypassed_packets={} bypassed_bytes={} bypass_held={} \
bypass_not_keyable={} bypass_insert_failed={} bypass_lost={} bypass_map_errors={}",
        b.flows, b.packets, b.bytes, b.held, b.not_keyable, b.insert_failed, b.lost, b.map_errors
    );
}

fn push_stats(s: &mut String, st: &WorkerStats) {
    let _ = write!(
        s,
        " packets={} bytes={} kernel_packets={} kernel_drops={} kernel_freezes={} unread={} \
events={} events_dropped={}",
        st.packets,
        st.bytes,
        st.source.packets,
        st.source.drops,
        st.source.freezes,
        unread(st),
        st.events_sent,
        st.events_dropped,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope_core::{LinkType, Timestamp};
    use std::collections::VecDeque;

    /// Replays a script of batches (`Some(n)`: n packets, `None`: idle).
    struct Script(VecDeque<Option<usize>>, u64);

    impl PacketSource for Script {
        fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
            Ok(match self.0.pop_front() {
                Some(Some(n)) => {
                    for _ in 0..n {
                        each(&PacketView::new(&[], Timestamp::ZERO, LinkType::ETHERNET));
                    }
                    self.1 += 1;
                    Batch::Packets(n)
                }
                Some(None) => Batch::Idle {
                    now: Timestamp::ZERO,
                },
                None => Batch::End,
            })
        }
    }

    fn run(src: &mut dyn PacketSource) -> Vec<Batch> {
        let mut out = Vec::new();
        loop {
            let b = src.next_batch(&mut |_| {}).unwrap_or(Batch::End);
            out.push(b);
            if b == Batch::End {
                return out;
            }
        }
    }

    #[test]
    fn before_the_stop_idle_ticks_pass_through() {
        let flag = Arc::new(AtomicBool::new(false));
        let script = Script([Some(2), None, Some(1)].into_iter().collect(), 0);
        let mut d = Draining::new(script, StopWhen::new(flag, None));
        let idle = Batch::Idle {
            now: Timestamp::ZERO,
        };
        assert_eq!(
            run(&mut d),
            [Batch::Packets(2), idle, Batch::Packets(1), Batch::End]
        );
    }

    #[test]
    fn after_the_stop_queued_batches_are_read_until_the_ring_is_empty() {
        let flag = Arc::new(AtomicBool::new(true));
        // Two blocks were queued before the stop; the idle tick after them
        // ends the drain, so the batch after it is never read.
        let script = Script([Some(3), Some(4), None, Some(5)].into_iter().collect(), 0);
        let mut d = Draining::new(script, StopWhen::new(flag, None));
        assert_eq!(
            run(&mut d),
            [Batch::Packets(3), Batch::Packets(4), Batch::End]
        );
        assert_eq!(d.inner.0.len(), 1, "the late batch stays unread");
        // Ended for good.
        assert_eq!(d.next_batch(&mut |_| {}).ok(), Some(Batch::End));
    }

    #[test]
    fn a_deadline_stops_like_the_flag() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = StopWhen::new(flag, Some(Duration::ZERO));
        assert!(stop.due(Instant::now()));
        let script = Script([Some(1), None, Some(1)].into_iter().collect(), 0);
        let mut d = Draining::new(script, stop);
        assert_eq!(run(&mut d), [Batch::Packets(1), Batch::End]);
    }

    #[test]
    fn a_busy_link_is_drained_for_at_most_the_limit() {
        let flag = Arc::new(AtomicBool::new(true));
        let script = Script(std::iter::repeat_n(Some(1), 1000).collect(), 0);
        let mut d = Draining::new(script, StopWhen::new(flag, None));
        d.next_batch(&mut |_| {}).ok();
        // Pretend the limit has passed.
        d.drain_until = Some(Instant::now());
        assert_eq!(d.next_batch(&mut |_| {}).ok(), Some(Batch::End));
        assert_eq!(d.inner.1, 1);
    }

    #[test]
    fn unread_is_what_the_kernel_queued_but_was_not_processed() {
        let mut s = WorkerStats::default();
        s.packets = 90;
        s.source.packets = 100; // includes the 4 drops (PACKET_STATISTICS)
        s.source.drops = 4;
        assert_eq!(unread(&s), 6);
        s.packets = 200; // a file share counts differently: never negative
        assert_eq!(unread(&s), 0);
    }
}
