//! NDJSON: one JSON object per flow with everything flowscope knows.
//!
//! Every object has every key, always in the order below, with `null` where
//! a value does not apply, so that schema-on-read tools see one shape.
//! Names are EVE's where EVE has the field, with EVE's meaning (so
//! `src_port` is `null` for ICMP, which has `icmp_type`/`icmp_code`; `reason`
//! is EVE's coarse vocabulary and `end_reason` ours), and Zeek's for
//! `conn_state`/`history`.
//!
//! ```text
//! flow_id community_id start end duration max_idle
//! src_ip src_port dest_ip dest_port ip_v proto ip_proto
//! icmp_type icmp_code response_icmp_type response_icmp_code app_proto
//! state reason end_reason conn_state history history_overflowed
//! pkts_toserver pkts_toclient bytes_toserver bytes_toclient
//! ip_bytes_toserver ip_bytes_toclient payload_bytes_toserver payload_bytes_toclient
//! stream_bytes_toserver stream_bytes_toclient missed_bytes_toserver missed_bytes_toclient
//! gaps_toserver gaps_toclient
//! tcp{tcp_flags tcp_flags_ts tcp_flags_tc state_ts state_tc} vlan[]
//! tunnel{type id outer_src_ip outer_dest_ip} source
//! ```
//!
//! `start`/`end` are RFC 3339 UTC with nanoseconds; `duration`/`max_idle`
//! are seconds with nine decimals (exact, not floats rounded by us);
//! `bytes_*` are frame bytes as in EVE. `tcp.state_ts`/`state_tc` are the
//! Zeek-style endpoint states of initiator and responder.

use std::io::{self, Write};

use flowscope_core::{FiveTuple, FlowRecord, L4Proto};

use super::derive::{
    encap_layer_id, encap_layer_name, has_ports, icmp_fields, tcp_endpoint_state_name,
};
use super::text::{ip_version, write_eve_proto, write_json_str, write_plain_ip};
use super::time::{write_duration_secs, write_rfc3339_nanos};
use super::{FlowContext, LineFormat, LineWriter};

/// One JSON object per flow with every field flowscope has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ndjson;

/// Writes one JSON object per flow with every field flowscope has.
pub type NdjsonWriter<W> = LineWriter<W, Ndjson>;

impl LineFormat for Ndjson {
    fn line(
        &mut self,
        out: &mut Vec<u8>,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        ndjson_line(out, rec, ctx)
    }
}

/// `,"key":` then the number, or `null`.
fn opt_num<T: std::fmt::Display>(out: &mut Vec<u8>, key: &str, v: Option<T>) -> io::Result<()> {
    match v {
        Some(v) => write!(out, ",\"{key}\":{v}"),
        None => write!(out, ",\"{key}\":null"),
    }
}

/// Appends one NDJSON line (with its `\n`) to `out`.
fn ndjson_line(
    out: &mut Vec<u8>,
    rec: &FlowRecord<FiveTuple>,
    ctx: &FlowContext<'_>,
) -> io::Result<()> {
    let (src, sport, dst, dport) = rec.endpoints();
    let st = &rec.stats;
    let (ts, tc) = (&st.initiator, &st.responder);
    let ports = has_ports(rec.l4);
    let icmp = icmp_fields(rec);

    write!(out, "{{\"flow_id\":{}", rec.id.0)?;
    match &rec.community_id {
        Some(cid) => write!(out, ",\"community_id\":\"{cid}\"")?,
        None => out.extend_from_slice(b",\"community_id\":null"),
    }
    out.extend_from_slice(b",\"start\":\"");
    write_rfc3339_nanos(out, st.first)?;
    out.extend_from_slice(b"\",\"end\":\"");
    write_rfc3339_nanos(out, st.last)?;
    out.extend_from_slice(b"\",\"duration\":");
    write_duration_secs(out, st.duration())?;
    out.extend_from_slice(b",\"max_idle\":");
    write_duration_secs(out, st.max_idle)?;

    out.extend_from_slice(b",\"src_ip\":\"");
    write_plain_ip(out, src)?;
    out.push(b'"');
    opt_num(out, "src_port", ports.then_some(sport))?;
    out.extend_from_slice(b",\"dest_ip\":\"");
    write_plain_ip(out, dst)?;
    out.push(b'"');
    opt_num(out, "dest_port", ports.then_some(dport))?;
    write!(out, ",\"ip_v\":{},\"proto\":\"", ip_version(src))?;
    write_eve_proto(out, rec.l4)?;
    out.push(b'"');
    write!(out, ",\"ip_proto\":{}", rec.l4.ip_proto())?;
    opt_num(out, "icmp_type", icmp.map(|i| i.itype))?;
    opt_num(out, "icmp_code", icmp.map(|i| i.icode))?;
    let resp = icmp.and_then(|i| i.response);
    opt_num(out, "response_icmp_type", resp.map(|r| r.0))?;
    opt_num(out, "response_icmp_code", resp.map(|r| r.1))?;
    out.extend_from_slice(b",\"app_proto\":");
    match ctx.app_proto {
        Some(app) => write_json_str(out, app)?,
        None => out.extend_from_slice(b"null"),
    }

    write!(
        out,
        ",\"state\":\"{}\",\"reason\":\"{}\",\"end_reason\":\"{}\",\"conn_state\":\"{}\",\"history\":",
        rec.state.as_str(),
        rec.end_reason.eve_reason(),
        rec.end_reason.as_str(),
        rec.conn_state.as_str()
    )?;
    write_json_str(out, rec.history.as_str())?;
    write!(out, ",\"history_overflowed\":{}", rec.history.overflowed())?;

    write!(
        out,
        ",\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{}",
        ts.packets, tc.packets, ts.frame_bytes, tc.frame_bytes
    )?;
    write!(
        out,
        ",\"ip_bytes_toserver\":{},\"ip_bytes_toclient\":{},\"payload_bytes_toserver\":{},\"payload_bytes_toclient\":{}",
        ts.ip_bytes, tc.ip_bytes, ts.payload_bytes, tc.payload_bytes
    )?;
    write!(
        out,
        ",\"stream_bytes_toserver\":{},\"stream_bytes_toclient\":{},\"missed_bytes_toserver\":{},\"missed_bytes_toclient\":{}",
        ts.stream_bytes, tc.stream_bytes, ts.missed_bytes, tc.missed_bytes
    )?;
    write!(
        out,
        ",\"gaps_toserver\":{},\"gaps_toclient\":{}",
        ts.gaps, tc.gaps
    )?;

    if rec.l4 == L4Proto::Tcp {
        let (fts, ftc) = (rec.tcp_flags.0 .0, rec.tcp_flags.1 .0);
        write!(
            out,
            ",\"tcp\":{{\"tcp_flags\":\"{:02x}\",\"tcp_flags_ts\":\"{fts:02x}\",\"tcp_flags_tc\":\"{ftc:02x}\",\"state_ts\":\"{}\",\"state_tc\":\"{}\"}}",
            fts | ftc,
            tcp_endpoint_state_name(rec.tcp_states.0),
            tcp_endpoint_state_name(rec.tcp_states.1)
        )?;
    } else {
        out.extend_from_slice(b",\"tcp\":null");
    }

    out.extend_from_slice(b",\"vlan\":[");
    for (n, id) in rec.encap.vlan_ids().iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write!(out, "{id}")?;
    }
    out.push(b']');

    let enc = &rec.encap;
    if enc.tunnel.is_some() || enc.outer.is_some() {
        let kind = enc.tunnel.as_ref().map_or("ip", encap_layer_name);
        write!(out, ",\"tunnel\":{{\"type\":\"{kind}\"")?;
        opt_num(out, "id", enc.tunnel.as_ref().and_then(encap_layer_id))?;
        match enc.outer {
            Some((a, b)) => {
                out.extend_from_slice(b",\"outer_src_ip\":\"");
                write_plain_ip(out, a)?;
                out.extend_from_slice(b"\",\"outer_dest_ip\":\"");
                write_plain_ip(out, b)?;
                out.extend_from_slice(b"\"}");
            }
            None => out.extend_from_slice(b",\"outer_src_ip\":null,\"outer_dest_ip\":null}"),
        }
    } else {
        out.extend_from_slice(b",\"tunnel\":null");
    }
    opt_num(out, "source", rec.source)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn line(rec: &FlowRecord<FiveTuple>, ctx: &FlowContext<'_>) -> String {
        let mut w = NdjsonWriter::new(Vec::new());
        w.write_flow_with(rec, ctx).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    const KEYS: [&str; 42] = [
        "flow_id",
        "community_id",
        "start",
        "end",
        "duration",
        "max_idle",
        "src_ip",
        "src_port",
        "dest_ip",
        "dest_port",
        "ip_v",
        "proto",
        "ip_proto",
        "icmp_type",
        "icmp_code",
        "response_icmp_type",
        "response_icmp_code",
        "app_proto",
        "state",
        "reason",
        "end_reason",
        "conn_state",
        "history",
        "history_overflowed",
        "pkts_toserver",
        "pkts_toclient",
        "bytes_toserver",
        "bytes_toclient",
        "ip_bytes_toserver",
        "ip_bytes_toclient",
        "payload_bytes_toserver",
        "payload_bytes_toclient",
        "stream_bytes_toserver",
        "stream_bytes_toclient",
        "missed_bytes_toserver",
        "missed_bytes_toclient",
        "gaps_toserver",
        "gaps_toclient",
        "tcp",
        "vlan",
        "tunnel",
        "source",
    ];

    #[test]
    fn tcp_sf_object() {
        let got = line(&tcp_sf(), &FlowContext::default().with_app_proto("http"));
        let want = concat!(
            r#"{"flow_id":4242,"community_id":"1:AAECAwQFBgcICQoLDA0ODxAREhM=","#,
            r#""start":"2023-11-14T22:13:20.123456789Z","end":"2023-11-14T22:13:21.623456789Z","#,
            r#""duration":1.500000000,"max_idle":0.700000000,"#,
            r#""src_ip":"192.168.1.100","src_port":49152,"dest_ip":"10.0.0.1","dest_port":80,"#,
            r#""ip_v":4,"proto":"TCP","ip_proto":6,"icmp_type":null,"icmp_code":null,"#,
            r#""response_icmp_type":null,"response_icmp_code":null,"app_proto":"http","#,
            r#""state":"closed","reason":"timeout","end_reason":"timeout","conn_state":"SF","#,
            r#""history":"ShADadFf","history_overflowed":false,"#,
            r#""pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":520,"bytes_toclient":760,"#,
            r#""ip_bytes_toserver":436,"ip_bytes_toclient":704,"#,
            r#""payload_bytes_toserver":120,"payload_bytes_toclient":500,"#,
            r#""stream_bytes_toserver":100,"stream_bytes_toclient":500,"#,
            r#""missed_bytes_toserver":0,"missed_bytes_toclient":0,"gaps_toserver":0,"gaps_toclient":0,"#,
            r#""tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"13","state_ts":"closed","state_tc":"closed"},"#,
            r#""vlan":[],"tunnel":null,"source":1}"#,
            "\n"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn every_fixture_parses_with_the_same_keys_in_order() {
        for rec in all() {
            let got = line(&rec, &FlowContext::default());
            assert!(got.ends_with('\n') && got.matches('\n').count() == 1);
            let v: serde_json::Value = serde_json::from_str(got.trim_end()).unwrap();
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), KEYS.len());
            // serde_json's Map is sorted by default, so check order on the text.
            let mut pos = 0;
            for k in KEYS {
                let needle = format!("\"{k}\":");
                let at = got[pos..]
                    .find(&needle)
                    .unwrap_or_else(|| panic!("{k} out of order"));
                pos += at + needle.len();
            }
        }
    }

    #[test]
    fn icmp_vlan_tunnel_details() {
        let v: serde_json::Value =
            serde_json::from_str(line(&icmp_echo(), &FlowContext::default()).trim_end()).unwrap();
        assert_eq!(v["src_port"], serde_json::Value::Null);
        assert_eq!(
            (v["icmp_type"].as_u64(), v["icmp_code"].as_u64()),
            (Some(8), Some(0))
        );
        assert_eq!(v["response_icmp_type"].as_u64(), Some(0));
        assert_eq!(v["proto"], "ICMP");
        assert_eq!(v["end_reason"], "finished");
        assert_eq!(v["reason"], "shutdown");
        let got = line(&udp_vlan(), &FlowContext::default());
        assert!(got.contains(r#""vlan":[100,200],"tunnel":null,"source":null}"#));
        assert!(got.contains(r#""end_reason":"evicted""#));
        let got = line(&udp_tunnel(), &FlowContext::default());
        assert!(got.contains(
            r#""tunnel":{"type":"vxlan","id":42,"outer_src_ip":"192.0.2.1","outer_dest_ip":"192.0.2.2"}"#
        ));
        assert!(got.contains(
            r#""missed_bytes_toserver":10,"missed_bytes_toclient":5,"gaps_toserver":1,"#
        ));
        assert!(got.contains(r#""duration":0.000001000,"#));
        let got = line(&tcp_v6(), &FlowContext::default());
        assert!(got.contains(r#""src_ip":"2001:db8::1","src_port":51000,"dest_ip":"2001:db8::2","dest_port":443,"ip_v":6,"#));
        assert!(got.contains(r#""state_ts":"established","state_tc":"established""#));
    }
}
