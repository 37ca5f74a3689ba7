//! Command-line options shared by `flow-summary` and `flow-replay`: the
//! flow table's limits and timeouts and the extractor's switches.

use std::time::Duration;

use flowscope::driver::SessionConfig;
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
        config
    }
}

/// Parses a (possibly fractional) number of seconds.
pub fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("not a valid number of seconds: {s}"))
}
