//! EfficientNet-Lite for inference: every BatchNorm folded into the convolution before it (`w γ/σ`, bias `β − μ γ/σ`,
//! `σ = √(var + ε)`), activations channels-last ([`crate::channels_last`]), so each 1 × 1 convolution is one matrix
//! product over every pixel of a chunk ([`crate::matmul::by_rows`]) and the depthwise convolutions and the stem run in
//! [`crate::channels_last`]'s kernels with the expansion's bias and ReLU6 fused into the depthwise layer that reads it;
//! batches are cut into chunks of [`CHUNK`] images so a block's activations stay in cache. The embedder runs this;
//! [`crate::effnet::EfficientNet`] stays the loaded, parameter-for-parameter copy of timm's, and the tests hold the two
//! to the same reference.

use burn::nn::BatchNorm;
use burn::prelude::*;

use crate::channels_last::{Spatial, add_bias, dense_relu6, depthwise_relu6, relu6_mean};
use crate::effnet::{EfficientNet, SameConv};
use crate::scratch::{sized, with_kept};

/// Images per pass through the network: the largest activation of EfficientNet-Lite0 at 128 pixels (96 channels of 64 ×
/// 64) is 25 MB for 16 images, 100 MB for a batch of 64; of 4, 8, 16 and 64, 16 was fastest (BENCHMARKS.md).
pub(crate) const CHUNK: usize = 16;

/// The most input channels of the stem's dense convolution in [`crate::channels_last::dense_relu6`].
const SMALL_INPUT: usize = 4;

/// A convolution with its BatchNorm folded in, in the layout its kernel reads.
#[derive(Debug, Clone)]
enum Weights {
    /// A 1 × 1 convolution: `[in, out]`, the right-hand side of `[pixels, in] · [in, out]`.
    Pointwise(Vec<f32>),
    /// A depthwise convolution: `[k, k, channels]`.
    Depthwise(Vec<f32>),
    /// A dense convolution of few input channels (the stem): `[k, k, in, out]`.
    Dense(Vec<f32>),
}

/// A convolution with its BatchNorm folded in.
#[derive(Debug, Clone)]
struct Folded {
    /// The shape and padding of the convolution (its weight unused here).
    conv: SameConv,
    weights: Weights,
    bias: Vec<f32>,
}

impl Folded {
    /// The folded layer, or `None` for a convolution none of the channels-last kernels runs.
    fn new(conv: &SameConv, bn: &BatchNorm) -> Option<Folded> {
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
        let bias = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let [out, per_group, k, kw] = conv.weight.dims();
        let weight = conv.weight.val() * scale.reshape([out, 1, 1, 1]);
        let values = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().expect("f32 weights");
        let weights = if conv.groups == 1 && k == 1 && kw == 1 && conv.stride == 1 {
            Weights::Pointwise(
                weight.reshape([out, per_group]).transpose().into_data().try_into_vec().expect("f32 weights"),
            )
        } else if conv.groups == out && per_group == 1 && k == kw {
            Weights::Depthwise(values(weight.permute([2, 3, 1, 0])))
        } else if conv.groups == 1 && per_group <= SMALL_INPUT && k == kw {
            Weights::Dense(values(weight.permute([2, 3, 1, 0])))
        } else {
            return None;
        };
        let bias = bias.into_data().try_into_vec::<f32>().expect("f32 bias");
        Some(Folded { conv: conv.clone(), weights, bias })
    }

    /// The kernel geometry of this convolution over `channels` planes of `h × w`.
    fn geometry(&self, channels: usize, h: usize, w: usize) -> Spatial {
        let [(top, bottom), (left, right)] = self.conv.padding(h, w);
        let k = self.conv.weight.dims()[2];
        let out = |size: usize, before: usize, after: usize| (size + before + after - k) / self.conv.stride + 1;
        let (out_h, out_w) = (out(h, top, bottom), out(w, left, right));
        Spatial { channels, h, w, k, stride: self.conv.stride, top, left, out_h, out_w }
    }

    /// The channels-last product `x [pixels, in] · w [in, out]` of a 1 × 1 convolution into `out`, each block of rows
    /// then handed to `finish(block, first_row)`.
    fn pointwise(&self, x: &[f32], out: &mut [f32], finish: impl Fn(&mut [f32], usize) + Sync) {
        let Weights::Pointwise(w) = &self.weights else { unreachable!("checked when the network was folded") };
        let n = self.out_channels();
        crate::matmul::by_rows(x, w, (w.len() / n.max(1), n), out, finish);
    }

    /// The output channels.
    fn out_channels(&self) -> usize {
        self.bias.len()
    }
}

/// A chunk's activation buffers, reused layer after layer and chunk after chunk (fresh buffers cost their pages'
/// zeroing, a tenth of an embedding's time): each grows to the largest activation it holds and is then sliced.
#[derive(Default)]
struct Buffers {
    /// The block's input (the stem's output, then each block's).
    input: Vec<f32>,
    /// The expansion's output.
    expanded: Vec<f32>,
    /// The depthwise layer's output.
    filtered: Vec<f32>,
    /// The projection's output, the next block's input.
    output: Vec<f32>,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens = [&self.input, &self.expanded, &self.filtered, &self.output].map(Vec::len);
        f.debug_struct("Buffers").field("lengths", &lens).finish()
    }
}

/// The shape of a chunk's channels-last activations: `[images, h, w, channels]`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    images: usize,
    h: usize,
    w: usize,
    channels: usize,
}

impl Shape {
    fn len(&self) -> usize {
        self.images * self.h * self.w * self.channels
    }
}

#[derive(Debug, Clone)]
struct Block {
    expand: Option<Folded>,
    depthwise: Folded,
    project: Folded,
    residual: bool,
}

/// EfficientNet-Lite's features with its BatchNorms folded (inference only).
#[derive(Debug)]
pub(crate) struct FusedEffNet {
    stem: Folded,
    blocks: Vec<Block>,
    head: Folded,
    /// Kept from batch to batch (a call that finds them in use, from another thread, takes fresh ones).
    buffers: std::sync::Mutex<Buffers>,
}

impl FusedEffNet {
    /// The network folded for inference, or `None` when one of its convolutions is of a shape the channels-last
    /// kernels do not run (then the embedder runs [`EfficientNet`] itself).
    pub(crate) fn new(model: &EfficientNet) -> Option<FusedEffNet> {
        let blocks = model
            .blocks
            .iter()
            .map(|b| {
                let expand = match b.expand_conv.as_ref().zip(b.bn0.as_ref()) {
                    Some((c, bn)) => Some(Folded::new(c, bn).filter(|f| matches!(f.weights, Weights::Pointwise(_)))?),
                    None => None,
                };
                let depthwise = Folded::new(&b.depthwise_conv, &b.bn1)?;
                let project = Folded::new(&b.project_conv, &b.bn2)?;
                let fits = matches!(depthwise.weights, Weights::Depthwise(_))
                    && matches!(project.weights, Weights::Pointwise(_));
                fits.then_some(Block { expand, depthwise, project, residual: b.residual })
            })
            .collect::<Option<Vec<_>>>()?;
        let stem = Folded::new(&model.conv_stem, &model.bn0).filter(|f| matches!(f.weights, Weights::Dense(_)))?;
        let head = Folded::new(&model.conv_head, &model.bn1).filter(|f| matches!(f.weights, Weights::Pointwise(_)))?;
        Some(FusedEffNet { stem, blocks, head, buffers: Default::default() })
    }

    /// Pooled penultimate features, `[batch, head]`: [`EfficientNet::features`] up to rounding, [`CHUNK`] images at a time.
    pub(crate) fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, channels, h, w] = x.dims();
        let device = x.device();
        let data = x.into_data();
        let pixels = data.as_slice::<f32>().expect("f32 images");
        let per_image = channels * h * w;
        let mut out = Vec::with_capacity(n * self.head.out_channels());
        with_kept(&self.buffers, |buffers| {
            for chunk in pixels.chunks(CHUNK * per_image.max(1)) {
                out.extend(self.chunk(chunk, channels, h, w, buffers));
            }
        });
        Tensor::from_data(TensorData::new(out, [n, self.head.out_channels()]), &device)
    }

    /// The pooled features of a chunk of images (`[images, channels, h, w]`, channels first).
    fn chunk(&self, x: &[f32], channels: usize, h: usize, w: usize, buffers: &mut Buffers) -> Vec<f32> {
        let g = self.stem.geometry(channels, h, w);
        let Weights::Dense(stem) = &self.stem.weights else { unreachable!("checked when the network was folded") };
        let images = x.len() / (channels * h * w).max(1);
        let mut shape = Shape { images, h: g.out_h, w: g.out_w, channels: self.stem.out_channels() };
        dense_relu6(&g, shape.channels, x, stem, &self.stem.bias, sized(&mut buffers.input, shape.len()));
        for block in &self.blocks {
            shape = block.forward(shape, buffers);
            std::mem::swap(&mut buffers.input, &mut buffers.output);
        }
        let head = Shape { channels: self.head.out_channels(), ..shape };
        let y = sized(&mut buffers.output, head.len());
        self.head.pointwise(&buffers.input[..shape.len()], y, |_, _| {});
        relu6_mean(y, shape.h * shape.w, &self.head.bias)
    }
}

impl Block {
    /// The block from `buffers.input` into `buffers.output`: expansion (its bias and ReLU6 left to the depthwise layer),
    /// depthwise, projection plus its bias and the residual. Returns the output's shape.
    fn forward(&self, shape: Shape, buffers: &mut Buffers) -> Shape {
        let Buffers { input, expanded, filtered, output } = buffers;
        let input = &input[..shape.len()];
        let (x, owed, channels) = match &self.expand {
            Some(e) => {
                let wide = Shape { channels: e.out_channels(), ..shape };
                let y = sized(expanded, wide.len());
                e.pointwise(input, y, |_, _| {});
                (&*y, Some(e.bias.as_slice()), wide.channels)
            }
            None => (input, None, shape.channels),
        };
        let Weights::Depthwise(taps) = &self.depthwise.weights else {
            unreachable!("checked when the network was folded")
        };
        let g = self.depthwise.geometry(channels, shape.h, shape.w);
        let out = Shape { images: shape.images, h: g.out_h, w: g.out_w, channels };
        let f = sized(filtered, out.len());
        depthwise_relu6(&g, x, taps, &self.depthwise.bias, owed, f);
        let projected = Shape { channels: self.project.out_channels(), ..out };
        let y = sized(output, projected.len());
        let (bias, n) = (&self.project.bias, projected.channels);
        let residual = self.residual.then_some(input);
        self.project.pointwise(f, y, |block, first| {
            add_bias(block, bias, residual.map(|r| &r[first * n..first * n + block.len()]));
        });
        projected
    }
}
