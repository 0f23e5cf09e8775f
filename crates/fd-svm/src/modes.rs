//! Several failure modes per class, where the paper fits one direction.
//!
//! A class can fail in more than one way (dark trucks and trucks seen from above); one linear SVM then points between the
//! modes and ranks neither first. The method, ours:
//!
//! 1. **Cluster the errors.** The class's val rows the classifier got wrong, in the SVM's preprocessed space, are split into
//!    `max_modes` clusters by k-means (k-means++ seeding, the best of `restarts` seeded runs by inertia). A cluster with fewer
//!    than `min_errors` rows joins the nearest other cluster.
//! 2. **One SVM a cluster.** Each cluster's errors against all of the class's correct rows, fitted exactly as the paper's SVM
//!    (class-balanced, C by 2-fold CV on balanced accuracy): a direction towards that cluster's failures and away from the
//!    class's successes. Its decision value ranks every image, as the class's direction does.
//! 3. **Redundant modes merge.** Two modes whose hardest `top_share` of the held-out rows overlap by more than `max_overlap`
//!    rank the same images first: they are one mode, and their clusters are joined and refitted (the most overlapping pair
//!    first, until no pair is redundant). Splitting one mode in two gives two overlapping halves, so a class with one mode
//!    ends with one cluster.
//! 4. **The held-out check decides.** A mode whose hardest held-out images are not significantly worse than the class (the
//!    caller's `keep`, the same exact test as the captions' check) is dropped.
//! 5. With fewer than two modes left, the class has one mode: the paper's SVM, fitted on every row.
//!
//! The held-out rows are only ranked, never labelled, by steps 1-3; only the check (step 4) reads their correctness.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{ClassSvm, LinearSvm, SvmConfig};

/// The `[modes]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeConfig {
    /// The most modes a class can have (1 turns the search off).
    pub max_modes: usize,
    /// The fewest val errors a mode is fitted on.
    pub min_errors: usize,
    /// Two modes whose hardest held-out rows overlap by more than this share are one mode.
    pub max_overlap: f64,
    /// The share of the class's held-out rows that counts as a mode's hardest (at least 5 rows).
    pub top_share: f64,
    /// Seeded k-means runs; the one of least inertia is kept.
    pub restarts: usize,
    /// Seeds k-means.
    pub seed: u64,
}

impl Default for ModeConfig {
    fn default() -> Self {
        ModeConfig { max_modes: 3, min_errors: 10, max_overlap: 0.5, top_share: 0.1, restarts: 4, seed: 0 }
    }
}

impl ModeConfig {
    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        if self.max_modes == 0 || self.min_errors < 2 || self.restarts == 0 {
            return Err(Error::Invalid(format!(
                "modes: max_modes and restarts must be at least 1 and min_errors at least 2, got {}, {} and {}",
                self.max_modes, self.restarts, self.min_errors
            )));
        }
        for (what, v) in [("max_overlap", self.max_overlap), ("top_share", self.top_share)] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(Error::Invalid(format!("modes: {what} must lie in (0, 1], got {v}")));
            }
        }
        Ok(())
    }
}

/// One failure mode: an SVM on the preprocessed rows, positive for "the classifier is right", as the class's direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    /// The SVM.
    pub svm: LinearSvm,
    /// Its C.
    pub c: f64,
    /// Its cross-validated balanced accuracy (its cluster's errors against the class's correct rows).
    pub cv_score: f64,
    /// The val errors it was fitted on.
    pub errors: usize,
}

impl From<&ClassSvm> for Mode {
    fn from(c: &ClassSvm) -> Mode {
        Mode { svm: c.svm.clone(), c: c.c, cv_score: c.cv_score, errors: c.errors }
    }
}

/// The modes of one class and how the search went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassModes {
    /// The class.
    pub class: u16,
    /// Whether the class was split into several modes (otherwise `modes` holds the paper's SVM alone).
    pub split: bool,
    /// The modes, hardest held-out images first (the order the caller's check ranks them in), or the paper's SVM.
    pub modes: Vec<Mode>,
    /// Clusters fitted at the start.
    pub clusters: usize,
    /// Merges of redundant modes.
    pub merged: usize,
    /// Modes dropped by the held-out check.
    pub dropped: usize,
}

/// One class's input: its val rows (preprocessed, `dim` each) and correct flags, its held-out rows (preprocessed), and the
/// paper's SVM of the class.
#[derive(Debug, Clone, Copy)]
pub struct ClassInput<'a> {
    /// The class.
    pub class: u16,
    /// Preprocessed val rows.
    pub rows: &'a [f32],
    /// The embedding dimension.
    pub dim: usize,
    /// Whether the classifier got each val row right.
    pub correct: &'a [bool],
    /// Preprocessed held-out rows of the class (ranked by each mode; the check reads their labels).
    pub held_out: &'a [f32],
    /// The paper's SVM for the class.
    pub whole: &'a ClassSvm,
}

/// Finds the modes of one class. `keep` is the held-out check: given a mode's decision values on the held-out rows (lower is
/// harder), whether its hardest rows are significantly worse than the class, and how much (lower is worse), or `None` when not.
pub fn find_modes(
    input: &ClassInput<'_>,
    config: &ModeConfig,
    svm: &SvmConfig,
    keep: &(dyn Fn(&[f64]) -> Option<f64> + Sync),
) -> ClassModes {
    let ClassInput { class, rows, dim, correct, held_out, whole } = *input;
    let _s = tracing::debug_span!("find_modes", class, rows = correct.len()).entered();
    let single = |clusters, merged, dropped| ClassModes {
        class,
        split: false,
        modes: vec![Mode::from(whole)],
        clusters,
        merged,
        dropped,
    };
    let errors: Vec<usize> = (0..correct.len()).filter(|&i| !correct[i]).collect();
    let right: Vec<usize> = (0..correct.len()).filter(|&i| correct[i]).collect();
    // A mode is fitted with the paper's CV, which needs at least one error in every fold.
    let min_errors = config.min_errors.max(svm.folds);
    let k = config.max_modes.min(errors.len() / min_errors);
    if k < 2 || right.len() < svm.folds || held_out.is_empty() {
        return single(1, 0, 0);
    }
    let error_rows: Vec<f32> = errors.iter().flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied()).collect();
    let assignment = kmeans(&error_rows, dim, k, config.restarts, config.seed ^ u64::from(class));
    let mut clusters: Vec<Vec<usize>> = absorb_small(&error_rows, dim, assignment, k, min_errors)
        .into_iter()
        .map(|members| members.into_iter().map(|m| errors[m]).collect())
        .collect();
    let started = clusters.len();
    let n_held = held_out.len() / dim;
    let top = ((config.top_share * n_held as f64).ceil() as usize).max(5).min(n_held);
    let fit = |cluster: &[usize]| -> (Mode, Vec<usize>) {
        let members: Vec<usize> = cluster.iter().chain(&right).copied().collect();
        let z: Vec<f32> = members.iter().flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied()).collect();
        let flags: Vec<bool> = members.iter().map(|&i| correct[i]).collect();
        let fitted = crate::fit::fit_class(class, &z, dim, &flags, svm);
        let decisions: Vec<f64> = held_out.chunks_exact(dim).map(|r| fitted.svm.decision(r)).collect();
        (Mode::from(&fitted), hardest(&decisions, top))
    };
    let mut fitted: Vec<(Mode, Vec<usize>)> = clusters.iter().map(|c| fit(c)).collect();
    let mut merged = 0;
    while fitted.len() > 1 {
        let mut worst = (0.0, 0, 0);
        for a in 0..fitted.len() {
            for b in a + 1..fitted.len() {
                let o = overlap(&fitted[a].1, &fitted[b].1);
                if o > worst.0 {
                    worst = (o, a, b);
                }
            }
        }
        let (o, a, b) = worst;
        if o <= config.max_overlap {
            break;
        }
        tracing::debug!(class, overlap = o, "modes merged");
        let joined = clusters.remove(b);
        clusters[a].extend(joined);
        clusters[a].sort_unstable();
        fitted.remove(b);
        fitted[a] = fit(&clusters[a]);
        merged += 1;
    }
    if fitted.len() < 2 {
        return single(started, merged, 0);
    }
    let mut kept: Vec<(f64, Mode)> = Vec::new();
    let mut dropped = 0;
    for (mode, _) in fitted {
        let z_held: Vec<f64> = held_out.chunks_exact(dim).map(|r| mode.svm.decision(r)).collect();
        match keep(&z_held) {
            Some(strength) => kept.push((strength, mode)),
            None => dropped += 1,
        }
    }
    if kept.len() < 2 {
        return single(started, merged, dropped);
    }
    kept.sort_by(|a, b| a.0.total_cmp(&b.0));
    ClassModes {
        class,
        split: true,
        modes: kept.into_iter().map(|(_, m)| m).collect(),
        clusters: started,
        merged,
        dropped,
    }
}

/// Rows of several classes for [`find_all_modes`]: raw embeddings (`dim` each), their classes and, for val, the correct flags.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// Raw embeddings.
    pub rows: &'a [f32],
    /// The class of each row.
    pub labels: &'a [u16],
}

/// The modes of every class with an SVM (classes without one are left out), on up to `threads` threads: `val` with its correct
/// flags as the SVMs were fitted on, `held_out` ranked by each mode and judged by `keep(class, decision values)`.
pub fn find_all_modes(
    directions: &crate::Directions,
    val: Rows<'_>,
    correct: &[bool],
    held_out: Rows<'_>,
    config: &ModeConfig,
    threads: usize,
    keep: &(dyn Fn(u16, &[f64]) -> Option<f64> + Sync),
) -> Result<Vec<ClassModes>> {
    let dim = directions.preprocessing.dim();
    for (what, r) in [("val", &val), ("held-out", &held_out)] {
        if r.rows.len() != r.labels.len() * dim {
            return Err(Error::Invalid(format!(
                "modes: {} {what} values are not {} rows of {dim}",
                r.rows.len(),
                r.labels.len()
            )));
        }
        crate::error::check_finite("embeddings", r.rows, dim)?;
    }
    if correct.len() != val.labels.len() {
        return Err(Error::Invalid(format!(
            "modes: {} correct flags for {} val rows",
            correct.len(),
            val.labels.len()
        )));
    }
    let (z_val, z_held) = (directions.preprocessing.apply(val.rows), directions.preprocessing.apply(held_out.rows));
    let gather = |z: &[f32], rows: &[usize]| -> Vec<f32> {
        rows.iter().flat_map(|&i| z[i * dim..(i + 1) * dim].iter().copied()).collect()
    };
    // Per class: the paper's SVM, the val rows, their flags, the held-out rows.
    type Job<'a> = (&'a ClassSvm, Vec<f32>, Vec<bool>, Vec<f32>);
    let jobs: Vec<Job<'_>> = (0..directions.classes.len() as u16)
        .filter_map(|class| {
            let whole = directions.class(class)?;
            let members: Vec<usize> = (0..val.labels.len()).filter(|&i| val.labels[i] == class).collect();
            let held: Vec<usize> = (0..held_out.labels.len()).filter(|&i| held_out.labels[i] == class).collect();
            Some((
                whole,
                gather(&z_val, &members),
                members.iter().map(|&i| correct[i]).collect(),
                gather(&z_held, &held),
            ))
        })
        .collect();
    Ok(crate::par_map(&jobs, threads, |(whole, rows, flags, held)| {
        let input = ClassInput { class: whole.class, rows, dim, correct: flags, held_out: held, whole };
        find_modes(&input, config, &directions.config, &|d| keep(whole.class, d))
    }))
}

/// The `top` rows of lowest decision value, sorted by row (ties keep row order).
fn hardest(decisions: &[f64], top: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..decisions.len()).collect();
    order.sort_by(|&a, &b| decisions[a].total_cmp(&decisions[b]));
    let mut out = order[..top.min(order.len())].to_vec();
    out.sort_unstable();
    out
}

/// The share of `a` (sorted) also in `b` (sorted, the same length).
fn overlap(a: &[usize], b: &[usize]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / a.len().max(1) as f64
}

/// The members of each cluster after clusters smaller than `min` join the cluster whose centroid is nearest theirs (smallest
/// first); empty clusters vanish.
fn absorb_small(rows: &[f32], dim: usize, assignment: Vec<usize>, k: usize, min: usize) -> Vec<Vec<usize>> {
    let mut clusters: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &c) in assignment.iter().enumerate() {
        clusters[c].push(i);
    }
    clusters.retain(|c| !c.is_empty());
    while clusters.len() > 1 {
        let Some((small, _)) = clusters.iter().enumerate().filter(|(_, c)| c.len() < min).min_by_key(|(_, c)| c.len())
        else {
            break;
        };
        let centroid = |members: &[usize]| centroid(rows, dim, members);
        let from = centroid(&clusters[small]);
        let nearest = (0..clusters.len())
            .filter(|&c| c != small)
            .min_by(|&a, &b| {
                distance(&from, &centroid(&clusters[a])).total_cmp(&distance(&from, &centroid(&clusters[b])))
            })
            .expect("at least two clusters");
        let moved = clusters.remove(small);
        let target = if nearest > small { nearest - 1 } else { nearest };
        clusters[target].extend(moved);
        clusters[target].sort_unstable();
    }
    clusters
}

fn centroid(rows: &[f32], dim: usize, members: &[usize]) -> Vec<f64> {
    let mut c = vec![0f64; dim];
    for &m in members {
        for (s, &x) in c.iter_mut().zip(&rows[m * dim..(m + 1) * dim]) {
            *s += f64::from(x);
        }
    }
    c.iter_mut().for_each(|s| *s /= members.len().max(1) as f64);
    c
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn row_distance(row: &[f32], c: &[f64]) -> f64 {
    row.iter().zip(c).map(|(&x, y)| (f64::from(x) - y) * (f64::from(x) - y)).sum()
}

/// k-means (Lloyd's iterations from k-means++ seeding), the best of `restarts` seeded runs by inertia: each row's cluster.
pub fn kmeans(rows: &[f32], dim: usize, k: usize, restarts: usize, seed: u64) -> Vec<usize> {
    let n = rows.len() / dim;
    assert!(k >= 1 && n >= k, "k-means needs at least k = {k} rows, got {n}");
    let mut best: Option<(f64, Vec<usize>)> = None;
    for restart in 0..restarts.max(1) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ restart as u64);
        let row = |i: usize| &rows[i * dim..(i + 1) * dim];
        // k-means++: the first centre uniformly, each next with probability proportional to the squared distance.
        let mut centres: Vec<Vec<f64>> = vec![row(rng.random_range(0..n)).iter().map(|&x| f64::from(x)).collect()];
        let mut d2: Vec<f64> = (0..n).map(|i| row_distance(row(i), &centres[0])).collect();
        while centres.len() < k {
            let total: f64 = d2.iter().sum();
            let pick = if total > 0.0 {
                let mut t = rng.random::<f64>() * total;
                (0..n)
                    .find(|&i| {
                        t -= d2[i];
                        d2[i] > 0.0 && t <= 0.0
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n)
            };
            centres.push(row(pick).iter().map(|&x| f64::from(x)).collect());
            let last = centres.last().expect("just pushed");
            for (i, d) in d2.iter_mut().enumerate() {
                *d = d.min(row_distance(row(i), last));
            }
        }
        let mut assignment = vec![usize::MAX; n];
        for _ in 0..100 {
            let mut changed = false;
            for (i, a) in assignment.iter_mut().enumerate() {
                let nearest = (0..k)
                    .min_by(|&x, &y| row_distance(row(i), &centres[x]).total_cmp(&row_distance(row(i), &centres[y])))
                    .expect("k >= 1");
                changed |= *a != nearest;
                *a = nearest;
            }
            if !changed {
                break;
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<usize> = (0..n).filter(|&i| assignment[i] == c).collect();
                if !members.is_empty() {
                    *centre = centroid(rows, dim, &members);
                }
            }
        }
        // The centres may have moved after the last assignment (when the iterations ran out): assign once more.
        for (i, a) in assignment.iter_mut().enumerate() {
            *a = (0..k)
                .min_by(|&x, &y| row_distance(row(i), &centres[x]).total_cmp(&row_distance(row(i), &centres[y])))
                .expect("k >= 1");
        }
        let inertia: f64 = (0..n).map(|i| row_distance(row(i), &centres[assignment[i]])).sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, assignment));
        }
    }
    best.expect("at least one run").1
}

#[cfg(test)]
mod tests;
