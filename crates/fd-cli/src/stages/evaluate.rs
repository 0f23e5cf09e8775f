//! The evaluate stage: the classifier on every part, `eval_<part>.safetensors` and `evaluate.json`.

use anyhow::Result;
use fd_data::SplitPart;
use serde_json::json;

use crate::artifacts::eval_file;
use crate::artifacts::{EvaluateSummary, PartAccuracy, Version};
use crate::progress::Bars;
use crate::run::Run;

/// Evaluates the trained classifier.
pub(super) fn evaluate(run: &Run) -> Result<()> {
    let inputs = run.engine.inputs(&["train"], |_| true)?;
    let (model_config, _) = run.model_sections()?;
    let config = json!({"data": run.experiment.data, "model": model_config});
    run.engine.run("evaluate", config, inputs, |out| {
        let prepared = run.prepared()?;
        let device = run.device()?;
        let model = run.load_model("model.safetensors", &device)?;
        let mut written = Vec::new();
        let mut parts = Vec::new();
        for part in SplitPart::ALL {
            let (set, indices) = prepared.images(part);
            let eval = fd_model::evaluate(&model, model_config, set, indices, 512, &device, &Bars::default());
            written.push(Run::write_eval(out, &eval_file(part), &eval)?);
            println!("evaluate: {part:<6} accuracy {:.2}% ({} images)", 100.0 * eval.accuracy(), indices.len());
            parts.push(PartAccuracy { part, images: indices.len(), accuracy: eval.accuracy() });
        }
        written.push(Run::write(out, &EvaluateSummary { format_version: Version, parts })?);
        Ok(written)
    })?;
    Ok(())
}
