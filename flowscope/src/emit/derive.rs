//! Facts the formats need that a [`FlowRecord`] holds only implicitly:
//! ICMP type/code, Suricata's TCP session state, tunnel names.

use flowscope_core::{EncapLayer, FiveTuple, FlowRecord, L4Proto, TcpEndpointState};

use super::text::{fnv1a64, ip_bytes16};

/// True for the protocols whose ports Suricata logs (`src_port`/`dest_port`
/// are written only for TCP, UDP and SCTP in `CreateEveHeaderFromFlow`).
pub(crate) fn has_ports(l4: L4Proto) -> bool {
    matches!(l4, L4Proto::Tcp | L4Proto::Udp | L4Proto::Sctp)
}

/// ICMP type and code of each side, as Suricata's flow log shows them
/// (`icmp_type`/`icmp_code`, and `response_icmp_type`/`response_icmp_code`
/// when the responder sent anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IcmpFields {
    pub itype: u16,
    pub icode: u16,
    pub response: Option<(u16, u16)>,
}

/// The request/reply counterpart of an ICMP type, as Zeek's
/// `ICMP4_counterpart` / `ICMP6_counterpart` (and the Community ID spec,
/// which our [`FiveTuple`] follows) define it.
fn icmp_counterpart(v6: bool, t: u16) -> Option<u16> {
    let c = if v6 {
        match t {
            128 => 129, // echo request / reply
            129 => 128,
            133 => 134, // router solicitation / advertisement
            134 => 133,
            135 => 136, // neighbour solicitation / advertisement
            136 => 135,
            130 => 131, // MLD query / report
            131 => 130,
            139 => 140, // node information query / response
            140 => 139,
            144 => 145, // home agent address discovery request / reply
            145 => 144,
            _ => return None,
        }
    } else {
        match t {
            8 => 0, // echo / echo reply
            0 => 8,
            13 => 14, // timestamp
            14 => 13,
            15 => 16, // information request
            16 => 15,
            10 => 9, // router solicitation / advertisement
            9 => 10,
            17 => 18, // address mask
            18 => 17,
            _ => return None,
        }
    };
    Some(c)
}

/// Recovers the ICMP fields from the 5-tuple "ports".
///
/// Our key holds, for the initiator, its type and either the counterpart
/// type (request/reply types) or its code (one-way types). So the code is
/// known exactly for one-way types; for request/reply types it is not kept,
/// and we write 0, the only code RFC 792 / RFC 4443 define for echo,
/// timestamp, information and mask messages (Zeek's ICMP analyzer makes the
/// same assumption: "for the two-way ICMP messages, icmp_code is always 0").
/// Exceptions (an ICMPv4 router advertisement with code 16, an ICMPv6 node
/// information query with code 1 or 2) are written with code 0: a known limit.
pub(crate) fn icmp_fields(rec: &FlowRecord<FiveTuple>) -> Option<IcmpFields> {
    let v6 = match rec.l4 {
        L4Proto::Icmp => false,
        L4Proto::Icmpv6 => true,
        _ => return None,
    };
    let (_, sport, _, dport) = rec.endpoints();
    let code_of = |own: u16, other: u16| {
        if icmp_counterpart(v6, own) == Some(other) {
            0
        } else {
            other
        }
    };
    let response = (rec.stats.responder.packets > 0).then(|| (dport, code_of(dport, sport)));
    Some(IcmpFields {
        itype: sport,
        icode: code_of(sport, dport),
        response,
    })
}

/// Suricata's TCP session state name (`StreamTcpStateAsString`) that best
/// matches the Zeek-style endpoint states we track.
///
/// Suricata runs its own state machine; this mapping is exact for the
/// common outcomes (`syn_sent`, `syn_recv`, `established`, `closed` after
/// FIN/FIN or RST) and approximate for half-closed flows: an initiator FIN
/// alone maps to `fin_wait1` and a responder FIN alone to `close_wait` (the
/// states Suricata enters on those FINs; whether the other side's ACK moved
/// it on to `fin_wait2` is not recorded). Midstream pick-ups map to
/// `established`, as Suricata's midstream handling does.
pub(crate) fn suricata_tcp_state(rec: &FlowRecord<FiveTuple>) -> &'static str {
    use TcpEndpointState::*;
    match rec.tcp_states {
        (Reset, _) | (_, Reset) | (Closed, Closed) => "closed",
        (Closed, Inactive) => "syn_sent",
        (Closed, _) => "fin_wait1",
        (_, Closed) => "close_wait",
        (SynSent, Inactive) => "syn_sent",
        (SynSent | Inactive, SynAckSent) => "syn_recv",
        (Established | Partial, _) | (_, Established | Partial) => "established",
        _ => "none",
    }
}

/// A stable snake_case name of a TCP endpoint state (NDJSON).
pub(crate) fn tcp_endpoint_state_name(s: TcpEndpointState) -> &'static str {
    match s {
        TcpEndpointState::Inactive => "inactive",
        TcpEndpointState::SynSent => "syn_sent",
        TcpEndpointState::SynAckSent => "syn_ack_sent",
        TcpEndpointState::Partial => "partial",
        TcpEndpointState::Established => "established",
        TcpEndpointState::Closed => "closed",
        TcpEndpointState::Reset => "reset",
    }
}

/// A stable lowercase name of an encapsulation layer.
pub(crate) fn encap_layer_name(layer: &EncapLayer) -> &'static str {
    match layer {
        EncapLayer::Vlan { .. } => "vlan",
        EncapLayer::Mpls { .. } => "mpls",
        EncapLayer::Pppoe { .. } => "pppoe",
        EncapLayer::Ip { .. } => "ip",
        EncapLayer::Gre { .. } => "gre",
        EncapLayer::Erspan { .. } => "erspan",
        EncapLayer::Vxlan { .. } => "vxlan",
        EncapLayer::Geneve { .. } => "geneve",
        EncapLayer::GtpU { .. } => "gtpu",
        EncapLayer::Udp { .. } => "udp",
        _ => "other",
    }
}

/// The identifier a layer carries (VLAN id, MPLS label, session, GRE
/// protocol type, VNI, TEID), if any.
pub(crate) fn encap_layer_id(layer: &EncapLayer) -> Option<u32> {
    match *layer {
        EncapLayer::Vlan { id } => Some(u32::from(id)),
        EncapLayer::Mpls { label } => Some(label),
        EncapLayer::Pppoe { session } => Some(u32::from(session)),
        EncapLayer::Gre { proto } => Some(u32::from(proto)),
        EncapLayer::Erspan { session, .. } => Some(u32::from(session)),
        EncapLayer::Vxlan { vni } | EncapLayer::Geneve { vni } => Some(vni),
        EncapLayer::GtpU { teid } => Some(teid),
        _ => None,
    }
}

/// A deterministic stand-in for the uid of the tunnel connection carrying
/// this flow (Zeek's `tunnel_parents`), or `None` when not tunnelled.
///
/// Zeek logs the outer connection under its own uid; we do not track it, so
/// we derive a value from the tunnel kind and the outer address pair (sorted,
/// so both directions of a tunnel agree): every flow of one tunnel shares it.
/// Bit 63 is set so it never equals a flow's own uid (flow ids fit 53 bits).
pub(crate) fn tunnel_parent_id(rec: &FlowRecord<FiveTuple>) -> Option<u64> {
    let enc = &rec.encap;
    if enc.tunnel.is_none() && enc.outer.is_none() {
        return None;
    }
    let kind = enc.tunnel.as_ref().map_or("ip", encap_layer_name);
    let (a, b) = match enc.outer {
        Some((x, y)) => {
            let (x, y) = (ip_bytes16(x), ip_bytes16(y));
            if x <= y {
                (x, y)
            } else {
                (y, x)
            }
        }
        None => ([0; 16], [0; 16]),
    };
    Some(fnv1a64(&[kind.as_bytes(), &a, &b]) | (1 << 63))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use flowscope_core::FlowId;
    use std::net::IpAddr;

    fn icmp(l4: L4Proto, t: u16, p: u16, replies: u64) -> FlowRecord<FiveTuple> {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (k, o) = FiveTuple::from_directed(a, t, b, p, l4.ip_proto());
        let mut r = FlowRecord::new(k, FlowId(1), o, l4);
        r.stats.initiator.packets = 1;
        r.stats.responder.packets = replies;
        r
    }

    #[test]
    fn icmp_recovery() {
        // Echo request (8) keyed as (8, counterpart 0), answered: code 0 both ways.
        let f = icmp_fields(&icmp(L4Proto::Icmp, 8, 0, 1)).unwrap();
        assert_eq!(
            f,
            IcmpFields {
                itype: 8,
                icode: 0,
                response: Some((0, 0))
            }
        );
        // Destination unreachable (3), port unreachable code 3: one-way, port = code.
        let f = icmp_fields(&icmp(L4Proto::Icmp, 3, 3, 0)).unwrap();
        assert_eq!(
            f,
            IcmpFields {
                itype: 3,
                icode: 3,
                response: None
            }
        );
        // ICMPv6 echo request 128 <-> 129.
        let f = icmp_fields(&icmp(L4Proto::Icmpv6, 128, 129, 2)).unwrap();
        assert_eq!(
            f,
            IcmpFields {
                itype: 128,
                icode: 0,
                response: Some((129, 0))
            }
        );
        // ICMPv6 destination unreachable (1), port unreachable (4): one-way, port = code.
        let f = icmp_fields(&icmp(L4Proto::Icmpv6, 1, 4, 0)).unwrap();
        assert_eq!(
            f,
            IcmpFields {
                itype: 1,
                icode: 4,
                response: None
            }
        );
        assert!(icmp_fields(&icmp(L4Proto::Udp, 1, 2, 0)).is_none());
    }

    #[test]
    fn tcp_states_map_to_suricata_names() {
        use TcpEndpointState::*;
        let mut r = icmp(L4Proto::Tcp, 40000, 80, 1);
        for (pair, want) in [
            ((SynSent, Inactive), "syn_sent"),
            ((SynSent, SynAckSent), "syn_recv"),
            ((Established, Established), "established"),
            ((Closed, Closed), "closed"),
            ((Established, Reset), "closed"),
            ((Closed, Established), "fin_wait1"),
            ((Established, Closed), "close_wait"),
            ((Partial, Partial), "established"),
            ((Inactive, Inactive), "none"),
        ] {
            r.tcp_states = pair;
            assert_eq!(suricata_tcp_state(&r), want, "{pair:?}");
        }
    }

    #[test]
    fn tunnel_parent_is_direction_free() {
        let mut r = icmp(L4Proto::Udp, 1, 2, 0);
        assert_eq!(tunnel_parent_id(&r), None);
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        r.encap.tunnel = Some(EncapLayer::Vxlan { vni: 7 });
        r.encap.outer = Some((x, y));
        let a = tunnel_parent_id(&r).unwrap();
        r.encap.outer = Some((y, x));
        assert_eq!(tunnel_parent_id(&r), Some(a));
        assert!(a >= 1 << 63);
    }
}
