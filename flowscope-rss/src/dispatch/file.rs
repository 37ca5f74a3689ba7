//! A capture file split between workers.
//!
//! Two ways, both keeping each flow (and each fragment) on the worker
//! [`Dispatcher`] names:
//!
//! - [`FileFeeder`] + [`ShareSource`] (what `flow-summary --workers N`
//!   uses): one feeder thread reads the file once, hashes each packet and
//!   copies it into its worker's current batch; full batches go to the
//!   worker over a small channel and come back empty to be refilled (a fixed
//!   pool per worker: no allocation per packet, and a worker that falls
//!   behind makes the feeder wait rather than memory grow).
//! - [`WholeFileShare`]: every worker reads the whole file itself and keeps
//!   only its own packets. No hand-off, but reading and hashing are repeated
//!   by every worker.
//!
//! `docs/performance.md` has the measurements that chose the first.
//!
//! # Time across workers
//!
//! A single driver moves its clock (the latest timestamp seen) at every
//! packet, whoever's, and expires idle flows against it. A worker sees only
//! its own packets, so the split replays for it exactly the clock moves the
//! single driver would have made between its packets:
//! - a batch ends with [`Batch::Idle`] at the capture's clock when packets
//!   of other workers were read after the worker's last one (batches are
//!   sent at least every [`TICK_PACKETS`] packets read, also when empty);
//! - a packet whose timestamp is earlier than the capture's clock, with
//!   other workers' packets since the worker's previous one, is preceded by
//!   an `Idle` at that clock (the single driver had already advanced to it).
//!
//! - a fragment the dispatcher held until its first fragment came (see
//!   [`Dispatcher`]) reaches its worker right before that first fragment,
//!   with its own (earlier) timestamp: it is preceded by an `Idle` at the
//!   clock the single driver had then, like any late packet; fragments
//!   still held at the end of the input follow the last packet read.
//!
//! Every flow therefore ends at the same time and for the same reason as
//! with one worker, also on captures whose timestamps go backwards; only
//! the trackers' `ts_backwards` counts differ (a worker does not see the
//! other workers' later timestamps before its own packet).

use std::collections::VecDeque;
use std::io::{self, Read};

use crossbeam_channel::{Receiver, Sender};
use flowscope::capture::{CaptureError, CaptureReader};
use flowscope_core::{LinkType, PacketView, Timestamp};

use super::Dispatcher;
use crate::{Batch, PacketSource, SourceStats};

/// Packets per batch handed to a worker.
pub const BATCH_PACKETS: usize = 256;
/// Frame bytes per batch before it is sent early (large frames).
const BATCH_BYTES: usize = 512 << 10;
/// Batches in each worker's pool: how far the feeder may run ahead.
const POOL_BATCHES: usize = 8;
/// Packets read between clock ticks to every worker.
pub const TICK_PACKETS: u64 = 4096;

#[derive(Clone, Copy)]
struct Meta {
    end: usize,
    /// The capture's clock to advance to before this packet.
    advance_before: Option<Timestamp>,
    ts: Timestamp,
    wire_len: u32,
    link_type: LinkType,
    source: Option<u32>,
}

/// Frames of one worker, back to back, with their metadata.
struct ShareBatch {
    bytes: Vec<u8>,
    pkts: Vec<Meta>,
    /// The capture's clock to advance to after the batch.
    now: Option<Timestamp>,
}

impl ShareBatch {
    fn new() -> Self {
        ShareBatch {
            bytes: Vec::with_capacity(BATCH_BYTES),
            pkts: Vec::with_capacity(BATCH_PACKETS),
            now: None,
        }
    }
    fn push(&mut self, pkt: &PacketView<'_>, advance_before: Option<Timestamp>) {
        self.bytes.extend_from_slice(pkt.data);
        self.pkts.push(Meta {
            end: self.bytes.len(),
            advance_before,
            ts: pkt.ts,
            wire_len: pkt.wire_len,
            link_type: pkt.link_type,
            source: pkt.source,
        });
    }
    fn is_full(&self) -> bool {
        self.pkts.len() >= BATCH_PACKETS || self.bytes.len() >= BATCH_BYTES
    }
}

/// One worker's end of a [`FileFeeder`]: its packets, in capture order.
pub struct ShareSource {
    rx: Receiver<ShareBatch>,
    free: Sender<ShareBatch>,
    /// The batch being delivered, the next packet's index and byte offset.
    current: Option<(ShareBatch, usize, usize)>,
    /// The `Idle` before the packet at the cursor was returned.
    advanced: bool,
    packets: u64,
}

impl PacketSource for ShareSource {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
        loop {
            let (b, cursor, start) = match &mut self.current {
                Some(c) => c,
                None => match self.rx.recv() {
                    Ok(b) => self.current.insert((b, 0, 0)),
                    Err(_) => return Ok(Batch::End),
                },
            };
            if *cursor >= b.pkts.len() {
                let now = b.now;
                if let Some((mut b, _, _)) = self.current.take() {
                    b.bytes.clear();
                    b.pkts.clear();
                    b.now = None;
                    // The feeder may be gone (end of input): the buffer is
                    // then freed.
                    let _ = self.free.send(b);
                }
                match now {
                    Some(now) => return Ok(Batch::Idle { now }),
                    None => continue,
                }
            }
            let mut n = 0;
            while let Some(m) = b.pkts.get(*cursor) {
                if let Some(t) = m.advance_before {
                    if !self.advanced {
                        if n > 0 {
                            break;
                        }
                        self.advanced = true;
                        return Ok(Batch::Idle { now: t });
                    }
                }
                self.advanced = false;
                let data = b.bytes.get(*start..m.end).unwrap_or(&[]);
                *start = m.end;
                *cursor += 1;
                n += 1;
                let mut view = PacketView::new(data, m.ts, m.link_type).with_wire_len(m.wire_len);
                if let Some(src) = m.source {
                    view = view.with_source(src);
                }
                each(&view);
            }
            self.packets += n as u64;
            return Ok(Batch::Packets(n));
        }
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            packets: self.packets,
            ..SourceStats::default()
        }
    }
}

/// What a [`FileFeeder`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct FeedReport {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets not delivered because their worker had stopped.
    pub undelivered: u64,
    /// The damage that ended the capture early, if any (the packets before
    /// it were delivered).
    pub damage: Option<CaptureError>,
}

struct Lane {
    /// Index (in the capture) of the worker's latest packet.
    last_own: Option<u64>,
    tx: Option<Sender<ShareBatch>>,
    free: Receiver<ShareBatch>,
    current: Option<ShareBatch>,
}

impl Lane {
    /// The batch being filled, taking one from the pool when needed (and
    /// waiting for the worker to return one: the backpressure). `None` once
    /// the worker is gone.
    fn current(&mut self) -> Option<&mut ShareBatch> {
        self.tx.as_ref()?;
        if self.current.is_none() {
            match self.free.recv() {
                Ok(b) => self.current = Some(b),
                Err(_) => {
                    self.tx = None;
                    return None;
                }
            }
        }
        self.current.as_mut()
    }

    /// Sends the current batch; returns how many packets were lost because
    /// the worker is gone.
    fn send(&mut self, now: Option<Timestamp>) -> u64 {
        let (Some(tx), Some(mut b)) = (self.tx.as_ref(), self.current.take()) else {
            return 0;
        };
        b.now = now;
        match tx.send(b) {
            Ok(()) => 0,
            Err(e) => {
                self.tx = None;
                e.0.pkts.len() as u64
            }
        }
    }
}

/// Reads a capture once and hands each worker its packets.
pub struct FileFeeder<R: Read> {
    reader: CaptureReader<R>,
    dispatcher: Dispatcher,
    lanes: Vec<Lane>,
}

impl<R: Read> FileFeeder<R> {
    /// A feeder over `reader` and one [`ShareSource`] per worker of
    /// `dispatcher`, in worker order. Run the feeder on its own thread
    /// ([`FileFeeder::run`]) while the harness runs the sources.
    pub fn new(reader: CaptureReader<R>, dispatcher: Dispatcher) -> (Self, Vec<ShareSource>) {
        let n = dispatcher.workers();
        let mut lanes = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = crossbeam_channel::bounded(POOL_BATCHES);
            let (free_tx, free_rx) = crossbeam_channel::bounded(POOL_BATCHES);
            for _ in 0..POOL_BATCHES {
                let _ = free_tx.send(ShareBatch::new());
            }
            lanes.push(Lane {
                last_own: None,
                tx: Some(tx),
                free: free_rx,
                current: None,
            });
            sources.push(ShareSource {
                rx,
                free: free_tx,
                current: None,
                advanced: false,
                packets: 0,
            });
        }
        (
            FileFeeder {
                reader,
                dispatcher,
                lanes,
            },
            sources,
        )
    }

    /// Reads the whole capture; `progress(bytes_consumed)` is called every
    /// 65 536 packets. Every worker's source ends when this returns.
    pub fn run(mut self, progress: &mut dyn FnMut(u64)) -> FeedReport {
        let mut report = FeedReport::default();
        let mut clock = Timestamp::ZERO;
        loop {
            let pkt = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    report.damage = Some(e);
                    break;
                }
            };
            let index = report.packets;
            report.packets += 1;
            let before = clock;
            clock = clock.max(pkt.ts);
            let lanes = &mut self.lanes;
            let undelivered = &mut report.undelivered;
            self.dispatcher.dispatch(&pkt, &mut |w, p| {
                *undelivered += feed(lanes, w, p, index, before);
            });
            if report.packets % TICK_PACKETS == 0 {
                report.undelivered += self.tick(clock, index);
                if report.packets % 65_536 == 0 {
                    progress(self.reader.bytes_consumed());
                }
                if self.lanes.iter().all(|l| l.tx.is_none()) {
                    break;
                }
            }
        }
        // Fragments still held (their first fragment never came) go after
        // the last packet read.
        let last = report.packets;
        let lanes = &mut self.lanes;
        let undelivered = &mut report.undelivered;
        self.dispatcher.flush(&mut |w, p| {
            *undelivered += feed(lanes, w, p, last, clock);
        });
        report.undelivered += self.tick(clock, report.packets.wrapping_sub(1));
        progress(self.reader.bytes_consumed());
        report
    }

    /// Sends every worker its current batch, empty or not, with the clock
    /// for those whose latest packet is not the last one read (`last`).
    fn tick(&mut self, clock: Timestamp, last: u64) -> u64 {
        let mut lost = 0;
        for lane in &mut self.lanes {
            let now = (lane.last_own != Some(last)).then_some(clock);
            if lane.current().is_some() {
                lost += lane.send(now);
            }
        }
        lost
    }
}

/// Puts `pkt`, delivered while reading packet `index` (the capture's clock
/// was `before` when it was read), into worker `w`'s batch; returns 1 when
/// it cannot be delivered.
fn feed(lanes: &mut [Lane], w: usize, pkt: &PacketView<'_>, index: u64, before: Timestamp) -> u64 {
    let Some(lane) = lanes.get_mut(w) else {
        return 1;
    };
    // See "Time across workers" in the module docs. Held fragments delivered
    // with a later packet come with the clock the single driver had then.
    let others_since =
        index > 0 && lane.last_own != Some(index - 1) && lane.last_own != Some(index);
    let advance_before = (pkt.ts < before && others_since).then_some(before);
    lane.last_own = Some(index);
    match lane.current() {
        Some(b) => {
            b.push(pkt, advance_before);
            if b.is_full() {
                // Its last packet is the last read: no tick.
                lane.send(None)
            } else {
                0
            }
        }
        None => 1,
    }
}

/// A worker's share of a capture it reads whole: packets of other workers
/// are read, hashed and passed over (their timestamps still move the clock,
/// as in [`ShareSource`]).
pub struct WholeFileShare<R: Read> {
    reader: CaptureReader<R>,
    dispatcher: Dispatcher,
    me: usize,
    clock: Timestamp,
    /// Packets read so far, and the index of the worker's latest one.
    read: u64,
    last_own: Option<u64>,
    pending_now: Option<Timestamp>,
    /// Own packets to deliver before reading on: one that must wait for an
    /// `Idle` first, or several delivered at once by the dispatcher (held
    /// fragments), as copies with their metadata.
    queue: VecDeque<(Vec<u8>, Meta)>,
    /// The `Idle` before the packet at the front of `queue` was returned.
    advanced: bool,
    spare: Vec<Vec<u8>>,
    done: bool,
    flushed: bool,
    /// A read error, returned once the held fragments it cut off from
    /// their first fragments have been delivered (as the feeder does).
    damage: Option<io::Error>,
    packets: u64,
}

impl<R: Read> WholeFileShare<R> {
    /// Worker `me`'s share of the capture `reader` reads.
    pub fn new(reader: CaptureReader<R>, dispatcher: Dispatcher, me: usize) -> Self {
        WholeFileShare {
            reader,
            dispatcher,
            me,
            clock: Timestamp::ZERO,
            read: 0,
            last_own: None,
            pending_now: None,
            queue: VecDeque::new(),
            advanced: false,
            spare: Vec::new(),
            done: false,
            flushed: false,
            damage: None,
            packets: 0,
        }
    }
}

/// What a [`WholeFileShare`] does with each packet the dispatcher gives its
/// worker: straight to the harness while nothing waits, else queued.
struct ShareSink<'a> {
    me: usize,
    index: u64,
    before: Timestamp,
    last_own: &'a mut Option<u64>,
    queue: &'a mut VecDeque<(Vec<u8>, Meta)>,
    spare: &'a mut Vec<Vec<u8>>,
    each: &'a mut dyn FnMut(&PacketView<'_>),
    mine: &'a mut usize,
}

impl ShareSink<'_> {
    fn take(&mut self, w: usize, pkt: &PacketView<'_>) {
        if w != self.me {
            return;
        }
        // See "Time across workers" in the module docs.
        let others_since = self.index > 0
            && *self.last_own != Some(self.index - 1)
            && *self.last_own != Some(self.index);
        *self.last_own = Some(self.index);
        let advance_before = (pkt.ts < self.before && others_since).then_some(self.before);
        if advance_before.is_none() && self.queue.is_empty() {
            (self.each)(pkt);
            *self.mine += 1;
            return;
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(pkt.data);
        let meta = Meta {
            end: bytes.len(),
            advance_before,
            ts: pkt.ts,
            wire_len: pkt.wire_len,
            link_type: pkt.link_type,
            source: pkt.source,
        };
        self.queue.push_back((bytes, meta));
    }
}

impl<R: Read + Send> PacketSource for WholeFileShare<R> {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> io::Result<Batch> {
        if let Some(now) = self.pending_now.take() {
            return Ok(Batch::Idle { now });
        }
        let mut mine = 0;
        let read_before = self.read;
        loop {
            // Queued packets first, in order, each after its `Idle`.
            while let Some((bytes, m)) = self.queue.front() {
                if let Some(t) = m.advance_before {
                    if !self.advanced {
                        self.advanced = true;
                        self.packets += mine as u64;
                        if mine == 0 {
                            return Ok(Batch::Idle { now: t });
                        }
                        self.pending_now = Some(t);
                        return Ok(Batch::Packets(mine));
                    }
                }
                self.advanced = false;
                let mut view = PacketView::new(bytes, m.ts, m.link_type).with_wire_len(m.wire_len);
                view.source = m.source;
                each(&view);
                mine += 1;
                if let Some((bytes, _)) = self.queue.pop_front() {
                    self.spare.push(bytes);
                }
            }
            if self.done || mine >= BATCH_PACKETS {
                break;
            }
            let pkt = match self.reader.next_packet() {
                Ok(Some(p)) => Some(p),
                Ok(None) => {
                    self.done = true;
                    None
                }
                Err(e) => {
                    self.done = true;
                    self.damage = Some(io::Error::other(e));
                    None
                }
            }
            .map(|p| {
                let index = self.read;
                self.read += 1;
                let before = self.clock;
                self.clock = self.clock.max(p.ts);
                (p, index, before)
            });
            let mut sink = ShareSink {
                me: self.me,
                index: 0,
                before: self.clock,
                last_own: &mut self.last_own,
                queue: &mut self.queue,
                spare: &mut self.spare,
                each,
                mine: &mut mine,
            };
            match pkt {
                Some((p, index, before)) => {
                    sink.index = index;
                    sink.before = before;
                    self.dispatcher.dispatch(&p, &mut |w, v| sink.take(w, v));
                }
                None if !self.flushed => {
                    // Held fragments whose first fragment never came.
                    self.flushed = true;
                    sink.index = self.read;
                    self.dispatcher.flush(&mut |w, v| sink.take(w, v));
                }
                None => {}
            }
        }
        self.packets += mine as u64;
        if self.read > read_before && self.last_own != Some(self.read - 1) {
            self.pending_now = Some(self.clock);
        }
        if mine == 0 {
            if let Some(e) = self
                .pending_now
                .is_none()
                .then(|| self.damage.take())
                .flatten()
            {
                return Err(e);
            }
            return Ok(match self.pending_now.take() {
                Some(now) => Batch::Idle { now },
                None => Batch::End,
            });
        }
        Ok(Batch::Packets(mine))
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            packets: self.packets,
            ..SourceStats::default()
        }
    }
}

#[cfg(test)]
mod tests;
