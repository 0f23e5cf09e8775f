//! `selections.json` and the retrainings the pool intervention runs over it.

use std::collections::BTreeMap;

use fd_svm::select::SelectionRule;
use serde::{Deserialize, Serialize};

use super::{JsonArtifact, Version};
use crate::config::{InterveneConfig, RetrainMode};

/// `selections.json`: pool images picked per rule and K, `rules[rule][k]` listing dataset indices, class by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selections {
    /// The format.
    pub format_version: Version<1>,
    /// The picks (a seeded rule's under `[intervene] seed`).
    pub rules: BTreeMap<SelectionRule, BTreeMap<usize, Vec<usize>>>,
    /// The seeded rules' (random's) picks under each of `[intervene] seeds`: `seeded[seed][rule][k]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seeded: BTreeMap<u64, BTreeMap<SelectionRule, BTreeMap<usize, Vec<usize>>>>,
}
json_artifact!(Selections, "selections.json", "select");

impl Selections {
    /// The picks of `rule` at `k`, under `seed` when the rule is seeded and a seed is given.
    pub fn picks(&self, rule: SelectionRule, k: usize, seed: Option<u64>) -> Option<&Vec<usize>> {
        match seed {
            Some(seed) if rule.seeded() => self.seeded.get(&seed)?.get(&rule)?.get(&k),
            _ => self.rules.get(&rule)?.get(&k),
        }
    }
}

/// One retraining of the pool intervention: a rule's picks at K, under a seed of `[intervene] seeds` (none: the run's
/// own), retrained from scratch or the last layer only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetrainKey {
    /// The rule.
    pub rule: SelectionRule,
    /// Images added per class (0 for the `none` control).
    pub k: usize,
    /// The seed, when `[intervene] seeds` asks for several.
    pub seed: Option<u64>,
    /// How it is retrained.
    pub mode: RetrainMode,
}

impl RetrainKey {
    /// Its name (`svm-k100`, `svm-k100-s3`, `svm-k100-s3-last`): its folder under `retrain/`; its stage is
    /// `retrain-<name>`.
    pub fn name(&self) -> String {
        let mut name = format!("{}-k{}", self.rule.name(), self.k);
        if let Some(seed) = self.seed {
            name.push_str(&format!("-s{seed}"));
        }
        if self.mode == RetrainMode::LastLayer {
            name.push_str("-last");
        }
        name
    }

    /// Every retraining `intervene` asks for over the picks in `selections`: per mode, then per seed, every rule and K,
    /// so an interrupted sweep has compared every rule under its first seeds.
    pub fn all(intervene: &InterveneConfig, selections: &Selections) -> Vec<RetrainKey> {
        let seeds: Vec<Option<u64>> =
            if intervene.seeds.is_empty() { vec![None] } else { intervene.seeds.iter().copied().map(Some).collect() };
        let mut keys = Vec::new();
        for &mode in &intervene.retrain {
            for &seed in &seeds {
                for (&rule, by_k) in &selections.rules {
                    keys.extend(by_k.keys().map(|&k| RetrainKey { rule, k, seed, mode }));
                }
            }
        }
        keys
    }
}
