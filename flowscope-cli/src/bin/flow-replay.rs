//! `flow-replay`: replay a capture (file or `-` for stdin) paced by its
//! timestamps, either through the flowscope pipeline (printing events as
//! they would occur live) or onto a network interface (`--iface`, like
//! tcpreplay), optionally rewriting addresses into safe ranges
//! (`--remap-ipv4`, `--remap-ipv6`), or into a pcap file (`--write`).

use std::fs::File;
use std::io::{self, BufWriter, LineWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use flowscope::capture::{CaptureError, CaptureReader};
use flowscope::driver::SessionDriver;
use flowscope_cli::options::TrackingOptions;
use flowscope_cli::replay;
use flowscope_cli::replay::clock::RealClock;
use flowscope_cli::replay::pace::{Rate, Speed};
use flowscope_cli::replay::pcap_out::PcapWriter;
use flowscope_cli::replay::pipeline::{EventLines, LineFormat, PipelineReplay};
use flowscope_cli::replay::remap::{Ipv4Net, Ipv6Net, RemapStats, Remapper, Verdict};
use flowscope_cli::replay::transmit::{Pacing, Transmitter, TxError, TxOptions};
use flowscope_core::LinkType;

/// Exit status when the input could not be read, output failed, or the interface failed.
const EXIT_FAILED: u8 = 1;
/// Exit status for a usage error found after argument parsing (clap uses 2 too).
const EXIT_USAGE: u8 = 2;
/// Exit status when the capture was damaged part-way.
const EXIT_DAMAGED: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Suricata EVE JSON: `flow` events, and `http`, `tls`, `dns` events.
    Eve,
    /// One JSON object per flow with every field flowscope knows.
    Ndjson,
}

/// Replay a packet capture (pcap or pcapng) at the pace it was captured:
/// through the flowscope pipeline (default), onto an interface (--iface),
/// or into a pcap file (--write).
#[derive(Debug, Parser)]
#[command(
    name = "flow-replay",
    version,
    after_help = "Exit status: 0 success; 1 the input could not be read, output failed or the \
interface failed; 2 bad arguments (also: a capture whose link type cannot be sent with --iface); \
3 the capture is damaged part-way (everything before the damage was replayed)."
)]
struct Args {
    /// Capture file to read (pcap or pcapng), or `-` for standard input.
    input: PathBuf,

    /// Pace: `1` real time, `10` ten times faster, `0.5` half speed, `max` no waiting.
    #[arg(long, default_value = "1")]
    speed: Speed,

    /// Output format of the pipeline's events.
    #[arg(short, long, value_enum, default_value_t = Format::Eve)]
    format: Format,

    /// Write events to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// Longest wall time, in milliseconds, between driver ticks while waiting
    /// for the next packet (how late an idle flow's end may be reported).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    tick_ms: u64,

    /// Send the frames onto this network interface (AF_PACKET; needs CAP_NET_RAW).
    #[arg(long, value_name = "IF", conflicts_with = "write")]
    iface: Option<String>,

    /// With --iface: send the capture this many times.
    #[arg(long = "loop", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..), requires = "iface")]
    loops: u64,

    /// With --iface: send this many packets per second, ignoring timestamps.
    #[arg(long, value_name = "N", value_parser = positive, requires = "iface", conflicts_with = "mbps")]
    pps: Option<f64>,

    /// With --iface: send this many megabits (10^6) of frames per second, ignoring timestamps.
    #[arg(long, value_name = "X", value_parser = positive, requires = "iface")]
    mbps: Option<f64>,

    /// With --iface: hand frames straight to the driver, skipping the
    /// interface's queueing discipline (PACKET_QDISC_BYPASS): faster, but no
    /// shaping, and a full device queue fails the send (retried as ENOBUFS).
    #[arg(long, requires = "iface")]
    qdisc_bypass: bool,

    /// With --iface: also write the final report as JSON to this file.
    #[arg(long, value_name = "FILE", requires = "iface")]
    report_json: Option<PathBuf>,

    /// Map every IPv4 address into this range (e.g. 198.18.0.0/15);
    /// with a remap range, frames of the other family are dropped unless it has one too.
    #[arg(long, value_name = "CIDR")]
    remap_ipv4: Option<Ipv4Net>,

    /// Map every IPv6 address into this range (e.g. 2001:2::/48).
    #[arg(long, value_name = "CIDR")]
    remap_ipv6: Option<Ipv6Net>,

    /// Write the (rewritten) frames to this pcap file, as fast as possible, instead of replaying.
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,

    #[command(flatten)]
    tracking: TrackingOptions,

    /// No report on standard error.
    #[arg(short, long)]
    quiet: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a number above 0: {s}"))
    }
}

/// How a run ended, short of success.
enum Failure {
    Usage(String),
    Failed(String),
    Damaged(CaptureError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Failed(e.to_string())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if let Some(path) = &args.write {
        write_pcap(&args, path)
    } else if let Some(iface) = &args.iface {
        transmit(&args, iface)
    } else {
        pipeline(&args)
    };
    let input = args.input.display();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("flow-replay: {input}: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("flow-replay: {input}: {m}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(Failure::Damaged(e)) => {
            eprintln!("flow-replay: {input}: {e}");
            ExitCode::from(EXIT_DAMAGED)
        }
    }
}

fn open(input: &Path) -> Result<CaptureReader<Box<dyn io::Read + Send>>, Failure> {
    CaptureReader::open(input).map_err(|e| Failure::Failed(e.to_string()))
}

fn remapper(args: &Args) -> Option<Remapper> {
    (args.remap_ipv4.is_some() || args.remap_ipv6.is_some())
        .then(|| Remapper::new(args.remap_ipv4, args.remap_ipv6))
}

fn damage(d: Option<CaptureError>) -> Result<(), Failure> {
    match d {
        Some(e) => Err(Failure::Damaged(e)),
        None => Ok(()),
    }
}

/// Default mode: the session pipeline, events printed when they happen.
fn pipeline(args: &Args) -> Result<(), Failure> {
    let mut reader = open(&args.input)?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    };
    // Paced output is shown line by line, as it happens; `max` is a batch job.
    let out: Box<dyn Write> = if args.speed == Speed::Max {
        Box::new(BufWriter::with_capacity(1 << 16, out))
    } else {
        Box::new(LineWriter::new(out))
    };
    let format = match args.format {
        Format::Eve => LineFormat::Eve,
        Format::Ndjson => LineFormat::Ndjson,
    };
    let mut lines = EventLines::new(format, out);
    let mut driver = SessionDriver::with_default_parsers(args.tracking.session_config());
    let mut replay = PipelineReplay::new(
        RealClock::new(),
        args.speed,
        Duration::from_millis(args.tick_ms),
    );
    if let Some(r) = remapper(args) {
        replay = replay.with_remapper(r);
    }
    let started = Instant::now();
    let result = replay.run(&mut reader, &mut driver, &mut |_, ev| lines.event(ev));
    let damaged = match result {
        Ok(d) => d,
        // `flow-replay … | head` closes the pipe early: not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match lines.close() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        r => r?,
    }
    if !args.quiet {
        let s = replay.stats();
        let t = driver.tracker_stats();
        eprintln!(
            "flow-replay: {} packets, {} flows ({} by timeout, {} at end of input), {:.3} s at speed {}",
            s.packets,
            t.ended(),
            t.ended_timeout,
            t.ended_finished,
            started.elapsed().as_secs_f64(),
            args.speed
        );
        if let Some(r) = replay.remapper() {
            eprint_remap(r.stats());
        }
    }
    damage(damaged)
}

fn eprint_remap(s: &RemapStats) {
    eprintln!(
        "flow-replay: remap: {} rewritten, {} not IP (unchanged), {} refused \
(no range {}, tunnel {}, routing header {}, malformed {}, link type {}); \
{} checksums past the snap length, {} addresses probed, {} beyond the range's capacity",
        s.rewritten,
        s.not_ip,
        s.refused(),
        s.refused_no_range,
        s.refused_tunnel,
        s.refused_routing_header,
        s.refused_malformed,
        s.refused_link_type,
        s.checksum_not_captured,
        s.probed,
        s.overflow
    );
}

/// `--iface`: send the frames, then report.
#[cfg(target_os = "linux")]
fn transmit(args: &Args, iface: &str) -> Result<(), Failure> {
    use flowscope_rss::afpacket::TxSocket;

    if args.input.as_os_str() == "-" && args.loops > 1 {
        return Err(Failure::Usage(
            "--loop needs a file: standard input can be read once".into(),
        ));
    }
    let pacing = match (args.pps, args.mbps) {
        (Some(p), _) => Pacing::Rate(Rate::Pps(p)),
        (None, Some(m)) => Pacing::Rate(Rate::Mbps(m)),
        (None, None) => Pacing::Timestamps(args.speed),
    };
    let mut reader = open(&args.input)?;
    // A classic pcap names its link type up front: refuse before touching
    // the interface. (pcapng is checked at its first packet.)
    if let Some(link) = reader.link_type() {
        if link != LinkType::ETHERNET && !replay::link::is_raw_ip(link) {
            return Err(Failure::Usage(TxError::UnsupportedLink(link).to_string()));
        }
    }
    let mut socket = TxSocket::open(iface)
        .map_err(|e| Failure::Failed(format!("cannot open interface {iface}: {e}")))?;
    if args.qdisc_bypass {
        socket
            .bypass_qdisc()
            .map_err(|e| Failure::Failed(format!("--qdisc-bypass on {iface}: {e}")))?;
    }
    let mut tx = Transmitter::new(socket, RealClock::new(), TxOptions::new(pacing));
    if let Some(r) = remapper(args) {
        tx = tx.with_remapper(r);
    }
    let mut outcome = Ok(());
    for pass in 0..args.loops {
        if pass > 0 {
            reader = open(&args.input)?;
        }
        match tx.run_pass(&mut reader) {
            Ok(None) => {}
            Ok(Some(e)) => {
                outcome = Err(Failure::Damaged(e));
                break;
            }
            Err(e @ TxError::UnsupportedLink(_)) => {
                outcome = Err(Failure::Usage(e.to_string()));
                break;
            }
            Err(e) => {
                outcome = Err(Failure::Failed(e.to_string()));
                break;
            }
        }
    }
    let report = tx.report();
    if !args.quiet {
        eprintln!("flow-replay: sent on {iface}");
        let mut err = io::stderr().lock();
        report.write_text(&mut err)?;
        if let Some(r) = tx.remapper() {
            eprint_remap(r.stats());
        }
    }
    if let Some(p) = &args.report_json {
        let mut v = report.to_json();
        if let (Some(obj), Some(r)) = (v.as_object_mut(), tx.remapper()) {
            let s = r.stats();
            obj.insert("remap_rewritten".into(), s.rewritten.into());
            obj.insert("remap_not_ip".into(), s.not_ip.into());
        }
        let mut f = File::create(p)?;
        serde_json::to_writer_pretty(&mut f, &v).map_err(io::Error::from)?;
        writeln!(f)?;
    }
    outcome
}

#[cfg(not(target_os = "linux"))]
fn transmit(_args: &Args, _iface: &str) -> Result<(), Failure> {
    Err(Failure::Usage("--iface needs Linux (AF_PACKET)".into()))
}

/// `--write`: the (rewritten) frames into a pcap file, unpaced.
fn write_pcap(args: &Args, path: &Path) -> Result<(), Failure> {
    let mut reader = open(&args.input)?;
    let mut remap = remapper(args);
    let out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut writer: Option<PcapWriter<_>> = None;
    let mut out = Some(out);
    let (mut written, mut refused, mut other_link) = (0u64, 0u64, 0u64);
    let mut frame = Vec::new();
    let damaged = loop {
        let pkt = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let w = match (&mut writer, out.take()) {
            (Some(w), _) => w,
            (None, Some(o)) => writer.insert(PcapWriter::new(o, pkt.link_type)?),
            (None, None) => return Err(Failure::Failed("pcap writer lost".into())),
        };
        if pkt.link_type != w.link_type() {
            // A pcap file has one link type; pcapng may mix them.
            other_link += 1;
            continue;
        }
        frame.clear();
        frame.extend_from_slice(pkt.data);
        if let Some(r) = remap.as_mut() {
            if let Verdict::Refused(_) = r.remap_frame(pkt.link_type, &mut frame) {
                refused += 1;
                continue;
            }
        }
        w.write(pkt.ts, &frame, pkt.wire_len)?;
        written += 1;
    };
    match writer {
        Some(w) => {
            w.finish()?;
        }
        None => {
            // An empty capture: still write a valid (empty) pcap.
            if let Some(o) = out.take() {
                PcapWriter::new(o, LinkType::ETHERNET)?.finish()?;
            }
        }
    }
    if !args.quiet {
        eprintln!(
            "flow-replay: wrote {written} frames to {} ({refused} refused by remap, {other_link} of another link type)",
            path.display()
        );
        if let Some(r) = &remap {
            eprint_remap(r.stats());
        }
    }
    damage(damaged)
}
