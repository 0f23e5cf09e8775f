//! The hidden `fd-cli bench …` subcommands that `cargo xtask bench` runs: each times one piece on this machine and prints one JSON line.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fd_data::fetch;

mod pool;

/// What to time.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// EfficientNet-Lite0 (or CLIP) embedding of random 32x32 images upsampled to SIZE, as images/s (`cargo xtask bench embed|clip`).
    Embed {
        /// The input size the images are upsampled to.
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Images per forward pass.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Images timed (after one warm-up batch).
        #[arg(long, default_value_t = 512)]
        images: usize,
        /// The space: efficientnet-lite0 or clip-vit-b32.
        #[arg(long, default_value = "efficientnet-lite0")]
        embedder: String,
        /// The weight file (default: the cache directory's).
        #[arg(long)]
        weights: Option<PathBuf>,
    },
    /// Training steps and inference on random 32x32 images, as images/s (`cargo xtask bench model`).
    Model {
        /// resnet18, resnet10-narrow, resnet10-small or tiny.
        #[arg(long)]
        architecture: String,
        /// Images per step.
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Timed training steps (after one warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
    },
    /// The paper's SVM protocol on a data file written by bench/svm_reference.py (`cargo xtask bench svm`).
    Svm {
        /// A safetensors file with `x`, `labels`, `correct` and `train`.
        #[arg(long)]
        data: PathBuf,
        /// Threads (classes are fitted in parallel).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// `[svm] kernel_cache_mib`: a class's Gram matrix above it runs on the kernel-row cache.
        #[arg(long, default_value_t = fd_svm::SvmConfig::paper().kernel_cache_mib)]
        kernel_cache_mib: usize,
    },
    /// The select stage's core on a synthetic pool (`cargo xtask bench pool`): with `--write`, writes the pool's embeddings
    /// file (in its own process, so that making it does not count); without, reads it as a stage does, scores every row
    /// under random directions and picks K a class by the SVM rule, and prints time and peak memory as JSON.
    Pool {
        /// The pool's embeddings file.
        #[arg(long)]
        file: PathBuf,
        /// Rows of the pool (with `--write`).
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Values a row (with `--write`).
        #[arg(long, default_value_t = 512)]
        dim: usize,
        /// Write the file instead of reading it.
        #[arg(long)]
        write: bool,
        /// Images picked a class.
        #[arg(long, default_value_t = 100)]
        k: usize,
        /// The fit stage's data instead: the pool as val rows, its SVMs stopped at once (a huge tolerance), so that the
        /// peak is what fit holds besides its bounded kernel cache.
        #[arg(long)]
        fit: bool,
    },
    /// One Stable Diffusion v1 UNet step at 64x64 latents, batch 2, on random inputs, as seconds per step
    /// (`cargo xtask bench diffusion`).
    Unet {
        /// The UNet's diffusers safetensors file (`make_sd_fixtures.py --full DIR` writes `unet_v1_fp16.safetensors`).
        #[arg(long)]
        weights: PathBuf,
        /// Timed steps (after one warm-up step); the median is reported.
        #[arg(long, default_value_t = 2)]
        steps: usize,
    },
    /// One way of loading CIFAR-10, or every image of an image folder, as wall time and peak memory (`cargo xtask bench data|folder`).
    Data {
        /// png, binary, tarball, cache or folder.
        #[arg(long)]
        layout: String,
        /// The folder (or tarball) to read, instead of the one in the cache directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs one benchmark and prints its JSON line.
pub fn bench(command: BenchCommand, data_dir: &Path) -> Result<()> {
    match command {
        BenchCommand::Embed { size, batch, images, embedder, weights } => {
            embed(data_dir, size, batch, images, &embedder, weights)
        }
        BenchCommand::Model { architecture, batch, steps } => model(&architecture, batch, steps),
        BenchCommand::Pool { file, rows, dim, write: true, .. } => pool::write(&file, rows, dim),
        BenchCommand::Pool { file, fit: true, .. } => pool::fit(&file),
        BenchCommand::Pool { file, k, .. } => pool::select(&file, k),
        BenchCommand::Svm { data, threads, reps, kernel_cache_mib } => svm(&data, threads, reps, kernel_cache_mib),
        BenchCommand::Data { layout, dir } => data(data_dir, &layout, dir),
        BenchCommand::Unet { weights, steps } => unet(&weights, steps),
    }
}

/// Loads v1's UNet and times `steps` steps after a warm-up, and prints the median seconds per step as JSON.
fn unet(weights: &Path, steps: usize) -> Result<()> {
    let device = fd_model::device(fd_model::DeviceKind::Flex)?;
    let start = Instant::now();
    let unet = fd_diffusion::load::load_unet(&fd_diffusion::UNetConfig::sd_v1(), weights, &device)?;
    let load_s = start.elapsed().as_secs_f64();
    let latents = fd_diffusion::gaussian_noise(0, 2 * 4 * 64 * 64);
    let context = fd_diffusion::gaussian_noise(1, 2 * 77 * 768);
    let mut times = Vec::new();
    for i in 0..=steps {
        let start = Instant::now();
        fd_diffusion::pipeline::noise_prediction(&unet, &latents, [2, 4, 64, 64], 981.0, &context, 77, &device)?;
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({"seconds_per_step": median, "load_s": load_s, "threads": rayon_threads(), "peak_rss_mib": peak_rss_mib()})
    );
    Ok(())
}

/// Times one way of loading CIFAR-10 and prints wall time and peak memory as JSON.
fn data(data_dir: &Path, layout: &str, dir: Option<PathBuf>) -> Result<()> {
    let base = fetch::cifar10_dir(data_dir);
    let pick = |default: &str| dir.clone().unwrap_or_else(|| base.join(default));
    let start = Instant::now();
    let none = fd_data::NoProgress;
    let data = match layout {
        "png" => fd_data::cifar10::load_cifar10_png(&pick(fd_data::cifar10::PNG_DIR), &none)?,
        "binary" => fd_data::cifar10::load_cifar10_binary(&pick(fd_data::cifar10::BINARY_DIR), &none)?,
        "tarball" => fd_data::cifar10::load_cifar10_tarball(&pick("cifar-10-binary.tar.gz"), &none)?,
        "cache" => fetch::load_cached_cifar10(data_dir)?,
        "folder" => return folder(&dir.context("--layout folder needs --dir (an image folder)")?),
        other => bail!("unknown layout {other:?} (expected png, binary, tarball, cache or folder)"),
    };
    let seconds = start.elapsed().as_secs_f64();
    let json = serde_json::json!({
        "layout": layout,
        "images": data.train.len() + data.test.len(),
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
    Ok(())
}

/// Lists and decodes every image of an image folder (in batches of 256, on every core of rayon's pool) and prints the count,
/// the wall time and the peak memory as JSON.
fn folder(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let listing = fd_data::folder::read_image_folder(dir)?;
    let all: Vec<usize> = (0..listing.entries.len()).collect();
    let mut pixels = 0usize;
    listing.decode_batches(&all, 256, false, |_, images| {
        pixels += images.iter().map(|i| i.data.len()).sum::<usize>();
        Ok(())
    })?;
    let json = serde_json::json!({
        "layout": "folder",
        "images": all.len(),
        "bytes": pixels,
        "seconds": start.elapsed().as_secs_f64(),
        "threads": rayon_threads(),
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Times embedding random CIFAR-sized images (upsampled to SIZE) with an embedder and prints images/s as JSON.
fn embed(
    data_dir: &Path,
    size: usize,
    batch: usize,
    images: usize,
    embedder: &str,
    weights: Option<PathBuf>,
) -> Result<()> {
    let n = batch + images;
    let pixels: Vec<u8> = (0..n * 32 * 32 * 3).map(|i| (i.wrapping_mul(2654435761) >> 9) as u8).collect();
    let data = fd_data::Dataset::new(32, 32, pixels, vec![0; n], vec!["x".into()])?;
    let kind: fd_clip::EmbedderKind =
        serde_json::from_value(serde_json::Value::String(embedder.into())).context("unknown embedder")?;
    let config = fd_clip::EmbedConfig {
        embedder: kind,
        image_size: size,
        batch_size: batch,
        weights,
        text_weights: None,
        resize: fd_clip::Resize::Paper,
    };
    let default = crate::fetch::default_embedder_weights(data_dir, kind);
    let embedder = fd_clip::Embedder::from_config(&config, &default, &fd_model::device(fd_model::DeviceKind::Flex)?)?;
    let warm: Vec<usize> = (0..batch).collect();
    embedder.embed_images(&data, &warm, &fd_data::NoProgress);
    let timed: Vec<usize> = (batch..n).collect();
    let start = Instant::now();
    embedder.embed_images(&data, &timed, &fd_data::NoProgress);
    let ips = timed.len() as f64 / start.elapsed().as_secs_f64();
    println!("{}", serde_json::json!({"images_per_s": ips, "peak_rss_mib": peak_rss_mib()}));
    Ok(())
}

/// Times training steps and inference of an architecture on random images, and prints images/s as JSON.
fn model(architecture: &str, batch: usize, steps: usize) -> Result<()> {
    let architecture: fd_model::Architecture =
        serde_json::from_value(serde_json::Value::String(architecture.into())).context("unknown architecture")?;
    let config = fd_model::ModelConfig::cifar(architecture);
    let n = batch * (steps + 1);
    let pixels: Vec<u8> = (0..n * 32 * 32 * 3).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
    let labels: Vec<u16> = (0..n).map(|i| (i % 10) as u16).collect();
    let names = (0..10).map(|k| format!("class{k}")).collect();
    let data = fd_data::Dataset::new(32, 32, pixels, labels, names)?;
    let device = fd_model::device(config.device)?;
    let train_config = fd_model::TrainConfig {
        epochs: 1,
        batch_size: batch,
        peak_lr: 0.1,
        peak_epoch: 0.5,
        momentum: 0.9,
        weight_decay: 5e-4,
        augment: false,
        seed: 0,
    };
    // One warm-up epoch of one step, then the timed epoch of `steps` steps.
    let warm: Vec<usize> = (0..batch).collect();
    let set = fd_model::TrainSet { dataset: &data, indices: &warm, weights: None };
    fd_model::train(&config, 10, set, &train_config, &device, &fd_data::NoProgress)?;
    let timed: Vec<usize> = (batch..n).collect();
    let set = fd_model::TrainSet { dataset: &data, indices: &timed, weights: None };
    let start = Instant::now();
    let (model, _) = fd_model::train(&config, 10, set, &train_config, &device, &fd_data::NoProgress)?;
    let train_ips = timed.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    fd_model::evaluate(&model, &config, &data, &timed, batch, &device, &fd_data::NoProgress);
    let infer_ips = timed.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"train_images_per_s": train_ips, "infer_images_per_s": infer_ips, "peak_rss_mib": peak_rss_mib()})
    );
    Ok(())
}

/// Reads the benchmark data, runs `fit_directions` `reps` times, and prints the median time, the choices and peak memory as JSON.
fn svm(path: &Path, threads: usize, reps: usize, kernel_cache_mib: usize) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let get = |name: &str| st.tensor(name).with_context(|| format!("{}: no tensor {name:?}", path.display()));
    let f32s = |t: safetensors::tensor::TensorView<'_>| -> Vec<f32> {
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    let x = get("x")?;
    let &[_, dim] = x.shape() else {
        bail!("{}: tensor \"x\" has shape {:?}, expected [rows, dim]", path.display(), x.shape())
    };
    let x = f32s(x);
    let train = f32s(get("train")?);
    let labels: Vec<u16> =
        get("labels")?.data().chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u16).collect();
    let correct: Vec<bool> = get("correct")?.data().iter().map(|&b| b != 0).collect();
    let classes = labels.iter().map(|&l| usize::from(l) + 1).max().unwrap_or(0);
    let config = fd_svm::SvmConfig { kernel_cache_mib, ..fd_svm::SvmConfig::paper() };
    config.validate()?;
    let mut runs = Vec::new();
    let mut result = None;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let input =
            fd_svm::FitInput { train: &train, rows: &x, dim, labels: &labels, correct: &correct, num_classes: classes };
        result = Some(fd_svm::fit_directions(&input, &config, threads)?);
        runs.push(start.elapsed().as_secs_f64());
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let chosen: Vec<serde_json::Value> = result
        .expect("at least one run")
        .classes
        .iter()
        .map(|c| match c {
            fd_svm::ClassOutcome::Fitted(c) => serde_json::json!({"class": c.class, "c": c.c, "cv": c.cv_score}),
            fd_svm::ClassOutcome::Skipped { class, reason } => serde_json::json!({"class": class, "skipped": reason}),
        })
        .collect();
    let json = serde_json::json!({
        "seconds": sorted[sorted.len() / 2],
        "runs": runs,
        "classes": chosen,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
    Ok(())
}

/// The process's peak resident memory (VmHWM) in MiB, where /proc tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
