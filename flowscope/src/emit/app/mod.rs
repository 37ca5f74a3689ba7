//! Suricata EVE application events (`http`, `tls`, `dns`), one per line.
//!
//! The header follows Suricata's `CreateEveHeader` for a packet of the flow:
//! `timestamp`, `flow_id`, `event_type`, `src_ip`, `src_port`, `dest_ip`,
//! `dest_port`, `ip_v`, `proto`, then the protocol's object built by
//! [`http::eve_http`], [`tls::eve_tls`] or [`dns::eve_dns`]. For `http` and
//! `tls` the source is the client (Suricata logs transactions to-server);
//! for `dns` the source is whoever sent the message.

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tls")]
pub mod tls;

use std::io::{self, Write};
use std::net::IpAddr;

use flowscope_core::{FlowId, L4Proto, Timestamp};

use super::text::{ip_version, write_eve_proto, write_suricata_ip};
use super::time::write_eve_time;

/// Where an application event happened: the flow and the direction.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct EventHeader {
    /// Capture time of the packet that completed the event.
    pub ts: Timestamp,
    /// The flow's id (as in its `flow` event).
    pub flow_id: FlowId,
    /// `(src ip, src port, dst ip, dst port)` as EVE shows them.
    pub endpoints: (IpAddr, u16, IpAddr, u16),
    /// Transport protocol.
    pub l4: L4Proto,
}

impl EventHeader {
    /// A header for an event of flow `flow_id` at `ts`.
    pub fn new(
        ts: Timestamp,
        flow_id: FlowId,
        endpoints: (IpAddr, u16, IpAddr, u16),
        l4: L4Proto,
    ) -> Self {
        EventHeader {
            ts,
            flow_id,
            endpoints,
            l4,
        }
    }
}

/// Writes EVE application events, one JSON object per line.
pub struct EveAppWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> EveAppWriter<W> {
    /// A writer over `inner`.
    pub fn new(inner: W) -> Self {
        EveAppWriter {
            inner,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Writes one event: the header, then `"<event_type>": body`.
    /// `event_type` is `http`, `tls` or `dns`; `body` is the protocol object.
    pub fn write_event(
        &mut self,
        head: &EventHeader,
        event_type: &str,
        body: &serde_json::Value,
    ) -> io::Result<()> {
        self.buf.clear();
        app_event_line(&mut self.buf, head, event_type, body)?;
        self.inner.write_all(&self.buf)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

/// Appends one EVE application event line (with its `\n`) to `out`.
pub fn app_event_line(
    out: &mut Vec<u8>,
    head: &EventHeader,
    event_type: &str,
    body: &serde_json::Value,
) -> io::Result<()> {
    let (src, sport, dst, dport) = head.endpoints;
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_eve_time(out, head.ts)?;
    write!(out, "\",\"flow_id\":{},\"event_type\":", head.flow_id.0)?;
    serde_json::to_writer(&mut *out, event_type).map_err(io::Error::other)?;
    out.extend_from_slice(b",\"src_ip\":\"");
    write_suricata_ip(out, src)?;
    write!(out, "\",\"src_port\":{sport},\"dest_ip\":\"")?;
    write_suricata_ip(out, dst)?;
    write!(
        out,
        "\",\"dest_port\":{dport},\"ip_v\":{},\"proto\":\"",
        ip_version(src)
    )?;
    write_eve_proto(out, head.l4)?;
    out.extend_from_slice(b"\",");
    serde_json::to_writer(&mut *out, event_type).map_err(io::Error::other)?;
    out.push(b':');
    serde_json::to_writer(&mut *out, body).map_err(io::Error::other)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn header_then_body() {
        let mut w = EveAppWriter::new(Vec::new());
        let head = EventHeader::new(
            Timestamp::from_secs_nanos(1_700_000_000, 123_456_000),
            FlowId(42),
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                5000,
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                80,
            ),
            L4Proto::Tcp,
        );
        w.write_event(&head, "http", &serde_json::json!({"hostname": "a"}))
            .unwrap();
        let got = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            got,
            concat!(
                r#"{"timestamp":"2023-11-14T22:13:20.123456+0000","flow_id":42,"event_type":"http","#,
                r#""src_ip":"10.0.0.1","src_port":5000,"dest_ip":"10.0.0.2","dest_port":80,"#,
                r#""ip_v":4,"proto":"TCP","http":{"hostname":"a"}}"#,
                "\n"
            )
        );
    }
}
