//! Operations of our own for the flex CPU backend, each with its forward and backward, where burn flex 0.22's
//! generic compositions cost most of a training step (measured with `cargo xtask bench model`).
//!
//! - [`conv2d`]: the ResNets' convolutions as im2col products (`conv_kernel`); burn computes the weight gradient as a
//!   convolution over batch-transposed copies, with a kernel the size of the feature map.
//! - [`batch_norm`]: BatchNorm in two passes forward and two backward over the activation; burn composes it from
//!   about fifteen tensor operations, four of them transposing copies; in training, with the skip connection and the
//!   ReLU that follow it as one op ([`batch_norm_act`]), which saves burn's separate addition and ReLU two passes
//!   forward and one backward over the activation.
//!
//! Every other case (another backend, a dilated, grouped or biased convolution, a dtype other than f32) goes to burn's
//! own module, so results never depend on which path ran beyond floating-point rounding. Both paths are deterministic:
//! reductions run over a fixed partition in a fixed order, whatever the thread count.

mod batch_norm;
mod conv;
mod conv_bn;
mod conv_kernel;
mod matmul;

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;

pub(crate) use batch_norm::{batch_norm, batch_norm_act};
pub(crate) use conv::conv2d;
pub(crate) use conv_bn::conv_bn;

/// Whether `x` lives on the plain (non-autodiff) flex device, where our inference paths apply.
pub(crate) fn is_plain_flex(x: &Tensor<4>) -> bool {
    !x.device().is_autodiff() && x.clone().try_into_primitive::<burn::backend::Flex>().is_ok()
}

/// The autodiff flex backend's float tensor.
type AdTensor = <burn::backend::Autodiff<burn::backend::Flex> as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// The tensor's elements in row-major order (copied only when the layout is not already dense).
fn dense(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec()),
    }
}

fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests;
