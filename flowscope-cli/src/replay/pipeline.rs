//! Replay through the session pipeline: each packet is processed when the
//! wall clock reaches its scaled timestamp, and between packets the replay
//! clock ticks the driver forward (`advance_to`), so a flow that goes quiet
//! ends on its idle timeout, as it would live, not when the next packet
//! happens to arrive.
//!
//! The tracker exposes no next-deadline query, so the driver is ticked at
//! least every `tick` of wall time: an idle flow's end is reported at most
//! one tick (times `--speed` in capture time) after its deadline. Expiry
//! happens on the tracker's own rule (clock strictly past last packet +
//! timeout), so the set of flow records does not depend on the pace.

use std::io::{self, Read, Write};
use std::time::Duration;

use flowscope::capture::{CaptureError, CaptureReader};
use flowscope::driver::{DriverEvent, SessionDriver};
use flowscope::emit::{self, FlowContext, FlowWriter};
use flowscope::proto::AppMessage;
use flowscope_core::{FlowEvent, PacketView};

use super::clock::Clock;
use super::pace::{Pacer, Speed};
use super::remap::{Remapper, Verdict};
use crate::app_events::EveApps;

/// Default wall-time interval between driver ticks while waiting.
pub const DEFAULT_TICK: Duration = Duration::from_millis(100);

/// What a pipeline replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets dropped because the remapper refused them.
    pub remap_refused: u64,
    /// Times the driver was ticked between packets.
    pub ticks: u64,
}

/// Paces a capture through a [`SessionDriver`] against a [`Clock`].
pub struct PipelineReplay<C: Clock> {
    clock: C,
    pacer: Pacer,
    tick: Duration,
    remap: Option<Remapper>,
    scratch: Vec<u8>,
    stats: PipelineStats,
}

impl<C: Clock> PipelineReplay<C> {
    /// A replay at `speed`, ticking at least every `tick` of wall time
    /// (at least 1 ms) while waiting for the next packet.
    pub fn new(clock: C, speed: Speed, tick: Duration) -> Self {
        PipelineReplay {
            clock,
            pacer: Pacer::new(speed),
            tick: tick.max(Duration::from_millis(1)),
            remap: None,
            scratch: Vec::new(),
            stats: PipelineStats::default(),
        }
    }

    /// Rewrites every frame's addresses before the pipeline sees it;
    /// frames the remapper refuses are dropped and counted.
    pub fn with_remapper(mut self, remap: Remapper) -> Self {
        self.remap = Some(remap);
        self
    }

    /// The clock (a test reads its recorded sleeps).
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The remapper, if any.
    pub fn remapper(&self) -> Option<&Remapper> {
        self.remap.as_ref()
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Replays every packet of `reader` through `driver`, then ends the
    /// remaining flows. Each event goes to `sink` with the wall time
    /// (clock reading) it happened at; the first error `sink` returns
    /// stops the replay and is returned. `Ok(Some(e))` when the capture
    /// was damaged part-way (the packets before were replayed).
    pub fn run<R: Read, M: 'static>(
        &mut self,
        reader: &mut CaptureReader<R>,
        driver: &mut SessionDriver<M>,
        sink: &mut impl FnMut(Duration, DriverEvent<'_, M>) -> io::Result<()>,
    ) -> io::Result<Option<CaptureError>> {
        let mut err: Option<io::Error> = None;
        let mut damage = None;
        loop {
            let pkt = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            };
            self.stats.packets += 1;
            self.wait_for(&pkt, driver, sink, &mut err);
            if err.is_some() {
                break;
            }
            let now = self.clock.now();
            let mut emit = |ev: DriverEvent<'_, M>| deliver(sink, &mut err, now, ev);
            match self.remap.as_mut() {
                None => driver.process(&pkt, &mut emit),
                Some(remap) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(pkt.data);
                    if let Verdict::Refused(_) = remap.remap_frame(pkt.link_type, &mut self.scratch)
                    {
                        self.stats.remap_refused += 1;
                        continue;
                    }
                    let mut view = PacketView::new(&self.scratch, pkt.ts, pkt.link_type)
                        .with_wire_len(pkt.wire_len);
                    if let Some(s) = pkt.source {
                        view = view.with_source(s);
                    }
                    driver.process(&view, &mut emit);
                }
            }
            if err.is_some() {
                break;
            }
        }
        if err.is_none() {
            let now = self.clock.now();
            driver.finish(&mut |ev| deliver(sink, &mut err, now, ev));
        }
        match err {
            Some(e) => Err(e),
            None => Ok(damage),
        }
    }

    /// Sleeps until `pkt` is due, ticking the driver's clock on the way.
    fn wait_for<M: 'static>(
        &mut self,
        pkt: &PacketView<'_>,
        driver: &mut SessionDriver<M>,
        sink: &mut impl FnMut(Duration, DriverEvent<'_, M>) -> io::Result<()>,
        err: &mut Option<io::Error>,
    ) {
        let Some(due) = self.pacer.due(pkt.ts, self.clock.now()) else {
            return;
        };
        loop {
            let now = self.clock.now();
            if now >= due || err.is_some() {
                return;
            }
            self.clock.sleep((due - now).min(self.tick));
            let now = self.clock.now();
            if now >= due {
                return;
            }
            // Never past the packet about to be processed: the tracker's
            // clock must not run ahead of the capture.
            if let Some(t) = self.pacer.capture_time(now) {
                self.stats.ticks += 1;
                driver.advance_to(t.min(pkt.ts), &mut |ev| deliver(sink, err, now, ev));
            }
        }
    }
}

fn deliver<M>(
    sink: &mut impl FnMut(Duration, DriverEvent<'_, M>) -> io::Result<()>,
    err: &mut Option<io::Error>,
    now: Duration,
    ev: DriverEvent<'_, M>,
) {
    if err.is_none() {
        if let Err(e) = sink(now, ev) {
            *err = Some(e);
        }
    }
}

/// The line formats `flow-replay` prints (those of `flow-summary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// Suricata EVE JSON: `flow` events, and `http`, `tls`, `dns` events.
    Eve,
    /// One JSON object per flow with every field flowscope knows.
    Ndjson,
}

/// Writes driver events as `flow-summary --format eve|ndjson` does: the
/// same `emit` writers and, for EVE, the same application events
/// ([`EveApps`]).
pub struct EventLines<'w> {
    w: Box<dyn FlowWriter + 'w>,
    apps: Option<EveApps>,
}

impl<'w> EventLines<'w> {
    /// Lines of `format` over `w`.
    pub fn new(format: LineFormat, w: impl Write + 'w) -> Self {
        let (f, apps) = match format {
            LineFormat::Eve => (emit::Format::Eve, Some(EveApps::default())),
            LineFormat::Ndjson => (emit::Format::Ndjson, None),
        };
        EventLines {
            w: f.writer(w),
            apps,
        }
    }

    /// Writes what `ev` produces (an ended flow's record, EVE app events).
    pub fn event(&mut self, ev: DriverEvent<'_, AppMessage>) -> io::Result<()> {
        match ev {
            DriverEvent::Flow {
                event: FlowEvent::Ended(rec),
                app_proto,
            } => {
                let ctx = match app_proto {
                    Some(a) => FlowContext::default().with_app_proto(a),
                    None => FlowContext::default(),
                };
                self.w.write_flow_with(rec, &ctx)
            }
            DriverEvent::Session { info, ts, event } => match self.apps.as_mut() {
                Some(apps) => {
                    let w = &mut self.w;
                    apps.on_event(info, ts, &event, &mut |line| w.write_line(line))
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Finishes the output (flushes the writer).
    pub fn close(mut self) -> io::Result<()> {
        self.w.close()
    }
}
