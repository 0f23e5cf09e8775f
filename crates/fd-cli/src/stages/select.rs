//! The select stage: K extra-pool images per class by each rule of `[intervene]`, `selections.json` (dataset indices).

use std::collections::BTreeMap;

use anyhow::Result;
use fd_data::SplitPart;
use fd_svm::select::{Pool, select as pick};
use serde_json::json;

use crate::artifacts::{Selections, Version};
use crate::run::Run;

/// Picks the pool images.
pub(super) fn select(run: &Run) -> Result<()> {
    let Some(intervene) = &run.experiment.intervene else {
        println!("select: no [intervene] section, nothing to do");
        return Ok(());
    };
    let wanted = |n: &str| n == "directions.json" || n.ends_with("_extra.safetensors");
    let inputs = run.engine.inputs(&["fit", "evaluate", "embed"], wanted)?;
    let classes = run.num_classes()?;
    run.engine.run("select", json!({"intervene": intervene}), inputs, |out| {
        let extra = run.scored(SplitPart::Extra)?;
        let decisions = run.directions()?.decision_values(&extra.rows, &extra.labels)?;
        let pool = Pool { labels: &extra.labels, decisions: &decisions, confidence: &extra.confidence };
        let mut rules = BTreeMap::new();
        for &rule in &intervene.rules {
            let by_k: BTreeMap<usize, Vec<usize>> = intervene
                .k
                .iter()
                .map(|&k| {
                    (k, pick(&pool, classes, rule, k, intervene.seed).iter().map(|&r| extra.indices[r]).collect())
                })
                .collect();
            rules.insert(rule, by_k);
        }
        Ok(vec![Run::write(out, &Selections { format_version: Version, rules })?])
    })?;
    Ok(())
}
