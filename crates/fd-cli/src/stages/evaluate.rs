//! The evaluate stage: the classifier on every part, `eval_<part>.safetensors` and `evaluate.json`. The classifier is the one
//! the train stage trained, or the user's (`[classifier]`): an ONNX model run here, or a file of its predictions. The
//! trained or ONNX classifier also runs as shards of a job ([`sharded`]).

mod sharded;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use fd_data::{Images, SplitPart};
use fd_model::Evaluation;
use fd_model::external::{ClassifierConfig, Wanted, are_probabilities, empty_evaluation, push_scores};
use serde_json::{Value, json};

use crate::artifacts::eval_file;
use crate::artifacts::{EvaluateSummary, PartAccuracy, Version};
use crate::progress::Bars;
use crate::run::Run;
use crate::stage::Sharding;
use crate::stages::shard::Sharded;

/// Images a batch of the trained classifier: the last bits of its outputs depend on the batch an image is in, so the shards
/// of a sharded evaluation run the same batches ([`Sharded::align`]).
const BATCH: usize = 512;

/// Evaluates the classifier on every part, or one shard of the images, or merges the finished shards.
pub(super) fn evaluate(run: &Run, sharding: Sharding) -> Result<()> {
    if let Some(classifier) = &run.experiment.classifier {
        return evaluate_external(run, classifier, sharding);
    }
    let inputs = run.engine.inputs(&["train"], |_| true)?;
    let (model_config, _) = run.model_sections()?;
    let config = json!({"data": run.data_key()?, "model": model_config});
    let sharded =
        Sharded { stage: "evaluate", config, inputs, extra: Value::Null, align: BATCH, parts: &SplitPart::ALL };
    match sharding {
        Sharding::Whole => {}
        Sharding::Shard(shard) => return sharded::shard_trained(run, &sharded, shard),
        Sharding::Merge => return sharded::merge(run, sharded, false),
    }
    let Sharded { config, inputs, .. } = sharded;
    run.engine.run("evaluate", config, inputs, |out| {
        let prepared = run.prepared()?;
        let device = run.device()?;
        let model = run.load_model("model.safetensors", &device)?;
        write_parts(out, |part| {
            let (set, indices) = prepared.images(part);
            evaluate_trained(run, &model, set, indices, &device)
        })
    })?;
    Ok(())
}

/// The trained classifier on `indices` of `set`; images on disk are decoded and resized a chunk at a time.
pub(super) fn evaluate_trained(
    run: &Run,
    model: &fd_model::ResNet,
    set: &Images,
    indices: &[usize],
    device: &fd_model::Device,
) -> Result<Evaluation> {
    let (model_config, _) = run.model_sections()?;
    let bars = Bars::default();
    let Images::Files(_) = set else {
        let dataset = set.memory("evaluate")?;
        return Ok(fd_model::evaluate(model, model_config, dataset, indices, BATCH, device, &bars));
    };
    // An empty part is evaluated too, so its evaluation has the classifier's shape.
    let mut all: Option<Evaluation> = None;
    for chunk in indices.chunks(8 * BATCH).chain(indices.is_empty().then_some(&indices[..0])) {
        let dataset = set.resized(chunk, run.classifier_size())?;
        let local: Vec<usize> = (0..chunk.len()).collect();
        let mut eval = fd_model::evaluate(model, model_config, &dataset, &local, BATCH, device, &bars);
        eval.indices = chunk.to_vec();
        match &mut all {
            Some(all) => all.append(eval),
            None => all = Some(eval),
        }
    }
    all.context("no images to evaluate")
}

/// The user's classifier on every part (or on one shard, or the shards merged).
fn evaluate_external(run: &Run, classifier: &ClassifierConfig, sharding: Sharding) -> Result<()> {
    let file = classifier.predictions.as_ref().or(classifier.onnx.as_ref()).context("[classifier] names no file")?;
    let sha = run.engine.sha256(file).with_context(|| format!("reading [classifier] file {}", file.display()))?;
    let inputs = BTreeMap::from([(format!("classifier {}", file.display()), sha)]);
    let mut keyed = classifier.clone();
    (keyed.predictions, keyed.onnx) = (None, None);
    let config = json!({"data": run.data_key()?, "classifier": keyed});
    // Shards run the whole stage's batches: the ONNX model's batch size is the unit.
    let align = match (&classifier.onnx, sharding) {
        (Some(path), Sharding::Shard(_) | Sharding::Merge) => {
            fd_model::load::load_onnx_classifier(path, classifier)?.batch_size()
        }
        _ => 1,
    };
    let sharded = Sharded { stage: "evaluate", config, inputs, extra: Value::Null, align, parts: &SplitPart::ALL };
    match sharding {
        Sharding::Whole => {}
        Sharding::Shard(shard) => return sharded::shard_onnx(run, &sharded, shard, classifier),
        Sharding::Merge if classifier.onnx.is_some() => return sharded::merge(run, sharded, true),
        Sharding::Merge => bail!("[classifier] predictions are read whole: there are no shards to merge"),
    }
    let Sharded { config, inputs, .. } = sharded;
    run.engine.run("evaluate", config, inputs, |out| {
        let prepared = run.prepared()?;
        let names = prepared.train.class_names().to_vec();
        if let Some(path) = &classifier.predictions {
            let predictions = fd_model::load::read_predictions(path, &names)?;
            return write_parts(out, |part| {
                let (set, indices) = prepared.images(part);
                let Images::Files(files) = set else {
                    bail!("a predictions file keys its rows by the dataset's files; use it with a dataset on disk ([data.dataset] name = \"folder\")");
                };
                let listing = files.listing();
                let wanted: Vec<Wanted<'_>> = indices
                    .iter()
                    .map(|&i| {
                        let row = files.rows()[i];
                        Wanted { index: i, row, path: &listing.entries[row].path, label: set.labels()[i] }
                    })
                    .collect();
                Ok(predictions.evaluation(&wanted, listing.entries.len(), names.len())?)
            });
        }
        let path = classifier.onnx.as_ref().context("[classifier] names no file")?;
        let model = fd_model::load::load_onnx_classifier(path, classifier)?;
        let mut scores = Vec::new();
        for part in SplitPart::ALL {
            let (set, indices) = prepared.images(part);
            scores.push(onnx_scores(&model, path, set, indices, &names)?);
        }
        // Probabilities or logits is the model's property: decided once, over every image.
        let probabilities = scores.iter().all(|s| are_probabilities(s, names.len()));
        write_parts(out, |part| {
            let (set, indices) = prepared.images(part);
            let mut eval = empty_evaluation(names.len(), indices.len());
            let labels: Vec<u16> = indices.iter().map(|&i| set.labels()[i]).collect();
            push_scores(&mut eval, indices, &labels, &scores[SplitPart::ALL.iter().position(|p| *p == part).unwrap_or(0)], probabilities);
            Ok(eval)
        })
    })?;
    Ok(())
}

/// The ONNX classifier's scores for `indices` of `set`, a batch at a time; an output of the wrong width names the file.
fn onnx_scores(
    model: &fd_model::onnx::OnnxClassifier,
    path: &std::path::Path,
    set: &Images,
    indices: &[usize],
    names: &[String],
) -> Result<Vec<f32>> {
    let mut scores = Vec::with_capacity(indices.len() * names.len());
    set.batches(indices, model.batch_size(), |_, images| {
        let (batch, k) = model.logits(&images).map_err(|e| fd_data::Error::Invalid(e.to_string()))?;
        if k != names.len() {
            return Err(fd_data::Error::Invalid(format!(
                "{}: the model gives {k} outputs per image, the dataset has {} classes ({})",
                path.display(),
                names.len(),
                names.join(", ")
            )));
        }
        scores.extend(batch);
        Ok(())
    })?;
    Ok(scores)
}

/// Evaluates every part with `eval` and writes `eval_<part>.safetensors` and `evaluate.json`.
fn write_parts(out: &std::path::Path, mut eval: impl FnMut(SplitPart) -> Result<Evaluation>) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut parts = Vec::new();
    for part in SplitPart::ALL {
        let e = eval(part)?;
        written.push(Run::write_eval(out, &eval_file(part), &e)?);
        println!("evaluate: {part:<6} accuracy {:.2}% ({} images)", 100.0 * e.accuracy(), e.indices.len());
        parts.push(PartAccuracy { part, images: e.indices.len(), accuracy: e.accuracy() });
    }
    written.push(Run::write(out, &EvaluateSummary { format_version: Version, parts })?);
    Ok(written)
}
