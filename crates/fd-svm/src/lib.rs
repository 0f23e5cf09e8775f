//! fd-svm: the per-class failure directions of the paper (method spec §1.5 and §1.6).
//!
//! For each class, a class-balanced linear SVM learns from an image's embedding whether the classifier got it right.
//! Its normal vector is the class's direction (`-w` points at failures), and its decision value ranks every image of the class, seen or unseen, hardest first.
//!
//! - [`fit_preprocessing`]: training-split mean and unbiased std, then L2 normalisation, applied once.
//! - [`fit_directions`]: per class, C over `logspace(-6, 0, 7)` by scikit-learn's 2-fold `StratifiedKFold` on balanced accuracy (strict `>`, so ties keep the smaller C), then a refit on all of the class's rows.
//!   The solver mirrors scikit-learn's libsvm (`SVC(kernel='linear', class_weight='balanced')`) step for step, on a Gram matrix computed once per class and shared by every fold and every C.
//! - [`Directions`]: decision values, predicted flags, within-class rankings, raw-space directions, and the artifact (JSON, and safetensors for the vectors).
//! - [`modes`]: several failure modes per class (ours): the class's errors clustered, one SVM a cluster, redundant modes merged,
//!   each checked on held-out images.
//! - [`domino`]: a Domino-style error-aware mixture model (Eyuboglu et al., ICLR 2022), the peer method the discovery benchmark
//!   compares with.
//! - [`select`]: the intervention's selection rules: per class, the pool images with the lowest decision value, the lowest confidence, or a seeded random sample.
//! - [`metrics`]: accuracy, balanced accuracy, confusion counts, precision and recall against a group, top-K fractions, AUROC, and how well a ranking recovers a planted group ([`metrics::planted_recovery`]).
//!
//! Invariants: plain data in and out (`&[f32]` rows with a `dim`, `&[bool]` flags, `u16` classes); no `fd-*` crate, no tensor framework, no image crate, no I/O.
//! Data conditions are values: a class with too few errors is [`ClassOutcome::Skipped`] with its reason; NaN or infinite inputs are an [`Error`] naming the row.

pub mod domino;
mod error;
mod fit;
mod kernel;
pub mod metrics;
pub mod modes;
mod preprocess;
pub mod select;
pub mod slices;
mod smo;

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use fit::{LinearSvm, stratified_folds};
pub use preprocess::{Preprocessing, fit_preprocessing};

use error::check_finite;

/// The `[svm]` section of an experiment config; a key left out takes the paper's value ([`SvmConfig::paper`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvmConfig {
    /// The values of C to search, in order (ties keep the earlier one).
    pub c_grid: Vec<f64>,
    /// Cross-validation folds.
    pub folds: usize,
    /// libsvm's stopping tolerance (`eps`, scikit-learn's `tol`).
    pub tolerance: f64,
    /// libsvm's shrinking heuristic (scikit-learn's default: on).
    pub shrinking: bool,
    /// L2-normalise rows after standardisation.
    pub normalize: bool,
    /// Memory for one class's kernel values, in MiB: a class whose Gram matrix (`rows² × 4` bytes) fits is solved on the
    /// whole matrix, a larger one on libsvm's kernel-row cache of this size (scikit-learn's `cache_size`). The results are
    /// the same either way, bit for bit; the row cache is slower. Classes fitted in parallel each hold their own.
    #[serde(default = "default_kernel_cache_mib", skip_serializing_if = "is_default_kernel_cache_mib")]
    pub kernel_cache_mib: usize,
}

/// 1 GiB: the whole Gram matrix up to 16,384 rows a class.
fn default_kernel_cache_mib() -> usize {
    1024
}

fn is_default_kernel_cache_mib(mib: &usize) -> bool {
    *mib == default_kernel_cache_mib()
}

impl Default for SvmConfig {
    fn default() -> SvmConfig {
        SvmConfig::paper()
    }
}

impl SvmConfig {
    /// The paper's settings: `np.logspace(-6, 0, 7)`, 2 folds, tolerance 1e-3, shrinking, normalisation.
    ///
    /// The grid holds the values numpy gives on an AVX-512 CPU: its second entry is `9.999999999999999e-06`, one ulp below `1e-5`
    /// (numpy's AVX-512 `pow` loop; its baseline loop gives `1e-05` exactly).
    /// It matters: at small C the intercept, and so the cross-validated score, can change with the last bit of C.
    pub fn paper() -> SvmConfig {
        SvmConfig {
            c_grid: vec![1e-06, 9.999999999999999e-06, 0.0001, 0.001, 0.01, 0.1, 1.0],
            folds: 2,
            tolerance: 1e-3,
            shrinking: true,
            normalize: true,
            kernel_cache_mib: default_kernel_cache_mib(),
        }
    }

    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        if self.c_grid.is_empty() || self.c_grid.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(Error::Invalid(format!("svm: c_grid must hold positive values, got {:?}", self.c_grid)));
        }
        if self.folds < 2 {
            return Err(Error::Invalid(format!("svm: folds must be at least 2, got {}", self.folds)));
        }
        if self.kernel_cache_mib == 0 {
            return Err(Error::Invalid("svm: kernel_cache_mib must be at least 1".into()));
        }
        if !(self.tolerance > 0.0 && self.tolerance.is_finite()) {
            return Err(Error::Invalid(format!("svm: tolerance must be positive, got {}", self.tolerance)));
        }
        Ok(())
    }
}

/// One class's fitted SVM and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSvm {
    /// The class.
    pub class: u16,
    /// The chosen C.
    pub c: f64,
    /// Its mean cross-validated balanced accuracy.
    pub cv_score: f64,
    /// The cross-validated balanced accuracy of every C of the grid.
    pub cv_scores: Vec<f64>,
    /// Rows the SVM was fitted on.
    pub rows: usize,
    /// Of those, rows the classifier got wrong.
    pub errors: usize,
    /// The SVM refitted on every row at the chosen C.
    pub svm: LinearSvm,
}

/// What happened to one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ClassOutcome {
    /// Fitted.
    Fitted(ClassSvm),
    /// Not fitted, and why.
    Skipped {
        /// The class.
        class: u16,
        /// Why, in words.
        reason: String,
    },
}

/// The failure directions of every class, with the preprocessing they live in: the artifact of the fit stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directions {
    /// The preprocessing fitted on the training split.
    pub preprocessing: Preprocessing,
    /// The settings used.
    pub config: SvmConfig,
    /// One outcome per class, in class order.
    pub classes: Vec<ClassOutcome>,
}

/// What the SVMs are fitted on: plain rows with their dimension, labels and the classifier's right-or-wrong flags.
#[derive(Debug, Clone, Copy)]
pub struct FitInput<'a> {
    /// Embeddings of the training split (row-major, `dim` columns): they give the preprocessing statistics.
    pub train: &'a [f32],
    /// Embeddings the SVMs learn from (the paper: the validation split), row-major, `dim` columns.
    pub rows: &'a [f32],
    /// The embedding dimension.
    pub dim: usize,
    /// The class of each row.
    pub labels: &'a [u16],
    /// Whether the classifier got each row right.
    pub correct: &'a [bool],
    /// The number of classes.
    pub num_classes: usize,
}

/// Fits the paper's per-class SVMs.
///
/// Classes are fitted in parallel on up to `threads` threads; the result does not depend on the number.
pub fn fit_directions(input: &FitInput<'_>, config: &SvmConfig, threads: usize) -> Result<Directions> {
    let FitInput { train, rows, dim, labels, correct, num_classes } = *input;
    let _s = tracing::info_span!("fit_directions", rows = labels.len(), dim, num_classes).entered();
    assert!(
        dim > 0 && rows.len() == labels.len() * dim,
        "{} values are not {} rows of {dim}",
        rows.len(),
        labels.len()
    );
    assert_eq!(labels.len(), correct.len(), "labels and correct flags differ in length");
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= num_classes) {
        return Err(Error::Invalid(format!("label {l} of row {i} is out of range (expected 0..{num_classes})")));
    }
    check_finite("embeddings", rows, dim)?;
    let preprocessing = fit_preprocessing(train, dim, config.normalize)?;
    // Each class's rows preprocessed straight into its own copy: no preprocessed copy of every row besides.
    let jobs: Vec<(u16, Vec<f32>, Vec<bool>)> = (0..num_classes as u16)
        .map(|class| {
            let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
            let mut zc = vec![0f32; members.len() * dim];
            for (&i, z) in members.iter().zip(zc.chunks_exact_mut(dim)) {
                preprocessing.apply_row(&rows[i * dim..(i + 1) * dim], z);
            }
            (class, zc, members.iter().map(|&i| correct[i]).collect())
        })
        .collect();
    let classes = par_map(&jobs, threads, |(class, zc, flags)| match fit::unfit_reason(flags, config.folds) {
        Some(reason) => {
            tracing::warn!(class, %reason, "class skipped");
            ClassOutcome::Skipped { class: *class, reason }
        }
        None => ClassOutcome::Fitted(fit::fit_class(*class, zc, dim, flags, config)),
    });
    Ok(Directions { preprocessing, config: config.clone(), classes })
}

impl Directions {
    /// The fitted SVM of `class`, if it was fitted.
    pub fn class(&self, class: u16) -> Option<&ClassSvm> {
        match self.classes.get(usize::from(class)) {
            Some(ClassOutcome::Fitted(c)) => Some(c),
            _ => None,
        }
    }

    /// The decision value of every raw row under the SVM of its class (`labels`): negative predicts a failure; 0 for a class without an SVM, as the paper does.
    pub fn decision_values(&self, rows: &[f32], labels: &[u16]) -> Result<Vec<f64>> {
        let dim = self.preprocessing.dim();
        if rows.len() != labels.len() * dim {
            return Err(Error::Invalid(format!(
                "{} values are not {} rows of the directions' {dim} dimensions",
                rows.len(),
                labels.len()
            )));
        }
        check_finite("embeddings", rows, dim)?;
        // A row at a time: no preprocessed copy of every row (a million rows of 512 are 2 GB).
        let mut z = vec![0f32; dim];
        Ok(rows
            .chunks_exact(dim)
            .zip(labels)
            .map(|(row, &l)| {
                self.class(l).map_or(0.0, |c| {
                    self.preprocessing.apply_row(row, &mut z);
                    c.svm.decision(&z)
                })
            })
            .collect())
    }

    /// The decision value of raw rows (`dim()` values each, in the space the SVMs were fitted in) under the SVM of one class:
    /// the preprocessing, then `w · z + b`. `None` when the class has no SVM.
    ///
    /// Caption scoring (method spec §2.2) puts text-embedding differences through exactly this, so images and captions are scored
    /// by one code path.
    pub fn class_decisions(&self, class: u16, rows: &[f32]) -> Result<Option<Vec<f64>>> {
        let dim = self.preprocessing.dim();
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return Err(Error::Invalid(format!(
                "{} values are not rows of the directions' {dim} dimensions",
                rows.len()
            )));
        }
        let Some(c) = self.class(class) else { return Ok(None) };
        check_finite("embeddings", rows, dim)?;
        Ok(Some(self.preprocessing.apply(rows).chunks_exact(dim).map(|z| c.svm.decision(z)).collect()))
    }

    /// The directions mapped back to the raw embedding space: `w / std`, unit length (the gradient of the decision before L2 normalisation, which is non-linear, so this is exact only up to each row's norm).
    pub fn raw_direction(&self, class: u16) -> Option<Vec<f32>> {
        let c = self.class(class)?;
        let v: Vec<f64> = c.svm.w.iter().zip(&self.preprocessing.std).map(|(w, s)| w / f64::from(*s)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        Some(v.iter().map(|x| (x / norm) as f32).collect())
    }

    /// The vectors as safetensors bytes: `directions` and `raw_directions` `[classes, dim]` (zeros for skipped classes), `intercepts` `[classes]`, `mean` and `std` `[dim]`.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let dim = self.preprocessing.dim();
        let k = self.classes.len();
        let mut directions = vec![0f32; k * dim];
        let mut raw = vec![0f32; k * dim];
        let mut intercepts = vec![0f32; k];
        for class in 0..k {
            if let Some(c) = self.class(class as u16) {
                for (d, w) in directions[class * dim..(class + 1) * dim].iter_mut().zip(&c.svm.w) {
                    *d = *w as f32;
                }
                raw[class * dim..(class + 1) * dim].copy_from_slice(&self.raw_direction(class as u16).expect("fitted"));
                intercepts[class] = c.svm.b as f32;
            }
        }
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let tensors = [
            ("directions", vec![k, dim], bytes(&directions)),
            ("raw_directions", vec![k, dim], bytes(&raw)),
            ("intercepts", vec![k], bytes(&intercepts)),
            ("mean", vec![dim], bytes(&self.preprocessing.mean)),
            ("std", vec![dim], bytes(&self.preprocessing.std)),
        ];
        let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, shape, data)| {
                let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .expect("shapes match the data by construction");
                (*name, view)
            })
            .collect();
        safetensors::serialize(views, None).expect("serializing f32 tensors to memory cannot fail")
    }
}

/// `f` of every item on up to `threads` threads, in the items' order (the result does not depend on the number of threads).
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(k) else { break };
                        done.push((k, f(item)));
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            for (k, r) in w.join().expect("a worker thread panicked") {
                out[k] = Some(r);
            }
        }
    });
    out.into_iter().map(|r| r.expect("every item ran")).collect()
}

/// The indices of the rows of `class`, sorted by decision value ascending: hardest first (ties keep row order).
pub fn rank_within_class(decisions: &[f64], labels: &[u16], class: u16) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
    order.sort_by(|&a, &b| decisions[a].total_cmp(&decisions[b]));
    order
}

/// Predicted "classifier is right" flags: libsvm votes for the correct label unless the decision is negative.
pub fn predicted_correct(decisions: &[f64]) -> Vec<bool> {
    decisions.iter().map(|&d| d >= 0.0).collect()
}

#[cfg(test)]
mod tests;
