//! EfficientNet-Lite for inference: every BatchNorm folded into the convolution before it (`w γ/σ`, bias `β − μ γ/σ`,
//! `σ = √(var + ε)`), the depthwise convolutions in [`crate::depthwise`] with the ReLU6 before and after them fused in,
//! and batches cut into chunks of [`CHUNK`] images so a block's activations stay in cache. The embedder runs this;
//! [`crate::effnet::EfficientNet`] stays the loaded, parameter-for-parameter copy of timm's, and the tests hold the two
//! to the same reference.

use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::module::conv2d;

use crate::depthwise::{Depthwise, dense_relu6, depthwise_relu6};
use crate::effnet::{EfficientNet, SameConv};

/// Images per pass through the network: the largest activation of EfficientNet-Lite0 at 128 pixels (96 channels of 64 ×
/// 64) is 25 MB for 16 images, 100 MB for a batch of 64; of 4, 8, 16 and 64, 16 was fastest (BENCHMARKS.md).
pub(crate) const CHUNK: usize = 16;

/// The most input channels of a dense convolution run by [`crate::depthwise::dense_relu6`].
const SMALL_INPUT: usize = 4;

/// A convolution with its BatchNorm folded in.
#[derive(Debug, Clone)]
struct Folded {
    conv: SameConv,
    bias: Tensor<1>,
    /// The filters as plain values, for the convolutions run by [`crate::depthwise`]: depthwise ones (`[channels, k,
    /// k]`) and dense ones of at most [`SMALL_INPUT`] input channels (`[out, in, k, k]`).
    plain: Option<Vec<f32>>,
    /// The bias as plain values.
    bias_values: Vec<f32>,
}

impl Folded {
    fn new(conv: &SameConv, bn: &BatchNorm) -> Folded {
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
        let bias = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let [out, per_group, _, _] = conv.weight.dims();
        let weight = conv.weight.val() * scale.reshape([out, 1, 1, 1]);
        let depthwise = conv.groups > 1 && conv.groups == out && per_group == 1;
        // A dense convolution of few input channels (the stem) runs in the same kernel as the depthwise ones.
        let small = conv.groups == 1 && per_group <= SMALL_INPUT && conv.weight.dims()[2] > 1;
        let plain =
            (depthwise || small).then(|| weight.clone().into_data().try_into_vec::<f32>().expect("f32 weights"));
        let bias_values = bias.clone().into_data().try_into_vec::<f32>().expect("f32 bias");
        let conv =
            SameConv { weight: burn::module::Param::from_tensor(weight), stride: conv.stride, groups: conv.groups };
        Folded { conv, bias, plain, bias_values }
    }

    /// The convolution plus its bias, no activation.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        conv2d(x, self.conv.weight.val(), Some(self.bias.clone()), self.conv.options(h, w))
    }

    /// `relu6(conv(x) + bias)` for a dense convolution of few input channels, in [`crate::depthwise::dense_relu6`]
    /// (burn's general convolution path is the slowest of the network's layers for EfficientNet's 3-channel stem).
    fn dense(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(weight) = self.plain.as_ref().filter(|_| self.conv.groups == 1) else {
            return self.forward(x).clamp(0.0, 6.0);
        };
        let [batch, channels, h, w] = x.dims();
        let g = self.geometry(channels, h, w);
        let cout = self.conv.weight.dims()[0];
        let device = x.device();
        let data = x.into_data();
        let y = dense_relu6(&g, cout, data.as_slice::<f32>().expect("f32 activations"), weight, &self.bias_values);
        Tensor::from_data(TensorData::new(y, [batch, cout, g.out_h, g.out_w]), &device)
    }

    /// The kernel geometry of this convolution over `channels` planes of `h × w`.
    fn geometry(&self, channels: usize, h: usize, w: usize) -> Depthwise {
        let [(top, bottom), (left, right)] = self.conv.padding(h, w);
        let k = self.conv.weight.dims()[2];
        let out = |size: usize, before: usize, after: usize| (size + before + after - k) / self.conv.stride + 1;
        let (out_h, out_w) = (out(h, top, bottom), out(w, left, right));
        Depthwise { channels, h, w, k, stride: self.conv.stride, top, left, out_h, out_w }
    }

    /// The convolution plus its bias and, when given, `residual`, added in one pass over the output.
    fn forward_plus(&self, x: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
        let y = self.forward_unbiased(x);
        let [batch, channels, h, w] = y.dims();
        let device = y.device();
        let mut values = y.into_data().try_into_vec::<f32>().expect("f32 activations");
        let residual = residual.map(|r| r.into_data());
        let residual = residual.as_ref().map(|r| r.as_slice::<f32>().expect("f32 activations"));
        let plane = h * w;
        for (i, out) in values.chunks_exact_mut(plane).enumerate() {
            let b = self.bias_values[i % channels];
            match residual {
                Some(r) => out.iter_mut().zip(&r[i * plane..(i + 1) * plane]).for_each(|(o, r)| *o += b + r),
                None => out.iter_mut().for_each(|o| *o += b),
            }
        }
        Tensor::from_data(TensorData::new(values, [batch, channels, h, w]), &device)
    }

    /// The convolution without its bias (the layer that reads the output adds it).
    fn forward_unbiased(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        conv2d(x, self.conv.weight.val(), None, self.conv.options(h, w))
    }

    /// `relu6(conv(act(x)) + bias)` for a depthwise convolution, where `act` is the identity, or with `before =
    /// Some(b)`, ReLU6 of `x` plus the per-channel bias `b` (the expansion's, fused here).
    fn depthwise(&self, x: Tensor<4>, before: Option<&[f32]>) -> Tensor<4> {
        let Some(weight) = self.plain.as_ref().filter(|_| self.conv.groups > 1) else {
            let x = match before {
                Some(b) => {
                    let b = Tensor::<1>::from_data(TensorData::new(b.to_vec(), [b.len()]), &x.device());
                    (x + b.reshape([1, -1, 1, 1])).clamp(0.0, 6.0)
                }
                None => x,
            };
            return self.forward(x).clamp(0.0, 6.0);
        };
        let [batch, channels, h, w] = x.dims();
        let g = self.geometry(channels, h, w);
        let device = x.device();
        let data = x.into_data();
        let activations = data.as_slice::<f32>().expect("f32 activations");
        let y = depthwise_relu6(&g, activations, weight, &self.bias_values, before);
        Tensor::from_data(TensorData::new(y, [batch, channels, g.out_h, g.out_w]), &device)
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
#[derive(Debug, Clone)]
pub(crate) struct FusedEffNet {
    stem: Folded,
    blocks: Vec<Block>,
    head: Folded,
}

impl FusedEffNet {
    pub(crate) fn new(model: &EfficientNet) -> FusedEffNet {
        let blocks = model
            .blocks
            .iter()
            .map(|b| Block {
                expand: b.expand_conv.as_ref().zip(b.bn0.as_ref()).map(|(c, bn)| Folded::new(c, bn)),
                depthwise: Folded::new(&b.depthwise_conv, &b.bn1),
                project: Folded::new(&b.project_conv, &b.bn2),
                residual: b.residual,
            })
            .collect();
        FusedEffNet {
            stem: Folded::new(&model.conv_stem, &model.bn0),
            blocks,
            head: Folded::new(&model.conv_head, &model.bn1),
        }
    }

    /// Pooled penultimate features, `[batch, head]`: [`EfficientNet::features`] up to rounding, [`CHUNK`] images at a time.
    pub(crate) fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let n = x.dims()[0];
        let parts: Vec<Tensor<2>> =
            (0..n).step_by(CHUNK).map(|i| self.chunk(x.clone().narrow(0, i, CHUNK.min(n - i)))).collect();
        Tensor::cat(parts, 0)
    }

    fn chunk(&self, x: Tensor<4>) -> Tensor<2> {
        // The stem's output is activated; an expansion's is not: the depthwise convolution that reads it adds the
        // expansion's bias and ReLU6 as it copies its input.
        let mut h = self.stem.dense(x);
        for block in &self.blocks {
            let input = block.residual.then(|| h.clone());
            let owed = match &block.expand {
                Some(expand) => {
                    h = expand.forward_unbiased(h);
                    Some(expand.bias_values.as_slice())
                }
                None => None,
            };
            let h_dw = block.depthwise.depthwise(h, owed);
            h = block.project.forward_plus(h_dw, input);
        }
        h = self.head.forward(h).clamp(0.0, 6.0);
        let [b, c, _, _] = h.dims();
        h.mean_dim(3).mean_dim(2).reshape([b, c])
    }
}
