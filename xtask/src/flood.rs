//! `cargo xtask flood`: deterministic adversarial captures. For now the
//! SYN flood the brief's memory target is stated on: N unique SYNs from
//! distinct 198.18.0.0/15 sources (benchmarking range, RFC 2544) to one
//! server, 1 µs apart, none ever answered.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::gen::frame::{build_frame, Endpoints, IpFields, Transport};
use crate::gen::pcap::PcapWriter;

/// Options of `cargo xtask flood`.
#[derive(Args, Debug)]
pub struct FloodArgs {
    /// SYNs to write (each a new flow).
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// Output file.
    #[arg(long, default_value = "target/bench/syn-flood-1M.pcap")]
    out: PathBuf,
}

/// Writes the SYN flood.
pub fn run(a: &FloodArgs) -> Result<()> {
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut w = PcapWriter::new(BufWriter::new(f))?;
    let mut buf = Vec::with_capacity(64);
    for i in 0..a.packets {
        let ep = syn_endpoints(i);
        let ip = IpFields {
            id: i as u16,
            ttl: 64,
            flow_label: 0,
        };
        let syn = Transport::Tcp {
            seq: (i as u32).wrapping_mul(2_654_435_761),
            ack: 0,
            flags: 0x02,
            window: 65_535,
            options: &[],
        };
        build_frame(&mut buf, &ep, true, ip, syn, |_| {});
        w.write_packet(i * 1_000, &buf)?;
    }
    w.finish()?;
    eprintln!(
        "wrote {} SYNs (one flow each) to {}",
        a.packets,
        a.out.display()
    );
    Ok(())
}

/// Flow `i`'s endpoints: 2^17 source addresses × 16 384 ports give 2^31
/// distinct tuples before any repeats.
fn syn_endpoints(i: u64) -> Endpoints {
    let host = (i >> 14) as u32 & 0x1_ffff;
    let mut client_ip = [0u8; 16];
    client_ip[..4].copy_from_slice(&(0xc612_0000u32 | host).to_be_bytes());
    let mut server_ip = [0u8; 16];
    server_ip[..4].copy_from_slice(&[198, 19, 255, 1]);
    Endpoints {
        v6: false,
        client_ip,
        server_ip,
        client_port: 1024 + (i & 0x3fff) as u16,
        server_port: 80,
        client_mac: [2, 0, 0, 0, 0, 1],
        server_mac: [2, 0, 0, 0, 0, 2],
        vlan: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_syn_is_a_distinct_flow_in_the_benchmark_range() {
        let mut seen = HashSet::new();
        for i in 0..200_000u64 {
            let e = syn_endpoints(i);
            let [a, b, ..] = e.client_ip;
            assert_eq!((a, b & 0xfe), (198, 18), "198.18.0.0/15");
            assert!(seen.insert((e.client_ip, e.client_port)), "repeat at {i}");
        }
    }
}
