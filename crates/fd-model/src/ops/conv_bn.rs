//! Inference through a convolution, its BatchNorm, an optional skip connection and an optional ReLU in one pass: on the
//! plain flex device with the layer out of training, the convolution's kernel writes the normalised value
//! `y · scale[c] + shift[c]`, plus the skip, rectified, as each task's output comes out of its product
//! (`conv_kernel::Epilogue`). The figures are the three separate operations' (the same products and sums in the same
//! order); elsewhere (training, autodiff, another backend) it is the convolution, then BatchNorm, the skip and the ReLU
//! through `batch_norm_act` (in training on flex one op of the same values as the three composed).

use super::conv_kernel::Epilogue;
use super::{batch_norm, batch_norm_act, conv, conv2d, dense, flex_tensor};
use burn::backend::Flex;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// `relu?(bn(conv(x)) + skip)`, the ReLU when `relu`.
pub(crate) fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, skip: Option<Tensor<4>>, relu: bool) -> Tensor<4> {
    if let Some(y) = fused(conv, bn, &x, skip.as_ref(), relu) {
        return y;
    }
    batch_norm_act(bn, conv2d(conv, x), skip, relu)
}

/// Whether [`conv_bn`] takes the one-pass path for `x` (for tests).
#[cfg(test)]
pub(super) fn takes_one_pass(conv: &Conv2d, bn: &BatchNorm, x: &Tensor<4>) -> bool {
    fused(conv, bn, x, None, false).is_some()
}

/// The one-pass path, when it applies.
fn fused(conv: &Conv2d, bn: &BatchNorm, x: &Tensor<4>, skip: Option<&Tensor<4>>, relu: bool) -> Option<Tensor<4>> {
    if x.device().is_autodiff() {
        return None;
    }
    let (g, xp, wp) = conv::plain_operands(conv, x)?;
    let (scale, shift) = batch_norm::inference_coefficients(bn, &x.device())?;
    let [ho, wo] = g.out_hw()?;
    let skip = match skip {
        Some(s) if s.dims() == [g.batch, g.c_out, ho, wo] => Some(s.clone().try_into_primitive::<Flex>().ok()?),
        Some(_) => return None,
        None => None,
    };
    let skip = skip.as_ref().map(|s| dense(s));
    let epilogue = Epilogue { scale: &scale, shift: &shift, skip: skip.as_deref(), relu };
    let y = super::conv_kernel::forward(&g, &dense(&xp), &dense(&wp), Some(&epilogue));
    Some(Tensor::from_primitive::<Flex>(flex_tensor(y, [g.batch, g.c_out, ho, wo])))
}
