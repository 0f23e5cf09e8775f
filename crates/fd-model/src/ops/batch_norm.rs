//! BatchNorm over NCHW activations, as burn's `BatchNorm` computes it: in training, batch statistics (biased
//! variance) normalise the batch and update the running statistics with the layer's momentum; otherwise the running
//! statistics normalise it.
//!
//! Forward is one pass for the per-channel statistics and one for the output; backward one pass for the per-channel
//! sums of `dy` and `dy · x̂` and one for `dx`. Statistics are per channel in f64, each over the images in order.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::{AdTensor, dense, flex_tensor};

/// `bn.forward(x)` for a 4-D activation, through the two-pass path where it applies.
pub(crate) fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    match route(bn, &x) {
        Some(Route::Train { x, gamma, beta }) => {
            let (y, mean, var) = autodiff_train(x, gamma, beta, bn.epsilon);
            // The running statistics, updated exactly as burn's BatchNorm updates them.
            let channels = mean.len();
            let batch_stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [channels]), &device);
            let running_mean = bn.running_mean.value_sync().to_device(&device);
            let running_var = bn.running_var.value_sync().to_device(&device);
            let running_mean = running_mean.mul_scalar(1.0 - bn.momentum).add(batch_stat(mean).mul_scalar(bn.momentum));
            let running_var = running_var.mul_scalar(1.0 - bn.momentum).add(batch_stat(var).mul_scalar(bn.momentum));
            bn.running_mean.update(running_mean.detach());
            bn.running_var.update(running_var.detach());
            Tensor::from_primitive::<Autodiff<Flex>>(y)
        }
        Some(Route::Infer { x: xp, gamma, beta, mean, var }) => {
            let [batch, channels, h, w] = x.dims();
            let (scale, shift) = running_affine(&gamma, &beta, &mean, &var, bn.epsilon);
            let y = apply_affine(&dense(&xp), channels, h * w, &scale, &shift);
            Tensor::from_primitive::<Flex>(flex_tensor(y, [batch, channels, h, w]))
        }
        None => bn.forward(x),
    }
}

/// The per-channel `(scale, shift)` of the layer's running statistics, computed as [`batch_norm`]'s inference path
/// computes them, when the layer lives on the plain flex device in f32.
pub(super) fn inference_coefficients(bn: &BatchNorm, device: &Device) -> Option<(Vec<f32>, Vec<f32>)> {
    let part = |t: Tensor<1>| t.to_device(device).try_into_primitive::<Flex>().ok();
    let (gamma, beta) = (part(bn.gamma.val())?, part(bn.beta.val())?);
    let (mean, var) = (part(bn.running_mean.value())?, part(bn.running_var.value())?);
    if [&gamma, &beta, &mean, &var].iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    Some(running_affine(&gamma, &beta, &mean, &var, bn.epsilon))
}

/// The per-channel `(scale, shift)` that normalise with running statistics.
fn running_affine(
    gamma: &FlexTensor,
    beta: &FlexTensor,
    mean: &FlexTensor,
    var: &FlexTensor,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>) {
    let inv_std: Vec<f32> = dense(var).iter().map(|v| (1.0 / (f64::from(*v) + epsilon).sqrt()) as f32).collect();
    affine_coefficients(&dense(gamma), &dense(beta), &dense(mean), &inv_std)
}

/// Whether [`batch_norm`] takes its own path for `x` (for tests).
#[cfg(test)]
pub(super) fn takes_fast_path(bn: &BatchNorm, x: &Tensor<4>) -> bool {
    route(bn, x).is_some()
}

/// The operands of one of our two paths, as flex primitives.
enum Route {
    /// Batch statistics, on the autodiff flex device with the layer in training.
    Train { x: AdTensor, gamma: AdTensor, beta: AdTensor },
    /// Running statistics, on the plain flex device.
    Infer { x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, mean: FlexTensor, var: FlexTensor },
}

/// Which path `x` takes, with its operands; `None` for burn's own module (another backend or dtype, or a layer out
/// of training on the autodiff device).
fn route(bn: &BatchNorm, x: &Tensor<4>) -> Option<Route> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let device = x.device();
    if device.is_autodiff() {
        if !bn.training.is_enabled() {
            return None;
        }
        let parts = (
            x.clone().try_into_primitive::<Autodiff<Flex>>(),
            bn.gamma.val().try_into_primitive::<Autodiff<Flex>>(),
            bn.beta.val().try_into_primitive::<Autodiff<Flex>>(),
        );
        let (Ok(x), Ok(gamma), Ok(beta)) = parts else { return None };
        return Some(Route::Train { x, gamma, beta });
    }
    let parts = (
        x.clone().try_into_primitive::<Flex>(),
        bn.gamma.val().try_into_primitive::<Flex>(),
        bn.beta.val().try_into_primitive::<Flex>(),
        bn.running_mean.value().to_device(&device).try_into_primitive::<Flex>(),
        bn.running_var.value().to_device(&device).try_into_primitive::<Flex>(),
    );
    let (Ok(x), Ok(gamma), Ok(beta), Ok(mean), Ok(var)) = parts else { return None };
    Some(Route::Infer { x, gamma, beta, mean, var })
}

/// Training-mode BatchNorm of `x` with its backward recorded; also returns the batch mean and biased variance.
fn autodiff_train(x: AdTensor, gamma: AdTensor, beta: AdTensor, epsilon: f64) -> (AdTensor, Vec<f32>, Vec<f32>) {
    let (xp, x_node) = x.into_parts();
    let (gp, g_node) = gamma.into_parts();
    let (bp, b_node) = beta.into_parts();
    let dims: [usize; 4] = xp.shape().dims();
    let [batch, channels, h, w] = dims;
    let xs = dense(&xp);
    let (mean, var) = channel_stats(&xs, channels, h * w);
    let inv_std: Vec<f32> = var.iter().map(|v| (1.0 / (f64::from(*v) + epsilon).sqrt()) as f32).collect();
    let gamma = dense(&gp).into_owned();
    let (scale, shift) = affine_coefficients(&gamma, &dense(&bp), &mean, &inv_std);
    let y = flex_tensor(apply_affine(&xs, channels, h * w, &scale, &shift), [batch, channels, h, w]);
    drop(xs);
    let out = match BatchNormBackward.prepare::<NoCheckpointing>([x_node, g_node, b_node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(BatchNormState { dims, x: xp, gamma, mean: mean.clone(), inv_std }, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (out, mean, var)
}

#[derive(Debug, Clone)]
struct BatchNormState {
    dims: [usize; 4],
    x: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let [_, channels, h, w] = s.dims;
        let (dx, dgamma, dbeta) =
            backward(&dense(&s.x), &dense(&dy), channels, h * w, &s.mean, &s.inv_std, &s.gamma, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, s.dims));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, [channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, [channels]));
        }
    }
}

/// Sums `f(x[i])` over a slice, in sixteen f32 lanes (so it vectorises), as f64.
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|v| f(*v)).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(*v);
        }
    }
    lanes.iter().map(|v| f64::from(*v)).sum::<f64>() + f64::from(tail)
}

/// Sums `f(x[i], y[i])` over a pair of equal slices, in sixteen f32 lanes, as f64.
fn paired_sum(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for i in 0..16 {
            lanes[i] += f(a[i], b[i]);
        }
    }
    let tail: f32 = xr.iter().zip(yr).map(|(a, b)| f(*a, *b)).sum();
    lanes.iter().map(|v| f64::from(*v)).sum::<f64>() + f64::from(tail)
}

/// Per-channel mean and biased variance of `x`, `[batch, channels, hw]`.
fn channel_stats(x: &[f32], channels: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
    let batch = x.len() / (channels * hw).max(1);
    let n = (batch * hw) as f64;
    let stats: Vec<(f32, f32)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let planes = || (0..batch).map(move |b| &x[(b * channels + c) * hw..][..hw]);
            let mean = planes().map(|p| lane_sum(p, |a| a)).sum::<f64>() / n;
            let m = mean as f32;
            let var = planes().map(|p| lane_sum(p, |a| (a - m) * (a - m))).sum::<f64>() / n;
            (m, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// `scale = γ / σ` and `shift = β − μ · scale` per channel.
fn affine_coefficients(gamma: &[f32], beta: &[f32], mean: &[f32], inv_std: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, s)| g * s).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}

/// `x · scale[c] + shift[c]` over `[batch, channels, hw]`.
fn apply_affine(x: &[f32], channels: usize, hw: usize, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(channels * hw).zip(x.par_chunks(channels * hw)).for_each(|(y, x)| {
        for c in 0..channels {
            let (s, t) = (scale[c], shift[c]);
            for (o, i) in y[c * hw..][..hw].iter_mut().zip(&x[c * hw..][..hw]) {
                *o = i * s + t;
            }
        }
    });
    y
}

/// The gradients of training-mode BatchNorm: `dx` (when asked for), `dγ` and `dβ`.
#[allow(clippy::too_many_arguments)]
fn backward(
    x: &[f32],
    dy: &[f32],
    channels: usize,
    hw: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let batch = x.len() / (channels * hw).max(1);
    let n = (batch * hw) as f64;
    // dβ = Σ dy, and Σ dy · (x − μ), per channel
    let sums: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let (mut s1, mut s2) = (0f64, 0f64);
            for b in 0..batch {
                let (xs, ds) = (&x[(b * channels + c) * hw..][..hw], &dy[(b * channels + c) * hw..][..hw]);
                s1 += lane_sum(ds, |d| d);
                s2 += paired_sum(xs, ds, |xv, d| d * (xv - m));
            }
            (s1, s2)
        })
        .collect();
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dgamma: Vec<f32> = sums.iter().zip(inv_std).map(|(s, i)| (s.1 * f64::from(*i)) as f32).collect();
    let dx = want_dx.then(|| {
        // dx = k · dy + a · x + b, with k = γ/σ, a = −k · dγ / (σ n), b = −k · dβ / n − a · μ
        let coefficients: Vec<(f32, f32, f32)> = (0..channels)
            .map(|c| {
                let k = f64::from(gamma[c]) * f64::from(inv_std[c]);
                let a = -k * f64::from(dgamma[c]) * f64::from(inv_std[c]) / n;
                let b = -k * f64::from(dbeta[c]) / n - a * f64::from(mean[c]);
                (k as f32, a as f32, b as f32)
            })
            .collect();
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(channels * hw).zip(x.par_chunks(channels * hw)).zip(dy.par_chunks(channels * hw)).for_each(
            |((dx, x), dy)| {
                for (c, &(k, a, b)) in coefficients.iter().enumerate() {
                    let r = c * hw..(c + 1) * hw;
                    for ((o, xv), d) in dx[r.clone()].iter_mut().zip(&x[r.clone()]).zip(&dy[r]) {
                        *o = k * d + a * xv + b;
                    }
                }
            },
        );
        dx
    });
    (dx, dgamma, dbeta)
}
