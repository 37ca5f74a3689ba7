//! `cargo xtask fuzz`: extracts seed corpora, then runs each cargo-fuzz
//! target of `fuzz/` for a fixed time and summarises libFuzzer's results.
//!
//! Needs a nightly toolchain and cargo-fuzz; without them it says which is
//! missing and exits successfully ("skipped"), so CI can call it anywhere.
//! Seeds go to `target/fuzz-seeds/<target>/` (rewritten each run, never in
//! the repository), inputs libFuzzer finds to `target/fuzz-corpus/<target>/`
//! (kept between runs), crash reproducers to `target/fuzz-artifacts/<target>/`
//! and libFuzzer's output to `target/fuzz-logs/<target>.log`.

mod seeds;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::gen;

/// Every target of `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 9] = [
    "capture_reader",
    "extract",
    "tracker",
    "reassembler",
    "defrag",
    "http",
    "tls",
    "dns",
    "session_driver",
];

/// Arguments of `cargo xtask fuzz`.
#[derive(Args)]
pub struct FuzzArgs {
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Run only this target (default: all).
    #[arg(long)]
    target: Option<String>,
    /// Build without AddressSanitizer (faster build and runs; the library
    /// forbids unsafe code, so ASan only watches dependencies).
    #[arg(long)]
    no_sanitizer: bool,
    /// Write the seed corpora and stop.
    #[arg(long)]
    seeds_only: bool,
}

/// What one target's run gave.
#[derive(Debug, Default, PartialEq, Eq)]
struct RunSummary {
    execs: u64,
    cov: u64,
    ft: u64,
    corpus: u64,
    seconds: u64,
    crash: Option<String>,
}

/// Runs `cargo xtask fuzz`.
pub fn run(args: &FuzzArgs, root: &Path) -> Result<()> {
    let targets: Vec<&str> = match &args.target {
        Some(t) => match TARGETS.iter().find(|x| **x == t.as_str()) {
            Some(t) => vec![*t],
            None => bail!("unknown fuzz target {t:?}; targets: {}", TARGETS.join(", ")),
        },
        None => TARGETS.to_vec(),
    };
    if !args.seeds_only {
        if let Err(why) = tools_available() {
            println!("fuzz: skipped: {why}");
            return Ok(());
        }
    }
    let target_dir = root.join("target");
    let seeds_dir = target_dir.join("fuzz-seeds");
    write_seeds(root, &seeds_dir, &targets)?;
    if args.seeds_only {
        return Ok(());
    }
    let fuzz_dir = root.join("fuzz");
    let sanitizer = if args.no_sanitizer { "none" } else { "address" };
    let build = Instant::now();
    let status = Command::new("cargo")
        .args(["+nightly", "fuzz", "build", "--sanitizer", sanitizer])
        .current_dir(&fuzz_dir)
        .status()
        .context("running cargo +nightly fuzz build")?;
    if !status.success() {
        bail!("cargo +nightly fuzz build failed");
    }
    println!("fuzz: built in {:.0} s", build.elapsed().as_secs_f64());
    let mut results = Vec::new();
    for t in &targets {
        let s = run_target(t, args.seconds, sanitizer, &fuzz_dir, &target_dir)?;
        println!("{}", summary_line(t, &s));
        results.push((*t, s));
    }
    println!("fuzz: summary ({} s per target)", args.seconds);
    for (t, s) in &results {
        println!("{}", summary_line(t, s));
    }
    let crashed: Vec<&str> = results
        .iter()
        .filter(|(_, s)| s.crash.is_some())
        .map(|(t, _)| *t)
        .collect();
    if !crashed.is_empty() {
        bail!("fuzz targets crashed: {}", crashed.join(", "));
    }
    Ok(())
}

fn summary_line(t: &str, s: &RunSummary) -> String {
    let crash = match &s.crash {
        Some(path) => format!("1 ({path})"),
        None => "0".to_string(),
    };
    format!(
        "fuzz {t:>15}: {:>10} execs in {:>4} s, cov {:>5} ft {:>6}, corpus {:>5}, crashes {crash}",
        s.execs, s.seconds, s.cov, s.ft, s.corpus
    )
}

/// Why fuzzing cannot run here, if it cannot.
fn tools_available() -> Result<(), String> {
    let ok = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&["+nightly", "--version"]) {
        return Err("no nightly toolchain (rustup toolchain install nightly)".into());
    }
    if !ok(&["+nightly", "fuzz", "--version"]) {
        return Err("cargo-fuzz is not installed (cargo install cargo-fuzz)".into());
    }
    Ok(())
}

/// The corpus folder: `$FLOWSCOPE_CORPUS`, else `../shared/corpus` beside
/// the workspace (as the corpus tests find it).
fn corpus_dir(root: &Path) -> PathBuf {
    std::env::var_os("FLOWSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared").join("corpus"))
}

fn write_seeds(root: &Path, dir: &Path, targets: &[&str]) -> Result<()> {
    let start = Instant::now();
    let corpus = corpus_dir(root);
    let mut captures = seeds::corpus_captures(&corpus)?;
    if captures.is_empty() {
        println!(
            "fuzz: corpus not found at {} (FLOWSCOPE_CORPUS): generated seeds only",
            corpus.display()
        );
    }
    // Generated fixtures: the README's sample and a busier mix.
    let busy = gen::GenConfig {
        flows: 60,
        packets: 1500,
        seed: 7,
        complete: true,
        max_flow_bytes: 20_000,
        ..gen::GenConfig::default()
    };
    for (name, cfg) in [("gen-sample", gen::GenConfig::sample()), ("gen-busy", busy)] {
        let (_, bytes) = gen::generate(&cfg, Vec::new()).context("generating a seed capture")?;
        captures.push(seeds::Capture {
            name: name.to_string(),
            bytes,
        });
    }
    let mut all = seeds::Seeds::default();
    all.add_defrag_fixtures();
    for c in &captures {
        all.add_capture(c);
    }
    let counts = all.write(dir, targets)?;
    let list: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "fuzz: seeds from {} captures in {} ({:.1} s): {}",
        captures.len(),
        dir.display(),
        start.elapsed().as_secs_f64(),
        list.join(", ")
    );
    Ok(())
}

fn run_target(
    t: &str,
    seconds: u64,
    sanitizer: &str,
    fuzz_dir: &Path,
    target_dir: &Path,
) -> Result<RunSummary> {
    let corpus = target_dir.join("fuzz-corpus").join(t);
    let seeds = target_dir.join("fuzz-seeds").join(t);
    let artifacts = target_dir.join("fuzz-artifacts").join(t);
    let logs = target_dir.join("fuzz-logs");
    for d in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log_path = logs.join(format!("{t}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let start = Instant::now();
    let status = Command::new("cargo")
        .args(["+nightly", "fuzz", "run", "--sanitizer", sanitizer, t])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // A slow input is a finding too (no quadratic paths).
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .current_dir(fuzz_dir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("running fuzz target {t}"))?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let mut s = parse_log(&text);
    s.seconds = start.elapsed().as_secs();
    if !status.success() && s.crash.is_none() {
        s.crash = Some(format!("exit {status}, see {}", log_path.display()));
    }
    Ok(s)
}

/// Reads libFuzzer's output: the last status line (`#N ... cov: C ft: F
/// corp: K/...`), the final `stat::number_of_executed_units`, and the
/// reproducer of a crash (`Test unit written to PATH`).
fn parse_log(text: &str) -> RunSummary {
    let mut s = RunSummary::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        let v = words.next()?;
        v.split('/').next()?.parse().ok()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            if let Some(n) = line
                .get(1..)
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
            {
                s.execs = s.execs.max(n);
            }
            if let Some(v) = field(line, "cov:") {
                s.cov = v;
            }
            if let Some(v) = field(line, "ft:") {
                s.ft = v;
            }
            if let Some(v) = field(line, "corp:") {
                s.corpus = v;
            }
        } else if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            if let Ok(n) = v.trim().parse() {
                s.execs = s.execs.max(n);
            }
        } else if let Some(p) = line.split("Test unit written to ").nth(1) {
            s.crash = Some(p.trim().to_string());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_output() {
        // Shapes copied from libFuzzer's FuzzerLoop.cpp PrintStats /
        // PrintFinalStats output format.
        let log = "INFO: Seed: 1\n\
            #2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
            #4096\tpulse  cov: 120 ft: 300 corp: 40/2Kb lim: 43 exec/s: 2048 rss: 40Mb\n\
            #153824\tDONE   cov: 1234 ft: 5678 corp: 321/20Kb lim: 4096 exec/s: 30764 rss: 60Mb\n\
            Done 153824 runs in 5 second(s)\n\
            stat::number_of_executed_units: 153824\n";
        let s = parse_log(log);
        assert_eq!(
            (s.execs, s.cov, s.ft, s.corpus, s.crash),
            (153_824, 1234, 5678, 321, None)
        );
        let crash = "#10\tNEW    cov: 5 ft: 5 corp: 2/3b\n\
            ==1== ERROR: libFuzzer: deadly signal\n\
            artifact_prefix='a/'; Test unit written to a/crash-abc\n";
        assert_eq!(parse_log(crash).crash.as_deref(), Some("a/crash-abc"));
    }
}
