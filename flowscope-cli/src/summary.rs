//! The human-readable report of `flow-summary --format table`: totals,
//! packet accounting, per-protocol counts and the top flows by bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, Write};

use flowscope::driver::PacketCounters;
use flowscope::track::TrackerStats;
use flowscope_core::{FiveTuple, FlowRecord, Timestamp};

/// Aggregates finished flows for the table report, keeping only the top N
/// flows (a bounded heap: memory does not grow with the number of flows).
pub struct Summary {
    top_n: usize,
    // Min-heap on (bytes, id) so the smallest of the kept flows is evicted first.
    top: BinaryHeap<Reverse<(u64, u64, TopFlow)>>,
    by_proto: BTreeMap<String, ProtoTotals>,
    by_conn_state: BTreeMap<&'static str, u64>,
    flows: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TopFlow {
    src: String,
    dst: String,
    proto: String,
    packets: u64,
    state: &'static str,
    history: String,
    duration_s: String,
}

#[derive(Clone, Copy, Debug, Default)]
struct ProtoTotals {
    flows: u64,
    packets: u64,
    bytes: u64,
}

impl Summary {
    /// A summary that keeps the `top_n` largest flows.
    pub fn new(top_n: usize) -> Self {
        Summary {
            top_n,
            top: BinaryHeap::new(),
            by_proto: BTreeMap::new(),
            by_conn_state: BTreeMap::new(),
            flows: 0,
            first: None,
            last: None,
        }
    }

    /// Adds one finished flow.
    pub fn add(&mut self, rec: &FlowRecord<FiveTuple>) {
        self.flows += 1;
        let s = &rec.stats;
        self.first = Some(self.first.map_or(s.first, |f| f.min(s.first)));
        self.last = Some(self.last.map_or(s.last, |l| l.max(s.last)));
        let bytes = s.initiator.frame_bytes + s.responder.frame_bytes;
        let t = self
            .by_proto
            .entry(rec.l4.eve_name().into_owned())
            .or_default();
        t.flows += 1;
        t.packets += s.packets();
        t.bytes += bytes;
        *self
            .by_conn_state
            .entry(rec.conn_state.as_str())
            .or_default() += 1;
        if self.top_n == 0 {
            return;
        }
        let worth_keeping = self.top.len() < self.top_n
            || self
                .top
                .peek()
                .is_some_and(|Reverse((b, id, _))| (bytes, rec.id.0) > (*b, *id));
        if worth_keeping {
            let (sa, sp, da, dp) = rec.endpoints();
            let flow = TopFlow {
                src: endpoint(sa, sp),
                dst: endpoint(da, dp),
                proto: rec.l4.eve_name().into_owned(),
                packets: s.packets(),
                state: rec.conn_state.as_str(),
                history: rec.history.to_string(),
                duration_s: format!("{:.3}", s.duration().as_secs_f64()),
            };
            self.top.push(Reverse((bytes, rec.id.0, flow)));
            if self.top.len() > self.top_n {
                self.top.pop();
            }
        }
    }

    /// Writes the report.
    pub fn write(
        &self,
        w: &mut impl Write,
        counters: &PacketCounters,
        tracker: &TrackerStats,
    ) -> io::Result<()> {
        writeln!(w, "packets          {}", counters.packets)?;
        writeln!(w, "bytes            {}", counters.frame_bytes)?;
        if let (Some(f), Some(l)) = (self.first, self.last) {
            writeln!(
                w,
                "time span        {:.6} s",
                l.saturating_duration_since(f).as_secs_f64()
            )?;
        }
        writeln!(w, "flows            {}", self.flows)?;
        writeln!(w)?;
        writeln!(w, "packet accounting")?;
        writeln!(w, "  in flows       {}", counters.tracked)?;
        writeln!(w, "  not IP         {}", counters.not_ip)?;
        writeln!(
            w,
            "  fragments      {}  (non-first IP fragments, not reassembled)",
            counters.fragments
        )?;
        writeln!(
            w,
            "  link type      {}  (unsupported link types)",
            counters.unsupported_link
        )?;
        writeln!(w, "  malformed      {}", counters.malformed_total())?;
        for (reason, n) in counters.malformed_by_reason() {
            writeln!(w, "    {:<22} {}", reason.as_str(), n)?;
        }
        writeln!(w)?;
        writeln!(w, "flow endings")?;
        writeln!(w, "  timeout        {}", tracker.ended_timeout)?;
        writeln!(w, "  reused tuple   {}", tracker.ended_reused)?;
        writeln!(w, "  evicted        {}", tracker.ended_evicted)?;
        writeln!(w, "  end of input   {}", tracker.ended_finished)?;
        writeln!(w)?;
        writeln!(
            w,
            "{:<10} {:>10} {:>12} {:>14}",
            "proto", "flows", "packets", "bytes"
        )?;
        for (proto, t) in &self.by_proto {
            writeln!(
                w,
                "{:<10} {:>10} {:>12} {:>14}",
                proto, t.flows, t.packets, t.bytes
            )?;
        }
        writeln!(w)?;
        write!(w, "conn_state")?;
        for (state, n) in &self.by_conn_state {
            write!(w, "  {state}={n}")?;
        }
        writeln!(w)?;
        if self.top_n > 0 && !self.top.is_empty() {
            writeln!(w)?;
            writeln!(w, "top {} flows by bytes", self.top.len())?;
            writeln!(
                w,
                "{:>12} {:>8} {:<6} {:<41} {:<41} {:<6} {:>10} history",
                "bytes", "packets", "proto", "source", "destination", "state", "duration"
            )?;
            let mut rows: Vec<_> = self.top.iter().map(|Reverse(r)| r).collect();
            rows.sort_by(|a, b| (b.0, a.1).cmp(&(a.0, b.1)));
            for (bytes, _, f) in rows {
                writeln!(
                    w,
                    "{:>12} {:>8} {:<6} {:<41} {:<41} {:<6} {:>10} {}",
                    bytes, f.packets, f.proto, f.src, f.dst, f.state, f.duration_s, f.history
                )?;
            }
        }
        Ok(())
    }
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}
