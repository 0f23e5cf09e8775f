//! The retrain stage: a classifier retrained with each selection added to the train split (from scratch, or the last layer
//! only; under each of `[intervene] seeds`), evaluated on test (and, with `[generate]`, the last layer retrained on each kind
//! of generated image: `retrain_generated`): `retrain/<name>/{model,eval_test}.safetensors` and `train_log.json` (names as
//! [`RetrainKey::name`]), one stage (`retrain-<name>`) each, so an interrupted sweep loses one retraining at most.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::artifacts::{RetrainKey, Selections, TrainLog, Version};
use crate::config::{InterveneConfig, RetrainMode};
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
    if let Some(intervene) = &run.experiment.intervene {
        retrain_selections(run, intervene)?;
    }
    if run.experiment.generate.is_some() {
        super::retrain_generated::retrain_generated(run)?;
    }
    Ok(())
}

/// Retrains with each selection added: from scratch and/or the last layer, under each seed.
fn retrain_selections(run: &Run, intervene: &InterveneConfig) -> Result<()> {
    let (model_config, train_config) = run.model_sections()?;
    let selections: Selections = run.read()?;
    let data_key = run.data_key()?;
    for key in RetrainKey::all(intervene, &selections) {
        let name = key.name();
        let picked = selections
            .picks(key.rule, key.k, key.seed)
            .with_context(|| format!("selections.json has no picks for {name}; run `fd-cli select` to remake it"))?;
        let mut seeded = train_config.clone();
        seeded.seed = key.seed.unwrap_or(train_config.seed);
        let selection = fd_data::sha256_hex(&serde_json::to_vec(picked)?);
        let mut inputs = BTreeMap::from([(format!("selection {name}"), selection)]);
        // From scratch the key is the one retraining has always had (the seed inside `train`); the last layer reads the
        // trained classifier too.
        let config = match key.mode {
            RetrainMode::Scratch => json!({"data": data_key, "model": model_config, "train": seeded}),
            RetrainMode::LastLayer => {
                inputs.extend(run.engine.inputs(&["train"], |n| n == "model.safetensors")?);
                json!({"data": data_key, "model": model_config, "retrain": last_layer(&seeded), "mode": "last-layer"})
            }
        };
        run.engine.run(&format!("retrain-{name}"), config, inputs, |out| {
            let prepared = run.prepared()?;
            let device = run.device()?;
            let indices: Vec<usize> = prepared.split.train.iter().chain(picked).copied().collect();
            let dataset = prepared.train.dataset(run.classifier_size())?;
            let set = fd_model::TrainSet { dataset: &dataset, indices: &indices, weights: None };
            let classes = prepared.train.num_classes();
            let (model, epochs) = match key.mode {
                RetrainMode::Scratch => {
                    fd_model::train(model_config, classes, set, &seeded, &device, &Bars::default())?
                }
                RetrainMode::LastLayer => {
                    let model = run.load_model("model.safetensors", &device)?;
                    let head = last_layer(&seeded);
                    fd_model::retrain_head(model, model_config, set, &head, &device, &Bars::default())?
                }
            };
            let (test, test_indices) = prepared.images(fd_data::SplitPart::Test);
            let eval = super::evaluate::evaluate_trained(run, &model, test, test_indices, &device)?;
            println!("retrain: {name}: test accuracy {:.2}%", 100.0 * eval.accuracy());
            save_retrained(out, &Path::new("retrain").join(&name), &model, &eval, epochs)
        })?;
    }
    Ok(())
}

/// The paper's last-layer schedule (§4.2: 15 epochs, peak 0.1 at epoch 5) at the batch size, seed and augmentation of
/// `train`.
pub(super) fn last_layer(train: &fd_model::TrainConfig) -> fd_model::TrainConfig {
    let paper = fd_model::TrainConfig::paper_last_layer();
    fd_model::TrainConfig {
        epochs: paper.epochs,
        peak_lr: paper.peak_lr,
        peak_epoch: paper.peak_epoch,
        ..train.clone()
    }
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
