//! The metrics later stages report: accuracy, balanced accuracy, confusion counts, precision and recall of a flagged set, top-K group fractions, AUROC.

use serde::{Deserialize, Serialize};

/// The fraction of `predicted` equal to `truth`.
pub fn accuracy(predicted: &[bool], truth: &[bool]) -> f64 {
    assert_eq!(predicted.len(), truth.len(), "predictions and truth differ in length");
    if truth.is_empty() {
        return f64::NAN;
    }
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

/// scikit-learn's `balanced_accuracy_score`: the mean recall over the labels present in `truth`.
pub fn balanced_accuracy(predicted: &[bool], truth: &[bool]) -> f64 {
    assert_eq!(predicted.len(), truth.len(), "predictions and truth differ in length");
    let recalls: Vec<f64> = [false, true]
        .iter()
        .filter_map(|&label| {
            let total = truth.iter().filter(|&&t| t == label).count();
            let hit = truth.iter().zip(predicted).filter(|&(&t, &p)| t == label && p == label).count();
            (total > 0).then(|| hit as f64 / total as f64)
        })
        .collect();
    if recalls.is_empty() { f64::NAN } else { recalls.iter().sum::<f64>() / recalls.len() as f64 }
}

/// The paper's confusion counts of an SVM's flags against the classifier's mistakes: `[[error flagged, error passed], [right flagged, right passed]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Misclassified images the SVM flags.
    pub error_flagged: usize,
    /// Misclassified images the SVM passes.
    pub error_passed: usize,
    /// Correctly classified images the SVM flags.
    pub right_flagged: usize,
    /// Correctly classified images the SVM passes.
    pub right_passed: usize,
}

/// Confusion counts of `predicted_correct` (the SVM) against `correct` (the classifier).
pub fn confusion(predicted_correct: &[bool], correct: &[bool]) -> Confusion {
    assert_eq!(predicted_correct.len(), correct.len(), "predictions and truth differ in length");
    let mut c = Confusion { error_flagged: 0, error_passed: 0, right_flagged: 0, right_passed: 0 };
    for (&p, &t) in predicted_correct.iter().zip(correct) {
        match (t, p) {
            (false, false) => c.error_flagged += 1,
            (false, true) => c.error_passed += 1,
            (true, false) => c.right_flagged += 1,
            (true, true) => c.right_passed += 1,
        }
    }
    c
}

/// Precision and recall of a `flagged` set against membership of a `group` (for example a planted subpopulation).
pub fn precision_recall(flagged: &[bool], group: &[bool]) -> (f64, f64) {
    assert_eq!(flagged.len(), group.len(), "flags and groups differ in length");
    let tp = flagged.iter().zip(group).filter(|&(&f, &g)| f && g).count() as f64;
    let flagged_n = flagged.iter().filter(|&&f| f).count() as f64;
    let group_n = group.iter().filter(|&&g| g).count() as f64;
    (tp / flagged_n, tp / group_n)
}

/// The fraction of the first `k` of `order` (indices, hardest first) that are in `group`.
pub fn fraction_in_top_k(order: &[usize], group: &[bool], k: usize) -> f64 {
    let top = &order[..k.min(order.len())];
    if top.is_empty() {
        return f64::NAN;
    }
    top.iter().filter(|&&i| group[i]).count() as f64 / top.len() as f64
}

/// The area under the ROC curve of `scores` for `positive` (higher scores should mean positive), with ties counted half, as scikit-learn's `roc_auc_score`.
pub fn auroc(scores: &[f64], positive: &[bool]) -> f64 {
    assert_eq!(scores.len(), positive.len(), "scores and labels differ in length");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| positive[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// How well one ranking (low score = hard) recovers a planted group, class by class, averaged over the classes with planted rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Per top-K size reached by at least one class: the mean fraction of the group among each class's K lowest scores.
    pub curve: Vec<TopKFraction>,
    /// The mean per-class AUROC of the negated score for group membership (`None` where no class has both kinds of row).
    pub auroc: Option<f64>,
}

/// One point of a [`Recovery`] curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopKFraction {
    /// K.
    pub k: usize,
    /// The mean fraction of the planted group among the K hardest, over the classes with at least K rows.
    pub fraction: f64,
}

impl Recovery {
    /// The curve's value at `k`, if some class reached it.
    pub fn at(&self, k: usize) -> Option<f64> {
        self.curve.iter().find(|p| p.k == k).map(|p| p.fraction)
    }
}

/// The classes that have rows of the planted group (only they count in the planted figures), and the group's mean share of them.
pub fn planted_classes(labels: &[u16], in_group: &[bool], classes: usize) -> (Vec<u16>, Option<f64>) {
    assert_eq!(labels.len(), in_group.len(), "labels and group flags differ in length");
    let with: Vec<u16> =
        (0..classes as u16).filter(|&c| (0..labels.len()).any(|i| labels[i] == c && in_group[i])).collect();
    let rates = with.iter().map(|&c| {
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        rows.iter().filter(|&&i| in_group[i]).count() as f64 / rows.len() as f64
    });
    (with.clone(), finite_mean(rates))
}

/// How well `scores` (low = hard) recover the rows flagged `in_group` within each class of `classes`: the mean fraction of the
/// group among each class's K lowest scores for every K of `top_k` (a class counts at K when it has at least K rows), and the mean
/// per-class AUROC of `-score` (NaN AUROCs of classes with one kind of row left out).
pub fn planted_recovery(
    scores: &[f64],
    labels: &[u16],
    in_group: &[bool],
    classes: &[u16],
    top_k: &[usize],
) -> Recovery {
    assert!(
        scores.len() == labels.len() && labels.len() == in_group.len(),
        "scores, labels and flags differ in length"
    );
    let mut fractions = vec![Vec::new(); top_k.len()];
    let mut aurocs = Vec::new();
    for &class in classes {
        let order = crate::rank_within_class(scores, labels, class);
        for (j, &k) in top_k.iter().enumerate() {
            if k <= order.len() {
                fractions[j].push(fraction_in_top_k(&order, in_group, k));
            }
        }
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        let group: Vec<bool> = rows.iter().map(|&i| in_group[i]).collect();
        aurocs.push(auroc(&rows.iter().map(|&i| -scores[i]).collect::<Vec<_>>(), &group));
    }
    let curve = top_k
        .iter()
        .zip(&fractions)
        .filter_map(|(&k, f)| Some(TopKFraction { k, fraction: finite_mean(f.iter().copied())? }))
        .collect();
    Recovery { curve, auroc: finite_mean(aurocs) }
}

/// The mean of the finite values, `None` when there are none.
pub fn finite_mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}
