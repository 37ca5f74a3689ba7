//! What `flow-summary` does with application messages: EVE `http`, `tls`
//! and `dns` events for `--format eve`, name counts for the table.

use std::collections::HashMap;
use std::io;

use flowscope::driver::SessionInfo;
use flowscope::emit::app::{app_event_line, EventHeader};
use flowscope::proto::tls::{TlsMessage, TlsSession};
use flowscope::proto::AppMessage;
use flowscope_core::{FlowId, FlowSide, L4Proto, SessionEvent, Timestamp};

use crate::summary::Summary;

/// Turns session events into EVE lines; a flow's TLS messages are gathered
/// into one `tls` event, written when the session closes (as Suricata
/// logs one TLS record per flow). Memory is bounded by the live flows.
#[derive(Default)]
pub struct EveApps {
    tls: HashMap<FlowId, (TlsSession, Timestamp)>,
    buf: Vec<u8>,
}

impl EveApps {
    /// Handles one session event; every finished line goes to `write`.
    pub fn on_event(
        &mut self,
        info: &SessionInfo,
        ts: Timestamp,
        event: &SessionEvent<AppMessage>,
        write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.clear();
        match event {
            SessionEvent::Message(AppMessage::Http(tx)) => {
                let (_, _, _, port) = info.endpoints(FlowSide::Initiator);
                let body = flowscope::emit::app::http::eve_http(tx, port);
                self.line(info, ts, FlowSide::Initiator, "http", &body)?;
            }
            SessionEvent::Message(AppMessage::Dns(m)) => {
                let body = flowscope::emit::app::dns::eve_dns(m);
                self.line(info, ts, m.side, "dns", &body)?;
            }
            SessionEvent::Message(AppMessage::Tls(m)) => {
                let entry = self
                    .tls
                    .entry(info.id)
                    .or_insert_with(|| (TlsSession::default(), ts));
                entry.0.apply(m);
                // Suricata logs the handshake when it completes: stamp the
                // event with the last handshake message's time.
                entry.1 = ts;
            }
            SessionEvent::Closed => {
                if let Some((session, at)) = self.tls.remove(&info.id) {
                    let body = flowscope::emit::app::tls::eve_tls(&session);
                    self.line(info, at, FlowSide::Initiator, "tls", &body)?;
                }
            }
            _ => {}
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            write(&self.buf)
        }
    }

    fn line(
        &mut self,
        info: &SessionInfo,
        ts: Timestamp,
        side: FlowSide,
        event_type: &str,
        body: &serde_json::Value,
    ) -> io::Result<()> {
        let l4 = L4Proto::from_ip_proto(info.key.proto);
        let head = EventHeader::new(ts, info.id, info.endpoints(side), l4);
        app_event_line(&mut self.buf, &head, event_type, body)
    }
}

/// Counts the names the table report lists.
pub fn count_names(summary: &mut Summary, event: &SessionEvent<AppMessage>) {
    let SessionEvent::Message(m) = event else {
        return;
    };
    match m {
        AppMessage::Tls(TlsMessage::ClientHello(ch)) => {
            if let Some(sni) = &ch.sni {
                summary.sni.add(sni);
            }
        }
        AppMessage::Http(tx) => {
            if let Some(host) = tx.request.as_ref().and_then(|r| r.host.as_deref()) {
                summary.http_hosts.add(host);
            }
        }
        AppMessage::Dns(d) if !d.is_response => {
            for q in &d.questions {
                summary.dns_names.add(&q.name);
            }
        }
        _ => {}
    }
}
