//! The paper's embedding preprocessing (method spec §1.5): standardise each dimension with the training split's mean and unbiased std, then L2-normalise each row, once.
//!
//! failure_directions' current `train_svms.py` applies it twice by mistake (§6, issue 1); the paper's numbers come from a single pass, which is what this module does.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite};

/// Preprocessing statistics fitted on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Per-dimension mean.
    pub mean: Vec<f32>,
    /// Per-dimension unbiased standard deviation (1 where a dimension is constant).
    pub std: Vec<f32>,
    /// Whether rows are L2-normalised after standardisation (the paper: yes).
    pub normalize: bool,
}

impl Preprocessing {
    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Preprocesses `rows` (row-major, `dim()` columns).
    pub fn apply(&self, rows: &[f32]) -> Vec<f32> {
        let dim = self.dim();
        assert!(rows.len().is_multiple_of(dim), "{} values do not make rows of {dim}", rows.len());
        let mut out = vec![0f32; rows.len()];
        for (row, z) in rows.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            self.apply_row(row, z);
        }
        out
    }

    /// [`Preprocessing::apply`] on one row, into `out` (`dim()` values): for scoring many rows without a copy of them all.
    pub fn apply_row(&self, row: &[f32], out: &mut [f32]) {
        for (((z, x), m), s) in out.iter_mut().zip(row).zip(&self.mean).zip(&self.std) {
            *z = (x - m) / s;
        }
        if self.normalize {
            let norm = out.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32;
            if norm > 0.0 {
                out.iter_mut().for_each(|v| *v /= norm);
            }
        }
    }
}

/// Fits the statistics on `train` (row-major, `dim` columns): the mean and the unbiased (N-1) standard deviation, as torch computes them.
///
/// A constant dimension (std 0) would divide by zero; its std is set to 1 and a warning logged, so it contributes zeros.
pub fn fit_preprocessing(train: &[f32], dim: usize, normalize: bool) -> Result<Preprocessing> {
    assert!(dim > 0 && train.len().is_multiple_of(dim), "{} values do not make rows of {dim}", train.len());
    let n = train.len() / dim;
    if n < 2 {
        return Err(Error::Invalid(format!("preprocessing needs at least 2 training rows, got {n}")));
    }
    check_finite("training embeddings", train, dim)?;
    let mut mean = vec![0f64; dim];
    for row in train.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let mut var = vec![0f64; dim];
    for row in train.chunks_exact(dim) {
        for ((v, &x), &m) in var.iter_mut().zip(row).zip(&mean) {
            let d = f64::from(x - m);
            *v += d * d;
        }
    }
    let mut constant = 0;
    let std = var
        .iter()
        .map(|&v| {
            let s = (v / (n - 1) as f64).sqrt() as f32;
            if s > 0.0 {
                s
            } else {
                constant += 1;
                1.0
            }
        })
        .collect();
    if constant > 0 {
        tracing::warn!(constant, dim, "constant embedding dimensions: their std is set to 1");
    }
    Ok(Preprocessing { mean, std, normalize })
}
