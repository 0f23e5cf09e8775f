//! Index-based splits, built exactly the way failure_directions' `ds_utils` builds them (method spec §1.1).
//!
//! The reference is `_split_dataset` and `create_dataset_split` in
//! <https://github.com/MadryLab/failure-directions/blob/main/failure_directions/src/ds_utils.py>.
//! Order matters and is kept: a per-class part lists class 0's indices, then class 1's, and so on; a remainder is sorted.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Splits `0..labels.len()` into two parts: part 1 takes, for each class in turn, every `every`-th index of that class in dataset order (`np.arange(N)[targets == c][::every]`, concatenated over classes); part 2 is the rest, ascending.
pub fn every_kth_per_class(labels: &[u16], num_classes: usize, every: usize) -> (Vec<usize>, Vec<usize>) {
    assert!(every > 0, "every must be at least 1");
    let mut part1 = Vec::with_capacity(labels.len() / every + num_classes);
    for c in 0..num_classes {
        part1.extend(labels.iter().enumerate().filter(|(_, l)| usize::from(**l) == c).map(|(i, _)| i).step_by(every));
    }
    let mut taken = vec![false; labels.len()];
    for &i in &part1 {
        taken[i] = true;
    }
    let part2 = (0..labels.len()).filter(|&i| !taken[i]).collect();
    (part1, part2)
}

/// The three parts of `create_dataset_split`: indices into the original training set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSplit {
    /// Every `val_every`-th image per class.
    pub val: Vec<usize>,
    /// Of the rest, every `unlabeled_every`-th image per class.
    pub unlabeled: Vec<usize>,
    /// What remains.
    pub train: Vec<usize>,
}

/// `create_dataset_split(train_targets, num_classes, val_split_amt, unlabeled_split_amt)`: val first, then the unlabeled part of what remains.
pub fn create_dataset_split(
    labels: &[u16],
    num_classes: usize,
    val_every: Option<usize>,
    unlabeled_every: Option<usize>,
) -> DatasetSplit {
    let (val, rest) = match val_every {
        Some(k) => every_kth_per_class(labels, num_classes, k),
        None => (Vec::new(), (0..labels.len()).collect()),
    };
    let (unlabeled, train) = match unlabeled_every {
        Some(k) => {
            let rest_labels: Vec<u16> = rest.iter().map(|&i| labels[i]).collect();
            let (a, b) = every_kth_per_class(&rest_labels, num_classes, k);
            (a.into_iter().map(|i| rest[i]).collect(), b.into_iter().map(|i| rest[i]).collect())
        }
        None => (Vec::new(), rest),
    };
    DatasetSplit { val, unlabeled, train }
}

/// How to split a training set into train, val and extra pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Val takes every `val_every`-th image of each class (the paper: 5, so 20%).
    pub val_every: usize,
    /// Of the rest, every `pool_every`-th image of each class is set apart (the paper: 4).
    pub pool_every: usize,
    /// Whether the set-apart part becomes train and the remainder the extra pool (the paper's CIFAR-10 main split: true, giving 20% train and 60% pool).
    pub swap: bool,
}

impl SplitConfig {
    /// The paper's CIFAR-10 main split (`cifar_0.25_with_unlabeled.pt`): 20% train, 20% val, 60% extra pool.
    pub fn paper_cifar10() -> SplitConfig {
        SplitConfig { val_every: 5, pool_every: 4, swap: true }
    }

    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        if self.val_every < 2 || self.pool_every < 2 {
            return Err(Error::Invalid(format!(
                "split: val_every and pool_every must be at least 2 (got {} and {})",
                self.val_every, self.pool_every
            )));
        }
        Ok(())
    }
}

/// A train/val/extra/test split by index: `train`, `val` and `extra` index the training set, `test` the test set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Images the classifier trains on.
    pub train: Vec<usize>,
    /// Images the SVMs are fit on.
    pub val: Vec<usize>,
    /// The pool the data intervention draws from.
    pub extra: Vec<usize>,
    /// Held-out images.
    pub test: Vec<usize>,
}

impl Split {
    /// The parts by name, in a fixed order.
    pub fn parts(&self) -> [(SplitPart, &[usize]); 4] {
        SplitPart::ALL.map(|part| (part, self.indices(part)))
    }

    /// The dataset indices of one part.
    pub fn indices(&self, part: SplitPart) -> &[usize] {
        match part {
            SplitPart::Train => &self.train,
            SplitPart::Val => &self.val,
            SplitPart::Extra => &self.extra,
            SplitPart::Test => &self.test,
        }
    }
}

/// One part of a [`Split`]: train, val and extra index the training set, test the test set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitPart {
    /// The classifier's training images.
    Train,
    /// The held-out images the SVMs are fitted on.
    Val,
    /// The extra pool interventions draw from.
    Extra,
    /// The official test set.
    Test,
}

impl SplitPart {
    /// Every part, in the order artifacts list them.
    pub const ALL: [SplitPart; 4] = [SplitPart::Train, SplitPart::Val, SplitPart::Extra, SplitPart::Test];

    /// The part's name in file names and tables: `train`, `val`, `extra` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            SplitPart::Train => "train",
            SplitPart::Val => "val",
            SplitPart::Extra => "extra",
            SplitPart::Test => "test",
        }
    }

    /// Whether the part indexes the test set (the others index the training set).
    pub fn is_test(self) -> bool {
        self == SplitPart::Test
    }

    /// The part named `name`.
    pub fn from_name(name: &str) -> Option<SplitPart> {
        SplitPart::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for SplitPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Splits a training set with `labels` (and a test set of `test_len` images) as `config` says.
pub fn split(labels: &[u16], num_classes: usize, test_len: usize, config: &SplitConfig) -> Split {
    let parts = create_dataset_split(labels, num_classes, Some(config.val_every), Some(config.pool_every));
    let (train, extra) = if config.swap { (parts.unlabeled, parts.train) } else { (parts.train, parts.unlabeled) };
    Split { train, val: parts.val, extra, test: (0..test_len).collect() }
}

#[cfg(test)]
mod tests;
