//! Zeek's `conn_state` summary, from `conn_state()` in
//! `scripts/base/protocols/conn/main.zeek`.

use flowscope_core::{ConnState, HistoryString, TcpEndpointState};

/// `conn_state` of a TCP connection from its endpoint states, payload sizes
/// (Zeek's `c$orig$size`, `c$resp$size`) and history.
pub(crate) fn tcp(
    os: TcpEndpointState,
    rs: TcpEndpointState,
    orig_size: u64,
    resp_size: u64,
    history: &HistoryString,
) -> ConnState {
    use TcpEndpointState::*;
    let o_inactive = matches!(os, Inactive | Partial);
    let r_inactive = matches!(rs, Inactive | Partial);
    if rs == Reset {
        if matches!(os, SynSent | SynAckSent) || (os == Reset && orig_size == 0 && resp_size == 0) {
            ConnState::REJ
        } else if o_inactive {
            ConnState::RSTRH
        } else {
            ConnState::RSTR
        }
    } else if os == Reset {
        if r_inactive {
            if rstos0_history(history.as_str()) {
                return ConnState::RSTOS0;
            }
            return ConnState::OTH;
        }
        ConnState::RSTO
    } else if rs == Closed && os == Closed {
        ConnState::SF
    } else if os == Closed {
        if r_inactive {
            ConnState::SH
        } else {
            ConnState::S2
        }
    } else if rs == Closed {
        if o_inactive {
            ConnState::SHR
        } else {
            ConnState::S3
        }
    } else if os == SynSent && rs == Inactive {
        ConnState::S0
    } else if os == Established && rs == Established {
        ConnState::S1
    } else {
        ConnState::OTH
    }
}

/// `conn_state` of a UDP flow: each side is `UDP_ACTIVE` once it sent a
/// datagram with a good (or unchecked) checksum.
pub(crate) fn udp(orig_active: bool, resp_active: bool) -> ConnState {
    match (orig_active, resp_active) {
        (true, true) => ConnState::SF,
        (true, false) => ConnState::S0,
        (false, true) => ConnState::SHR,
        (false, false) => ConnState::OTH,
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/ == c$history` (a whole-string match): an
/// optional flip mark, the originator's SYN, then an originator RST before
/// any of `H A F G I Q` from the originator.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.bytes() {
        match c {
            b'R' => return true,
            b'H' | b'A' | b'F' | b'G' | b'I' | b'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rstos0_regex() {
        // Case matters: the excluded letters are the originator's only.
        for yes in [
            "SR", "^SR", "SrR", "STTR", "SdR", "SRA", "SsR", "ShR", "SaR",
        ] {
            assert!(rstos0_history(yes), "{yes}");
        }
        for no in [
            "R", "S", "SAR", "^^SR", "SHR", "SFR", "sR", "DSR", "SQR", "SGR", "SIR",
        ] {
            assert!(!rstos0_history(no), "{no}");
        }
    }

    #[test]
    fn udp_states() {
        assert_eq!(udp(true, true), ConnState::SF);
        assert_eq!(udp(true, false), ConnState::S0);
        assert_eq!(udp(false, true), ConnState::SHR);
        assert_eq!(udp(false, false), ConnState::OTH);
    }
}
