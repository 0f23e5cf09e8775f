//! The ResNets' convolutions: forward and both gradients as im2col products (see `conv_kernel`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::DType;

use super::conv_kernel::{self as kernel, Geometry};
use super::{AdTensor, dense, flex_tensor};

/// `conv.forward(x)`, through the im2col path where it applies.
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match geometry(conv, &x).and_then(|g| Some((g, operands(&x, &conv.weight.val())?))) {
        // On the autodiff flex device: record our backward.
        Some((g, Operands::Autodiff(x, w))) => Tensor::from_primitive::<Autodiff<Flex>>(autodiff_forward(g, x, w)),
        // On the plain flex device (evaluation).
        Some((g, Operands::Plain(x, w))) => Tensor::from_primitive::<Flex>(flex_forward(&g, &x, &w)),
        None => conv.forward(x),
    }
}

/// The geometry and the plain (non-autodiff) flex operands, when the im2col path covers `x` on the plain device.
pub(super) fn plain_operands(conv: &Conv2d, x: &Tensor<4>) -> Option<(Geometry, FlexTensor, FlexTensor)> {
    let g = geometry(conv, x)?;
    match operands(x, &conv.weight.val())? {
        Operands::Plain(x, w) => Some((g, x, w)),
        Operands::Autodiff(..) => None,
    }
}

/// Whether [`conv2d`] takes the im2col path for `x` (for tests).
#[cfg(test)]
pub(crate) fn takes_fast_path(conv: &Conv2d, x: &Tensor<4>) -> bool {
    geometry(conv, x).is_some() && operands(x, &conv.weight.val()).is_some()
}

/// The input and the weight as flex primitives.
enum Operands {
    Autodiff(AdTensor, AdTensor),
    Plain(FlexTensor, FlexTensor),
}

/// The operands, when both live on the flex device, with or without autodiff.
fn operands(x: &Tensor<4>, w: &Tensor<4>) -> Option<Operands> {
    let autodiff = (x.clone().try_into_primitive::<Autodiff<Flex>>(), w.clone().try_into_primitive::<Autodiff<Flex>>());
    if let (Ok(x), Ok(w)) = autodiff {
        return Some(Operands::Autodiff(x, w));
    }
    match (x.clone().try_into_primitive::<Flex>(), w.clone().try_into_primitive::<Flex>()) {
        (Ok(x), Ok(w)) => Some(Operands::Plain(x, w)),
        _ => None,
    }
}

/// The convolution's shapes, when the im2col path covers it.
fn geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, c_in_w, kh, kw] = conv.weight.shape().dims();
    let pad = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return None,
    };
    let plain = conv.bias.is_none() && conv.groups == 1 && conv.dilation == [1, 1] && c_in_w == c_in;
    let g = Geometry { batch, c_in, h, w, c_out, kh, kw, stride: conv.stride, pad };
    (plain && x.dtype() == DType::F32 && g.out_hw().is_some()).then_some(g)
}

fn flex_forward(g: &Geometry, x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let [ho, wo] = g.out_hw().expect("checked by geometry()");
    flex_tensor(kernel::forward(g, &dense(x), &dense(w), None), [g.batch, g.c_out, ho, wo])
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    /// The geometry, the input and the weight.
    type State = (Geometry, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (g, x, w) = ops.state;
        let (dx, dw) = kernel::backward(&g, &dense(&x), &dense(&w), &dense(&dy), node_x.is_some(), node_w.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, [g.batch, g.c_in, g.h, g.w]));
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            grads.register::<Flex>(node.id, flex_tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
        }
    }
}

fn autodiff_forward(g: Geometry, x: AdTensor, w: AdTensor) -> AdTensor {
    let (xp, x_node) = x.into_parts();
    let (wp, w_node) = w.into_parts();
    let y = flex_forward(&g, &xp, &wp);
    match ConvBackward.prepare::<NoCheckpointing>([x_node, w_node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((g, xp, wp), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
