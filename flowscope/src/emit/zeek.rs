//! Zeek conn.log in Zeek's ASCII (tab-separated) log format.
//!
//! Header, columns and value rules follow Zeek's ASCII writer
//! (`src/logging/writers/ascii/Ascii.cc`: `WriteHeader`, `#close` in
//! `CloseFile`) and `scripts/base/protocols/conn/main.zeek` (`Conn::Info`,
//! `set_conn`), with the default column set of Zeek up to 7.0 (Zeek 7.1
//! appended `ip_proto`, which this writer does not emit).
//!
//! - `#open` / `#close`: Zeek stamps them with its clock, in local time. The
//!   library has no clock, so `#open` is the start of the first flow written
//!   and `#close` the latest `last` packet time of all flows written, both in
//!   UTC; with no flow at all both are the epoch. The header is written with
//!   the first flow (as Zeek opens its file on the first write) or by
//!   `finish`.
//! - `ts`: flow start; `duration`, `orig_bytes`, `resp_bytes` are set only
//!   when the duration is positive (`set_conn`: `if ( c$duration > 0secs )`),
//!   else written as `-`. Times are whole microseconds (what Zeek gets from
//!   libpcap), and the duration is the difference of those.
//! - `uid`: `C` + base 62 of the flow id, digits as Zeek's `uitoa_n` emits
//!   them; deterministic, and distinct flow ids give distinct uids.
//! - `id.orig_p` / `id.resp_p` for ICMP: the type and the counterpart type
//!   or code, exactly Zeek's `ICMP4_counterpart` convention, which our key
//!   already uses.
//! - `service`: the context's `app_proto`, lowercased (`to_lower`), else `-`;
//!   `tls` is written `ssl`, the name of Zeek's TLS analyzer.
//! - `local_orig` / `local_resp`: `-` (no `Site::local_nets`).
//! - `orig_bytes` / `resp_bytes`: sequence-space stream bytes
//!   ([`DirStats::stream_bytes`](flowscope_core::DirStats)); `missed_bytes`:
//!   both directions' gaps added.
//! - `tunnel_parents`: `-` when not tunnelled; else one deterministic
//!   stand-in uid per tunnel (see `derive::tunnel_parent_id`), as we do not
//!   log the outer connection.

use std::io::{self, Write};

use flowscope_core::{FiveTuple, FlowRecord, Timestamp};

use super::derive::tunnel_parent_id;
use super::text::{write_zeek_ip, write_zeek_str, write_zeek_uid};
use super::time::{micros, write_micros_as_secs, write_zeek_file_time};
use super::{FlowContext, LineFormat, LineWriter};

/// The conn.log columns, in order.
const FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";

/// The Zeek types of [`FIELDS`], in the same order.
const TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]";

/// Zeek's conn.log: the ASCII writer's header, one line per flow, `#close`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeekConn {
    /// The latest packet time of the flows written so far (`#close`).
    last_seen: Timestamp,
}

/// Writes a Zeek conn.log. `#open` is the first flow's start and `#close`
/// the latest packet time written (the library has no clock; Zeek writes
/// its own clock there), so the same capture gives the same log.
pub type ZeekConnWriter<W> = LineWriter<W, ZeekConn>;

impl LineFormat for ZeekConn {
    fn header(
        &mut self,
        out: &mut Vec<u8>,
        first: Option<&FlowRecord<FiveTuple>>,
    ) -> io::Result<()> {
        write_header(out, first.map_or(Timestamp::ZERO, |r| r.stats.first))
    }

    fn line(
        &mut self,
        out: &mut Vec<u8>,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        self.last_seen = self.last_seen.max(rec.stats.last);
        conn_line(out, rec, ctx)
    }

    fn footer(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend_from_slice(b"#close\t");
        write_zeek_file_time(out, self.last_seen)?;
        out.push(b'\n');
        Ok(())
    }
}

/// The header lines, exactly as Zeek's ASCII writer lays them out.
fn write_header(out: &mut Vec<u8>, open: Timestamp) -> io::Result<()> {
    // "separator" is followed by a space (Zeek: "Always use space as separator
    // here"); the other fields by the separator itself.
    out.extend_from_slice(
        b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t",
    );
    write_zeek_file_time(out, open)?;
    write!(out, "\n#fields\t{FIELDS}\n#types\t{TYPES}\n")
}

/// Appends one conn.log line (with its `\n`) to `out`.
fn conn_line(
    out: &mut Vec<u8>,
    rec: &FlowRecord<FiveTuple>,
    ctx: &FlowContext<'_>,
) -> io::Result<()> {
    let (src, sport, dst, dport) = rec.endpoints();
    let st = &rec.stats;
    let (orig, resp) = (&st.initiator, &st.responder);
    let (start_us, end_us) = (micros(st.first), micros(st.last));
    let duration_us = end_us.saturating_sub(start_us);

    write_micros_as_secs(out, start_us)?;
    out.push(b'\t');
    write_zeek_uid(out, b'C', rec.id.0);
    out.push(b'\t');
    write_zeek_ip(out, src)?;
    write!(out, "\t{sport}\t")?;
    write_zeek_ip(out, dst)?;
    write!(out, "\t{dport}\t{}\t", rec.l4.zeek_name())?;
    match ctx.app_proto {
        // Zeek names its TLS analyzer (and so the service) "ssl".
        Some(service) if service.eq_ignore_ascii_case("tls") => out.extend_from_slice(b"ssl"),
        Some(service) => write_zeek_str(out, service, true)?,
        None => out.push(b'-'),
    }
    out.push(b'\t');
    if duration_us > 0 {
        write_micros_as_secs(out, duration_us)?;
        write!(out, "\t{}\t{}\t", orig.stream_bytes, resp.stream_bytes)?;
    } else {
        out.extend_from_slice(b"-\t-\t-\t");
    }
    let missed = orig.missed_bytes.saturating_add(resp.missed_bytes);
    write!(out, "{}\t-\t-\t{missed}\t", rec.conn_state.as_str())?;
    if rec.history.is_empty() {
        out.push(b'-');
    } else {
        write_zeek_str(out, rec.history.as_str(), false)?;
    }
    write!(
        out,
        "\t{}\t{}\t{}\t{}\t",
        orig.packets, orig.ip_bytes, resp.packets, resp.ip_bytes
    )?;
    match tunnel_parent_id(rec) {
        Some(parent) => write_zeek_uid(out, b'C', parent),
        None => out.push(b'-'),
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::testutil::*;
    use super::*;

    const HEADER_T0: &str = concat!(
        "#separator \\x09\n",
        "#set_separator\t,\n",
        "#empty_field\t(empty)\n",
        "#unset_field\t-\n",
        "#path\tconn\n",
        "#open\t2023-11-14-22-13-20\n",
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t",
        "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t",
        "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n",
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t",
        "string\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n",
    );

    fn body(recs: &[(FlowRecord<FiveTuple>, Option<&str>)]) -> String {
        let mut w = ZeekConnWriter::new(Vec::new());
        for (r, app) in recs {
            let ctx = match app {
                Some(a) => FlowContext::default().with_app_proto(a),
                None => FlowContext::default(),
            };
            w.write_flow_with(r, &ctx).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    fn only_line(rec: FlowRecord<FiveTuple>) -> String {
        let out = body(&[(rec, None)]);
        let line = out.lines().find(|l| !l.starts_with('#')).unwrap();
        line.to_owned()
    }

    #[test]
    fn header_lines_and_footer() {
        let out = body(&[(tcp_sf(), Some("HTTP")), (udp_oneway(), None)]);
        assert!(out.starts_with(HEADER_T0), "{out}");
        // #close: the latest last-packet time: udp_oneway ends at T0 + 2 s.
        assert!(out.ends_with("#close\t2023-11-14-22-13-22\n"), "{out}");
        // The 21 column types match the 21 column names.
        assert_eq!(FIELDS.split('\t').count(), 21);
        assert_eq!(TYPES.split('\t').count(), 21);
    }

    #[test]
    fn tcp_sf_line() {
        let out = body(&[(tcp_sf(), Some("HTTP"))]);
        let line = out.lines().nth(8).unwrap();
        // uid: 4242 = 1*62^2 + 6*62 + 26 -> digits 26,6,1 (least first) = "q61".
        assert_eq!(62 * 62 + 6 * 62 + 26, 4242);
        // duration 1.5 s > 0: duration and stream bytes set; service lowercased.
        assert_eq!(
            line,
            "1700000000.123456\tCq61\t192.168.1.100\t49152\t10.0.0.1\t80\ttcp\thttp\t1.500000\t100\t500\tSF\t-\t-\t0\tShADadFf\t6\t436\t4\t704\t-"
        );
    }

    #[test]
    fn udp_icmp_ipv6_vlan() {
        assert_eq!(
            only_line(udp_oneway()),
            "1700000000.123456\tC7\t10.0.0.5\t5353\t224.0.0.251\t5353\tudp\t-\t2.000000\t174\t0\tS0\t-\t-\t0\tD\t3\t258\t0\t0\t-"
        );
        // ICMP echo: orig_p = type 8, resp_p = counterpart 0; no history -> unset.
        // uid 99 = 1*62 + 37 -> "B1" (37 = 'B').
        assert_eq!(
            only_line(icmp_echo()),
            "1700000000.123456\tCB1\t10.0.0.1\t8\t10.0.0.2\t0\ticmp\t-\t0.001000\t56\t56\tOTH\t-\t-\t0\t-\t1\t84\t1\t84\t-"
        );
        // IPv6 compressed as inet_ntop does. 1_000_000_007 =
        // 1*62^5 + 5*62^4 + 41*62^3 + 55*62^2 + 42*62 + 23: digits 23 n, 42 G, 55 T, 41 F, 5, 1.
        assert_eq!(
            62u64.pow(5) + 5 * 62u64.pow(4) + 41 * 62u64.pow(3) + 55 * 62 * 62 + 42 * 62 + 23,
            1_000_000_007
        );
        assert_eq!(
            only_line(tcp_v6()),
            "1700000000.123456\tCnGTF51\t2001:db8::1\t51000\t2001:db8::2\t443\ttcp\t-\t0.250000\t50\t0\tS1\t-\t-\t0\tShAD\t3\t246\t2\t164\t-"
        );
        // VLANs are not a conn.log column.
        assert_eq!(
            only_line(udp_vlan()),
            "1700000000.123456\tCc\t10.1.1.1\t33000\t10.1.1.53\t53\tudp\t-\t0.030000\t32\t48\tSF\t-\t-\t0\tDd\t1\t60\t1\t76\t-"
        );
    }

    #[test]
    fn zero_duration_leaves_bytes_unset() {
        // A single SYN: duration 0 -> duration, orig_bytes, resp_bytes are '-'.
        assert_eq!(
            only_line(syn_only()),
            "1700000000.123456\tC1\t10.0.0.9\t12345\t10.0.0.10\t22\ttcp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t60\t0\t0\t-"
        );
        // udp_tunnel lasts 1 us: positive, so set; missed = 10 + 5.
        let line = only_line(udp_tunnel());
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[8..11], ["0.000001", "44", "0"]);
        assert_eq!(cols[14], "15");
        // tunnel_parents: one uid, C + base62 of a value with bit 63 set (11 digits).
        assert!(
            cols[20].starts_with('C') && cols[20].len() == 12,
            "{}",
            cols[20]
        );
        // 300 ns apart inside one microsecond: Zeek sees duration 0.
        let mut r = syn_only();
        r.stats.first = Timestamp::from_nanos(T0 - 456_789 + 100);
        r.stats.last = Timestamp::from_nanos(T0 - 456_789 + 400);
        assert!(only_line(r).contains("\ttcp\t-\t-\t-\t-\tS0\t"));
    }

    #[test]
    fn no_flows_still_a_valid_log() {
        let out = body(&[]);
        assert!(out.contains("#open\t1970-01-01-00-00-00\n"));
        assert!(out.ends_with("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n#close\t1970-01-01-00-00-00\n"));
    }

    #[test]
    fn service_is_escaped() {
        let out = body(&[
            (udp_oneway(), Some("a\tb")),
            (udp_oneway(), Some("-")),
            (udp_oneway(), Some("")),
        ]);
        let services: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').nth(7).unwrap())
            .collect();
        assert_eq!(services, ["a\\x09b", "\\x2d", "(empty)"]);
    }
}
