//! Idle timeouts by flow state: a flow's deadline is its last packet time
//! plus the timeout of the state it is in now.

use core::time::Duration;

use flowscope_core::{L4Proto, TcpEndpointState};

use super::TrackerConfig;

/// The configured timeouts in nanoseconds, ready for deadline arithmetic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    tcp: u64,
    tcp_syn: u64,
    tcp_closed: u64,
    udp: u64,
    icmp: u64,
    other: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Timeouts {
    pub(crate) fn new(c: &TrackerConfig) -> Self {
        Timeouts {
            tcp: nanos(c.tcp_timeout),
            tcp_syn: nanos(c.tcp_syn_timeout),
            tcp_closed: nanos(c.tcp_closed_timeout),
            udp: nanos(c.udp_timeout),
            icmp: nanos(c.icmp_timeout),
            other: nanos(c.other_timeout),
        }
    }

    /// The idle timeout of a flow of protocol `l4` whose TCP endpoints are in
    /// `(initiator, responder)` states, in nanoseconds.
    #[cfg(test)]
    pub(crate) fn of(&self, l4: L4Proto, tcp: (TcpEndpointState, TcpEndpointState)) -> u64 {
        self.of_class(Self::class_of(l4, tcp))
    }

    /// The timeout class (an index below [`super::timers::CLASSES`]) of a
    /// flow of protocol `l4` whose TCP endpoints are in these states.
    pub(crate) fn class_of(l4: L4Proto, tcp: (TcpEndpointState, TcpEndpointState)) -> usize {
        use TcpEndpointState::*;
        match l4 {
            L4Proto::Tcp => match tcp {
                // Closed or reset by either side: linger briefly (Zeek
                // tcp_close_delay; Zeek also expires half-closed
                // connections after tcp_connection_linger, 5 s by default).
                (Closed | Reset, _) | (_, Closed | Reset) => 2,
                // An unanswered connection attempt (Zeek tcp_SYN_timeout).
                (SynSent | SynAckSent, Inactive) => 1,
                _ => 0,
            },
            L4Proto::Udp => 3,
            L4Proto::Icmp | L4Proto::Icmpv6 => 4,
            _ => 5,
        }
    }

    /// The timeout of a class, in nanoseconds.
    pub(crate) fn of_class(&self, class: usize) -> u64 {
        match class {
            0 => self.tcp,
            1 => self.tcp_syn,
            2 => self.tcp_closed,
            3 => self.udp,
            4 => self.icmp,
            _ => self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpEndpointState::*;

    #[test]
    fn timeout_by_state() {
        let t = Timeouts::new(&TrackerConfig::default());
        let s = |d: u64| d * 1_000_000_000;
        assert_eq!(t.of(L4Proto::Tcp, (SynSent, Inactive)), s(5));
        assert_eq!(t.of(L4Proto::Tcp, (Established, Established)), s(300));
        assert_eq!(t.of(L4Proto::Tcp, (Partial, Inactive)), s(300));
        assert_eq!(t.of(L4Proto::Tcp, (Reset, Inactive)), s(5));
        assert_eq!(t.of(L4Proto::Tcp, (Established, Closed)), s(5));
        assert_eq!(t.of(L4Proto::Udp, (Inactive, Inactive)), s(60));
        assert_eq!(t.of(L4Proto::Icmpv6, (Inactive, Inactive)), s(60));
        assert_eq!(t.of(L4Proto::Other(47), (Inactive, Inactive)), s(60));
        let huge = Timeouts::new(&TrackerConfig {
            tcp_timeout: Duration::MAX,
            ..Default::default()
        });
        assert_eq!(huge.of(L4Proto::Tcp, (Established, Established)), u64::MAX);
    }
}
