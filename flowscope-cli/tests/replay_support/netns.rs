//! Two network namespaces made for one test, joined by a veth pair, with
//! nothing else in them; dropping the guard deletes them (and the veth).

use std::process::{Command, Output};

/// Runs a command, returning its output.
pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs")
}

/// Runs a command that must succeed.
pub fn ok(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// True when the test runs as root.
pub fn is_root() -> bool {
    String::from_utf8_lossy(&sh(&["id", "-u"]).stdout).trim() == "0"
}

/// The sending (`tx`) and receiving (`rx`) namespaces and their veth ends.
pub struct Netns {
    pub tx: String,
    pub rx: String,
    pub tx_if: String,
    pub rx_if: String,
}

impl Netns {
    /// Namespaces named after `tag` and the pid (unique per run), links up
    /// with `mtu`, IPv6 off so the kernel sends nothing of its own; `None`
    /// (after printing SKIP) when namespaces cannot be made.
    pub fn new(tag: &str, mtu: u32) -> Option<Netns> {
        let pid = std::process::id();
        let n = Netns {
            tx: format!("fl{tag}tx{pid}"),
            rx: format!("fl{tag}rx{pid}"),
            tx_if: format!("fl{tag}a{pid}"),
            rx_if: format!("fl{tag}b{pid}"),
        };
        if !sh(&["ip", "netns", "add", &n.tx]).status.success() {
            eprintln!("SKIP: cannot create a network namespace");
            return None;
        }
        // From here on the guard removes whatever was made.
        ok(&["ip", "netns", "add", &n.rx]);
        ok(&[
            "ip", "link", "add", &n.tx_if, "type", "veth", "peer", "name", &n.rx_if,
        ]);
        let mtu = mtu.to_string();
        for (ns, ifc) in [(&n.tx, &n.tx_if), (&n.rx, &n.rx_if)] {
            ok(&["ip", "link", "set", ifc, "netns", ns]);
            // No IPv6 autoconfiguration, MLD or router solicitations: only
            // the test's frames on the wire.
            for key in ["all", "default", ifc.as_str()] {
                ok(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ]);
            }
            ok(&["ip", "-n", ns, "link", "set", ifc, "mtu", &mtu, "up"]);
        }
        Some(n)
    }

    /// Packets the receiving end's interface counted.
    pub fn rx_packets(&self) -> u64 {
        let o = sh(&[
            "ip",
            "-n",
            &self.rx,
            "-s",
            "-j",
            "link",
            "show",
            &self.rx_if,
        ]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
    }

    /// `ip link show` of the receiving end (e.g. to see an XDP program).
    pub fn rx_link(&self) -> String {
        let o = sh(&["ip", "-n", &self.rx, "link", "show", "dev", &self.rx_if]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.tx]);
        let _ = sh(&["ip", "netns", "del", &self.rx]);
    }
}
