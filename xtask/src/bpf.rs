//! `cargo xtask build-bpf`: compiles the prefilter's XDP program
//! (`flowscope-prefilter/bpf/prefilter.c`) with clang into
//! `target/bpf/prefilter.o` (per-CPU hash maps) and
//! `target/bpf/prefilter_lru.o` (per-CPU LRU maps). The crate's build script
//! runs the same command but only warns when it fails; this one fails, so CI
//! notices a broken program or a missing toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Options of `build-bpf`.
#[derive(Args)]
pub struct BuildBpfArgs {
    /// Output directory (default: `<workspace>/target/bpf`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The C compiler (default: `$CLANG`, else `clang`).
    #[arg(long)]
    clang: Option<String>,
}

/// Runs `build-bpf`.
pub fn run(args: &BuildBpfArgs, workspace: &Path) -> Result<()> {
    let clang = args
        .clang
        .clone()
        .or_else(|| std::env::var("CLANG").ok())
        .unwrap_or_else(|| "clang".to_string());
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace.join("target/bpf"));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let src = workspace.join("flowscope-prefilter/bpf/prefilter.c");
    let multiarch = Command::new(&clang)
        .arg("-print-multiarch")
        .output()
        .with_context(|| {
            format!("running {clang} (install it: apt-get install clang llvm libbpf-dev)")
        })?;
    let multiarch = String::from_utf8_lossy(&multiarch.stdout)
        .trim()
        .to_string();
    for (name, defines) in [
        ("prefilter.o", &[][..]),
        ("prefilter_lru.o", &["-DPF_LRU"][..]),
    ] {
        let out = out_dir.join(name);
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"]);
        if !multiarch.is_empty() {
            cmd.arg(format!("-I/usr/include/{multiarch}"));
        }
        cmd.args(defines).arg("-c").arg(&src).arg("-o").arg(&out);
        let status = cmd.status().with_context(|| format!("running {clang}"))?;
        if !status.success() {
            bail!("{clang} failed on {} ({status})", src.display());
        }
        println!("{}", out.display());
    }
    Ok(())
}
