//! `cargo xtask flood`: deterministic adversarial captures (issue 6). The
//! scenarios live in `flowscope/tests/common/adversarial.rs`, shared with
//! the `adversarial` integration test so the capture written here is the
//! traffic the test asserts bounds on.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::gen::pcap::PcapWriter;

#[allow(dead_code)] // Helpers the test uses and xtask does not.
#[path = "../../flowscope/tests/common/adversarial.rs"]
mod adversarial;

use adversarial::Scenario;

/// Options of `cargo xtask flood`.
#[derive(Args, Debug)]
pub struct FloodArgs {
    /// Scenario: syn, udp, seq-jump, overlap-rexmit, ooo-1byte, frag-flood,
    /// http-endless-header, http-endless-chunked, http-pipelined-10k,
    /// dns-compression-loop, tls-16mib-record.
    #[arg(long, default_value = "syn")]
    scenario: String,
    /// Frames to write (default: the scenario's own, e.g. 1 M SYNs).
    #[arg(long)]
    packets: Option<u64>,
    /// Output file (default: `target/bench/syn-flood-1M.pcap` for the SYN
    /// flood, `target/bench/flood-<scenario>.pcap` otherwise).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes the scenario's capture.
pub fn run(a: &FloodArgs) -> Result<()> {
    let Some(scenario) = Scenario::from_name(&a.scenario) else {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        bail!(
            "unknown scenario {:?}; one of: {}",
            a.scenario,
            names.join(", ")
        );
    };
    let out = a.out.clone().unwrap_or_else(|| match scenario {
        Scenario::Syn => PathBuf::from("target/bench/syn-flood-1M.pcap"),
        s => PathBuf::from(format!("target/bench/flood-{}.pcap", s.name())),
    });
    let packets = a.packets.unwrap_or_else(|| scenario.default_packets());
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = PcapWriter::new(BufWriter::new(f))?;
    let mut buf = Vec::with_capacity(16 * 1024);
    for i in 0..packets {
        let ts = scenario.frame(i, &mut buf);
        w.write_packet(ts, &buf)?;
    }
    w.finish()?;
    eprintln!(
        "wrote {packets} frames of {} to {}",
        scenario.name(),
        out.display()
    );
    Ok(())
}
