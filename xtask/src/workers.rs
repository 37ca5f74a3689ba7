//! `cargo xtask workers`: packets per second of the flowscope-rss harness
//! with 1 and N workers, each a full `SessionDriver` (HTTP+TLS+DNS parsers),
//! every ended flow sent over the harness's channel to a counting sink.
//!
//! Feeds:
//! - **feeder**: one reader thread hashes and hands out batches
//!   (`FileFeeder`, what `flow-summary --workers N` uses); also run with the
//!   dispatcher's fast path off (every packet through the extractor), the
//!   reference it replaced;
//! - **whole-file**: every worker reads the whole file and keeps its share
//!   (`WholeFileShare`); with one worker, a worker reading the file itself;
//! - **pre-split (in memory)**: each worker's share already in memory before
//!   the clock starts, as hardware RSS queues would deliver it: the workers'
//!   own scaling, without any dispatch cost.
//!
//! Every run records, besides the wall time, each thread's CPU time (from
//! `/proc/thread-self/schedstat`, nanoseconds) and minor page faults, and
//! each worker's share of the packets. Runs are interleaved (every
//! configuration once, then again) so that load from other processes hits
//! them alike; the median run by wall time is reported. The baseline of each
//! ratio is the **best** single worker of the same input (file or memory).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use flowscope::capture::CaptureReader;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::extract::ExtractConfig;
use flowscope::proto::AppMessage;
use flowscope_core::{FlowEvent, LinkType, PacketView, Timestamp};
use flowscope_rss::dispatch::file::{FileFeeder, WholeFileShare, BATCH_PACKETS};
use flowscope_rss::dispatch::Dispatcher;
use flowscope_rss::harness::{Emitter, Harness, HarnessConfig, Totals};
use flowscope_rss::{Batch, PacketSource};

/// The scaling asked of N workers over one (issue 4: 2 workers, 1.8×).
const TARGET: f64 = 1.8;

/// `cargo xtask workers` options.
#[derive(Args)]
pub struct WorkersArgs {
    /// Capture to read (default: target/bench/mix-3M.pcap, made by `cargo xtask bench`).
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Workers of the parallel runs (compared with 1).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Passes per measurement (interleaved); the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Packets held in memory for the pre-split runs (default: the whole
    /// capture; 0 skips them).
    #[arg(long)]
    mem_packets: Option<usize>,
    /// Feeds to run (default all): feeder, whole-file, pre-split.
    #[arg(long, value_delimiter = ',')]
    feeds: Vec<FeedArg>,
    /// Only the single-thread cost of the feeder's steps (read, dispatch,
    /// copy), e.g. under `valgrind --tool=callgrind`.
    #[arg(long)]
    dispatch_only: bool,
    /// Packets read by the dispatch-cost loop (0 = the whole capture).
    #[arg(long, default_value_t = 0)]
    dispatch_packets: u64,
    /// Only this step of the dispatch-cost loop (one step per callgrind run).
    #[arg(long, value_enum)]
    dispatch_step: Option<Step>,
}

/// A feed, as `--feeds` names it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FeedArg {
    Feeder,
    WholeFile,
    PreSplit,
}

/// A step of the feeder, measured alone by the dispatch-cost loop.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Step {
    /// Read the capture only.
    Read,
    /// Read, and dispatch every packet through the extractor.
    Extractor,
    /// Read, and dispatch by the fast path.
    Fast,
    /// Read, dispatch by the fast path, copy into per-worker batches.
    FastCopy,
}

/// CPU time and minor page faults of one thread.
#[derive(Clone, Copy, Debug, Default)]
struct ThreadCost {
    cpu: Duration,
    minflt: u64,
}

/// The calling thread's CPU time and minor faults so far (zero where
/// `/proc/thread-self` is missing).
fn thread_sample() -> ThreadCost {
    let cpu = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default();
    // Field 10 of stat; the fields after the `(comm)` start at field 3.
    let minflt = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(7)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    ThreadCost { cpu, minflt }
}

/// What one thread did between `start` and now.
fn since(start: ThreadCost) -> ThreadCost {
    let now = thread_sample();
    ThreadCost {
        cpu: now.cpu.saturating_sub(start.cpu),
        minflt: now.minflt.saturating_sub(start.minflt),
    }
}

/// Records a worker thread's cost when its handler is dropped, which the
/// harness does on the worker's thread once its work is done.
struct WorkerMeter {
    worker: usize,
    start: ThreadCost,
    costs: Arc<Mutex<Vec<ThreadCost>>>,
}

impl Drop for WorkerMeter {
    fn drop(&mut self) {
        let c = since(self.start);
        if let Ok(mut v) = self.costs.lock() {
            if let Some(slot) = v.get_mut(self.worker) {
                *slot = c;
            }
        }
    }
}

/// A worker's share held in memory, laid out as a ring would hold it:
/// frames back to back, metadata beside.
struct MemShare {
    bytes: Vec<u8>,
    meta: Vec<(Timestamp, LinkType, u32, usize)>,
}

impl MemShare {
    fn new() -> Self {
        MemShare {
            bytes: Vec::new(),
            meta: Vec::new(),
        }
    }
    fn push(&mut self, p: &PacketView<'_>) {
        self.bytes.extend_from_slice(p.data);
        self.meta
            .push((p.ts, p.link_type, p.wire_len, self.bytes.len()));
    }
}

/// Delivers a [`MemShare`] in batches.
struct MemSource {
    share: Arc<MemShare>,
    next: usize,
    start: usize,
}

impl PacketSource for MemSource {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> std::io::Result<Batch> {
        let rest = self.share.meta.get(self.next..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(Batch::End);
        }
        let n = rest.len().min(BATCH_PACKETS);
        for &(ts, lt, wire, end) in rest.iter().take(n) {
            let data = self.share.bytes.get(self.start..end).unwrap_or(&[]);
            self.start = end;
            each(&PacketView::new(data, ts, lt).with_wire_len(wire));
        }
        self.next += n;
        Ok(Batch::Packets(n))
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct RunStats {
    packets: u64,
    wall: Duration,
    /// Packets per worker.
    shares: Vec<u64>,
    workers: Vec<ThreadCost>,
    feeder: Option<ThreadCost>,
    /// The calling thread: spawns, joins, and drains the event channel.
    sink: ThreadCost,
}

impl RunStats {
    /// The time this run needs when its threads' CPU time is all that
    /// counts: no thread can finish before its own CPU time, and `cores`
    /// cores cannot do more than `cores` seconds of work per second. Load
    /// from other processes inflates the wall time but hardly this.
    fn cpu_bound(&self, cores: f64) -> Duration {
        let threads = self
            .workers
            .iter()
            .chain(self.feeder.iter())
            .chain(std::iter::once(&self.sink));
        let (sum, max) = threads.fold((Duration::ZERO, Duration::ZERO), |(s, m), c| {
            (s + c.cpu, m.max(c.cpu))
        });
        max.max(sum.div_f64(cores))
    }
}

fn handler(
    i: usize,
    costs: &Arc<Mutex<Vec<ThreadCost>>>,
) -> impl FnMut(DriverEvent<'_, AppMessage>, &mut Emitter<'_, u64>) {
    let meter = WorkerMeter {
        worker: i,
        start: thread_sample(),
        costs: Arc::clone(costs),
    };
    move |ev, out| {
        let _ = &meter;
        if let DriverEvent::Flow {
            event: FlowEvent::Ended(rec),
            ..
        } = ev
        {
            out.emit(rec.stats.packets());
        }
    }
}

type Feed<'a> = Box<dyn FnOnce() -> ThreadCost + Send + 'a>;

/// Runs the harness once over `sources` (plus `feed` on its own thread).
fn pass(n: usize, sources: Vec<Box<dyn PacketSource>>, feed: Option<Feed<'_>>) -> Result<RunStats> {
    let harness = Harness::new(n, HarnessConfig::default());
    let costs = Arc::new(Mutex::new(vec![ThreadCost::default(); n]));
    let start = Instant::now();
    let sink_start = thread_sample();
    let mut flow_packets = 0u64;
    let (reports, feeder) = std::thread::scope(|s| {
        let feeder = feed.and_then(|f| {
            std::thread::Builder::new()
                .name("feeder".into())
                .spawn_scoped(s, f)
                .ok()
        });
        let reports = harness.run(
            sources,
            |_| SessionDriver::with_default_parsers(SessionConfig::default()),
            |i| handler(i, &costs),
            |p| flow_packets += p,
        );
        (reports, feeder.and_then(|h| h.join().ok()))
    });
    let reports = reports?;
    let sink = since(sink_start);
    let wall = start.elapsed();
    let t = Totals::of(&reports);
    anyhow::ensure!(t.counters.is_balanced(), "packets not accounted for");
    let workers = costs.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(RunStats {
        packets: t.counters.packets,
        wall,
        shares: reports.iter().map(|r| r.stats.packets).collect(),
        workers,
        feeder,
        sink,
    })
}

/// One configuration of the benchmark.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `FileFeeder`, the dispatcher's fast path on or off.
    Feeder {
        fast: bool,
    },
    WholeFile,
    PreSplit,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Feeder { fast: true } => "feeder",
            Mode::Feeder { fast: false } => "feeder (extractor dispatch)",
            Mode::WholeFile => "whole-file",
            Mode::PreSplit => "pre-split (in memory)",
        }
    }
    /// The input a single worker is compared on.
    fn in_memory(self) -> bool {
        self == Mode::PreSplit
    }
}

struct Bench<'a> {
    path: &'a Path,
    /// Pre-split shares for N workers and the same packets for one.
    mem: Option<(Vec<Arc<MemShare>>, Arc<MemShare>)>,
}

impl Bench<'_> {
    fn run(&self, mode: Mode, w: usize) -> Result<RunStats> {
        let path = self.path;
        match mode {
            Mode::Feeder { fast } => {
                let reader = CaptureReader::open(path).context("open capture")?;
                let d = Dispatcher::new(ExtractConfig::default(), w, true).with_fast_path(fast);
                let (feeder, sources) = FileFeeder::new(reader, d);
                let sources = sources
                    .into_iter()
                    .map(|s| Box::new(s) as Box<dyn PacketSource>)
                    .collect();
                let feed: Feed<'_> = Box::new(move || {
                    let start = thread_sample();
                    feeder.run(&mut |_| {});
                    since(start)
                });
                pass(w, sources, Some(feed))
            }
            Mode::WholeFile => {
                let d = Dispatcher::new(ExtractConfig::default(), w, true);
                let sources = (0..w)
                    .map(|me| -> Result<Box<dyn PacketSource>> {
                        let reader = CaptureReader::open(path).context("open capture")?;
                        Ok(Box::new(WholeFileShare::new(reader, d.clone(), me)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                pass(w, sources, None)
            }
            Mode::PreSplit => {
                let Some((shares, all)) = &self.mem else {
                    anyhow::bail!("no pre-split shares loaded");
                };
                let sets = if w == 1 {
                    std::slice::from_ref(all)
                } else {
                    shares.as_slice()
                };
                let sources = sets
                    .iter()
                    .map(|s| {
                        Box::new(MemSource {
                            share: Arc::clone(s),
                            next: 0,
                            start: 0,
                        }) as Box<dyn PacketSource>
                    })
                    .collect();
                pass(sets.len(), sources, None)
            }
        }
    }
}

/// Loads the first `limit` packets of `path`, whole and split for `n` workers.
fn load_shares(path: &Path, n: usize, limit: usize) -> Result<(Vec<Arc<MemShare>>, Arc<MemShare>)> {
    let mut reader = CaptureReader::open(path).context("open capture")?;
    let mut d = Dispatcher::new(ExtractConfig::default(), n, true);
    let mut shares: Vec<MemShare> = (0..n).map(|_| MemShare::new()).collect();
    let mut all = MemShare::new();
    while all.meta.len() < limit {
        let Some(p) = reader.next_packet()? else {
            break;
        };
        d.dispatch(&p, &mut |w, p| {
            if let Some(s) = shares.get_mut(w) {
                s.push(p);
            }
        });
        all.push(&p);
    }
    // Fragments still held (their first fragment never came).
    d.flush(&mut |w, p| {
        if let Some(s) = shares.get_mut(w) {
            s.push(p);
        }
    });
    Ok((shares.into_iter().map(Arc::new).collect(), Arc::new(all)))
}

fn median_run(mut runs: Vec<RunStats>) -> RunStats {
    runs.sort_by_key(|r| r.wall);
    let mid = runs.len() / 2;
    runs.into_iter().nth(mid).unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Runs the workers-scaling benchmark.
pub fn run(args: &WorkersArgs) -> Result<()> {
    let path = args
        .capture
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench/mix-3M.pcap"));
    let n = args.workers.max(2);
    dispatch_cost(&path, n, args.dispatch_packets, args.dispatch_step)?;
    if args.dispatch_only {
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let mem_packets = args.mem_packets.unwrap_or(usize::MAX);
    let wants = |f: FeedArg| args.feeds.is_empty() || args.feeds.contains(&f);
    let mem = (mem_packets > 0 && wants(FeedArg::PreSplit))
        .then(|| load_shares(&path, n, mem_packets))
        .transpose()?;
    let bench = Bench { path: &path, mem };

    let mut configs = Vec::new();
    if wants(FeedArg::Feeder) {
        configs.extend([
            (Mode::Feeder { fast: true }, 1),
            (Mode::Feeder { fast: true }, n),
            (Mode::Feeder { fast: false }, n),
        ]);
    }
    if wants(FeedArg::WholeFile) {
        configs.extend([(Mode::WholeFile, 1), (Mode::WholeFile, n)]);
    }
    if bench.mem.is_some() {
        configs.extend([(Mode::PreSplit, 1), (Mode::PreSplit, n)]);
    }
    // Interleaved: every configuration once per round.
    let mut runs: Vec<Vec<RunStats>> = vec![Vec::new(); configs.len()];
    for _ in 0..args.repeat.max(1) {
        for (i, &(mode, w)) in configs.iter().enumerate() {
            let r = bench.run(mode, w)?;
            if let Some(v) = runs.get_mut(i) {
                v.push(r);
            }
        }
    }
    let results: Vec<(Mode, usize, RunStats)> = configs
        .iter()
        .zip(runs)
        .map(|(&(m, w), r)| (m, w, median_run(r)))
        .collect();
    let rate = |r: &RunStats, t: Duration| r.packets as f64 / t.as_secs_f64().max(1e-9);
    // The best single worker of each input, by wall time and by CPU bound.
    let best = |mem: bool, by: &dyn Fn(&RunStats) -> f64| {
        results
            .iter()
            .filter(|(m, w, _)| *w == 1 && m.in_memory() == mem)
            .map(|(_, _, r)| by(r))
            .fold(0.0, f64::max)
    };
    let wall_rate = |r: &RunStats| rate(r, r.wall);
    let cpu_rate = |r: &RunStats| rate(r, r.cpu_bound(cores));

    println!(
        "\n| feed | workers | packets | median s | Mpkt/s | vs best 1 worker | CPU-bound Mpkt/s | vs best 1 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (m, w, r) in &results {
        println!(
            "| {} | {w} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            m.label(),
            r.packets,
            secs(r.wall),
            wall_rate(r) / 1e6,
            wall_rate(r) / best(m.in_memory(), &wall_rate),
            cpu_rate(r) / 1e6,
            cpu_rate(r) / best(m.in_memory(), &cpu_rate),
        );
    }
    println!(
        "\n| feed | workers | packet shares | worker CPU s | worker minor faults | feeder CPU s | sink CPU s |"
    );
    println!("|---|---:|---|---|---|---:|---:|");
    for (m, w, r) in &results {
        let total = r.shares.iter().sum::<u64>().max(1) as f64;
        let join = |v: Vec<String>| v.join(" / ");
        println!(
            "| {} | {w} | {} | {} | {} | {} | {} |",
            m.label(),
            join(
                r.shares
                    .iter()
                    .map(|s| format!("{:.1}%", *s as f64 * 100.0 / total))
                    .collect()
            ),
            join(r.workers.iter().map(|c| secs(c.cpu)).collect()),
            join(r.workers.iter().map(|c| c.minflt.to_string()).collect()),
            r.feeder.map_or("-".into(), |c| secs(c.cpu)),
            secs(r.sink.cpu),
        );
    }
    let verdict = |by: &dyn Fn(&RunStats) -> f64| -> String {
        results
            .iter()
            .filter(|(_, w, _)| *w == n)
            .map(|(m, _, r)| {
                let x = by(r) / best(m.in_memory(), by);
                let ok = if x >= TARGET { "met" } else { "NOT met" };
                format!("{} {x:.2}x ({ok})", m.label())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nVERDICT {n} workers vs best 1 worker, wall clock (target >= {TARGET:.2}x): {}",
        verdict(&wall_rate)
    );
    println!(
        "CPU-bound estimate (threads' CPU time on {cores} cores, load-independent): {}",
        verdict(&cpu_rate)
    );
    Ok(())
}

/// A worker's batch as the feeder fills it: frame bytes, per-packet meta.
type Lane = (Vec<u8>, Vec<(Timestamp, u32, usize)>);

/// The feeder's steps on one thread, in thread CPU time per packet: read
/// only; read and dispatch through the extractor; read and dispatch by the
/// fast path; and that plus the copy into per-worker batches.
fn dispatch_cost(path: &Path, n: usize, limit: u64, only: Option<Step>) -> Result<()> {
    let steps = [
        (Step::Read, "read"),
        (Step::Extractor, "read + dispatch (extractor)"),
        (Step::Fast, "read + dispatch (fast path)"),
        (
            Step::FastCopy,
            "read + dispatch (fast path) + copy to batches",
        ),
    ];
    println!("| feeder step ({n} workers) | packets | ns/packet (thread CPU) | fast path |");
    println!("|---|---:|---:|---:|");
    for (step, label) in steps {
        if only.is_some_and(|o| o != step) {
            continue;
        }
        let mut reader = CaptureReader::open(path).context("open capture")?;
        let fast = !matches!(step, Step::Extractor);
        let mut d = Dispatcher::new(ExtractConfig::default(), n, true).with_fast_path(fast);
        let mut lanes: Vec<Lane> = (0..n)
            .map(|_| {
                (
                    Vec::with_capacity(512 << 10),
                    Vec::with_capacity(BATCH_PACKETS),
                )
            })
            .collect();
        let (mut packets, mut sum) = (0u64, 0usize);
        let start = thread_sample();
        while let Some(p) = reader.next_packet()? {
            packets += 1;
            let mut deliver = |w: usize, p: &PacketView<'_>| {
                sum = sum.wrapping_add(w);
                if let (Step::FastCopy, Some((bytes, meta))) = (step, lanes.get_mut(w)) {
                    bytes.extend_from_slice(p.data);
                    meta.push((p.ts, p.wire_len, bytes.len()));
                    if meta.len() >= BATCH_PACKETS {
                        bytes.clear();
                        meta.clear();
                    }
                }
            };
            match step {
                Step::Read => deliver(p.data.len(), &p),
                _ => d.dispatch(&p, &mut deliver),
            }
            if limit > 0 && packets >= limit {
                break;
            }
        }
        let cost = since(start);
        std::hint::black_box(sum);
        let c = d.counters();
        let hits = c.fast as f64 * 100.0 / (c.fast + c.extracted).max(1) as f64;
        println!(
            "| {label} | {packets} | {:.1} | {} |",
            cost.cpu.as_nanos() as f64 / packets.max(1) as f64,
            if matches!(step, Step::Fast | Step::FastCopy) {
                format!("{hits:.1}%")
            } else {
                "-".into()
            }
        );
    }
    Ok(())
}
