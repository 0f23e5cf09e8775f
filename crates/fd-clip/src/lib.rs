//! fd-clip: the joint image-text latent space (method spec §1.4, §2).
//!
//! An [`Embedder`] maps images to vectors and captions to vectors of the same space.
//! Today it is backed by EfficientNet-Lite0 ([`effnet`]), the offline, pretrained space: its 1280-d penultimate features embed images,
//! and the rows of its ImageNet classifier embed captions, which are ImageNet class names ([`imagenet`]), a closed vocabulary of WordNet nouns.
//! CLIP ViT-B/32, the paper's space, will plug in behind the same interface.
//!
//! Invariants: depends on fd-data only; reads weights through [`load`] alone; never reads datasets or prints; tensors never cross its boundary.

pub mod clip;
pub mod effnet;
mod error;
pub mod imagenet;
pub mod load;
pub mod preprocess;
pub mod tokenize;

use std::path::Path;

use burn::prelude::*;
use fd_data::{Dataset, Progress};
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use preprocess::Preprocess;

/// The latent spaces, chosen by name in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderKind {
    /// EfficientNet-Lite0 features and ImageNet class vectors (offline).
    EfficientnetLite0,
    /// A tiny EfficientNet of the same code path ([`effnet::EffNetConfig::tiny`]), for smoke runs and tests; it needs `weights`
    /// (the committed random-weight fixture `crates/fd-clip/fixtures/tiny_effnet.safetensors`). Its 10 outputs are ImageNet classes 0..10.
    EfficientnetTiny,
}

impl EmbedderKind {
    /// The network shape of this space.
    pub fn shape(self) -> effnet::EffNetConfig {
        match self {
            EmbedderKind::EfficientnetLite0 => effnet::EffNetConfig::lite0(),
            EmbedderKind::EfficientnetTiny => effnet::EffNetConfig::tiny(),
        }
    }
}

/// The `[embed]` section of an experiment config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// Which space.
    pub embedder: EmbedderKind,
    /// Images are resized to this many pixels square.
    pub image_size: usize,
    /// Images per forward pass.
    pub batch_size: usize,
    /// The weight file; by default the one `fd-cli fetch` puts in the cache directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<std::path::PathBuf>,
}

impl EmbedConfig {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message });
        if !(8..=1024).contains(&self.image_size) {
            return bad(format!("embed.image_size = {} (expected 8 to 1024 pixels)", self.image_size));
        }
        if self.batch_size == 0 {
            return bad("embed.batch_size = 0 (expected at least 1)".into());
        }
        if self.embedder == EmbedderKind::EfficientnetTiny && self.weights.is_none() {
            return bad("embedder \"efficientnet-tiny\" needs `weights` (for example crates/fd-clip/fixtures/tiny_effnet.safetensors)".into());
        }
        Ok(())
    }
}

/// An image and text embedder; the network and its tensors stay inside.
#[derive(Debug)]
pub struct Embedder {
    model: effnet::EfficientNet,
    preprocess: Preprocess,
    batch_size: usize,
    device: Device,
}

impl Embedder {
    /// EfficientNet-Lite0 with the weights at `weights` (safetensors, as `fd-cli fetch efficientnet-lite0` writes them).
    pub fn efficientnet_lite0(weights: &Path, config: &EmbedConfig, device: &Device) -> Result<Embedder> {
        Embedder::efficientnet(&effnet::EffNetConfig::lite0(), weights, config, device)
    }

    /// The embedder `config` names, with its weights at `config.weights` or else at `default_weights`.
    pub fn from_config(config: &EmbedConfig, default_weights: &Path, device: &Device) -> Result<Embedder> {
        let weights = config.weights.as_deref().unwrap_or(default_weights);
        Embedder::efficientnet(&config.embedder.shape(), weights, config, device)
    }

    /// An EfficientNet of any shape (the tests use a tiny one).
    pub fn efficientnet(
        shape: &effnet::EffNetConfig,
        weights: &Path,
        config: &EmbedConfig,
        device: &Device,
    ) -> Result<Embedder> {
        let model = load::load_efficientnet(shape, weights, device)?;
        Ok(Embedder {
            model,
            preprocess: Preprocess::efficientnet(config.image_size),
            batch_size: config.batch_size.max(1),
            device: device.clone(),
        })
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.model.fc.weight.dims()[0]
    }

    /// The embedding of images `indices` of `dataset`: rows of `dim()` values.
    pub fn embed_images(&self, dataset: &Dataset, indices: &[usize], progress: &dyn Progress) -> Vec<f32> {
        let _s = tracing::info_span!("embed_images", images = indices.len()).entered();
        let s = self.preprocess.size;
        let mut out = Vec::with_capacity(indices.len() * self.dim());
        progress.start("embed images", indices.len() as u64);
        for batch in indices.chunks(self.batch_size) {
            let mut data = Vec::with_capacity(batch.len() * 3 * s * s);
            for &i in batch {
                preprocess::push_chw(&dataset.image(i), &self.preprocess, &mut data);
            }
            let x = Tensor::<4>::from_data(TensorData::new(data, [batch.len(), 3, s, s]), &self.device);
            out.extend(self.model.features(x).into_data().try_to_vec::<f32>().expect("f32 features"));
            progress.advance(batch.len() as u64);
        }
        progress.finish();
        out
    }

    /// Zero-shot labels from image embeddings: the classifier's softmax over its 1000 classes, summed within each group of classes
    /// (for CIFAR-10, each class's ImageNet hyponyms, [`imagenet::cifar10_hyponyms`]); the group with the most probability wins.
    pub fn zero_shot(&self, features: &[f32], groups: &[Vec<usize>]) -> Vec<u16> {
        let dim = self.dim();
        let n = features.len() / dim;
        let x = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, dim]), &self.device);
        let probs: Vec<f32> = burn::tensor::activation::softmax(self.model.fc.forward(x), 1)
            .into_data()
            .try_to_vec()
            .expect("f32 probabilities");
        let classes = self.model.fc.weight.dims()[1];
        probs
            .chunks(classes)
            .map(|row| {
                let score = |g: &Vec<usize>| g.iter().map(|&k| row[k]).sum::<f32>();
                (0..groups.len()).fold(0, |best, k| if score(&groups[k]) > score(&groups[best]) { k } else { best })
                    as u16
            })
            .collect()
    }

    /// Every caption this space can embed, in class order: the first lemma of each ImageNet class its classifier has a row for.
    pub fn vocabulary(&self) -> Vec<&'static str> {
        let n = self.model.fc.weight.dims()[1];
        imagenet::imagenet_classes().into_iter().filter(|c| c.index < n).map(|c| c.name).collect()
    }

    /// The embedding of each caption: its ImageNet class's classifier row (a caption must be a class name or one of its lemmas).
    pub fn embed_texts(&self, captions: &[&str]) -> Result<Vec<f32>> {
        let classes = imagenet::imagenet_classes();
        // burn stores the classifier as [in, out]; row k of PyTorch's weight is column k here.
        let weight: Vec<f32> = self.model.fc.weight.val().into_data().try_to_vec().expect("f32 weights");
        let (dim, n) = (self.dim(), self.model.fc.weight.dims()[1]);
        let mut out = Vec::with_capacity(captions.len() * dim);
        for caption in captions {
            let k = classes
                .iter()
                .find(|c| c.name == *caption || c.lemmas.split(", ").any(|l| l == *caption))
                .map(|c| c.index)
                .filter(|&k| k < n)
                .ok_or_else(|| Error::UnknownCaption { caption: caption.to_string(), vocabulary: "ImageNet" })?;
            out.extend((0..dim).map(|d| weight[d * n + k]));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod clip_tests;
#[cfg(test)]
mod tests;
