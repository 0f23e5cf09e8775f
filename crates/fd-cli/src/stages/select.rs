//! The select stage: K extra-pool images per class by each rule of `[intervene]`, `selections.json` (dataset indices). The
//! modes rule reads the discover stage's `modes.json`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use fd_data::SplitPart;
use fd_svm::select::{Pool, SelectionRule, Space, select as pick};
use serde_json::json;

use crate::artifacts::{ModeEntry, ModesFile, Scored, Selections, Version, eval_file};
use crate::config::InterveneConfig;
use crate::run::Run;

/// Picks the pool images.
pub(super) fn select(run: &Run) -> Result<()> {
    let Some(intervene) = &run.experiment.intervene else {
        println!("select: no [intervene] section, nothing to do");
        return Ok(());
    };
    let coreset = intervene.rules.contains(&SelectionRule::Coreset);
    // The modes rule reads the discover stage's modes.
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
    let classes = run.num_classes()?;
    // Keyed on what the picks depend on: how they are retrained is not (and left at its default, the key is the one the
    // stage had before retraining modes existed).
    let keyed = InterveneConfig { retrain: crate::config::scratch_only(), ..intervene.clone() };
    run.engine.run("select", json!({"intervene": keyed}), inputs, |out| {
        // The pool's evaluation read once: its logits for margin and entropy, joined with the embeddings for the rest.
        let eval = run.read_eval(&eval_file(SplitPart::Extra))?;
        let uncertain = intervene.rules.iter().any(|r| matches!(r, SelectionRule::Margin | SelectionRule::Entropy));
        let classes_of_eval = eval.num_classes.max(1);
        let probabilities: Vec<f64> = if uncertain {
            eval.logits.chunks_exact(classes_of_eval).flat_map(fd_model::external::softmax).map(f64::from).collect()
        } else {
            Vec::new()
        };
        let extra = Scored::join(run.read_embeddings(SplitPart::Extra)?, eval)
            .context("the extra pool's embeddings and evaluation disagree; run `fd-cli reproduce` to remake them")?;
        let directions = run.directions()?;
        let decisions = directions.decision_values(&extra.rows, &extra.labels)?;
        // The SVM's space (standardised, normalised) for the coreset, starting from the train split's embeddings, and for
        // the modes.
        let p = &directions.preprocessing;
        let pool_rows = if coreset || with_modes { p.apply(&extra.rows) } else { Vec::new() };
        let labelled = if coreset {
            let train = run.read_embeddings(SplitPart::Train)?;
            let prepared = run.prepared()?;
            let all = prepared.train.labels();
            let labels: Vec<u16> = train.indices.iter().map(|&i| all[i]).collect();
            Some((p.apply(&train.rows), labels))
        } else {
            None
        };
        let modes =
            if with_modes { mode_decisions(&run.read()?, &pool_rows, extra.dim, &extra.labels) } else { Vec::new() };
        let space = labelled.as_ref().map(|(rows, labels)| Space {
            dim: extra.dim,
            pool: &pool_rows,
            labelled: rows,
            labelled_labels: labels,
        });
        let pool = Pool {
            labels: &extra.labels,
            decisions: &decisions,
            confidence: &extra.confidence,
            probabilities: &probabilities,
            space,
            modes: &modes,
        };
        let pick_at = |rule: SelectionRule, k: usize, seed: u64| -> Result<Vec<usize>> {
            Ok(pick(&pool, classes, rule, k, seed)?.iter().map(|&r| extra.indices[r]).collect())
        };
        Ok(vec![Run::write(out, &selections(intervene, pick_at)?)?])
    })?;
    Ok(())
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
