//! One-call helpers: a capture file through a [`SessionDriver`].

use std::path::Path;

use flowscope_core::{FlowSide, SessionEvent, Timestamp};

use super::{DriverEvent, SessionConfig, SessionDriver, SessionInfo};
use crate::capture::{CaptureError, CaptureReader};
use crate::proto::AppMessage;

/// Runs every packet of the capture at `path` (`-` for stdin) through a
/// driver with the built-in parsers, then ends every flow; events go to
/// `sink`. Returns the driver for its counters. A damaged capture stops with
/// the error after the packets before the damage were processed.
pub fn run_capture(
    path: impl AsRef<Path>,
    config: SessionConfig,
    sink: &mut impl FnMut(DriverEvent<'_, AppMessage>),
) -> Result<SessionDriver<AppMessage>, CaptureError> {
    let mut driver = SessionDriver::with_default_parsers(config);
    let path = path.as_ref();
    let result = if path == Path::new("-") {
        let mut reader = CaptureReader::new(std::io::stdin().lock())?;
        feed(&mut reader, &mut driver, sink)
    } else {
        let mut reader = CaptureReader::open(path)?;
        feed(&mut reader, &mut driver, sink)
    };
    driver.finish(sink);
    result.map(|()| driver)
}

fn feed<R: std::io::Read>(
    reader: &mut CaptureReader<R>,
    driver: &mut SessionDriver<AppMessage>,
    sink: &mut impl FnMut(DriverEvent<'_, AppMessage>),
) -> Result<(), CaptureError> {
    while let Some(pkt) = reader.next_packet()? {
        driver.process(&pkt, sink);
    }
    Ok(())
}

/// One application message with the flow it came from.
#[derive(Debug)]
#[non_exhaustive]
pub struct CollectedMessage {
    /// The flow.
    pub info: SessionInfo,
    /// Capture time of the packet that completed it.
    pub ts: Timestamp,
    /// The message.
    pub message: AppMessage,
}

impl CollectedMessage {
    /// `(src ip, src port, dst ip, dst port)` as sent by `side`.
    pub fn endpoints(&self, side: FlowSide) -> (std::net::IpAddr, u16, std::net::IpAddr, u16) {
        self.info.endpoints(side)
    }
}

/// Every application message of a capture file, in wire order, with default
/// settings: the common case in one call.
pub fn collect_messages(path: impl AsRef<Path>) -> Result<Vec<CollectedMessage>, CaptureError> {
    let mut out = Vec::new();
    run_capture(path, SessionConfig::default(), &mut |ev| {
        if let DriverEvent::Session {
            info,
            ts,
            event: SessionEvent::Message(message),
        } = ev
        {
            out.push(CollectedMessage {
                info: *info,
                ts,
                message,
            });
        }
    })?;
    Ok(out)
}
