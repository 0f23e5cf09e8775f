//! The train stage: the classifier on the train split, `model.safetensors` and `train_log.json`.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use crate::artifacts::{TrainLog, Version};
use crate::progress::Bars;
use crate::run::Run;

/// Trains the classifier.
pub(super) fn train(run: &Run) -> Result<()> {
    if run.experiment.classifier.is_some() {
        println!("train: the classifier is the user's ([classifier]), nothing to train");
        return Ok(());
    }
    let (model_config, train_config) = run.model_sections()?;
    let config = json!({"data": run.data_key()?, "model": model_config, "train": train_config});
    run.engine.run("train", config, BTreeMap::new(), |out| {
        let prepared = run.prepared()?;
        let dataset = prepared.train.dataset(run.classifier_size())?;
        let set = fd_model::TrainSet { dataset: &dataset, indices: &prepared.split.train, weights: None };
        let classes = prepared.train.num_classes();
        let (model, epochs) =
            fd_model::train(model_config, classes, set, train_config, &run.device()?, &Bars::default())?;
        fd_model::load::save_weights(&model, &out.join("model.safetensors"))?;
        let log = Run::write(out, &TrainLog { format_version: Version, epochs })?;
        Ok(vec!["model.safetensors".into(), log])
    })?;
    Ok(())
}
