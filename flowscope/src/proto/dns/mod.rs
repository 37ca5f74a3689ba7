//! DNS over UDP and TCP: messages, queries paired with responses.
//!
//! - [`DnsDatagramFactory`] / [`DnsUdpParser`]: one message per UDP datagram.
//! - [`DnsTcpFactory`] / [`DnsTcpParser`]: length-prefixed messages over a
//!   reassembled TCP stream (RFC 7766); a gap poisons the flow.
//!
//! Both emit [`DnsMessage`]s: owned, decoded as far as the bytes were well
//! formed (a fault is recorded in [`DnsMessage::malformed`] and reported as
//! a `dns.malformed` anomaly), with responses paired to the query they
//! answer ([`DnsMessage::query_ts`]). Decoding is this module's own, bounded
//! on every path (see `name.rs` for why not simple-dns's parser).

mod decode;
mod factory;
mod message;
mod name;
mod pairing;
mod session;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use decode::HEADER_LEN;
pub use factory::{DnsDatagramFactory, DnsTcpFactory, DNS_PORTS};
pub use message::{
    rcode_name, type_name, DnsCounts, DnsError, DnsFlags, DnsMessage, DnsQuestion, DnsRdata,
    DnsRecord, DnsSoa, EdnsOption, ROOT_NAME,
};
pub use session::{
    DnsStats, ANOMALY_MALFORMED, ANOMALY_PENDING_OVERFLOW, ANOMALY_TCP_GAP, ANOMALY_TCP_INCOMPLETE,
    ANOMALY_UNANSWERED,
};
pub use tcp::DnsTcpParser;
pub use udp::DnsUdpParser;

/// Limits of the DNS parsers, per flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsConfig {
    /// Queries kept waiting for a response; when full, the oldest is dropped
    /// (counted, `dns.pending_overflow`).
    pub max_pending: usize,
    /// Questions plus records kept from one message; decoding stops past it
    /// ([`DnsError::TooManyRecords`]). A 64 KiB zone-transfer message holds
    /// at most ~5 900 records of 11 bytes.
    pub max_records: usize,
}

impl Default for DnsConfig {
    /// 256 pending queries, 1024 records per message.
    fn default() -> Self {
        DnsConfig {
            max_pending: 256,
            max_records: 1024,
        }
    }
}

impl DnsConfig {
    /// Sets [`DnsConfig::max_pending`].
    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// Sets [`DnsConfig::max_records`].
    pub fn with_max_records(mut self, n: usize) -> Self {
        self.max_records = n;
        self
    }
}
