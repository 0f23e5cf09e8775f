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
}

impl OnnxClassifier {
    /// Optimises the model in `bytes` (read from `path` by [`crate::load::load_onnx_classifier`]) for `config`'s input. Bytes
    /// that are not ONNX, an op tract cannot run or an input that is not `[N, 3, H, W]` is an error naming the file.
    pub fn from_bytes(bytes: &[u8], path: &Path, config: &ClassifierConfig) -> Result<OnnxClassifier> {
        let bad = |what: &str, e: TractError| Error::Weights {
            path: path.to_path_buf(),
            message: format!("{what}: {e:#}; the file must be an ONNX classifier taking [N, 3, H, W] images"),
        };
        let s = config.input.size;
        let mut model =
            tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(|e| bad("cannot read the ONNX model", e))?;
        let n = model.sym("N");
        model = model
            .with_input_fact(0, f32::fact(tract_onnx::tract_core::dims!(n, 3, s, s)).into())
            .map_err(|e| bad("cannot set its input to [N, 3, size, size]", e))?;
        let model = model
            .into_optimized()
            .map_err(|e| bad("cannot prepare the graph", e))?
            .into_runnable()
            .map_err(|e| bad("cannot prepare the graph", e))?;
        Ok(OnnxClassifier {
            path: path.to_path_buf(),
            model,
            input: config.input.clone(),
            bgr: config.bgr,
            batch_size: config.batch_size.max(1),
        })
    }

    /// Images per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The model's output for `images` (each of any size), `images.len() × classes`, and the number of classes. An output that
    /// is not `[N, classes]` is an error naming the file.
    pub fn logits(&self, images: &[Image]) -> Result<(Vec<f32>, usize)> {
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
        Ok((values, shape[1]))
    }
}
