//! Compiles `bpf/prefilter.c` into `$OUT_DIR/prefilter.o` (hash maps) and
//! `$OUT_DIR/prefilter_lru.o` (LRU maps) when clang is present, and sets
//! `cfg(flowscope_prefilter_bpf)` so the crate embeds them. Without clang
//! (or when the compile fails) the crate still builds, without the objects:
//! a cargo warning says why, and `FLOWSCOPE_PREFILTER_BPF_MISSING` carries
//! the reason to the crate (tests print it with their SKIP).
//!
//! `CLANG` overrides the compiler; `cargo xtask build-bpf` runs the same
//! command and fails loudly where this script only warns.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=bpf/prefilter.c");
    println!("cargo::rerun-if-env-changed=CLANG");
    println!("cargo::rustc-check-cfg=cfg(flowscope_prefilter_bpf)");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let mut missing = None;
    for (name, defines) in [
        ("prefilter.o", &[][..]),
        ("prefilter_lru.o", &["-DPF_LRU"][..]),
    ] {
        if let Err(why) = compile(
            &clang,
            Path::new("bpf/prefilter.c"),
            &out.join(name),
            defines,
        ) {
            missing = Some(why);
            break;
        }
    }
    match missing {
        None => println!("cargo::rustc-cfg=flowscope_prefilter_bpf"),
        Some(why) => {
            let why = why.replace('\n', " ");
            println!("cargo::warning=flowscope-prefilter built WITHOUT its XDP object: {why}");
            println!("cargo::rustc-env=FLOWSCOPE_PREFILTER_BPF_MISSING={why}");
        }
    }
}

/// `clang -O2 -g -target bpf -c src -o out`, with the multiarch include
/// directory (Debian keeps `asm/types.h`, needed by `linux/bpf.h`, there).
fn compile(clang: &str, src: &Path, out: &Path, defines: &[&str]) -> Result<(), String> {
    let multiarch = Command::new(clang)
        .arg("-print-multiarch")
        .output()
        .map_err(|e| format!("cannot run {clang}: {e}"))?;
    let multiarch = String::from_utf8_lossy(&multiarch.stdout)
        .trim()
        .to_string();
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-Wall", "-target", "bpf"]);
    if !multiarch.is_empty() {
        cmd.arg(format!("-I/usr/include/{multiarch}"));
    }
    cmd.args(defines).arg("-c").arg(src).arg("-o").arg(out);
    let res = cmd
        .output()
        .map_err(|e| format!("cannot run {clang}: {e}"))?;
    if res.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{clang} failed: {}",
            String::from_utf8_lossy(&res.stderr).trim()
        ))
    }
}
