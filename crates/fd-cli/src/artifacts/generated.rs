//! `generated.json`: the generate stage's images and how each was drawn.

use serde::{Deserialize, Serialize};

use super::{JsonArtifact, Version};

/// One generated image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedImage {
    /// The PNG, relative to the run directory.
    pub file: String,
    /// The class whose caption it draws.
    pub class: u16,
    /// `hard`, `easy` or `reference`.
    pub kind: String,
    /// The caption's rank among the class's hard (or easy) captions.
    pub caption: usize,
    /// The prompt.
    pub prompt: String,
    /// Whether the prompt was cut to the text tower's 77 tokens.
    pub truncated: bool,
    /// The seed of its initial noise.
    pub seed: u64,
}

/// `generated.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedFile {
    /// The format.
    pub format_version: Version<1>,
    /// The `[generate]` section the images were drawn with.
    pub settings: fd_diffusion::GenerateConfig,
    /// The images, class by class.
    pub images: Vec<GeneratedImage>,
}
json_artifact!(GeneratedFile, "generated.json", "generate");

/// `retrain/generated-<kind>/generated_accuracy.json`: the classifiers on one kind's generated images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedAccuracy {
    /// The format.
    pub format_version: Version<1>,
    /// Generated images of the kind.
    pub images: usize,
    /// The original classifier's accuracy on all of them.
    pub accuracy: f64,
    /// The same per class.
    pub per_class: std::collections::BTreeMap<u16, f64>,
    /// Images held out of the retraining (every fifth).
    pub held_out: usize,
    /// The original classifier on the held-out images.
    pub held_out_before: Option<f64>,
    /// The retrained classifier on them.
    pub held_out_after: Option<f64>,
}
