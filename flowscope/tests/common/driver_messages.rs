//! Every application message of a capture through the real
//! [`SessionDriver`], tagged with the 1-based frame number of the packet
//! that completed it (= tshark's `frame`), or 0 for messages flushed at the
//! end of input.
#![allow(dead_code)]

use std::path::Path;

use flowscope::capture::CaptureReader;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver, SessionInfo};
use flowscope::proto::AppMessage;
use flowscope_core::{SessionEvent, Timestamp};

/// One message with where it came from.
#[derive(Debug)]
pub struct Msg {
    pub frame: u64,
    pub ts: Timestamp,
    pub info: SessionInfo,
    pub message: AppMessage,
}

/// Runs the capture (up to any damage) and returns its messages in order.
pub fn messages(path: &Path) -> Vec<Msg> {
    let mut out = Vec::new();
    let Ok(mut reader) = CaptureReader::open(path) else {
        return out;
    };
    let mut driver = SessionDriver::with_default_parsers(SessionConfig::default());
    let mut frame = 0u64;
    let push = |frame: u64, ev: DriverEvent<'_, AppMessage>, out: &mut Vec<Msg>| {
        if let DriverEvent::Session {
            info,
            ts,
            event: SessionEvent::Message(message),
        } = ev
        {
            out.push(Msg {
                frame,
                ts,
                info: *info,
                message,
            });
        }
    };
    while let Ok(Some(pkt)) = reader.next_packet() {
        frame += 1;
        driver.process(&pkt, &mut |ev| push(frame, ev, &mut out));
    }
    driver.finish(&mut |ev| push(0, ev, &mut out));
    assert!(driver.counters().is_balanced(), "{}", path.display());
    out
}
