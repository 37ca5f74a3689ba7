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

/// Where frames go: an AF_PACKET socket, or a test double.
pub trait FrameSink {
    /// Sends one whole Ethernet frame; the error carries the kernel's errno.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
}

#[cfg(target_os = "linux")]
impl FrameSink for flowscope_rss::afpacket::TxSocket {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        flowscope_rss::afpacket::TxSocket::send(self, frame)
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
    /// Retries of a send that failed with `ENOBUFS` (queue full) before it
    /// counts as failed.
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
    /// Frames that failed, by errno (after retries for `ENOBUFS`).
    pub failed_by_errno: BTreeMap<i32, u64>,
    /// `ENOBUFS` retries made (whether or not the frame went out then).
    pub enobufs_retries: u64,
    /// Frames dropped because the remapper refused them.
    pub remap_refused: u64,
    /// Frames of a link type that cannot be sent on Ethernet.
    pub link_skipped: u64,
    /// Frames sent shorter than they were on the wire (snapped capture).
    pub snapped: u64,
    /// Passes over the capture started.
    pub passes: u64,
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

use libc::{ENOBUFS, ENODEV, ENXIO};

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
    pub fn run_pass<R: Read>(
        &mut self,
        reader: &mut CaptureReader<R>,
    ) -> Result<Option<CaptureError>, TxError> {
        self.report.passes += 1;
        // Each pass starts from where the last one ended, not from the
        // first pass's origin.
        self.pacer.rebase();
        loop {
            let pkt = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(e) => return Ok(Some(e)),
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
                    self.clock.sleep(due - now);
                }
            }
            self.send_one()?;
        }
    }

    /// Sends `self.frame`, retrying `ENOBUFS`; stops only when the
    /// interface is gone.
    fn send_one(&mut self) -> Result<(), TxError> {
        let now = self.clock.now();
        let first = *self.first_send.get_or_insert(now);
        let mut retries = 0;
        let result = loop {
            match self.sink.send(&self.frame) {
                Ok(()) => break Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(ENOBUFS) && retries < self.opts.enobufs_retries =>
                {
                    retries += 1;
                    self.report.enobufs_retries += 1;
                    self.clock.sleep(self.opts.enobufs_backoff);
                }
                Err(e) => break Err(e),
            }
        };
        if let Some(r) = self.rate.as_mut() {
            // A failed frame still had its slot in the schedule.
            r.sent(self.frame.len());
        }
        match result {
            Ok(()) => {
                self.report.packets_sent += 1;
                self.report.bytes_sent += self.frame.len() as u64;
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                *self.report.failed_by_errno.entry(errno).or_default() += 1;
                if matches!(errno, ENXIO | ENODEV) {
                    return Err(TxError::Interface(e));
                }
            }
        }
        self.report.elapsed = self.clock.now().saturating_sub(first);
        Ok(())
    }
}
