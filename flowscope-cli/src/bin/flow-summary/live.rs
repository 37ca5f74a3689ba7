//! `flow-summary --iface IF`: live capture with the worker harness. N
//! AF_PACKET sockets (TPACKET_V3 rings) join one fanout group, each owned by
//! its pinned worker; events are written as they come, in the file mode's
//! formats; SIGINT, SIGTERM or `--duration` stops capture cleanly (rings
//! drained, every worker's flows finished), then the table or the writers'
//! footers, and each worker's counters on stderr.

use std::io::{self, LineWriter};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowscope_cli::live::{stop_on_signals, totals_line, worker_line, Draining, StopWhen};
use flowscope_rss::afpacket::{AfPacketConfig, AfPacketSource, BpfProgram, FanoutMode};
use flowscope_rss::harness::{Backpressure, Harness, HarnessConfig, Totals};
use flowscope_rss::PacketSource;

use super::{
    output_target, run_harness, session_config, Args, BackpressureArg, Cluster, Output,
    EXIT_FAILED, EXIT_USAGE,
};

/// Why live capture could not run or ended badly.
enum Failure {
    /// A bad option value found after parsing (exit 2).
    Usage(String),
    /// The interface, the filter file or the output failed (exit 1).
    Failed(String),
}

/// Runs a live capture on `iface`; the exit status follows the file mode's.
pub(super) fn main(args: &Args, iface: &str) -> ExitCode {
    match run(args, iface) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("flow-summary: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("flow-summary: {m}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn fanout_mode(c: Cluster) -> (FanoutMode, &'static str) {
    match c {
        Cluster::Flow => (FanoutMode::ClusterFlow, "cluster_flow"),
        Cluster::Cpu => (FanoutMode::ClusterCpu, "cluster_cpu"),
        Cluster::Qm => (FanoutMode::ClusterQm, "cluster_qm"),
    }
}

fn filter(args: &Args) -> Result<Option<BpfProgram>, Failure> {
    let Some(path) = &args.bpf_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
    BpfProgram::parse_tcpdump_ddd(&text).map(Some).map_err(|e| {
        Failure::Usage(format!(
            "{}: not a `tcpdump -ddd` program: {e}",
            path.display()
        ))
    })
}

/// Opens worker `i`'s socket.
fn open(cfg: &AfPacketConfig) -> Result<AfPacketSource, Failure> {
    AfPacketSource::open(cfg).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => " (capturing needs CAP_NET_RAW)",
            _ => "",
        };
        let msg = format!("{}: {e}{hint}", cfg.interface);
        if e.kind() == io::ErrorKind::InvalidInput {
            Failure::Usage(msg)
        } else {
            Failure::Failed(msg)
        }
    })
}

fn run(args: &Args, iface: &str) -> Result<(), Failure> {
    let n = usize::from(args.workers);
    let program = filter(args)?;
    // Signals raise the flag before any socket exists, so a SIGINT during
    // setup still ends the capture cleanly (with nothing captured).
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop).map_err(|e| Failure::Failed(format!("signal handlers: {e}")))?;
    let when = StopWhen::new(Arc::clone(&stop), args.duration);

    // Default group id: unique among the processes of this namespace that
    // use the same rule, so two captures on one interface never merge.
    let group = args
        .fanout_group
        .unwrap_or((std::process::id() & 0xffff) as u16);
    let (mode, mode_name) = fanout_mode(args.cluster);
    let mut sources: Vec<Box<dyn PacketSource>> = Vec::with_capacity(n);
    for i in 0..n {
        let mut cfg = AfPacketConfig::new(iface)
            .fanout(group, mode)
            .ring(args.ring_block_size, args.ring_blocks)
            .promiscuous(args.promisc)
            // In NDJSON, a flow's `source` is the worker that captured it.
            .source_id(u32::try_from(i).unwrap_or(u32::MAX));
        if let Some(p) = &program {
            cfg = cfg.filter(p.clone());
        }
        sources.push(Box::new(Draining::new(open(&cfg)?, when.clone())));
    }

    let mut config = session_config(args);
    // The flow limit bounds memory: each worker gets its share.
    config.track.max_flows = config.track.max_flows.div_ceil(n).max(1);
    let mut hc = HarnessConfig::default();
    hc.backpressure = match args.backpressure {
        BackpressureArg::Block => Backpressure::Block,
        BackpressureArg::Drop => Backpressure::Drop,
    };
    let harness = Harness::new(n, hc);
    // Line-buffered: each record reaches the reader when its flow ends.
    let target = output_target(args).map_err(|e| Failure::Failed(format!("output: {e}")))?;
    let mut output = Output::new(
        args.format,
        args.top,
        LineWriter::with_capacity(1 << 16, target),
    );
    eprintln!(
        "flow-summary: capturing on {iface}: {n} worker{}, fanout group {group} ({mode_name}), \
ring {} x {} bytes per worker",
        if n == 1 { "" } else { "s" },
        args.ring_blocks,
        args.ring_block_size
    );

    let mut write_err = None;
    let reports = run_harness(
        args,
        &harness,
        sources,
        &config,
        &mut output,
        &mut write_err,
    )
    .map_err(|e| Failure::Failed(format!("workers: {e}")))?;
    let totals = Totals::of(&reports);
    let finished = match write_err {
        Some(e) => Err(e),
        None => output.finish(&totals.counters, &totals.tracker, &totals.session),
    };
    for r in &reports {
        eprintln!("flow-summary: {}", worker_line(r));
    }
    eprintln!("flow-summary: {}", totals_line(&totals));
    match finished {
        // `flow-summary … | head` closes the pipe early: not an error.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(Failure::Failed(format!("output: {e}")))
        }
        _ => {}
    }
    if let Some(e) = reports.iter().find_map(|r| r.error.as_ref()) {
        return Err(Failure::Failed(format!("{iface}: {e}")));
    }
    Ok(())
}
