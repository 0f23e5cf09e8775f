//! The retrain stage: a classifier retrained from scratch with each selection added to the train split, evaluated on test
//! (and, with `[generate]`, the last layer retrained on each kind of generated image: `retrain_generated`):
//! `retrain/<rule>-k<K>/{model,eval_test}.safetensors` and `train_log.json`, one stage (`retrain-<rule>-k<K>`) each, so an
//! interruption loses one retraining at most.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::artifacts::retrain_name;
use crate::artifacts::{Selections, TrainLog, Version};
use crate::progress::Bars;
use crate::run::Run;

/// Runs every retraining: each selection of `[intervene]`, and each kind of generated image of `[generate]`.
pub(super) fn retrain(run: &Run) -> Result<()> {
    if run.experiment.intervene.is_none() && run.experiment.generate.is_none() {
        println!("retrain: no [intervene] or [generate] section, nothing to do");
        return Ok(());
    }
    if run.experiment.classifier.is_some() {
        println!(
            "retrain: the classifier is the user's ([classifier]); retrain it with the images in selections.json or generated/"
        );
        return Ok(());
    }
    if run.experiment.intervene.is_some() {
        retrain_selections(run)?;
    }
    if run.experiment.generate.is_some() {
        super::retrain_generated::retrain_generated(run)?;
    }
    Ok(())
}

/// Retrains from scratch with each selection added.
fn retrain_selections(run: &Run) -> Result<()> {
    let (model_config, train_config) = run.model_sections()?;
    let selections: Selections = run.read()?;
    let data_key = run.data_key()?;
    for (&rule, by_k) in &selections.rules {
        for (&k, picked) in by_k {
            let name = retrain_name(rule, k);
            let config = json!({"data": data_key, "model": model_config, "train": train_config});
            let inputs =
                BTreeMap::from([(format!("selection {name}"), fd_data::sha256_hex(&serde_json::to_vec(picked)?))]);
            run.engine.run(&format!("retrain-{name}"), config, inputs, |out| {
                let prepared = run.prepared()?;
                let device = run.device()?;
                let indices: Vec<usize> = prepared.split.train.iter().chain(picked).copied().collect();
                let dataset = prepared.train.dataset(run.classifier_size())?;
                let set = fd_model::TrainSet { dataset: &dataset, indices: &indices, weights: None };
                let classes = prepared.train.num_classes();
                let (model, epochs) =
                    fd_model::train(model_config, classes, set, train_config, &device, &Bars::default())?;
                let (test, test_indices) = prepared.images(fd_data::SplitPart::Test);
                let eval = super::evaluate::evaluate_trained(run, &model, test, test_indices, &device)?;
                println!("retrain: {name}: test accuracy {:.2}%", 100.0 * eval.accuracy());
                save_retrained(out, &Path::new("retrain").join(&name), &model, &eval, epochs)
            })?;
        }
    }
    Ok(())
}

/// Writes a retrained classifier into `out/dir`: `model.safetensors`, `eval_test.safetensors` and `train_log.json`;
/// returns their paths relative to `out`.
pub(super) fn save_retrained(
    out: &Path,
    dir: &Path,
    model: &fd_model::ResNet,
    eval: &fd_model::Evaluation,
    epochs: Vec<fd_model::EpochLog>,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(out.join(dir))?;
    let rel = |f: &str| dir.join(f).to_string_lossy().into_owned();
    fd_model::load::save_weights(model, &out.join(rel("model.safetensors")))?;
    Run::write_eval(out, &rel("eval_test.safetensors"), eval)?;
    let log = TrainLog { format_version: Version, epochs };
    fd_data::write_atomic(&out.join(rel("train_log.json")), &serde_json::to_vec_pretty(&log)?)?;
    Ok(vec![rel("model.safetensors"), rel("eval_test.safetensors"), rel("train_log.json")])
}
