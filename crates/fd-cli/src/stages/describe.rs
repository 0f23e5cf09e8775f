//! The describe stage: each class's failure direction named by image attributes (fd-data's `attributes`: brightness, contrast,
//! colour, blur, noise, dominant hue, background colour, object share), found by contrast on the extra pool, checked on val
//! (where the direction was fit) and on test (fd-caption's `names`), `names.json`. It needs no text encoder, so it names failures in any latent space.

use anyhow::{Context, Result};
use fd_caption::names::{Candidate, NameConfig, rank_class};
use fd_data::attributes::{Attributes, BACKGROUNDS, HUES, Measure, attributes};
use fd_data::{Images, SplitPart};
use serde_json::json;

use crate::artifacts::{ClassNamesEntry, NamesFile, NamesOutcome, Scored, Version};
use crate::run::Run;

/// Test images shown for the first hard name.
const SHOWN: usize = 20;

/// Names every class.
pub(super) fn describe(run: &Run) -> Result<()> {
    let config = NameConfig::default();
    let wanted = |n: &str| {
        n == "directions.json" || ["val", "extra", "test"].iter().any(|p| n.ends_with(&format!("_{p}.safetensors")))
    };
    // The modes when the discover stage ran: each mode is named too.
    let with_modes = run.engine.finished("discover").is_ok();
    let stages: &[&str] =
        if with_modes { &["fit", "evaluate", "embed", "discover"] } else { &["fit", "evaluate", "embed"] };
    let inputs = run.engine.inputs(stages, |n| wanted(n) || n == "modes.json")?;
    run.engine.run("describe", json!({"data": run.data_key()?, "names": config}), inputs, |out| {
        let prepared = run.prepared()?;
        let directions = run.directions()?;
        let modes: Option<crate::artifacts::ModesFile> = if with_modes { Some(run.read()?) } else { None };
        let discovery = if prepared.split.extra.is_empty() { SplitPart::Val } else { SplitPart::Extra };
        // Discovery (ranked by the direction), labelled (val: the classifier's errors where the direction was fit) and
        // held-out (test) images, each with its attributes and tags.
        let parts = [discovery, SplitPart::Val, SplitPart::Test];
        let scored = parts.map(|p| run.scored(p));
        let [found, labelled, test] = scored;
        let (found, labelled, test) = (found?, labelled?, test?);
        let tagger = tagger(run)?;
        let mut described = Vec::new();
        for (part, split) in parts.iter().zip([&found, &labelled, &test]) {
            let mut d = measure(prepared.images(*part).0, &split.indices)?;
            if let Some(tagger) = &tagger {
                tag(tagger, split, &mut d);
            }
            described.push(d);
        }
        let nouns = tagger.map(|t| t.nouns).unwrap_or_default();
        let names = prepared.train.class_names();
        let ranked = (0..names.len())
            .map(|k| {
                let class = k as u16;
                let split = modes.as_ref().and_then(|m| m.classes.iter().find(|c| c.class == class && c.split));
                let mode_svms: Vec<&fd_svm::LinearSvm> =
                    split.map(|c| c.modes.iter().map(|m| &m.mode.svm).collect()).unwrap_or_default();
                let splits = [
                    Split { scored: &found, described: &described[0] },
                    Split { scored: &labelled, described: &described[1] },
                    Split { scored: &test, described: &described[2] },
                ];
                describe_class((&directions, &mode_svms), class, splits, &nouns, &config)
            })
            .collect::<Result<Vec<_>>>()?;
        let classes = finish(ranked, names, &config);
        Ok(vec![Run::write(out, &NamesFile { format_version: Version, config, discovery, classes })?])
    })?;
    Ok(())
}

/// An image's measured attributes and, in the offline space, its tag.
struct Described {
    attributes: Attributes,
    /// The coarse WordNet noun of the image's top ImageNet class (an index into the tagger's nouns).
    tag: Option<u16>,
}

/// The attributes of `indices` of `set`, each measured on the image at its own size.
fn measure(set: &Images, indices: &[usize]) -> Result<Vec<Described>> {
    let mut out = Vec::with_capacity(indices.len());
    set.batches(indices, 256, |_, images| {
        out.extend(images.iter().map(|i| Described { attributes: attributes(i), tag: None }));
        Ok(())
    })?;
    Ok(out)
}

/// The offline space's classifier: its rows (`classes × dim`), the coarse nouns, and each class's noun (fd-caption's
/// `imagenet` set: "canine", "fish", "device", …).
struct Tagger {
    rows: Vec<f32>,
    dim: usize,
    nouns: Vec<String>,
    class_noun: Vec<u16>,
}

/// The tagger of the space: EfficientNet's ImageNet classifier rows, each class tagged with its coarse noun; CLIP's zero-shot
/// prompts of the coarse nouns; none for imported embeddings.
fn tagger(run: &Run) -> Result<Option<Tagger>> {
    if run.experiment.embeddings.is_some() || run.experiment.embed.is_none() {
        return Ok(None);
    }
    let embedder = run.embedder()?;
    let imagenet = fd_caption::vocabulary::vocabulary("imagenet").context("the built-in imagenet caption set")?;
    let noun_of =
        |k: usize| imagenet.classes.get(k).and_then(|c| c.nouns.first()).cloned().unwrap_or_else(|| "thing".into());
    let Some(vocabulary) = embedder.vocabulary() else {
        // CLIP: zero-shot tags, each coarse noun as "a photo of a <noun>", unit length so the dot product is the cosine.
        let nouns: Vec<String> =
            (0..imagenet.classes.len()).map(noun_of).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let prompts: Vec<String> = nouns
            .iter()
            .map(|n| fd_caption::vocabulary::reference_caption(n, fd_caption::vocabulary::Grammar::Fixed))
            .collect();
        let mut rows = embedder.embed_texts(&prompts.iter().map(String::as_str).collect::<Vec<_>>())?;
        let dim = embedder.dim();
        for row in rows.chunks_exact_mut(dim) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            row.iter_mut().for_each(|v| *v /= norm);
        }
        let class_noun = (0..nouns.len() as u16).collect();
        return Ok(Some(Tagger { rows, dim, nouns, class_noun }));
    };
    let nouns: Vec<String> =
        (0..vocabulary.len()).map(noun_of).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let class_noun =
        (0..vocabulary.len()).map(|k| nouns.iter().position(|n| *n == noun_of(k)).unwrap_or(0) as u16).collect();
    Ok(Some(Tagger { rows: embedder.embed_texts(&vocabulary)?, dim: embedder.dim(), nouns, class_noun }))
}

/// Tags each row of `scored` with the coarse noun of its top class.
fn tag(tagger: &Tagger, scored: &Scored, out: &mut [Described]) {
    let dim = tagger.dim;
    for (r, d) in out.iter_mut().enumerate() {
        let x = &scored.rows[r * dim..(r + 1) * dim];
        let best = tagger
            .rows
            .chunks_exact(dim)
            .map(|w| w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>())
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (k, v)| if v > best.1 { (k, v) } else { best });
        d.tag = Some(tagger.class_noun[best.0]);
    }
}

/// A candidate predicate: its phrase, its family, the test, and the measure it cuts (none for a yes/no predicate).
type Predicate = (String, String, Box<dyn Fn(&Described) -> bool>, Option<Measure>);

/// The quantiles of the class's discovery values a measure is cut at: a failure mode can be a tenth of the class or half of it.
const CUTS: [f64; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];

/// The candidate predicates of one class: low and high on each measure, cut at each of [`CUTS`] (low) and one minus it (high)
/// of the class's discovery values, with the threshold in the phrase (the best cut of a measure and side wins); grayscale;
/// each dominant hue; each background colour; each tag.
fn predicates(found: &[&Described], nouns: &[String]) -> Vec<Predicate> {
    let mut out: Vec<Predicate> = Vec::new();
    for m in Measure::ALL {
        let mut values: Vec<f32> = found.iter().map(|d| d.attributes.measure(m)).collect();
        values.sort_by(f32::total_cmp);
        let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        let (low_phrase, high_phrase) = m.phrases();
        for q in CUTS {
            let (low, high) = (at(q), at(1.0 - q));
            let name = m.name();
            out.push((
                format!("{low_phrase} ({name} ≤ {low:.3})"),
                format!("low {name}"),
                Box::new(move |d: &Described| d.attributes.measure(m) <= low),
                Some(m),
            ));
            out.push((
                format!("{high_phrase} ({name} ≥ {high:.3})"),
                format!("high {name}"),
                Box::new(move |d: &Described| d.attributes.measure(m) >= high),
                Some(m),
            ));
        }
    }
    out.push(("grayscale images".into(), "grayscale".into(), Box::new(|d: &Described| d.attributes.grayscale()), None));
    for (h, hue) in HUES.iter().enumerate() {
        let phrase = format!("mostly {hue} images");
        out.push((phrase.clone(), phrase, Box::new(move |d: &Described| d.attributes.hue == Some(h as u8)), None));
    }
    for (b, colour) in BACKGROUNDS.iter().enumerate() {
        let phrase = format!("against a {colour} background");
        out.push((
            phrase.clone(),
            phrase,
            Box::new(move |d: &Described| usize::from(d.attributes.background) == b),
            None,
        ));
    }
    for (t, noun) in nouns.iter().enumerate() {
        let phrase = format!("tagged “{noun}”");
        out.push((phrase.clone(), phrase, Box::new(move |d: &Described| d.tag == Some(t as u16)), None));
    }
    out
}

/// One split's scored rows and their attributes, row for row.
#[derive(Clone, Copy)]
struct Split<'a> {
    scored: &'a Scored,
    described: &'a [Described],
}

/// One class's names before the step across classes, or why it has none.
enum Ranked {
    Skipped(String),
    Named {
        names: fd_caption::names::ClassNames,
        modes: Vec<fd_caption::names::ClassNames>,
        /// Per predicate phrase, the first [`SHOWN`] test images (dataset indices) that have it.
        shown: std::collections::BTreeMap<String, Vec<usize>>,
    },
}

/// Every class's names in their final order (fd-caption's `lead_with_shared` over the named classes), each with the test
/// images of its first hard name, printed.
fn finish(mut ranked: Vec<Ranked>, class_names: &[String], config: &NameConfig) -> Vec<ClassNamesEntry> {
    let (mut named, mut modes) = (Vec::new(), Vec::new());
    for r in &mut ranked {
        if let Ranked::Named { names, modes: m, .. } = r {
            named.push(std::mem::take(names));
            modes.push(std::mem::take(m));
        }
    }
    fd_caption::names::lead_with_shared(&mut named, &mut modes, config);
    let (mut named, mut modes) = (named.into_iter(), modes.into_iter());
    ranked
        .into_iter()
        .enumerate()
        .map(|(k, r)| {
            let (outcome, modes) = match r {
                Ranked::Skipped(reason) => (NamesOutcome::Skipped { reason }, Vec::new()),
                Ranked::Named { shown, .. } => {
                    let (names, modes) = (named.next().expect("one per named class"), modes.next().expect("one"));
                    let first = names.hard.first().and_then(|n| shown.get(&n.phrase)).cloned().unwrap_or_default();
                    (NamesOutcome::Named { names, top_name_images: first }, modes)
                }
            };
            print_class(&class_names[k], &outcome);
            ClassNamesEntry { class: k as u16, name: class_names[k].clone(), outcome, modes }
        })
        .collect()
}

/// One class's names, and each of its modes' names, from the discovery, labelled and held-out splits, uncut.
fn describe_class(
    (directions, modes): (&fd_svm::Directions, &[&fd_svm::LinearSvm]),
    class: u16,
    [found, labelled, test]: [Split<'_>; 3],
    nouns: &[String],
    config: &NameConfig,
) -> Result<Ranked> {
    let (found, found_attributes) = (found.scored, found.described);
    let (test, test_attributes) = (test.scored, test.described);
    let members = found.class_rows(class);
    let test_members = test.class_rows(class);
    let labelled_members = labelled.scored.class_rows(class);
    let dim = found.dim;
    let rows: Vec<f32> = members.iter().flat_map(|&i| found.rows[i * dim..(i + 1) * dim].iter().copied()).collect();
    let Some(decisions) = directions.class_decisions(class, &rows)? else {
        return Ok(Ranked::Skipped("no SVM for this class (see fit.json)".into()));
    };
    if members.len() < 2 * config.min_top || test_members.is_empty() {
        let reason = format!("{} discovery and {} test images: too few to contrast", members.len(), test_members.len());
        return Ok(Ranked::Skipped(reason));
    }
    let class_found: Vec<&Described> = members.iter().map(|&i| &found_attributes[i]).collect();
    let class_test: Vec<&Described> = test_members.iter().map(|&i| &test_attributes[i]).collect();
    let class_labelled: Vec<&Described> = labelled_members.iter().map(|&i| &labelled.described[i]).collect();
    let predicates = predicates(&class_found, nouns);
    let on = |p: &dyn Fn(&Described) -> bool, set: &[&Described]| -> Vec<bool> { set.iter().map(|a| p(a)).collect() };
    let flags: Vec<(Vec<bool>, Vec<bool>, Vec<bool>)> = predicates
        .iter()
        .map(|(_, _, p, _)| (on(p, &class_found), on(p, &class_test), on(p, &class_labelled)))
        .collect();
    let values: Vec<Vec<f32>> =
        Measure::ALL.iter().map(|&m| class_found.iter().map(|d| d.attributes.measure(m)).collect()).collect();
    let values_of =
        |m: &Option<Measure>| m.and_then(|m| Measure::ALL.iter().position(|x| *x == m)).map(|k| values[k].as_slice());
    let candidates: Vec<Candidate<'_>> = predicates
        .iter()
        .zip(&flags)
        .map(|((phrase, family, _, measure), (discovery, held_out, labelled))| Candidate {
            phrase,
            family,
            discovery,
            held_out,
            values: values_of(measure),
            labelled: Some(labelled),
        })
        .collect();
    let decisions: Vec<f32> = decisions.iter().map(|&d| d as f32).collect();
    let correct: Vec<bool> = test_members.iter().map(|&i| test.correct[i]).collect();
    let right: Vec<bool> = labelled_members.iter().map(|&i| labelled.scored.correct[i]).collect();
    let right = (!right.is_empty()).then_some(right.as_slice());
    let names = rank_class(&candidates, &decisions, &correct, right, config);
    let shown = predicates
        .iter()
        .zip(&flags)
        .map(|((phrase, ..), (_, held_out, _))| {
            let with = test_members.iter().zip(held_out).filter(|(_, has)| **has);
            (phrase.clone(), with.map(|(&i, _)| test.indices[i]).take(SHOWN).collect())
        })
        .collect();
    // A mode ranks the discovery images by its own decision, through the class's preprocessing.
    let z = directions.preprocessing.apply(&rows);
    let mode_names = modes
        .iter()
        .map(|svm| {
            let d: Vec<f32> = z.chunks_exact(dim).map(|r| svm.decision(r) as f32).collect();
            rank_class(&candidates, &d, &correct, right, config)
        })
        .collect();
    Ok(Ranked::Named { names, modes: mode_names, shown })
}

#[allow(clippy::print_stdout)]
fn print_class(name: &str, outcome: &NamesOutcome) {
    let NamesOutcome::Named { names, .. } = outcome else {
        println!("describe: {name:<12} skipped");
        return;
    };
    let show = |n: Option<&fd_caption::names::AttributeName>| {
        n.map_or("-".to_string(), |n| {
            let verdict = if n.check.supported { "" } else { ", unsupported" };
            format!(
                "{} (x{:.1}; test accuracy {:.2} vs class {:.2}, p = {:.3}{verdict})",
                n.phrase, n.lift, n.check.accuracy, n.check.class_accuracy, n.check.p_value
            )
        })
    };
    println!("describe: {name:<12} hard: {}  easy: {}", show(names.hard.first()), show(names.easy.first()));
}
