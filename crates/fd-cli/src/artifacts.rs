//! The run directory's artifact formats: one serde struct per JSON file, each carrying its format version and read with
//! `deny_unknown_fields`, and the embeddings' safetensors layout. [`crate::run::Run`] reads and writes them; the report consumes them.

use anyhow::{Result, bail};
use fd_data::SplitPart;

use serde::{Deserialize, Serialize};

/// The file a part's evaluation lives in.
pub fn eval_file(part: SplitPart) -> String {
    format!("eval_{part}.safetensors")
}

/// The file a part's embeddings live in.
pub fn embeddings_file(part: SplitPart) -> String {
    format!("embeddings_{part}.safetensors")
}

/// A format version that serializes as `N` and refuses any other number when read, so a file of another version is an error
/// naming both numbers, before any field of the other format is looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version<const N: u32>;

impl<const N: u32> Serialize for Version<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u32(N)
    }
}

impl<'de, const N: u32> Deserialize<'de> for Version<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let found = u32::deserialize(d)?;
        if found != N {
            return Err(serde::de::Error::custom(format!(
                "format version {found}, expected {N} (written by another version of fd-cli)"
            )));
        }
        Ok(Version)
    }
}

/// A JSON artifact: its file name in the run directory and the stage that writes it.
pub trait JsonArtifact: Serialize + serde::de::DeserializeOwned {
    /// The file, relative to the run directory.
    const FILE: &'static str;
    /// The stage (and subcommand) that writes it.
    const STAGE: &'static str;
}

macro_rules! json_artifact {
    ($t:ty, $file:literal, $stage:literal) => {
        impl JsonArtifact for $t {
            const FILE: &'static str = $file;
            const STAGE: &'static str = $stage;
        }
    };
}

mod discover;
mod generated;
mod names;
pub use discover::{ClassModesEntry, DiscoverFile, GroupRecovery, MethodRecovery, ModeEntry, ModesFile};
pub use generated::{GeneratedAccuracy, GeneratedFile, GeneratedImage};
pub use names::{ClassNamesEntry, NamesFile, NamesOutcome};

/// `train_log.json`: what each training epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainLog {
    /// The format.
    pub format_version: Version<1>,
    /// One entry per epoch.
    pub epochs: Vec<fd_model::EpochLog>,
}
json_artifact!(TrainLog, "train_log.json", "train");

/// One part's accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartAccuracy {
    /// The part.
    pub part: SplitPart,
    /// Its images.
    pub images: usize,
    /// The classifier's accuracy on them.
    pub accuracy: f64,
}

/// `evaluate.json`: the classifier's accuracy on every part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateSummary {
    /// The format.
    pub format_version: Version<1>,
    /// One entry per part, in split order.
    pub parts: Vec<PartAccuracy>,
}
json_artifact!(EvaluateSummary, "evaluate.json", "evaluate");

impl EvaluateSummary {
    /// The accuracy on `part`.
    pub fn accuracy(&self, part: SplitPart) -> Option<f64> {
        self.parts.iter().find(|p| p.part == part).map(|p| p.accuracy)
    }
}

/// One part's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedPart {
    /// The part.
    pub part: SplitPart,
    /// Its images.
    pub images: usize,
    /// Seconds spent on it.
    pub seconds: f64,
    /// Whether the rows came from the cache directory.
    pub cached: bool,
}

/// `embed.json`: the space's dimension and what each part took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSummary {
    /// The format.
    pub format_version: Version<1>,
    /// The embedding dimension.
    pub dim: usize,
    /// One entry per part.
    pub parts: Vec<EmbedPart>,
}
json_artifact!(EmbedSummary, "embed.json", "embed");

/// `directions.json`: the per-class SVMs with their preprocessing (the vectors are also in `directions.safetensors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionsFile {
    /// The format.
    pub format_version: Version<1>,
    /// The directions.
    pub directions: fd_svm::Directions,
}
json_artifact!(DirectionsFile, "directions.json", "fit");

/// One class's SVM quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassFit {
    /// The class.
    pub class: u16,
    /// The chosen C (`None` when skipped).
    pub c: Option<f64>,
    /// Its mean 2-fold CV balanced accuracy on val.
    pub cv_balanced_accuracy: Option<f64>,
    /// The SVM's balanced accuracy on the class's test images.
    pub test_balanced_accuracy: f64,
    /// The classifier's accuracy on them.
    pub classifier_test_accuracy: f64,
    /// Why the class has no SVM, if it has none.
    pub skipped: Option<String>,
}

/// `fit.json`: the SVMs' quality on val (cross-validated) and on test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSummary {
    /// The format.
    pub format_version: Version<1>,
    /// The mean over fitted classes of the chosen C's CV balanced accuracy.
    pub mean_cv_balanced_accuracy: f64,
    /// The balanced accuracy of all SVMs' flags on test (classes without an SVM flag nothing).
    pub test_balanced_accuracy: f64,
    /// The plain accuracy of the same flags.
    pub test_accuracy: f64,
    /// Their confusion counts.
    pub test_confusion: fd_svm::metrics::Confusion,
    /// Seconds the fit took.
    pub fit_seconds: f64,
    /// One entry per class.
    pub classes: Vec<ClassFit>,
}
json_artifact!(FitSummary, "fit.json", "fit");

/// What the caption stage made of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CaptionOutcome {
    /// Captioned and checked.
    Captioned {
        /// What the scores are taken against: the reference caption, or for a closed space the mean vector of some classes.
        reference: String,
        /// The captions and their evidence.
        captions: fd_caption::class::ClassCaptions,
    },
    /// Not captioned, and why.
    Skipped {
        /// Why, in words.
        reason: String,
    },
}

/// One class of `captions.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCaptionsEntry {
    /// The class.
    pub class: u16,
    /// Its name.
    pub name: String,
    /// What was made of it.
    pub outcome: CaptionOutcome,
    /// When the class has several failure modes (`modes.json`), each mode's captions, in the modes' order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<fd_caption::class::ClassCaptions>,
}

impl ClassCaptionsEntry {
    /// The captions, when the class was captioned.
    pub fn captions(&self) -> Option<&fd_caption::class::ClassCaptions> {
        match &self.outcome {
            CaptionOutcome::Captioned { captions, .. } => Some(captions),
            CaptionOutcome::Skipped { .. } => None,
        }
    }
}

/// `captions.json`: per class the hardest and easiest captions, their held-out checks and subpopulations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionsFile {
    /// The format.
    pub format_version: Version<1>,
    /// One entry per class.
    pub classes: Vec<ClassCaptionsEntry>,
}
json_artifact!(CaptionsFile, "captions.json", "caption");

/// A part's embeddings joined with the classifier's evaluation of the same images, row for row.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Embeddings, `dim` values a row.
    pub rows: Vec<f32>,
    /// The embedding dimension.
    pub dim: usize,
    /// Dataset indices.
    pub indices: Vec<usize>,
    /// True labels.
    pub labels: Vec<u16>,
    /// Whether the classifier was right.
    pub correct: Vec<bool>,
    /// Softmax probability of the true class.
    pub confidence: Vec<f64>,
}

impl Scored {
    /// Joins embeddings and an evaluation that list the same images in the same order.
    pub fn join(embeddings: Embeddings, eval: fd_model::Evaluation) -> Result<Scored> {
        if embeddings.indices != eval.indices {
            bail!(
                "the embeddings ({} rows) and the evaluation ({} rows) do not list the same images in the same order",
                embeddings.indices.len(),
                eval.indices.len()
            );
        }
        Ok(Scored {
            rows: embeddings.rows,
            dim: embeddings.dim,
            indices: eval.indices,
            labels: eval.labels,
            correct: eval.correct,
            confidence: eval.confidence.iter().map(|&c| f64::from(c)).collect(),
        })
    }

    /// The rows of `class`, by position.
    pub fn class_rows(&self, class: u16) -> Vec<usize> {
        (0..self.labels.len()).filter(|&i| self.labels[i] == class).collect()
    }
}

mod embeddings;
mod selections;

pub use embeddings::Embeddings;
pub use selections::{RetrainKey, Selections};

#[cfg(test)]
mod tests;
