//! `cargo xtask bench`: single-core throughput, allocations per packet and
//! peak memory of each pipeline stage, on captures loaded into memory first
//! (disk I/O is not measured).
//!
//! Stages, each a superset of the one before:
//! - `read`: `CaptureReader` over an in-memory cursor;
//! - `extract`: + `FiveTupleExtractor::extract`;
//! - `track`: + `FlowTracker::track` (events go to a counting sink), then `finish`;
//! - `pipeline`: the same work through `FlowPipeline::five_tuple`;
//! - `sessions`: `SessionDriver` (extract, defragment, track, reassemble
//!   TCP, parse HTTP/TLS/DNS), and the same driver with no parsers, which
//!   separates reassembly and defragmentation from parsing.
//!
//! "Cold" passes start from fresh state (the reader, the extractor, an empty
//! flow table); "warm" passes reuse the state of a warm-up pass over the
//! same capture, with timestamps shifted past the capture's end so time
//! still only moves forward: the flow table is already grown, which is the
//! steady state of a long-running capture. Cold passes end with `finish`;
//! warm ones do not.
//!
//! Session stages also report bytes allocated per packet and the driver's
//! peak heap (live bytes sampled after every packet of the audit pass).

use std::cell::Cell;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
use flowscope::capture::{Bytes, CaptureReader};
use flowscope::driver::{DriverEvent, FlowPipeline, SessionConfig, SessionDriver};
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope::proto::AppMessage;
use flowscope::track::{FlowTracker, TrackerConfig};
use flowscope_core::{
    Extracted, FiveTuple, FlowEvent, FlowExtractor, L4Proto, LinkType, Orientation, PacketView,
    SessionEvent, Timestamp,
};
use stats_alloc::{Region, Stats};

/// Options of `cargo xtask bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Extra capture files to measure (pcap or pcapng); repeatable.
    #[arg(long = "capture")]
    captures: Vec<PathBuf>,
    /// Packets in the generated capture (flows = packets / 100).
    #[arg(long, default_value_t = 3_000_000)]
    packets: u64,
    /// Timed passes per stage and temperature; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Report the fastest timed pass instead of the median (on a machine
    /// shared with other work, the fastest is the least disturbed).
    #[arg(long)]
    best: bool,
    /// Which stage(s) to run.
    #[arg(long, value_enum, default_value_t = StageArg::All)]
    stage: StageArg,
    /// Do not generate or measure the synthetic capture (only --capture files).
    #[arg(long)]
    no_gen: bool,
    /// Also measure the corpus mix of --packets packets
    /// (`target/bench/corpus-mix-<N>.pcap`, built by `cargo xtask mix` when
    /// missing; needs the corpus, see FLOWSCOPE_CORPUS).
    #[arg(long)]
    mix: bool,
    /// Feed the reader stages through `CaptureReader::new` over a `Read`
    /// (every record copied into the reader's buffer, as when reading a
    /// pipe) instead of `CaptureReader::from_bytes` (records lent in place,
    /// as flow-summary reads a regular file it maps).
    #[arg(long)]
    copying_reader: bool,
}

/// `--stage` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Capture reader only.
    Read,
    /// Reader + extractor.
    Extract,
    /// Reader + extractor + tracker.
    Track,
    /// Reader + FlowPipeline.
    Pipeline,
    /// Extractor + tracker over frames already in memory (no reader).
    TrackMem,
    /// SessionDriver with HTTP+TLS+DNS parsers and with none, from the
    /// reader and from frames in memory.
    Sessions,
    /// SessionDriver with HTTP+TLS+DNS parsers over frames in memory only
    /// (for profiling).
    SessionsMem,
    /// SessionDriver with no parsers over frames in memory only.
    ReassemblyMem,
    /// Every stage.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Read,
    Extract,
    Track,
    Pipeline,
    ExtractMem,
    TrackMem,
    /// `SessionDriver::with_default_parsers`, from the reader.
    Sessions,
    /// The same over frames in memory.
    SessionsMem,
    /// `SessionDriver::new` (no parsers), from the reader.
    Reassembly,
    /// The same over frames in memory.
    ReassemblyMem,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Extract => "read+extract",
            Stage::Track => "read+extract+track",
            Stage::Pipeline => "FlowPipeline",
            Stage::ExtractMem => "extract (frames in memory)",
            Stage::TrackMem => "extract+track (frames in memory)",
            Stage::Sessions => "read+SessionDriver (HTTP+TLS+DNS)",
            Stage::SessionsMem => "SessionDriver (HTTP+TLS+DNS, frames in memory)",
            Stage::Reassembly => "read+SessionDriver (no parsers)",
            Stage::ReassemblyMem => "SessionDriver (no parsers, frames in memory)",
        }
    }

    /// True for stages fed from a [`Frames`] arena instead of the reader.
    fn in_memory(self) -> bool {
        matches!(
            self,
            Stage::ExtractMem | Stage::TrackMem | Stage::SessionsMem | Stage::ReassemblyMem
        )
    }

    /// True for the `SessionDriver` stages.
    fn session(self) -> bool {
        matches!(
            self,
            Stage::Sessions | Stage::SessionsMem | Stage::Reassembly | Stage::ReassemblyMem
        )
    }
}

/// Per-pass state that warm passes keep.
enum State {
    Read,
    /// The extractor and the `Extracted` it reuses packet after packet.
    Extract(FiveTupleExtractor, Box<Extracted<FiveTuple>>),
    Track(
        FiveTupleExtractor,
        Box<Extracted<FiveTuple>>,
        Box<FlowTracker<FiveTuple>>,
    ),
    Pipeline(Box<FlowPipeline<FiveTupleExtractor>>),
    Session(Box<SessionDriver<AppMessage>>),
}

/// An `Extracted` for `extract_into` to overwrite.
fn blank_extracted() -> Box<Extracted<FiveTuple>> {
    let any = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let key = FiveTuple {
        lo_addr: any,
        hi_addr: any,
        lo_port: 0,
        hi_port: 0,
        proto: 0,
    };
    Box::new(Extracted::new(key, Orientation::LoToHi, L4Proto::Other(0)))
}

impl State {
    fn new(stage: Stage) -> Self {
        match stage {
            Stage::Read => State::Read,
            Stage::Extract | Stage::ExtractMem => State::Extract(
                FiveTupleExtractor::new(ExtractConfig::default()),
                blank_extracted(),
            ),
            Stage::Track | Stage::TrackMem => State::Track(
                FiveTupleExtractor::new(ExtractConfig::default()),
                blank_extracted(),
                Box::new(FlowTracker::new(TrackerConfig::default())),
            ),
            Stage::Pipeline => State::Pipeline(Box::new(FlowPipeline::five_tuple(
                ExtractConfig::default(),
                TrackerConfig::default(),
            ))),
            Stage::Sessions | Stage::SessionsMem => State::Session(Box::new(
                SessionDriver::with_default_parsers(SessionConfig::default()),
            )),
            Stage::Reassembly | Stage::ReassemblyMem => {
                State::Session(Box::new(SessionDriver::new(SessionConfig::default())))
            }
        }
    }
}

/// What one pass saw.
#[derive(Clone, Copy, Debug, Default)]
struct Pass {
    packets: u64,
    frame_bytes: u64,
    first_ns: u64,
    last_ns: u64,
    skipped: u64,
    events: u64,
    /// Audit passes: packets of flows that already existed, and the
    /// allocations made while tracking them.
    existing_pkts: u64,
    existing_allocs: u64,
    /// Session stages: application messages emitted.
    messages: u64,
    /// Session audit passes: packets of existing flows that emitted no
    /// message, and the allocations made on them.
    silent_pkts: u64,
    silent_allocs: u64,
    /// Audit passes: the most live heap bytes seen after a packet.
    peak_heap: u64,
}

/// What the sinks count during a pass.
#[derive(Default)]
struct Sinks {
    events: Cell<u64>,
    messages: Cell<u64>,
}

impl Sinks {
    fn flow(&self, ev: &FlowEvent<FiveTuple>) {
        self.events.set(self.events.get() + 1);
        black_box(ev);
    }

    fn driver(&self, ev: DriverEvent<'_, AppMessage>) {
        match &ev {
            DriverEvent::Flow { .. } => self.events.set(self.events.get() + 1),
            DriverEvent::Session {
                event: SessionEvent::Message(_),
                ..
            } => self.messages.set(self.messages.get() + 1),
            _ => {}
        }
        black_box(&ev);
    }
}

/// Live heap bytes now (allocated minus freed; reallocations adjust both).
fn live_heap() -> u64 {
    let s = crate::GLOBAL.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated) as u64
}

/// Every frame of a capture copied once into one arena, so that a pass can
/// hand out `PacketView`s with no reader in the way, as a memory-mapped
/// capture ring (AF_PACKET) does: what remains is the per-packet cost of
/// extraction and tracking themselves.
struct Frames {
    arena: Vec<u8>,
    index: Vec<FrameRef>,
}

#[derive(Clone, Copy)]
struct FrameRef {
    off: usize,
    len: usize,
    wire: u32,
    ts: u64,
    link: LinkType,
}

impl Frames {
    fn load(data: &[u8]) -> Result<Self> {
        let mut reader = CaptureReader::new(Cursor::new(data)).map_err(|e| anyhow!("{e}"))?;
        let mut arena = Vec::with_capacity(data.len());
        let mut index = Vec::new();
        while let Some(pkt) = reader.next_packet().map_err(|e| anyhow!("{e}"))? {
            index.push(FrameRef {
                off: arena.len(),
                len: pkt.data.len(),
                wire: pkt.wire_len,
                ts: pkt.ts.as_nanos(),
                link: pkt.link_type,
            });
            arena.extend_from_slice(pkt.data);
        }
        Ok(Frames { arena, index })
    }

    fn view(&self, f: &FrameRef) -> PacketView<'_> {
        let data = self.arena.get(f.off..f.off + f.len).unwrap_or(&[]);
        PacketView::new(data, Timestamp::from_nanos(f.ts), f.link).with_wire_len(f.wire)
    }
}

/// Where a pass takes its packets from.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// A capture file's bytes, through the capture reader: in place, or
    /// copied through a `Read` when the flag is set.
    Capture(&'a Bytes, bool),
    /// Frames already in memory.
    Frames(&'a Frames),
}

/// One pass over the input, timestamps moved `shift_ns` later; `finish` ends
/// every flow at the end (cold passes).
fn pass(
    input: Input<'_>,
    state: &mut State,
    shift_ns: u64,
    finish: bool,
    audit: bool,
) -> Result<Pass> {
    let mut p = Pass::default();
    let sinks = Sinks::default();
    let base_heap = live_heap();
    match input {
        Input::Capture(data, false) => {
            let reader = CaptureReader::from_bytes(data.clone()).map_err(|e| anyhow!("{e}"))?;
            read_through(reader, shift_ns, state, &mut p, &sinks, audit)?;
        }
        Input::Capture(data, true) => {
            let reader = CaptureReader::new(Cursor::new(&data[..])).map_err(|e| anyhow!("{e}"))?;
            read_through(reader, shift_ns, state, &mut p, &sinks, audit)?;
        }
        Input::Frames(frames) => {
            // Prefetch the headers of a frame a few packets ahead, as a
            // capture-ring consumer does: otherwise every header is a DRAM miss.
            const AHEAD: usize = 8;
            for (i, f) in frames.index.iter().enumerate() {
                if let Some(next) = frames.index.get(i + AHEAD) {
                    prefetch(frames.arena.get(next.off..).unwrap_or(&[]));
                }
                step(frames.view(f), shift_ns, state, &mut p, &sinks, audit);
            }
        }
    }
    if finish {
        match state {
            State::Track(_, _, t) => t.finish(&mut |ev| sinks.flow(ev)),
            State::Pipeline(pl) => pl.finish(&mut |ev| sinks.flow(ev)),
            State::Session(d) => d.finish(&mut |ev| sinks.driver(ev)),
            _ => {}
        }
    }
    p.events = sinks.events.get();
    p.messages = sinks.messages.get();
    // Audit passes sample the heap relative to where the pass started; the
    // state's heap before the pass is added by the caller.
    p.peak_heap = p.peak_heap.saturating_sub(base_heap);
    Ok(p)
}

/// Every packet of `reader` through the stage under test.
#[inline(always)]
fn read_through<R: std::io::Read>(
    mut reader: CaptureReader<R>,
    shift_ns: u64,
    state: &mut State,
    p: &mut Pass,
    sinks: &Sinks,
    audit: bool,
) -> Result<()> {
    loop {
        let pkt = match reader.next_packet() {
            Ok(Some(pkt)) => pkt,
            Ok(None) => return Ok(()),
            Err(e) => return Err(anyhow!("{e}")),
        };
        step(pkt, shift_ns, state, p, sinks, audit);
    }
}

/// Hints the CPU to load the first two cache lines of `bytes`.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = bytes.as_ptr() as *const i8;
        // SAFETY: `prefetch` is a hint that never faults, whatever the
        // address, and SSE is part of the x86_64 baseline.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// One packet through the stage under test.
#[inline(always)]
fn step(
    mut pkt: PacketView<'_>,
    shift_ns: u64,
    state: &mut State,
    p: &mut Pass,
    sinks: &Sinks,
    audit: bool,
) {
    if shift_ns != 0 {
        pkt.ts = Timestamp::from_nanos(pkt.ts.as_nanos().saturating_add(shift_ns));
    }
    if p.packets == 0 {
        p.first_ns = pkt.ts.as_nanos();
    }
    p.last_ns = pkt.ts.as_nanos();
    p.packets += 1;
    p.frame_bytes += pkt.data.len() as u64;
    match state {
        State::Read => {
            black_box(&pkt);
        }
        State::Extract(x, ex) => match x.extract_into(&pkt, ex) {
            Ok(()) => {
                black_box(&ex);
            }
            Err(_) => p.skipped += 1,
        },
        State::Track(x, ex, t) => match x.extract_into(&pkt, ex) {
            Ok(()) if audit => {
                let region = Region::new(crate::GLOBAL);
                let o = t.track(&pkt, ex, &mut |ev| sinks.flow(ev));
                let c = region.change();
                if !o.new_flow {
                    p.existing_pkts += 1;
                    p.existing_allocs += c.allocations as u64 + c.reallocations as u64;
                }
            }
            Ok(()) => {
                black_box(t.track(&pkt, ex, &mut |ev| sinks.flow(ev)));
            }
            Err(_) => p.skipped += 1,
        },
        State::Pipeline(pl) => pl.process(&pkt, &mut |ev| sinks.flow(ev)),
        State::Session(d) if audit => {
            let (created, tracked) = (d.tracker_stats().flows_created, d.counters().tracked);
            let messages = sinks.messages.get();
            let region = Region::new(crate::GLOBAL);
            d.process(&pkt, &mut |ev| sinks.driver(ev));
            let c = region.change();
            let allocs = c.allocations as u64 + c.reallocations as u64;
            // A packet of an existing flow: tracked, and no flow created
            // (a flow ended and re-created by tuple reuse counts as new).
            if d.counters().tracked > tracked && d.tracker_stats().flows_created == created {
                p.existing_pkts += 1;
                p.existing_allocs += allocs;
                if sinks.messages.get() == messages {
                    p.silent_pkts += 1;
                    p.silent_allocs += allocs;
                }
            }
            p.peak_heap = p.peak_heap.max(live_heap());
        }
        State::Session(d) => d.process(&pkt, &mut |ev| sinks.driver(ev)),
    }
}

/// A measurement of one stage on one capture.
struct Row {
    capture: String,
    stage: Stage,
    outcome: Result<Measured, String>,
}

struct Measured {
    packets: u64,
    frame_bytes: u64,
    cold: Duration,
    warm: Duration,
    allocs_cold: u64,
    allocs_warm: u64,
    peak_rss_kib: Option<u64>,
    skipped: u64,
    events: u64,
    /// (allocations, packets) while tracking packets of existing flows.
    existing: Option<(u64, u64)>,
    /// Session stages only.
    session: Option<SessionMeasured>,
}

/// What only the session stages report.
struct SessionMeasured {
    /// Application messages in one cold pass.
    messages: u64,
    /// Bytes allocated (including reallocation growth) in one pass.
    bytes_cold: u64,
    bytes_warm: u64,
    /// (allocations, packets) on packets of existing flows that emitted no
    /// message: the cost of reassembly and parsing themselves.
    silent: (u64, u64),
    /// The driver's peak live heap in the audit pass, bytes.
    peak_heap: u64,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The fastest pass, or the median one.
fn summary(v: Vec<Duration>, best: bool) -> Duration {
    if best {
        v.into_iter().min().unwrap_or_default()
    } else {
        median(v)
    }
}

/// Allocator activity of `f`, with its result.
fn counting<T>(f: impl FnOnce() -> T) -> (T, Stats) {
    let region = Region::new(crate::GLOBAL);
    let out = f();
    (out, region.change())
}

/// Allocations plus reallocations.
fn alloc_ops(s: &Stats) -> u64 {
    s.allocations as u64 + s.reallocations as u64
}

fn measure(input: Input<'_>, stage: Stage, repeat: u32, best: bool) -> Result<Measured> {
    reset_peak_rss();
    let repeat = repeat.max(1);
    // Cold: fresh state each time.
    let mut cold = Vec::new();
    let mut allocs_cold = Stats::default();
    let mut first = Pass::default();
    for i in 0..repeat {
        let start = Instant::now();
        let (res, allocs) = counting(|| {
            let mut st = State::new(stage);
            pass(input, &mut st, 0, true, false)
        });
        cold.push(start.elapsed());
        let p = res?;
        if i == 0 {
            first = p;
            allocs_cold = allocs;
        }
    }
    // Warm: one warm-up pass, then passes over the same data, each shifted
    // past the previous one.
    let span = first.last_ns.saturating_sub(first.first_ns) + 1_000_000_000;
    let heap_before_state = live_heap();
    let mut st = State::new(stage);
    pass(input, &mut st, 0, false, false)?;
    let mut warm = Vec::new();
    let (mut allocs_warm, mut bytes_warm) = (0, 0);
    for k in 1..=u64::from(repeat) {
        let start = Instant::now();
        let (res, allocs) = counting(|| pass(input, &mut st, k * span, false, false));
        warm.push(start.elapsed());
        res?;
        allocs_warm += alloc_ops(&allocs);
        bytes_warm += allocs.bytes_allocated as u64;
    }
    // Audit: one more warm pass that counts, per packet, the allocations
    // made while tracking packets of flows that already existed.
    let heap_at_audit = live_heap().saturating_sub(heap_before_state);
    let audit = pass(input, &mut st, (u64::from(repeat) + 1) * span, false, true)?;
    let session = stage.session().then(|| SessionMeasured {
        messages: first.messages,
        bytes_cold: allocs_cold.bytes_allocated as u64,
        bytes_warm: bytes_warm / u64::from(repeat),
        silent: (audit.silent_allocs, audit.silent_pkts),
        peak_heap: heap_at_audit + audit.peak_heap,
    });
    Ok(Measured {
        existing: (audit.existing_pkts > 0).then_some((audit.existing_allocs, audit.existing_pkts)),
        packets: first.packets,
        frame_bytes: first.frame_bytes,
        cold: summary(cold, best),
        warm: summary(warm, best),
        allocs_cold: alloc_ops(&allocs_cold),
        allocs_warm: allocs_warm / u64::from(repeat),
        peak_rss_kib: peak_rss_kib(),
        skipped: first.skipped,
        events: first.events,
        session,
    })
}

/// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so
/// each stage reports its own peak. Best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size (VmHWM) in KiB, on Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn label(packets: u64) -> String {
    if packets >= 1_000_000 && packets.is_multiple_of(1_000_000) {
        format!("{}M", packets / 1_000_000)
    } else if packets >= 1_000 && packets.is_multiple_of(1_000) {
        format!("{}k", packets / 1_000)
    } else {
        packets.to_string()
    }
}

/// The generated capture, created if absent.
fn generated_capture(packets: u64) -> Result<PathBuf> {
    let dir = crate::workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("mix-{}.pcap", label(packets)));
    if !path.exists() {
        eprintln!("generating {} ...", path.display());
        let cfg = crate::gen::GenConfig {
            packets,
            flows: (packets / 100).max(1),
            ..crate::gen::GenConfig::default()
        };
        crate::write_capture(&cfg, &path)?;
    }
    Ok(path)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    msg.lines().next().unwrap_or("").to_string()
}

/// Runs the benchmark and prints the Markdown report on stdout.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut inputs = Vec::new();
    if !args.no_gen {
        inputs.push(generated_capture(args.packets)?);
    }
    if args.mix {
        let path = crate::mix::default_path(args.packets);
        if !path.exists() {
            eprintln!("building {} ...", path.display());
            crate::mix::build(&crate::mix::corpus_dir(), args.packets, &path)?;
        }
        inputs.push(path);
    }
    inputs.extend(args.captures.iter().cloned());
    let stages: &[Stage] = match args.stage {
        StageArg::Read => &[Stage::Read],
        StageArg::Extract => &[Stage::Extract],
        StageArg::Track => &[Stage::Track],
        StageArg::Pipeline => &[Stage::Pipeline],
        StageArg::TrackMem => &[Stage::ExtractMem, Stage::TrackMem],
        StageArg::Sessions => &[
            Stage::Sessions,
            Stage::SessionsMem,
            Stage::Reassembly,
            Stage::ReassemblyMem,
        ],
        StageArg::SessionsMem => &[Stage::SessionsMem],
        StageArg::ReassemblyMem => &[Stage::ReassemblyMem],
        StageArg::All => &[
            Stage::Read,
            Stage::Extract,
            Stage::Track,
            Stage::Pipeline,
            Stage::ExtractMem,
            Stage::TrackMem,
            Stage::Sessions,
            Stage::SessionsMem,
            Stage::Reassembly,
            Stage::ReassemblyMem,
        ],
    };
    // A stage whose code is still a stub panics; report it and go on.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for path in &inputs {
        let data = Bytes::from(
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        );
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        sizes.push((name.clone(), data.len()));
        let frames = if stages.iter().any(|s| s.in_memory()) {
            Some(Frames::load(&data)?)
        } else {
            None
        };
        for &stage in stages {
            eprintln!("{name}: {} ...", stage.name());
            let input = match (&frames, stage.in_memory()) {
                (Some(f), true) => Input::Frames(f),
                _ => Input::Capture(&data, args.copying_reader),
            };
            let outcome = match catch_unwind(AssertUnwindSafe(|| {
                measure(input, stage, args.repeat, args.best)
            })) {
                Ok(Ok(m)) => Ok(m),
                Ok(Err(e)) => Err(format!("error: {e}")),
                Err(p) => Err(format!("not run: panicked ({})", panic_message(p.as_ref()))),
            };
            rows.push(Row {
                capture: name.clone(),
                stage,
                outcome,
            });
        }
    }
    std::panic::set_hook(default_hook);
    print!("{}", report(&rows, &sizes, args));
    Ok(())
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn tool_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn report(rows: &[Row], sizes: &[(String, usize)], args: &BenchArgs) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Command: `{}`", command_line());
    let _ = writeln!(
        s,
        "Machine: {} ({} logical CPUs); {}; flowscope {}; one thread; {} of {} passes.",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tool_output("rustc", &["-V"]),
        tool_output("git", &["rev-parse", "--short", "HEAD"]),
        if args.best { "fastest" } else { "median" },
        args.repeat.max(1),
    );
    for (name, len) in sizes {
        let _ = writeln!(
            s,
            "Capture `{name}`: {:.1} MiB, held in memory (counted in peak RSS).",
            *len as f64 / 1048576.0
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| capture | stage | packets | cold Mpkt/s | cold MB/s | warm Mpkt/s | warm MB/s | allocs/pkt cold | allocs/pkt warm | allocs/pkt existing flows | peak RSS MiB | skipped | events |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        match &r.outcome {
            Ok(m) => {
                let rate = |d: Duration, n: u64| n as f64 / d.as_secs_f64().max(1e-9) / 1e6;
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.4} ({}) | {:.4} ({}) | {} | {} | {} | {} |",
                    r.capture,
                    r.stage.name(),
                    m.packets,
                    rate(m.cold, m.packets),
                    rate(m.cold, m.frame_bytes),
                    rate(m.warm, m.packets),
                    rate(m.warm, m.frame_bytes),
                    m.allocs_cold as f64 / m.packets.max(1) as f64,
                    m.allocs_cold,
                    m.allocs_warm as f64 / m.packets.max(1) as f64,
                    m.allocs_warm,
                    m.existing.map_or_else(
                        || "-".to_string(),
                        |(a, n)| format!("{:.4} ({a} in {n})", a as f64 / n.max(1) as f64)
                    ),
                    m.peak_rss_kib.map_or_else(|| "?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
                    m.skipped,
                    m.events,
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {e} | | | | | | | | | | |",
                    r.capture,
                    r.stage.name()
                );
            }
        }
    }
    session_report(&mut s, rows);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "MB = 10^6 bytes of captured frame data. Cold: fresh state, includes `finish`. Warm: state from a warm-up pass over the same capture, timestamps shifted past its end, no `finish`. Allocations: allocs + reallocs per packet during one timed pass (total in parentheses); they come from flow creation. Existing flows: allocations made inside `FlowTracker::track` for packets of flows that already existed, counted packet by packet in an extra warm pass."
    );
    if rows.iter().any(|r| r.stage.session()) {
        let _ = writeln!(
            s,
            "Session stages: messages = application messages (HTTP transactions, TLS handshake messages, DNS messages) in one cold pass; bytes/pkt = bytes allocated (with reallocation growth) per packet; existing flows = packets counted into a flow that already existed (audit pass); of which silent = those that emitted no message, so their allocations are reassembly's and parsers' own; peak heap = the most live heap bytes after any packet of the audit pass, minus the heap before the driver was created (the driver's state, not the capture)."
        );
    }
    s
}

/// The session stages' own table.
fn session_report(s: &mut String, rows: &[Row]) {
    let mut header = false;
    for r in rows {
        let (Ok(m), true) = (&r.outcome, r.stage.session()) else {
            continue;
        };
        let Some(x) = &m.session else { continue };
        if !header {
            header = true;
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "| capture | stage | messages | bytes/pkt cold | bytes/pkt warm | allocs/pkt existing flows | allocs/pkt existing, silent | peak heap MiB |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
        }
        let per = |a: u64, n: u64| format!("{:.4} ({a} in {n})", a as f64 / n.max(1) as f64);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {:.1} |",
            r.capture,
            r.stage.name(),
            x.messages,
            x.bytes_cold as f64 / m.packets.max(1) as f64,
            x.bytes_warm as f64 / m.packets.max(1) as f64,
            m.existing
                .map_or_else(|| "-".to_string(), |(a, n)| per(a, n)),
            per(x.silent.0, x.silent.1),
            x.peak_heap as f64 / 1048576.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label(3_000_000), "3M");
        assert_eq!(label(100_000), "100k");
        assert_eq!(label(1234), "1234");
    }

    #[test]
    fn median_of_odd_and_even() {
        let d = Duration::from_millis;
        assert_eq!(median(vec![d(3), d(1), d(2)]), d(2));
        assert_eq!(median(vec![d(4), d(1)]), d(4));
        assert_eq!(median(vec![]), Duration::ZERO);
    }

    #[test]
    fn peak_rss_reads_proc() {
        // Linux only; VmHWM is at least a few hundred KiB for any process.
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_rss_kib().is_some_and(|k| k > 100));
        }
    }
}
