//! RFC 4180 CSV: a header row, then one row per flow, CRLF line ends.
//!
//! Column names reuse EVE's (and Zeek's, for `conn_state`, `history`,
//! `missed_bytes`) with the same meaning:
//! - `start`, `end`: RFC 3339 UTC with nanoseconds; `duration`: seconds with
//!   nine decimals;
//! - `src_*` is the initiator; `*_toserver` counts what it sent;
//!   `bytes_*` are frame bytes (EVE), `ip_bytes_*` IP bytes (Zeek
//!   `*_ip_bytes`), `payload_bytes_*` transport payload, every packet counted;
//! - `src_port`/`dest_port`: ports for TCP, UDP and SCTP; for ICMP the
//!   type and the counterpart type or code (Zeek's `id.orig_p`/`id.resp_p`);
//!   empty for other protocols;
//! - `proto`: EVE's name; `state`, `reason`: EVE `flow.state`, `flow.reason`;
//! - `missed_bytes`: both directions added (Zeek);
//! - `vlan`: VLAN ids, outermost first, comma-separated (so quoted when
//!   there are two); `tunnel`: the innermost tunnel kind (`vxlan`, `gre`,
//!   `geneve`, `gtpu`, `erspan`, `ip`, …);
//! - an unknown or absent value is an empty field.

use std::io::{self, Write};

use flowscope_core::{FiveTuple, FlowRecord, L4Proto};

use super::derive::{encap_layer_name, has_ports};
use super::text::{write_csv_field, write_eve_proto, write_plain_ip};
use super::time::{write_duration_secs, write_rfc3339_nanos};
use super::{FlowContext, LineFormat, LineWriter};

/// The header row (without its CRLF).
pub(crate) const HEADER: &str = "flow_id,community_id,start,end,duration,src_ip,src_port,dest_ip,dest_port,proto,app_proto,state,reason,conn_state,history,pkts_toserver,pkts_toclient,bytes_toserver,bytes_toclient,ip_bytes_toserver,ip_bytes_toclient,payload_bytes_toserver,payload_bytes_toclient,missed_bytes,vlan,tunnel";

/// RFC 4180 CSV: a header row, then one row per flow.
#[derive(Clone, Copy, Debug, Default)]
pub struct Csv;

/// Writes flows as RFC 4180 CSV; the header row goes out with the first
/// flow (or at close when there is none).
pub type CsvWriter<W> = LineWriter<W, Csv>;

impl LineFormat for Csv {
    fn header(
        &mut self,
        out: &mut Vec<u8>,
        _first: Option<&FlowRecord<FiveTuple>>,
    ) -> io::Result<()> {
        out.extend_from_slice(HEADER.as_bytes());
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn line(
        &mut self,
        out: &mut Vec<u8>,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        csv_row(out, rec, ctx)
    }
}

/// Appends one row (with its CRLF) to `out`.
fn csv_row(
    out: &mut Vec<u8>,
    rec: &FlowRecord<FiveTuple>,
    ctx: &FlowContext<'_>,
) -> io::Result<()> {
    let (src, sport, dst, dport) = rec.endpoints();
    let st = &rec.stats;
    let (ts, tc) = (&st.initiator, &st.responder);
    let ports = has_ports(rec.l4) || matches!(rec.l4, L4Proto::Icmp | L4Proto::Icmpv6);

    write!(out, "{},", rec.id.0)?;
    if let Some(cid) = &rec.community_id {
        // Base64 and "1:" only: never needs quoting.
        write!(out, "{cid}")?;
    }
    out.push(b',');
    write_rfc3339_nanos(out, st.first)?;
    out.push(b',');
    write_rfc3339_nanos(out, st.last)?;
    out.push(b',');
    write_duration_secs(out, st.duration())?;
    out.push(b',');
    write_plain_ip(out, src)?;
    out.push(b',');
    if ports {
        write!(out, "{sport}")?;
    }
    out.push(b',');
    write_plain_ip(out, dst)?;
    out.push(b',');
    if ports {
        write!(out, "{dport}")?;
    }
    out.push(b',');
    write_eve_proto(out, rec.l4)?;
    out.push(b',');
    if let Some(app) = ctx.app_proto {
        write_csv_field(out, app);
    }
    write!(
        out,
        ",{},{},{},",
        rec.state.as_str(),
        rec.end_reason.eve_reason(),
        rec.conn_state.as_str()
    )?;
    write_csv_field(out, rec.history.as_str());
    write!(
        out,
        ",{},{},{},{},{},{},{},{},{},",
        ts.packets,
        tc.packets,
        ts.frame_bytes,
        tc.frame_bytes,
        ts.ip_bytes,
        tc.ip_bytes,
        ts.payload_bytes,
        tc.payload_bytes,
        ts.missed_bytes.saturating_add(tc.missed_bytes)
    )?;
    let vlans = rec.encap.vlan_ids();
    if vlans.len() > 1 {
        out.push(b'"');
    }
    for (n, id) in vlans.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write!(out, "{id}")?;
    }
    if vlans.len() > 1 {
        out.push(b'"');
    }
    out.push(b',');
    if let Some(t) = &rec.encap.tunnel {
        out.extend_from_slice(encap_layer_name(t).as_bytes());
    } else if rec.encap.outer.is_some() {
        out.extend_from_slice(b"ip");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::testutil::*;
    use super::*;

    /// A small RFC 4180 reader (section 2 grammar): fields separated by
    /// commas, records by CRLF, quoted fields with "" for a quote.
    fn parse_csv(s: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = s.chars().peekable();
        let mut quoted = false;
        let mut at_field_start = true;
        while let Some(c) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                '"' => panic!("bare quote inside an unquoted field"),
                ',' => {
                    record.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "CR without LF");
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    at_field_start = true;
                }
                '\n' => panic!("bare LF as record separator"),
                _ => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        assert!(!quoted, "unterminated quoted field");
        assert!(
            field.is_empty() && record.is_empty(),
            "last record without CRLF"
        );
        records
    }

    fn write_all(recs: &[(FlowRecord<FiveTuple>, Option<&str>)]) -> String {
        let mut w = CsvWriter::new(Vec::new());
        for (r, app) in recs {
            let ctx = app.map_or_else(FlowContext::default, |a| {
                FlowContext::default().with_app_proto(a)
            });
            w.write_flow_with(r, &ctx).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn tcp_sf_row() {
        let out = write_all(&[(tcp_sf(), Some("http"))]);
        let want = concat!(
            "4242,1:AAECAwQFBgcICQoLDA0ODxAREhM=,2023-11-14T22:13:20.123456789Z,",
            "2023-11-14T22:13:21.623456789Z,1.500000000,192.168.1.100,49152,10.0.0.1,80,TCP,http,",
            "closed,timeout,SF,ShADadFf,6,4,520,760,436,704,120,500,0,,\r\n"
        );
        assert_eq!(out, format!("{HEADER}\r\n{want}"));
    }

    #[test]
    fn other_fixture_rows() {
        let out = write_all(&[
            (udp_oneway(), None),
            (icmp_echo(), None),
            (tcp_v6(), None),
            (udp_vlan(), None),
            (udp_tunnel(), None),
            (syn_only(), None),
        ]);
        let rows: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(rows[0], HEADER);
        assert_eq!(
            rows[1],
            "7,,2023-11-14T22:13:20.123456789Z,2023-11-14T22:13:22.123456789Z,2.000000000,10.0.0.5,5353,224.0.0.251,5353,UDP,,new,timeout,S0,D,3,0,300,0,258,0,174,0,0,,"
        );
        // ICMP: type 8 and counterpart 0 in the port columns, as Zeek's id.orig_p/id.resp_p.
        assert_eq!(
            rows[2],
            "99,,2023-11-14T22:13:20.123456789Z,2023-11-14T22:13:20.124456789Z,0.001000000,10.0.0.1,8,10.0.0.2,0,ICMP,,established,shutdown,OTH,,1,1,98,98,84,84,56,56,0,,"
        );
        assert!(rows[3].starts_with("1000000007,,2023-11-14T22:13:20.123456789Z,2023-11-14T22:13:20.373456789Z,0.250000000,2001:db8::1,51000,2001:db8::2,443,TCP,"));
        assert!(
            rows[4].ends_with(",SF,Dd,1,1,82,98,60,76,32,48,0,\"100,200\","),
            "{}",
            rows[4]
        );
        assert!(rows[4].contains(",forced,"));
        assert!(
            rows[5].ends_with(",S0,D,2,0,200,0,100,0,44,0,15,,vxlan"),
            "{}",
            rows[5]
        );
        assert!(rows[6].contains(
            ",0.000000000,10.0.0.9,12345,10.0.0.10,22,TCP,,new,timeout,S0,S,1,0,74,0,60,0,0,0,0,,"
        ));
        assert_eq!(rows[7], "");
        assert_eq!(rows.len(), 8);
    }

    #[test]
    fn round_trip_with_quoting() {
        let nasty = "a,b \"c\"\r\nd";
        let out = write_all(&[
            (tcp_sf(), Some(nasty)),
            (udp_vlan(), Some("dns")),
            (syn_only(), None),
        ]);
        let recs = parse_csv(&out);
        assert_eq!(recs.len(), 4);
        let header: Vec<&str> = HEADER.split(',').collect();
        assert_eq!(header.len(), 26);
        for r in &recs {
            assert_eq!(r.len(), header.len());
        }
        assert_eq!(recs[0], header);
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        assert_eq!(recs[1][col("app_proto")], nasty);
        assert_eq!(recs[1][col("src_ip")], "192.168.1.100");
        assert_eq!(recs[1][col("bytes_toclient")], "760");
        assert_eq!(recs[2][col("vlan")], "100,200");
        assert_eq!(recs[2][col("app_proto")], "dns");
        assert_eq!(recs[3][col("app_proto")], "");
        assert_eq!(recs[3][col("duration")], "0.000000000");
    }

    #[test]
    fn header_only_when_empty() {
        assert_eq!(write_all(&[]), format!("{HEADER}\r\n"));
    }
}
