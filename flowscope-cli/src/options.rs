//! Command-line options shared by `flow-summary` and `flow-replay`: the
//! flow table's limits and timeouts and the extractor's switches.

use std::time::Duration;

use clap::builder::TypedValueParser;

use flowscope::driver::{SessionConfig, DEFAULT_MEMORY_BUDGET};
use flowscope::extract::ExtractConfig;
use flowscope::track::TrackerConfig;

/// Flow table and extraction options (flattened into each binary's `Args`).
#[derive(clap::Args, Clone, Debug)]
pub struct TrackingOptions {
    /// Most flows held at once; past it the flow idle the longest is evicted.
    #[arg(long, default_value_t = TrackerConfig::default().max_flows)]
    pub max_flows: usize,

    /// Idle timeout of established TCP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "300")]
    pub tcp_timeout: Duration,

    /// Idle timeout of an unanswered TCP SYN, in seconds.
    #[arg(long, value_parser = seconds, default_value = "5")]
    pub syn_timeout: Duration,

    /// Linger of a TCP flow after FIN or RST, in seconds.
    #[arg(long, value_parser = seconds, default_value = "5")]
    pub closed_timeout: Duration,

    /// Idle timeout of UDP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    pub udp_timeout: Duration,

    /// Idle timeout of ICMP flows, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    pub icmp_timeout: Duration,

    /// Idle timeout of flows of other IP protocols, in seconds.
    #[arg(long, value_parser = seconds, default_value = "60")]
    pub other_timeout: Duration,

    /// Key tunnelled traffic by its outer headers instead of unwrapping it.
    #[arg(long)]
    pub no_decap: bool,

    /// Verify transport checksums (bad ones show as history letter `c`).
    #[arg(long)]
    pub verify_checksums: bool,

    /// Memory budget in MiB over flows, reassembly, defragmentation, held
    /// bytes and parser state; past it the least valuable state is shed
    /// (docs/bounded-memory.md). Shared between workers, like --max-flows.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_BUDGET >> 20,
          value_parser = clap::value_parser!(u64).range(1..=1 << 40).map(|v| v as usize))]
    pub memory_budget: usize,
}

impl TrackingOptions {
    /// The driver configuration these options ask for (everything else at
    /// its default).
    pub fn session_config(&self) -> SessionConfig {
        let mut extract = ExtractConfig::default();
        extract.decap_tunnels = !self.no_decap;
        extract.verify_checksums = self.verify_checksums;
        let mut track = TrackerConfig::default();
        track.max_flows = self.max_flows.max(1);
        track.tcp_timeout = self.tcp_timeout;
        track.tcp_syn_timeout = self.syn_timeout;
        track.tcp_closed_timeout = self.closed_timeout;
        track.udp_timeout = self.udp_timeout;
        track.icmp_timeout = self.icmp_timeout;
        track.other_timeout = self.other_timeout;
        let mut config = SessionConfig::default();
        config.extract = extract;
        config.track = track;
        config.memory_budget = self.memory_budget.saturating_mul(1 << 20);
        config
    }
}

/// Gives each of `workers` drivers its share of the limits that bound
/// memory (`--max-flows`, `--memory-budget`), rounded down, so N workers
/// together stay within what was asked (each keeps at least 1 flow / byte).
pub fn share_between_workers(config: &mut SessionConfig, workers: usize) {
    let n = workers.max(1);
    config.track.max_flows = (config.track.max_flows / n).max(1);
    config.memory_budget = (config.memory_budget / n).max(1);
}

/// Parses a (possibly fractional) number of seconds.
pub fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("not a valid number of seconds: {s}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tracking: TrackingOptions,
    }

    #[test]
    fn memory_budget_is_in_mib_and_shared_between_workers() {
        let default = Cli::parse_from(["t"]).tracking.session_config();
        assert_eq!(default.memory_budget, DEFAULT_MEMORY_BUDGET);
        let mut c = Cli::parse_from(["t", "--memory-budget", "10", "--max-flows", "7"])
            .tracking
            .session_config();
        assert_eq!(c.memory_budget, 10 << 20);
        share_between_workers(&mut c, 3);
        // Rounded down: three shares never add up to more than was asked.
        assert_eq!(c.memory_budget, (10usize << 20) / 3);
        assert_eq!(c.track.max_flows, 2);
        assert!(Cli::try_parse_from(["t", "--memory-budget", "0"]).is_err());
    }
}
