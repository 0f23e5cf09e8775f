//! The fit stage: the per-class SVMs on val (preprocessing statistics from train), scored on test: `directions.json`,
//! `directions.safetensors`, `fit.json`.

use std::time::Instant;

use anyhow::{Result, bail};
use fd_data::SplitPart;
use serde_json::json;

use crate::artifacts::{ClassFit, FitSummary, Scored, Version};
use crate::run::Run;

/// Fits the directions.
pub(super) fn fit(run: &Run) -> Result<()> {
    let svm = run.experiment.svm.clone().unwrap_or_else(fd_svm::SvmConfig::paper);
    let wanted = |n: &str| ["train", "val", "test"].iter().any(|p| n.ends_with(&format!("_{p}.safetensors")));
    let inputs = run.engine.inputs(&["evaluate", "embed"], wanted)?;
    let classes = run.num_classes()?;
    run.engine.run("fit", json!({"svm": svm}), inputs, |out| {
        let (train, val, test) =
            (run.scored(SplitPart::Train)?, run.scored(SplitPart::Val)?, run.scored(SplitPart::Test)?);
        if train.dim != val.dim || test.dim != val.dim {
            bail!(
                "the embeddings of train, val and test have {}, {} and {} dimensions; run `fd-cli embed` to remake them",
                train.dim,
                val.dim,
                test.dim
            );
        }
        let input = fd_svm::FitInput {
            train: &train.rows,
            rows: &val.rows,
            dim: val.dim,
            labels: &val.labels,
            correct: &val.correct,
            num_classes: classes,
        };
        let start = Instant::now();
        let directions = fd_svm::fit_directions(&input, &svm, 2)?;
        let summary = fit_summary(&directions, &test, classes, start.elapsed().as_secs_f64())?;
        print_fit(&summary, run.prepared()?.train.class_names());
        let mut written = Run::write_directions(out, &directions)?;
        written.push(Run::write(out, &summary)?);
        Ok(written)
    })?;
    Ok(())
}

/// The SVMs' quality: per class the chosen C, its CV score and the balanced accuracy on test; overall figures on test.
pub(crate) fn fit_summary(
    directions: &fd_svm::Directions,
    test: &Scored,
    classes: usize,
    seconds: f64,
) -> Result<FitSummary> {
    let decisions = directions.decision_values(&test.rows, &test.labels)?;
    let predicted = fd_svm::predicted_correct(&decisions);
    let per_class = (0..classes as u16)
        .map(|class| {
            let rows = test.class_rows(class);
            let p: Vec<bool> = rows.iter().map(|&i| predicted[i]).collect();
            let t: Vec<bool> = rows.iter().map(|&i| test.correct[i]).collect();
            let fitted = directions.class(class);
            let skipped = directions.classes.iter().find_map(|c| match c {
                fd_svm::ClassOutcome::Skipped { class: k, reason } if *k == class => Some(reason.clone()),
                _ => None,
            });
            ClassFit {
                class,
                c: fitted.map(|c| c.c),
                cv_balanced_accuracy: fitted.map(|c| c.cv_score),
                test_balanced_accuracy: fd_svm::metrics::balanced_accuracy(&p, &t),
                classifier_test_accuracy: t.iter().filter(|&&c| c).count() as f64 / t.len().max(1) as f64,
                skipped,
            }
        })
        .collect();
    let fitted: Vec<f64> = (0..classes as u16).filter_map(|c| directions.class(c).map(|s| s.cv_score)).collect();
    Ok(FitSummary {
        format_version: Version,
        mean_cv_balanced_accuracy: fitted.iter().sum::<f64>() / fitted.len().max(1) as f64,
        test_balanced_accuracy: fd_svm::metrics::balanced_accuracy(&predicted, &test.correct),
        test_accuracy: fd_svm::metrics::accuracy(&predicted, &test.correct),
        test_confusion: fd_svm::metrics::confusion(&predicted, &test.correct),
        fit_seconds: seconds,
        classes: per_class,
    })
}

fn print_fit(s: &FitSummary, names: &[String]) {
    let w = names.iter().map(|n| n.len() + 4).max().unwrap_or(6).max(6);
    println!("fit: {:<w$} {:>6} {:>10} {:>10} {:>14}", "class", "C", "CV bal", "test bal", "test acc (clf)");
    for c in &s.classes {
        let class = format!("{} {}", c.class, names.get(usize::from(c.class)).map_or("", String::as_str));
        match (c.c, c.cv_balanced_accuracy) {
            (Some(chosen), Some(cv)) => println!(
                "fit: {class:<w$} {chosen:>6.0e} {cv:>10.4} {:>10.4} {:>14.4}",
                c.test_balanced_accuracy, c.classifier_test_accuracy
            ),
            _ => println!("fit: {class:<w$} skipped"),
        }
    }
    println!(
        "fit: mean CV balanced accuracy (val) {:.4}; SVM balanced accuracy on test {:.4}; fitted in {:.2} s",
        s.mean_cv_balanced_accuracy, s.test_balanced_accuracy, s.fit_seconds
    );
}
