//! The user's own classifier, instead of one trained here: its predictions read from a file ([`crate::load::read_predictions`]),
//! or its ONNX export run in Rust ([`crate::onnx`]). Either way the result is the same [`Evaluation`] a classifier trained here
//! writes, so every later stage is unchanged (features are empty: the user's network is a black box).

use std::path::{Path, PathBuf};

use fd_data::preprocess::Preprocess;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::predict::Evaluation;

/// ImageNet's per-channel mean, torchvision's default normalisation.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The `[classifier]` section: the user's classifier, as a predictions file or an ONNX model (exactly one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The classifier's predictions: CSV, `.npy` or safetensors, one row per image (see [`crate::load::read_predictions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PathBuf>,
    /// The classifier as an ONNX model with one input `[N, 3, H, W]` and one output `[N, classes]` (logits or probabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<PathBuf>,
    /// How an image becomes the ONNX model's input: size, resize rule, mean and std (default: 224 pixels, the whole image
    /// bilinear, ImageNet's mean and std).
    #[serde(default = "imagenet_input")]
    pub input: Preprocess,
    /// Whether the ONNX model takes its channels in BGR order.
    #[serde(default)]
    pub bgr: bool,
    /// Images per ONNX forward pass.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn imagenet_input() -> Preprocess {
    Preprocess { size: 224, mean: IMAGENET_MEAN, std: IMAGENET_STD, resize: fd_data::preprocess::Resize::Paper }
}

fn default_batch() -> usize {
    64
}

impl ClassifierConfig {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        if self.predictions.is_some() == self.onnx.is_some() {
            return Err(Error::Invalid(
                "[classifier] needs exactly one of `predictions` (a file of predictions) and `onnx` (a model)".into(),
            ));
        }
        if !(4..=4096).contains(&self.input.size) || self.batch_size == 0 {
            return Err(Error::Invalid(format!(
                "[classifier] input.size = {} and batch_size = {}: expected 4 to 4096 pixels and at least 1 image",
                self.input.size, self.batch_size
            )));
        }
        if self.input.std.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
            return Err(Error::Invalid(format!(
                "[classifier] input.std = {:?}: expected positive values",
                self.input.std
            )));
        }
        Ok(())
    }
}

/// How a predictions file keys its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum RowKeys {
    /// Row `r` is image `r` of the dataset's listing (a manifest's row order, an image folder's sorted order).
    Order,
    /// Each row names its image's index in the listing.
    Index(Vec<usize>),
    /// Each row names its image's path, relative to the dataset's root (as the manifest or folder lists it).
    Path(Vec<PathBuf>),
}

/// What a score row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    /// Probabilities (each row non-negative, summing to 1).
    Probabilities,
    /// Logits (any real values; softmax gives the probabilities).
    Logits,
}

/// A classifier's predictions as read from a file: keys, and the predicted class or per-class scores (or both) of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The file they came from, for messages.
    pub path: PathBuf,
    /// How rows are keyed.
    pub keys: RowKeys,
    /// The predicted class of each row, if the file gives it.
    pub predicted: Option<Vec<u16>>,
    /// Scores, `rows × classes`, if the file gives them.
    pub scores: Option<(Vec<f32>, ScoreKind)>,
    /// The number of classes of the scores.
    pub num_classes: usize,
    /// The number of rows.
    pub rows: usize,
}

/// One image a part needs a prediction for: its index in the listing, its path relative to the root, its true label.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The image's index in the part's set (what the evaluation is keyed by).
    pub index: usize,
    /// Its index in the listing.
    pub row: usize,
    /// Its path relative to the dataset's root.
    pub path: &'a Path,
    /// Its true label.
    pub label: u16,
}

impl Predictions {
    /// The evaluation of the images `wanted` (one part), each row found by its key. An image without a row, a duplicated key, a
    /// class out of range or a non-finite score is an error naming the file and the row.
    pub fn evaluation(&self, wanted: &[Wanted<'_>], listing_len: usize, num_classes: usize) -> Result<Evaluation> {
        let bad = |message: String| Error::Weights { path: self.path.clone(), message };
        if self.scores.is_some() && self.num_classes != num_classes {
            return Err(bad(format!(
                "the scores have {} columns but the dataset has {num_classes} classes; give one column per class, in class order",
                self.num_classes
            )));
        }
        let row_of = self.row_lookup(listing_len)?;
        let mut out = empty_evaluation(num_classes, wanted.len());
        for w in wanted {
            let r = row_of(w).ok_or_else(|| {
                bad(format!(
                    "no row for image {} (listing index {}); the file must have a row for every image of the dataset",
                    w.path.display(),
                    w.row
                ))
            })?;
            let logits = self.logits(r, num_classes).map_err(bad)?;
            let predicted = match &self.predicted {
                Some(p) => p[r],
                None => argmax(&logits) as u16,
            };
            if usize::from(predicted) >= num_classes {
                return Err(bad(format!("row {r}: predicted class {predicted} is out of range (0..{num_classes})")));
            }
            push_row(&mut out, w.index, w.label, &logits, predicted);
        }
        Ok(out)
    }

    /// Row `r` as logits: given logits as they are, probabilities as their logarithms (softmax gives them back), and a bare
    /// prediction as a one-hot row (confidence 1 for the predicted class).
    fn logits(&self, r: usize, num_classes: usize) -> std::result::Result<Vec<f32>, String> {
        match &self.scores {
            Some((scores, kind)) => {
                let row = &scores[r * num_classes..(r + 1) * num_classes];
                if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                    return Err(format!("row {r}: score {v} is not finite"));
                }
                Ok(match kind {
                    ScoreKind::Logits => row.to_vec(),
                    ScoreKind::Probabilities => row.iter().map(|&p| p.max(f32::MIN_POSITIVE).ln()).collect(),
                })
            }
            None => {
                let p = usize::from(self.predicted.as_ref().expect("a file gives predictions or scores")[r]);
                if p >= num_classes {
                    return Err(format!("row {r}: predicted class {p} is out of range (0..{num_classes})"));
                }
                Ok((0..num_classes).map(|k| if k == p { 0.0 } else { -1e4 }).collect())
            }
        }
    }

    /// A lookup from a wanted image to its row, after checking that no key is repeated.
    fn row_lookup(&self, listing_len: usize) -> Result<RowLookup<'_>> {
        let bad = |message: String| Error::Weights { path: self.path.clone(), message };
        match &self.keys {
            RowKeys::Order => {
                if self.rows != listing_len {
                    return Err(bad(format!(
                        "{} rows for a dataset of {listing_len} images; rows without an index or path column must list every \
                         image in the dataset's order",
                        self.rows
                    )));
                }
                Ok(Box::new(|w| Some(w.row)))
            }
            RowKeys::Index(index) => {
                let mut by_index = vec![None; listing_len];
                for (r, &i) in index.iter().enumerate() {
                    let slot = by_index.get_mut(i).ok_or_else(|| {
                        bad(format!("row {r}: index {i} is out of range for a dataset of {listing_len} images"))
                    })?;
                    if slot.replace(r).is_some() {
                        return Err(bad(format!("row {r}: index {i} appears twice")));
                    }
                }
                Ok(Box::new(move |w| by_index[w.row]))
            }
            RowKeys::Path(paths) => {
                let mut by_path = std::collections::HashMap::with_capacity(paths.len());
                for (r, p) in paths.iter().enumerate() {
                    if by_path.insert(p.as_path(), r).is_some() {
                        return Err(bad(format!("row {r}: path {} appears twice", p.display())));
                    }
                }
                Ok(Box::new(move |w| by_path.get(w.path).copied()))
            }
        }
    }
}

/// An evaluation with no rows yet, room for `rows`, and no features.
pub fn empty_evaluation(num_classes: usize, rows: usize) -> Evaluation {
    Evaluation {
        indices: Vec::with_capacity(rows),
        labels: Vec::with_capacity(rows),
        logits: Vec::with_capacity(rows * num_classes),
        num_classes,
        predicted: Vec::with_capacity(rows),
        confidence: Vec::with_capacity(rows),
        correct: Vec::with_capacity(rows),
        features: Vec::new(),
        feature_dim: 0,
    }
}

/// Appends one image's row: its logits, the predicted class, the softmax confidence of the true class, whether it is right.
pub fn push_row(out: &mut Evaluation, index: usize, label: u16, logits: &[f32], predicted: u16) {
    let probs = softmax(logits);
    out.indices.push(index);
    out.labels.push(label);
    out.logits.extend_from_slice(logits);
    out.predicted.push(predicted);
    out.confidence.push(probs[usize::from(label)]);
    out.correct.push(predicted == label);
}

/// Appends rows of a model's output (`labels.len() × num_classes` scores, probabilities or logits as `probabilities` says),
/// predicted by argmax.
pub fn push_scores(out: &mut Evaluation, indices: &[usize], labels: &[u16], scores: &[f32], probabilities: bool) {
    let k = out.num_classes;
    for (r, (&index, &label)) in indices.iter().zip(labels).enumerate() {
        let row = &scores[r * k..(r + 1) * k];
        let logits: Vec<f32> =
            if probabilities { row.iter().map(|&p| p.max(f32::MIN_POSITIVE).ln()).collect() } else { row.to_vec() };
        push_row(out, index, label, &logits, argmax(row) as u16);
    }
}

/// Finds a wanted image's row of a predictions file.
type RowLookup<'a> = Box<dyn Fn(&Wanted<'_>) -> Option<usize> + 'a>;

/// The first maximum, as torch's argmax.
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (k, &v)| if v > row[best] { k } else { best })
}

/// A numerically stable softmax.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|&e| e / sum).collect()
}

/// Whether every row of `scores` (`rows × classes`) is a probability distribution (non-negative, summing to 1 within 1e-3).
pub fn are_probabilities(scores: &[f32], classes: usize) -> bool {
    classes > 0
        && scores
            .chunks(classes)
            .all(|row| row.iter().all(|&p| p >= 0.0) && (row.iter().sum::<f32>() - 1.0).abs() < 1e-3)
}

#[cfg(test)]
mod tests;
