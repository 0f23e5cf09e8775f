//! The pieces the UNet and the VAE share, named as diffusers names them so that its checkpoints load by name:
//! `ResnetBlock2D`, `Downsample2D`, `Upsample2D` and `Attention`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};

/// A 3×3 convolution with padding 1 (or a 1×1 one without).
pub(crate) fn conv(c_in: usize, c_out: usize, kernel: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
        .init(device)
}

/// GroupNorm with affine parameters.
pub(crate) fn group_norm(groups: usize, channels: usize, eps: f64, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels).with_epsilon(eps).init(device)
}

/// `ResnetBlock2D`: `x + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(temb)))))`, the skip through a 1×1
/// convolution when the channels change. No dropout (inference), output scale 1.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    /// Before the first convolution.
    pub norm1: GroupNorm,
    /// The first 3×3 convolution.
    pub conv1: Conv2d,
    /// The time embedding to a per-channel shift (the UNet's; the VAE has none).
    pub time_emb_proj: Option<Linear>,
    /// Before the second convolution.
    pub norm2: GroupNorm,
    /// The second 3×3 convolution.
    pub conv2: Conv2d,
    /// The skip's 1×1 convolution, when the channels change.
    pub conv_shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    pub(crate) fn new(
        c_in: usize,
        c_out: usize,
        temb: Option<usize>,
        groups: usize,
        eps: f64,
        device: &Device,
    ) -> ResnetBlock {
        ResnetBlock {
            norm1: group_norm(groups, c_in, eps, device),
            conv1: conv(c_in, c_out, 3, device),
            time_emb_proj: temb.map(|t| LinearConfig::new(t, c_out).init(device)),
            norm2: group_norm(groups, c_out, eps, device),
            conv2: conv(c_out, c_out, 3, device),
            conv_shortcut: (c_in != c_out).then(|| conv(c_in, c_out, 1, device)),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>, temb: Option<&Tensor<2>>) -> Tensor<4> {
        let mut h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let shift = proj.forward(silu(t.clone()));
            let [b, c] = shift.dims();
            h = h + shift.reshape([b, c, 1, 1]);
        }
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x),
            None => x,
        };
        skip + h
    }
}

/// `Downsample2D`: a 3×3 convolution of stride 2, padded by 1 on every side (the UNet's) or by 1 on the right and bottom
/// only (the VAE's, `padding = 0` and an explicit pad).
#[derive(Module, Debug)]
pub struct Downsample {
    /// The strided convolution.
    pub conv: Conv2d,
    /// Pad right and bottom only.
    #[module(skip)]
    pub asymmetric: bool,
}

impl Downsample {
    pub(crate) fn new(channels: usize, asymmetric: bool, device: &Device) -> Downsample {
        let padding = if asymmetric { PaddingConfig2d::Valid } else { PaddingConfig2d::Explicit(1, 1, 1, 1) };
        Downsample {
            conv: Conv2dConfig::new([channels, channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(padding)
                .init(device),
            asymmetric,
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.asymmetric { x.pad((0, 1, 0, 1), 0.0) } else { x };
        self.conv.forward(x)
    }
}

/// `Upsample2D`: nearest-neighbour ×2, then a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    /// The convolution after the upsampling.
    pub conv: Conv2d,
}

impl Upsample {
    pub(crate) fn new(channels: usize, device: &Device) -> Upsample {
        Upsample { conv: conv(channels, channels, 3, device) }
    }

    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let up = x.reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([b, c, 2 * h, 2 * w]);
        self.conv.forward(up)
    }
}

/// diffusers' `Attention` (its default processor): multi-head scaled dot-product attention over `[batch, tokens, width]`,
/// keys and values from the context when one is given (cross-attention). `to_out` is diffusers' `to_out.0`.
#[derive(Module, Debug)]
pub struct Attention {
    /// Queries.
    pub to_q: Linear,
    /// Keys.
    pub to_k: Linear,
    /// Values.
    pub to_v: Linear,
    /// The output projection (with a bias).
    pub to_out: Linear,
    /// Heads.
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    /// `query` wide queries over `context` wide keys and values, `heads` heads, biased projections when `bias`.
    pub(crate) fn new(query: usize, context: usize, heads: usize, bias: bool, device: &Device) -> Attention {
        Attention {
            to_q: LinearConfig::new(query, query).with_bias(bias).init(device),
            to_k: LinearConfig::new(context, query).with_bias(bias).init(device),
            to_v: LinearConfig::new(context, query).with_bias(bias).init(device),
            to_out: LinearConfig::new(query, query).init(device),
            heads,
        }
    }

    pub(crate) fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let context = context.unwrap_or_else(|| x.clone());
        let m = context.dims()[1];
        let hd = d / self.heads;
        let split = |t: Tensor<3>, len: usize| t.reshape([b, len, self.heads, hd]).swap_dims(1, 2);
        let q = split(self.to_q.forward(x), n);
        let k = split(self.to_k.forward(context.clone()), m);
        let v = split(self.to_v.forward(context), m);
        let scores = q.matmul(k.transpose()).mul_scalar((hd as f64).powf(-0.5));
        let out = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        self.to_out.forward(out)
    }
}

/// `[batch, channels, h, w]` to `[batch, h·w, channels]`.
pub(crate) fn to_tokens(x: Tensor<4>) -> Tensor<3> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).swap_dims(1, 2)
}

/// `[batch, h·w, channels]` back to `[batch, channels, h, w]`.
pub(crate) fn from_tokens(x: Tensor<3>, h: usize, w: usize) -> Tensor<4> {
    let [b, _, c] = x.dims();
    x.swap_dims(1, 2).reshape([b, c, h, w])
}
