//! Parity with scikit-learn on the committed fixtures (`fixtures/make_fixtures.py`): folds, CV scores, chosen C, decision values, iterations.

use std::path::Path;

use serde::Deserialize;

use crate::fit::{self, stratified_folds};
use crate::kernel::Gram;
use crate::{ClassOutcome, FitInput, SvmConfig, fit_directions, fit_preprocessing};

#[derive(Deserialize)]
struct Fixtures {
    cs: Vec<f64>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    dim: usize,
    classes: usize,
    labels: Vec<u16>,
    correct: Vec<bool>,
    per_class: Vec<Option<Reference>>,
}

#[derive(Deserialize)]
struct Reference {
    cv_scores: Vec<f64>,
    n_iter: Vec<usize>,
    n_support: Vec<usize>,
    b: Vec<f64>,
    chosen: usize,
    best_score: f64,
    folds: Vec<usize>,
}

struct Loaded {
    fixtures: Fixtures,
    tensors: Vec<u8>,
}

fn load() -> Loaded {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fixtures = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    Loaded { fixtures, tensors: std::fs::read(dir.join("cases.safetensors")).unwrap() }
}

fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    match t.dtype() {
        safetensors::Dtype::F16 => {
            t.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
        }
        other => panic!("{name}: unexpected dtype {other:?}"),
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The preprocessed rows of `class` as the reference computed them, so that the solver sees scikit-learn's very inputs.
fn class_rows(l: &Loaded, case: &Case, class: u16) -> (Vec<f32>, Vec<bool>) {
    let z = tensor(&l.tensors, &format!("{}.z", case.name));
    let members: Vec<usize> = (0..case.labels.len()).filter(|&i| case.labels[i] == class).collect();
    let zc = members.iter().flat_map(|&i| z[i * case.dim..(i + 1) * case.dim].to_vec()).collect();
    (zc, members.iter().map(|&i| case.correct[i]).collect())
}

#[test]
fn preprocessing_matches_numpy() {
    let l = load();
    let case = l.fixtures.cases.iter().find(|c| c.name == "small_200x64").unwrap();
    let train = tensor(&l.tensors, "small_200x64.train");
    let pre = fit_preprocessing(&train, 64, true).unwrap();
    let max_err = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max_err(&pre.mean, &tensor(&l.tensors, "small_200x64.mean")) < 1e-6);
    assert!(max_err(&pre.std, &tensor(&l.tensors, "small_200x64.std")) < 1e-6);
    let z = pre.apply(&tensor(&l.tensors, "small_200x64.x"));
    assert!(max_err(&z, &tensor(&l.tensors, "small_200x64.z")) < 1e-6);
    assert_eq!(z.len(), case.labels.len() * 64);
}

#[test]
fn every_c_matches_scikit_learn() {
    let l = load();
    let config = SvmConfig::paper();
    assert_eq!(config.c_grid, l.fixtures.cs, "the C grid must be numpy's logspace(-6, 0, 7), bit for bit");
    let mut fits = 0;
    for case in &l.fixtures.cases {
        for (class, reference) in case.per_class.iter().enumerate() {
            let Some(reference) = reference else { continue };
            let (z, correct) = class_rows(&l, case, class as u16);
            let what = format!("{} class {class}", case.name);
            assert_eq!(stratified_folds(&correct, 2), reference.folds, "{what}: folds");
            let gram = Gram::new(&z, case.dim);
            let expected_w = tensor(&l.tensors, &format!("{}.{class}.w", case.name));
            let expected_d = tensor(&l.tensors, &format!("{}.{class}.decision", case.name));
            let n = correct.len();
            for (k, &c) in config.c_grid.iter().enumerate() {
                let data = fit::ClassData { gram: &gram, z: &z, dim: case.dim, correct: &correct };
                let scores = fit::cross_validate(data, &reference.folds, 2, c, &config);
                let score = (scores[0] + scores[1]) / 2.0;
                assert!(
                    (score - reference.cv_scores[k]).abs() <= 1e-3,
                    "{what} C={c}: cv {score} vs {}",
                    reference.cv_scores[k]
                );
                let svm = fit::fit_binary(data, &(0..n).collect::<Vec<_>>(), c, &config);
                let ours: Vec<f64> = (0..n).map(|i| svm.decision(&z[i * case.dim..(i + 1) * case.dim])).collect();
                let theirs: Vec<f64> = expected_d[k * n..(k + 1) * n].iter().map(|&v| f64::from(v)).collect();
                let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs()));
                // Even where at most one multiplier is free and the intercept hangs on the last bit of the inputs
                // (`n_free` in the fixtures), the mirrored solver lands where libsvm lands.
                let err = ours.iter().zip(&theirs).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                let r = pearson(&ours, &theirs);
                assert!(err <= 1e-3 * scale, "{what} C={c}: max |decision error| {err:e} vs scale {scale:e}");
                assert!(r >= 0.9999, "{what} C={c}: correlation {r}");
                assert!(
                    (svm.b - reference.b[k]).abs() <= 1e-6 * scale,
                    "{what} C={c}: b {} vs {}",
                    svm.b,
                    reference.b[k]
                );
                let w_ref = &expected_w[k * case.dim..(k + 1) * case.dim];
                let w_err = svm.w.iter().zip(w_ref).fold(0f64, |m, (a, b)| m.max((a - f64::from(*b)).abs()));
                let w_scale = w_ref.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(w_err <= 1e-3 * f64::from(w_scale), "{what} C={c}: w error {w_err:e}");
                assert_eq!(svm.support, reference.n_support[k], "{what} C={c}: support vectors");
                // The solver mirrors libsvm's step for step, so it takes exactly as many steps.
                assert_eq!(svm.iterations, reference.n_iter[k], "{what} C={c}: iterations");
                fits += 1;
            }
        }
    }
    assert_eq!(fits, 6 * 7, "every fitted class of every case at every C");
}

#[test]
fn the_protocol_chooses_what_scikit_learn_chooses() {
    let l = load();
    let config = SvmConfig::paper();
    for case in &l.fixtures.cases {
        // On scikit-learn's inputs, every class's chosen C and CV score.
        for (class, reference) in case.per_class.iter().enumerate() {
            let Some(r) = reference else { continue };
            let (z, correct) = class_rows(&l, case, class as u16);
            let ours = fit::fit_class(class as u16, &z, case.dim, &correct, &config);
            assert_eq!(ours.c, config.c_grid[r.chosen], "{} class {class}: chosen C", case.name);
            assert_eq!(ours.cv_scores, r.cv_scores, "{} class {class}: cv scores", case.name);
        }
    }
    // From raw rows through fd-svm's own preprocessing and the multi-class API.
    for case in l.fixtures.cases.iter().filter(|c| c.name.starts_with("small") || c.name.starts_with("multiclass")) {
        let x = tensor(&l.tensors, &format!("{}.x", case.name));
        let train = tensor(&l.tensors, &format!("{}.train", case.name));
        let input = FitInput {
            train: &train,
            rows: &x,
            dim: case.dim,
            labels: &case.labels,
            correct: &case.correct,
            num_classes: case.classes,
        };
        let got = fit_directions(&input, &config, 2).unwrap();
        for (class, reference) in case.per_class.iter().enumerate() {
            match (&got.classes[class], reference) {
                (ClassOutcome::Fitted(ours), Some(r)) => {
                    assert_eq!(ours.c, SvmConfig::paper().c_grid[r.chosen], "{} class {class}: chosen C", case.name);
                    assert!((ours.cv_score - r.best_score).abs() <= 1e-3, "{} class {class}: cv score", case.name);
                }
                (ClassOutcome::Skipped { reason, .. }, None) => {
                    assert_eq!(reason, "1 misclassified of 250 rows: 2-fold cross-validation needs at least 2");
                }
                (ours, theirs) => {
                    panic!("{} class {class}: ours {ours:?}, reference fitted: {}", case.name, theirs.is_some())
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct MetricsReference {
    truth: Vec<bool>,
    pred: Vec<bool>,
    scores: Vec<f64>,
    balanced_accuracy: f64,
    auroc: f64,
}

#[test]
fn metrics_match_scikit_learn() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let m: MetricsReference = serde_json::from_value(all["metrics"].clone()).unwrap();
    assert!((crate::metrics::balanced_accuracy(&m.pred, &m.truth) - m.balanced_accuracy).abs() < 1e-12);
    assert!((crate::metrics::auroc(&m.scores, &m.truth) - m.auroc).abs() < 1e-12);
}

/// A small seeded generator (xorshift64* with Box-Muller), so the tests need no RNG crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// Rows of isotropic noise around a centre; incorrect rows are shifted along `u`.
fn planted(rng: &mut Rng, n: usize, dim: usize, u: &[f64], errors: usize, shift: f64) -> (Vec<f32>, Vec<bool>) {
    let mut rows = Vec::with_capacity(n * dim);
    let mut correct: Vec<bool> = Vec::with_capacity(n);
    for i in 0..n {
        let wrong = i % (n / errors) == 0 && correct.iter().filter(|&&c| !c).count() < errors;
        for (k, uk) in u.iter().enumerate().take(dim) {
            let centre = if k == 0 { 5.0 } else { 0.0 };
            rows.push((centre + rng.normal() - if wrong { shift * uk } else { 0.0 }) as f32);
        }
        correct.push(!wrong);
    }
    (rows, correct)
}

#[test]
fn a_planted_direction_is_recovered() {
    let dim = 32;
    let mut rng = Rng(0x5eed);
    let mut u: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
    u.iter_mut().for_each(|x| *x /= norm);
    let (train, _) = planted(&mut rng, 2000, dim, &u, 400, 0.0);
    let (rows, correct) = planted(&mut rng, 4000, dim, &u, 800, 3.0);
    let labels = vec![0u16; correct.len()];
    let input = FitInput { train: &train, rows: &rows, dim, labels: &labels, correct: &correct, num_classes: 1 };
    let d = fit_directions(&input, &SvmConfig::paper(), 1).unwrap();
    let raw = d.raw_direction(0).unwrap();
    let cosine: f64 = raw.iter().zip(&u).map(|(a, b)| f64::from(*a) * b).sum();
    // The direction points at "correct", away from the planted failure shift -u.
    assert!(cosine >= 0.99, "cosine {cosine}");
    // Its ranking puts the failures first.
    let decisions = d.decision_values(&rows, &labels).unwrap();
    let order = crate::rank_within_class(&decisions, &labels, 0);
    let wrong: Vec<bool> = correct.iter().map(|c| !c).collect();
    assert!(crate::metrics::fraction_in_top_k(&order, &wrong, 300) > 0.9);
}

#[test]
fn classes_without_enough_errors_are_skipped_with_the_reason() {
    let dim = 8;
    let mut rng = Rng(7);
    let u = vec![1.0 / (dim as f64).sqrt(); dim];
    let (train, _) = planted(&mut rng, 100, dim, &u, 10, 0.0);
    let (mut rows, mut correct) = planted(&mut rng, 60, dim, &u, 12, 3.0);
    let mut labels: Vec<u16> = (0..60).map(|i| (i % 3) as u16).collect();
    // Class 1 keeps no error, class 2 keeps one; class 3 has no rows at all.
    for i in 0..60 {
        if labels[i] == 1 {
            correct[i] = true;
        }
    }
    let twos: Vec<usize> = (0..60).filter(|&i| labels[i] == 2).collect();
    for (k, &i) in twos.iter().enumerate() {
        correct[i] = k != 3;
    }
    let input = |rows: &[f32], labels: &[u16]| -> crate::Result<crate::Directions> {
        let input = FitInput { train: &train, rows, dim, labels, correct: &correct, num_classes: 4 };
        fit_directions(&input, &SvmConfig::paper(), 2)
    };
    let d = input(&rows, &labels).unwrap();
    let reasons: Vec<String> = d
        .classes
        .iter()
        .map(|c| match c {
            ClassOutcome::Fitted(c) => format!("class {}: fitted at C={}", c.class, c.c),
            ClassOutcome::Skipped { class, reason } => format!("class {class}: {reason}"),
        })
        .collect();
    assert!(reasons[0].starts_with("class 0: fitted"), "{reasons:?}");
    assert_eq!(reasons[1], "class 1: 0 misclassified of 20 rows: 2-fold cross-validation needs at least 2");
    assert_eq!(reasons[2], "class 2: 1 misclassified of 20 rows: 2-fold cross-validation needs at least 2");
    assert_eq!(reasons[3], "class 3: no rows");
    // A class without an SVM scores 0, as the paper does.
    let decisions = d.decision_values(&rows, &labels).unwrap();
    assert!(decisions.iter().zip(&labels).all(|(d, l)| (*l == 0) == (*d != 0.0)));

    // Bad input is an error naming the row, not a panic or a silent NaN.
    rows[5 * dim + 3] = f32::NAN;
    let e = input(&rows, &labels).unwrap_err();
    assert_eq!(e.to_string(), "embeddings: row 5, dimension 3 is NaN (embeddings must be finite)");
    labels[7] = 9;
    rows[5 * dim + 3] = 0.0;
    let e = input(&rows, &labels).unwrap_err();
    assert_eq!(e.to_string(), "label 9 of row 7 is out of range (expected 0..4)");
}

#[test]
fn artifacts_round_trip_and_threads_do_not_change_results() {
    let l = load();
    let case = l.fixtures.cases.iter().find(|c| c.name.starts_with("multiclass")).unwrap();
    let x = tensor(&l.tensors, &format!("{}.x", case.name));
    let train = tensor(&l.tensors, &format!("{}.train", case.name));
    let input = FitInput {
        train: &train,
        rows: &x,
        dim: case.dim,
        labels: &case.labels,
        correct: &case.correct,
        num_classes: 3,
    };
    let fit = |threads| fit_directions(&input, &SvmConfig::paper(), threads).unwrap();
    let d = fit(1);
    assert_eq!(d, fit(3));
    let json = serde_json::to_string(&d).unwrap();
    let back: crate::Directions = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    let bytes = d.to_safetensors();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("directions").unwrap().shape(), &[3, case.dim]);
    assert_eq!(st.tensor("intercepts").unwrap().shape(), &[3]);
    let directions = tensor(&bytes, "directions");
    let w0 = &d.class(0).unwrap().svm.w;
    assert!(directions[..case.dim].iter().zip(w0).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-6));
    // The skipped class is all zeros.
    assert!(directions[2 * case.dim..].iter().all(|&v| v == 0.0));
}

#[test]
fn confusion_precision_recall_and_ranking_on_known_values() {
    use crate::metrics::{Confusion, accuracy, confusion, precision_recall};
    let predicted_correct = [true, false, false, true, true, false];
    let correct = [true, false, true, false, true, false];
    assert_eq!(
        confusion(&predicted_correct, &correct),
        Confusion { error_flagged: 2, error_passed: 1, right_flagged: 1, right_passed: 2 }
    );
    assert!((accuracy(&predicted_correct, &correct) - 4.0 / 6.0).abs() < 1e-12);
    let flagged: Vec<bool> = predicted_correct.iter().map(|p| !p).collect();
    let group = [false, true, true, true, false, false];
    let (precision, recall) = precision_recall(&flagged, &group);
    assert!((precision - 2.0 / 3.0).abs() < 1e-12 && (recall - 2.0 / 3.0).abs() < 1e-12);
    let decisions = [0.5, -1.0, 0.2, -1.0, 3.0, -0.1];
    let labels = [1, 1, 0, 1, 1, 0];
    assert_eq!(crate::rank_within_class(&decisions, &labels, 1), vec![1, 3, 0, 4]);
    assert_eq!(crate::rank_within_class(&decisions, &labels, 0), vec![5, 2]);
    assert_eq!(crate::predicted_correct(&[-0.1, 0.0, 2.0]), vec![false, true, true]);
}

#[test]
fn the_linear_probe_separates_separable_classes() {
    let dim = 8;
    let mut rng = Rng(11);
    let mut make = |n: usize| -> (Vec<f32>, Vec<u16>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let class = (i % 3) as u16;
            for k in 0..dim {
                let centre = if k == usize::from(class) { 4.0 } else { 0.0 };
                rows.push((centre + rng.normal()) as f32);
            }
            labels.push(class);
        }
        (rows, labels)
    };
    let (train, train_labels) = make(150);
    let (test, test_labels) = make(60);
    let accuracy = crate::probe::linear_probe_accuracy(&train, &train_labels, &test, &test_labels, dim, 1.0).unwrap();
    assert!(accuracy >= 0.95, "probe accuracy {accuracy}");
    // Shuffled labels carry nothing.
    let shuffled: Vec<u16> = test_labels.iter().map(|l| (l + 1) % 3).collect();
    let chance = crate::probe::linear_probe_accuracy(&train, &train_labels, &test, &shuffled, dim, 1.0).unwrap();
    assert!(chance <= 0.1, "accuracy against wrong labels {chance}");
}
