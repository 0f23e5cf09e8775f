//! The select stage: K extra-pool images per class by each rule of `[intervene]`, `selections.json` (dataset indices). The
//! modes rule reads the discover stage's `modes.json`.
//!
//! Scoring the pool (each row's decision value under its class's direction, and under each of its class's modes for the
//! modes rule) also runs as shards of a job, as embed and evaluate do ([`crate::stages::shard`]): `fd-cli select --shard
//! I/N` scores a slice of the pool, reading only its rows of the embeddings; `--merge` checks the shards and picks from
//! their scores, under the stage's own key, reading the pool's embeddings only for the coreset rule.

mod sharded;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use fd_data::SplitPart;
use fd_svm::select::{Pool, SelectionRule, Space, select as pick};
use serde_json::{Value, json};

use crate::artifacts::{ModeEntry, ModesFile, Scored, Selections, Version, eval_file};
use crate::config::InterveneConfig;
use crate::run::Run;
use crate::stage::Sharding;
use crate::stages::shard::Sharded;

/// Picks the pool images, or scores one shard of the pool, or picks from the merged shards' scores.
pub(super) fn select(run: &Run, sharding: Sharding) -> Result<()> {
    let Some(intervene) = &run.experiment.intervene else {
        if sharding != Sharding::Whole {
            bail!("select: no [intervene] section, so there is no pool to score");
        }
        println!("select: no [intervene] section, nothing to do");
        return Ok(());
    };
    let plan = Plan::new(run, intervene)?;
    match sharding {
        Sharding::Whole => plan.pick(run, None),
        Sharding::Shard(shard) => sharded::score_shard(run, &plan, shard),
        Sharding::Merge => {
            let scores = sharded::merge(run, &plan)?;
            plan.pick(run, Some(scores))
        }
    }
}

/// The pool's scores under the fitted directions, in pool order.
#[derive(Debug)]
struct PoolScores {
    /// Each row's decision value under its class's SVM (0 for a class without one).
    decisions: Vec<f64>,
    /// Each row's decision values under its class's modes, hardest first (none unless the modes rule is asked for).
    modes: Vec<Vec<f64>>,
}

/// What the select stage is keyed on and reads.
struct Plan<'i> {
    intervene: &'i InterveneConfig,
    config: Value,
    inputs: BTreeMap<String, String>,
    /// The coreset rule: the pool's and the train split's rows in the SVM's space.
    coreset: bool,
    /// The modes rule: the discover stage's modes.
    with_modes: bool,
}

impl<'i> Plan<'i> {
    fn new(run: &Run, intervene: &'i InterveneConfig) -> Result<Plan<'i>> {
        let coreset = intervene.rules.contains(&SelectionRule::Coreset);
        let with_modes = intervene.rules.contains(&SelectionRule::Modes);
        let wanted = |n: &str| {
            n == "directions.json"
                || n.ends_with("_extra.safetensors")
                || coreset && n.ends_with("_train.safetensors") && n.starts_with("embeddings")
                || with_modes && n == "modes.json"
        };
        let stages: &[&str] =
            if with_modes { &["fit", "evaluate", "embed", "discover"] } else { &["fit", "evaluate", "embed"] };
        let inputs = run.engine.inputs(stages, wanted)?;
        // Keyed on what the picks depend on: how they are retrained is not (and left at its default, the key is the one
        // the stage had before retraining modes existed).
        let keyed = InterveneConfig { retrain: crate::config::scratch_only(), ..intervene.clone() };
        Ok(Plan { intervene, config: json!({"intervene": keyed}), inputs, coreset, with_modes })
    }

    /// The scoring job's shards: slices of the extra pool, any size (a row's scores do not depend on its neighbours).
    fn sharded(&self) -> Sharded {
        Sharded {
            stage: "select",
            config: self.config.clone(),
            inputs: self.inputs.clone(),
            extra: Value::Null,
            align: 1,
            parts: &[SplitPart::Extra],
        }
    }

    /// The select stage: scores the pool (unless `scores` come from the shards) and picks.
    fn pick(&self, run: &Run, scores: Option<PoolScores>) -> Result<()> {
        let (intervene, coreset, with_modes) = (self.intervene, self.coreset, self.with_modes);
        let classes = run.num_classes()?;
        run.engine.run("select", self.config.clone(), self.inputs.clone(), |out| {
            // The pool's evaluation read once: its logits for margin and entropy, joined with the embeddings for the
            // rest.
            let eval = run.read_eval(&eval_file(SplitPart::Extra))?;
            let uncertain = intervene.rules.iter().any(|r| matches!(r, SelectionRule::Margin | SelectionRule::Entropy));
            let classes_of_eval = eval.num_classes.max(1);
            let probabilities: Vec<f64> = if uncertain {
                eval.logits.chunks_exact(classes_of_eval).flat_map(fd_model::external::softmax).map(f64::from).collect()
            } else {
                Vec::new()
            };
            let directions = run.directions()?;
            let p = &directions.preprocessing;
            // The pool's rows: to score them here, and for the coreset.
            let extra = if scores.is_none() || coreset {
                Scored::join(run.read_embeddings(SplitPart::Extra)?, eval).context(
                    "the extra pool's embeddings and evaluation disagree; run `fd-cli reproduce` to remake them",
                )?
            } else {
                // The shards scored the pool's images in the order the run lists them; so must the evaluation.
                if eval.indices != run.prepared()?.images(SplitPart::Extra).1 {
                    bail!("the extra pool's evaluation does not list the pool's images in order; run `fd-cli evaluate` to remake it");
                }
                let confidence = eval.confidence.iter().map(|&c| f64::from(c)).collect();
                let (indices, labels, correct) = (eval.indices, eval.labels, eval.correct);
                Scored { rows: Vec::new(), dim: p.dim(), indices, labels, correct, confidence }
            };
            let scores = match scores {
                Some(scores) => scores,
                None => {
                    let modes = if with_modes { Some(run.read::<ModesFile>()?) } else { None };
                    score(&directions, modes.as_ref(), &extra.rows, &extra.labels)?
                }
            };
            let modes_scored = if with_modes { extra.labels.len() } else { 0 };
            if scores.decisions.len() != extra.labels.len() || scores.modes.len() != modes_scored {
                bail!("{} pool scores for {} pool images", scores.decisions.len(), extra.labels.len());
            }
            // The SVM's space (standardised, normalised) for the coreset, starting from the train split's embeddings.
            let pool_rows = if coreset { p.apply(&extra.rows) } else { Vec::new() };
            let labelled = if coreset {
                let train = run.read_embeddings(SplitPart::Train)?;
                let prepared = run.prepared()?;
                let all = prepared.train.labels();
                let labels: Vec<u16> = train.indices.iter().map(|&i| all[i]).collect();
                Some((p.apply(&train.rows), labels))
            } else {
                None
            };
            let space = labelled.as_ref().map(|(rows, labels)| Space {
                dim: extra.dim,
                pool: &pool_rows,
                labelled: rows,
                labelled_labels: labels,
            });
            let pool = Pool {
                labels: &extra.labels,
                decisions: &scores.decisions,
                confidence: &extra.confidence,
                probabilities: &probabilities,
                space,
                modes: &scores.modes,
            };
            let pick_at = |rule: SelectionRule, k: usize, seed: u64| -> Result<Vec<usize>> {
                Ok(pick(&pool, classes, rule, k, seed)?.iter().map(|&r| extra.indices[r]).collect())
            };
            Ok(vec![Run::write(out, &selections(intervene, pick_at)?)?])
        })?;
        Ok(())
    }
}

/// The scores of pool rows (`rows`, raw, of the directions' dimension; `labels` their classes): under the directions,
/// and under the modes when given.
fn score(
    directions: &fd_svm::Directions,
    modes: Option<&ModesFile>,
    rows: &[f32],
    labels: &[u16],
) -> Result<PoolScores> {
    let decisions = directions.decision_values(rows, labels)?;
    let modes = match modes {
        Some(modes) => {
            mode_decisions(modes, &directions.preprocessing.apply(rows), directions.preprocessing.dim(), labels)
        }
        None => Vec::new(),
    };
    Ok(PoolScores { decisions, modes })
}

/// Every rule's picks at each K (the control's at K = 0 only) under the selection seed, then the seeded rules' under
/// each of `[intervene] seeds`; `pick_at(rule, k, seed)` gives one set of dataset indices.
fn selections(
    intervene: &InterveneConfig,
    pick_at: impl Fn(SelectionRule, usize, u64) -> Result<Vec<usize>>,
) -> Result<Selections> {
    let picks = |rule: SelectionRule, seed: u64| -> Result<BTreeMap<usize, Vec<usize>>> {
        let ks = if rule == SelectionRule::Nothing { vec![0] } else { intervene.k.clone() };
        ks.iter().map(|&k| Ok((k, pick_at(rule, k, seed)?))).collect()
    };
    let rules = intervene.rules.iter().map(|&rule| Ok((rule, picks(rule, intervene.seed)?))).collect::<Result<_>>()?;
    let mut seeded = BTreeMap::new();
    for &seed in &intervene.seeds {
        let by_rule: BTreeMap<SelectionRule, BTreeMap<usize, Vec<usize>>> = intervene
            .rules
            .iter()
            .filter(|r| r.seeded())
            .map(|&rule| Ok((rule, picks(rule, seed)?)))
            .collect::<Result<_>>()?;
        if !by_rule.is_empty() {
            seeded.insert(seed, by_rule);
        }
    }
    Ok(Selections { format_version: Version, rules, seeded })
}

/// Each pool row's decision value under each mode of its class (`rows` preprocessed, `dim` values a row), hardest mode first;
/// none for a class without modes.
fn mode_decisions(modes: &ModesFile, rows: &[f32], dim: usize, labels: &[u16]) -> Vec<Vec<f64>> {
    let by_class: BTreeMap<u16, &[ModeEntry]> = modes.classes.iter().map(|c| (c.class, c.modes.as_slice())).collect();
    rows.chunks_exact(dim)
        .zip(labels)
        .map(|(row, class)| {
            by_class.get(class).map_or_else(Vec::new, |m| m.iter().map(|e| e.mode.svm.decision(row)).collect())
        })
        .collect()
}
