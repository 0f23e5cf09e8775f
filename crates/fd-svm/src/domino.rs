//! A Domino-style error-aware mixture model, the peer method of the discovery benchmark (Eyuboglu et al., "Domino:
//! Discovering Systematic Errors with Cross-Modal Embeddings", ICLR 2022, §4), written from the paper.
//!
//! Domino models an image's embedding `Z`, its label `Y` and the model's prediction `Ŷ` as a mixture over slices `S`:
//!
//! ```text
//! P(Z = z, Y = y, Ŷ = ŷ) = Σ_s P(S = s) · P(Z = z | S = s) · P(Y = y | S = s) · P(Ŷ = ŷ | S = s)
//! Z | S = s ~ N(μ_s, Σ_s)  (diagonal Σ_s),   Y | S = s ~ Cat(p_s),   Ŷ | S = s ~ Cat(p̂_s)  (ŷ a vector of probabilities)
//! ```
//!
//! fitted by expectation-maximisation with the label and prediction log-likelihoods weighted by γ (the paper's
//! hyperparameter balancing them against the embedding's), on embeddings reduced by PCA, from an initialisation that puts
//! components in the cells of the confusion matrix. Slices are the components with the largest gap between label and
//! prediction; an image's score for a slice is its posterior `P(S = s | z, y, ŷ)`.
//!
//! Here, as everything else in the benchmark, it runs per class, where `Y` is constant, so its term drops out; `Ŷ` is the
//! predicted probability of the class (a two-cell categorical), and the confusion cells are "right" and "wrong". PCA is the
//! top-`pca` subspace of the class's centred rows, approximated by eight rounds of subspace iteration, then rotated to
//! diagonalise the covariance within it (scikit-learn's PCA computes it exactly). Defaults follow Domino's: γ = 10, 100 EM iterations; fewer components (8, not 25) and slices (3,
//! not 5), since a class here has about a thousand val rows where Domino models a whole dataset.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite};

/// The mixture's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DominoConfig {
    /// Mixture components.
    pub components: usize,
    /// Components returned as slices (those with the largest gap between label and prediction).
    pub slices: usize,
    /// PCA dimensions the embeddings are reduced to.
    pub pca: usize,
    /// γ: the weight of the prediction's log-likelihood.
    pub prediction_weight: f64,
    /// EM iterations at most.
    pub max_iter: usize,
    /// EM stops when the mean log-likelihood gains less than this.
    pub tolerance: f64,
    /// Added to every variance (scikit-learn's `reg_covar`).
    pub reg_covar: f64,
    /// Seeds the initialisation and the PCA.
    pub seed: u64,
}

impl Default for DominoConfig {
    fn default() -> Self {
        DominoConfig {
            components: 8,
            slices: 3,
            pca: 64,
            prediction_weight: 10.0,
            max_iter: 100,
            tolerance: 1e-4,
            reg_covar: 1e-6,
            seed: 0,
        }
    }
}

/// A fitted mixture for one class.
#[derive(Debug, Clone, PartialEq)]
pub struct Domino {
    mean: Vec<f64>,
    /// `dim × pca`, column-major by component: the PCA axes.
    axes: Vec<Vec<f64>>,
    log_weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    variances: Vec<Vec<f64>>,
    /// P(prediction right | s): the component's mean predicted probability of the class.
    right: Vec<f64>,
    /// The slices: components by decreasing gap between label and prediction.
    pub slices: Vec<usize>,
    weight: f64,
}

impl Domino {
    /// Fits the mixture on one class's rows (`dim` each) with the classifier's predicted probability of the class and whether it
    /// was right, for each.
    pub fn fit(
        rows: &[f32],
        dim: usize,
        probability: &[f64],
        correct: &[bool],
        config: &DominoConfig,
    ) -> Result<Domino> {
        let n = probability.len();
        if correct.len() != n {
            return Err(Error::Invalid(format!("domino: {} correct flags for {n} rows", correct.len())));
        }
        if dim == 0 || rows.len() != n * dim {
            return Err(Error::Invalid(format!("domino: {} values are not {n} rows of {dim}", rows.len())));
        }
        check_finite("embeddings", rows, dim)?;
        if probability.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(Error::Invalid("domino: predicted probabilities must lie in [0, 1]".into()));
        }
        if n < 2 * config.components.max(1) || config.components < 2 || config.slices == 0 {
            return Err(Error::Invalid(format!(
                "domino: {n} rows cannot fit {} components (at least two rows a component, two components, one slice)",
                config.components
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let (mean, axes) = pca(rows, dim, config.pca.min(n - 1).min(dim), &mut rng);
        let x = project(rows, dim, &mean, &axes);
        let p = axes.len();
        let k = config.components;
        // The confusion initialisation: the wrong rows spread over the first half of the components, the right rows over the
        // rest, each at random.
        let wrong_components = (k / 2).max(1);
        let mut resp = vec![vec![0f64; k]; n];
        for (i, r) in resp.iter_mut().enumerate() {
            let (lo, hi) = if correct[i] { (wrong_components, k) } else { (0, wrong_components) };
            r[rand::Rng::random_range(&mut rng, lo..hi)] = 1.0;
        }
        let mut model = Domino {
            mean,
            axes,
            log_weights: vec![0.0; k],
            means: vec![vec![0.0; p]; k],
            variances: vec![vec![1.0; p]; k],
            right: vec![0.5; k],
            slices: Vec::new(),
            weight: config.prediction_weight,
        };
        let mut last = f64::NEG_INFINITY;
        for iteration in 0..config.max_iter.max(1) {
            model.maximise(&x, probability, &resp, config.reg_covar);
            let mut total = 0.0;
            for (i, r) in resp.iter_mut().enumerate() {
                let (log_norm, post) = model.posterior(&x[i * p..(i + 1) * p], probability[i]);
                total += log_norm;
                *r = post;
            }
            let mean_ll = total / n as f64;
            if (mean_ll - last).abs() < config.tolerance {
                tracing::debug!(iteration, mean_ll, "domino converged");
                break;
            }
            last = mean_ll;
        }
        // Slices: the components whose prediction is furthest from the label (here always "right": the gap is 1 - P(right)),
        // among those that hold any rows.
        let mass: Vec<f64> = (0..k).map(|s| resp.iter().map(|r| r[s]).sum()).collect();
        let mut order: Vec<usize> = (0..k).filter(|&s| mass[s] >= 1.0).collect();
        order.sort_by(|&a, &b| model.right[a].total_cmp(&model.right[b]));
        order.truncate(config.slices);
        model.slices = order;
        Ok(model)
    }

    /// The M-step: weights, means, diagonal variances and the prediction's Bernoulli parameter from the responsibilities.
    fn maximise(&mut self, x: &[f64], probability: &[f64], resp: &[Vec<f64>], reg: f64) {
        let p = self.means[0].len();
        let n = resp.len();
        for s in 0..self.means.len() {
            let mass: f64 = resp.iter().map(|r| r[s]).sum::<f64>() + 10.0 * f64::EPSILON;
            self.log_weights[s] = (mass / n as f64).ln();
            let mut mu = vec![0f64; p];
            let mut right = 0.0;
            for (i, r) in resp.iter().enumerate() {
                for (m, v) in mu.iter_mut().zip(&x[i * p..(i + 1) * p]) {
                    *m += r[s] * v;
                }
                right += r[s] * probability[i];
            }
            mu.iter_mut().for_each(|m| *m /= mass);
            let mut var = vec![0f64; p];
            for (i, r) in resp.iter().enumerate() {
                for ((v, m), xv) in var.iter_mut().zip(&mu).zip(&x[i * p..(i + 1) * p]) {
                    *v += r[s] * (xv - m) * (xv - m);
                }
            }
            var.iter_mut().for_each(|v| *v = *v / mass + reg);
            self.means[s] = mu;
            self.variances[s] = var;
            self.right[s] = (right / mass).clamp(1e-6, 1.0 - 1e-6);
        }
    }

    /// The E-step for one reduced row: its log-likelihood and its posterior over the components.
    fn posterior(&self, x: &[f64], probability: f64) -> (f64, Vec<f64>) {
        let log: Vec<f64> = (0..self.means.len())
            .map(|s| {
                let gauss: f64 = x
                    .iter()
                    .zip(&self.means[s])
                    .zip(&self.variances[s])
                    .map(|((v, m), var)| -0.5 * ((v - m) * (v - m) / var + var.ln() + std::f64::consts::TAU.ln()))
                    .sum();
                let q = self.right[s];
                let prediction = probability * q.ln() + (1.0 - probability) * (1.0 - q).ln();
                self.log_weights[s] + gauss + self.weight * prediction
            })
            .collect();
        let top = log.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = log.iter().map(|l| (l - top).exp()).sum();
        let norm = top + sum.ln();
        (norm, log.iter().map(|l| (l - norm).exp()).collect())
    }

    /// Each slice's score of every row (`dim` each, the fit's space) with its predicted probability of the class: the posterior
    /// of the slice's component, one vector a slice, in the order of [`Domino::slices`].
    pub fn slice_scores(&self, rows: &[f32], probability: &[f64]) -> Result<Vec<Vec<f64>>> {
        let dim = self.mean.len();
        if rows.len() != probability.len() * dim {
            return Err(Error::Invalid(format!(
                "domino: {} values are not {} rows of {dim}",
                rows.len(),
                probability.len()
            )));
        }
        check_finite("embeddings", rows, dim)?;
        let p = self.axes.len();
        let x = project(rows, dim, &self.mean, &self.axes);
        let posts: Vec<Vec<f64>> =
            probability.iter().enumerate().map(|(i, &q)| self.posterior(&x[i * p..(i + 1) * p], q).1).collect();
        Ok(self.slices.iter().map(|&s| posts.iter().map(|post| post[s]).collect()).collect())
    }
}

/// Rows projected on the axes after centring: `n × axes.len()`.
fn project(rows: &[f32], dim: usize, mean: &[f64], axes: &[Vec<f64>]) -> Vec<f64> {
    rows.chunks_exact(dim)
        .flat_map(|row| {
            axes.iter()
                .map(move |a| row.iter().zip(mean).zip(a).map(|((&x, m), v)| (f64::from(x) - m) * v).sum::<f64>())
        })
        .collect()
}

/// The mean and the top-`k` principal axes of `rows`: subspace iteration (8 rounds from a seeded Gaussian start), then the
/// rotation that diagonalises the covariance within the subspace (Jacobi), axes by decreasing variance.
fn pca(rows: &[f32], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = rows.len() / dim;
    let mut mean = vec![0f64; dim];
    for row in rows.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += f64::from(x));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f64> =
        rows.chunks_exact(dim).flat_map(|r| r.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m)).collect();
    // Covariance times a vector: Xᵀ (X v).
    let apply = |v: &[f64]| -> Vec<f64> {
        let xv: Vec<f64> = centred.chunks_exact(dim).map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum()).collect();
        let mut out = vec![0f64; dim];
        for (r, s) in centred.chunks_exact(dim).zip(&xv) {
            out.iter_mut().zip(r).for_each(|(o, a)| *o += a * s);
        }
        out
    };
    let mut basis: Vec<Vec<f64>> = (0..k).map(|_| (0..dim).map(|_| gaussian(rng)).collect()).collect();
    orthonormalise(&mut basis);
    for _ in 0..8 {
        basis = basis.iter().map(|v| apply(v)).collect();
        orthonormalise(&mut basis);
    }
    // Rayleigh-Ritz: the k × k covariance in the basis, diagonalised.
    let images: Vec<Vec<f64>> = basis.iter().map(|v| apply(v)).collect();
    let mut small: Vec<Vec<f64>> =
        (0..k).map(|a| (0..k).map(|b| basis[a].iter().zip(&images[b]).map(|(x, y)| x * y).sum()).collect()).collect();
    let (values, vectors) = jacobi(&mut small);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let axes = order
        .iter()
        .map(|&j| {
            let mut axis = vec![0f64; dim];
            for (a, b) in basis.iter().enumerate() {
                axis.iter_mut().zip(b).for_each(|(x, v)| *x += vectors[a][j] * v);
            }
            axis
        })
        .collect();
    (mean, axes)
}

/// Modified Gram-Schmidt; a vector that vanishes is replaced by zeros.
fn orthonormalise(basis: &mut [Vec<f64>]) {
    for i in 0..basis.len() {
        for j in 0..i {
            let dot: f64 = basis[i].iter().zip(&basis[j]).map(|(a, b)| a * b).sum();
            let (done, rest) = basis.split_at_mut(i);
            rest[0].iter_mut().zip(&done[j]).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = basis[i].iter().map(|a| a * a).sum::<f64>().sqrt();
        basis[i].iter_mut().for_each(|a| *a = if norm > 1e-12 { *a / norm } else { 0.0 });
    }
}

/// The eigenvalues and eigenvectors (columns: `vectors[row][j]`) of a symmetric matrix by cyclic Jacobi rotations.
fn jacobi(a: &mut [Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = a.len();
    let mut v: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    for _ in 0..50 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for row in a.iter_mut() {
                    let (arp, arq) = (row[p], row[q]);
                    row[p] = c * arp - s * arq;
                    row[q] = s * arp + c * arq;
                }
                let (row_p, row_q) = (a[p].clone(), a[q].clone());
                for (r, (apr, aqr)) in row_p.iter().zip(&row_q).enumerate() {
                    a[p][r] = c * apr - s * aqr;
                    a[q][r] = s * apr + c * aqr;
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    ((0..k).map(|i| a[i][i]).collect(), v)
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rand::Rng::random::<f64>(rng).max(1e-300);
    let u2: f64 = rand::Rng::random(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests;
