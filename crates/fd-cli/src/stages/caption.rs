//! The caption stage: each class's direction named with the latent space's vocabulary and checked on test, `captions.json`.
//! The per-class work is fd-caption's; scores come from fd-svm's own preprocessing and decision; this module gathers the candidates.

use std::rc::Rc;

use anyhow::{Context, Result, bail};
use fd_caption::class::{CaptionConfig, ClassInput, caption_class};
use fd_caption::vocabulary::{Grammar, Vocabulary};
use fd_data::SplitPart;
use serde_json::json;

use crate::artifacts::{CaptionOutcome, CaptionsFile, ClassCaptionsEntry, Scored, Version};
use crate::config::ImportedEmbeddings;
use crate::run::Run;

/// Captions every class.
pub(super) fn caption(run: &Run) -> Result<()> {
    let caption = run.caption_config();
    let wanted = |n: &str| n == "directions.json" || n == "modes.json" || n.ends_with("_test.safetensors");
    // The modes when the discover stage ran (`--skip discover` leaves them out): each mode is captioned too.
    let with_modes = run.engine.finished("discover").is_ok();
    let stages: &[&str] =
        if with_modes { &["fit", "evaluate", "embed", "discover"] } else { &["fit", "evaluate", "embed"] };
    let mut inputs = run.engine.inputs(stages, wanted)?;
    let imported = run.experiment.embeddings.as_ref();
    let key = if let Some(imported) = imported {
        for file in imported.captions.iter().chain(&imported.caption_texts) {
            let sha = run.engine.sha256(file).with_context(|| format!("reading [embeddings] {}", file.display()))?;
            inputs.insert(format!("captions {}", file.display()), sha);
        }
        json!({"embeddings": imported, "caption": caption, "data": run.data_key()?})
    } else {
        inputs.insert("embedder weights".into(), run.embed_weights_sha()?);
        // The data's key too: the captions and the report name the classes.
        json!({"embed": run.embed_keyed()?, "caption": caption, "data": run.data_key()?})
    };
    if let Some(path) = caption.vocabulary.as_deref().filter(|v| v.ends_with(".json")) {
        let sha =
            fd_data::sha256_file(std::path::Path::new(path)).with_context(|| format!("caption.vocabulary {path}"))?;
        inputs.insert(format!("vocabulary {path}"), sha);
    }
    run.engine.run("caption", key, inputs, |out| {
        let names = run.prepared()?.train.class_names().to_vec();
        let test = run.scored(SplitPart::Test)?;
        let (candidates, dim) = match imported {
            Some(imported) => match imported_candidates(imported, &names)? {
                Some(c) => c,
                None => {
                    let reason = "no caption embeddings ([embeddings] captions)".to_string();
                    let classes = (0..names.len())
                        .map(|k| ClassCaptionsEntry {
                            class: k as u16,
                            name: names[k].clone(),
                            outcome: CaptionOutcome::Skipped { reason: reason.clone() },
                            modes: Vec::new(),
                        })
                        .collect();
                    println!("caption: {reason}, nothing to caption");
                    return Ok(vec![Run::write(out, &CaptionsFile { format_version: Version, classes })?]);
                }
            },
            None => {
                let embedder = run.embedder()?;
                (candidates(&embedder, &names, &caption)?, embedder.dim())
            }
        };
        let directions = run.directions()?;
        let modes: Option<crate::artifacts::ModesFile> = if with_modes { Some(run.read()?) } else { None };
        if dim != test.dim || directions.preprocessing.dim() != test.dim {
            bail!(
                "the captions have {dim} dimensions, the test embeddings have {} and the directions {}; run `fd-cli reproduce` to remake them",
                test.dim,
                directions.preprocessing.dim()
            );
        }
        let classes = names
            .iter()
            .zip(candidates)
            .enumerate()
            .map(|(class, (name, candidates))| {
                let split = modes.as_ref().and_then(|m| m.classes.iter().find(|c| c.class == class as u16 && c.split));
                let mode_svms: Vec<&fd_svm::LinearSvm> =
                    split.map(|c| c.modes.iter().map(|m| &m.mode.svm).collect()).unwrap_or_default();
                caption_one(&directions, &test, (class as u16, name), candidates, &caption, &mode_svms)
            })
            .collect::<Result<_>>()?;
        Ok(vec![Run::write(out, &CaptionsFile { format_version: Version, classes })?])
    })?;
    Ok(())
}

/// The user's caption embeddings as every class's candidates, against the caption `a photo of a <class>.` where the captions
/// hold it, else the mean of all captions; `None` without caption embeddings.
fn imported_candidates(imported: &ImportedEmbeddings, names: &[String]) -> Result<Option<(Vec<Candidates>, usize)>> {
    let (Some(file), Some(texts_file)) = (&imported.captions, &imported.caption_texts) else { return Ok(None) };
    let (rows, dim, _) = super::embed::read_rows(file)?;
    let text = std::fs::read_to_string(texts_file).with_context(|| format!("reading {}", texts_file.display()))?;
    let captions: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if captions.len() != rows.len() {
        bail!(
            "{} lists {} captions, {} has {} rows; give one caption a line, in the rows' order",
            texts_file.display(),
            captions.len(),
            file.display(),
            rows.len()
        );
    }
    let texts = Rc::new(rows.concat());
    let captions = Rc::new(captions);
    let all: Vec<usize> = (0..captions.len()).collect();
    let candidates = names
        .iter()
        .map(|name| {
            let plain = |c: &str| c.trim_end_matches('.').to_lowercase();
            let wanted = [format!("a photo of a {name}"), format!("a photo of an {name}")].map(|c| plain(&c));
            let (reference_vector, reference) = match captions.iter().position(|c| wanted.contains(&plain(c))) {
                Some(r) => (rows[r].clone(), captions[r].clone()),
                None => (fd_caption::score::mean_of_rows(&texts, dim, &all), "the mean of the captions".into()),
            };
            Candidates { captions: Rc::clone(&captions), texts: Rc::clone(&texts), reference_vector, reference }
        })
        .collect();
    Ok(Some((candidates, dim)))
}

/// One class's entry: skipped without an SVM, else its captions scored by the class's SVM and checked on its test images, and
/// the same for each of its modes.
fn caption_one(
    directions: &fd_svm::Directions,
    test: &Scored,
    (class, name): (u16, &str),
    candidates: Candidates,
    config: &CaptionConfig,
    modes: &[&fd_svm::LinearSvm],
) -> Result<ClassCaptionsEntry> {
    let dim = test.dim;
    let deltas = fd_caption::score::caption_deltas(&candidates.texts, &candidates.reference_vector);
    let Some(scores) = directions.class_decisions(class, &deltas)? else {
        let reason = "no SVM for this class (see fit.json)".to_string();
        let outcome = CaptionOutcome::Skipped { reason };
        return Ok(ClassCaptionsEntry { class, name: name.into(), outcome, modes: Vec::new() });
    };
    let members = test.class_rows(class);
    let images: Vec<f32> = members.iter().flat_map(|&i| test.rows[i * dim..(i + 1) * dim].iter().copied()).collect();
    let correct: Vec<bool> = members.iter().map(|&i| test.correct[i]).collect();
    let ids: Vec<usize> = members.iter().map(|&i| test.indices[i]).collect();
    let with_scores = |scores: &[f64]| {
        let input = ClassInput {
            captions: &candidates.captions,
            texts: &candidates.texts,
            scores,
            images: &images,
            correct: &correct,
            ids: &ids,
            dim,
        };
        caption_class(&input, config)
    };
    let captions = with_scores(&scores);
    let hard = captions.hard();
    println!(
        "caption: {name:<12} hard: {:<24} ({} nearest test images {:.2} vs class {:.2}, p = {:.3}{})  easy: {}",
        hard.caption,
        config.k,
        hard.check.accuracy,
        hard.check.class_accuracy,
        hard.check.p_value,
        if hard.check.supported { "" } else { ", unsupported" },
        captions.easy().caption,
    );
    // A mode scores the captions as the class's SVM does: the same preprocessing, its own decision.
    let z = directions.preprocessing.apply(&deltas);
    let modes = modes
        .iter()
        .map(|svm| with_scores(&z.chunks_exact(dim).map(|r| svm.decision(r)).collect::<Vec<f64>>()))
        .collect();
    let outcome = CaptionOutcome::Captioned { reference: candidates.reference, captions };
    Ok(ClassCaptionsEntry { class, name: name.into(), outcome, modes })
}

/// One class's candidate captions, their embeddings, and the reference the scores are taken against.
/// A closed vocabulary's captions and embeddings are shared by every class, hence the `Rc`s.
struct Candidates {
    captions: Rc<Vec<String>>,
    texts: Rc<Vec<f32>>,
    reference_vector: Vec<f32>,
    reference: String,
}

/// The candidates of every class. A closed space (EfficientNet) offers its ImageNet class names to every class, against the mean
/// vector of the class's own hyponyms (or of the whole vocabulary). An open space (CLIP) offers the caption set the config names
/// (method spec §2.1; `cifar10-simple` by default), against the reference caption "a photo of a <label>" (§2.2).
fn candidates(embedder: &fd_clip::Embedder, class_names: &[String], config: &CaptionConfig) -> Result<Vec<Candidates>> {
    if let Some(vocabulary) = embedder.vocabulary() {
        let texts = Rc::new(embedder.embed_texts(&vocabulary)?);
        let captions = Rc::new(vocabulary.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
        let all: Vec<usize> = (0..vocabulary.len()).collect();
        let closed = |hyponyms: &Vec<usize>| {
            let (rows, reference) = if hyponyms.is_empty() {
                (&all, "the mean of the vocabulary")
            } else {
                (hyponyms, "the mean of the class's ImageNet hyponyms")
            };
            Candidates {
                captions: Rc::clone(&captions),
                texts: Rc::clone(&texts),
                reference_vector: fd_caption::score::mean_of_rows(&texts, embedder.dim(), rows),
                reference: reference.into(),
            }
        };
        return Ok(fd_clip::imagenet::cifar10_hyponyms(&names).iter().map(closed).collect());
    }
    let set = match config.vocabulary.as_deref() {
        Some(name) => vocabulary(name, class_names.len())?,
        // CIFAR-10's classes get the paper's simple captions; any other dataset the same template over its class names.
        None if class_names.iter().map(String::as_str).eq(fd_data::cifar10::CLASS_NAMES) => {
            vocabulary("cifar10-simple", class_names.len())?
        }
        None => fd_caption::vocabulary::simple(class_names),
    };
    let grammar = Grammar::Paper;
    set.classes
        .iter()
        .zip(&set.labels)
        .map(|(class, label)| {
            let captions = fd_caption::vocabulary::class_captions(class, grammar);
            let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
            let reference = fd_caption::vocabulary::reference_caption(label, grammar);
            Ok(Candidates {
                texts: Rc::new(embedder.embed_texts(&refs)?),
                reference_vector: embedder.embed_texts(&[reference.as_str()])?,
                captions: Rc::new(captions),
                reference,
            })
        })
        .collect()
}

/// The caption set `name` (a built-in set, or a `.json` file in fd-caption's format), checked against the dataset's classes.
fn vocabulary(name: &str, classes: usize) -> Result<Vocabulary> {
    let set = if name.ends_with(".json") {
        let text = std::fs::read_to_string(name).with_context(|| format!("reading caption.vocabulary {name}"))?;
        serde_json::from_str::<Vocabulary>(&text).with_context(|| {
            format!("parsing caption.vocabulary {name} (expected fd-caption's format: labels and classes)")
        })?
    } else {
        let Some(set) = fd_caption::vocabulary::vocabulary(name) else {
            bail!(
                "caption.vocabulary = {name:?} is neither a .json file nor a built-in set (one of {})",
                fd_caption::vocabulary::vocabulary_names().join(", ")
            );
        };
        set
    };
    if let Err(message) = set.check(classes) {
        bail!("caption.vocabulary {name}: {message}");
    }
    Ok(set)
}
