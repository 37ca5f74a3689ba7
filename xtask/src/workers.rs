//! `cargo xtask workers`: packets per second of the flowscope-rss harness
//! with 1 and N workers, each a full `SessionDriver` (HTTP+TLS+DNS parsers),
//! every ended flow sent over the harness's channel to a counting sink.
//!
//! Feeds:
//! - **feeder**: one reader thread hashes and hands out batches
//!   (`FileFeeder`, what `flow-summary --workers N` uses);
//! - **whole-file**: every worker reads the whole file and keeps its share
//!   (`WholeFileShare`);
//! - **pre-split (in memory)**: each worker's share already in memory before
//!   the clock starts, as hardware RSS queues would deliver it: the workers'
//!   own scaling, without any dispatch cost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use flowscope::capture::CaptureReader;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::extract::ExtractConfig;
use flowscope::proto::AppMessage;
use flowscope_core::{FlowEvent, LinkType, PacketView, Timestamp};
use flowscope_rss::dispatch::file::{FileFeeder, WholeFileShare};
use flowscope_rss::dispatch::Dispatcher;
use flowscope_rss::harness::{Emitter, Harness, HarnessConfig, Totals};
use flowscope_rss::{Batch, PacketSource};

/// `cargo xtask workers` options.
#[derive(Args)]
pub struct WorkersArgs {
    /// Capture to read (default: target/bench/mix-3M.pcap, made by `cargo xtask bench`).
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Workers of the parallel runs (compared with 1).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Passes per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Packets held in memory for the pre-split runs (0 = skip them).
    #[arg(long, default_value_t = 1_000_000)]
    mem_packets: usize,
}

type Share = Vec<(Timestamp, LinkType, u32, Vec<u8>)>;

/// A worker's share held in memory.
struct MemShare {
    frames: std::sync::Arc<Share>,
    next: usize,
}

impl PacketSource for MemShare {
    fn next_batch(&mut self, each: &mut dyn FnMut(&PacketView<'_>)) -> std::io::Result<Batch> {
        let rest = self.frames.get(self.next..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(Batch::End);
        }
        let n = rest.len().min(256);
        for (ts, lt, wire, data) in rest.iter().take(n) {
            each(&PacketView::new(data, *ts, *lt).with_wire_len(*wire));
        }
        self.next += n;
        Ok(Batch::Packets(n))
    }
}

fn handler(_: usize) -> impl FnMut(DriverEvent<'_, AppMessage>, &mut Emitter<'_, u64>) {
    |ev, out| {
        if let DriverEvent::Flow {
            event: FlowEvent::Ended(rec),
            ..
        } = ev
        {
            out.emit(rec.stats.packets());
        }
    }
}

/// Runs the harness once over `sources` (plus `feed` on its own thread);
/// returns (packets, elapsed).
fn pass(
    n: usize,
    sources: Vec<Box<dyn PacketSource>>,
    feed: Option<Box<dyn FnOnce() + Send + '_>>,
) -> Result<(u64, Duration)> {
    let harness = Harness::new(n, HarnessConfig::default());
    let start = Instant::now();
    let mut flow_packets = 0u64;
    let reports = std::thread::scope(|s| {
        if let Some(f) = feed {
            s.spawn(f);
        }
        harness.run(
            sources,
            |_| SessionDriver::with_default_parsers(SessionConfig::default()),
            handler,
            |p| flow_packets += p,
        )
    })?;
    let elapsed = start.elapsed();
    let t = Totals::of(&reports);
    anyhow::ensure!(t.counters.is_balanced(), "packets not accounted for");
    Ok((t.counters.packets, elapsed))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the workers-scaling benchmark.
pub fn run(args: &WorkersArgs) -> Result<()> {
    let path = args
        .capture
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench/mix-3M.pcap"));
    let n = args.workers.max(2);
    println!(
        "| feed | workers | packets | median s | Mpkt/s | vs 1 worker |\n|---|---:|---:|---:|---:|---:|"
    );
    let measure =
        |label: &str, w: usize, run: &dyn Fn() -> Result<(u64, Duration)>| -> Result<f64> {
            let mut times = Vec::new();
            let mut packets = 0;
            for _ in 0..args.repeat.max(1) {
                let (p, t) = run()?;
                packets = p;
                times.push(t);
            }
            let t = median(times);
            let rate = packets as f64 / t.as_secs_f64() / 1e6;
            Ok((rate, label, w, packets, t)).map(|(rate, label, w, packets, t)| {
                print!(
                    "| {label} | {w} | {packets} | {:.3} | {rate:.2} |",
                    t.as_secs_f64()
                );
                rate
            })
        };
    let feeder = |w: usize| -> Result<(u64, Duration)> {
        let reader = CaptureReader::open(&path).context("open capture")?;
        let (feeder, sources) =
            FileFeeder::new(reader, Dispatcher::new(ExtractConfig::default(), w, true));
        let sources = sources
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn PacketSource>)
            .collect();
        pass(
            w,
            sources,
            Some(Box::new(move || {
                feeder.run(&mut |_| {});
            })),
        )
    };
    let whole = |w: usize| -> Result<(u64, Duration)> {
        let d = Dispatcher::new(ExtractConfig::default(), w, true);
        let sources = (0..w)
            .map(|me| -> Result<Box<dyn PacketSource>> {
                let reader = CaptureReader::open(&path).context("open capture")?;
                Ok(Box::new(WholeFileShare::new(reader, d.clone(), me)))
            })
            .collect::<Result<Vec<_>>>()?;
        pass(w, sources, None)
    };
    let one = measure("feeder", 1, &|| feeder(1))?;
    println!(" 1.00 |");
    let r = measure("feeder", n, &|| feeder(n))?;
    println!(" {:.2} |", r / one);
    let r = measure("whole-file", n, &|| whole(n))?;
    println!(" {:.2} |", r / one);
    if args.mem_packets > 0 {
        // Pre-split shares of the first packets, loaded before timing.
        let mut reader = CaptureReader::open(&path).context("open capture")?;
        let mut d = Dispatcher::new(ExtractConfig::default(), n, true);
        let mut shares: Vec<Share> = vec![Vec::new(); n];
        let mut all: Share = Vec::new();
        while all.len() < args.mem_packets {
            let Some(p) = reader.next_packet()? else {
                break;
            };
            let f = (p.ts, p.link_type, p.wire_len, p.data.to_vec());
            if let Some(s) = shares.get_mut(d.worker_for(&p)) {
                s.push(f.clone());
            }
            all.push(f);
        }
        let all = std::sync::Arc::new(all);
        let shares: Vec<_> = shares.into_iter().map(std::sync::Arc::new).collect();
        let mem = |sets: &[std::sync::Arc<Share>]| -> Result<(u64, Duration)> {
            let sources = sets
                .iter()
                .map(|f| {
                    Box::new(MemShare {
                        frames: f.clone(),
                        next: 0,
                    }) as Box<dyn PacketSource>
                })
                .collect();
            pass(sets.len(), sources, None)
        };
        let one_mem = measure("pre-split (in memory)", 1, &|| {
            mem(std::slice::from_ref(&all))
        })?;
        println!(" 1.00 |");
        let r = measure("pre-split (in memory)", n, &|| mem(&shares))?;
        println!(" {:.2} |", r / one_mem);
    }
    Ok(())
}
