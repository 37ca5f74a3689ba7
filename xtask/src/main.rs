//! `cargo xtask`: project chores for flowscope.
//!
//! - `gen`: a deterministic synthetic traffic generator (classic pcap).
//! - `gen-sample`: regenerates `samples/sample.pcap`, the README's capture.
//! - `mix`: a large real-traffic capture built from the corpus captures.
//! - `bench`: times the flow-summary pipeline stages on captures in memory.
//! - `build-bpf`: compiles the prefilter's XDP program with clang.
//! - `fuzz`: seeds and runs the cargo-fuzz targets of `fuzz/` (nightly).
//! - `ci`: fmt check, clippy with `-D warnings`, tests; stops at the first failure.

mod bench;
mod bpf;
mod ci;
mod flood;
mod fuzz;
mod gen;
mod mix;
mod workers;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

/// Counts allocations so `bench` can report allocations per packet.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "flowscope project chores")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic synthetic capture (classic pcap, Ethernet).
    Gen(GenArgs),
    /// Regenerate samples/sample.pcap (the README's sample capture).
    GenSample {
        /// Where to write it (default: `<workspace>/samples/sample.pcap`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build a large real-traffic capture from the corpus captures, repeated
    /// with remapped addresses (see docs/performance.md).
    Mix(mix::MixArgs),
    /// Write a deterministic adversarial capture (`--scenario syn`: 1 M unique SYNs).
    Flood(flood::FloodArgs),
    /// Time the pipeline stages (read, extract, track) on captures held in memory.
    Bench(bench::BenchArgs),
    /// Packets/s of the flowscope-rss workers: 1 vs N, three ways of feeding them.
    Workers(workers::WorkersArgs),
    /// Compile the prefilter's XDP program (clang -O2 -g -target bpf) into target/bpf/.
    BuildBpf(bpf::BuildBpfArgs),
    /// Run fmt --check, clippy -D warnings and the tests, stopping at the first failure.
    Ci,
    /// Run every cargo-fuzz target (or one) for N seconds each, with seeds
    /// from the corpus and generated captures (needs nightly + cargo-fuzz).
    Fuzz(fuzz::FuzzArgs),
}

#[derive(Args)]
struct GenArgs {
    /// Flows to start (sets the mean flow size to packets / flows).
    #[arg(long, default_value_t = 30_000)]
    flows: u64,
    /// Packets to write (exact unless --complete).
    #[arg(long, default_value_t = 3_000_000)]
    packets: u64,
    /// PRNG seed: the same seed always gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of flows that are UDP (0..1).
    #[arg(long, default_value_t = 0.3)]
    udp_share: f64,
    /// Start exactly --flows flows and let every one finish (packet count then varies).
    #[arg(long)]
    complete: bool,
    /// Output file, `-` for standard output.
    #[arg(long, default_value = "synthetic.pcap")]
    out: PathBuf,
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Gen(a) => {
            let cfg = gen::GenConfig {
                flows: a.flows.max(1),
                packets: a.packets,
                seed: a.seed,
                udp_share: a.udp_share.clamp(0.0, 1.0),
                complete: a.complete,
                ..gen::GenConfig::default()
            };
            write_capture(&cfg, &a.out)
        }
        Cmd::GenSample { out } => {
            let out = out.unwrap_or_else(sample_path);
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            write_capture(&gen::GenConfig::sample(), &out)
        }
        Cmd::Mix(a) => mix::run(&a),
        Cmd::Flood(a) => flood::run(&a),
        Cmd::Bench(a) => bench::run(&a),
        Cmd::Workers(a) => workers::run(&a),
        Cmd::BuildBpf(a) => bpf::run(&a, &workspace_root()),
        Cmd::Ci => ci::run(),
        Cmd::Fuzz(a) => fuzz::run(&a, &workspace_root()),
    }
}

/// The workspace root (xtask sits one level below it).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Where the README's sample capture lives.
fn sample_path() -> PathBuf {
    workspace_root().join("samples").join("sample.pcap")
}

/// Generates `cfg` into `out` (`-` = stdout) and reports on stderr.
pub fn write_capture(cfg: &gen::GenConfig, out: &Path) -> Result<()> {
    let start = Instant::now();
    let summary = if out.as_os_str() == "-" {
        let stdout = std::io::stdout().lock();
        let (s, mut w) = gen::generate(cfg, BufWriter::with_capacity(1 << 20, stdout))?;
        w.flush()?;
        s
    } else {
        // Write beside the target and rename, so an interrupted run never
        // leaves a truncated capture under the final name.
        let tmp = out.with_extension("pcap.partial");
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let (s, w) = gen::generate(cfg, BufWriter::with_capacity(1 << 20, file))?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
        s
    };
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} packets, {:.1} MB of frames, {} flows ({} TCP, {} IPv6, {} VLAN), {:.1} s of traffic, to {} in {:.2} s ({:.2} Mpkt/s)",
        summary.packets,
        summary.frame_bytes as f64 / 1e6,
        summary.flows,
        summary.tcp_flows,
        summary.v6_flows,
        summary.vlan_flows,
        summary.last_ns.saturating_sub(summary.first_ns) as f64 / 1e9,
        out.display(),
        secs,
        summary.packets as f64 / secs.max(1e-9) / 1e6,
    );
    Ok(())
}
