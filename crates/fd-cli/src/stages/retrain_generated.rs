//! The generative intervention (method spec §4.2): for each kind of generated image (`hard`, `easy`, `reference`), the
//! trained classifier's last layer retrained on the train split plus those images, resized to the classifier's size, the
//! rest frozen with BatchNorm in train mode (the paper's 15 epochs peaking at 0.1 at epoch 5, at the run's batch size),
//! then evaluated on test:
//! `retrain/generated-<kind>/{model,eval_test}.safetensors`, `train_log.json` and `generated_accuracy.json` (the original
//! classifier's accuracy on those generated images: the paper's 36.9% for hard captions; and on the held-out fifth of
//! them, which the retraining does not see, before and after). One stage per kind.
//!
//! Unlike the paper's script, the generated images are augmented as the train split is (one flag covers a training set).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::artifacts::GeneratedFile;
use crate::progress::Bars;
use crate::run::Run;

/// The kinds of generated image, each a retraining.
pub(crate) const KINDS: [&str; 3] = ["hard", "easy", "reference"];

/// The train images followed by the generated ones, resized to the train images' size (the classifier's).
fn with_generated(
    run: &Run,
    train: &fd_data::Dataset,
    images: &[&crate::artifacts::GeneratedImage],
) -> Result<fd_data::Dataset> {
    let mut pixels = train.pixels().to_vec();
    let mut labels = train.labels().to_vec();
    for image in images {
        let path = run.dir.join(&image.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let decoded = fd_data::decode_png(&bytes, &path)?;
        pixels.extend(fd_data::preprocess::resize_bilinear(&decoded, train.height(), train.width()).data);
        labels.push(image.class);
    }
    Ok(fd_data::Dataset::new(train.height(), train.width(), pixels, labels, train.class_names().to_vec())?)
}

/// Runs a last-layer retraining per kind of generated image.
pub(super) fn retrain_generated(run: &Run) -> Result<()> {
    let inputs = run.engine.inputs(&["train", "generate"], |n| n == "model.safetensors" || n == "generated.json")?;
    let generated: GeneratedFile = run.read()?;
    let (model_config, train_config) = run.model_sections()?;
    // The paper's last-layer schedule at the batch size (and seed, augmentation) the run trained with.
    let head = super::retrain::last_layer(train_config);
    for kind in KINDS {
        let images: Vec<_> = generated.images.iter().filter(|i| i.kind == kind).collect();
        if images.is_empty() {
            continue;
        }
        let config = json!({"data": run.data_key()?, "model": model_config, "retrain": head, "kind": kind});
        run.engine.run(&format!("retrain-generated-{kind}"), config, inputs.clone(), |out| {
            let prepared = run.prepared()?;
            let device = run.device()?;
            let train = prepared.train.dataset(run.classifier_size())?;
            let dataset = with_generated(run, &train, &images)?;
            let added: Vec<usize> = (train.len()..dataset.len()).collect();
            // Every fifth generated image is held out of the retraining, to measure it on (none below five images).
            let (held_out, trained): (Vec<usize>, Vec<usize>) =
                added.iter().partition(|&&i| added.len() >= 5 && (i - train.len()) % 5 == 4);
            let model = run.load_model("model.safetensors", &device)?;
            let bars = Bars::default();
            // The original classifier on the generated images.
            let base = fd_model::evaluate(&model, model_config, &dataset, &added, 512, &device, &bars);
            let share = |e: &fd_model::Evaluation, rows: &[usize]| -> Option<f64> {
                let right = e.indices.iter().zip(&e.correct).filter(|(i, c)| **c && rows.contains(i)).count();
                (!rows.is_empty()).then(|| right as f64 / rows.len() as f64)
            };
            let held_out_before = share(&base, &held_out);
            let indices: Vec<usize> = prepared.split.train.iter().chain(&trained).copied().collect();
            let set = fd_model::TrainSet { dataset: &dataset, indices: &indices, weights: None };
            let (model, epochs) = fd_model::retrain_head(model, model_config, set, &head, &device, &bars)?;
            let held_out_after = (!held_out.is_empty())
                .then(|| fd_model::evaluate(&model, model_config, &dataset, &held_out, 512, &device, &bars))
                .and_then(|e| share(&e, &held_out));
            let (test, test_indices) = prepared.images(fd_data::SplitPart::Test);
            let eval = super::evaluate::evaluate_trained(run, &model, test, test_indices, &device)?;
            println!(
                "retrain: generated-{kind}: the original classifier is right on {:.1}% of the {} images; after, test accuracy {:.2}%",
                100.0 * base.accuracy(),
                added.len(),
                100.0 * eval.accuracy()
            );
            let dir = Path::new("retrain").join(format!("generated-{kind}"));
            let mut written = super::retrain::save_retrained(out, &dir, &model, &eval, epochs)?;
            let per_class: BTreeMap<u16, f64> = (0..train.num_classes() as u16)
                .filter_map(|c| {
                    let rows: Vec<bool> =
                        base.labels.iter().zip(&base.correct).filter(|(l, _)| **l == c).map(|(_, &r)| r).collect();
                    (!rows.is_empty())
                        .then(|| (c, rows.iter().filter(|&&r| r).count() as f64 / rows.len() as f64))
                })
                .collect();
            let accuracy = crate::artifacts::GeneratedAccuracy {
                format_version: crate::artifacts::Version,
                images: added.len(),
                accuracy: base.accuracy(),
                per_class,
                held_out: held_out.len(),
                held_out_before,
                held_out_after,
            };
            let rel = dir.join("generated_accuracy.json").to_string_lossy().into_owned();
            fd_data::write_atomic(&out.join(&rel), &serde_json::to_vec_pretty(&accuracy)?)?;
            written.push(rel);
            Ok(written)
        })?;
    }
    Ok(())
}
