//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure.

use std::process::Command;

use anyhow::{Context, Result};

/// The steps, each a cargo invocation.
const STEPS: [&[&str]; 3] = [
    &["fmt", "--all", "--check"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ],
    &["test", "--workspace"],
];

/// Runs every step from the workspace root; exits with the failing step's
/// exit code (1 if it was killed by a signal).
pub fn run() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = crate::workspace_root();
    for (i, args) in STEPS.iter().enumerate() {
        eprintln!("==> [{}/{}] cargo {}", i + 1, STEPS.len(), args.join(" "));
        let status = Command::new(&cargo)
            .args(args.iter())
            .current_dir(&root)
            .status()
            .with_context(|| format!("running cargo {}", args.join(" ")))?;
        if !status.success() {
            let code = status.code().unwrap_or(1);
            eprintln!("==> FAILED: cargo {} (exit code {code})", args.join(" "));
            std::process::exit(code);
        }
    }
    eprintln!("==> all {} steps passed", STEPS.len());
    Ok(())
}
