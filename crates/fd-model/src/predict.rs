//! Evaluation of any split (method spec §1.3): logits, predicted label, softmax confidence of the true class, correct flag, and penultimate features, keyed by dataset index.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use fd_data::{Dataset, Progress};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::resnet::ResNet;
use crate::{ModelConfig, images_to_tensor};

/// The classifier's outputs on some images of a dataset, row `r` being dataset image `indices[r]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Dataset indices, in row order.
    pub indices: Vec<usize>,
    /// True labels.
    pub labels: Vec<u16>,
    /// Logits, `rows × num_classes`.
    pub logits: Vec<f32>,
    /// The number of classes.
    pub num_classes: usize,
    /// `argmax` of the logits.
    pub predicted: Vec<u16>,
    /// Softmax probability of the true class.
    pub confidence: Vec<f32>,
    /// Whether the prediction is the true label.
    pub correct: Vec<bool>,
    /// Penultimate features, `rows × feature_dim`.
    pub features: Vec<f32>,
    /// The feature dimension.
    pub feature_dim: usize,
}

impl Evaluation {
    /// Appends `other`'s rows (an evaluation of more images by the same classifier).
    pub fn append(&mut self, other: Evaluation) {
        self.indices.extend(other.indices);
        self.labels.extend(other.labels);
        self.logits.extend(other.logits);
        self.predicted.extend(other.predicted);
        self.confidence.extend(other.confidence);
        self.correct.extend(other.correct);
        self.features.extend(other.features);
    }

    /// The fraction of rows predicted correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct.iter().filter(|&&c| c).count() as f64 / self.correct.len().max(1) as f64
    }

    /// The arrays as safetensors bytes: `indices` (i64), `labels` and `predicted` (i64), `logits`, `confidence`, `features` (f32), `correct` (u8).
    pub fn to_safetensors(&self) -> Vec<u8> {
        use safetensors::Dtype;
        let n = self.indices.len();
        let le_f32 = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let le_i64 = |v: &mut dyn Iterator<Item = i64>| v.flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        // Each tensor's shape follows its own data, so an inconsistent evaluation is written as it is (and refused when read).
        let rows = |len: usize, width: usize| len.checked_div(width).unwrap_or(n);
        let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
            ("indices", Dtype::I64, vec![n], le_i64(&mut self.indices.iter().map(|&i| i as i64))),
            ("labels", Dtype::I64, vec![self.labels.len()], le_i64(&mut self.labels.iter().map(|&l| i64::from(l)))),
            (
                "predicted",
                Dtype::I64,
                vec![self.predicted.len()],
                le_i64(&mut self.predicted.iter().map(|&l| i64::from(l))),
            ),
            (
                "logits",
                Dtype::F32,
                vec![rows(self.logits.len(), self.num_classes), self.num_classes],
                le_f32(&self.logits),
            ),
            ("confidence", Dtype::F32, vec![self.confidence.len()], le_f32(&self.confidence)),
            (
                "features",
                Dtype::F32,
                vec![rows(self.features.len(), self.feature_dim), self.feature_dim],
                le_f32(&self.features),
            ),
            ("correct", Dtype::U8, vec![self.correct.len()], self.correct.iter().map(|&c| u8::from(c)).collect()),
        ];
        let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                (
                    *name,
                    safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                        .expect("shapes match by construction"),
                )
            })
            .collect();
        safetensors::serialize(views, None).expect("serializing to memory cannot fail")
    }
}

impl Evaluation {
    /// Reads what [`Evaluation::to_safetensors`] wrote, checking every tensor's dtype and shape against the others.
    ///
    /// A truncated, foreign or inconsistent file is an [`Error::Invalid`] saying what was expected; callers add the file's name.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Evaluation> {
        use safetensors::Dtype;
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Invalid(format!("not a safetensors file ({e}); it may be truncated")))?;
        let get = |name: &str, dtype: Dtype, rank: usize| {
            let t = st.tensor(name).map_err(|_| Error::Invalid(format!("no tensor {name:?}")))?;
            if t.dtype() != dtype || t.shape().len() != rank {
                return Err(Error::Invalid(format!(
                    "tensor {name:?} is {:?} of shape {:?}, expected {dtype:?} of rank {rank}",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t)
        };
        let i64s = |name: &str| -> Result<Vec<i64>> {
            let t = get(name, Dtype::I64, 1)?;
            Ok(t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
        };
        let f32s = |name: &str, rank: usize| -> Result<(Vec<f32>, Vec<usize>)> {
            let t = get(name, Dtype::F32, rank)?;
            let values = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok((values, t.shape().to_vec()))
        };
        let indices = i64s("indices")?;
        let n = indices.len();
        let (logits, logit_shape) = f32s("logits", 2)?;
        let (features, feature_shape) = f32s("features", 2)?;
        let (confidence, _) = f32s("confidence", 1)?;
        let labels = i64s("labels")?;
        let predicted = i64s("predicted")?;
        let correct = get("correct", Dtype::U8, 1)?.data().to_vec();
        let num_classes = logit_shape[1];
        let lengths =
            [labels.len(), predicted.len(), confidence.len(), correct.len(), logit_shape[0], feature_shape[0]];
        if lengths.iter().any(|&l| l != n) {
            return Err(Error::Invalid(format!(
                "{n} indices but {lengths:?} rows of labels, predicted, confidence, correct, logits and features"
            )));
        }
        let class = |v: i64, what: &str| -> Result<u16> {
            u16::try_from(v)
                .ok()
                .filter(|&c| usize::from(c) < num_classes.max(1))
                .ok_or_else(|| Error::Invalid(format!("{what} {v} is not a class of the {num_classes} logits")))
        };
        Ok(Evaluation {
            indices: indices
                .iter()
                .map(|&i| usize::try_from(i).map_err(|_| Error::Invalid(format!("negative index {i}"))))
                .collect::<Result<_>>()?,
            labels: labels.iter().map(|&l| class(l, "label")).collect::<Result<_>>()?,
            predicted: predicted.iter().map(|&l| class(l, "prediction")).collect::<Result<_>>()?,
            logits,
            num_classes,
            confidence,
            correct: correct.iter().map(|&c| c != 0).collect(),
            features,
            feature_dim: feature_shape[1],
        })
    }
}

/// Runs `model` (off autodiff) over `indices` of `dataset` in batches of `batch_size`.
pub fn evaluate(
    model: &ResNet,
    model_config: &ModelConfig,
    dataset: &Dataset,
    indices: &[usize],
    batch_size: usize,
    device: &Device,
    progress: &dyn Progress,
) -> Evaluation {
    let _s = tracing::info_span!("evaluate", images = indices.len()).entered();
    let num_classes = model.linear.weight.dims()[1];
    let feature_dim = model.linear.weight.dims()[0];
    let mut out = Evaluation {
        indices: indices.to_vec(),
        labels: indices.iter().map(|&i| dataset.labels()[i]).collect(),
        logits: Vec::with_capacity(indices.len() * num_classes),
        num_classes,
        predicted: Vec::with_capacity(indices.len()),
        confidence: Vec::with_capacity(indices.len()),
        correct: Vec::with_capacity(indices.len()),
        features: Vec::with_capacity(indices.len() * feature_dim),
        feature_dim,
    };
    progress.start("evaluate", indices.len() as u64);
    for batch in indices.chunks(batch_size.max(1)) {
        let x = images_to_tensor(dataset, batch, model_config, None, model_config.fill(), device);
        let features = model.features(x);
        let logits = model.linear.forward(features.clone());
        let probs: Vec<f32> = softmax(logits.clone(), 1).into_data().try_to_vec().expect("f32 probabilities");
        let logits: Vec<f32> = logits.into_data().try_to_vec().expect("f32 logits");
        out.features.extend(features.into_data().try_to_vec::<f32>().expect("f32 features"));
        for (r, &i) in batch.iter().enumerate() {
            let row = &logits[r * num_classes..(r + 1) * num_classes];
            // The first maximum, as torch's argmax.
            let pred = crate::external::argmax(row);
            let label = usize::from(dataset.labels()[i]);
            out.predicted.push(pred as u16);
            out.confidence.push(probs[r * num_classes + label]);
            out.correct.push(pred == label);
        }
        out.logits.extend_from_slice(&logits);
        progress.advance(batch.len() as u64);
    }
    progress.finish();
    tracing::info!(accuracy = out.accuracy(), "evaluated");
    out
}
