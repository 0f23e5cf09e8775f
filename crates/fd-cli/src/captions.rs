//! The caption stage's work: name each class's direction with the latent space's vocabulary, check the names on test, and keep the
//! hard and easy caption subpopulations (their dataset indices) for the report and the intervention figures.

#![allow(clippy::print_stdout)]

use std::rc::Rc;

use anyhow::{Context, Result};
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
    let dim = embedder.dim();
    let candidates = candidates(embedder, class_names, config)?;
    let mut out = Vec::new();
    for (class, name) in class_names.iter().enumerate() {
        let Some(svm) = directions.class(class as u16) else {
            out.push(json!({"class": class, "name": name, "skipped": "no SVM for this class (see fit.json)"}));
            continue;
        };
        let ClassCandidates { captions: vocabulary, texts, reference_vector, reference } = &candidates[class];
        let scorer = fd_caption::score::ClassScorer {
            mean: &directions.preprocessing.mean,
            std: &directions.preprocessing.std,
            normalize: directions.preprocessing.normalize,
            w: &svm.svm.w,
            b: svm.svm.b,
        };
        let scores = fd_caption::score::score_captions(texts, reference_vector, &scorer);
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

/// One class's candidate captions, their embeddings, and the reference the scores are taken against.
/// A closed vocabulary's captions and embeddings are shared by every class, hence the `Rc`s.
struct ClassCandidates {
    captions: Rc<Vec<String>>,
    texts: Rc<Vec<f32>>,
    reference_vector: Vec<f32>,
    reference: String,
}

/// The candidates of every class. A closed space (EfficientNet) offers its ImageNet class names to every class, against the mean
/// vector of the class's own hyponyms (or of the whole vocabulary). An open space (CLIP) offers the caption set the config names
/// (method spec §2.1; `cifar10-simple` by default), against the reference caption "a photo of a <label>" (§2.2).
fn candidates(
    embedder: &fd_clip::Embedder,
    class_names: &[String],
    config: &CaptionConfig,
) -> Result<Vec<ClassCandidates>> {
    let dim = embedder.dim();
    if let Some(vocabulary) = embedder.vocabulary() {
        let texts = Rc::new(embedder.embed_texts(&vocabulary)?);
        let captions = Rc::new(vocabulary.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
        let hyponyms = fd_clip::imagenet::cifar10_hyponyms(&names);
        let all: Vec<usize> = (0..vocabulary.len()).collect();
        return Ok(hyponyms
            .iter()
            .map(|h| {
                let (rows, reference) = if h.is_empty() {
                    (&all, "the mean of the vocabulary")
                } else {
                    (h, "the mean of the class's ImageNet hyponyms")
                };
                ClassCandidates {
                    captions: Rc::clone(&captions),
                    texts: Rc::clone(&texts),
                    reference_vector: fd_caption::score::mean_of_rows(&texts, dim, rows),
                    reference: reference.into(),
                }
            })
            .collect());
    }
    let name = config.vocabulary.as_deref().unwrap_or("cifar10-simple");
    let set = if name.ends_with(".json") {
        let text = std::fs::read_to_string(name).with_context(|| format!("reading caption.vocabulary {name}"))?;
        serde_json::from_str::<fd_caption::vocabulary::Vocabulary>(&text).with_context(|| {
            format!("parsing caption.vocabulary {name} (expected fd-caption's format: labels and classes)")
        })?
    } else {
        let Some(set) = fd_caption::vocabulary::vocabulary(name) else {
            anyhow::bail!(
                "caption.vocabulary = {name:?} is neither a .json file nor a built-in set (one of {})",
                fd_caption::vocabulary::vocabulary_names().join(", ")
            );
        };
        set
    };
    if set.classes.len() != class_names.len() {
        anyhow::bail!(
            "caption.vocabulary {name:?} has {} classes but the dataset has {}; name a set made for this dataset",
            set.classes.len(),
            class_names.len()
        );
    }
    let grammar = fd_caption::vocabulary::Grammar::Paper;
    set.classes
        .iter()
        .zip(&set.labels)
        .map(|(class, label)| {
            let captions = fd_caption::vocabulary::class_captions(class, grammar);
            let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
            let reference = fd_caption::vocabulary::reference_caption(label, grammar);
            Ok(ClassCandidates {
                texts: Rc::new(embedder.embed_texts(&refs)?),
                reference_vector: embedder.embed_texts(&[reference.as_str()])?,
                captions: Rc::new(captions),
                reference,
            })
        })
        .collect()
}
