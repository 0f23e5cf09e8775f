//! The report stage: `summary.json` and `report.html` from the finished stages' artifacts.

use anyhow::Result;
use fd_data::SplitPart;
use serde_json::json;

use crate::artifacts::RetrainKey;
use crate::artifacts::{CaptionsFile, EvaluateSummary, FitSummary, Selections};
use crate::report::{ReportInputs, Retrained, Setting, StageTime, Summary};
use crate::run::Run;

/// The stages the report reads, and the retrainings that finished: the discover and describe stages when they ran (`--skip describe`
/// leaves its names out), and each retraining that ran (`--skip retrain` leaves them out); the last-layer retrainings on
/// generated images are the stages `retrain-generated-<kind>` among them.
fn finished_stages(run: &Run) -> Result<(Vec<String>, Vec<RetrainKey>)> {
    let mut stages: Vec<String> = ["evaluate", "embed", "fit", "caption"].map(String::from).to_vec();
    for optional in ["discover", "describe"] {
        if run.engine.finished(optional).is_ok() {
            stages.push(optional.into());
        }
    }
    let mut retrains = Vec::new();
    if let Some(intervene) = &run.experiment.intervene {
        stages.push("select".into());
        for key in RetrainKey::all(intervene, &run.read::<Selections>()?) {
            let stage = format!("retrain-{}", key.name());
            if run.engine.finished(&stage).is_ok() {
                stages.push(stage);
                retrains.push(key);
            }
        }
    }
    for kind in super::retrain_generated::KINDS {
        let stage = format!("retrain-generated-{kind}");
        if run.engine.finished(&stage).is_ok() {
            stages.push(stage);
        }
    }
    Ok((stages, retrains))
}

/// The finished last-layer retrainings on generated images.
fn generated(run: &Run, stages: &[String]) -> Result<Vec<crate::report::GeneratedRetrained>> {
    let mut out = Vec::new();
    for kind in
        super::retrain_generated::KINDS.into_iter().filter(|k| stages.contains(&format!("retrain-generated-{k}")))
    {
        let eval = run.read_eval(&format!("retrain/generated-{kind}/eval_test.safetensors"))?;
        let path = run.dir.join(format!("retrain/generated-{kind}/generated_accuracy.json"));
        let accuracy: crate::artifacts::GeneratedAccuracy = serde_json::from_slice(&std::fs::read(&path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}; run `fd-cli retrain` to remake it", path.display()))?;
        out.push(crate::report::GeneratedRetrained {
            figures: crate::report::GeneratedFigures {
                kind: kind.to_string(),
                on_images: Some(accuracy.accuracy),
                held_out_before: accuracy.held_out_before,
                held_out_after: accuracy.held_out_after,
            },
            indices: eval.indices,
            correct: eval.correct,
        });
    }
    Ok(out)
}

/// Writes the report.
pub(super) fn report(run: &Run) -> Result<()> {
    let (stages, retrains) = finished_stages(run)?;
    let described = stages.iter().any(|s| s == "describe");
    let discovered = stages.iter().any(|s| s == "discover");
    let names: Vec<&str> = stages.iter().map(String::as_str).collect();
    let inputs = run.engine.inputs(&names, |n| !n.ends_with("model.safetensors"))?;
    let times = names
        .iter()
        .map(|s| Ok(StageTime { stage: s.to_string(), seconds: run.engine.finished(s)?.seconds }))
        .collect::<Result<Vec<_>>>()?;
    let experiment = &run.experiment;
    let config = json!({"caption": experiment.caption, "intervene": experiment.intervene, "generate": experiment.generate,
        "data": run.data_key()?});
    run.engine.run("report", config, inputs, |out| {
        let (classifier, fit, captions): (EvaluateSummary, FitSummary, CaptionsFile) =
            (run.read()?, run.read()?, run.read()?);
        let names: Option<crate::artifacts::NamesFile> = if described { Some(run.read()?) } else { None };
        let modes: Option<crate::artifacts::ModesFile> = if discovered { Some(run.read()?) } else { None };
        let test = run.scored(SplitPart::Test)?;
        let decisions = run.directions()?.decision_values(&test.rows, &test.labels)?;
        let prepared = run.prepared()?;
        let planted: Option<Vec<bool>> =
            prepared.groups.as_ref().map(|g| test.indices.iter().map(|&i| g.is_planted(g.test[i])).collect());
        let retrained = retrains
            .iter()
            .map(|&key| {
                let eval = run.read_eval(&format!("retrain/{}/eval_test.safetensors", key.name()))?;
                Ok(Retrained { key, indices: eval.indices, correct: eval.correct })
            })
            .collect::<Result<_>>()?;
        let spelled = |v: serde_json::Result<serde_json::Value>| {
            v.ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "?".into())
        };
        let inputs = ReportInputs {
            name: run.dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned()),
            setting: Setting::of(&experiment.data),
            architecture: match (&experiment.classifier, &experiment.model) {
                (Some(c), _) => {
                    c.onnx.as_ref().map_or("the user's predictions".into(), |p| format!("ONNX {}", p.display()))
                }
                (None, Some(m)) => spelled(serde_json::to_value(m.architecture)),
                (None, None) => "?".into(),
            },
            embedder: match (&experiment.embeddings, &experiment.embed) {
                (Some(e), _) => format!("imported {}", e.images.display()),
                (None, Some(e)) => spelled(serde_json::to_value(e.embedder)),
                (None, None) => "?".into(),
            },
            classifier: &classifier,
            fit: &fit,
            captions: &captions,
            names: names.as_ref(),
            modes: modes.as_ref(),
            caption_k: run.caption_config().k,
            test: &test,
            decisions: &decisions,
            planted: planted.as_deref(),
            num_classes: prepared.train.num_classes(),
            class_names: prepared.train.class_names(),
            test_images: &prepared.test,
            retrained,
            generated: generated(run, &stages)?,
            stages: times.clone(),
        };
        let summary = crate::report::summary(&inputs);
        let written = Run::write::<Summary>(out, &summary)?;
        fd_data::write_atomic(&out.join("report.html"), crate::report::html(&inputs, &summary).as_bytes())?;
        print!("{}", crate::report::table(&summary));
        Ok(vec![written, "report.html".into()])
    })?;
    Ok(())
}
