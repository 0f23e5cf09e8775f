//! OpenAI CLIP's vision and text transformers (Radford et al. 2021), structured and named as Hugging Face's `CLIPModel`.
//!
//! Both towers are pre-LayerNorm transformers with QuickGELU MLPs (`x * sigmoid(1.702 x)`) and LayerNorm eps 1e-5.
//! Vision: a bias-free patch convolution, a class token and learned positions, `pre_layrnorm` (HF's spelling), the encoder,
//! `post_layernorm` on the class token, and a bias-free `visual_projection`.
//! Text: token and position embeddings, the encoder under a causal mask, `final_layer_norm`, the hidden state at the end-of-text
//! token, and a bias-free `text_projection`.
//! Embeddings are the raw projections, not L2-normalised, as `encode_image` returns them (method spec §1.4).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use serde::{Deserialize, Serialize};

/// The vision tower's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Input height and width.
    pub image_size: usize,
    /// Patch height and width.
    pub patch_size: usize,
    /// The transformer's width.
    pub width: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// The MLP's hidden width.
    pub mlp_width: usize,
}

/// The text tower's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// Token ids.
    pub vocab_size: usize,
    /// Tokens per caption, start and end of text included.
    pub context_length: usize,
    /// The transformer's width.
    pub width: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// The MLP's hidden width.
    pub mlp_width: usize,
    /// The end-of-text id, whose hidden state is the caption's.
    pub end_of_text: usize,
}

/// A CLIP model's shape: either tower may be absent (a text-only checkpoint, as Stable Diffusion's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    /// The joint space's dimension.
    pub embed_dim: usize,
    /// The vision tower.
    pub vision: Option<VisionConfig>,
    /// The text tower.
    pub text: Option<TextConfig>,
}

const OPENAI_VOCAB: usize = 49408;
const OPENAI_END_OF_TEXT: usize = 49407;

impl ClipConfig {
    /// ViT-B/32, the paper's space: 224 px, 32-px patches, width 768, 12 layers, 12 heads; text width 512, 12 layers, 8 heads; 512-d.
    pub fn vit_b32() -> ClipConfig {
        ClipConfig {
            embed_dim: 512,
            vision: Some(VisionConfig {
                image_size: 224,
                patch_size: 32,
                width: 768,
                layers: 12,
                heads: 12,
                mlp_width: 3072,
            }),
            text: Some(TextConfig {
                vocab_size: OPENAI_VOCAB,
                context_length: 77,
                width: 512,
                layers: 12,
                heads: 8,
                mlp_width: 2048,
                end_of_text: OPENAI_END_OF_TEXT,
            }),
        }
    }

    /// The text tower of ViT-L/14, which Stable Diffusion v1 conditions on: width 768, 12 layers, 12 heads; 768-d projection.
    pub fn vit_l14_text() -> ClipConfig {
        ClipConfig {
            embed_dim: 768,
            vision: None,
            text: Some(TextConfig {
                vocab_size: OPENAI_VOCAB,
                context_length: 77,
                width: 768,
                layers: 12,
                heads: 12,
                mlp_width: 3072,
                end_of_text: OPENAI_END_OF_TEXT,
            }),
        }
    }

    /// A small model with every code path, for tests (`fixtures/make_clip_fixtures.py` builds the same one in transformers).
    /// Its vocabulary is 1,000 ids with end of text 999, so its fixture stays small.
    pub fn tiny() -> ClipConfig {
        ClipConfig {
            embed_dim: 24,
            vision: Some(VisionConfig { image_size: 32, patch_size: 8, width: 32, layers: 2, heads: 4, mlp_width: 64 }),
            text: Some(TextConfig {
                vocab_size: 1000,
                context_length: 77,
                width: 32,
                layers: 2,
                heads: 4,
                mlp_width: 64,
                end_of_text: 999,
            }),
        }
    }

    /// A token id of OpenAI's vocabulary folded into a smaller one of `vocab` ids (the tiny preset's): start and end of text become
    /// the last two ids, padding stays 0, any other id `t` becomes `1 + t % (vocab - 3)`. Ids of a full vocabulary pass unchanged.
    pub fn fold_id(t: usize, vocab: usize) -> usize {
        if vocab >= OPENAI_VOCAB {
            return t;
        }
        match t {
            0 => 0,
            49406 => vocab - 2,
            49407 => vocab - 1,
            t => 1 + t % (vocab - 3),
        }
    }

    /// Every tensor of the Hugging Face `CLIPModel` layout this shape needs, with its PyTorch shape.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut encoder = |prefix: &str, width: usize, layers: usize, mlp: usize| {
            for i in 0..layers {
                let p = format!("{prefix}.encoder.layers.{i}");
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    out.push((format!("{p}.self_attn.{proj}.weight"), vec![width, width]));
                    out.push((format!("{p}.self_attn.{proj}.bias"), vec![width]));
                }
                for ln in ["layer_norm1", "layer_norm2"] {
                    out.push((format!("{p}.{ln}.weight"), vec![width]));
                    out.push((format!("{p}.{ln}.bias"), vec![width]));
                }
                out.push((format!("{p}.mlp.fc1.weight"), vec![mlp, width]));
                out.push((format!("{p}.mlp.fc1.bias"), vec![mlp]));
                out.push((format!("{p}.mlp.fc2.weight"), vec![width, mlp]));
                out.push((format!("{p}.mlp.fc2.bias"), vec![width]));
            }
        };
        if let Some(v) = &self.vision {
            encoder("vision_model", v.width, v.layers, v.mlp_width);
        }
        if let Some(t) = &self.text {
            encoder("text_model", t.width, t.layers, t.mlp_width);
        }
        if let Some(v) = &self.vision {
            let g = v.image_size / v.patch_size;
            out.push((
                "vision_model.embeddings.patch_embedding.weight".into(),
                vec![v.width, 3, v.patch_size, v.patch_size],
            ));
            out.push(("vision_model.embeddings.class_embedding".into(), vec![v.width]));
            out.push(("vision_model.embeddings.position_embedding.weight".into(), vec![g * g + 1, v.width]));
            for ln in ["pre_layrnorm", "post_layernorm"] {
                out.push((format!("vision_model.{ln}.weight"), vec![v.width]));
                out.push((format!("vision_model.{ln}.bias"), vec![v.width]));
            }
            out.push(("visual_projection.weight".into(), vec![self.embed_dim, v.width]));
        }
        if let Some(t) = &self.text {
            out.push(("text_model.embeddings.token_embedding.weight".into(), vec![t.vocab_size, t.width]));
            out.push(("text_model.embeddings.position_embedding.weight".into(), vec![t.context_length, t.width]));
            out.push(("text_model.final_layer_norm.weight".into(), vec![t.width]));
            out.push(("text_model.final_layer_norm.bias".into(), vec![t.width]));
            out.push(("text_projection.weight".into(), vec![self.embed_dim, t.width]));
        }
        out
    }
}

fn layer_norm(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width).with_epsilon(1e-5).init(device)
}

/// Multi-head self-attention with biased projections.
#[derive(Module, Debug)]
pub struct Attention {
    /// Queries.
    pub q_proj: Linear,
    /// Keys.
    pub k_proj: Linear,
    /// Values.
    pub v_proj: Linear,
    /// The output projection.
    pub out_proj: Linear,
    /// Heads.
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    fn new(width: usize, heads: usize, device: &Device) -> Attention {
        let linear = || LinearConfig::new(width, width).init(device);
        Attention { q_proj: linear(), k_proj: linear(), v_proj: linear(), out_proj: linear(), heads }
    }

    fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let hd = d / self.heads;
        let split = |t: Tensor<3>| t.reshape([b, n, self.heads, hd]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()).mul_scalar((hd as f64).powf(-0.5)));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let mut scores = q.matmul(k.transpose());
        if let Some(m) = mask {
            scores = scores + m.clone();
        }
        let out = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        self.out_proj.forward(out)
    }
}

/// The MLP: `fc2(quick_gelu(fc1(x)))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Width to hidden width.
    pub fc1: Linear,
    /// Hidden width back to width.
    pub fc2: Linear,
}

/// One pre-LayerNorm encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Attention.
    pub self_attn: Attention,
    /// Before attention.
    pub layer_norm1: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// Before the MLP.
    pub layer_norm2: LayerNorm,
}

impl EncoderLayer {
    fn new(width: usize, heads: usize, mlp: usize, device: &Device) -> EncoderLayer {
        EncoderLayer {
            self_attn: Attention::new(width, heads, device),
            layer_norm1: layer_norm(width, device),
            mlp: Mlp {
                fc1: LinearConfig::new(width, mlp).init(device),
                fc2: LinearConfig::new(mlp, width).init(device),
            },
            layer_norm2: layer_norm(width, device),
        }
    }

    fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), mask);
        let h = self.mlp.fc1.forward(self.layer_norm2.forward(x.clone()));
        let h = h.clone() * sigmoid(h.mul_scalar(1.702));
        x + self.mlp.fc2.forward(h)
    }
}

/// A stack of encoder layers.
#[derive(Module, Debug)]
pub struct Encoder {
    /// The layers, in order.
    pub layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn new(width: usize, layers: usize, heads: usize, mlp: usize, device: &Device) -> Encoder {
        Encoder { layers: (0..layers).map(|_| EncoderLayer::new(width, heads, mlp, device)).collect() }
    }

    fn forward(&self, mut x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, mask);
        }
        x
    }
}

/// Patch, class-token and position embeddings.
#[derive(Module, Debug)]
pub struct VisionEmbeddings {
    /// Patches to width, no bias.
    pub patch_embedding: Conv2d,
    /// The class token.
    pub class_embedding: Param<Tensor<1>>,
    /// One learned position per patch, plus the class token's.
    pub position_embedding: Embedding,
}

/// The vision transformer.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Embeddings.
    pub embeddings: VisionEmbeddings,
    /// LayerNorm before the encoder.
    pub pre_layrnorm: LayerNorm,
    /// The encoder.
    pub encoder: Encoder,
    /// LayerNorm on the class token.
    pub post_layernorm: LayerNorm,
}

impl VisionTransformer {
    fn new(c: &VisionConfig, device: &Device) -> VisionTransformer {
        let g = c.image_size / c.patch_size;
        VisionTransformer {
            embeddings: VisionEmbeddings {
                patch_embedding: Conv2dConfig::new([3, c.width], [c.patch_size; 2])
                    .with_stride([c.patch_size; 2])
                    .with_bias(false)
                    .init(device),
                class_embedding: Param::from_tensor(Tensor::random(
                    [c.width],
                    burn::tensor::Distribution::Normal(0.0, 0.02),
                    device,
                )),
                position_embedding: EmbeddingConfig::new(g * g + 1, c.width).init(device),
            },
            pre_layrnorm: layer_norm(c.width, device),
            encoder: Encoder::new(c.width, c.layers, c.heads, c.mlp_width, device),
            post_layernorm: layer_norm(c.width, device),
        }
    }

    /// The pooled (class-token) output, `[batch, width]`.
    fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let patches = self.embeddings.patch_embedding.forward(pixels);
        let [b, d, gh, gw] = patches.dims();
        let patches = patches.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let class = self.embeddings.class_embedding.val().reshape([1, 1, d]).expand([b, 1, d]);
        let x = Tensor::cat(vec![class, patches], 1);
        let x = x + self.embeddings.position_embedding.weight.val().unsqueeze::<3>();
        let x = self.encoder.forward(self.pre_layrnorm.forward(x), None);
        let pooled = x.slice([0..b, 0..1, 0..d]).reshape([b, d]);
        self.post_layernorm.forward(pooled)
    }
}

/// Token and position embeddings.
#[derive(Module, Debug)]
pub struct TextEmbeddings {
    /// One vector per token id.
    pub token_embedding: Embedding,
    /// One learned position per slot of the context.
    pub position_embedding: Embedding,
}

/// The text transformer.
#[derive(Module, Debug)]
pub struct TextTransformer {
    /// Embeddings.
    pub embeddings: TextEmbeddings,
    /// The encoder (causal).
    pub encoder: Encoder,
    /// LayerNorm on every position.
    pub final_layer_norm: LayerNorm,
    /// The end-of-text id.
    #[module(skip)]
    pub end_of_text: usize,
}

impl TextTransformer {
    fn new(c: &TextConfig, device: &Device) -> TextTransformer {
        TextTransformer {
            embeddings: TextEmbeddings {
                token_embedding: EmbeddingConfig::new(c.vocab_size, c.width).init(device),
                position_embedding: EmbeddingConfig::new(c.context_length, c.width).init(device),
            },
            encoder: Encoder::new(c.width, c.layers, c.heads, c.mlp_width, device),
            final_layer_norm: layer_norm(c.width, device),
            end_of_text: c.end_of_text,
        }
    }

    /// The final hidden states of every position, `[batch, context, width]` (what Stable Diffusion conditions on).
    pub fn hidden_states(&self, ids: &[Vec<usize>], device: &Device) -> Tensor<3> {
        let b = ids.len();
        let n = ids.first().map_or(0, Vec::len);
        let flat: Vec<i64> = ids.iter().flatten().map(|&i| i as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, n]), device);
        let x = self.embeddings.token_embedding.forward(ids)
            + self.embeddings.position_embedding.weight.val().narrow(0, 0, n).unsqueeze::<3>();
        let mask: Vec<f32> = (0..n * n).map(|k| if k % n > k / n { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, n]), device).unsqueeze::<4>();
        self.final_layer_norm.forward(self.encoder.forward(x, Some(&mask)))
    }

    /// The hidden state at each caption's first end-of-text token (its last token when there is none), `[batch, width]`.
    ///
    /// Attention is causal, so that state does not depend on the padding after it: the tower runs only up to the batch's
    /// last end token (a caption of ten tokens costs ten positions, not the context's 77).
    fn forward(&self, ids: &[Vec<usize>], device: &Device) -> Tensor<2> {
        let ends: Vec<usize> = ids
            .iter()
            .map(|t| t.iter().position(|&i| i == self.end_of_text).unwrap_or(t.len().saturating_sub(1)))
            .collect();
        let used = ends.iter().max().map_or(1, |&e| e + 1);
        let cut: Vec<Vec<usize>> = ids.iter().map(|t| t[..used.min(t.len())].to_vec()).collect();
        let h = self.hidden_states(&cut, device);
        let [b, n, d] = h.dims();
        let rows: Vec<i64> = ends.iter().enumerate().map(|(r, &e)| (r * n + e) as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [b]), device);
        h.reshape([b * n, d]).select(0, rows)
    }
}

/// CLIP: either or both towers and their projections into the joint space.
#[derive(Module, Debug)]
pub struct Clip {
    /// The vision tower.
    pub vision_model: Option<VisionTransformer>,
    /// Vision width to the joint space, no bias.
    pub visual_projection: Option<Linear>,
    /// The text tower.
    pub text_model: Option<TextTransformer>,
    /// Text width to the joint space, no bias.
    pub text_projection: Option<Linear>,
}

impl Clip {
    /// A randomly initialised model of `config`'s shape (weights come from `load.rs`).
    pub fn new(config: &ClipConfig, device: &Device) -> Clip {
        let projection = |width: usize| LinearConfig::new(width, config.embed_dim).with_bias(false).init(device);
        Clip {
            vision_model: config.vision.as_ref().map(|v| VisionTransformer::new(v, device)),
            visual_projection: config.vision.as_ref().map(|v| projection(v.width)),
            text_model: config.text.as_ref().map(|t| TextTransformer::new(t, device)),
            text_projection: config.text.as_ref().map(|t| projection(t.width)),
        }
    }

    /// Image embeddings, `[batch, embed_dim]`, from normalised pixels `[batch, 3, size, size]`; `None` without a vision tower.
    pub fn image_embeds(&self, pixels: Tensor<4>) -> Option<Tensor<2>> {
        let (tower, projection) = (self.vision_model.as_ref()?, self.visual_projection.as_ref()?);
        Some(projection.forward(tower.forward(pixels)))
    }

    /// Text embeddings, `[batch, embed_dim]`, from token ids (each `context_length` long); `None` without a text tower.
    pub fn text_embeds(&self, ids: &[Vec<usize>], device: &Device) -> Option<Tensor<2>> {
        let (tower, projection) = (self.text_model.as_ref()?, self.text_projection.as_ref()?);
        Some(projection.forward(tower.forward(ids, device)))
    }
}
