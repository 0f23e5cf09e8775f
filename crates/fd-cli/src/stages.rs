//! Pipeline stages over a run directory: `fit` (the per-class SVMs on the validation split) and `caption` (name each direction, check each name on test).
//!
//! A run directory holds what `fd-cli train --out DIR` and `fd-cli embed --out DIR` wrote: `eval_<split>.safetensors` and `embeddings_<split>.safetensors`.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One tensor of a safetensors file, widened to f64 for uniform handling, with its shape.
fn tensor(path: &Path, name: &str) -> Result<(Vec<f64>, Vec<usize>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let t = st.tensor(name).with_context(|| format!("{}: no tensor {name:?}", path.display()))?;
    let values = match t.dtype() {
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()
        }
        safetensors::Dtype::I64 => {
            t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64).collect()
        }
        safetensors::Dtype::U8 => t.data().iter().map(|&b| f64::from(b)).collect(),
        other => bail!("{}: tensor {name:?} has unsupported dtype {other:?}", path.display()),
    };
    Ok((values, t.shape().to_vec()))
}

/// A split's embeddings, aligned with the classifier's evaluation of the same images.
struct Part {
    rows: Vec<f32>,
    dim: usize,
    labels: Vec<u16>,
    correct: Vec<bool>,
}

fn load_part(run: &Path, part: &str) -> Result<Part> {
    let emb = run.join(format!("embeddings_{part}.safetensors"));
    let eval = run.join(format!("eval_{part}.safetensors"));
    if !emb.is_file() || !eval.is_file() {
        bail!(
            "{} needs {} (from `fd-cli embed --out`) and {} (from `fd-cli train --out`)",
            run.display(),
            emb.display(),
            eval.display()
        );
    }
    let (rows, shape) = tensor(&emb, "embeddings")?;
    let (emb_idx, _) = tensor(&emb, "indices")?;
    let (eval_idx, _) = tensor(&eval, "indices")?;
    if emb_idx.len() > eval_idx.len() || emb_idx[..] != eval_idx[..emb_idx.len()] {
        bail!("{} and {} do not list the same images in the same order", emb.display(), eval.display());
    }
    let n = emb_idx.len();
    let labels = tensor(&eval, "labels")?.0[..n].iter().map(|&v| v as u16).collect();
    let correct = tensor(&eval, "correct")?.0[..n].iter().map(|&v| v != 0.0).collect();
    Ok(Part { rows: rows.iter().map(|&v| v as f32).collect(), dim: shape[1], labels, correct })
}

/// Fits the per-class SVMs on val (preprocessing statistics from train), scores test, and writes `directions.json`, `directions.safetensors` and `fit_summary.json`.
pub fn fit(run: &Path, num_classes: usize) -> Result<fd_svm::Directions> {
    let (train, val, test) = (load_part(run, "train")?, load_part(run, "val")?, load_part(run, "test")?);
    let input = fd_svm::FitInput {
        train: &train.rows,
        rows: &val.rows,
        dim: val.dim,
        labels: &val.labels,
        correct: &val.correct,
        num_classes,
    };
    let start = std::time::Instant::now();
    let directions = fd_svm::fit_directions(&input, &fd_svm::SvmConfig::paper(), 2)?;
    let seconds = start.elapsed().as_secs_f64();
    let decisions = directions.decision_values(&test.rows, &test.labels)?;
    let predicted = fd_svm::predicted_correct(&decisions);
    let mut per_class = Vec::new();
    println!("{:<6} {:>6} {:>10} {:>10} {:>14}", "class", "C", "CV bal", "test bal", "test acc (clf)");
    for class in 0..num_classes as u16 {
        let rows: Vec<usize> = (0..test.labels.len()).filter(|&i| test.labels[i] == class).collect();
        let p: Vec<bool> = rows.iter().map(|&i| predicted[i]).collect();
        let t: Vec<bool> = rows.iter().map(|&i| test.correct[i]).collect();
        let test_bal = fd_svm::metrics::balanced_accuracy(&p, &t);
        let clf_acc = t.iter().filter(|&&c| c).count() as f64 / t.len().max(1) as f64;
        match directions.class(class) {
            Some(c) => println!("{class:<6} {:>6.0e} {:>10.4} {:>10.4} {:>14.4}", c.c, c.cv_score, test_bal, clf_acc),
            None => println!("{class:<6} skipped"),
        }
        per_class.push(serde_json::json!({
            "class": class,
            "c": directions.class(class).map(|c| c.c),
            "cv_balanced_accuracy": directions.class(class).map(|c| c.cv_score),
            "test_balanced_accuracy": test_bal,
            "classifier_test_accuracy": clf_acc,
        }));
    }
    let fitted: Vec<f64> = (0..num_classes as u16).filter_map(|c| directions.class(c).map(|s| s.cv_score)).collect();
    let mean_cv = fitted.iter().sum::<f64>() / fitted.len().max(1) as f64;
    let overall = fd_svm::metrics::balanced_accuracy(&predicted, &test.correct);
    let confusion = fd_svm::metrics::confusion(&predicted, &test.correct);
    println!(
        "mean CV balanced accuracy (val) {mean_cv:.4}; SVM balanced accuracy on test {overall:.4}; fitted in {seconds:.2} s"
    );
    let summary = serde_json::json!({
        "mean_cv_balanced_accuracy": mean_cv,
        "test_balanced_accuracy": overall,
        "test_confusion": confusion,
        "fit_seconds": seconds,
        "classes": per_class,
    });
    fd_data::write_atomic(&run.join("directions.json"), &serde_json::to_vec(&directions)?)?;
    fd_data::write_atomic(&run.join("directions.safetensors"), &directions.to_safetensors())?;
    fd_data::write_atomic(&run.join("fit_summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    Ok(directions)
}

/// Names each class's direction with ImageNet class names (the offline space's closed vocabulary) and checks the hardest names on test.
pub fn caption(run: &Path, embedder: &fd_clip::Embedder, class_names: &[String], k: usize) -> Result<()> {
    let directions: fd_svm::Directions = serde_json::from_slice(
        &std::fs::read(run.join("directions.json")).context("reading directions.json (run `fd-cli fit` first)")?,
    )?;
    let test = load_part(run, "test")?;
    let vocabulary = fd_clip::imagenet::imagenet_classes();
    let names: Vec<&str> = vocabulary.iter().map(|c| c.name).collect();
    let texts = embedder.embed_texts(&names)?;
    let dim = embedder.dim();
    let cifar: Vec<&str> = class_names.iter().map(String::as_str).collect();
    let hyponyms = fd_clip::imagenet::cifar10_hyponyms(&cifar);
    let mut out = Vec::new();
    for (class, name) in class_names.iter().enumerate() {
        let Some(svm) = directions.class(class as u16) else { continue };
        if hyponyms[class].is_empty() {
            continue;
        }
        let reference = fd_caption::score::mean_of_rows(&texts, dim, &hyponyms[class]);
        let scorer = fd_caption::score::ClassScorer {
            mean: &directions.preprocessing.mean,
            std: &directions.preprocessing.std,
            normalize: directions.preprocessing.normalize,
            w: &svm.svm.w,
            b: svm.svm.b,
        };
        let scores = fd_caption::score::score_captions(&texts, &reference, &scorer);
        let (negative, positive) = fd_caption::score::top_captions(&scores, 5);
        let members: Vec<usize> = (0..test.labels.len()).filter(|&i| test.labels[i] == class as u16).collect();
        let rows: Vec<f32> = members.iter().flat_map(|&i| test.rows[i * dim..(i + 1) * dim].iter().copied()).collect();
        let correct: Vec<bool> = members.iter().map(|&i| test.correct[i]).collect();
        let checks: Vec<serde_json::Value> = negative
            .iter()
            .map(|&t| {
                let nearest = fd_caption::subpopulation::nearest_images(&texts[t * dim..(t + 1) * dim], &rows, k);
                let check = fd_caption::check::check_caption(&correct, &nearest, 0.05);
                serde_json::json!({"caption": names[t], "score": scores[t], "check": check})
            })
            .collect();
        let first = &checks[0];
        println!(
            "{name:<10} hard: {:<22} (accuracy on its {k} nearest test images {:.2} vs class {:.2}, p = {:.3}{})  easy: {}",
            names[negative[0]],
            first["check"]["accuracy"].as_f64().unwrap_or(f64::NAN),
            first["check"]["class_accuracy"].as_f64().unwrap_or(f64::NAN),
            first["check"]["p_value"].as_f64().unwrap_or(f64::NAN),
            if first["check"]["supported"].as_bool() == Some(true) { "" } else { ", unsupported" },
            names[positive[0]],
        );
        out.push(serde_json::json!({
            "class": name,
            "negative": checks,
            "positive": positive.iter().map(|&t| serde_json::json!({"caption": names[t], "score": scores[t]})).collect::<Vec<_>>(),
        }));
    }
    fd_data::write_atomic(&run.join("captions.json"), &serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}
