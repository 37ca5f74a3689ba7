//! Pinned run-to-completion workers and the event fan-in.
//!
//! [`Harness::run`] starts one thread per [`PacketSource`]. Worker `i` pins
//! itself to a core, builds its own [`SessionDriver`] with the caller's
//! factory (so any parser, built-in or third-party, can be registered),
//! and then, until its source ends or the stop flag is raised, runs every
//! packet of its source through the driver. The driver's borrowed
//! [`DriverEvent`]s are turned into an owned, caller-chosen type `T` by a
//! per-worker handler and sent over **one** bounded channel; the caller's
//! sink receives them on the calling thread. Nothing else is shared between
//! workers: each owns its flow table.
//!
//! # Backpressure
//!
//! When the sink falls behind and the channel is full:
//! - [`Backpressure::Block`] (default): the worker waits. Nothing is lost;
//!   a live source then fills its ring and the kernel counts drops instead
//!   (visible in [`SourceStats::drops`](crate::SourceStats::drops)). The right choice for files and
//!   for sinks that must be complete.
//! - [`Backpressure::Drop`]: the event is discarded and counted in
//!   [`WorkerStats::events_dropped`]; packet processing never waits for the
//!   sink. The right choice for live capture where flow state must keep up
//!   with the wire even if some output is lost.
//!
//! # Time
//!
//! A worker's clock is its packets' timestamps. On [`Batch::Idle`] it calls
//! [`SessionDriver::advance_to`], so idle flows expire while no packet
//! arrives; on [`Batch::End`] (or stop) it calls [`SessionDriver::finish`],
//! so every flow is reported once.
//!
//! # Flow ids
//!
//! Ids need no coordination: a flowscope [`FlowId`](flowscope_core::FlowId)
//! is a fixed-seed hash of the flow's key and first timestamp, so a flow has
//! the same id whichever worker tracks it, and ids are as unique across
//! workers as within one.

mod stats;

pub use stats::{Totals, WorkerReport, WorkerStats};

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use flowscope::driver::{DriverEvent, SessionDriver};
use flowscope_core::FlowEvent;

use crate::bypass::{BypassOutput, BypassedFlow, Bypasser};
use crate::{Batch, PacketSource};
use stats::LiveCounters;

/// What a worker does when the event channel is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backpressure {
    /// Wait for room: nothing is lost (default).
    #[default]
    Block,
    /// Discard the event and count it in [`WorkerStats::events_dropped`].
    Drop,
}

/// How a [`Harness`] runs its workers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HarnessConfig {
    /// What to do when the sink falls behind.
    pub backpressure: Backpressure,
    /// Events the channel holds before backpressure applies (default 4096).
    pub channel_capacity: usize,
    /// Pin each worker to its own core (default true). With more workers
    /// than cores, worker `i` goes to core `i % cores`
    /// ([`WorkerReport::shares_core`] tells).
    pub pin_cores: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            backpressure: Backpressure::Block,
            channel_capacity: 4096,
            pin_cores: true,
        }
    }
}

/// Where a worker's handler puts what it makes of a driver event.
pub struct Emitter<'a, T> {
    tx: &'a Sender<T>,
    backpressure: Backpressure,
    sent: u64,
    dropped: u64,
}

impl<T> Emitter<'_, T> {
    /// Sends `item` to the sink (waiting or dropping when the channel is
    /// full, as configured). An item the sink can no longer receive (it
    /// hung up) is counted as dropped.
    #[inline]
    pub fn emit(&mut self, item: T) {
        let ok = match self.backpressure {
            Backpressure::Block => self.tx.send(item).is_ok(),
            Backpressure::Drop => match self.tx.try_send(item) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
        };
        if ok {
            self.sent += 1;
        } else {
            self.dropped += 1;
        }
    }
}

/// What a worker does with its driver's events: turns each into zero or
/// more owned items for the sink. Any `FnMut(DriverEvent, &mut Emitter)`
/// closure is one (through [`Harness::run`]); implement the trait to treat
/// the ends of bypassed flows apart ([`Harness::run_with`]).
pub trait WorkerHandler<M, T> {
    /// One driver event.
    fn event(&mut self, ev: DriverEvent<'_, M>, out: &mut Emitter<'_, T>);

    /// A bypassed flow ended, the kernel's counts added to its record. By
    /// default it is handled as the plain flow end it replaces.
    fn bypassed(&mut self, ended: &BypassedFlow, out: &mut Emitter<'_, T>) {
        self.event(
            DriverEvent::Flow {
                event: &FlowEvent::Ended(ended.record),
                app_proto: ended.app_proto,
            },
            out,
        );
    }
}

/// A closure as a [`WorkerHandler`].
pub struct FnHandler<F>(pub F);

impl<M, T, F> WorkerHandler<M, T> for FnHandler<F>
where
    F: FnMut(DriverEvent<'_, M>, &mut Emitter<'_, T>),
{
    fn event(&mut self, ev: DriverEvent<'_, M>, out: &mut Emitter<'_, T>) {
        (self.0)(ev, out)
    }
}

/// N workers, their stop flag and their live counters.
pub struct Harness {
    config: HarnessConfig,
    workers: usize,
    stop: Arc<AtomicBool>,
    live: Box<[LiveCounters]>,
}

impl Harness {
    /// A harness for `workers` workers (at least 1).
    pub fn new(workers: usize, config: HarnessConfig) -> Self {
        let workers = workers.max(1);
        Harness {
            config,
            workers,
            stop: Arc::new(AtomicBool::new(false)),
            live: (0..workers).map(|_| LiveCounters::default()).collect(),
        }
    }

    /// How many workers [`Harness::run`] expects sources for.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The stop flag: set it (from a signal handler's thread, a timer, …)
    /// and every worker ends its flows and returns after its current batch.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Raises the stop flag.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Each worker's counters as of its last finished batch; callable from
    /// any thread (the sink, a reporter) while [`Harness::run`] runs.
    pub fn live_stats(&self) -> Vec<WorkerStats> {
        self.live.iter().map(LiveCounters::snapshot).collect()
    }

    /// Runs one worker per source (there must be exactly
    /// [`Harness::workers`] of them) until every source ends or the stop
    /// flag is raised; every item the handlers emit goes to `sink` on this
    /// thread. Returns each worker's final report, in worker order.
    ///
    /// - `make_driver(i)` builds worker `i`'s driver (config and parsers),
    ///   on the worker's thread;
    /// - `make_handler(i)` builds worker `i`'s handler, which turns each
    ///   borrowed [`DriverEvent`] into zero or more owned items.
    ///
    /// A source error ends only that worker (its flows are finished); it is
    /// in its report's [`WorkerReport::error`]. A panicking worker is
    /// resumed on this thread after the others finished.
    pub fn run<M, T, D, H, Hd, S>(
        &self,
        sources: Vec<Box<dyn PacketSource>>,
        make_driver: D,
        make_handler: H,
        sink: S,
    ) -> io::Result<Vec<WorkerReport>>
    where
        M: 'static,
        T: Send,
        D: Fn(usize) -> SessionDriver<M> + Sync,
        H: Fn(usize) -> Hd + Sync,
        Hd: FnMut(DriverEvent<'_, M>, &mut Emitter<'_, T>),
        S: FnMut(T),
    {
        self.run_with(
            sources,
            make_driver,
            |i| FnHandler(make_handler(i)),
            |_| None,
            sink,
        )
    }

    /// [`Harness::run`] with a bypass policy: `make_bypass(i)` gives worker
    /// `i` its [`Bypasser`] (or `None`: no bypass), built on the worker's
    /// thread; the ends of bypassed flows reach the handler's
    /// [`WorkerHandler::bypassed`].
    pub fn run_with<M, T, D, H, Hd, B, S>(
        &self,
        sources: Vec<Box<dyn PacketSource>>,
        make_driver: D,
        make_handler: H,
        make_bypass: B,
        mut sink: S,
    ) -> io::Result<Vec<WorkerReport>>
    where
        M: 'static,
        T: Send,
        D: Fn(usize) -> SessionDriver<M> + Sync,
        H: Fn(usize) -> Hd + Sync,
        Hd: WorkerHandler<M, T>,
        B: Fn(usize) -> Option<Bypasser<M>> + Sync,
        S: FnMut(T),
    {
        if sources.len() != self.workers {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} sources for {} workers", sources.len(), self.workers),
            ));
        }
        let cores = if self.config.pin_cores {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (tx, rx) = crossbeam_channel::bounded::<T>(self.config.channel_capacity.max(1));
        let make_driver = &make_driver;
        let make_handler = &make_handler;
        let make_bypass = &make_bypass;
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(self.workers);
            for (i, source) in sources.into_iter().enumerate() {
                let worker_tx = tx.clone();
                let core = (!cores.is_empty())
                    .then(|| cores.get(i % cores.len()))
                    .flatten()
                    .copied();
                let shares_core = !cores.is_empty() && self.workers > cores.len();
                let spawned = std::thread::Builder::new()
                    .name(format!("flowscope-w{i}"))
                    .spawn_scoped(scope, move || {
                        let pinned = core.filter(|c| core_affinity::set_for_current(*c));
                        let mut driver = make_driver(i);
                        let mut handler = make_handler(i);
                        let bypass = make_bypass(i);
                        let mut report =
                            self.work(i, source, &mut driver, &mut handler, bypass, &worker_tx);
                        report.core = pinned.map(|c| c.id);
                        report.shares_core = shares_core;
                        report
                    });
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        // Workers already started must still end.
                        self.stop();
                        drop(tx);
                        return Err(e);
                    }
                }
            }
            drop(tx);
            for item in rx.iter() {
                sink(item);
            }
            let mut reports = Vec::with_capacity(handles.len());
            let mut panic = None;
            for h in handles {
                match h.join() {
                    Ok(r) => reports.push(r),
                    Err(p) => panic = Some(p),
                }
            }
            if let Some(p) = panic {
                std::panic::resume_unwind(p);
            }
            Ok(reports)
        })
    }

    /// One worker's life: batches until the end, the stop flag or an error,
    /// then the final flush.
    fn work<M: 'static, T, Hd>(
        &self,
        i: usize,
        mut source: Box<dyn PacketSource>,
        driver: &mut SessionDriver<M>,
        handler: &mut Hd,
        mut bypass: Option<Bypasser<M>>,
        tx: &Sender<T>,
    ) -> WorkerReport
    where
        Hd: WorkerHandler<M, T>,
    {
        let mut emitter = Emitter {
            tx,
            backpressure: self.config.backpressure,
            sent: 0,
            dropped: 0,
        };
        let live = self.live.get(i);
        let mut error = None;
        // The ends of bypassed flows go to the handler's own method.
        let out = |o: BypassOutput<'_, M>, h: &mut Hd, e: &mut Emitter<'_, T>| match o {
            BypassOutput::Event(ev) => h.event(ev, e),
            BypassOutput::Ended(b) => h.bypassed(b, e),
        };
        while !self.stop.load(Ordering::Relaxed) {
            let batch = source.next_batch(&mut |pkt| match bypass.as_mut() {
                None => driver.process(pkt, &mut |ev| handler.event(ev, &mut emitter)),
                Some(b) => b.process(driver, pkt, &mut |o| out(o, handler, &mut emitter)),
            });
            match batch {
                Ok(Batch::Packets(_)) => {}
                Ok(Batch::Idle { now }) => match bypass.as_mut() {
                    None => driver.advance_to(now, &mut |ev| handler.event(ev, &mut emitter)),
                    Some(b) => b.advance_to(driver, now, &mut |o| out(o, handler, &mut emitter)),
                },
                Ok(Batch::End) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            if let Some(l) = live {
                l.store(&stats::worker_stats(driver, &emitter, source.stats()));
            }
        }
        match bypass.as_mut() {
            None => driver.finish(&mut |ev| handler.event(ev, &mut emitter)),
            Some(b) => b.finish(driver, &mut |o| out(o, handler, &mut emitter)),
        }
        let stats = stats::worker_stats(driver, &emitter, source.stats());
        if let Some(l) = live {
            l.store(&stats);
        }
        let mut report = WorkerReport::new(i, stats, driver, error);
        report.bypass = bypass.map(|b| b.stats()).unwrap_or_default();
        report
    }
}

#[cfg(test)]
mod tests;
