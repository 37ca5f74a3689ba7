//! Suricata EVE JSON flow events (`"event_type":"flow"`), one per line.
//!
//! Fields, order and meaning follow Suricata's own flow logger
//! (`src/output-json-flow.c`: `CreateEveHeaderFromFlow`, `EveAddFlow`,
//! `EveFlowLogJSON`, then `EveAddCommonOptions` for `community_id`, then the
//! `tcp` object), and every line validates against Suricata's
//! `etc/schema.json`, which allows no other fields.
//!
//! Where we differ, on purpose or for lack of data:
//! - `timestamp` is the flow's first packet (Suricata writes its clock at
//!   logging time, which depends on its timeout settings); it equals
//!   `flow.start`.
//! - `tcp.state` is derived from our endpoint states (see
//!   `derive::suricata_tcp_state`); `ts_max_regions`/`tc_max_regions` and
//!   `in_iface` are not written (we have no such data).
//! - For request/reply ICMP types the code is written as 0 (see
//!   `derive::icmp_fields`).

use std::io::{self, Write};

use flowscope_core::{FiveTuple, FlowRecord};

use super::derive::{has_ports, icmp_fields, suricata_tcp_state};
use super::text::{ip_version, write_eve_proto, write_json_str, write_suricata_ip};
use super::time::write_eve_time;
use super::{FlowContext, LineFormat, LineWriter};

/// Suricata EVE `flow` events, one JSON object per line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Eve;

/// Writes Suricata EVE `flow` events, one JSON object per line.
pub type EveWriter<W> = LineWriter<W, Eve>;

impl LineFormat for Eve {
    fn line(
        &mut self,
        out: &mut Vec<u8>,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        eve_line(out, rec, ctx)
    }
}

/// Appends one EVE flow line (with its `\n`) to `out`.
fn eve_line(
    out: &mut Vec<u8>,
    rec: &FlowRecord<FiveTuple>,
    ctx: &FlowContext<'_>,
) -> io::Result<()> {
    let (src, sport, dst, dport) = rec.endpoints();
    let st = &rec.stats;
    let (ts, tc) = (&st.initiator, &st.responder);

    out.extend_from_slice(b"{\"timestamp\":\"");
    write_eve_time(out, st.first)?;
    write!(out, "\",\"flow_id\":{},\"event_type\":\"flow\"", rec.id.0)?;
    let vlans = rec.encap.vlan_ids();
    if !vlans.is_empty() {
        out.extend_from_slice(b",\"vlan\":[");
        for (n, id) in vlans.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write!(out, "{id}")?;
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"src_ip\":\"");
    write_suricata_ip(out, src)?;
    out.push(b'"');
    if has_ports(rec.l4) {
        write!(out, ",\"src_port\":{sport}")?;
    }
    out.extend_from_slice(b",\"dest_ip\":\"");
    write_suricata_ip(out, dst)?;
    out.push(b'"');
    if has_ports(rec.l4) {
        write!(out, ",\"dest_port\":{dport}")?;
    }
    write!(out, ",\"ip_v\":{},\"proto\":\"", ip_version(src))?;
    write_eve_proto(out, rec.l4)?;
    out.push(b'"');
    if let Some(icmp) = icmp_fields(rec) {
        write!(
            out,
            ",\"icmp_type\":{},\"icmp_code\":{}",
            icmp.itype, icmp.icode
        )?;
        if let Some((t, c)) = icmp.response {
            write!(
                out,
                ",\"response_icmp_type\":{t},\"response_icmp_code\":{c}"
            )?;
        }
    }
    if let Some(app) = ctx.app_proto {
        out.extend_from_slice(b",\"app_proto\":");
        write_json_str(out, app)?;
    }

    write!(
        out,
        ",\"flow\":{{\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"start\":\"",
        ts.packets, tc.packets, ts.frame_bytes, tc.frame_bytes
    )?;
    write_eve_time(out, st.first)?;
    out.extend_from_slice(b"\",\"end\":\"");
    write_eve_time(out, st.last)?;
    // Suricata: age = lastts.secs - startts.secs (whole-second stamps, not a rounded duration).
    let age = st.last.secs().saturating_sub(st.first.secs());
    write!(
        out,
        "\",\"age\":{age},\"state\":\"{}\",\"reason\":\"{}\",\"alerted\":false}}",
        rec.state.as_str(),
        rec.end_reason.eve_reason()
    )?;

    if let Some(cid) = &rec.community_id {
        write!(out, ",\"community_id\":\"{cid}\"")?;
    }

    if rec.l4 == flowscope_core::L4Proto::Tcp {
        let (fts, ftc) = (rec.tcp_flags.0 .0, rec.tcp_flags.1 .0);
        let all = fts | ftc;
        write!(
            out,
            ",\"tcp\":{{\"tcp_flags\":\"{all:02x}\",\"tcp_flags_ts\":\"{fts:02x}\",\"tcp_flags_tc\":\"{ftc:02x}\""
        )?;
        // EveTcpFlags: only the set flags, in this order, as `true`.
        const NAMES: [(u8, &str); 8] = [
            (0x02, "syn"),
            (0x01, "fin"),
            (0x04, "rst"),
            (0x08, "psh"),
            (0x10, "ack"),
            (0x20, "urg"),
            (0x40, "ecn"),
            (0x80, "cwr"),
        ];
        for (bit, name) in NAMES {
            if all & bit != 0 {
                write!(out, ",\"{name}\":true")?;
            }
        }
        write!(out, ",\"state\":\"{}\"", suricata_tcp_state(rec))?;
        // Suricata writes tc_gap before ts_gap.
        if tc.gaps > 0 || tc.missed_bytes > 0 {
            out.extend_from_slice(b",\"tc_gap\":true");
        }
        if ts.gaps > 0 || ts.missed_bytes > 0 {
            out.extend_from_slice(b",\"ts_gap\":true");
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::testutil::*;
    use super::*;
    use flowscope_core::TcpFlags;

    fn line(rec: &FlowRecord<FiveTuple>, ctx: &FlowContext<'_>) -> String {
        let mut w = EveWriter::new(Vec::new());
        w.write_flow_with(rec, ctx).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    // Expected lines are written from output-json-flow.c's order:
    // timestamp, flow_id, event_type, vlan, src_ip, src_port, dest_ip, dest_port,
    // ip_v, proto, icmp_*, app_proto, flow{pkts_toserver, pkts_toclient,
    // bytes_toserver, bytes_toclient, start, end, age, state, reason, alerted},
    // community_id, tcp{tcp_flags, tcp_flags_ts, tcp_flags_tc, syn..cwr, state, tc_gap, ts_gap}.

    #[test]
    fn tcp_sf_line() {
        let got = line(&tcp_sf(), &FlowContext::default().with_app_proto("http"));
        // Initiator 192.168.1.100 is the source although the key stores it second.
        // bytes_* are frame bytes (520/760); age = 1700000001 - 1700000000 = 1.
        // Flags: 0x1b | 0x13 = 0x1b = SYN FIN PSH ACK.
        let want = concat!(
            r#"{"timestamp":"2023-11-14T22:13:20.123456+0000","flow_id":4242,"event_type":"flow","#,
            r#""src_ip":"192.168.1.100","src_port":49152,"dest_ip":"10.0.0.1","dest_port":80,"#,
            r#""ip_v":4,"proto":"TCP","app_proto":"http","#,
            r#""flow":{"pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":520,"bytes_toclient":760,"#,
            r#""start":"2023-11-14T22:13:20.123456+0000","end":"2023-11-14T22:13:21.623456+0000","#,
            r#""age":1,"state":"closed","reason":"timeout","alerted":false},"#,
            r#""community_id":"1:AAECAwQFBgcICQoLDA0ODxAREhM=","#,
            r#""tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"13","#,
            r#""syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#,
            "\n"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn udp_oneway_line() {
        let want = concat!(
            r#"{"timestamp":"2023-11-14T22:13:20.123456+0000","flow_id":7,"event_type":"flow","#,
            r#""src_ip":"10.0.0.5","src_port":5353,"dest_ip":"224.0.0.251","dest_port":5353,"#,
            r#""ip_v":4,"proto":"UDP","#,
            r#""flow":{"pkts_toserver":3,"pkts_toclient":0,"bytes_toserver":300,"bytes_toclient":0,"#,
            r#""start":"2023-11-14T22:13:20.123456+0000","end":"2023-11-14T22:13:22.123456+0000","#,
            r#""age":2,"state":"new","reason":"timeout","alerted":false}}"#,
            "\n"
        );
        assert_eq!(line(&udp_oneway(), &FlowContext::default()), want);
    }

    #[test]
    fn icmp_echo_line() {
        // No ports for ICMP; type/code of the request, response type/code
        // because the responder sent a packet (f->tosrcpktcnt != 0).
        let want = concat!(
            r#"{"timestamp":"2023-11-14T22:13:20.123456+0000","flow_id":99,"event_type":"flow","#,
            r#""src_ip":"10.0.0.1","dest_ip":"10.0.0.2","ip_v":4,"proto":"ICMP","#,
            r#""icmp_type":8,"icmp_code":0,"response_icmp_type":0,"response_icmp_code":0,"#,
            r#""flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":98,"bytes_toclient":98,"#,
            r#""start":"2023-11-14T22:13:20.123456+0000","end":"2023-11-14T22:13:20.124456+0000","#,
            r#""age":0,"state":"established","reason":"shutdown","alerted":false}}"#,
            "\n"
        );
        assert_eq!(line(&icmp_echo(), &FlowContext::default()), want);
    }

    #[test]
    fn ipv6_line_uses_full_addresses() {
        let got = line(&tcp_v6(), &FlowContext::default());
        assert!(got.contains(
            r#""src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001","src_port":51000,"dest_ip":"2001:0db8:0000:0000:0000:0000:0000:0002","dest_port":443,"ip_v":6,"#
        ));
        // 0x1a | 0x12 = 0x1a: SYN PSH ACK.
        assert!(got.ends_with(
            r#""tcp":{"tcp_flags":"1a","tcp_flags_ts":"1a","tcp_flags_tc":"12","syn":true,"psh":true,"ack":true,"state":"established"}}
"#
        ));
        assert!(got.contains(r#""reason":"shutdown""#));
    }

    #[test]
    fn vlan_tunnel_and_syn_only() {
        let got = line(&udp_vlan(), &FlowContext::default());
        assert!(got.contains(r#""event_type":"flow","vlan":[100,200],"src_ip":"10.1.1.1""#));
        assert!(got.contains(r#""reason":"forced""#));
        // A tunnelled flow is logged as its inner flow (Suricata does not add
        // tunnel fields to flow events); EndReason::Reused is Suricata's
        // FLOW_END_FLAG_TCPREUSE, written "tcp_reuse" by output-json-flow.c.
        let got = line(&udp_tunnel(), &FlowContext::default());
        assert!(got.contains(r#""src_ip":"172.16.0.1","src_port":1000"#));
        assert!(!got.contains("tunnel"));
        assert!(got.contains(r#""reason":"tcp_reuse""#));
        let want_tail = concat!(
            r#""flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":74,"bytes_toclient":0,"#,
            r#""start":"2023-11-14T22:13:20.123456+0000","end":"2023-11-14T22:13:20.123456+0000","#,
            r#""age":0,"state":"new","reason":"timeout","alerted":false},"#,
            r#""tcp":{"tcp_flags":"02","tcp_flags_ts":"02","tcp_flags_tc":"00","syn":true,"state":"syn_sent"}}"#,
            "\n"
        );
        assert!(line(&syn_only(), &FlowContext::default()).ends_with(want_tail));
    }

    #[test]
    fn gaps_and_all_flags() {
        let mut r = tcp_sf();
        r.stats.initiator.missed_bytes = 10;
        r.stats.responder.gaps = 1;
        r.tcp_flags = (TcpFlags(0xff), TcpFlags(0));
        let got = line(&r, &FlowContext::default());
        assert!(got.ends_with(concat!(
            r#""tcp":{"tcp_flags":"ff","tcp_flags_ts":"ff","tcp_flags_tc":"00","#,
            r#""syn":true,"fin":true,"rst":true,"psh":true,"ack":true,"urg":true,"ecn":true,"cwr":true,"#,
            r#""state":"closed","tc_gap":true,"ts_gap":true}}"#,
            "\n"
        )));
    }

    /// Records covering every branch of the EVE writer.
    fn schema_corpus() -> Vec<(FlowRecord<FiveTuple>, Option<&'static str>)> {
        use flowscope_core::{L4Proto, Timestamp};
        let mut v: Vec<_> = all().into_iter().map(|r| (r, None)).collect();
        v.push((tcp_sf(), Some("http")));
        let mut r = tcp_sf();
        r.tcp_flags = (TcpFlags(0xff), TcpFlags(0xff));
        (r.stats.initiator.gaps, r.stats.responder.missed_bytes) = (2, 7);
        v.push((r, Some("failed")));
        // ICMPv6 one-way (port unreachable: type 1, code 4), SCTP, an
        // unnamed protocol (GRE 47) and the extreme timestamps.
        let mut r = record(L4Proto::Icmpv6, "2001:db8::1", 1, "2001:db8::2", 4, 5);
        r.stats.initiator.packets = 1;
        v.push((r, None));
        v.push((
            record(L4Proto::Sctp, "10.0.0.1", 2905, "10.0.0.2", 2905, 6),
            None,
        ));
        let mut r = record(L4Proto::Other(47), "10.0.0.1", 0, "10.0.0.2", 0, 8);
        r.stats.first = Timestamp::ZERO;
        r.stats.last = Timestamp::MAX;
        v.push((r, Some("x\u{1}\"\\é")));
        v
    }

    /// Every line must validate against Suricata's own EVE schema
    /// (`additionalProperties: false` at the top and in `flow`/`tcp`).
    /// Needs python3 with `jsonschema`; skips (with the reason) otherwise.
    #[test]
    fn lines_validate_against_suricata_schema() {
        use std::path::PathBuf;
        use std::process::{Command, Stdio};

        let dir = std::env::var_os("FLOWSCOPE_SCHEMAS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("..")
                    .join("shared/schemas")
            });
        let schema = dir.join("suricata-eve.schema.json");
        if !schema.is_file() {
            eprintln!(
                "SKIP lines_validate_against_suricata_schema: no {}",
                schema.display()
            );
            return;
        }
        let mut w = EveWriter::new(Vec::new());
        let corpus = schema_corpus();
        for (r, app) in &corpus {
            let ctx = app.map_or_else(FlowContext::default, |a| {
                FlowContext::default().with_app_proto(a)
            });
            w.write_flow_with(r, &ctx).unwrap();
        }
        let lines = w.finish().unwrap();

        const SCRIPT: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(77)
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
validator = cls(schema)
bad = 0
n = 0
for n, line in enumerate(sys.stdin, 1):
    for e in validator.iter_errors(json.loads(line)):
        bad += 1
        print("line %d: %s at %s" % (n, e.message, list(e.absolute_path)))
print("validated %d lines, %d errors" % (n, bad))
sys.exit(1 if bad else 0)
"#;
        let child = Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(&schema)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP lines_validate_against_suricata_schema: cannot run python3: {e}");
                return;
            }
        };
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&lines).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(77) {
            eprintln!(
                "SKIP lines_validate_against_suricata_schema: python3 has no jsonschema module"
            );
            return;
        }
        assert!(
            out.status.success(),
            "schema validation failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("validated {} lines, 0 errors", corpus.len())),
            "{stdout}"
        );
    }

    #[test]
    fn app_proto_is_escaped() {
        let got = line(
            &udp_oneway(),
            &FlowContext::default().with_app_proto("a\"b"),
        );
        assert!(got.contains(r#""app_proto":"a\"b""#));
        let v: serde_json::Value = serde_json::from_str(got.trim_end()).unwrap();
        assert_eq!(v["app_proto"], "a\"b");
    }
}
