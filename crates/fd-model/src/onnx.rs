//! The user's classifier as an ONNX model, run in Rust by tract (a pure-Rust ONNX runtime): one input `[N, 3, H, W]`, one output
//! `[N, classes]`. Images are brought to its input by the config's preprocessing (size, resize rule, mean, std, channel order).

use std::path::{Path, PathBuf};

use fd_data::Image;
use fd_data::preprocess::{Preprocess, push_chw};
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::external::ClassifierConfig;

/// An ONNX classifier, optimised once for a symbolic batch size.
#[derive(Debug)]
pub struct OnnxClassifier {
    path: PathBuf,
    model: Arc<TypedRunnableModel>,
    input: Preprocess,
    bgr: bool,
    batch_size: usize,
    /// The batch size the graph fixes, when it does not take a symbolic one.
    fixed_batch: Option<usize>,
}

impl OnnxClassifier {
    /// Optimises the model in `bytes` (read from `path` by [`crate::load::load_onnx_classifier`]) for `config`'s input. Bytes
    /// that are not ONNX, an op tract cannot run or an input that is not `[N, 3, H, W]` is an error naming the file.
    pub fn from_bytes(bytes: &[u8], path: &Path, config: &ClassifierConfig) -> Result<OnnxClassifier> {
        let bad = |what: &str, e: TractError| Error::Weights {
            path: path.to_path_buf(),
            message: format!("{what}: {e:#}; the file must be an ONNX classifier taking [N, 3, H, W] images"),
        };
        let read =
            || tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(|e| bad("cannot read the ONNX model", e));
        let s = config.input.size;
        let batch = config.batch_size.max(1);
        // A symbolic batch first; an export whose graph fixes the batch (a Reshape to [1, -1]) then gets batches of exactly
        // `batch_size` images, the last one padded.
        let model = read()?;
        let n = model.sym("N");
        let symbolic = model
            .with_input_fact(0, f32::fact(tract_onnx::tract_core::dims!(n, 3, s, s)).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable());
        let (model, fixed_batch) = match symbolic {
            Ok(model) => (model, None),
            Err(first) => {
                let fixed = read()?
                    .with_input_fact(0, f32::fact([batch, 3, s, s]).into())
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .map_err(|_| {
                        bad(
                            &format!(
                                "cannot prepare the graph for [N, 3, {s}, {s}] input, nor for a fixed batch of {batch} \
                                 (if the export fixes another batch size, set it as the batch size)"
                            ),
                            first,
                        )
                    })?;
                tracing::info!(path = %path.display(), batch, "the ONNX model fixes its batch size; padding the last batch");
                (fixed, Some(batch))
            }
        };
        Ok(OnnxClassifier {
            path: path.to_path_buf(),
            model,
            input: config.input.clone(),
            bgr: config.bgr,
            batch_size: batch,
            fixed_batch,
        })
    }

    /// Images per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The model's output for `images` (each of any size), `images.len() × classes`, and the number of classes. An output that
    /// is not `[N, classes]`, or holds a value that is not finite, is an error naming the file.
    pub fn logits(&self, images: &[Image]) -> Result<(Vec<f32>, usize)> {
        if let Some(fixed) = self.fixed_batch {
            // A graph with a fixed batch: batches of exactly that size, the last one padded with black images.
            let mut out = Vec::new();
            let mut classes = 0;
            for chunk in images.chunks(fixed) {
                let mut padded = chunk.to_vec();
                padded.resize(fixed, Image::new(1, 1, vec![0; 3]));
                let (values, k) = self.run(&padded)?;
                out.extend_from_slice(&values[..chunk.len() * k]);
                classes = k;
            }
            return Ok((out, classes));
        }
        self.run(images)
    }

    /// One forward pass over `images`.
    fn run(&self, images: &[Image]) -> Result<(Vec<f32>, usize)> {
        let s = self.input.size;
        let mut data = Vec::with_capacity(images.len() * 3 * s * s);
        for image in images {
            let start = data.len();
            push_chw(image, &self.input, &mut data);
            if self.bgr {
                let plane = s * s;
                let (r, rest) = data[start..].split_at_mut(plane);
                r.swap_with_slice(&mut rest[plane..2 * plane]);
            }
        }
        let bad = |message: String| Error::Weights { path: self.path.clone(), message };
        let input = Tensor::from_shape(&[images.len(), 3, s, s], &data).map_err(|e| bad(format!("{e:#}")))?;
        let outputs =
            self.model.run(tvec!(input.into_tvalue())).map_err(|e| bad(format!("running the model: {e:#}")))?;
        let output = outputs.first().ok_or_else(|| bad("the model has no output".into()))?;
        let shape = output.shape().to_vec();
        if shape.len() != 2 || shape[0] != images.len() || shape[1] == 0 {
            return Err(bad(format!(
                "the output has shape {shape:?}; a classifier's must be [N, classes] (here N = {})",
                images.len()
            )));
        }
        let values = output.cast_to::<f32>().map_err(|e| bad(format!("{e:#}")))?;
        let values: Vec<f32> =
            values.to_plain_array_view::<f32>().map_err(|e| bad(format!("{e:#}")))?.iter().copied().collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let image = i / shape[1];
            return Err(bad(format!(
                "the output for image {image} of a batch holds {}; a classifier's must be finite",
                values[i]
            )));
        }
        Ok((values, shape[1]))
    }
}
