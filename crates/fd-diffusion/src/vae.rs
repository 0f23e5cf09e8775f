//! Stable Diffusion v1's VAE, diffusers' `AutoencoderKL` (Kingma and Welling 2014; Rombach et al. 2022), named as diffusers
//! names it (`decoder.up_blocks.0.resnets.2.conv1.weight`, `encoder.mid_block.attentions.0.to_q.weight`).
//!
//! Encoder: `conv_in`, down blocks of ResNets (each but the last ending in a stride-2 convolution padded right and bottom),
//! the mid block (ResNet, one-head self-attention over the pixels, ResNet), GroupNorm, SiLU, `conv_out` to twice the latent
//! channels (mean and log-variance), then the 1×1 `quant_conv`. Decoder: the 1×1 `post_quant_conv`, `conv_in`, the mid
//! block, up blocks of one more ResNet each (each but the last ending in a nearest ×2 upsampling and a convolution),
//! GroupNorm, SiLU, `conv_out`. Every GroupNorm has eps 1e-6.

use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::blocks::{Attention, Downsample, ResnetBlock, Upsample, conv, from_tokens, group_norm, to_tokens};
use crate::config::VaeConfig;

const EPS: f64 = 1e-6;

/// The mid block's attention: one head, GroupNorm first, biased projections, added back.
#[derive(Module, Debug)]
pub struct VaeAttention {
    /// GroupNorm before attention.
    pub group_norm: GroupNorm,
    /// The attention.
    pub attention: Attention,
}

impl VaeAttention {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let t = to_tokens(self.group_norm.forward(x.clone()));
        from_tokens(self.attention.forward(t, None), h, w) + x
    }
}

/// `UNetMidBlock2D` without a time embedding: ResNet, attention, ResNet.
#[derive(Module, Debug)]
pub struct VaeMidBlock {
    /// The two ResNets.
    pub resnets: Vec<ResnetBlock>,
    /// The attention between them.
    pub attentions: Vec<VaeAttention>,
}

impl VaeMidBlock {
    fn new(c: &VaeConfig, channels: usize, device: &Device) -> VaeMidBlock {
        let resnet = || ResnetBlock::new(channels, channels, None, c.norm_groups, EPS, device);
        VaeMidBlock {
            resnets: vec![resnet(), resnet()],
            attentions: vec![VaeAttention {
                group_norm: group_norm(c.norm_groups, channels, EPS, device),
                attention: Attention::new(channels, channels, 1, true, device),
            }],
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, None);
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = resnet.forward(attn.forward(x), None);
        }
        x
    }
}

/// An encoder block: ResNets, then at most one downsampler.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// The ResNets.
    pub resnets: Vec<ResnetBlock>,
    /// The downsampler, when the block has one.
    pub downsamplers: Vec<Downsample>,
}

/// A decoder block: ResNets, then at most one upsampler.
#[derive(Module, Debug)]
pub struct DecoderBlock {
    /// The ResNets.
    pub resnets: Vec<ResnetBlock>,
    /// The upsampler, when the block has one.
    pub upsamplers: Vec<Upsample>,
}

/// The encoder.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Pixels to the first block's channels.
    pub conv_in: Conv2d,
    /// The down blocks.
    pub down_blocks: Vec<EncoderBlock>,
    /// The mid block.
    pub mid_block: VaeMidBlock,
    /// The final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// To mean and log-variance.
    pub conv_out: Conv2d,
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Decoder {
    /// Latents to the last block's channels.
    pub conv_in: Conv2d,
    /// The mid block.
    pub mid_block: VaeMidBlock,
    /// The up blocks.
    pub up_blocks: Vec<DecoderBlock>,
    /// The final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// To pixels.
    pub conv_out: Conv2d,
}

/// The VAE (decoder-only when loaded from an ONNX export of its decoder).
#[derive(Module, Debug)]
pub struct Vae {
    /// The encoder.
    pub encoder: Option<Encoder>,
    /// The decoder.
    pub decoder: Decoder,
    /// 1×1 on the encoder's moments.
    pub quant_conv: Option<Conv2d>,
    /// 1×1 on the latents before decoding.
    pub post_quant_conv: Conv2d,
    /// The latent scaling factor.
    #[module(skip)]
    pub scaling_factor: f32,
}

impl Vae {
    /// A randomly initialised VAE of `c`'s shape (weights come from `load.rs`); `c` must be valid.
    pub fn new(c: &VaeConfig, device: &Device) -> Vae {
        Vae::build(c, true, device)
    }

    /// The decoder and `post_quant_conv` alone.
    pub fn decoder_only(c: &VaeConfig, device: &Device) -> Vae {
        Vae::build(c, false, device)
    }

    fn build(c: &VaeConfig, with_encoder: bool, device: &Device) -> Vae {
        let ch = &c.block_out_channels;
        let (n, g, l) = (ch.len(), c.norm_groups, c.latent_channels);
        let resnet = |i: usize, o: usize| ResnetBlock::new(i, o, None, g, EPS, device);
        let encoder = with_encoder.then(|| Encoder {
            conv_in: conv(c.in_channels, ch[0], 3, device),
            down_blocks: (0..n)
                .map(|i| {
                    let (c_in, c_out) = (if i == 0 { ch[0] } else { ch[i - 1] }, ch[i]);
                    EncoderBlock {
                        resnets: (0..c.layers_per_block)
                            .map(|j| resnet(if j == 0 { c_in } else { c_out }, c_out))
                            .collect(),
                        downsamplers: if i + 1 < n { vec![Downsample::new(c_out, true, device)] } else { Vec::new() },
                    }
                })
                .collect(),
            mid_block: VaeMidBlock::new(c, ch[n - 1], device),
            conv_norm_out: group_norm(g, ch[n - 1], EPS, device),
            conv_out: conv(ch[n - 1], 2 * l, 3, device),
        });
        let decoder = Decoder {
            conv_in: conv(l, ch[n - 1], 3, device),
            mid_block: VaeMidBlock::new(c, ch[n - 1], device),
            up_blocks: (0..n)
                .map(|i| {
                    let (c_in, c_out) = (ch[n - 1 - i.saturating_sub(1)], ch[n - 1 - i]);
                    let layers = c.layers_per_block + 1;
                    DecoderBlock {
                        resnets: (0..layers).map(|j| resnet(if j == 0 { c_in } else { c_out }, c_out)).collect(),
                        upsamplers: if i + 1 < n { vec![Upsample::new(c_out, device)] } else { Vec::new() },
                    }
                })
                .collect(),
            conv_norm_out: group_norm(g, ch[0], EPS, device),
            conv_out: conv(ch[0], c.in_channels, 3, device),
        };
        Vae {
            encoder,
            decoder,
            quant_conv: with_encoder.then(|| conv(2 * l, 2 * l, 1, device)),
            post_quant_conv: conv(l, l, 1, device),
            scaling_factor: c.scaling_factor,
        }
    }

    /// The posterior's mean and log-variance, each `[batch, latent, h / f, w / f]`, for images `[batch, 3, h, w]` in -1..1;
    /// `None` for a decoder-only VAE.
    pub fn encode(&self, images: Tensor<4>) -> Option<(Tensor<4>, Tensor<4>)> {
        let (e, quant_conv) = (self.encoder.as_ref()?, self.quant_conv.as_ref()?);
        let mut x = e.conv_in.forward(images);
        for block in &e.down_blocks {
            for resnet in &block.resnets {
                x = resnet.forward(x, None);
            }
            for down in &block.downsamplers {
                x = down.forward(x);
            }
        }
        let x = e.conv_out.forward(silu(e.conv_norm_out.forward(e.mid_block.forward(x))));
        let moments = quant_conv.forward(x);
        let [mean, logvar] = <[Tensor<4>; 2]>::try_from(moments.chunk(2, 1)).expect("two halves");
        Some((mean, logvar.clamp(-30.0, 20.0)))
    }

    /// Images `[batch, 3, h · f, w · f]` in about -1..1 from *scaled* latents (divided by the scaling factor first, as
    /// Stable Diffusion's pipelines decode).
    pub fn decode(&self, latents: Tensor<4>) -> Tensor<4> {
        let d = &self.decoder;
        let z = self.post_quant_conv.forward(latents.div_scalar(self.scaling_factor));
        let mut x = d.mid_block.forward(d.conv_in.forward(z));
        for block in &d.up_blocks {
            for resnet in &block.resnets {
                x = resnet.forward(x, None);
            }
            for up in &block.upsamplers {
                x = up.forward(x);
            }
        }
        d.conv_out.forward(silu(d.conv_norm_out.forward(x)))
    }
}
