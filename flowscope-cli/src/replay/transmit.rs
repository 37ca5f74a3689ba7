//! Sending a capture's frames onto an interface, like tcpreplay: paced by
//! scaled timestamps or a fixed rate, with bounded retries when the
//! kernel's queue is full, and a report of what was sent and what failed.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::Duration;

use flowscope::capture::{CaptureError, CaptureReader};
use flowscope_core::LinkType;

use super::clock::Clock;
use super::link::{self, LinkError};
use super::pace::{Pacer, Rate, RateSchedule, Speed};
use super::remap::{Remapper, Verdict};

/// Most frames the transmitter hands its sink at once (the AF_PACKET
/// socket's `sendmmsg(2)` limit).
pub const BATCH: usize = 64;

/// What a [`FrameSink::send_batch`] call did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BatchOutcome {
    /// Frames from the front of the batch that were accepted.
    pub sent: usize,
    /// Bit `i` is set when accepted frame `i` went out only in part
    /// (counted as a failure, "short send").
    pub short: u64,
    /// Why frame `sent` was not accepted, when known. `None` with `sent`
    /// short of the batch: the sink stopped without naming the error, and
    /// the rest is offered again (`sendmmsg(2)` loses the error after a
    /// partial send; the retry reports it).
    pub error: Option<io::Error>,
}

impl BatchOutcome {
    /// `sent` frames accepted, then `error` for the next one (if any).
    pub fn new(sent: usize, error: Option<io::Error>) -> Self {
        BatchOutcome {
            sent,
            short: 0,
            error,
        }
    }
}

/// Where frames go: an AF_PACKET socket, or a test double.
pub trait FrameSink {
    /// Sends one whole Ethernet frame; the error carries the kernel's errno.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Sends frames in order, stopping at the first that fails; one system
    /// call for many frames where the sink can. The default sends them one
    /// by one with [`FrameSink::send`].
    fn send_batch(&mut self, frames: &[&[u8]]) -> BatchOutcome {
        for (i, f) in frames.iter().enumerate() {
            if let Err(e) = self.send(f) {
                return BatchOutcome::new(i, Some(e));
            }
        }
        BatchOutcome::new(frames.len(), None)
    }
}

#[cfg(target_os = "linux")]
impl FrameSink for flowscope_rss::afpacket::TxSocket {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        flowscope_rss::afpacket::TxSocket::send(self, frame)
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> BatchOutcome {
        let b = flowscope_rss::afpacket::TxSocket::send_batch(self, frames);
        BatchOutcome {
            sent: b.sent,
            short: b.short,
            error: b.error,
        }
    }
}

/// How sends are spaced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// By capture timestamps at this speed.
    Timestamps(Speed),
    /// At a fixed rate, whatever the timestamps say.
    Rate(Rate),
}

/// Transmit options.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TxOptions {
    /// How sends are spaced.
    pub pacing: Pacing,
    /// Retries of a send that failed with `ENOBUFS` or `EAGAIN` (queue
    /// full) before the frame counts as failed.
    pub enobufs_retries: u32,
    /// Wait between those retries.
    pub enobufs_backoff: Duration,
}

impl TxOptions {
    /// Options with this pacing, 100 retries of `ENOBUFS` 200 µs apart.
    pub fn new(pacing: Pacing) -> Self {
        TxOptions {
            pacing,
            enobufs_retries: 100,
            enobufs_backoff: Duration::from_micros(200),
        }
    }
}

/// What a transmit run did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TxReport {
    /// Packets read from the capture (every pass).
    pub packets_read: u64,
    /// Frames the kernel accepted.
    pub packets_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Frames that failed, by errno (after retries for `ENOBUFS`/`EAGAIN`;
    /// 0 for a frame the kernel took only in part).
    pub failed_by_errno: BTreeMap<i32, u64>,
    /// `ENOBUFS`/`EAGAIN` retries made (whether or not the frame went out then).
    pub enobufs_retries: u64,
    /// Frames dropped because the remapper refused them.
    pub remap_refused: u64,
    /// Frames of a link type that cannot be sent on Ethernet.
    pub link_skipped: u64,
    /// Frames sent shorter than they were on the wire (snapped capture).
    pub snapped: u64,
    /// Passes over the capture started.
    pub passes: u64,
    /// System calls (or sink calls) that sent frames: `packets_sent`
    /// divided by this is the mean batch.
    pub batches: u64,
    /// From the first send attempt to the last.
    pub elapsed: Duration,
}

impl TxReport {
    /// Frames that failed for any reason.
    pub fn failed(&self) -> u64 {
        self.failed_by_errno.values().sum()
    }

    /// Frames sent per second of `elapsed` (0 when nothing took time).
    pub fn pps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.packets_sent as f64 / s
        } else {
            0.0
        }
    }

    /// Megabits (10^6) of frame bytes sent per second of `elapsed`.
    pub fn mbps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes_sent as f64 * 8.0 / s / 1e6
        } else {
            0.0
        }
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let failed: serde_json::Map<String, serde_json::Value> = self
            .failed_by_errno
            .iter()
            .map(|(e, n)| (errno_name(*e), serde_json::Value::from(*n)))
            .collect();
        serde_json::json!({
            "packets_read": self.packets_read,
            "packets_sent": self.packets_sent,
            "bytes_sent": self.bytes_sent,
            "failed": self.failed(),
            "failed_by_errno": failed,
            "enobufs_retries": self.enobufs_retries,
            "remap_refused": self.remap_refused,
            "link_skipped": self.link_skipped,
            "snapped": self.snapped,
            "passes": self.passes,
            "batches": self.batches,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "pps": self.pps(),
            "mbps": self.mbps(),
        })
    }

    /// The report as text, one fact a line.
    pub fn write_text(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "packets read     {}", self.packets_read)?;
        writeln!(w, "packets sent     {}", self.packets_sent)?;
        writeln!(w, "bytes sent       {}", self.bytes_sent)?;
        writeln!(w, "elapsed          {:.6} s", self.elapsed.as_secs_f64())?;
        writeln!(
            w,
            "rate             {:.1} pps, {:.3} Mbit/s",
            self.pps(),
            self.mbps()
        )?;
        writeln!(w, "send failures    {}", self.failed())?;
        for (e, n) in &self.failed_by_errno {
            writeln!(w, "  {:<14} {n}", errno_name(*e))?;
        }
        writeln!(w, "ENOBUFS retries  {}", self.enobufs_retries)?;
        if self.batches > 0 {
            writeln!(
                w,
                "send calls       {}  ({:.1} frames each)",
                self.batches,
                self.packets_sent as f64 / self.batches as f64
            )?;
        }
        if self.remap_refused > 0 {
            writeln!(w, "remap refused    {}", self.remap_refused)?;
        }
        if self.link_skipped > 0 {
            writeln!(w, "link type skip   {}", self.link_skipped)?;
        }
        if self.snapped > 0 {
            writeln!(w, "snapped frames   {}", self.snapped)?;
        }
        if self.passes > 1 {
            writeln!(w, "passes           {}", self.passes)?;
        }
        Ok(())
    }
}

/// A short name for the errnos a send can meet, else `errno N`.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::ENOBUFS => "ENOBUFS",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENXIO => "ENXIO",
        libc::ENODEV => "ENODEV",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::EAGAIN => "EAGAIN",
        0 => "short send",
        _ => return format!("errno {e}"),
    };
    name.to_owned()
}

use libc::{EAGAIN, ENOBUFS, ENODEV, ENXIO};

/// Why a transmit run stopped early.
#[derive(Debug)]
#[non_exhaustive]
pub enum TxError {
    /// The capture's first frame has a link type that cannot be sent on
    /// Ethernet (a usage error: pick another capture).
    UnsupportedLink(LinkType),
    /// The interface went away (`ENXIO`, `ENODEV`).
    Interface(io::Error),
}

impl std::fmt::Display for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxError::UnsupportedLink(l) => write!(
                f,
                "link type {} cannot be sent on Ethernet (only Ethernet and raw IP captures can)",
                l.0
            ),
            TxError::Interface(e) => write!(f, "interface failed: {e}"),
        }
    }
}

impl std::error::Error for TxError {}

/// Sends captures' frames to a [`FrameSink`], paced against a [`Clock`].
/// Keep one for every `--loop` pass: it holds the rate schedule, the
/// remapper's assignments and the report.
pub struct Transmitter<S: FrameSink, C: Clock> {
    sink: S,
    clock: C,
    opts: TxOptions,
    pacer: Pacer,
    rate: Option<RateSchedule>,
    remap: Option<Remapper>,
    frame: Vec<u8>,
    /// The frames due and not yet sent, back to back, and where each is.
    pending: Vec<u8>,
    spans: Vec<(usize, usize)>,
    report: TxReport,
    first_send: Option<Duration>,
}

impl<S: FrameSink, C: Clock> Transmitter<S, C> {
    /// A transmitter onto `sink`.
    pub fn new(sink: S, clock: C, opts: TxOptions) -> Self {
        let (speed, rate) = match opts.pacing {
            Pacing::Timestamps(s) => (s, None),
            Pacing::Rate(r) => (Speed::Max, Some(RateSchedule::new(r))),
        };
        Transmitter {
            sink,
            clock,
            opts,
            pacer: Pacer::new(speed),
            rate,
            remap: None,
            frame: Vec::with_capacity(2048),
            pending: Vec::with_capacity(BATCH * 2048),
            spans: Vec::with_capacity(BATCH),
            report: TxReport::default(),
            first_send: None,
        }
    }

    /// Rewrites every frame's addresses before it is sent.
    pub fn with_remapper(mut self, remap: Remapper) -> Self {
        self.remap = Some(remap);
        self
    }

    /// The report so far.
    pub fn report(&self) -> &TxReport {
        &self.report
    }

    /// The remapper, if any.
    pub fn remapper(&self) -> Option<&Remapper> {
        self.remap.as_ref()
    }

    /// The sink (a test reads what it got).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Sends one pass over `reader`. `Ok(Some(e))` when the capture was
    /// damaged part-way (the frames before it were sent).
    ///
    /// Frames that are due are collected and sent together (up to
    /// [`BATCH`] per sink call); the batch goes out as soon as a frame is
    /// not due yet (before the wait for it), when it is full, and at the
    /// end of the pass. At `--speed max` every frame is due at once.
    pub fn run_pass<R: Read>(
        &mut self,
        reader: &mut CaptureReader<R>,
    ) -> Result<Option<CaptureError>, TxError> {
        self.report.passes += 1;
        // Each pass starts from where the last one ended, not from the
        // first pass's origin.
        self.pacer.rebase();
        let damage = loop {
            let pkt = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            self.report.packets_read += 1;
            match link::to_ethernet(pkt.link_type, pkt.data, &mut self.frame) {
                Ok(()) => {}
                Err(LinkError::Unsupported(l)) if self.report.packets_read == 1 => {
                    return Err(TxError::UnsupportedLink(l));
                }
                Err(_) => {
                    self.report.link_skipped += 1;
                    continue;
                }
            }
            if let Some(r) = self.remap.as_mut() {
                if let Verdict::Refused(_) = r.remap_frame(LinkType::ETHERNET, &mut self.frame) {
                    self.report.remap_refused += 1;
                    continue;
                }
            }
            if pkt.is_snapped() {
                self.report.snapped += 1;
            }
            let now = self.clock.now();
            let due = match self.rate.as_mut() {
                Some(r) => Some(r.due(now)),
                None => self.pacer.due(pkt.ts, now),
            };
            if let Some(due) = due {
                if due > now {
                    // What is due goes out before the wait, not after it.
                    self.flush()?;
                    let now = self.clock.now();
                    if due > now {
                        self.clock.sleep(due - now);
                    }
                }
            }
            if let Some(r) = self.rate.as_mut() {
                // A frame that then fails still had its slot in the schedule.
                r.sent(self.frame.len());
            }
            let start = self.pending.len();
            self.pending.extend_from_slice(&self.frame);
            self.spans.push((start, self.frame.len()));
            if self.spans.len() >= BATCH {
                self.flush()?;
            }
        };
        self.flush()?;
        Ok(damage)
    }

    /// Sends the pending frames in order: a partial send is followed by the
    /// rest; `ENOBUFS`/`EAGAIN` on a frame is retried after a backoff (up to
    /// the configured retries per frame, then it counts as failed); any
    /// other error counts the frame as failed and moves past it. Stops only
    /// when the interface is gone (the frames after it are not sent).
    fn flush(&mut self) -> Result<(), TxError> {
        if self.spans.is_empty() {
            return Ok(());
        }
        let first = *self.first_send.get_or_insert(self.clock.now());
        let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
        for (r, &(start, len)) in refs.iter_mut().zip(&self.spans) {
            *r = self
                .pending
                .get(start..start.saturating_add(len))
                .unwrap_or_default();
        }
        let frames = refs.get(..self.spans.len()).unwrap_or_default();
        let report = &mut self.report;
        let mut next = 0;
        let mut retries = 0;
        let mut gone = None;
        while let Some(rest) = frames.get(next..).filter(|r| !r.is_empty()) {
            let out = self.sink.send_batch(rest);
            let sent = out.sent.min(rest.len());
            if sent > 0 {
                report.batches += 1;
                retries = 0;
            }
            for (i, f) in rest.iter().take(sent).enumerate() {
                let short = u32::try_from(i)
                    .ok()
                    .and_then(|i| out.short.checked_shr(i))
                    .is_some_and(|b| b & 1 == 1);
                if short {
                    *report.failed_by_errno.entry(0).or_default() += 1;
                } else {
                    report.packets_sent += 1;
                    report.bytes_sent += f.len() as u64;
                }
            }
            next += sent;
            if next >= frames.len() {
                break;
            }
            let errno = match &out.error {
                Some(e) => e.raw_os_error().unwrap_or(0),
                // Stopped early without a reason: offer the rest again,
                // which names the error. A sink that took nothing and gave
                // no reason would loop: its frame counts as failed.
                None if sent > 0 => continue,
                None => 0,
            };
            if matches!(errno, ENOBUFS | EAGAIN) && retries < self.opts.enobufs_retries {
                retries += 1;
                report.enobufs_retries += 1;
                self.clock.sleep(self.opts.enobufs_backoff);
                continue;
            }
            *report.failed_by_errno.entry(errno).or_default() += 1;
            next += 1;
            retries = 0;
            if matches!(errno, ENXIO | ENODEV) {
                gone = out.error;
                break;
            }
        }
        self.pending.clear();
        self.spans.clear();
        self.report.elapsed = self.clock.now().saturating_sub(first);
        match gone {
            Some(e) => Err(TxError::Interface(e)),
            None => Ok(()),
        }
    }
}
