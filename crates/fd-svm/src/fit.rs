//! One class's SVM: scikit-learn's `SVC(kernel='linear', class_weight='balanced')`, its 2-fold `StratifiedKFold`, and the paper's C search.

use serde::{Deserialize, Serialize};

use crate::kernel::{Gram, RowCache};
use crate::metrics::balanced_accuracy;
use crate::smo::{self, Problem};
use crate::{ClassSvm, SvmConfig};

/// A fitted binary SVM on preprocessed rows: `decision(x) = w · x + b`, positive for "the classifier is right".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSvm {
    /// The normal vector, in the preprocessed space.
    pub w: Vec<f64>,
    /// The intercept.
    pub b: f64,
    /// SMO iterations (scikit-learn's `n_iter_`).
    pub iterations: usize,
    /// Rows with a non-zero multiplier.
    pub support: usize,
}

impl LinearSvm {
    /// The decision value of one preprocessed row.
    pub fn decision(&self, row: &[f32]) -> f64 {
        self.w.iter().zip(row).map(|(w, x)| w * f64::from(*x)).sum::<f64>() + self.b
    }
}

/// scikit-learn's `StratifiedKFold(n_splits, shuffle=False)` test-fold of every sample.
///
/// Labels are encoded by order of first appearance; each fold's share of a label comes from dealing the label-sorted samples round-robin; each label's samples are then given to folds in blocks, in data order.
pub fn stratified_folds(correct: &[bool], n_splits: usize) -> Vec<usize> {
    let first = correct.first().copied().unwrap_or(true);
    let encoded: Vec<usize> = correct.iter().map(|&c| usize::from(c != first)).collect();
    let counts = [encoded.iter().filter(|&&e| e == 0).count(), encoded.iter().filter(|&&e| e == 1).count()];
    let mut test_fold = vec![0; correct.len()];
    let mut start = 0;
    for (k, &count) in counts.iter().enumerate() {
        // Positions start..start+count of the sorted labels belong to label k; position p goes to fold p % n_splits.
        let mut per_fold = vec![0usize; n_splits];
        for p in start..start + count {
            per_fold[p % n_splits] += 1;
        }
        let mut assignment = per_fold.iter().enumerate().flat_map(|(f, &n)| std::iter::repeat_n(f, n));
        for (i, _) in encoded.iter().enumerate().filter(|(_, e)| **e == k) {
            test_fold[i] = assignment.next().expect("the allocation covers every sample");
        }
        start += count;
    }
    test_fold
}

/// One class's preprocessed rows, their correct flags and their Gram matrix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassData<'a> {
    pub(crate) gram: &'a Gram,
    pub(crate) z: &'a [f32],
    pub(crate) dim: usize,
    pub(crate) correct: &'a [bool],
}

/// Fits the class-balanced SVM on `rows` (indices into the class's rows), as scikit-learn's libsvm does.
pub(crate) fn fit_binary(data: ClassData<'_>, rows: &[usize], c: f64, config: &SvmConfig) -> LinearSvm {
    solve_binary(data, rows, c, config).0
}

/// [`fit_binary`], with every intercept libsvm could equally have returned where the intercept hangs on rounding
/// (`None` elsewhere; see `smo::Solver::intercept_branches`).
#[cfg(test)]
pub(crate) fn fit_binary_branches(
    data: ClassData<'_>,
    rows: &[usize],
    c: f64,
    config: &SvmConfig,
) -> (LinearSvm, Option<Vec<f64>>) {
    let (svm, solution) = solve_binary(data, rows, c, config);
    (svm, solution.branches)
}

fn solve_binary(data: ClassData<'_>, rows: &[usize], c: f64, config: &SvmConfig) -> (LinearSvm, smo::Solution) {
    Binary::new(data, rows).solve(c, config)
}

/// The class-balanced binary problem over some of a class's rows, ready to solve at any C: libsvm's order of the rows,
/// their labels and class weights, and the problem's kernel-row cache where the class's Gram matrix is not kept whole.
struct Binary<'a> {
    data: ClassData<'a>,
    ordered: Vec<usize>,
    y: Vec<i8>,
    w_incorrect: f64,
    w_correct: f64,
    cache: Option<RowCache<'a>>,
}

impl<'a> Binary<'a> {
    fn new(data: ClassData<'a>, rows: &[usize]) -> Binary<'a> {
        let correct = data.correct;
        let n = rows.len();
        let n_correct = rows.iter().filter(|&&r| correct[r]).count();
        let n_incorrect = n - n_correct;
        // compute_class_weight('balanced'): n / (n_classes * count), then libsvm's C * weight.
        let w_incorrect = n as f64 / (2 * n_incorrect) as f64;
        let w_correct = n as f64 / (2 * n_correct) as f64;
        // svm_group_classes sorts the labels, so label 0 (incorrect) is libsvm's +1 and its rows come first, in data order.
        let ordered: Vec<usize> =
            rows.iter().copied().filter(|&r| !correct[r]).chain(rows.iter().copied().filter(|&r| correct[r])).collect();
        let y = ordered.iter().map(|&r| if correct[r] { -1 } else { 1 }).collect();
        let cache = RowCache::new(data.gram, &ordered);
        Binary { data, ordered, y, w_incorrect, w_correct, cache }
    }

    fn solve(&self, c: f64, config: &SvmConfig) -> (LinearSvm, smo::Solution) {
        let ClassData { gram, z, dim, .. } = self.data;
        let cs: Vec<f64> =
            self.y.iter().map(|&y| if y == 1 { c * self.w_incorrect } else { c * self.w_correct }).collect();
        let problem =
            Problem { gram, cache: self.cache.as_ref(), rows: self.ordered.clone(), y: self.y.clone(), c: cs };
        let solution = smo::solve(&problem, config.tolerance, config.shrinking);
        // scikit-learn flips the binary decision so that it is positive for classes_[1] (correct).
        let mut w = vec![0f64; dim];
        let mut support = 0;
        for (&r, &coef) in self.ordered.iter().zip(&solution.coef) {
            if coef != 0.0 {
                support += 1;
                for (wk, xk) in w.iter_mut().zip(&z[r * dim..(r + 1) * dim]) {
                    *wk -= coef * f64::from(*xk);
                }
            }
        }
        (LinearSvm { w, b: solution.rho, iterations: solution.iterations, support }, solution)
    }
}

/// Predicted "correct" flags of a fitted SVM (libsvm votes for `classes_[1]` unless the internal decision is positive).
pub(crate) fn predict(svm: &LinearSvm, data: ClassData<'_>, rows: &[usize]) -> Vec<bool> {
    rows.iter().map(|&r| svm.decision(&data.z[r * data.dim..(r + 1) * data.dim]) >= 0.0).collect()
}

/// The balanced accuracy of each fold of cross-validation at `c`, `folds[i]` being row `i`'s test fold.
#[cfg(test)]
pub(crate) fn cross_validate(
    data: ClassData<'_>,
    folds: &[usize],
    n_splits: usize,
    c: f64,
    config: &SvmConfig,
) -> Vec<f64> {
    fold_scores(data, folds, n_splits, &[c], config).swap_remove(0)
}

/// The balanced accuracy of each fold at each C of `grid` (`scores[c][fold]`), fold by fold: each fold's problem is
/// prepared once (its kernel-row cache serves every C), and each (fold, C) solve is independent of the others.
fn fold_scores(
    data: ClassData<'_>,
    folds: &[usize],
    n_splits: usize,
    grid: &[f64],
    config: &SvmConfig,
) -> Vec<Vec<f64>> {
    let n = data.correct.len();
    let by_fold: Vec<Vec<f64>> = (0..n_splits)
        .map(|f| {
            let train: Vec<usize> = (0..n).filter(|&i| folds[i] != f).collect();
            let test: Vec<usize> = (0..n).filter(|&i| folds[i] == f).collect();
            let truth: Vec<bool> = test.iter().map(|&i| data.correct[i]).collect();
            let binary = Binary::new(data, &train);
            grid.iter().map(|&c| balanced_accuracy(&predict(&binary.solve(c, config).0, data, &test), &truth)).collect()
        })
        .collect();
    (0..grid.len()).map(|k| by_fold.iter().map(|fold| fold[k]).collect()).collect()
}

/// Why a class cannot be fitted, if it cannot: the reference needs at least `folds` rows of each kind.
pub(crate) fn unfit_reason(correct: &[bool], folds: usize) -> Option<String> {
    let n_correct = correct.iter().filter(|&&c| c).count();
    let n_incorrect = correct.len() - n_correct;
    if correct.is_empty() {
        Some("no rows".into())
    } else if n_incorrect < folds {
        Some(format!(
            "{n_incorrect} misclassified of {} rows: {folds}-fold cross-validation needs at least {folds}",
            correct.len()
        ))
    } else if n_correct < folds {
        Some(format!(
            "{n_correct} correctly classified of {} rows: {folds}-fold cross-validation needs at least {folds}",
            correct.len()
        ))
    } else {
        None
    }
}

/// The paper's protocol for one class on preprocessed rows `z`: C by cross-validated balanced accuracy (strict `>`, so ties keep the smaller C), then a refit on every row.
pub(crate) fn fit_class(class: u16, z: &[f32], dim: usize, correct: &[bool], config: &SvmConfig) -> ClassSvm {
    let _s = tracing::debug_span!("fit_class", class, rows = correct.len()).entered();
    let gram = Gram::with_budget(z, dim, config.kernel_cache_mib.saturating_mul(1 << 20));
    fit_class_on(class, ClassData { gram: &gram, z, dim, correct }, config)
}

/// [`fit_class`] on kernel values already prepared.
pub(crate) fn fit_class_on(class: u16, data: ClassData<'_>, config: &SvmConfig) -> ClassSvm {
    let correct = data.correct;
    let folds = stratified_folds(correct, config.folds);
    let mut best = f64::NEG_INFINITY;
    let mut best_c = config.c_grid[0];
    let mut cv_scores = Vec::with_capacity(config.c_grid.len());
    let by_c = fold_scores(data, &folds, config.folds, &config.c_grid, config);
    for (&c, scores) in config.c_grid.iter().zip(&by_c) {
        let score = scores.iter().sum::<f64>() / scores.len() as f64;
        tracing::trace!(class, c, score, "cross-validated");
        cv_scores.push(score);
        if score > best {
            best = score;
            best_c = c;
        }
    }
    let all: Vec<usize> = (0..correct.len()).collect();
    let svm = fit_binary(data, &all, best_c, config);
    tracing::debug!(class, c = best_c, cv = best, iterations = svm.iterations, "fitted");
    ClassSvm {
        class,
        c: best_c,
        cv_score: best,
        cv_scores,
        rows: correct.len(),
        errors: correct.iter().filter(|&&c| !c).count(),
        svm,
    }
}
