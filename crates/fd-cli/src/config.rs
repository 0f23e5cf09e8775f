//! Experiment configs: TOML files in `configs/`, deserialized strictly (unknown keys are errors), validated once, and saved next to the artifacts they produce.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One experiment: each section's type lives in the crate that uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The dataset, its split and any planted subpopulation.
    pub data: fd_data::DataConfig,
    /// The classifier.
    pub model: Option<fd_model::ModelConfig>,
    /// How the classifier is trained.
    pub train: Option<fd_model::TrainConfig>,
    /// The latent space.
    pub embed: Option<fd_clip::EmbedConfig>,
}

impl Experiment {
    /// Checks every section once.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.data.validate()?;
        if let Some(m) = &self.model {
            m.validate()?;
        }
        if let Some(t) = &self.train {
            t.validate()?;
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
