//! Experiment configs: TOML files in `configs/`, deserialized strictly (unknown keys are errors), validated once, and saved next to the artifacts they produce.

use std::path::Path;

use anyhow::{Context, Result};
use fd_svm::select::SelectionRule;
use serde::{Deserialize, Serialize};

/// One experiment: each section's type lives in the crate that uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The dataset, its split and any planted subpopulation.
    pub data: fd_data::DataConfig,
    /// The user's classifier (an ONNX model or a file of its predictions), instead of one trained here by `[model]` and `[train]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<fd_model::external::ClassifierConfig>,
    /// The classifier trained here.
    pub model: Option<fd_model::ModelConfig>,
    /// How the classifier is trained.
    pub train: Option<fd_model::TrainConfig>,
    /// The latent space.
    pub embed: Option<fd_clip::EmbedConfig>,
    /// The user's own embeddings (any vision-language model's), instead of computing them with `[embed]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<ImportedEmbeddings>,
    /// Captioning and its held-out check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<fd_caption::class::CaptionConfig>,
    /// The per-class SVMs (the `fit` stage); the paper's settings without the section, and for any key it leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svm: Option<fd_svm::SvmConfig>,
    /// Several failure modes per class (the `discover` stage); its defaults without the section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<fd_svm::modes::ModeConfig>,
    /// The pool intervention (method spec §4.1); without this section the `select` and `retrain` stages do nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervene: Option<InterveneConfig>,
    /// Images of the failure captions with Stable Diffusion (the `generate` stage); absent, the stage does nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<fd_diffusion::GenerateConfig>,
}

/// The `[intervene]` section: pick K extra-pool images per class by each rule, add them to the train split, retrain (from
/// scratch, the paper's §4.1, or the last layer only, its §4.2), under one seed or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterveneConfig {
    /// Images added per class (the paper: 50 to 200 on CIFAR-10, 25 to 100 on CIFAR-100).
    pub k: Vec<usize>,
    /// The selection rules compared.
    #[serde(default = "all_rules")]
    pub rules: Vec<SelectionRule>,
    /// The seed of the random rule's permutation.
    #[serde(default)]
    pub seed: u64,
    /// Repeat every retraining under each of these seeds: the training's seed, and the random rule's. Empty (the
    /// default): one retraining each, under `[train] seed` and `seed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    /// How each selection is retrained: `"scratch"` (the default) and/or `"last-layer"`.
    #[serde(default = "scratch_only", skip_serializing_if = "is_scratch_only")]
    pub retrain: Vec<RetrainMode>,
}

/// How a selection is retrained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetrainMode {
    /// A new classifier trained from scratch on the train split plus the picks (the paper's pool intervention, §4.1).
    Scratch,
    /// The trained classifier's last layer retrained on them, the rest frozen with BatchNorm in train mode (the paper's
    /// §4.2 schedule: 15 epochs, peak 0.1 at epoch 5); minutes on a CPU, so many seeds fit.
    LastLayer,
}

pub(crate) fn scratch_only() -> Vec<RetrainMode> {
    vec![RetrainMode::Scratch]
}

fn is_scratch_only(modes: &Vec<RetrainMode>) -> bool {
    *modes == scratch_only()
}

/// The `[embeddings]` section: embeddings the user computed with a model of their choice (OpenCLIP, SigLIP, a medical CLIP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedEmbeddings {
    /// The images' embeddings: `.npy` `[images, dim]` in the dataset's listing order, or safetensors with `embeddings`
    /// `[images, dim]` and optionally `index` `[images]` (each row's index in the listing).
    pub images: std::path::PathBuf,
    /// The image each row is of: a text file, one path a line (as the folder or manifest lists it, relative to its root), in
    /// the rows' order; instead of the listing's order or an `index` tensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<std::path::PathBuf>,
    /// Caption embeddings from the same model's text tower: `.npy` `[captions, dim]` or safetensors `embeddings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<std::path::PathBuf>,
    /// The captions, one a line, in the rows' order. The caption stage scores them all; the class's reference is the one that
    /// reads `a photo of a <class>.` when present, else the mean of all the captions' embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption_texts: Option<std::path::PathBuf>,
}

impl ImportedEmbeddings {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        if self.captions.is_some() != self.caption_texts.is_some() {
            anyhow::bail!(
                "[embeddings] needs both `captions` (their embeddings) and `caption_texts` (the captions), or neither"
            );
        }
        Ok(())
    }
}

fn all_rules() -> Vec<SelectionRule> {
    SelectionRule::PAPER.to_vec()
}

impl InterveneConfig {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        if self.k.is_empty() || self.k.contains(&0) {
            anyhow::bail!("intervene.k = {:?}: expected at least one positive number of images per class", self.k);
        }
        if self.rules.is_empty() {
            anyhow::bail!(
                "intervene.rules is empty: expected some of \"none\", \"svm\", \"confidence\", \"random\", \"margin\", \"entropy\", \"coreset\", \"modes\""
            );
        }
        let mut modes = self.retrain.clone();
        modes.sort_unstable();
        modes.dedup();
        if self.retrain.is_empty() || modes.len() != self.retrain.len() {
            anyhow::bail!(
                "intervene.retrain = {:?}: expected \"scratch\", \"last-layer\" or both, each once",
                self.retrain
            );
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            anyhow::bail!("intervene.seeds = {:?}: a seed is repeated", self.seeds);
        }
        Ok(())
    }
}

impl Experiment {
    /// Checks every section once.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.data.validate()?;
        if let Some(c) = &self.classifier {
            c.validate()?;
        }
        if let Some(m) = &self.model {
            m.validate()?;
        }
        if let Some(e) = &self.embeddings {
            e.validate()?;
        }
        if let Some(t) = &self.train {
            t.validate()?;
        }
        if let Some(e) = &self.embed {
            e.validate()?;
        }
        if let Some(c) = &self.caption {
            c.check().map_err(anyhow::Error::msg)?;
        }
        if let Some(g) = &self.generate {
            g.validate()?;
        }
        if let Some(i) = &self.intervene {
            i.validate()?;
        }
        if let Some(m) = &self.modes {
            m.validate()?;
        }
        if let Some(s) = &self.svm {
            s.validate()?;
        }
        Ok(())
    }
}

/// Reads, parses and validates the config at `path`.
pub fn load_experiment(path: &Path) -> Result<Experiment> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    let experiment: Experiment = toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
    experiment.validate().with_context(|| format!("validating config {}", path.display()))?;
    Ok(experiment)
}

/// The resolved config as TOML, to save next to artifacts.
pub fn to_toml(experiment: &Experiment) -> String {
    toml::to_string_pretty(experiment).expect("an experiment of plain data always serializes")
}

#[cfg(test)]
mod tests;
