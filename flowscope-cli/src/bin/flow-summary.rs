//! `flow-summary`: read a capture (file or `-` for stdin), track flows, and
//! print them as a table, Suricata EVE JSON, a Zeek conn.log, CSV or NDJSON.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use flowscope::capture::{CaptureError, CaptureReader};
use flowscope::driver::FlowPipeline;
use flowscope::emit::{self, FlowWriter};
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope::track::TrackerConfig;
use flowscope_cli::summary::Summary;
use flowscope_core::{FiveTuple, FlowEvent, FlowRecord};

/// Exit status when the capture was damaged part-way: the output covers every
/// packet before the damage.
const EXIT_DAMAGED: u8 = 3;
/// Exit status when the input could not be read at all, or output failed.
const EXIT_FAILED: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Totals, packet accounting, per-protocol counts and the top flows.
    Table,
    /// Suricata EVE JSON, one `event_type: flow` object per line.
    Eve,
    /// Zeek conn.log (tab-separated, with header).
    Conn,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per flow with every field flowscope knows.
    Ndjson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Progress {
    /// A progress bar when stderr is a terminal.
    Auto,
    /// Never show progress.
    Never,
}

/// Summarise the flows in a packet capture (pcap or pcapng).
#[derive(Debug, Parser)]
#[command(
    name = "flow-summary",
    version,
    after_help = "Exit status: 0 success; 1 the input could not be read (or output failed); \
2 bad arguments; 3 the capture is damaged part-way (output covers the packets before the damage)."
)]
struct Args {
    /// Capture file to read (pcap or pcapng), or `-` for standard input.
    input: PathBuf,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write output to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// Number of flows listed in the table's top list (by bytes).
    #[arg(long, default_value_t = 10)]
    top: usize,

    /// Most flows held at once; the least recently used flow is evicted past it.
    #[arg(long, default_value_t = TrackerConfig::default().max_flows)]
    max_flows: usize,

    /// Idle timeout of established TCP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "300")]
    tcp_timeout: Duration,

    /// Idle timeout of an unanswered TCP SYN, in seconds.
    #[arg(long, value_parser = seconds, default_value = "5")]
    syn_timeout: Duration,

    /// Linger of a TCP flow after FIN or RST, in seconds.
    #[arg(long, value_parser = seconds, default_value = "5")]
    closed_timeout: Duration,

    /// Idle timeout of UDP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    udp_timeout: Duration,

    /// Idle timeout of ICMP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    icmp_timeout: Duration,

    /// Idle timeout of flows of other IP protocols, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    other_timeout: Duration,

    /// Key tunnelled traffic by its outer headers instead of unwrapping it.
    #[arg(long)]
    no_decap: bool,

    /// Verify transport checksums (bad ones show as history letter `c`).
    #[arg(long)]
    verify_checksums: bool,

    /// Progress bar on stderr.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("not a valid number of seconds: {s}"))
}

/// The chosen output: the table report, or a line writer from `emit`.
enum Output<'w> {
    Table(Summary, Box<dyn Write + 'w>),
    Lines(Box<dyn FlowWriter + 'w>),
}

impl<'w> Output<'w> {
    fn new(format: Format, top: usize, w: impl Write + 'w) -> Self {
        let lines = match format {
            Format::Table => return Output::Table(Summary::new(top), Box::new(w)),
            Format::Eve => emit::Format::Eve,
            Format::Conn => emit::Format::ZeekConn,
            Format::Csv => emit::Format::Csv,
            Format::Ndjson => emit::Format::Ndjson,
        };
        Output::Lines(lines.writer(w))
    }

    fn flow(&mut self, rec: &FlowRecord<FiveTuple>) -> io::Result<()> {
        match self {
            Output::Table(s, _) => {
                s.add(rec);
                Ok(())
            }
            Output::Lines(w) => w.write_flow(rec),
        }
    }

    fn finish(self, pipeline: &FlowPipeline<FiveTupleExtractor>) -> io::Result<()> {
        match self {
            Output::Table(s, mut w) => {
                s.write(&mut w, pipeline.counters(), &pipeline.tracker_stats())?;
                w.flush()
            }
            Output::Lines(mut w) => w.close(),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(damage)) => {
            eprintln!("flow-summary: {}: {damage}", args.input.display());
            ExitCode::from(EXIT_DAMAGED)
        }
        // `flow-summary … | head` closes the pipe early: not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow-summary: {}: {e}", args.input.display());
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Runs the summary; `Ok(Some(err))` when the capture was damaged part-way.
fn run(args: &Args) -> io::Result<Option<CaptureError>> {
    let mut reader = CaptureReader::open(&args.input).map_err(io::Error::other)?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    };
    let mut output = Output::new(
        args.format,
        args.top,
        BufWriter::with_capacity(1 << 16, out),
    );

    let mut extract = ExtractConfig::default();
    extract.decap_tunnels = !args.no_decap;
    extract.verify_checksums = args.verify_checksums;
    let mut track = TrackerConfig::default();
    track.max_flows = args.max_flows.max(1);
    track.tcp_timeout = args.tcp_timeout;
    track.tcp_syn_timeout = args.syn_timeout;
    track.tcp_closed_timeout = args.closed_timeout;
    track.udp_timeout = args.udp_timeout;
    track.icmp_timeout = args.icmp_timeout;
    track.other_timeout = args.other_timeout;
    let mut pipeline = FlowPipeline::five_tuple(extract, track);

    let progress = progress_bar(args);
    // The sink cannot return errors, so the first write error is kept and
    // reported after the packet that caused it.
    let mut write_err: Option<io::Error> = None;
    let on_event =
        |ev: &FlowEvent<FiveTuple>, output: &mut Output<'_>, err: &mut Option<io::Error>| {
            if let (FlowEvent::Ended(rec), None) = (ev, &err) {
                if let Err(e) = output.flow(rec) {
                    *err = Some(e);
                }
            }
        };
    let mut damage = None;
    loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                pipeline.process(&pkt, &mut |ev| on_event(ev, &mut output, &mut write_err))
            }
            Ok(None) => break,
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
        if write_err.is_some() {
            break;
        }
        if let Some(bar) = &progress {
            if reader.packets_read() % 65_536 == 0 {
                bar.set_position(reader.bytes_consumed());
            }
        }
    }
    pipeline.finish(&mut |ev| on_event(ev, &mut output, &mut write_err));
    if let Some(e) = write_err {
        return Err(e);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    output.finish(&pipeline)?;
    Ok(damage)
}

fn progress_bar(args: &Args) -> Option<indicatif::ProgressBar> {
    if args.progress == Progress::Never || !io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(&args.input)
        .ok()
        .filter(|m| m.is_file())?
        .len();
    // Small files finish before a bar is worth drawing.
    if len < 64 << 20 {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}
