//! The caption stage's work: name each class's direction with the latent space's vocabulary, check the names on test, and keep the
//! hard and easy caption subpopulations (their dataset indices) for the report and the intervention figures.

#![allow(clippy::print_stdout)]

use anyhow::Result;
use serde_json::{Value, json};

use crate::config::CaptionConfig;
use crate::pipeline::Part;

/// The subpopulation sizes of the accuracy-against-K curves.
pub const CURVE_K: [usize; 8] = [5, 10, 20, 50, 100, 200, 300, 500];

/// One JSON object per class: negative and positive captions with their held-out checks, the accuracy of the K nearest test images
/// against K for the top negative and positive captions, and the dataset indices of the `config.k` nearest to each.
pub fn caption_classes(
    directions: &fd_svm::Directions,
    test: &Part,
    embedder: &fd_clip::Embedder,
    class_names: &[String],
    config: &CaptionConfig,
) -> Result<Vec<Value>> {
    let vocabulary = embedder.vocabulary();
    let texts = embedder.embed_texts(&vocabulary)?;
    let dim = embedder.dim();
    let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
    let hyponyms = fd_clip::imagenet::cifar10_hyponyms(&names);
    let all: Vec<usize> = (0..vocabulary.len()).collect();
    let mut out = Vec::new();
    for (class, name) in class_names.iter().enumerate() {
        let Some(svm) = directions.class(class as u16) else {
            out.push(json!({"class": class, "name": name, "skipped": "no SVM for this class (see fit.json)"}));
            continue;
        };
        // The reference caption: the mean vector of the class's own names in the vocabulary, else of the whole vocabulary.
        let (reference_rows, reference) = if hyponyms[class].is_empty() {
            (&all, "the mean of the vocabulary")
        } else {
            (&hyponyms[class], "the mean of the class's ImageNet hyponyms")
        };
        let reference_vector = fd_caption::score::mean_of_rows(&texts, dim, reference_rows);
        let scorer = fd_caption::score::ClassScorer {
            mean: &directions.preprocessing.mean,
            std: &directions.preprocessing.std,
            normalize: directions.preprocessing.normalize,
            w: &svm.svm.w,
            b: svm.svm.b,
        };
        let scores = fd_caption::score::score_captions(&texts, &reference_vector, &scorer);
        let (negative, positive) = fd_caption::score::top_captions(&scores, config.top);
        let members: Vec<usize> = (0..test.labels.len()).filter(|&i| test.labels[i] == class as u16).collect();
        let rows: Vec<f32> = members.iter().flat_map(|&i| test.rows[i * dim..(i + 1) * dim].iter().copied()).collect();
        let correct: Vec<bool> = members.iter().map(|&i| test.correct[i]).collect();
        let text = |t: usize| &texts[t * dim..(t + 1) * dim];
        let checked = |t: usize| {
            let nearest = fd_caption::subpopulation::nearest_images(text(t), &rows, config.k);
            let check = fd_caption::check::check_caption(&correct, &nearest, config.alpha);
            json!({"caption": vocabulary[t], "score": scores[t], "check": check})
        };
        let curve = |t: usize| -> Vec<Value> {
            let order = fd_caption::subpopulation::nearest_images(text(t), &rows, members.len());
            CURVE_K
                .iter()
                .filter(|&&k| k <= members.len())
                .map(|&k| {
                    let hits = order[..k].iter().filter(|&&i| correct[i]).count();
                    json!({"k": k, "accuracy": hits as f64 / k as f64})
                })
                .collect()
        };
        let subpopulation = |t: usize| -> Vec<usize> {
            fd_caption::subpopulation::nearest_images(text(t), &rows, config.k)
                .iter()
                .map(|&i| test.indices[members[i]])
                .collect()
        };
        let negatives: Vec<Value> = negative.iter().map(|&t| checked(t)).collect();
        let positives: Vec<Value> = positive.iter().map(|&t| checked(t)).collect();
        let first = &negatives[0]["check"];
        println!(
            "caption: {name:<12} hard: {:<24} ({} nearest test images {:.2} vs class {:.2}, p = {:.3}{})  easy: {}",
            vocabulary[negative[0]],
            config.k,
            first["accuracy"].as_f64().unwrap_or(f64::NAN),
            first["class_accuracy"].as_f64().unwrap_or(f64::NAN),
            first["p_value"].as_f64().unwrap_or(f64::NAN),
            if first["supported"].as_bool() == Some(true) { "" } else { ", unsupported" },
            vocabulary[positive[0]],
        );
        out.push(json!({
            "class": class,
            "name": name,
            "reference": reference,
            "vocabulary_size": vocabulary.len(),
            "class_accuracy": correct.iter().filter(|&&c| c).count() as f64 / correct.len().max(1) as f64,
            "negative": negatives,
            "positive": positives,
            "hard_curve": curve(negative[0]),
            "easy_curve": curve(positive[0]),
            "hard_subpopulation": subpopulation(negative[0]),
            "easy_subpopulation": subpopulation(positive[0]),
        }));
    }
    Ok(out)
}
