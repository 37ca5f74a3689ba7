//! Time formatting for the writers, from [`Timestamp`] nanoseconds alone.
//!
//! No clock, no time-zone database and no date crate: every format is UTC,
//! and the calendar date comes from Howard Hinnant's `civil_from_days`
//! algorithm (<https://howardhinnant.github.io/date_algorithms.html>). A
//! `u64` of nanoseconds reaches only the year 2554, so the arithmetic below
//! stays far from overflow and never panics for any input.
//!
//! Every format truncates to whole microseconds where it shows microseconds:
//! that is what Suricata and Zeek print for pcap input, since libpcap hands
//! nanosecond captures to them as `struct timeval` by dropping the last three
//! digits.

use std::io::{self, Write};
use std::time::Duration;

use flowscope_core::Timestamp;

const SECS_PER_DAY: u64 = 86_400;

/// A UTC calendar time split into fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: u64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Civil {
    /// The UTC calendar fields of `ts`.
    pub(crate) fn from_timestamp(ts: Timestamp) -> Self {
        let secs = ts.secs();
        let days = secs / SECS_PER_DAY;
        let rem = secs % SECS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            // rem < 86_400, so these fit u32 and the casts are exact.
            hour: (rem / 3_600) as u32,
            minute: (rem % 3_600 / 60) as u32,
            second: (rem % 60) as u32,
            nanos: ts.subsec_nanos(),
        }
    }
}

/// `(year, month 1..=12, day 1..=31)` of the day `days` after 1970-01-01.
///
/// Hinnant's algorithm restricted to non-negative day numbers (we never see a
/// time before the epoch), so every step is unsigned and cannot overflow for
/// `days <= u64::MAX / 86_400` (the whole range of a `u64` of seconds).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Suricata's EVE time: `2009-11-24T21:27:09.534255+0000` (UTC, microseconds
/// truncated), as `CreateIsoTimeString` writes with `%Y-%m-%dT%H:%M:%S.%06u%z`.
pub(crate) fn write_eve_time(out: &mut Vec<u8>, ts: Timestamp) -> io::Result<()> {
    let c = Civil::from_timestamp(ts);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.nanos / 1_000
    )
}

/// RFC 3339 UTC with nanoseconds: `2009-11-24T21:27:09.534255123Z` (CSV, NDJSON).
pub(crate) fn write_rfc3339_nanos(out: &mut Vec<u8>, ts: Timestamp) -> io::Result<()> {
    let c = Civil::from_timestamp(ts);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
    )
}

/// Zeek's log-file open/close stamp: `%Y-%m-%d-%H-%M-%S` (here always UTC).
pub(crate) fn write_zeek_file_time(out: &mut Vec<u8>, ts: Timestamp) -> io::Result<()> {
    let c = Civil::from_timestamp(ts);
    write!(
        out,
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Whole microseconds since the epoch, truncated (what libpcap hands over).
pub(crate) fn micros(ts: Timestamp) -> u64 {
    ts.as_nanos() / 1_000
}

/// A count of microseconds as `secs.micros` with six decimals (Zeek's `time`
/// and `interval` columns, printed with `%.6f`).
pub(crate) fn write_micros_as_secs(out: &mut Vec<u8>, us: u64) -> io::Result<()> {
    write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// A duration as decimal seconds with nine decimals, exactly (no float).
pub(crate) fn write_duration_secs(out: &mut Vec<u8>, d: Duration) -> io::Result<()> {
    write!(out, "{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const NANOS_PER_SEC: u64 = 1_000_000_000;

    fn eve(ns: u64) -> String {
        let mut v = Vec::new();
        write_eve_time(&mut v, Timestamp::from_nanos(ns)).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn rfc(ns: u64) -> String {
        let mut v = Vec::new();
        write_rfc3339_nanos(&mut v, Timestamp::from_nanos(ns)).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn zeek_file(ns: u64) -> String {
        let mut v = Vec::new();
        write_zeek_file_time(&mut v, Timestamp::from_nanos(ns)).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(eve(0), "1970-01-01T00:00:00.000000+0000");
        // Suricata's documented example: 2009-11-24T21:27:09.534255 is Unix 1259098029.534255
        // (2009-11-24 is day 14572 since the epoch: 39 years * 365 + 10 leap days
        // (1972..2008) + 327 days into 2009; 14572 * 86400 + 21*3600 + 27*60 + 9).
        assert_eq!(14_572u64 * 86_400 + 21 * 3_600 + 27 * 60 + 9, 1_259_098_029);
        assert_eq!(
            eve(1_259_098_029_534_255_999),
            "2009-11-24T21:27:09.534255+0000"
        );
        // 2000-02-29 (a leap day in a century year divisible by 400): Unix 951782400.
        assert_eq!(
            rfc(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        // The day after 2000-02-28T23:59:59 is the leap day, not March.
        assert_eq!(zeek_file(951_782_399_000_000_000), "2000-02-28-23-59-59");
        // 2100 is not a leap year: 2100-02-28 + 1 day = 2100-03-01 (Unix 4107542400).
        assert_eq!(zeek_file(4_107_542_400_000_000_000), "2100-03-01-00-00-00");
        // 2038-01-19T03:14:08Z is 2^31 seconds: past the 32-bit time_t edge.
        assert_eq!(
            eve(2_147_483_648 * NANOS_PER_SEC),
            "2038-01-19T03:14:08.000000+0000"
        );
    }

    #[test]
    fn extremes_never_panic() {
        // u64::MAX ns = 18446744073.709551615 s = 2554-07-21T23:34:33.709551615Z
        // (the figure Timestamp::MAX documents as "year 2554").
        assert_eq!(rfc(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        assert_eq!(eve(u64::MAX), "2554-07-21T23:34:33.709551+0000");
        // Every day boundary round-trips month/day ranges over a long span.
        let mut prev: Option<Civil> = None;
        for day in (0..u64::MAX / NANOS_PER_SEC / SECS_PER_DAY).step_by(7) {
            let c = Civil::from_timestamp(Timestamp::from_secs_nanos(day * SECS_PER_DAY, 0));
            assert!((1..=12).contains(&c.month) && (1..=31).contains(&c.day));
            if let Some(p) = prev {
                assert!((c.year, c.month, c.day) > (p.year, p.month, p.day));
            }
            prev = Some(c);
        }
    }

    #[test]
    fn seconds_formats() {
        let mut v = Vec::new();
        write_micros_as_secs(&mut v, 1_259_098_029_534_255).unwrap();
        assert_eq!(v, b"1259098029.534255");
        v.clear();
        write_duration_secs(&mut v, Duration::from_nanos(1_000_000_007)).unwrap();
        assert_eq!(v, b"1.000000007");
        assert_eq!(micros(Timestamp::from_nanos(1_999)), 1);
    }
}
