//! A dataset on disk as the pipeline reads it: the listing split into train, val, extra and test, with ground-truth groups from a
//! manifest's `group` column.
//!
//! The split rule:
//! - when some images are marked `val`, the user's split is taken as it is, and every image must be marked;
//! - otherwise the images marked `test` are the test set (without any, every 6th image of each class in listing order, CIFAR-10's
//!   share), and the rest, marked `train` or unmarked, is the training set that the paper's rule (`[data.split]`) splits into
//!   train, val and extra, as it splits CIFAR-10's (method spec §1.1).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Listing, read_classes_file, read_image_folder, read_manifest};
use crate::error::{Error, Result};
use crate::images::{Files, Images};
use crate::planted::{Groups, Prepared};
use crate::split::{Split, SplitConfig, SplitPart, every_kth_per_class, split};

/// Without a test set, every `TEST_EVERY`-th image of each class is held out (CIFAR-10's 10,000 of 60,000).
pub const TEST_EVERY: usize = 6;

/// A dataset on disk: `[data.dataset] name = "folder"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// An image folder: `<class>/<image>` or `<split>/<class>/<image>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
    /// Or a CSV manifest (`path,label` and optional `split`, `group` and metadata columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// A classes file (one name a line, in label order); by default the class folders' or labels' names, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<PathBuf>,
    /// The side, in pixels, of the square images a classifier trained here sees (the embedder and an ONNX classifier resize from
    /// the full image themselves).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// Leave out images that cannot be decoded (listed in the run directory) instead of stopping.
    #[serde(default)]
    pub skip_unreadable: bool,
    /// The groups of the `group` column counted as planted (the failure modes to find); by default every group that is under
    /// half of each class it appears in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planted_groups: Vec<String>,
}

fn default_image_size() -> usize {
    32
}

impl FolderConfig {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        if self.images.is_some() == self.manifest.is_some() {
            return Err(Error::Invalid(
                "a folder dataset needs exactly one of `images` (an image folder) and `manifest` (a CSV file)".into(),
            ));
        }
        if !(4..=1024).contains(&self.image_size) {
            return Err(Error::Invalid(format!("data.dataset.image_size = {} (expected 4 to 1024)", self.image_size)));
        }
        Ok(())
    }

    /// Reads the listing the config names (nothing decoded).
    pub fn listing(&self) -> Result<Listing> {
        let classes = self.classes.as_deref().map(read_classes_file).transpose()?;
        match (&self.images, &self.manifest) {
            (Some(dir), _) => {
                let listing = read_image_folder(dir)?;
                match classes {
                    Some(names) => listing.with_class_order(names, self.classes.as_deref().unwrap_or(Path::new(""))),
                    None => Ok(listing),
                }
            }
            (None, Some(manifest)) => read_manifest(manifest, classes),
            (None, None) => Err(Error::Invalid("a folder dataset needs `images` or `manifest`".into())),
        }
    }
}

/// What [`prepare`] made: the split dataset and the files it left out as unreadable, with the reason.
#[derive(Debug)]
pub struct PreparedListing {
    /// The dataset, split, with any groups.
    pub prepared: Prepared,
    /// Files left out (only with `skip_unreadable`).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads the listing `config` names, leaves out unreadable files when asked (each is decoded once to find them), and splits it.
pub fn prepare(config: &FolderConfig, split_config: &SplitConfig) -> Result<PreparedListing> {
    let _s = tracing::info_span!("prepare_folder").entered();
    let listing = config.listing()?;
    let mut skipped = Vec::new();
    // Unreadable files stay in the listing (so a user's files keyed by listing index keep their rows) but enter no part.
    let mut left_out = BTreeSet::new();
    if config.skip_unreadable {
        let all: Vec<usize> = (0..listing.entries.len()).collect();
        skipped = listing.decode_batches(&all, 256, true, |_, _| Ok(()))?;
        let bad: BTreeSet<PathBuf> = skipped.iter().map(|(p, _)| p.clone()).collect();
        left_out = (0..listing.entries.len()).filter(|&r| bad.contains(&listing.path(r))).collect();
        for (path, why) in &skipped {
            tracing::warn!(path = %path.display(), reason = %why, "left out an unreadable image");
        }
    }
    let prepared = split_listing(Arc::new(listing), split_config, &config.planted_groups, &left_out)?;
    Ok(PreparedListing { prepared, skipped })
}

/// Splits a listing by the rule of this module's documentation, leaving out the entries `left_out`.
pub fn split_listing(
    listing: Arc<Listing>,
    config: &SplitConfig,
    planted_groups: &[String],
    left_out: &BTreeSet<usize>,
) -> Result<Prepared> {
    let entries = &listing.entries;
    let nc = listing.class_names.len();
    let kept: Vec<usize> = (0..entries.len()).filter(|r| !left_out.contains(r)).collect();
    let has_val = entries.iter().any(|e| e.split == Some(SplitPart::Val));
    let (train_rows, test_rows, split) = if has_val {
        if let Some(e) = entries.iter().find(|e| e.split.is_none()) {
            return Err(Error::Invalid(format!(
                "{}: some images are marked val, so every image needs a split (train, val, extra or test), and {} has none",
                listing.root.display(),
                e.path.display()
            )));
        }
        let in_part = |r: &usize, test: bool| (entries[*r].split == Some(SplitPart::Test)) == test;
        let train_rows: Vec<usize> = kept.iter().copied().filter(|r| in_part(r, false)).collect();
        let test_rows: Vec<usize> = kept.iter().copied().filter(|r| in_part(r, true)).collect();
        let part = |p: SplitPart| (0..train_rows.len()).filter(|&i| entries[train_rows[i]].split == Some(p)).collect();
        let split = Split {
            train: part(SplitPart::Train),
            val: part(SplitPart::Val),
            extra: part(SplitPart::Extra),
            test: (0..test_rows.len()).collect(),
        };
        (train_rows, test_rows, split)
    } else {
        if let Some(e) = entries.iter().find(|e| e.split == Some(SplitPart::Extra)) {
            return Err(Error::Invalid(format!(
                "{}: {} is marked extra but no image is marked val; mark the val images too (then every image needs a \
                 split), or mark only train and test and let the paper's rule make val and extra",
                listing.root.display(),
                e.path.display()
            )));
        }
        let marked_test: Vec<usize> =
            kept.iter().copied().filter(|&r| entries[r].split == Some(SplitPart::Test)).collect();
        let test_rows = if marked_test.is_empty() {
            let labels: Vec<u16> = kept.iter().map(|&r| entries[r].label).collect();
            let (held_out, _) = every_kth_per_class(&labels, nc, TEST_EVERY);
            let mut held_out: Vec<usize> = held_out.into_iter().map(|k| kept[k]).collect();
            held_out.sort_unstable();
            held_out
        } else {
            marked_test
        };
        let is_test: BTreeSet<usize> = test_rows.iter().copied().collect();
        let train_rows: Vec<usize> = kept.iter().copied().filter(|r| !is_test.contains(r)).collect();
        let labels: Vec<u16> = train_rows.iter().map(|&r| entries[r].label).collect();
        let split = split(&labels, nc, test_rows.len(), config);
        (train_rows, test_rows, split)
    };
    if split.val.is_empty() || split.test.is_empty() || split.train.len() < 2 {
        return Err(Error::Invalid(format!(
            "{}: the split leaves {} train, {} val and {} test images; the SVMs need val and test images, and at least 2 \
             train images (their embeddings' mean and spread normalise the rest); add images, or mark a split",
            listing.root.display(),
            split.train.len(),
            split.val.len(),
            split.test.len()
        )));
    }
    let groups = groups(&listing, &train_rows, &test_rows, planted_groups)?;
    let train = Images::Files(Files::new(listing.clone(), train_rows));
    let test = Images::Files(Files::new(listing, test_rows));
    tracing::info!(
        train = split.train.len(),
        val = split.val.len(),
        extra = split.extra.len(),
        test = split.test.len(),
        "split the listing"
    );
    Ok(Prepared { train, test, split, groups, skipped: Vec::new() })
}

/// The `group` column as ground-truth groups (images without one are in group "none"), or `None` when no image has one.
fn groups(listing: &Listing, train_rows: &[usize], test_rows: &[usize], planted: &[String]) -> Result<Option<Groups>> {
    let entries = &listing.entries;
    if entries.iter().all(|e| e.group.is_none()) {
        if let Some(g) = planted.first() {
            return Err(Error::Invalid(format!("planted_groups names {g:?}, but the dataset has no `group` column")));
        }
        return Ok(None);
    }
    let name = |r: usize| entries[r].group.clone().unwrap_or_else(|| "none".into());
    let names: Vec<String> = (0..entries.len()).map(name).collect::<BTreeSet<_>>().into_iter().collect();
    let id = |r: usize| names.iter().position(|n| *n == name(r)).expect("every group is named") as u16;
    let planted_ids = if planted.is_empty() {
        minority_groups(listing, &names)
    } else {
        planted
            .iter()
            .map(|g| {
                names.iter().position(|n| n == g).map(|k| k as u16).ok_or_else(|| {
                    Error::Invalid(format!(
                        "planted_groups names {g:?}, which is not among the groups ({})",
                        names.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(Some(Groups {
        names: names.clone(),
        planted: planted_ids,
        train: train_rows.iter().map(|&r| id(r)).collect(),
        test: test_rows.iter().map(|&r| id(r)).collect(),
    }))
}

/// The groups that are under half of every class they appear in (Waterbirds' minority groups, a rare attribute).
fn minority_groups(listing: &Listing, names: &[String]) -> Vec<u16> {
    let mut per_class: BTreeMap<(u16, &str), usize> = BTreeMap::new();
    let mut class_total: BTreeMap<u16, usize> = BTreeMap::new();
    for e in &listing.entries {
        *per_class.entry((e.label, e.group.as_deref().unwrap_or("none"))).or_default() += 1;
        *class_total.entry(e.label).or_default() += 1;
    }
    (0..names.len() as u16)
        .filter(|&g| {
            let shares: Vec<f64> = per_class
                .iter()
                .filter(|((_, n), _)| *n == names[usize::from(g)])
                .map(|((class, _), &count)| count as f64 / class_total[class] as f64)
                .collect();
            !shares.is_empty() && shares.iter().all(|&s| s < 0.5)
        })
        .collect()
}

#[cfg(test)]
mod tests;
