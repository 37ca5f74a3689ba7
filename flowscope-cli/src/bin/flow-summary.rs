//! `flow-summary`: read a capture (file or `-` for stdin), or capture live
//! from an interface (`--iface`), track flows, reassemble and parse HTTP,
//! TLS and DNS, and print the flows as a table, Suricata EVE JSON (with
//! `http`, `tls` and `dns` events), a Zeek conn.log (with `service`), CSV or
//! NDJSON.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use flowscope::capture::{CaptureError, CaptureReader};
use flowscope::driver::{
    DriverEvent, PacketCounters, SessionConfig, SessionCounters, SessionDriver, SessionInfo,
};
use flowscope::emit::{self, FlowContext, FlowWriter};
use flowscope::proto::AppMessage;
use flowscope::track::TrackerStats;
use flowscope_cli::app_events::{count_names, EveApps};
use flowscope_cli::input::open_capture;
use flowscope_cli::options::{seconds, share_between_workers, TrackingOptions};
use flowscope_cli::summary::Summary;
use flowscope_core::{FiveTuple, FlowEvent, FlowRecord, SessionEvent, Timestamp};
use flowscope_rss::bypass::{BypassedFlow, Bypasser};
use flowscope_rss::dispatch::file::FileFeeder;
use flowscope_rss::dispatch::Dispatcher;
use flowscope_rss::harness::{
    Emitter, Harness, HarnessConfig, Totals, WorkerHandler, WorkerReport,
};
use flowscope_rss::PacketSource;

// A binary's root resolves modules beside itself, not in `flow-summary/`.
#[cfg(target_os = "linux")]
#[path = "flow-summary/live.rs"]
mod live;

/// Live capture needs AF_PACKET.
#[cfg(not(target_os = "linux"))]
mod live {
    pub(super) fn main(_: &super::Args, _: &str) -> std::process::ExitCode {
        eprintln!("flow-summary: --iface (AF_PACKET live capture) needs Linux");
        std::process::ExitCode::from(super::EXIT_USAGE)
    }
}

/// Exit status when the capture was damaged part-way: the output covers every
/// packet before the damage.
const EXIT_DAMAGED: u8 = 3;
/// Exit status when the input could not be read at all, or output failed
/// (live: the interface could not be opened, or failed during capture).
const EXIT_FAILED: u8 = 1;
/// Exit status for a usage error found after argument parsing (clap uses 2 too).
const EXIT_USAGE: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Totals, packet accounting, per-protocol counts and the top flows.
    Table,
    /// Suricata EVE JSON: `flow` events, and `http`, `tls`, `dns` events.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Cluster {
    /// Suricata's cluster_flow: the kernel's symmetric flow hash (both
    /// directions on one worker; IPv4 fragments reassembled first).
    Flow,
    /// Suricata's cluster_cpu: the CPU that received the packet (needs
    /// symmetric RSS and each queue's IRQ pinned to its worker's CPU).
    Cpu,
    /// Suricata's cluster_qm: the NIC receive queue (one worker per queue;
    /// needs symmetric RSS).
    Qm,
}

/// `--bypass`: when a live worker hands a flow to the XDP prefilter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BypassArg {
    /// Once the TLS handshake is done.
    Tls,
    /// Once either direction sent more than N payload bytes.
    Bytes(u64),
}

fn bypass_arg(s: &str) -> Result<BypassArg, String> {
    if s == "tls" {
        return Ok(BypassArg::Tls);
    }
    match s.strip_prefix("bytes:").map(str::parse::<u64>) {
        Some(Ok(n)) => Ok(BypassArg::Bytes(n)),
        _ => Err(format!("expected `tls` or `bytes:N`, got `{s}`")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BypassMode {
    /// Native (driver) XDP where the driver supports it, else generic.
    Auto,
    /// Native (driver) XDP only.
    Native,
    /// Generic (SKB) XDP: any device, smaller savings.
    Generic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackpressureArg {
    /// Workers wait for the output: no record is lost; a live ring may then
    /// fill and the kernel counts drops.
    Block,
    /// Workers never wait: records the output cannot take are dropped and
    /// counted (`events_dropped`).
    Drop,
}

/// Summarise the flows in a packet capture (pcap or pcapng), or captured
/// live from a network interface (--iface).
#[derive(Debug, Parser)]
#[command(
    name = "flow-summary",
    version,
    group(ArgGroup::new("source").required(true).args(["input", "iface"])),
    after_help = "Exit status: 0 success (live: stopped by --duration, SIGINT or SIGTERM); \
1 the input could not be read, the interface could not be opened or failed, or output failed; \
2 bad arguments; 3 the capture is damaged part-way (output covers the packets before the damage); \
130/143 a second SIGINT/SIGTERM ended a live capture at once, without its final output."
)]
struct Args {
    /// Capture file to read (pcap or pcapng), or `-` for standard input.
    input: Option<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write output to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// Number of flows listed in the table's top list (by bytes).
    #[arg(long, default_value_t = 10)]
    top: usize,

    #[command(flatten)]
    tracking: TrackingOptions,

    /// Track flows only: no reassembly, defragmentation or HTTP/TLS/DNS parsing (faster).
    #[arg(long)]
    flows_only: bool,

    /// Progress bar on stderr.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,

    /// Map a capture file into memory and read its records in place (no
    /// copy per record; fastest on a file in the page cache). The pages read
    /// count in the resident set until the end; not for a file that is being
    /// rewritten or truncated while it is read.
    #[arg(long, conflicts_with = "iface")]
    mmap: bool,

    /// Worker threads, each pinned to a core and owning the flows a
    /// symmetric hash of their IP addresses gives it (a reader thread
    /// splits the file). The output holds the same records as with one
    /// worker, in another order. `--max-flows` is shared between workers.
    ///
    /// Live (`--iface`): N AF_PACKET sockets in one fanout group, one per
    /// pinned worker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: u16,

    /// Capture live from this network interface instead of reading a file
    /// (AF_PACKET, TPACKET_V3 ring; needs CAP_NET_RAW).
    #[arg(long, value_name = "IF", help_heading = "Live capture")]
    iface: Option<String>,

    /// How the kernel spreads packets over the workers (Suricata's cluster types).
    #[arg(long, value_enum, default_value_t = Cluster::Flow, conflicts_with = "input", help_heading = "Live capture")]
    cluster: Cluster,

    /// Stop after this many seconds (otherwise at SIGINT or SIGTERM).
    #[arg(long, value_name = "S", value_parser = seconds, conflicts_with = "input", help_heading = "Live capture")]
    duration: Option<Duration>,

    /// Kernel filter: a file holding the output of `tcpdump -ddd -y EN10MB 'EXPR'`.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "input",
        help_heading = "Live capture"
    )]
    bpf_file: Option<PathBuf>,

    /// Put the interface in promiscuous mode while capturing.
    #[arg(long, conflicts_with = "input", help_heading = "Live capture")]
    promisc: bool,

    /// PACKET_FANOUT group id shared by the workers' sockets (default: the
    /// process id's low 16 bits). Ids are per network namespace.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "input",
        help_heading = "Live capture"
    )]
    fanout_group: Option<u16>,

    /// Bytes per ring block (a multiple of the page size; bounds the largest
    /// frame captured whole).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, conflicts_with = "input", help_heading = "Live capture")]
    ring_block_size: u32,

    /// Blocks per worker's ring (ring = blocks x block size of kernel memory per worker).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        conflicts_with = "input",
        help_heading = "Live capture"
    )]
    ring_blocks: u32,

    /// When the output falls behind the workers.
    #[arg(long, value_enum, default_value_t = BackpressureArg::Block, conflicts_with = "input", help_heading = "Live capture")]
    backpressure: BackpressureArg,

    /// Hand flows to an XDP program on the interface, which drops their
    /// remaining packets in the kernel and counts them: `tls` once the TLS
    /// handshake is done, `bytes:N` once either direction sent more than N
    /// payload bytes. Each flow's record still has its full packet and byte
    /// counts; NDJSON and EVE add what was bypassed. Attach it only to a
    /// capture interface: bypassed packets are gone for every local
    /// consumer. Needs root (CAP_BPF + CAP_NET_ADMIN).
    #[arg(long, value_name = "tls|bytes:N", value_parser = bypass_arg, conflicts_with = "input", help_heading = "Live capture")]
    bypass: Option<BypassArg>,

    /// How the XDP program is attached (with --bypass).
    #[arg(long, value_enum, default_value_t = BypassMode::Auto, requires = "bypass", help_heading = "Live capture")]
    bypass_mode: BypassMode,
}

/// The chosen output: the table report, or a line writer from `emit`.
enum Output<'w> {
    Table(Box<Summary>, Box<dyn Write + 'w>),
    Lines {
        w: Box<dyn FlowWriter + 'w>,
        /// EVE application events (only for `--format eve`).
        apps: Option<EveApps>,
        format: Format,
    },
}

impl<'w> Output<'w> {
    fn new(format: Format, top: usize, w: impl Write + 'w) -> Self {
        let lines = match format {
            Format::Table => return Output::Table(Box::new(Summary::new(top)), Box::new(w)),
            Format::Eve => emit::Format::Eve,
            Format::Conn => emit::Format::ZeekConn,
            Format::Csv => emit::Format::Csv,
            Format::Ndjson => emit::Format::Ndjson,
        };
        Output::Lines {
            w: lines.writer(w),
            apps: (format == Format::Eve).then(EveApps::default),
            format,
        }
    }

    fn event(&mut self, ev: DriverEvent<'_, AppMessage>) -> io::Result<()> {
        match (self, ev) {
            (
                out,
                DriverEvent::Flow {
                    event: FlowEvent::Ended(rec),
                    app_proto,
                },
            ) => out.flow(rec, app_proto),
            (Output::Table(s, _), DriverEvent::Session { event, .. }) => {
                count_names(s, &event);
                Ok(())
            }
            (
                Output::Lines {
                    w,
                    apps: Some(apps),
                    ..
                },
                DriverEvent::Session { info, ts, event },
            ) => apps.on_event(info, ts, &event, &mut |line| w.write_line(line)),
            _ => Ok(()),
        }
    }

    fn flow(&mut self, rec: &FlowRecord<FiveTuple>, app: Option<&'static str>) -> io::Result<()> {
        match self {
            Output::Table(s, _) => {
                s.add(rec, app);
                Ok(())
            }
            Output::Lines { w, .. } => {
                let ctx = match app {
                    Some(a) => FlowContext::default().with_app_proto(a),
                    None => FlowContext::default(),
                };
                w.write_flow_with(rec, &ctx)
            }
        }
    }

    /// A bypassed flow's end: its record (kernel counts included) and, in
    /// NDJSON and EVE, what the kernel dropped, as Suricata's EVE writes it
    /// (`flow.bypassed` with per-direction packets and bytes, `flow.bypass`
    /// "capture"; NDJSON: top-level `bypassed`).
    fn bypassed(&mut self, b: &BypassedFlow) -> io::Result<()> {
        let c = &b.bypassed;
        let (w, format) = match self {
            Output::Lines { w, format, .. } if matches!(format, Format::Eve | Format::Ndjson) => {
                (w, *format)
            }
            Output::Table(s, _) => {
                s.add_bypassed(
                    &b.record,
                    b.app_proto,
                    c.initiator.packets.saturating_add(c.responder.packets),
                    c.initiator.bytes.saturating_add(c.responder.bytes),
                );
                return Ok(());
            }
            _ => return self.flow(&b.record, b.app_proto),
        };
        let ctx = match b.app_proto {
            Some(a) => FlowContext::default().with_app_proto(a),
            None => FlowContext::default(),
        };
        let mut buf = Vec::new();
        {
            let kind = if format == Format::Eve {
                emit::Format::Eve
            } else {
                emit::Format::Ndjson
            };
            let mut one = kind.writer(&mut buf);
            one.write_flow_with(&b.record, &ctx)?;
            one.close()?;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&buf).map_err(io::Error::other)?;
        let counts = serde_json::json!({
            "pkts_toserver": c.initiator.packets,
            "pkts_toclient": c.responder.packets,
            "bytes_toserver": c.initiator.bytes,
            "bytes_toclient": c.responder.bytes,
        });
        match (format, v.as_object_mut()) {
            (Format::Eve, Some(o)) => {
                if let Some(f) = o.get_mut("flow").and_then(serde_json::Value::as_object_mut) {
                    f.insert("bypass".into(), "capture".into());
                    f.insert("bypassed".into(), counts);
                }
            }
            (_, Some(o)) => {
                o.insert("bypassed".into(), counts);
            }
            _ => {}
        }
        let mut line = serde_json::to_vec(&v).map_err(io::Error::other)?;
        line.push(b'\n');
        w.write_line(&line)
    }

    fn finish(
        self,
        counters: &PacketCounters,
        tracker: &TrackerStats,
        sessions: &SessionCounters,
    ) -> io::Result<()> {
        match self {
            Output::Table(s, mut w) => {
                s.write(&mut w, counters, tracker, sessions)?;
                w.flush()
            }
            Output::Lines { mut w, .. } => w.close(),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(iface) = &args.iface {
        return live::main(&args, iface);
    }
    let input = args.input.as_deref().unwrap_or(Path::new("-"));
    match run(&args, input) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(damage)) => {
            eprintln!("flow-summary: {}: {damage}", input.display());
            ExitCode::from(EXIT_DAMAGED)
        }
        // `flow-summary … | head` closes the pipe early: not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow-summary: {}: {e}", input.display());
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The driver configuration the options ask for.
fn session_config(args: &Args) -> SessionConfig {
    let mut config = args.tracking.session_config();
    config.no_defrag = args.flows_only;
    config
}

/// Where the output goes: `--output FILE` or standard output.
fn output_target(args: &Args) -> io::Result<Box<dyn Write>> {
    Ok(match &args.output {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    })
}

/// Runs the summary; `Ok(Some(err))` when the capture was damaged part-way.
fn run(args: &Args, input: &Path) -> io::Result<Option<CaptureError>> {
    let mut reader = open_capture(input, args.mmap).map_err(io::Error::other)?;
    let mut output = Output::new(
        args.format,
        args.top,
        BufWriter::with_capacity(1 << 16, output_target(args)?),
    );
    let config = session_config(args);
    if args.workers > 1 {
        return run_workers(args, reader, output, config);
    }
    let mut driver = if args.flows_only {
        SessionDriver::new(config)
    } else {
        SessionDriver::with_default_parsers(config)
    };

    let progress = progress_bar(args);
    // The sink cannot return errors, so the first write error is kept and
    // reported after the packet that caused it.
    let mut write_err: Option<io::Error> = None;
    let on_event =
        |ev: DriverEvent<'_, AppMessage>, output: &mut Output<'_>, err: &mut Option<io::Error>| {
            if err.is_none() {
                if let Err(e) = output.event(ev) {
                    *err = Some(e);
                }
            }
        };
    let mut damage = None;
    loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                driver.process(&pkt, &mut |ev| on_event(ev, &mut output, &mut write_err))
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
    driver.finish(&mut |ev| on_event(ev, &mut output, &mut write_err));
    if let Some(e) = write_err {
        return Err(e);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    output.finish(
        driver.counters(),
        &driver.tracker_stats(),
        driver.session_counters(),
    )?;
    Ok(damage)
}

/// What a worker sends the output thread: the events `flow-summary` writes,
/// owned.
enum Item {
    Ended(FlowRecord<FiveTuple>, Option<&'static str>),
    Session(SessionInfo, Timestamp, SessionEvent<AppMessage>),
    Bypassed(BypassedFlow),
}

/// A worker's handler: the events `flow-summary` writes, owned.
struct ItemHandler {
    /// Only the table (names) and EVE (app events) use session events.
    sessions: bool,
}

impl WorkerHandler<AppMessage, Item> for ItemHandler {
    fn event(&mut self, ev: DriverEvent<'_, AppMessage>, out: &mut Emitter<'_, Item>) {
        match ev {
            DriverEvent::Flow {
                event: FlowEvent::Ended(rec),
                app_proto,
            } => out.emit(Item::Ended(*rec, app_proto)),
            DriverEvent::Session { info, ts, event } if self.sessions => {
                out.emit(Item::Session(*info, ts, event))
            }
            _ => {}
        }
    }

    fn bypassed(&mut self, ended: &BypassedFlow, out: &mut Emitter<'_, Item>) {
        out.emit(Item::Bypassed(*ended));
    }
}

/// `--workers N`: a reader thread splits the capture by flow between N
/// pinned workers; their events are written here, on this thread.
fn run_workers(
    args: &Args,
    reader: CaptureReader<Box<dyn io::Read + Send>>,
    mut output: Output<'_>,
    mut config: SessionConfig,
) -> io::Result<Option<CaptureError>> {
    let n = usize::from(args.workers);
    let dispatcher = Dispatcher::new(config.extract.clone(), n, !args.flows_only);
    // The flow limit and the memory budget: each worker gets its share.
    share_between_workers(&mut config, n);
    let (feeder, sources) = FileFeeder::new(reader, dispatcher);
    let sources: Vec<Box<dyn PacketSource>> = sources
        .into_iter()
        .map(|s| Box::new(s) as Box<dyn PacketSource>)
        .collect();
    let harness = Harness::new(n, HarnessConfig::default());
    let progress = progress_bar(args);
    let mut write_err: Option<io::Error> = None;
    let (reports, feed) = std::thread::scope(|scope| {
        let bar = progress.clone();
        let feed = std::thread::Builder::new()
            .name("flowscope-reader".into())
            .spawn_scoped(scope, move || {
                feeder.run(&mut |bytes| {
                    if let Some(b) = &bar {
                        b.set_position(bytes);
                    }
                })
            });
        let feed = match feed {
            Ok(h) => h,
            Err(e) => return (Err(e), None),
        };
        let reports = run_harness(
            args,
            &harness,
            sources,
            &config,
            &mut output,
            &mut write_err,
            |_| None,
        );
        let feed = feed.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (reports, Some(feed))
    });
    let reports = reports?;
    if let Some(e) = write_err {
        return Err(e);
    }
    if let Some(e) = reports.iter().find_map(|r| r.error.as_ref()) {
        return Err(io::Error::new(e.kind(), e.to_string()));
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let t = Totals::of(&reports);
    output.finish(&t.counters, &t.tracker, &t.session)?;
    Ok(feed.and_then(|f| f.damage))
}

/// Runs one worker per source with `config`'s drivers (and the bypass
/// policy `make_bypass` gives each, if any) and writes their events to
/// `output` on this thread. The first write error is kept in `write_err`
/// and stops the workers (each still finishes its flows).
fn run_harness(
    args: &Args,
    harness: &Harness,
    sources: Vec<Box<dyn PacketSource>>,
    config: &SessionConfig,
    output: &mut Output<'_>,
    write_err: &mut Option<io::Error>,
    make_bypass: impl Fn(usize) -> Option<Bypasser<AppMessage>> + Sync,
) -> io::Result<Vec<WorkerReport>> {
    let sessions = matches!(args.format, Format::Table | Format::Eve);
    harness.run_with(
        sources,
        |_| {
            if args.flows_only {
                SessionDriver::new(config.clone())
            } else {
                SessionDriver::with_default_parsers(config.clone())
            }
        },
        |_| ItemHandler { sessions },
        make_bypass,
        |item| {
            if write_err.is_some() {
                return;
            }
            let r = match item {
                Item::Ended(rec, app_proto) => output.event(DriverEvent::Flow {
                    event: &FlowEvent::Ended(rec),
                    app_proto,
                }),
                Item::Session(info, ts, event) => output.event(DriverEvent::Session {
                    info: &info,
                    ts,
                    event,
                }),
                Item::Bypassed(b) => output.bypassed(&b),
            };
            if let Err(e) = r {
                *write_err = Some(e);
                // Workers stop (a file's reader then stops too).
                harness.stop();
            }
        },
    )
}

fn progress_bar(args: &Args) -> Option<indicatif::ProgressBar> {
    if args.progress == Progress::Never || !io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(args.input.as_deref()?)
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
