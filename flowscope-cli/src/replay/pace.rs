//! When each packet is due on the wall clock: scaled capture timestamps
//! (`--speed`), or a fixed packet or bit rate (`--pps`, `--mbps`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use flowscope_core::Timestamp;

/// How fast capture time runs against wall time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as possible: never sleep.
    Max,
    /// Capture time runs this many times faster than wall time (1 = real
    /// time). Always finite and positive.
    Factor(f64),
}

impl Default for Speed {
    fn default() -> Self {
        Speed::Factor(1.0)
    }
}

impl FromStr for Speed {
    type Err = String;
    /// `max`, or a finite number above 0 (`1`, `10`, `0.5`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let v: f64 = s
            .parse()
            .map_err(|_| format!("not a speed: {s:?} (a number above 0, or `max`)"))?;
        if v.is_finite() && v > 0.0 {
            Ok(Speed::Factor(v))
        } else {
            Err(format!("speed must be above 0 and finite: {s:?}"))
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Max => f.write_str("max"),
            Speed::Factor(v) => write!(f, "{v}"),
        }
    }
}

/// Maps capture timestamps to wall-clock offsets and back, for one
/// `--speed`. The first packet (or the first after [`Pacer::rebase`])
/// is the origin: it is due at the wall time it is seen.
#[derive(Clone, Debug)]
pub struct Pacer {
    speed: Speed,
    origin: Option<(Timestamp, Duration)>,
}

impl Pacer {
    /// A pacer with no origin yet.
    pub fn new(speed: Speed) -> Self {
        Pacer {
            speed,
            origin: None,
        }
    }

    /// The speed in use.
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// The wall time at which a packet stamped `ts` is due, given that the
    /// clock reads `now`; `None` at `Speed::Max` (due at once). The first
    /// packet becomes the origin, due `now`. A timestamp before the
    /// origin (capture time going backwards) is due at the origin.
    pub fn due(&mut self, ts: Timestamp, now: Duration) -> Option<Duration> {
        let Speed::Factor(speed) = self.speed else {
            return None;
        };
        let (ts0, wall0) = *self.origin.get_or_insert((ts, now));
        let capture = ts.saturating_duration_since(ts0);
        Some(wall0.saturating_add(scale(capture, 1.0 / speed)))
    }

    /// The capture time the wall clock `now` stands for (the replay
    /// clock); `None` before the first packet or at `Speed::Max`.
    pub fn capture_time(&self, now: Duration) -> Option<Timestamp> {
        let Speed::Factor(speed) = self.speed else {
            return None;
        };
        let (ts0, wall0) = self.origin?;
        Some(ts0.saturating_add(scale(now.saturating_sub(wall0), speed)))
    }

    /// Forgets the origin: the next packet is due when it is seen (each
    /// `--loop` pass starts afresh from where the last one ended).
    pub fn rebase(&mut self) {
        self.origin = None;
    }
}

/// `d * factor`, rounded to the nanosecond, saturating.
fn scale(d: Duration, factor: f64) -> Duration {
    let ns = (d.as_nanos() as f64 * factor).round();
    if ns >= u64::MAX as f64 {
        Duration::from_nanos(u64::MAX)
    } else if ns > 0.0 {
        Duration::from_nanos(ns as u64)
    } else {
        Duration::ZERO
    }
}

/// A fixed send rate that overrides capture timestamps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// Packets per second.
    Pps(f64),
    /// Megabits (10^6 bits) of frame bytes per second.
    Mbps(f64),
}

/// A per-packet schedule at a fixed [`Rate`]: packet *n* is due when the
/// packets (or bits) before it would have taken at that rate since the
/// first. Falling behind (a slow send) is made up by sending at once, so
/// the average rate holds over the run; there is no burst allowance beyond
/// that catch-up.
#[derive(Clone, Debug)]
pub struct RateSchedule {
    rate: Rate,
    start: Option<Duration>,
    packets: u64,
    bits: u64,
}

impl RateSchedule {
    /// A schedule at `rate` (positive and finite, checked by the caller).
    pub fn new(rate: Rate) -> Self {
        RateSchedule {
            rate,
            start: None,
            packets: 0,
            bits: 0,
        }
    }

    /// When the next packet is due; the first call fixes the start at `now`.
    pub fn due(&mut self, now: Duration) -> Duration {
        let start = *self.start.get_or_insert(now);
        let secs = match self.rate {
            Rate::Pps(pps) => self.packets as f64 / pps,
            Rate::Mbps(mbps) => self.bits as f64 / (mbps * 1e6),
        };
        start.saturating_add(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
    }

    /// Accounts one sent frame of `len` bytes.
    pub fn sent(&mut self, len: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bits = self.bits.saturating_add((len as u64).saturating_mul(8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000)
    }
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn speed_parses() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("0.5".parse::<Speed>(), Ok(Speed::Factor(0.5)));
        for bad in ["0", "-1", "inf", "NaN", "fast", ""] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }

    #[test]
    fn real_time_and_scaled() {
        let mut p = Pacer::new(Speed::Factor(1.0));
        // Origin: due when seen, whatever the wall clock says.
        assert_eq!(p.due(ts(0), 7 * MS), Some(7 * MS));
        assert_eq!(p.due(ts(250), 8 * MS), Some(257 * MS));
        assert_eq!(p.capture_time(57 * MS), Some(ts(50)));

        let mut p = Pacer::new(Speed::Factor(10.0));
        assert_eq!(p.due(ts(0), Duration::ZERO), Some(Duration::ZERO));
        // 1 s of capture time is 100 ms of wall time at 10x.
        assert_eq!(p.due(ts(1000), Duration::ZERO), Some(100 * MS));
        assert_eq!(p.capture_time(100 * MS), Some(ts(1000)));
    }

    #[test]
    fn backwards_time_and_rebase() {
        let mut p = Pacer::new(Speed::Factor(2.0));
        assert_eq!(p.due(ts(1000), Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(p.due(ts(500), 3 * MS), Some(Duration::ZERO));
        p.rebase();
        assert_eq!(p.capture_time(MS), None);
        assert_eq!(p.due(ts(0), 40 * MS), Some(40 * MS));
        assert_eq!(p.due(ts(100), 40 * MS), Some(90 * MS));
    }

    #[test]
    fn max_never_waits() {
        let mut p = Pacer::new(Speed::Max);
        assert_eq!(p.due(ts(0), Duration::ZERO), None);
        assert_eq!(p.due(ts(100_000), Duration::ZERO), None);
        assert_eq!(p.capture_time(Duration::from_secs(9)), None);
    }

    #[test]
    fn rate_schedules() {
        let mut r = RateSchedule::new(Rate::Pps(1000.0));
        for n in 0..5u32 {
            assert_eq!(
                r.due(Duration::from_secs(2)),
                Duration::from_secs(2) + n * MS
            );
            r.sent(1500);
        }
        // 1 Mbit/s: a 125-byte frame is 1000 bits = 1 ms.
        let mut r = RateSchedule::new(Rate::Mbps(1.0));
        assert_eq!(r.due(Duration::ZERO), Duration::ZERO);
        r.sent(125);
        assert_eq!(r.due(Duration::from_secs(5)), MS);
        r.sent(250);
        assert_eq!(r.due(Duration::ZERO), 3 * MS);
    }
}
