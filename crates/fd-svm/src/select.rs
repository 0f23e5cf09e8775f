//! The pool intervention's selection rules (method spec §4.1): per class, which K images of the extra pool to add to the training set.
//!
//! Each rule is a pure function of plain data: the pool's labels and, depending on the rule, the SVM's decision values, the classifier's
//! true-class confidence, or a seed. Picks are row indices into the pool, class by class, hardest first.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// A rule that picks pool images to add to the training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionRule {
    /// The K lowest SVM decision values of the class (the method).
    Svm,
    /// The K lowest true-class confidences of the class (the baseline).
    Confidence,
    /// K images of the class from one seeded permutation (the other baseline).
    Random,
}

impl SelectionRule {
    /// Every rule, in the order reports list them.
    pub const ALL: [SelectionRule; 3] = [SelectionRule::Svm, SelectionRule::Confidence, SelectionRule::Random];

    /// The rule's name in configs and file names.
    pub fn name(self) -> &'static str {
        match self {
            SelectionRule::Svm => "svm",
            SelectionRule::Confidence => "confidence",
            SelectionRule::Random => "random",
        }
    }
}

/// What the rules choose from: the pool's rows, with their class and the scores the rules rank by.
#[derive(Debug, Clone, Copy)]
pub struct Pool<'a> {
    /// The class of each row.
    pub labels: &'a [u16],
    /// The SVM decision value of each row under its class's SVM (0 for a class without one).
    pub decisions: &'a [f64],
    /// The classifier's softmax probability of the true class of each row.
    pub confidence: &'a [f64],
}

/// The rows `rule` picks: per class in class order, the `k` rows with the lowest decision value, the lowest confidence, or first in
/// a permutation seeded by `seed` and the class (all of a class's rows when it has fewer than `k`). Ties keep pool order, so a class
/// without an SVM (decision value 0 everywhere) falls back to pool order, as upstream does.
pub fn select(pool: &Pool<'_>, classes: usize, rule: SelectionRule, k: usize, seed: u64) -> Vec<usize> {
    let n = pool.labels.len();
    assert!(pool.decisions.len() == n && pool.confidence.len() == n, "the pool's scores and labels differ in length");
    let mut picked = Vec::new();
    for class in 0..classes as u16 {
        let mut rows: Vec<usize> = (0..n).filter(|&i| pool.labels[i] == class).collect();
        match rule {
            SelectionRule::Svm => rows.sort_by(|&a, &b| pool.decisions[a].total_cmp(&pool.decisions[b])),
            SelectionRule::Confidence => rows.sort_by(|&a, &b| pool.confidence[a].total_cmp(&pool.confidence[b])),
            SelectionRule::Random => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ u64::from(class) << 32);
                rows.shuffle(&mut rng);
            }
        }
        picked.extend(rows.iter().take(k));
    }
    picked
}

#[cfg(test)]
mod tests;
