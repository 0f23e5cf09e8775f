//! Stable Diffusion v1's UNet, diffusers' `UNet2DConditionModel` (Rombach et al. 2022), structured and named as diffusers
//! names it (`down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight`), except that diffusers' `to_out.0`,
//! `ff.net.0.proj` and `ff.net.2` are `to_out`, `ff.proj` and `ff.out` here (`load.rs` maps the names).
//!
//! Forward: sinusoidal timestep features (cos first, `flip_sin_to_cos`, frequency shift 0) through `time_embedding`
//! (linear, SiLU, linear); `conv_in`; the down blocks, keeping every ResNet's (or transformer's) output and every
//! downsampler's for the skips; the mid block (ResNet, transformer, ResNet); the up blocks, each ResNet first concatenating
//! the last skip; GroupNorm, SiLU, `conv_out`. ResNets and the final norm use eps 1e-5; the transformers' GroupNorm 1e-6.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, silu};

use crate::blocks::{Attention, Downsample, ResnetBlock, Upsample, conv, from_tokens, group_norm, to_tokens};
use crate::config::UNetConfig;

const RESNET_EPS: f64 = 1e-5;
const TRANSFORMER_NORM_EPS: f64 = 1e-6;

/// The feed-forward of a transformer block: GEGLU (`proj` to twice the hidden width, `h · gelu(gate)`), then `out`.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// Width to 2 × 4 × width (diffusers' `ff.net.0.proj`).
    pub proj: Linear,
    /// 4 × width back to width (diffusers' `ff.net.2`).
    pub out: Linear,
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [h, gate] = <[Tensor<3>; 2]>::try_from(self.proj.forward(x).chunk(2, 2)).expect("two chunks");
        self.out.forward(h * gelu(gate))
    }
}

/// `BasicTransformerBlock`: self-attention, cross-attention on the text, GEGLU feed-forward, each after a LayerNorm and
/// added back.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    /// Before self-attention.
    pub norm1: LayerNorm,
    /// Self-attention (no biases on q, k, v).
    pub attn1: Attention,
    /// Before cross-attention.
    pub norm2: LayerNorm,
    /// Cross-attention on the conditioning.
    pub attn2: Attention,
    /// Before the feed-forward.
    pub norm3: LayerNorm,
    /// The feed-forward.
    pub ff: FeedForward,
}

impl TransformerBlock {
    fn new(width: usize, context: usize, heads: usize, device: &Device) -> TransformerBlock {
        let norm = || LayerNormConfig::new(width).with_epsilon(1e-5).init(device);
        TransformerBlock {
            norm1: norm(),
            attn1: Attention::new(width, width, heads, false, device),
            norm2: norm(),
            attn2: Attention::new(width, context, heads, false, device),
            norm3: norm(),
            ff: FeedForward {
                proj: LinearConfig::new(width, 8 * width).init(device),
                out: LinearConfig::new(4 * width, width).init(device),
            },
        }
    }

    fn forward(&self, x: Tensor<3>, context: &Tensor<3>) -> Tensor<3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self.attn2.forward(self.norm2.forward(x.clone()), Some(context.clone())) + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// `Transformer2DModel` as v1 uses it: GroupNorm, a 1×1 `proj_in`, one transformer block over the pixels as tokens, a
/// 1×1 `proj_out`, added back.
#[derive(Module, Debug)]
pub struct Transformer2D {
    /// GroupNorm (eps 1e-6).
    pub norm: GroupNorm,
    /// 1×1 convolution in.
    pub proj_in: Conv2d,
    /// The transformer blocks (one in v1).
    pub transformer_blocks: Vec<TransformerBlock>,
    /// 1×1 convolution out.
    pub proj_out: Conv2d,
}

impl Transformer2D {
    fn new(c: &UNetConfig, width: usize, device: &Device) -> Transformer2D {
        Transformer2D {
            norm: group_norm(c.norm_groups, width, TRANSFORMER_NORM_EPS, device),
            proj_in: conv(width, width, 1, device),
            transformer_blocks: vec![TransformerBlock::new(width, c.cross_attention_dim, c.heads, device)],
            proj_out: conv(width, width, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>, context: &Tensor<3>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let mut t = to_tokens(self.proj_in.forward(self.norm.forward(x.clone())));
        for block in &self.transformer_blocks {
            t = block.forward(t, context);
        }
        self.proj_out.forward(from_tokens(t, h, w)) + x
    }
}

/// One down or up block: ResNets, each followed by a transformer in cross-attention blocks, then at most one resampler.
#[derive(Module, Debug)]
pub struct DownBlock {
    /// The ResNets.
    pub resnets: Vec<ResnetBlock>,
    /// One transformer per ResNet, or none.
    pub attentions: Vec<Transformer2D>,
    /// The downsampler, when the block has one.
    pub downsamplers: Vec<Downsample>,
}

/// An up block (see [`DownBlock`]).
#[derive(Module, Debug)]
pub struct UpBlock {
    /// The ResNets, each reading the previous output concatenated with a skip.
    pub resnets: Vec<ResnetBlock>,
    /// One transformer per ResNet, or none.
    pub attentions: Vec<Transformer2D>,
    /// The upsampler, when the block has one.
    pub upsamplers: Vec<Upsample>,
}

/// `UNetMidBlock2DCrossAttn`: ResNet, transformer, ResNet.
#[derive(Module, Debug)]
pub struct MidBlock {
    /// The two ResNets.
    pub resnets: Vec<ResnetBlock>,
    /// The transformer between them.
    pub attentions: Vec<Transformer2D>,
}

/// `TimestepEmbedding`: linear, SiLU, linear.
#[derive(Module, Debug)]
pub struct TimestepEmbedding {
    /// Sinusoidal features to the embedding width.
    pub linear_1: Linear,
    /// The embedding width to itself.
    pub linear_2: Linear,
}

/// The UNet.
#[derive(Module, Debug)]
pub struct UNet {
    /// Latents to the first block's channels.
    pub conv_in: Conv2d,
    /// The timestep's embedding.
    pub time_embedding: TimestepEmbedding,
    /// The down blocks.
    pub down_blocks: Vec<DownBlock>,
    /// The mid block.
    pub mid_block: MidBlock,
    /// The up blocks.
    pub up_blocks: Vec<UpBlock>,
    /// The final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// To the predicted noise.
    pub conv_out: Conv2d,
    /// Channels of the sinusoidal features.
    #[module(skip)]
    pub time_channels: usize,
}

impl UNet {
    /// A randomly initialised UNet of `c`'s shape (weights come from `load.rs`); `c` must be valid.
    pub fn new(c: &UNetConfig, device: &Device) -> UNet {
        let ch = &c.block_out_channels;
        let (n, temb, g) = (ch.len(), c.time_embed_dim(), c.norm_groups);
        let resnet = |i: usize, o: usize| ResnetBlock::new(i, o, Some(temb), g, RESNET_EPS, device);
        let attentions = |attn: bool, width: usize, count: usize| -> Vec<Transformer2D> {
            if attn { (0..count).map(|_| Transformer2D::new(c, width, device)).collect() } else { Vec::new() }
        };
        let down_blocks = (0..n)
            .map(|i| {
                let (c_in, c_out) = (if i == 0 { ch[0] } else { ch[i - 1] }, ch[i]);
                DownBlock {
                    resnets: (0..c.layers_per_block)
                        .map(|j| resnet(if j == 0 { c_in } else { c_out }, c_out))
                        .collect(),
                    attentions: attentions(c.cross_attention[i], c_out, c.layers_per_block),
                    downsamplers: if i + 1 < n { vec![Downsample::new(c_out, false, device)] } else { Vec::new() },
                }
            })
            .collect();
        let last = ch[n - 1];
        let mid_block =
            MidBlock { resnets: vec![resnet(last, last), resnet(last, last)], attentions: attentions(true, last, 1) };
        let up_blocks = (0..n)
            .map(|i| {
                let rev = |k: usize| ch[n - 1 - k.min(n - 1)];
                let (prev_out, c_out, c_in) = (if i == 0 { last } else { rev(i - 1) }, rev(i), rev(i + 1));
                let layers = c.layers_per_block + 1;
                UpBlock {
                    resnets: (0..layers)
                        .map(|j| {
                            let skip = if j + 1 == layers { c_in } else { c_out };
                            resnet(if j == 0 { prev_out } else { c_out } + skip, c_out)
                        })
                        .collect(),
                    attentions: attentions(c.cross_attention[n - 1 - i], c_out, layers),
                    upsamplers: if i + 1 < n { vec![Upsample::new(c_out, device)] } else { Vec::new() },
                }
            })
            .collect();
        UNet {
            conv_in: conv(c.in_channels, ch[0], 3, device),
            time_embedding: TimestepEmbedding {
                linear_1: LinearConfig::new(ch[0], temb).init(device),
                linear_2: LinearConfig::new(temb, temb).init(device),
            },
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(g, ch[0], RESNET_EPS, device),
            conv_out: conv(ch[0], c.out_channels, 3, device),
            time_channels: ch[0],
        }
    }

    /// The predicted noise `[batch, out, h, w]` for latents `[batch, in, h, w]` at one `timestep` for the whole batch,
    /// conditioned on `context` `[batch, tokens, cross_attention_dim]`. `h` and `w` must be multiples of 2^(blocks - 1).
    pub fn forward(&self, latents: Tensor<4>, timestep: f32, context: &Tensor<3>) -> Tensor<4> {
        let device = latents.device();
        let b = latents.dims()[0];
        let features = timestep_features(timestep, self.time_channels);
        let features = Tensor::<1>::from_data(TensorData::new(features, [self.time_channels]), &device)
            .unsqueeze::<2>()
            .expand([b, self.time_channels]);
        let temb = self.time_embedding.linear_2.forward(silu(self.time_embedding.linear_1.forward(features)));
        let temb = Some(&temb);
        let mut x = self.conv_in.forward(latents);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            for (j, resnet) in block.resnets.iter().enumerate() {
                x = resnet.forward(x, temb);
                if let Some(attn) = block.attentions.get(j) {
                    x = attn.forward(x, context);
                }
                skips.push(x.clone());
            }
            for down in &block.downsamplers {
                x = down.forward(x);
                skips.push(x.clone());
            }
        }
        x = self.mid_block.resnets[0].forward(x, temb);
        for (attn, resnet) in self.mid_block.attentions.iter().zip(&self.mid_block.resnets[1..]) {
            x = resnet.forward(attn.forward(x, context), temb);
        }
        for block in &self.up_blocks {
            for (j, resnet) in block.resnets.iter().enumerate() {
                let skip = skips.pop().expect("one skip per up-block ResNet");
                x = resnet.forward(Tensor::cat(vec![x, skip], 1), temb);
                if let Some(attn) = block.attentions.get(j) {
                    x = attn.forward(x, context);
                }
            }
            for up in &block.upsamplers {
                x = up.forward(x);
            }
        }
        self.conv_out.forward(silu(self.conv_norm_out.forward(x)))
    }
}

/// diffusers' `get_timestep_embedding` with `flip_sin_to_cos` and no frequency shift, in `f32` as torch computes it:
/// frequencies `exp(-ln(10000) · k / half)`, then `[cos(t f), sin(t f)]`.
pub fn timestep_features(t: f32, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let log_period = -(10000f64.ln() as f32);
    let angles: Vec<f32> = (0..half).map(|k| t * ((log_period * k as f32) / half as f32).exp()).collect();
    let mut out: Vec<f32> = angles.iter().map(|a| a.cos()).chain(angles.iter().map(|a| a.sin())).collect();
    out.resize(channels, 0.0);
    out
}
