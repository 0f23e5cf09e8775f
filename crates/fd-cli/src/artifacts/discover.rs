//! The discover stage's artifacts: `modes.json` (each class's failure modes) and `discover.json` (the discovery methods
//! against planted groups).

use serde::{Deserialize, Serialize};

use super::{JsonArtifact, Version};

/// `modes.json`: each class's failure modes (fd-svm's `modes`), each checked on test as the captions are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModesFile {
    /// The format.
    pub format_version: Version<1>,
    /// How modes were searched for.
    pub config: fd_svm::modes::ModeConfig,
    /// Test images per mode in its check (the caption check's `k`).
    pub k: usize,
    /// The part whose correctness chose and ordered the modes: the extra pool, or test when the pool is empty (then the check
    /// on test is not independent of the choice).
    pub chosen_on: fd_data::SplitPart,
    /// One entry per class with an SVM.
    pub classes: Vec<ClassModesEntry>,
}
json_artifact!(ModesFile, "modes.json", "discover");

/// One class's modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassModesEntry {
    /// The class.
    pub class: u16,
    /// Its name.
    pub name: String,
    /// Whether the class has several modes (else its one mode is the paper's SVM).
    pub split: bool,
    /// Clusters of errors the search started from, merges of redundant modes, modes the check dropped.
    pub clusters: usize,
    /// Merges.
    pub merged: usize,
    /// Dropped.
    pub dropped: usize,
    /// The modes, hardest first, with their check on test (their `k` hardest test images).
    pub modes: Vec<ModeEntry>,
}

/// One mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeEntry {
    /// The SVM (in the preprocessed space of `directions.json`).
    pub mode: fd_svm::modes::Mode,
    /// The held-out check of its hardest test images.
    pub check: fd_caption::check::CaptionCheck,
    /// The test images it ranks hardest (dataset indices of the test set), hardest first.
    pub hardest: Vec<usize>,
}

/// `discover.json` (planted datasets only): how well each discovery method recovers each planted group, as dcbench scores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverFile {
    /// The format.
    pub format_version: Version<1>,
    /// The methods, in the order every entry lists them.
    pub methods: Vec<String>,
    /// The Domino-style mixture's settings.
    pub domino: fd_svm::domino::DominoConfig,
    /// One entry per planted group of a class with test images of it.
    pub groups: Vec<GroupRecovery>,
}
json_artifact!(DiscoverFile, "discover.json", "discover");

/// One planted group in one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecovery {
    /// The class.
    pub class: u16,
    /// The group's id and name.
    pub group: u16,
    /// Its name.
    pub group_name: String,
    /// The class's test images, and the group's share of them.
    pub test_images: usize,
    /// The group's share.
    pub base_rate: f64,
    /// The classifier's test accuracy on the group and on the rest of the class.
    pub group_accuracy: f64,
    /// On the rest.
    pub rest_accuracy: f64,
    /// The modes the class was given.
    pub modes: usize,
    /// Per method (in `methods` order): the best-matching slice's figures.
    pub methods: Vec<MethodRecovery>,
}

/// One method's best-matching slice for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRecovery {
    /// Slices the method gave the class.
    pub slices: usize,
    /// Best precision at 10 over slices and complements.
    pub precision_at_10: Option<f64>,
    /// At 25.
    pub precision_at_25: Option<f64>,
    /// Best average precision.
    pub average_precision: Option<f64>,
    /// Best AUROC.
    pub auroc: Option<f64>,
}
