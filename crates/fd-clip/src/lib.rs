//! fd-clip: the joint image-text latent space (method spec §1.4, §2).
//!
//! An [`Embedder`] maps images to vectors and captions to vectors of the same space. Two kinds of space stand behind it:
//! - [`clip`]: OpenAI CLIP (ViT-B/32, the paper's space), with its tokenizer ([`tokenize`]); any caption can be embedded.
//!   Its weights cannot be had offline: `cargo xtask fetch clip` gets them where a network is.
//! - [`effnet`]: EfficientNet-Lite0, the offline, pretrained space: its 1280-d penultimate features embed images, and the rows of its
//!   ImageNet classifier embed captions, which are ImageNet class names ([`imagenet`]), a closed vocabulary of WordNet nouns.
//!
//! Invariants: depends on fd-data only; reads weights through [`load`] alone; never reads datasets or prints; tensors never cross its boundary.

mod channels_last;
pub mod clip;
pub mod effnet;
mod error;
mod fused;
mod fused_vit;
pub mod imagenet;
pub mod load;
mod matmul;
mod scratch;
pub use fd_data::preprocess;
pub mod tokenize;

use std::path::Path;

use burn::prelude::*;
use fd_data::{Dataset, Image, Progress};
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use preprocess::{Preprocess, Resize};

/// The latent spaces, chosen by name in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderKind {
    /// EfficientNet-Lite0 features and ImageNet class vectors (offline).
    EfficientnetLite0,
    /// A tiny EfficientNet of the same code path ([`effnet::EffNetConfig::tiny`]), for smoke runs and tests; it needs `weights`
    /// (the committed random-weight fixture `crates/fd-clip/fixtures/tiny_effnet.safetensors`). Its 10 outputs are ImageNet classes 0..10.
    EfficientnetTiny,
    /// OpenAI CLIP ViT-B/32 (the paper's space), from Hugging Face `CLIPModel` safetensors (`cargo xtask fetch clip`).
    ClipVitB32,
    /// A tiny CLIP with every code path ([`clip::ClipConfig::tiny`]), for tests; it needs `weights`
    /// (the committed random-weight fixture `crates/fd-clip/fixtures/tiny_clip.safetensors`).
    ClipTiny,
}

impl EmbedderKind {
    /// Whether the space is CLIP (open vocabulary) rather than EfficientNet (ImageNet class names).
    pub fn is_clip(self) -> bool {
        matches!(self, EmbedderKind::ClipVitB32 | EmbedderKind::ClipTiny)
    }

    /// The input size the network was built for, where it has one (CLIP's learned positions fix it).
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            EmbedderKind::ClipVitB32 => Some(224),
            EmbedderKind::ClipTiny => Some(32),
            _ => None,
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
    /// The weight file; by default the one `fd-cli fetch` puts in the cache directory. For CLIP, either Hugging Face `CLIPModel`
    /// safetensors or a torch.onnx export of the vision tower (`.onnx`, with the text tower's in `text_weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<std::path::PathBuf>,
    /// The torch.onnx export of CLIP's text tower, when `weights` is the vision tower's export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_weights: Option<std::path::PathBuf>,
    /// How images are brought to `image_size`: "paper" (the whole image, bilinear; the default) or "canonical" (CLIP's bicubic and centre crop).
    #[serde(default, skip_serializing_if = "is_paper")]
    pub resize: preprocess::Resize,
}

fn is_paper(r: &preprocess::Resize) -> bool {
    *r == preprocess::Resize::Paper
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
        if let Some(size) = self.embedder.fixed_size()
            && size != self.image_size
        {
            return bad(format!(
                "embed.image_size = {} but {:?} takes {size}-pixel images",
                self.image_size, self.embedder
            ));
        }
        let onnx = self.weights.as_deref().is_some_and(is_onnx);
        if onnx && !self.embedder.is_clip() {
            return bad(format!(
                "embed.weights is an ONNX file, but only CLIP loads from ONNX, not {:?}",
                self.embedder
            ));
        }
        if onnx != self.text_weights.is_some() {
            return bad(
                "a CLIP from ONNX needs both exports: `weights` = the vision tower's .onnx and `text_weights` = the text tower's .onnx"
                    .into(),
            );
        }
        if self.embedder == EmbedderKind::ClipTiny && self.weights.is_none() {
            return bad(
                "embedder \"clip-tiny\" needs `weights` (for example crates/fd-clip/fixtures/tiny_clip.safetensors)"
                    .into(),
            );
        }
        if self.embedder == EmbedderKind::EfficientnetTiny && self.weights.is_none() {
            return bad("embedder \"efficientnet-tiny\" needs `weights` (for example crates/fd-clip/fixtures/tiny_effnet.safetensors)".into());
        }
        Ok(())
    }
}

/// Whether `device` is the flex CPU device.
fn is_flex(device: &Device) -> bool {
    Tensor::<1>::zeros([1], device).try_into_primitive::<burn::backend::Flex>().is_ok()
}

fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The network behind an [`Embedder`].
#[derive(Debug)]
enum Backbone {
    /// `fused` is the inference path, built on the flex CPU device only (it reads activations as host memory).
    EffNet { model: Box<effnet::EfficientNet>, fused: Option<Box<fused::FusedEffNet>> },
    /// `fused` is the vision tower's inference path, on the flex CPU device only.
    Clip {
        model: Box<clip::Clip>,
        fused: Option<Box<fused_vit::FusedVit>>,
        tokenizer: tokenize::ClipTokenizer,
        dim: usize,
    },
}

/// An image and text embedder; the network and its tensors stay inside.
#[derive(Debug)]
pub struct Embedder {
    backbone: Backbone,
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
        match config.embedder {
            EmbedderKind::EfficientnetLite0 => {
                Embedder::efficientnet(&effnet::EffNetConfig::lite0(), weights, config, device)
            }
            EmbedderKind::EfficientnetTiny => {
                Embedder::efficientnet(&effnet::EffNetConfig::tiny(), weights, config, device)
            }
            EmbedderKind::ClipVitB32 => Embedder::clip(&clip::ClipConfig::vit_b32(), weights, config, device),
            EmbedderKind::ClipTiny => Embedder::clip(&clip::ClipConfig::tiny(), weights, config, device),
        }
    }

    /// An EfficientNet of any shape (the tests use a tiny one).
    pub fn efficientnet(
        shape: &effnet::EffNetConfig,
        weights: &Path,
        config: &EmbedConfig,
        device: &Device,
    ) -> Result<Embedder> {
        let model = load::load_efficientnet(shape, weights, device)?;
        let mut preprocess = Preprocess::efficientnet(config.image_size);
        preprocess.resize = config.resize;
        Ok(Embedder {
            backbone: Backbone::EffNet {
                fused: is_flex(device).then(|| fused::FusedEffNet::new(&model)).flatten().map(Box::new),
                model: Box::new(model),
            },
            preprocess,
            batch_size: config.batch_size.max(1),
            device: device.clone(),
        })
    }

    /// A CLIP of any shape with both towers, from Hugging Face `CLIPModel` safetensors, or from torch.onnx exports of its towers
    /// when `weights` is an `.onnx` file (the text tower's export then comes from `config.text_weights`).
    pub fn clip(shape: &clip::ClipConfig, weights: &Path, config: &EmbedConfig, device: &Device) -> Result<Embedder> {
        let model = if is_onnx(weights) {
            load::load_clip_onnx(shape, Some(weights), config.text_weights.as_deref(), device)?
        } else {
            load::load_clip(shape, weights, device)?
        };
        let (Some(vision), Some(text)) = (&shape.vision, &shape.text) else {
            return Err(Error::Config { message: "an embedder needs both CLIP towers".into() });
        };
        let mut preprocess = Preprocess::clip_paper(vision.image_size);
        preprocess.resize = config.resize;
        Ok(Embedder {
            backbone: Backbone::Clip {
                fused: is_flex(device)
                    .then(|| model.vision_model.as_ref().zip(model.visual_projection.as_ref()))
                    .flatten()
                    .map(|(tower, projection)| Box::new(fused_vit::FusedVit::new(tower, projection))),
                model: Box::new(model),
                tokenizer: tokenize::ClipTokenizer::new(text.context_length),
                dim: shape.embed_dim,
            },
            preprocess,
            batch_size: config.batch_size.max(1),
            device: device.clone(),
        })
    }

    /// The revision of this embedder's image path, for caches of its embeddings: a cache of another revision was
    /// computed by other code whose sums round differently, and mixing the two breaks bit-for-bit agreement between runs.
    /// On the flex device fd-clip's own inference paths with their products through fd-clip's gemm wrapper: 3 for
    /// EfficientNet (`fused.rs` on channels-last activations; 2 before), 4 for CLIP's vision tower (`fused_vit.rs`,
    /// with the patch embedding as one product; 3 with burn's convolution for it); elsewhere 1.
    pub fn revision(&self) -> u32 {
        match &self.backbone {
            Backbone::EffNet { fused: Some(_), .. } => 3,
            Backbone::Clip { fused: Some(fused), .. } if fused.patchifies() => 4,
            Backbone::Clip { fused: Some(_), .. } => 3,
            _ => 1,
        }
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        match &self.backbone {
            Backbone::EffNet { model, .. } => model.fc.weight.dims()[0],
            Backbone::Clip { dim, .. } => *dim,
        }
    }

    /// The embedding of images `indices` of `dataset`: rows of `dim()` values.
    pub fn embed_images(&self, dataset: &Dataset, indices: &[usize], progress: &dyn Progress) -> Vec<f32> {
        let _s = tracing::info_span!("embed_images", images = indices.len()).entered();
        let mut out = Vec::with_capacity(indices.len() * self.dim());
        progress.start("embed images", indices.len() as u64);
        for batch in indices.chunks(self.batch_size) {
            let images: Vec<Image> = batch.iter().map(|&i| dataset.image(i)).collect();
            out.extend(self.embed_batch(&images));
            progress.advance(batch.len() as u64);
        }
        progress.finish();
        out
    }

    /// Images per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The embedding of `images`, each of any size (brought to the network's input by its own preprocessing), in one forward
    /// pass: rows of `dim()` values.
    pub fn embed_batch(&self, images: &[Image]) -> Vec<f32> {
        if images.is_empty() {
            return Vec::new();
        }
        let s = self.preprocess.size;
        let mut data = Vec::with_capacity(images.len() * 3 * s * s);
        for image in images {
            preprocess::push_chw(image, &self.preprocess, &mut data);
        }
        let x = Tensor::<4>::from_data(TensorData::new(data, [images.len(), 3, s, s]), &self.device);
        let features = match &self.backbone {
            Backbone::EffNet { fused: Some(fused), .. } => fused.features(x),
            Backbone::EffNet { model, .. } => model.features(x),
            Backbone::Clip { fused: Some(fused), .. } => fused.image_embeds(x),
            Backbone::Clip { model, .. } => model.image_embeds(x).expect("an embedder's CLIP has a vision tower"),
        };
        features.into_data().try_to_vec::<f32>().expect("f32 features")
    }

    /// The captions this space can embed when its vocabulary is closed (EfficientNet: the first lemma of each ImageNet class its
    /// classifier has a row for); `None` when any caption can be embedded (CLIP).
    pub fn vocabulary(&self) -> Option<Vec<&'static str>> {
        let Backbone::EffNet { model, .. } = &self.backbone else { return None };
        let n = model.fc.weight.dims()[1];
        Some(imagenet::imagenet_classes().into_iter().filter(|c| c.index < n).map(|c| c.name).collect())
    }

    /// The embedding of each caption. CLIP: the text tower's projection, in batches. EfficientNet: the caption's ImageNet class's
    /// classifier row (a caption must be a class name or one of its lemmas).
    pub fn embed_texts(&self, captions: &[&str]) -> Result<Vec<f32>> {
        let model = match &self.backbone {
            Backbone::EffNet { model, .. } => model,
            Backbone::Clip { model, tokenizer, dim, .. } => {
                let _s = tracing::info_span!("embed_texts", captions = captions.len()).entered();
                let mut out = Vec::with_capacity(captions.len() * dim);
                let vocab =
                    model.text_model.as_ref().map_or(usize::MAX, |t| t.embeddings.token_embedding.weight.dims()[0]);
                for batch in captions.chunks(self.batch_size) {
                    let ids: Vec<Vec<usize>> = tokenizer
                        .tokenize(batch)
                        .ids
                        .into_iter()
                        .map(|row| row.into_iter().map(|t| clip::ClipConfig::fold_id(t, vocab)).collect())
                        .collect();
                    let embeds = model.text_embeds(&ids, &self.device).expect("an embedder's CLIP has a text tower");
                    out.extend(embeds.into_data().try_to_vec::<f32>().expect("f32 embeddings"));
                }
                return Ok(out);
            }
        };
        let classes = imagenet::imagenet_classes();
        // burn stores the classifier as [in, out]; row k of PyTorch's weight is column k here.
        let weight: Vec<f32> = model.fc.weight.val().into_data().try_to_vec().expect("f32 weights");
        let (dim, n) = (self.dim(), model.fc.weight.dims()[1]);
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
