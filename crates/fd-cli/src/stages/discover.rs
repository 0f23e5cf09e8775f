//! The discover stage: each class's failure modes (`modes.json`, fd-svm's `modes`), each checked on test as a caption is;
//! and, for a dataset with planted groups, every discovery method against them (`discover.json`), as dcbench scores slice
//! discovery: for each planted group of a class, the best-matching slice (or complement) of each method, by precision at 10
//! and 25, average precision and AUROC, on the class's test images.
//!
//! The methods, each ranking the class's test images by its slices' scores:
//! - `confidence`: the classifier's probability of the true class, lowest first (one slice);
//! - `svm`: the paper's direction, lowest decision value first (one slice);
//! - `domino`: the Domino-style error-aware mixture fitted on the class's val rows (fd-svm's `domino`; its slices' posteriors);
//! - `modes`: ours: the class's direction and, when the class has several modes, one slice a mode beside it;
//! - `modes-only`: the modes alone (the class's direction when it has one mode), so the gain of the modes is not only that of
//!   more slices to match.
//!
//! The modes are chosen on the extra pool (its correctness picks and orders them), never on test, so their check on test in
//! `modes.json` is a real verification (test itself when the pool is empty, as for a user's dataset without one; then the
//! check is not independent, and `chosen_on` says so). A class without an SVM still scores confidence and the mixture.

use anyhow::{Result, bail};
use fd_caption::check::check_caption;
use fd_data::SplitPart;
use fd_svm::domino::{Domino, DominoConfig};
use fd_svm::metrics::auroc;
use fd_svm::modes::{ModeConfig, Rows, find_all_modes};
use fd_svm::slices::{average_precision, best_match, precision_at_k};
use serde_json::json;

use crate::artifacts::{
    ClassModesEntry, DiscoverFile, GroupRecovery, MethodRecovery, ModeEntry, ModesFile, Scored, Version,
};
use crate::run::Run;

/// The methods of `discover.json`, in order.
pub(crate) const METHODS: [&str; 5] = ["confidence", "svm", "domino", "modes", "modes-only"];

/// Finds the modes and, with planted groups, scores the methods.
pub(super) fn discover(run: &Run) -> Result<()> {
    let config = run.experiment.modes.clone().unwrap_or_default();
    let caption = run.caption_config();
    let domino = DominoConfig::default();
    let wanted = |n: &str| {
        n == "directions.json" || ["val", "extra", "test"].iter().any(|p| n.ends_with(&format!("_{p}.safetensors")))
    };
    let inputs = run.engine.inputs(&["fit", "evaluate", "embed"], wanted)?;
    let key =
        json!({"data": run.data_key()?, "modes": config, "k": caption.k, "alpha": caption.alpha, "domino": domino});
    run.engine.run("discover", key, inputs, |out| {
        let prepared = run.prepared()?;
        let directions = run.directions()?;
        let (val, test) = (run.scored(SplitPart::Val)?, run.scored(SplitPart::Test)?);
        let pool = if prepared.split.extra.is_empty() { None } else { Some(run.scored(SplitPart::Extra)?) };
        if val.dim != directions.preprocessing.dim() || test.dim != val.dim {
            bail!("the embeddings and directions.json differ in dimension; run `fd-cli fit` to remake the directions");
        }
        let names = prepared.train.class_names();
        let chooser = pool.as_ref().unwrap_or(&test);
        let mut modes = class_modes(&directions, &val, chooser, &test, &config, (caption.k, caption.alpha))?;
        for c in &mut modes {
            c.name = names.get(usize::from(c.class)).cloned().unwrap_or_default();
        }
        print_modes(&modes, names);
        let mut written = vec![Run::write(
            out,
            &ModesFile {
                format_version: Version,
                config: config.clone(),
                k: caption.k,
                chosen_on: if pool.is_some() { SplitPart::Extra } else { SplitPart::Test },
                classes: modes.clone(),
            },
        )?];
        if let Some(groups) = &prepared.groups {
            let test_groups: Vec<u16> = test.indices.iter().map(|&i| groups.test[i]).collect();
            let recovered = recover(&directions, &val, &test, &test_groups, groups, &modes, &domino)?;
            print_recovery(&recovered, names);
            written.push(Run::write(
                out,
                &DiscoverFile {
                    format_version: Version,
                    methods: METHODS.map(String::from).to_vec(),
                    domino: domino.clone(),
                    groups: recovered,
                },
            )?);
        }
        Ok(written)
    })?;
    Ok(())
}

fn gather(rows: &[f32], dim: usize, which: &[usize]) -> Vec<f32> {
    which.iter().flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied()).collect()
}

/// The `k` rows of lowest decision value, hardest first.
fn hardest(decisions: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..decisions.len()).collect();
    order.sort_by(|&a, &b| decisions[a].total_cmp(&decisions[b]));
    order.truncate(k);
    order
}

/// Every class's modes, chosen on `chooser` (the extra pool), with their checks on test (`check`: the caption check's k and level).
fn class_modes(
    directions: &fd_svm::Directions,
    val: &Scored,
    chooser: &Scored,
    test: &Scored,
    config: &ModeConfig,
    check: (usize, f64),
) -> Result<Vec<ClassModesEntry>> {
    let (k, alpha) = check;
    let correct_of = |part: &Scored| -> Vec<Vec<bool>> {
        (0..directions.classes.len() as u16)
            .map(|c| part.class_rows(c).iter().map(|&i| part.correct[i]).collect())
            .collect()
    };
    let (chooser_correct, per_class_correct) = (correct_of(chooser), correct_of(test));
    // A mode is kept when its k hardest pool images are significantly worse than the class's, and ranked by their accuracy.
    let keep = |class: u16, decisions: &[f64]| -> Option<f64> {
        let correct = &chooser_correct[usize::from(class)];
        let check = check_caption(correct, &hardest(decisions, k.min(correct.len())), alpha);
        check.supported.then_some(check.accuracy)
    };
    let found = find_all_modes(
        directions,
        Rows { rows: &val.rows, labels: &val.labels },
        &val.correct,
        Rows { rows: &chooser.rows, labels: &chooser.labels },
        config,
        2,
        &keep,
    )?;
    let z_test = directions.preprocessing.apply(&test.rows);
    let dim = test.dim;
    Ok(found
        .into_iter()
        .map(|c| {
            let rows = test.class_rows(c.class);
            let correct = &per_class_correct[usize::from(c.class)];
            let z = gather(&z_test, dim, &rows);
            let modes = c
                .modes
                .into_iter()
                .map(|mode| {
                    let d: Vec<f64> = z.chunks_exact(dim).map(|r| mode.svm.decision(r)).collect();
                    let top = hardest(&d, k.min(rows.len()));
                    let check = check_caption(correct, &top, alpha);
                    ModeEntry { mode, check, hardest: top.iter().map(|&r| test.indices[rows[r]]).collect() }
                })
                .collect();
            ClassModesEntry {
                class: c.class,
                name: String::new(),
                split: c.split,
                clusters: c.clusters,
                merged: c.merged,
                dropped: c.dropped,
                modes,
            }
        })
        .collect())
}

/// Every method's best match for every planted group of every class.
fn recover(
    directions: &fd_svm::Directions,
    val: &Scored,
    test: &Scored,
    test_groups: &[u16],
    groups: &fd_data::planted::Groups,
    modes: &[ClassModesEntry],
    domino: &DominoConfig,
) -> Result<Vec<GroupRecovery>> {
    let dim = test.dim;
    let (z_val, z_test) = (directions.preprocessing.apply(&val.rows), directions.preprocessing.apply(&test.rows));
    let mut out = Vec::new();
    for class in 0..directions.classes.len() as u16 {
        let rows = test.class_rows(class);
        let planted: Vec<u16> = {
            let mut g: Vec<u16> = rows.iter().map(|&i| test_groups[i]).filter(|&g| groups.is_planted(g)).collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        if planted.is_empty() {
            continue;
        }
        let z = gather(&z_test, dim, &rows);
        let negate = |d: Vec<f64>| d.into_iter().map(|x| -x).collect::<Vec<f64>>();
        let score = |svm: &fd_svm::LinearSvm| negate(z.chunks_exact(dim).map(|r| svm.decision(r)).collect());
        let confidence: Vec<f64> = rows.iter().map(|&i| test.confidence[i]).collect();
        let val_rows = val.class_rows(class);
        let val_confidence: Vec<f64> = val_rows.iter().map(|&i| val.confidence[i]).collect();
        let val_correct: Vec<bool> = val_rows.iter().map(|&i| val.correct[i]).collect();
        let mixture = Domino::fit(&gather(&z_val, dim, &val_rows), dim, &val_confidence, &val_correct, domino);
        let domino_slices = match mixture {
            Ok(m) => m.slice_scores(&z, &confidence)?,
            Err(e) => {
                tracing::warn!(class, error = %e, "domino not fitted");
                Vec::new()
            }
        };
        // A class without an SVM has no direction and no modes: those methods score nothing there.
        let whole: Vec<Vec<f64>> = directions.class(class).map(|c| score(&c.svm)).into_iter().collect();
        let entry = modes.iter().find(|m| m.class == class);
        let split: Vec<Vec<f64>> = entry
            .filter(|m| m.split)
            .map(|m| m.modes.iter().map(|mode| score(&mode.mode.svm)).collect())
            .unwrap_or_default();
        // Ours reports the class's direction and, when the class splits, its modes beside it.
        let ours: Vec<Vec<f64>> = whole.iter().chain(&split).cloned().collect();
        let alone = if split.is_empty() { whole.clone() } else { split };
        let slices: [Vec<Vec<f64>>; 5] =
            [vec![confidence.iter().map(|c| -c).collect()], whole, domino_slices, ours, alone];
        let modes_given = entry.map_or(0, |m| m.modes.len());
        for &g in &planted {
            let in_group: Vec<bool> = rows.iter().map(|&i| test_groups[i] == g).collect();
            let correct: Vec<bool> = rows.iter().map(|&i| test.correct[i]).collect();
            let name = groups.names.get(usize::from(g)).cloned().unwrap_or_default();
            out.push(group_recovery(class, g, name, &in_group, &correct, modes_given, &slices));
        }
    }
    Ok(out)
}

/// A ranking metric: a slice's scores and the group's flags to a value.
type Metric<'a> = dyn Fn(&[f64], &[bool]) -> Option<f64> + 'a;

/// One planted group's figures: each method's best-matching slice (or complement) by each metric.
fn group_recovery(
    class: u16,
    group: u16,
    group_name: String,
    in_group: &[bool],
    correct: &[bool],
    modes: usize,
    slices: &[Vec<Vec<f64>>],
) -> GroupRecovery {
    let accuracy = |want: bool| {
        let (n, right) = in_group
            .iter()
            .zip(correct)
            .filter(|(g, _)| **g == want)
            .fold((0usize, 0usize), |(n, r), (_, &c)| (n + 1, r + usize::from(c)));
        right as f64 / n.max(1) as f64
    };
    let methods = slices
        .iter()
        .map(|s| {
            let best = |metric: &Metric<'_>| best_match(s, in_group, metric).map(|m| m.value);
            MethodRecovery {
                slices: s.len(),
                precision_at_10: best(&|s, g| precision_at_k(s, g, 10)),
                precision_at_25: best(&|s, g| precision_at_k(s, g, 25)),
                average_precision: best(&average_precision),
                auroc: best(&|s, g| Some(auroc(s, g)).filter(|a| a.is_finite())),
            }
        })
        .collect();
    GroupRecovery {
        class,
        group,
        group_name,
        test_images: in_group.len(),
        base_rate: in_group.iter().filter(|&&x| x).count() as f64 / in_group.len().max(1) as f64,
        group_accuracy: accuracy(true),
        rest_accuracy: accuracy(false),
        modes,
        methods,
    }
}

fn print_modes(modes: &[ClassModesEntry], names: &[String]) {
    for c in modes {
        let name = names.get(usize::from(c.class)).map_or("", String::as_str);
        let checks: Vec<String> = c
            .modes
            .iter()
            .map(|m| {
                format!(
                    "{:.2} (p {:.3}{})",
                    m.check.accuracy,
                    m.check.p_value,
                    if m.check.supported { "" } else { ", not verified" }
                )
            })
            .collect();
        println!(
            "discover: {} {name:<12} {} mode{}: hardest-{} test accuracy {} (class {:.2})",
            c.class,
            c.modes.len(),
            if c.modes.len() == 1 { " " } else { "s" },
            c.modes.first().map_or(0, |m| m.check.k),
            checks.join(", "),
            c.modes.first().map_or(0.0, |m| m.check.class_accuracy)
        );
    }
}

fn print_recovery(groups: &[GroupRecovery], names: &[String]) {
    println!("discover: planted group recovery, best-matching slice's precision at 10 ({})", METHODS.join(" / "));
    for g in groups {
        let name = names.get(usize::from(g.class)).map_or("", String::as_str);
        let p: Vec<String> =
            g.methods.iter().map(|m| m.precision_at_10.map_or("-".into(), |v| format!("{v:.2}"))).collect();
        println!(
            "discover: {name:<12} {:<24} share {:.2}, accuracy {:.2} vs {:.2}: {}",
            g.group_name,
            g.base_rate,
            g.group_accuracy,
            g.rest_accuracy,
            p.join(" / ")
        );
    }
}
