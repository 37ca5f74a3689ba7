//! The human-readable report of `flow-summary --format table`: totals,
//! packet accounting, per-protocol counts, the top flows by bytes and the
//! top TLS server names, HTTP hosts and DNS query names.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{self, Write};

use flowscope::driver::{PacketCounters, SessionCounters};
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
    by_app: BTreeMap<&'static str, u64>,
    flows: u64,
    bypassed: BypassTotals,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    /// TLS server names (SNI of each ClientHello).
    pub sni: NameCounts,
    /// HTTP `Host` values (one per request).
    pub http_hosts: NameCounts,
    /// DNS query names (one per query message).
    pub dns_names: NameCounts,
}

/// Counts of names, bounded: past `CAP` distinct names, new names are only
/// counted in `others` (a DNS tunnel or a scan cannot grow it without end).
#[derive(Debug, Default)]
pub struct NameCounts {
    counts: HashMap<String, u64>,
    others: u64,
    total: u64,
}

impl NameCounts {
    /// Most distinct names kept.
    pub const CAP: usize = 65_536;

    /// Counts one occurrence of `name`.
    pub fn add(&mut self, name: &str) {
        self.total += 1;
        if let Some(n) = self.counts.get_mut(name) {
            *n += 1;
        } else if self.counts.len() < Self::CAP {
            self.counts.insert(name.to_owned(), 1);
        } else {
            self.others += 1;
        }
    }

    /// The `n` most frequent names, most frequent first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    fn write(&self, w: &mut impl Write, title: &str, n: usize) -> io::Result<()> {
        if self.total == 0 || n == 0 {
            return Ok(());
        }
        writeln!(w)?;
        writeln!(
            w,
            "top {title} ({} seen, {} distinct)",
            self.total,
            self.counts.len()
        )?;
        for (name, c) in self.top(n) {
            writeln!(w, "{c:>10}  {name}")?;
        }
        if self.others > 0 {
            writeln!(
                w,
                "{:>10}  (names past the first {} distinct)",
                self.others,
                Self::CAP
            )?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TopFlow {
    src: String,
    dst: String,
    proto: String,
    packets: u64,
    bypassed_packets: u64,
    state: &'static str,
    history: String,
    duration_s: String,
}

/// What the kernel dropped for bypassed flows (XDP): packets the capture
/// never saw, already counted in those flows' records.
#[derive(Clone, Copy, Debug, Default)]
struct BypassTotals {
    flows: u64,
    packets: u64,
    bytes: u64,
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
            by_app: BTreeMap::new(),
            flows: 0,
            bypassed: BypassTotals::default(),
            first: None,
            last: None,
            sni: NameCounts::default(),
            http_hosts: NameCounts::default(),
            dns_names: NameCounts::default(),
        }
    }

    /// Adds one finished flow and the protocol its parser found.
    pub fn add(&mut self, rec: &FlowRecord<FiveTuple>, app_proto: Option<&'static str>) {
        self.add_with_bypassed(rec, app_proto, 0);
    }

    /// Adds a bypassed flow: its record already counts everything (the
    /// packets the capture saw and the ones the kernel dropped for it);
    /// `packets` and `bytes` are the kernel's share, reported apart.
    pub fn add_bypassed(
        &mut self,
        rec: &FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
        packets: u64,
        bytes: u64,
    ) {
        self.bypassed.flows += 1;
        self.bypassed.packets += packets;
        self.bypassed.bytes += bytes;
        self.add_with_bypassed(rec, app_proto, packets);
    }

    fn add_with_bypassed(
        &mut self,
        rec: &FlowRecord<FiveTuple>,
        app_proto: Option<&'static str>,
        bypassed_packets: u64,
    ) {
        self.flows += 1;
        if let Some(app) = app_proto {
            *self.by_app.entry(app).or_default() += 1;
        }
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
                bypassed_packets,
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
        sessions: &SessionCounters,
    ) -> io::Result<()> {
        writeln!(w, "packets          {}", counters.packets)?;
        writeln!(w, "bytes            {}", counters.frame_bytes)?;
        let by = &self.bypassed;
        if by.flows > 0 {
            // `packets` and `bytes` above are what the capture saw; the
            // flow counts below include these as well.
            writeln!(
                w,
                "bypassed         {} packets, {} bytes in {} flows  (dropped by the XDP prefilter; \
counted in the flows below)",
                by.packets, by.bytes, by.flows
            )?;
            writeln!(
                w,
                "flow packets     {}  (captured + bypassed)",
                counters.packets.saturating_add(by.packets)
            )?;
        }
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
            "  fragments      {}  (IP fragments; {} datagrams rebuilt and tracked, {} rebuilt but malformed)",
            counters.fragments, sessions.datagrams_reassembled, sessions.reassembled_malformed
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
        write!(w, "app_proto ")?;
        for (app, n) in &self.by_app {
            write!(w, "  {app}={n}")?;
        }
        writeln!(
            w,
            "  (messages {}, anomalies {}, gaps {}, unidentified TCP {})",
            sessions.messages, sessions.anomalies, sessions.gaps, sessions.unidentified_streams
        )?;
        if self.top_n > 0 && !self.top.is_empty() {
            writeln!(w)?;
            writeln!(w, "top {} flows by bytes", self.top.len())?;
            // The bypassed column only when a bypass ran: file reports keep
            // their layout.
            let with_bypass = self.bypassed.flows > 0;
            write!(w, "{:>12} {:>8} ", "bytes", "packets")?;
            if with_bypass {
                write!(w, "{:>9} ", "bypassed")?;
            }
            writeln!(
                w,
                "{:<6} {:<41} {:<41} {:<6} {:>10} history",
                "proto", "source", "destination", "state", "duration"
            )?;
            let mut rows: Vec<_> = self.top.iter().map(|Reverse(r)| r).collect();
            rows.sort_by(|a, b| (b.0, a.1).cmp(&(a.0, b.1)));
            for (bytes, _, f) in rows {
                write!(w, "{:>12} {:>8} ", bytes, f.packets)?;
                if with_bypass {
                    write!(w, "{:>9} ", f.bypassed_packets)?;
                }
                writeln!(
                    w,
                    "{:<6} {:<41} {:<41} {:<6} {:>10} {}",
                    f.proto, f.src, f.dst, f.state, f.duration_s, f.history
                )?;
            }
        }
        self.sni.write(w, "TLS server names", self.top_n)?;
        self.http_hosts.write(w, "HTTP hosts", self.top_n)?;
        self.dns_names.write(w, "DNS query names", self.top_n)?;
        Ok(())
    }
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope_core::{FlowId, L4Proto};

    fn record(id: u64, port: u16, packets: u64, bytes: u64) -> FlowRecord<FiveTuple> {
        let (key, o) =
            FiveTuple::from_directed([198, 18, 0, 1].into(), port, [198, 18, 0, 2].into(), 443, 6);
        let mut r = FlowRecord::new(key, FlowId(id), o, L4Proto::Tcp);
        r.stats.initiator.packets = packets;
        r.stats.initiator.frame_bytes = bytes;
        r
    }

    fn report(s: &Summary, captured: u64) -> String {
        let mut c = PacketCounters::default();
        c.packets = captured;
        let mut out = Vec::new();
        s.write(
            &mut out,
            &c,
            &TrackerStats::default(),
            &SessionCounters::default(),
        )
        .unwrap_or_default();
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn bypassed_packets_are_in_the_totals_and_per_flow() {
        let mut s = Summary::new(10);
        // A plain flow: 10 packets, 1000 bytes, all captured.
        s.add(&record(1, 40000, 10, 1000), None);
        // A bypassed flow: 100 packets / 10 000 bytes in all, of which the
        // kernel dropped 90 / 9 000, so the capture saw 10.
        s.add_bypassed(&record(2, 40001, 100, 10_000), Some("tls"), 90, 9_000);
        let text = report(&s, 20);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line in\n{text}"))
                .to_owned()
        };
        assert!(line("packets ").ends_with(" 20"), "captured only");
        assert!(
            line("bypassed ").contains("90 packets, 9000 bytes in 1 flows"),
            "{text}"
        );
        // 20 captured + 90 bypassed = the 110 the two records hold.
        assert!(line("flow packets ").contains(" 110 "), "{text}");
        // Per protocol: the records' own counts (bypassed included).
        let tcp = line("TCP ");
        let cols: Vec<&str> = tcp.split_whitespace().collect();
        assert_eq!(cols, ["TCP", "2", "110", "11000"]);
        // Top flows: the bypassed column shows each flow's kernel share.
        let head = line("       bytes");
        assert!(head.contains("bypassed"), "{head}");
        let row = |port: &str| {
            text.lines()
                .find(|l| l.contains(&format!("198.18.0.1:{port}")))
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert_eq!(row("40001"), "10000 100 90");
        assert_eq!(row("40000"), "1000 10 0");
    }

    #[test]
    fn without_bypass_the_layout_is_unchanged() {
        let mut s = Summary::new(10);
        s.add(&record(1, 40000, 10, 1000), None);
        let text = report(&s, 10);
        assert!(!text.contains("bypassed"), "{text}");
        assert!(!text.contains("flow packets"), "{text}");
        let row = text
            .lines()
            .find(|l| l.contains("198.18.0.1:40000"))
            .unwrap_or_default();
        // bytes, packets, then the protocol.
        let cols: Vec<&str> = row.split_whitespace().take(3).collect();
        assert_eq!(cols, ["1000", "10", "TCP"]);
    }
}
