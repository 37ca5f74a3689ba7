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

use flowscope::proto::AppMessage;
use flowscope_cli::live::{stop_on_signals, totals_line, worker_line, Draining, StopWhen};
use flowscope_cli::options::share_between_workers;
use flowscope_prefilter::{AttachMode, AttachedMode, Prefilter, PrefilterConfig};
use flowscope_rss::afpacket::{AfPacketConfig, AfPacketSource, BpfProgram, FanoutMode};
use flowscope_rss::bypass::{BypassPolicy, Bypasser, SharedPrefilter};
use flowscope_rss::harness::{Backpressure, Harness, HarnessConfig, Totals};
use flowscope_rss::PacketSource;

use super::{
    output_target, run_harness, session_config, Args, BackpressureArg, BypassArg, BypassMode,
    Cluster, Output, EXIT_FAILED, EXIT_USAGE,
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

/// `--bypass`: loads the XDP program and attaches it to `iface`.
fn prefilter(args: &Args, iface: &str) -> Result<Option<SharedPrefilter>, Failure> {
    let Some(rule) = args.bypass else {
        return Ok(None);
    };
    if rule == BypassArg::Tls && args.flows_only {
        return Err(Failure::Usage(
            "--bypass tls needs the TLS parser: drop --flows-only".into(),
        ));
    }
    let mut pf = Prefilter::load(&PrefilterConfig::new()).map_err(|e| {
        Failure::Failed(format!(
            "--bypass: {e} (needs root or CAP_BPF + CAP_NET_ADMIN)"
        ))
    })?;
    let mode = match args.bypass_mode {
        BypassMode::Auto => AttachMode::Auto,
        BypassMode::Native => AttachMode::Native,
        BypassMode::Generic => AttachMode::Generic,
    };
    let used = pf
        .attach(iface, mode)
        .map_err(|e| Failure::Failed(format!("--bypass: attaching to {iface}: {e}")))?;
    eprintln!(
        "flow-summary: XDP bypass attached to {iface} ({} mode)",
        match used {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
            _ => "other",
        }
    );
    Ok(Some(SharedPrefilter::new(pf)))
}

fn policy(rule: BypassArg) -> BypassPolicy<AppMessage> {
    match rule {
        BypassArg::Tls => BypassPolicy::new().after_tls_handshake(),
        BypassArg::Bytes(n) => BypassPolicy::new().after_bytes(n),
    }
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
    // After the sockets: a bad interface name fails there, with the
    // capture's own message. Dropped (detached) when this function returns,
    // on every path.
    let shared = prefilter(args, iface)?;

    let mut config = session_config(args);
    // The flow limit and the memory budget: each worker gets its share.
    share_between_workers(&mut config, n);
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
    let make_bypass = |_| {
        let (shared, rule) = (shared.as_ref()?, args.bypass?);
        Some(Bypasser::new(
            policy(rule),
            Box::new(shared.clone()),
            config.extract.clone(),
            &config.track,
        ))
    };
    let reports = run_harness(
        args,
        &harness,
        sources,
        &config,
        &mut output,
        &mut write_err,
        make_bypass,
    )
    .map_err(|e| Failure::Failed(format!("workers: {e}")))?;
    if let Some(shared) = shared {
        let st = shared.lock().stats();
        eprintln!(
            "flow-summary: prefilter inserts_ok={} inserts_failed={} removed={} entries_v4={} \
entries_v6={} bypassed_packets={} bypassed_bytes={}",
            st.inserts_ok,
            st.inserts_failed,
            st.removed,
            st.entries_v4,
            st.entries_v6,
            st.bypassed_packets,
            st.bypassed_bytes
        );
        // Detach now, before the output is finished.
        drop(shared);
    }
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
