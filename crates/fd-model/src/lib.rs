//! fd-model: the classifier whose failures the toolkit studies (method spec §1.2-1.3, §4.2).
//!
//! - [`resnet`]: the paper's CIFAR ResNet-18 and smaller presets for a 2-core CPU, chosen by name.
//! - [`train()`]: SGD with momentum and weight decay, the per-iteration triangular learning rate, flip/translate/cutout augmentation, optional per-example loss weights; [`retrain_head`] for the last-layer intervention.
//! - [`evaluate`]: logits, predictions, true-class confidence, correct flags and penultimate features of any split.
//! - [`load`]: safetensors weights with PyTorch's names.
//! - [`device()`]: the burn device from a config value; a backend not compiled in, or without a driver, is an error, never a panic.
//!
//! Invariants: depends on fd-data only among `fd-*` crates; knows nothing of CLIP, SVMs or captions; tensors never cross its boundary (it takes `fd_data::Dataset` and returns plain vectors).
//! Determinism: the same seed on the same CPU build gives the same weights.
//!
//! Speed on the CPU: the convolutions and BatchNorm run through fd-model's own flex operations (im2col products on
//! `gemm`, forward and backward). burn flex allocates a buffer per tensor operation, so a program that trains should
//! use an allocator that keeps freed memory: fd-cli uses mimalloc with purging off, which trains about twice as fast
//! as glibc's malloc.

mod augment;
mod device;
mod error;
pub mod external;
pub mod load;
pub mod onnx;
mod ops;
mod predict;
pub mod resnet;
mod schedule;
mod train;

use burn::prelude::*;
use fd_data::Dataset;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use augment::{augment as augment_image, translate};
/// The device handle [`device()`] returns, named so callers can hold one without depending on burn.
pub use burn::prelude::Device;
pub use device::{DeviceKind, device};
pub use error::{Error, Result};
pub use predict::{Evaluation, evaluate};
pub use resnet::{Architecture, ResNet};
pub use schedule::triangular_lr;
pub use train::{EpochLog, TrainConfig, TrainSet, retrain_head, train};

/// The `[model]` section of an experiment config: the architecture and the input normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network.
    pub architecture: Architecture,
    /// Per-channel mean on the 0-255 scale.
    pub mean: [f32; 3],
    /// Per-channel standard deviation on the 0-255 scale.
    pub std: [f32; 3],
    /// Where it runs.
    pub device: DeviceKind,
}

impl ModelConfig {
    /// `architecture` with the paper's CIFAR statistics, on the CPU.
    pub fn cifar(architecture: Architecture) -> ModelConfig {
        ModelConfig {
            architecture,
            mean: [125.307, 122.961, 113.8575],
            std: [51.5865, 50.847, 51.255],
            device: DeviceKind::Flex,
        }
    }

    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        if self.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) || self.mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::Invalid(format!(
                "model: std must be positive and mean finite, got {:?} and {:?}",
                self.std, self.mean
            )));
        }
        Ok(())
    }

    /// The mean as a pixel, the fill colour of translation and cutout.
    pub fn fill(&self) -> [u8; 3] {
        self.mean.map(|m| m.round().clamp(0.0, 255.0) as u8)
    }
}

/// Turns images `indices` of `dataset` into a normalised NCHW batch, augmenting them first when `rng` is given.
pub(crate) fn images_to_tensor(
    dataset: &Dataset,
    indices: &[usize],
    config: &ModelConfig,
    mut rng: Option<&mut ChaCha8Rng>,
    fill: [u8; 3],
    device: &Device,
) -> Tensor<4> {
    let (h, w) = (dataset.height(), dataset.width());
    let plane = h * w;
    let mut data = vec![0f32; indices.len() * 3 * plane];
    let mut scratch = vec![0u8; plane * 3];
    for (b, &i) in indices.iter().enumerate() {
        scratch.copy_from_slice(dataset.image_bytes(i));
        if let Some(rng) = rng.as_deref_mut() {
            augment::augment(&mut scratch, h, w, fill, rng);
        }
        let out = &mut data[b * 3 * plane..(b + 1) * 3 * plane];
        for p in 0..plane {
            for c in 0..3 {
                out[c * plane + p] = (f32::from(scratch[p * 3 + c]) - config.mean[c]) / config.std[c];
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [indices.len(), 3, h, w]), device)
}

#[cfg(test)]
mod tests;
