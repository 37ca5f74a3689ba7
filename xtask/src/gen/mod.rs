//! Deterministic synthetic traffic: many concurrent TCP and UDP flows,
//! written as a classic pcap (Ethernet, µs timestamps) in time order.
//!
//! Flows arrive as a Poisson process (500 per second). Each flow is planned
//! whole when it arrives ([`flows::plan`]) and its packets are merged with
//! every other live flow's through a min-heap on time, so the output is
//! streamed with only the live flows in memory. The same config and seed
//! always give the same bytes: all randomness comes from [`prng::Rng`].
//!
//! Checksums: IPv4 header, TCP and UDP checksums are all computed and valid.

mod content;
mod flows;
pub(crate) mod frame;
pub(crate) mod pcap;
mod prng;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use flows::{Close, Flow, Kind, Profile};
use frame::Endpoints;
use pcap::PcapWriter;
use prng::Rng;

/// Time of the first flow: 2023-11-14T22:13:20Z.
const START_NS: u64 = 1_700_000_000 * 1_000_000_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Flows to start. Sizes flows so that `packets / flows` is the mean
    /// packets per flow; in complete mode, exactly this many flows start.
    pub flows: u64,
    /// Packets to write (exactly, unless `complete`).
    pub packets: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Share of flows that are UDP (0..=1).
    pub udp_share: f64,
    /// Start exactly `flows` flows and write every packet of each
    /// (`packets` then only sizes flows); otherwise stop at `packets`,
    /// cutting the flows still open, as a capture that ends would.
    pub complete: bool,
    /// Most response bytes one flow carries.
    pub max_flow_bytes: u64,
    /// New flows per second (Poisson arrivals).
    pub flow_rate: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            flows: 30_000,
            packets: 3_000_000,
            seed: 1,
            udp_share: 0.3,
            complete: false,
            max_flow_bytes: 64 << 20,
            flow_rate: 500.0,
        }
    }
}

impl GenConfig {
    /// The small capture `samples/sample.pcap` is generated from.
    pub fn sample() -> Self {
        GenConfig {
            flows: 40,
            packets: 400,
            seed: 20_240_601,
            udp_share: 0.3,
            complete: true,
            max_flow_bytes: 5_000,
            flow_rate: 40.0,
        }
    }
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Packets written.
    pub packets: u64,
    /// Frame bytes written (pcap headers not counted).
    pub frame_bytes: u64,
    /// Flows started.
    pub flows: u64,
    /// Of which TCP.
    pub tcp_flows: u64,
    /// Of which IPv6.
    pub v6_flows: u64,
    /// Of which VLAN-tagged.
    pub vlan_flows: u64,
    /// First and last packet time (ns since the epoch).
    pub first_ns: u64,
    /// Last packet time.
    pub last_ns: u64,
}

/// Writes the capture to `out` (buffer it: many small writes); returns the
/// summary and the writer.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> io::Result<(GenSummary, W)> {
    let mut w = PcapWriter::new(out)?;
    let mut rng = Rng::new(cfg.seed);
    let mut sum = GenSummary::default();
    let sizing = Sizing::new(cfg);
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut slots: Vec<Option<Flow>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut serial = 0u64;
    let mut next_arrival = START_NS;
    let mean_gap_ns = 1e9 / cfg.flow_rate.max(1e-3);
    let mut port_counter = rng.below(28_232);
    let mut buf = Vec::with_capacity(2048);

    loop {
        if !cfg.complete && sum.packets >= cfg.packets {
            break;
        }
        let arrivals_open = !cfg.complete || sum.flows < cfg.flows;
        let next_pkt = heap.peek().map(|Reverse((t, _, _))| *t);
        let arrive = arrivals_open && next_pkt.is_none_or(|t| next_arrival <= t);
        if arrive {
            let n = sum.flows;
            let profile = profile(&mut rng, n, cfg, &sizing);
            port_counter = (port_counter + rng.range(1, 7)) % 28_232;
            let ep = endpoints(&mut rng, &profile, 32_768 + port_counter as u16);
            sum.flows += 1;
            sum.tcp_flows += u64::from(matches!(
                profile.kind,
                Kind::Http | Kind::Tls | Kind::SynNoAnswer | Kind::Rejected
            ));
            sum.v6_flows += u64::from(ep.v6);
            sum.vlan_flows += u64::from(ep.vlan.is_some());
            let flow = flows::plan(&mut rng, n, next_arrival, ep, &profile);
            if let Some(t) = flow.next_time() {
                let slot = match free.pop() {
                    Some(s) => {
                        if let Some(x) = slots.get_mut(s) {
                            *x = Some(flow);
                        }
                        s
                    }
                    None => {
                        slots.push(Some(flow));
                        slots.len() - 1
                    }
                };
                heap.push(Reverse((t, serial, slot)));
                serial += 1;
            }
            next_arrival += rng.exp(mean_gap_ns).max(1.0) as u64;
            continue;
        }
        let Some(Reverse((_, _, slot))) = heap.pop() else {
            break;
        };
        let Some(Some(flow)) = slots.get_mut(slot) else {
            continue;
        };
        if let Some(t) = flow.emit(&mut buf) {
            w.write_packet(t, &buf)?;
            if sum.packets == 0 {
                sum.first_ns = t;
            }
            sum.last_ns = t;
            sum.packets += 1;
            sum.frame_bytes += buf.len() as u64;
        }
        match flow.next_time() {
            Some(t) => {
                heap.push(Reverse((t, serial, slot)));
                serial += 1;
            }
            None => {
                if let Some(x) = slots.get_mut(slot) {
                    *x = None;
                }
                free.push(slot);
            }
        }
    }
    Ok((sum, w.finish()?))
}

/// Packet budgets: flows whose size is fixed by their kind (DNS, refused
/// and unanswered SYNs) cost ~2 packets; elastic flows (HTTP, TLS, UDP
/// bulk) carry the rest of the mean `packets / flows`.
struct Sizing {
    elastic_mean: f64,
}

impl Sizing {
    fn new(cfg: &GenConfig) -> Self {
        let mean = cfg.packets as f64 / cfg.flows.max(1) as f64;
        let u = cfg.udp_share.clamp(0.0, 1.0);
        let fixed_cost = u * 0.85 * 2.1 + (1.0 - u) * 0.12 * 2.0;
        let elastic_share = u * 0.15 + (1.0 - u) * 0.88;
        let elastic_mean = ((mean - fixed_cost) / elastic_share.max(1e-6)).max(10.0);
        Sizing { elastic_mean }
    }

    /// Heavy-ish tail: 80 % mice at a tenth of the mean, 20 % elephants
    /// carrying the rest, capped at 40x the mean.
    fn budget(&self, rng: &mut Rng) -> u64 {
        let m = self.elastic_mean;
        let b = if rng.chance(0.8) {
            rng.exp(0.1 * m)
        } else {
            rng.exp(4.6 * m)
        };
        (b.min(40.0 * m) as u64).max(6)
    }
}

/// The first flows of every capture cover each feature once, so that even a
/// tiny capture has them all; later flows are drawn at random.
fn profile(rng: &mut Rng, n: u64, cfg: &GenConfig, sizing: &Sizing) -> Profile {
    use Close::*;
    use Kind::*;
    const COVER: [(Kind, bool, Option<u16>, Close); 10] = [
        (Http, false, None, ClientFin),
        (Dns, false, None, ClientFin),
        (Tls, true, None, ServerFin),
        (Http, false, Some(100), ClientRst),
        (SynNoAnswer, false, None, Open),
        (Dns, true, None, ClientFin),
        (Rejected, false, None, Open),
        (UdpBulk, false, None, Open),
        (Http, true, None, ServerRst),
        (Tls, false, Some(200), ClientFin),
    ];
    let budget = sizing.budget(rng);
    let lossy = rng.chance(0.1);
    if let Some(&(kind, v6, vlan, close)) = COVER.get(n as usize) {
        return Profile {
            kind,
            v6,
            vlan,
            lossy,
            force_retx: n == 0,
            close,
            budget,
            max_bytes: cfg.max_flow_bytes,
        };
    }
    let kind = if rng.chance(cfg.udp_share) {
        if rng.chance(0.85) {
            Dns
        } else {
            UdpBulk
        }
    } else {
        match rng.below(100) {
            0..=59 => Http,
            60..=87 => Tls,
            88..=94 => SynNoAnswer,
            _ => Rejected,
        }
    };
    let close = match rng.below(100) {
        0..=64 => ClientFin,
        65..=79 => ServerFin,
        80..=89 => ClientRst,
        90..=94 => ServerRst,
        _ => Open,
    };
    let v6 = rng.chance(0.2);
    let vlan = if rng.chance(0.05) {
        Some(100 + rng.below(16) as u16)
    } else {
        None
    };
    Profile {
        kind,
        v6,
        vlan,
        lossy,
        force_retx: false,
        close,
        budget,
        max_bytes: cfg.max_flow_bytes,
    }
}

/// Clients in 10.1.0.0/16 and fd00:0:0:1::/64 behind one gateway; servers
/// in the documentation ranges (RFC 5737, RFC 3849).
fn endpoints(rng: &mut Rng, p: &Profile, client_port: u16) -> Endpoints {
    let h = rng.below(4_000);
    let (hi, lo) = ((h / 250) as u8, (h % 250 + 1) as u8);
    let s = (rng.below(200) + 1) as u8;
    let dns = matches!(p.kind, Kind::Dns);
    let mut client_ip = [0u8; 16];
    let mut server_ip = [0u8; 16];
    if p.v6 {
        client_ip[..8].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 1]);
        client_ip[14] = hi;
        client_ip[15] = lo;
        server_ip[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        if dns {
            server_ip[5] = 0x53;
            server_ip[15] = 1 + rng.below(2) as u8;
        } else {
            server_ip[15] = s;
        }
    } else {
        client_ip[..4].copy_from_slice(&[10, 1, hi, lo]);
        let server = if dns {
            [192, 0, 2, 53 + rng.below(2) as u8]
        } else {
            [198, 51, 100, s]
        };
        server_ip[..4].copy_from_slice(&server);
    }
    let server_port = match p.kind {
        Kind::Http => {
            if rng.chance(0.9) {
                80
            } else {
                8080
            }
        }
        Kind::Tls => 443,
        Kind::SynNoAnswer | Kind::Rejected => [22, 23, 25, 445, 3389, 8443][rng.below(6) as usize],
        Kind::Dns => 53,
        Kind::UdpBulk => {
            if rng.chance(0.6) {
                443
            } else {
                5004
            }
        }
    };
    Endpoints {
        v6: p.v6,
        client_ip,
        server_ip,
        client_port,
        server_port,
        client_mac: [0x02, 0x00, 0x0a, 0x01, hi, lo],
        server_mac: [0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01],
        vlan: p.vlan,
    }
}
