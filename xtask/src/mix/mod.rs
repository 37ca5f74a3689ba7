//! `cargo xtask mix`: a large real-traffic capture made from the corpus.
//!
//! Every readable capture of the corpus is loaded (Ethernet frames as they
//! are; raw-IP frames get a synthetic Ethernet header), and the whole set is
//! repeated until the requested packet count is reached:
//!
//! - **distinct flows**: repetition `r` XORs `r` into two bytes of every IPv4
//!   and IPv6 address, tunnels' inner addresses included ([`remap`]), with
//!   the IPv4 header, TCP, UDP, ICMPv6 and GRE checksums patched
//!   incrementally (RFC 1624), so checksum verdicts are unchanged;
//! - **time**: each file's packets keep their spacing, except that a gap
//!   longer than [`MAX_GAP_NS`] is shortened to it and a step backwards
//!   becomes 0 (some corpus files span years or go back in time). Copy
//!   `(r, f)` starts at `r * STRIDE_NS` plus a deterministic jitter below
//!   `STRIDE_NS`, and all copies are merged by time, so files and
//!   repetitions interleave the way concurrent hosts do;
//! - **determinism**: files are taken in name order, jitter comes from a
//!   fixed hash, ties break by (repetition, file, packet index): the same
//!   corpus always gives the same bytes.
//!
//! The first `--packets` packets in time order are written (classic pcap,
//! Ethernet, µs timestamps, the original wire lengths), so the last
//! repetitions are cut short. Every written packet is also extracted twice
//! (as captured and as remapped, checksums verified) to prove the remapping
//! changed no verdict; the composition goes to stderr.

mod remap;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Cursor};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use flowscope::capture::CaptureReader;
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{
    ChecksumStatus, FiveTuple, FlowExtractor, LinkType, PacketView, Skip, Timestamp,
};

use crate::gen::pcap::{PcapWriter, SNAPLEN};

/// Longest gap kept between two packets of one file (longer ones shrink).
pub const MAX_GAP_NS: u64 = 30_000_000_000;
/// Spacing of repetitions' start times (each copy of a file starts at a
/// jittered point inside its repetition's stride).
pub const STRIDE_NS: u64 = 10_000_000_000;
/// Time of the first packet: 2023-11-14T22:13:20Z, as `cargo xtask gen`.
const START_NS: u64 = 1_700_000_000 * 1_000_000_000;

/// Options of `cargo xtask mix`.
#[derive(Args, Debug)]
pub struct MixArgs {
    /// Output capture (default `target/bench/corpus-mix-<N>.pcap`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Packets to write.
    #[arg(long, default_value_t = 3_000_000)]
    pub packets: u64,
}

/// The corpus folder: `$FLOWSCOPE_CORPUS`, else `../shared/corpus/pcaps`
/// beside the workspace.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("FLOWSCOPE_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => crate::workspace_root().join("../shared/corpus/pcaps"),
    }
}

/// Where the mix of `packets` packets is written by default.
pub fn default_path(packets: u64) -> PathBuf {
    crate::workspace_root()
        .join("target")
        .join("bench")
        .join(format!("corpus-mix-{}.pcap", crate::bench::label(packets)))
}

/// Runs `cargo xtask mix`.
pub fn run(a: &MixArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| default_path(a.packets));
    build(&corpus_dir(), a.packets, &out)
}

/// One corpus capture, loaded.
struct Source {
    name: String,
    /// Ethernet frames with their original wire lengths.
    frames: Vec<(Vec<u8>, u32)>,
    /// Time of each frame from the file's start, gaps capped.
    rel_ns: Vec<u64>,
}

/// Loads one capture; `Err` = skipped, with the reason.
fn load(path: &Path) -> Result<Source, String> {
    let data = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let mut r = CaptureReader::new(Cursor::new(&data[..])).map_err(|e| format!("{e}"))?;
    let (mut frames, mut rel_ns) = (Vec::new(), Vec::new());
    let (mut prev, mut t) = (None::<u64>, 0u64);
    let mut other_links = 0u64;
    loop {
        let pkt = match r.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(format!("damaged: {e}")),
        };
        let frame = match pkt.link_type {
            LinkType::ETHERNET => pkt.data.to_vec(),
            LinkType::RAW
            | LinkType::IPV4
            | LinkType::IPV6
            | LinkType::RAW_DLT12
            | LinkType::RAW_DLT14 => {
                // The link type says the version where it can, so a frame
                // that contradicts it stays as malformed as captured.
                let ty: u16 = match (pkt.link_type, pkt.data.first().map(|b| b >> 4)) {
                    (LinkType::IPV4, _) => 0x0800,
                    (LinkType::IPV6, _) => 0x86dd,
                    (_, Some(4)) => 0x0800,
                    (_, Some(6)) => 0x86dd,
                    _ => {
                        other_links += 1;
                        continue;
                    }
                };
                // Locally administered MACs; the EtherType from the nibble.
                let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
                f.extend_from_slice(&ty.to_be_bytes());
                f.extend_from_slice(pkt.data);
                f
            }
            _ => {
                other_links += 1;
                continue;
            }
        };
        if frame.len() > SNAPLEN as usize {
            other_links += 1;
            continue;
        }
        let extra = (frame.len() - pkt.data.len()) as u32;
        let ts = pkt.ts.as_nanos();
        if let Some(p) = prev {
            t += ts.saturating_sub(p).min(MAX_GAP_NS);
        }
        prev = Some(ts);
        rel_ns.push(t);
        frames.push((frame, pkt.wire_len.saturating_add(extra)));
    }
    if frames.is_empty() {
        return Err(if other_links > 0 {
            format!("no Ethernet or raw-IP frames ({other_links} of another link type)")
        } else {
            "no packets".into()
        });
    }
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(Source {
        name,
        frames,
        rel_ns,
    })
}

/// SplitMix64 finaliser: the fixed hash behind the start-time jitter.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Start of copy `(rep, file)`.
fn copy_start(rep: u64, file: u64) -> u64 {
    START_NS
        + rep * STRIDE_NS
        + mix64((rep << 32 | file).wrapping_add(0x9e37_79b9_7f4a_7c15)) % STRIDE_NS
}

/// What the extractor said about a frame, for comparing before and after.
fn verdict(
    x: &FiveTupleExtractor,
    frame: &[u8],
) -> (Result<ChecksumStatus, Skip>, Option<FiveTuple>) {
    let v = PacketView::new(frame, Timestamp::from_nanos(0), LinkType::ETHERNET);
    match x.extract(&v) {
        Ok(e) => (Ok(e.checksum), Some(e.key)),
        Err(s) => (Err(s), None),
    }
}

/// How many leading packets of each file the partial copy `rep` takes so
/// that it holds the first `rest` packets of that copy in time order.
fn partial_copy_limits(sources: &[Source], rep: u64, rest: u64) -> Vec<usize> {
    let mut take = vec![0usize; sources.len()];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = sources
        .iter()
        .enumerate()
        .filter_map(|(f, s)| Some(Reverse((copy_start(rep, f as u64) + *s.rel_ns.first()?, f))))
        .collect();
    for _ in 0..rest {
        let Some(Reverse((_, f))) = heap.pop() else {
            break;
        };
        take[f] += 1;
        if let Some(&t) = sources[f].rel_ns.get(take[f]) {
            heap.push(Reverse((copy_start(rep, f as u64) + t, f)));
        }
    }
    take
}

/// Per-file tallies of what was written.
#[derive(Default, Clone, Copy)]
struct Tally {
    packets: u64,
    bytes: u64,
    /// Copies of the file that started.
    reps: u64,
}

/// Builds the mix into `out`.
pub fn build(corpus: &Path, packets: u64, out: &Path) -> Result<()> {
    let start = Instant::now();
    if !corpus.is_dir() {
        bail!(
            "corpus folder {} not found: set FLOWSCOPE_CORPUS to a folder of pcap/pcapng files",
            corpus.display()
        );
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus)
        .with_context(|| format!("listing {}", corpus.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
        })
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    for p in &paths {
        match load(p) {
            Ok(s) => sources.push(s),
            Err(why) => eprintln!("skipped {}: {why}", p.display()),
        }
    }
    let per_set: u64 = sources.iter().map(|s| s.frames.len() as u64).sum();
    if per_set == 0 {
        bail!("no usable capture in {}", corpus.display());
    }
    // Whole copies of the set, then the first `rest` packets (in time
    // order) of one more: every file is represented in proportion.
    let (whole, rest) = (packets / per_set, packets % per_set);
    let reps = whole + u64::from(rest > 0);
    if reps > u64::from(u16::MAX) {
        bail!("{packets} packets need {reps} repetitions; at most 65535 are distinct");
    }
    let last_limits = partial_copy_limits(&sources, whole, rest);
    let limit = |rep: u64, f: usize| -> usize {
        if rep < whole {
            sources[f].frames.len()
        } else {
            last_limits.get(f).copied().unwrap_or(0)
        }
    };

    // Merge every (rep, file) copy by time; ties by (rep, file, index).
    let mut heap = BinaryHeap::new();
    for rep in 0..reps {
        for (f, s) in sources.iter().enumerate() {
            if limit(rep, f) > 0 {
                let t = copy_start(rep, f as u64) + s.rel_ns.first().copied().unwrap_or(0);
                heap.push(Reverse((t, rep as u16, f as u32, 0u32)));
            }
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("pcap.partial");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;

    let mut xcfg = ExtractConfig::default();
    xcfg.verify_checksums = true;
    let x = FiveTupleExtractor::new(xcfg);
    let mut remapper = remap::Remapper::default();
    let mut tally = vec![Tally::default(); sources.len()];
    // Flow key -> the repetition that first used it (u16::MAX: several).
    let mut keys: HashMap<FiveTuple, u16> = HashMap::new();
    let (mut written, mut bytes, mut last_ns) = (0u64, 0u64, 0u64);
    let (mut good, mut bad, mut skipped, mut changed) = (0u64, 0u64, 0u64, 0u64);
    while let Some(Reverse((t, rep, f, i))) = heap.pop() {
        let s = &sources[f as usize];
        let (orig, wire) = &s.frames[i as usize];
        let frame = remapper.remap(orig, rep);
        let (before, _) = verdict(&x, orig);
        let (after, key) = verdict(&x, frame);
        if before != after {
            changed += 1;
        }
        match after {
            Ok(ChecksumStatus::Bad) => bad += 1,
            Ok(_) => good += 1,
            Err(_) => skipped += 1,
        }
        if let Some(k) = key {
            let e = keys.entry(k).or_insert(rep);
            if *e != rep {
                *e = u16::MAX;
            }
        }
        w.write_packet_wire(t, frame, *wire)?;
        let ta = &mut tally[f as usize];
        ta.packets += 1;
        ta.bytes += frame.len() as u64;
        if i == 0 {
            ta.reps += 1; // a copy started
        }
        written += 1;
        bytes += frame.len() as u64;
        last_ns = t;
        let next_i = i as usize + 1;
        if let Some(&next) = s
            .rel_ns
            .get(next_i)
            .filter(|_| next_i < limit(u64::from(rep), f as usize))
        {
            let nt = copy_start(u64::from(rep), u64::from(f)) + next;
            heap.push(Reverse((nt, rep, f, i + 1)));
        }
    }
    let inner = w.finish()?;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;

    let shared = keys.values().filter(|&&r| r == u16::MAX).count();
    eprintln!(
        "wrote {} packets, {:.1} MB of frames, {:.1} s of traffic, to {} in {:.1} s",
        written,
        bytes as f64 / 1e6,
        last_ns.saturating_sub(START_NS) as f64 / 1e9,
        out.display(),
        start.elapsed().as_secs_f64(),
    );
    eprintln!(
        "{} captures x {} repetitions (the last partial) ({} packets per set); flows (distinct 5-tuples, approx.): {}, of which {} appear in more than one repetition",
        sources.len(),
        reps,
        per_set,
        keys.len(),
        shared,
    );
    eprintln!(
        "checksums verified: {good} good or unchecked, {bad} bad, {skipped} not keyed (skipped); verdicts changed by remapping: {changed}"
    );
    eprintln!("composition (share of packets written):");
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| (Reverse(tally[i].packets), i));
    for i in order {
        let t = tally[i];
        eprintln!(
            "  {:6.2}% {:>9} pkts {:>11} B {:>3} reps  {}",
            t.packets as f64 * 100.0 / written.max(1) as f64,
            t.packets,
            t.bytes,
            t.reps,
            sources[i].name
        );
    }
    if changed > 0 {
        bail!("remapping changed {changed} extraction verdicts (checksum or skip reason)");
    }
    Ok(())
}
