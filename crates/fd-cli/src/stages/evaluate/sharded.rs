//! The evaluate stage as shards of a job ([`crate::stages::shard`]): each shard's evaluation of its slice of every part in
//! `shards/evaluate-I-of-N/eval_<part>.safetensors`; the merge appends them in order. An ONNX classifier's shards keep its
//! raw outputs, and the merge decides once, over every image as the whole stage does, whether they are probabilities.

use anyhow::{Result, bail};
use fd_data::SplitPart;
use fd_data::shard::Shard;
use fd_model::Evaluation;
use fd_model::external::{ClassifierConfig, are_probabilities, empty_evaluation, push_scores};

use crate::artifacts::eval_file;
use crate::run::Run;
use crate::stages::shard::Sharded;

/// Evaluates shard `shard` with the classifier the train stage trained.
pub(super) fn shard_trained(run: &Run, sharded: &Sharded, shard: Shard) -> Result<()> {
    let device = run.device()?;
    let model = run.load_model("model.safetensors", &device)?;
    sharded.run_shard(run, shard, |out, dir, slices| {
        slices
            .iter()
            .map(|s| {
                let eval = super::evaluate_trained(run, &model, s.set, s.indices, &device)?;
                Run::write_eval(out, &format!("{dir}/{}", eval_file(s.part)), &eval)
            })
            .collect()
    })
}

/// Evaluates shard `shard` with the user's ONNX classifier: its raw outputs, as logits until the merge decides.
pub(super) fn shard_onnx(run: &Run, sharded: &Sharded, shard: Shard, classifier: &ClassifierConfig) -> Result<()> {
    let Some(path) = &classifier.onnx else {
        bail!("[classifier] predictions are read whole: there is nothing to shard (only an ONNX classifier shards)");
    };
    let model = fd_model::load::load_onnx_classifier(path, classifier)?;
    let names = run.prepared()?.train.class_names().to_vec();
    sharded.run_shard(run, shard, |out, dir, slices| {
        slices
            .iter()
            .map(|s| {
                let scores = super::onnx_scores(&model, path, s.set, s.indices, &names)?;
                let mut eval = empty_evaluation(names.len(), s.indices.len());
                let labels: Vec<u16> = s.indices.iter().map(|&i| s.set.labels()[i]).collect();
                push_scores(&mut eval, s.indices, &labels, &scores, false);
                Run::write_eval(out, &format!("{dir}/{}", eval_file(s.part)), &eval)
            })
            .collect()
    })
}

/// Merges the finished shards into the evaluate stage's artifacts; `onnx` when they hold an ONNX classifier's raw outputs.
pub(super) fn merge(run: &Run, sharded: Sharded, onnx: bool) -> Result<()> {
    let finished = sharded.finished(run)?;
    let mut merged: Vec<Option<Evaluation>> = vec![None; SplitPart::ALL.len()];
    for &shard in &finished.shards {
        let (slices, _) = sharded.slices(run, shard)?;
        for (slot, slice) in merged.iter_mut().zip(&slices) {
            let rel = format!("{}/{}", sharded.dir(shard), eval_file(slice.part));
            let eval = run.read_eval(&rel)?;
            if eval.indices != slice.indices {
                bail!(
                    "{}: evaluates {} images, not the {} {} images of shard {shard}; {}",
                    run.engine.dir().join(&rel).display(),
                    eval.indices.len(),
                    slice.indices.len(),
                    slice.part,
                    sharded.redo(run, shard)
                );
            }
            match slot {
                Some(all) => all.append(eval),
                None => *slot = Some(eval),
            }
        }
    }
    let mut merged: Vec<Evaluation> = merged.into_iter().map(|e| e.expect("every shard has every part")).collect();
    if onnx && merged.iter().all(|e| are_probabilities(&e.logits, e.num_classes)) {
        for e in &mut merged {
            let mut rescored = empty_evaluation(e.num_classes, e.indices.len());
            push_scores(&mut rescored, &e.indices, &e.labels, &e.logits, true);
            *e = rescored;
        }
    }
    let (shards, count) = (finished.shards.len(), finished.count);
    let Sharded { config, inputs, .. } = sharded;
    let mut parts = merged.into_iter();
    run.engine.run("evaluate", config, inputs, |out| {
        println!("evaluate: merged {shards} shards of {count}");
        super::write_parts(out, |_| Ok(parts.next().expect("one evaluation a part")))
    })?;
    Ok(())
}
