//! The pool intervention's selection rules (method spec §4.1): per class, which K images of the extra pool to add to the training set.
//!
//! Each rule is a pure function of plain data: the pool's labels and, depending on the rule, the SVM's decision values, the
//! failure modes' decision values, the classifier's true-class confidence or its predicted distribution (margin, entropy), the
//! embeddings (coreset), or a seed. Picks are row indices into the pool, class by class, hardest first.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A rule that picks pool images to add to the training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionRule {
    /// No image: the control, retrained as the others are with nothing added.
    #[serde(rename = "none")]
    Nothing,
    /// The K lowest SVM decision values of the class (the method).
    Svm,
    /// The K lowest true-class confidences of the class (the paper's baseline).
    Confidence,
    /// K images of the class from one seeded permutation (the other baseline).
    Random,
    /// Margin sampling: the K smallest gaps between the classifier's two most probable classes.
    Margin,
    /// Entropy sampling: the K largest entropies of the classifier's predicted distribution.
    Entropy,
    /// The k-center greedy coreset (Sener and Savarese, ICLR 2018) in the embedding space: K times, the class's pool image
    /// farthest from the class's labelled images and the images already picked.
    Coreset,
    /// The budget split across the class's failure modes (fd-svm's `modes`): in turn, each mode's lowest decision value not
    /// yet picked, hardest mode first. A class with one mode gets the paper's SVM's picks.
    Modes,
}

impl SelectionRule {
    /// Every rule, in the order reports list them.
    pub const ALL: [SelectionRule; 8] = [
        SelectionRule::Nothing,
        SelectionRule::Svm,
        SelectionRule::Confidence,
        SelectionRule::Random,
        SelectionRule::Margin,
        SelectionRule::Entropy,
        SelectionRule::Coreset,
        SelectionRule::Modes,
    ];

    /// The paper's three rules.
    pub const PAPER: [SelectionRule; 3] = [SelectionRule::Svm, SelectionRule::Confidence, SelectionRule::Random];

    /// The rule's name in configs and file names.
    pub fn name(self) -> &'static str {
        match self {
            SelectionRule::Nothing => "none",
            SelectionRule::Svm => "svm",
            SelectionRule::Confidence => "confidence",
            SelectionRule::Random => "random",
            SelectionRule::Margin => "margin",
            SelectionRule::Entropy => "entropy",
            SelectionRule::Coreset => "coreset",
            SelectionRule::Modes => "modes",
        }
    }

    /// Whether the rule's picks depend on the seed.
    pub fn seeded(self) -> bool {
        self == SelectionRule::Random
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
    /// The classifier's softmax probabilities, one row of `classes` per pool row (margin and entropy); empty when not given.
    pub probabilities: &'a [f64],
    /// The embedding space (coreset); `None` when not given.
    pub space: Option<Space<'a>>,
    /// Per row, its decision value under each failure mode of its class, hardest mode first (the modes rule; rows of one
    /// class have as many values as the class has modes, none for a class without an SVM); empty when not given.
    pub modes: &'a [Vec<f64>],
}

/// The embedding space the coreset works in: the pool's rows and the labelled (train) rows it starts from.
#[derive(Debug, Clone, Copy)]
pub struct Space<'a> {
    /// The embedding dimension.
    pub dim: usize,
    /// The pool's embeddings, `dim` values a row, in pool order.
    pub pool: &'a [f32],
    /// The labelled set's embeddings, `dim` values a row.
    pub labelled: &'a [f32],
    /// The class of each labelled row.
    pub labelled_labels: &'a [u16],
}

/// The rows `rule` picks (none for [`SelectionRule::Nothing`]): per class in class order, the `k` rows with the lowest
/// decision value, the lowest confidence, the smallest margin, the largest entropy, first in a permutation seeded by `seed`
/// and the class, in the coreset's order, or the modes' turns (all of a class's rows when it has fewer than `k`). Ties keep pool order, so a class without an SVM (decision value 0
/// everywhere) falls back to pool order, as upstream does. A rule whose scores the pool lacks (probabilities, the space) is
/// an error.
pub fn select(pool: &Pool<'_>, classes: usize, rule: SelectionRule, k: usize, seed: u64) -> Result<Vec<usize>> {
    let n = pool.labels.len();
    if pool.decisions.len() != n || pool.confidence.len() != n {
        return Err(Error::Invalid(format!(
            "the pool has {n} labels but {} decision values and {} confidences",
            pool.decisions.len(),
            pool.confidence.len()
        )));
    }
    let scores = match rule {
        SelectionRule::Margin | SelectionRule::Entropy => {
            if classes == 0 || pool.probabilities.len() != n * classes {
                return Err(Error::Invalid(format!(
                    "the {} rule needs the classifier's probabilities, {n} rows of {classes}; the pool has {} values",
                    rule.name(),
                    pool.probabilities.len()
                )));
            }
            if let Some(k) = pool.probabilities.iter().position(|p| !p.is_finite()) {
                return Err(Error::Invalid(format!(
                    "the {} rule: the probability of row {}, class {} is {} (probabilities must be finite)",
                    rule.name(),
                    k / classes,
                    k % classes,
                    pool.probabilities[k]
                )));
            }
            match rule {
                SelectionRule::Margin => margins(pool.probabilities, classes),
                _ => entropies(pool.probabilities, classes).into_iter().map(|e| -e).collect(),
            }
        }
        SelectionRule::Svm => pool.decisions.to_vec(),
        SelectionRule::Confidence => pool.confidence.to_vec(),
        SelectionRule::Nothing => return Ok(Vec::new()),
        SelectionRule::Random | SelectionRule::Coreset => Vec::new(),
        SelectionRule::Modes => {
            check_modes(pool.labels, pool.modes)?;
            Vec::new()
        }
    };
    let space = match (rule, pool.space) {
        (SelectionRule::Coreset, None) => {
            return Err(Error::Invalid("the coreset rule needs the pool's and the train split's embeddings".into()));
        }
        (SelectionRule::Coreset, Some(space)) => {
            check_space(&space, n)?;
            Some(space)
        }
        _ => None,
    };
    let mut picked = Vec::new();
    for class in 0..classes as u16 {
        let mut rows: Vec<usize> = (0..n).filter(|&i| pool.labels[i] == class).collect();
        match (rule, space) {
            (SelectionRule::Random, _) => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ u64::from(class) << 32);
                rows.shuffle(&mut rng);
            }
            (SelectionRule::Coreset, Some(space)) => {
                let dim = space.dim;
                let gather = |set: &[f32], which: &mut dyn Iterator<Item = usize>| -> Vec<f32> {
                    which.flat_map(|i| set[i * dim..(i + 1) * dim].iter().copied()).collect()
                };
                let candidates = gather(space.pool, &mut rows.iter().copied());
                let centers = gather(
                    space.labelled,
                    &mut (0..space.labelled_labels.len()).filter(|&i| space.labelled_labels[i] == class),
                );
                rows = k_center_greedy(&candidates, &centers, dim, k).into_iter().map(|j| rows[j]).collect();
            }
            (SelectionRule::Modes, _) => {
                let count = rows.first().map_or(0, |&i| pool.modes[i].len());
                let orders: Vec<Vec<usize>> = (0..count)
                    .map(|m| {
                        let mut order = rows.clone();
                        order.sort_by(|&a, &b| pool.modes[a][m].total_cmp(&pool.modes[b][m]));
                        order
                    })
                    .collect();
                // A class without an SVM has no mode: pool order, as the SVM rule gives it.
                if !orders.is_empty() {
                    rows = take_in_turns(&orders, k);
                }
            }
            _ => rows.sort_by(|&a, &b| scores[a].total_cmp(&scores[b])),
        }
        picked.extend(rows.iter().take(k));
    }
    Ok(picked)
}

/// Checks the modes' decision values: one entry per row, as many values for every row of a class, all finite.
fn check_modes(labels: &[u16], modes: &[Vec<f64>]) -> Result<()> {
    if modes.len() != labels.len() {
        return Err(Error::Invalid(format!(
            "the modes rule needs each pool row's decision values under its class's modes: {} rows, {} entries",
            labels.len(),
            modes.len()
        )));
    }
    let mut counts = std::collections::BTreeMap::new();
    for (i, (values, &class)) in modes.iter().zip(labels).enumerate() {
        if *counts.entry(class).or_insert(values.len()) != values.len() {
            return Err(Error::Invalid(format!(
                "the modes rule: row {i} of class {class} has {} modes, an earlier row of the class {}",
                values.len(),
                counts[&class]
            )));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("the modes rule: row {i}'s decision value is {v} (must be finite)")));
        }
    }
    Ok(())
}

/// Up to `k` distinct items taken from `orders` in turns: the first order's first item not yet taken, then the second
/// order's, and so on round the orders again, so the budget is split evenly across them (the earlier orders take the
/// remainder); an order that runs out is passed over.
pub fn take_in_turns(orders: &[Vec<usize>], k: usize) -> Vec<usize> {
    let mut taken = std::collections::HashSet::new();
    let mut picked = Vec::with_capacity(k);
    let mut next = vec![0; orders.len()];
    while picked.len() < k {
        let mut moved = false;
        for (order, at) in orders.iter().zip(&mut next) {
            if picked.len() == k {
                break;
            }
            while *at < order.len() && taken.contains(&order[*at]) {
                *at += 1;
            }
            if let Some(&item) = order.get(*at) {
                taken.insert(item);
                picked.push(item);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    picked
}

/// Checks the coreset's space against a pool of `n` rows.
fn check_space(space: &Space<'_>, n: usize) -> Result<()> {
    let dim = space.dim;
    if dim == 0 || space.pool.len() != n * dim || space.labelled.len() != space.labelled_labels.len() * dim {
        return Err(Error::Invalid(format!(
            "the coreset's space: {} pool values for {n} rows and {} labelled values for {} rows of dimension {dim}",
            space.pool.len(),
            space.labelled.len(),
            space.labelled_labels.len()
        )));
    }
    crate::check_finite("the pool's embeddings", space.pool, dim)?;
    crate::check_finite("the labelled embeddings", space.labelled, dim)
}

/// Per row of `probabilities` (`classes` values a row), the gap between its two largest values (1 with one class).
pub fn margins(probabilities: &[f64], classes: usize) -> Vec<f64> {
    probabilities
        .chunks_exact(classes)
        .map(|row| {
            let (mut first, mut second) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for &p in row {
                if p > first {
                    (first, second) = (p, first);
                } else if p > second {
                    second = p;
                }
            }
            if second.is_finite() { first - second } else { 1.0 }
        })
        .collect()
}

/// Per row of `probabilities` (`classes` values a row), its entropy in nats, `-Σ p ln p` (0 ln 0 = 0).
pub fn entropies(probabilities: &[f64], classes: usize) -> Vec<f64> {
    probabilities
        .chunks_exact(classes)
        .map(|row| -row.iter().filter(|&&p| p > 0.0).map(|&p| p * p.ln()).sum::<f64>())
        .collect()
}

/// The k-center greedy coreset: up to `k` indices into `candidates` (`dim` values a row), each in turn the candidate
/// farthest (Euclidean) from `centers` and the candidates already picked; ties go to the earlier candidate. Without centers
/// the first pick is the candidate farthest from the candidates' mean.
pub fn k_center_greedy(candidates: &[f32], centers: &[f32], dim: usize, k: usize) -> Vec<usize> {
    let n = candidates.len() / dim.max(1);
    let row = |set: &[f32], i: usize| -> Vec<f32> { set[i * dim..(i + 1) * dim].to_vec() };
    let distance = |a: &[f32], b: &[f32]| -> f64 {
        // Eight lanes, so the loop vectorises; the rest one by one.
        let mut lanes = [0f32; 8];
        for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            for l in 0..8 {
                lanes[l] += (x[l] - y[l]) * (x[l] - y[l]);
            }
        }
        let tail = a.len() - a.len() % 8;
        let rest: f32 = a[tail..].iter().zip(&b[tail..]).map(|(x, y)| (x - y) * (x - y)).sum();
        f64::from(lanes.iter().sum::<f32>() + rest)
    };
    let mut nearest = vec![f64::INFINITY; n];
    let seen = |nearest: &mut [f64], center: &[f32]| {
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(distance(&candidates[i * dim..(i + 1) * dim], center));
        }
    };
    for c in 0..centers.len() / dim.max(1) {
        seen(&mut nearest, &row(centers, c));
    }
    if centers.is_empty() && n > 0 {
        let mut mean = vec![0f32; dim];
        for i in 0..n {
            mean.iter_mut().zip(&candidates[i * dim..(i + 1) * dim]).for_each(|(m, v)| *m += v / n as f32);
        }
        seen(&mut nearest, &mean);
    }
    let (mut picked, mut taken) = (Vec::with_capacity(k.min(n)), vec![false; n]);
    while picked.len() < k.min(n) {
        let best = (0..n)
            .filter(|&i| !taken[i])
            .fold(None, |best: Option<usize>, i| match best {
                Some(b) if nearest[b] >= nearest[i] => Some(b),
                _ => Some(i),
            })
            .expect("a candidate is left");
        picked.push(best);
        taken[best] = true;
        let center = row(candidates, best);
        seen(&mut nearest, &center);
    }
    picked
}

#[cfg(test)]
mod tests;
