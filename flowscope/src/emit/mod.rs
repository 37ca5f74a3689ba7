//! Writers for finished flows in formats other tools read as they are:
//! Suricata EVE JSON ([`EveWriter`]), Zeek conn.log ([`ZeekConnWriter`]),
//! CSV ([`CsvWriter`]) and NDJSON ([`NdjsonWriter`]).
//!
//! Every writer wraps a [`std::io::Write`] and has the same shape:
//! `new(w)`, `write_flow(&rec)`, `write_flow_with(&rec, &ctx)` and
//! `finish()` (footer, flush, inner writer back). The [`FlowWriter`] trait
//! offers the same through a trait object, and [`Format`] picks a writer at
//! run time.
//!
//! Conventions shared by all formats:
//! - the source (`src_*`, `id.orig_*`) is the flow's initiator
//!   ([`FlowRecord::endpoints`]); every "to server" / "orig" counter is
//!   `rec.stats.initiator`, every "to client" / "resp" counter
//!   `rec.stats.responder`;
//! - all times are UTC, formatted from packet timestamps alone (no clock);
//! - each line is built in a buffer the writer reuses, then handed to the
//!   inner writer with one `write_all`: no allocation per flow once the
//!   buffer has grown, and no torn lines on a short write. Wrap files in a
//!   [`std::io::BufWriter`] all the same to batch system calls.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use flowscope_core::{FiveTuple, FlowRecord};

mod csv;
mod derive;
mod eve;
mod ndjson;
mod text;
mod time;
mod zeek;

pub use csv::CsvWriter;
pub use eve::EveWriter;
pub use ndjson::NdjsonWriter;
pub use zeek::ZeekConnWriter;

/// What a caller knows about a flow beyond its [`FlowRecord`], for writers
/// to include where their format has a place for it.
///
/// Build it with [`FlowContext::default`] and the `with_*` methods; fields
/// will be added (the struct is `#[non_exhaustive]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowContext<'a> {
    /// The application protocol, in the caller's vocabulary (EVE
    /// `app_proto`, Zeek `service` lowercased, CSV/NDJSON `app_proto`).
    pub app_proto: Option<&'a str>,
}

impl<'a> FlowContext<'a> {
    /// Sets the application protocol.
    pub fn with_app_proto(mut self, app_proto: &'a str) -> Self {
        self.app_proto = Some(app_proto);
        self
    }
}

/// A writer of finished flows, usable as a trait object.
pub trait FlowWriter {
    /// Writes one flow with extra context.
    fn write_flow_with(
        &mut self,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()>;

    /// Writes one flow.
    fn write_flow(&mut self, rec: &FlowRecord<FiveTuple>) -> io::Result<()> {
        self.write_flow_with(rec, &FlowContext::default())
    }

    /// Writes the header if nothing was written yet, the footer where the
    /// format has one, and flushes. Writing a flow afterwards is an error;
    /// closing again only flushes.
    fn close(&mut self) -> io::Result<()>;
}

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Suricata EVE JSON flow events, one object per line.
    Eve,
    /// Zeek conn.log, tab-separated with Zeek's header and footer.
    ZeekConn,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per flow with every field flowscope has.
    Ndjson,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 4] = [Format::Eve, Format::ZeekConn, Format::Csv, Format::Ndjson];

    /// The name [`FromStr`] accepts: `eve`, `zeek`, `csv`, `ndjson`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Eve => "eve",
            Format::ZeekConn => "zeek",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    /// A writer of this format over `w`, boxed (one allocation per writer).
    pub fn writer<'w, W: Write + 'w>(self, w: W) -> Box<dyn FlowWriter + 'w> {
        match self {
            Format::Eve => Box::new(EveWriter::new(w)),
            Format::ZeekConn => Box::new(ZeekConnWriter::new(w)),
            Format::Csv => Box::new(CsvWriter::new(w)),
            Format::Ndjson => Box::new(NdjsonWriter::new(w)),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown format name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown output format {:?} (expected eve, zeek, csv or ndjson)",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// `eve`, `zeek` (or `conn`, `zeek-conn`), `csv`, `ndjson` (or `jsonl`), any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "eve" => Ok(Format::Eve),
            "zeek" | "conn" | "zeek-conn" => Ok(Format::ZeekConn),
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// The error for a write after [`FlowWriter::close`].
fn closed_error() -> io::Error {
    io::Error::other("flow writer already closed")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testutil;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use testutil::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!("JSONL".parse::<Format>(), Ok(Format::Ndjson));
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn boxed_writers_close_and_refuse_more() {
        for f in Format::ALL {
            let mut out = Vec::new();
            {
                let mut w = f.writer(&mut out);
                w.write_flow(&tcp_sf()).unwrap();
                w.close().unwrap();
                w.close().unwrap(); // idempotent
                assert!(w.write_flow(&tcp_sf()).is_err(), "{f}");
            }
            assert!(!out.is_empty(), "{f}");
            // Every format ends its output with a newline.
            assert_eq!(out.last(), Some(&b'\n'), "{f}");
        }
    }

    #[test]
    fn context_builder() {
        let c = FlowContext::default().with_app_proto("http");
        assert_eq!(c.app_proto, Some("http"));
        assert_eq!(FlowContext::default().app_proto, None);
    }
}
