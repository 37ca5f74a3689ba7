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

pub mod app;
mod csv;
mod derive;
mod eve;
mod ndjson;
mod text;
mod time;
mod zeek;

pub use csv::{Csv, CsvWriter};
pub use eve::{Eve, EveWriter};
pub use ndjson::{Ndjson, NdjsonWriter};
pub use zeek::{ZeekConn, ZeekConnWriter};

/// How one output format lays out its text; [`LineWriter`] does the
/// buffering, the header-once and close-once bookkeeping for all of them.
pub trait LineFormat {
    /// Appends the header: before the first flow (`first` is that flow), or
    /// at close when no flow was written (`first` is `None`).
    fn header(
        &mut self,
        _out: &mut Vec<u8>,
        _first: Option<&FlowRecord<FiveTuple>>,
    ) -> io::Result<()> {
        Ok(())
    }

    /// Appends one flow's line, with its line end.
    fn line(
        &mut self,
        out: &mut Vec<u8>,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()>;

    /// Appends the footer, once, at close.
    fn footer(&mut self, _out: &mut Vec<u8>) -> io::Result<()> {
        Ok(())
    }
}

/// A writer of flows in format `F` over `w`.
///
/// Each flow is built in a buffer the writer reuses and handed to `w` with
/// one `write_all`. The header goes out with the first flow (or at close
/// when there is none); the footer at close.
#[derive(Debug)]
pub struct LineWriter<W: Write, F> {
    w: W,
    format: F,
    buf: Vec<u8>,
    header_written: bool,
    closed: bool,
}

impl<W: Write, F: LineFormat + Default> LineWriter<W, F> {
    /// A writer over `w`.
    pub fn new(w: W) -> Self {
        LineWriter {
            w,
            format: F::default(),
            buf: Vec::with_capacity(1024),
            header_written: false,
            closed: false,
        }
    }
}

impl<W: Write, F: LineFormat> LineWriter<W, F> {
    /// Writes one flow.
    pub fn write_flow(&mut self, rec: &FlowRecord<FiveTuple>) -> io::Result<()> {
        self.write_flow_with(rec, &FlowContext::default())
    }

    /// Writes one flow with extra context (`app_proto`, Zeek's `service`).
    pub fn write_flow_with(
        &mut self,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        self.buf.clear();
        if !self.header_written {
            self.format.header(&mut self.buf, Some(rec))?;
        }
        self.format.line(&mut self.buf, rec, ctx)?;
        self.w.write_all(&self.buf)?;
        self.header_written = true;
        Ok(())
    }

    /// Writes what [`FlowWriter::close`] writes, flushes and returns the
    /// inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.close_inner()?;
        Ok(self.w)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    fn close_inner(&mut self) -> io::Result<()> {
        if !self.closed {
            self.buf.clear();
            if !self.header_written {
                self.format.header(&mut self.buf, None)?;
            }
            self.format.footer(&mut self.buf)?;
            self.w.write_all(&self.buf)?;
            self.header_written = true;
            self.closed = true;
        }
        self.w.flush()
    }
}

impl<W: Write, F: LineFormat> FlowWriter for LineWriter<W, F> {
    fn write_flow_with(
        &mut self,
        rec: &FlowRecord<FiveTuple>,
        ctx: &FlowContext<'_>,
    ) -> io::Result<()> {
        LineWriter::write_flow_with(self, rec, ctx)
    }

    fn close(&mut self) -> io::Result<()> {
        self.close_inner()
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        self.w.write_all(line)
    }
}

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

    /// Writes a whole line built elsewhere to the same output, as it is:
    /// for line formats without a header (EVE application events between
    /// flow events, extra NDJSON records).
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
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
