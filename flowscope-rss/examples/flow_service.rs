//! A minimal service embedding flowscope (docs/embedding.md walks through
//! it): N pinned workers capture live from one interface in an AF_PACKET
//! fanout group, each runs its own `SessionDriver` (extract → defragment →
//! track → reassemble → HTTP/TLS/DNS), and every ended flow becomes one
//! NDJSON line on stdout, written by the caller's thread. After the given
//! number of seconds the service stops: each worker drains its ring, ends
//! its flows, and the per-worker counters go to stderr.
//!
//! ```sh
//! cargo build --release -p flowscope-rss --example flow_service
//! sudo target/release/examples/flow_service eth0 2 10 > flows.ndjson
//! ```

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::emit::{FlowContext, LineWriter, Ndjson};
use flowscope::proto::AppMessage;
use flowscope_core::{FiveTuple, FlowEvent, FlowRecord};
use flowscope_rss::afpacket::{AfPacketConfig, AfPacketSource, FanoutMode};
use flowscope_rss::harness::{Backpressure, Emitter, Harness, HarnessConfig, Totals};
use flowscope_rss::PacketSource;

/// What a worker sends to the writer: an ended flow and its application
/// protocol, owned (the driver's event only borrows them).
type Ended = (FlowRecord<FiveTuple>, Option<&'static str>);

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || io::Error::other("usage: flow_service IFACE [WORKERS] [SECONDS]");
    let iface = args.next().ok_or_else(usage)?;
    let workers: usize = args
        .next()
        .map_or(Ok(2), |s| s.parse())
        .map_err(|_| usage())?
        .max(1);
    let seconds: u64 = args
        .next()
        .map_or(Ok(10), |s| s.parse())
        .map_err(|_| usage())?;

    // One socket per worker, all in one fanout group: the kernel hashes each
    // flow to one socket (cluster_flow), so each worker sees whole flows.
    let group = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let mut sources: Vec<Box<dyn PacketSource>> = Vec::new();
    for i in 0..workers {
        let cfg = AfPacketConfig::new(iface.clone())
            .fanout(group, FanoutMode::ClusterFlow)
            .source_id(u32::try_from(i).unwrap_or(u32::MAX));
        sources.push(Box::new(AfPacketSource::open(&cfg)?));
    }

    // Limits that bound memory are per driver: give each worker its share.
    let mut config = SessionConfig::default();
    config.track.max_flows = (config.track.max_flows / workers).max(1);
    config.memory_budget = (config.memory_budget / workers).max(1);

    let mut hc = HarnessConfig::default();
    // Never stall capture on a slow writer: drop records and count them.
    hc.backpressure = Backpressure::Drop;
    let harness = Harness::new(workers, hc);

    // Stop after `seconds` (a service would raise the flag on SIGTERM).
    let stop = harness.stop_flag();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });

    let mut out = LineWriter::<_, Ndjson>::new(io::BufWriter::new(io::stdout().lock()));
    let mut write_err = None;
    let reports = harness.run(
        sources,
        // On each worker's own (pinned) thread: its driver…
        |_| SessionDriver::with_default_parsers(config.clone()),
        // …and what it keeps of each event: ended flows, owned.
        |_| {
            |ev: DriverEvent<'_, AppMessage>, out: &mut Emitter<'_, Ended>| {
                if let DriverEvent::Flow {
                    event: FlowEvent::Ended(rec),
                    app_proto,
                } = ev
                {
                    out.emit((*rec, app_proto));
                }
            }
        },
        // On this thread: the one writer.
        |(rec, app): Ended| {
            let ctx = match app {
                Some(a) => FlowContext::default().with_app_proto(a),
                None => FlowContext::default(),
            };
            if write_err.is_none() {
                write_err = out.write_flow_with(&rec, &ctx).err();
            }
        },
    )?;
    out.finish()?.flush()?;
    if let Some(e) = write_err {
        return Err(e);
    }
    for r in &reports {
        eprintln!(
            "worker {}: packets={} kernel_drops={} events_dropped={} flows_created={}",
            r.worker,
            r.stats.packets,
            r.stats.source.drops,
            r.stats.events_dropped,
            r.tracker.flows_created
        );
    }
    let t = Totals::of(&reports);
    eprintln!("total: packets={}", t.stats.packets);
    Ok(())
}
