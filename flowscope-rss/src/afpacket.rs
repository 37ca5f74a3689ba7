//! AF_PACKET: TPACKET_V3 receive ring with PACKET_FANOUT, raw transmit.
