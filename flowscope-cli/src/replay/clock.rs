//! Wall time for pacing, behind a trait so tests can replay without
//! sleeping: a [`ManualClock`] only moves when slept on, and records every
//! sleep.

use std::time::{Duration, Instant};

/// A monotonic clock the replay paces against.
pub trait Clock {
    /// Time elapsed since the clock was made.
    fn now(&self) -> Duration;
    /// Waits `d` (a real clock sleeps; a test clock just moves forward).
    fn sleep(&mut self, d: Duration);
}

/// The real clock: [`Instant`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when slept on, and remembers each sleep: tests
/// check pacing with it without waiting.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock at zero with no sleeps recorded.
    pub fn new() -> Self {
        Self::default()
    }
    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> &[Duration] {
        &self.sleeps
    }
    /// Moves the clock forward without recording a sleep (time spent working).
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.now
    }
    fn sleep(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.sleeps.push(d);
    }
}

impl<C: Clock + ?Sized> Clock for &mut C {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn sleep(&mut self, d: Duration) {
        (**self).sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let mut c = ManualClock::new();
        assert_eq!(c.now(), Duration::ZERO);
        c.sleep(Duration::from_millis(5));
        c.advance(Duration::from_millis(1));
        c.sleep(Duration::from_millis(2));
        assert_eq!(c.now(), Duration::from_millis(8));
        assert_eq!(
            c.sleeps(),
            &[Duration::from_millis(5), Duration::from_millis(2)]
        );
    }

    #[test]
    fn real_clock_is_monotonic() {
        let mut c = RealClock::new();
        let a = c.now();
        c.sleep(Duration::from_millis(2));
        assert!(c.now() >= a + Duration::from_millis(2));
    }
}
