//! BatchNorm over NCHW activations, as burn's `BatchNorm` computes it: in training, batch statistics (biased
//! variance) normalise the batch and update the running statistics with the layer's momentum; otherwise the running
//! statistics normalise it.
//!
//! Forward is one pass for the per-channel statistics and one for the output; backward one pass for the per-channel
//! sums of `dy` and `dy · x̂` and one for `dx`. Statistics are per channel in f64, each over the images in order.
//! In training it is one op with or without a skip connection and a ReLU after it ([`batch_norm_act`]), with the same
//! two passes each way: the addition and the ReLU happen in the output's pass, the ReLU's mask and the skip's gradient
//! in the backward passes.

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
            let (y, mean, var) = autodiff_train_act(x, gamma, beta, None, false, bn.epsilon);
            update_running_statistics(bn, &device, mean, var);
            Tensor::from_primitive::<Autodiff<Flex>>(y)
        }
        Some(Route::Infer { x: xp, gamma, beta, mean, var }) => {
            let [batch, channels, h, w] = x.dims();
            let (scale, shift) = running_affine(&gamma, &beta, &mean, &var, bn.epsilon);
            let y = apply_act(&dense(&xp), None, channels, h * w, &scale, &shift, false);
            Tensor::from_primitive::<Flex>(flex_tensor(y, [batch, channels, h, w]))
        }
        None => bn.forward(x),
    }
}

/// `relu?(bn(x) + skip)`, the ReLU when `relu`: in training on the autodiff flex device one op, whose forward is the
/// statistics' pass and one pass writing the output, and whose backward takes the ReLU's mask and hands the skip its
/// gradient inside BatchNorm's two passes; the same values, bit for bit, as the three operations composed (the same
/// products and sums in the same order), which is what runs everywhere else.
pub(crate) fn batch_norm_act(bn: &BatchNorm, x: Tensor<4>, skip: Option<Tensor<4>>, relu: bool) -> Tensor<4> {
    if let Some((xp, gamma, beta, skip)) = one_op(bn, &x, skip.as_ref()) {
        let device = x.device();
        let (y, mean, var) = autodiff_train_act(xp, gamma, beta, skip, relu, bn.epsilon);
        update_running_statistics(bn, &device, mean, var);
        return Tensor::from_primitive::<Autodiff<Flex>>(y);
    }
    let y = batch_norm(bn, x);
    let y = match skip {
        Some(s) => y + s,
        None => y,
    };
    if relu { burn::tensor::activation::relu(y) } else { y }
}

/// The operands of [`batch_norm_act`]'s training op (the input, γ, β and the skip), when it applies: the layer in
/// training on the autodiff flex device in f32, the skip (if any) an f32 tensor there of the input's shape.
fn one_op(
    bn: &BatchNorm,
    x: &Tensor<4>,
    skip: Option<&Tensor<4>>,
) -> Option<(AdTensor, AdTensor, AdTensor, Option<AdTensor>)> {
    let skip = match skip {
        Some(s) if s.dims() == x.dims() && s.dtype() == DType::F32 => {
            Some(s.clone().try_into_primitive::<Autodiff<Flex>>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    match route(bn, x)? {
        Route::Train { x, gamma, beta } => Some((x, gamma, beta, skip)),
        Route::Infer { .. } => None,
    }
}

/// The running statistics, updated from a batch's mean and biased variance exactly as burn's BatchNorm updates them.
fn update_running_statistics(bn: &BatchNorm, device: &Device, mean: Vec<f32>, var: Vec<f32>) {
    let channels = mean.len();
    let batch_stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [channels]), device);
    let running_mean = bn.running_mean.value_sync().to_device(device);
    let running_var = bn.running_var.value_sync().to_device(device);
    let running_mean = running_mean.mul_scalar(1.0 - bn.momentum).add(batch_stat(mean).mul_scalar(bn.momentum));
    let running_var = running_var.mul_scalar(1.0 - bn.momentum).add(batch_stat(var).mul_scalar(bn.momentum));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
}

/// Whether [`batch_norm_act`] takes its one-op training path (for tests).
#[cfg(test)]
pub(super) fn act_takes_one_op(bn: &BatchNorm, x: &Tensor<4>, skip: Option<&Tensor<4>>) -> bool {
    one_op(bn, x, skip).is_some()
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

/// Training-mode `relu?(bn(x) + skip)` with its backward recorded; also returns the batch mean and biased variance.
fn autodiff_train_act(
    x: AdTensor,
    gamma: AdTensor,
    beta: AdTensor,
    skip: Option<AdTensor>,
    relu: bool,
    epsilon: f64,
) -> (AdTensor, Vec<f32>, Vec<f32>) {
    let (xp, x_node) = x.into_parts();
    let (gp, g_node) = gamma.into_parts();
    let (bp, b_node) = beta.into_parts();
    let dims: [usize; 4] = xp.shape().dims();
    let [_, channels, h, w] = dims;
    let xs = dense(&xp);
    let (mean, var) = channel_stats(&xs, channels, h * w);
    let inv_std: Vec<f32> = var.iter().map(|v| (1.0 / (f64::from(*v) + epsilon).sqrt()) as f32).collect();
    let gamma = dense(&gp).into_owned();
    let (scale, shift) = affine_coefficients(&gamma, &dense(&bp), &mean, &inv_std);
    let (skip, skip_node) = match skip.map(AdTensor::into_parts) {
        Some((s, node)) => (Some(s), Some(node)),
        None => (None, None),
    };
    let skip_values = skip.as_ref().map(dense);
    let y = flex_tensor(apply_act(&xs, skip_values.as_deref(), channels, h * w, &scale, &shift, relu), dims);
    drop((xs, skip_values));
    let state = ActState {
        bn: BatchNormState { dims, x: xp, gamma, mean: mean.clone(), inv_std },
        out: relu.then(|| y.clone()),
    };
    let out = match skip_node {
        Some(s_node) => finish_act(ActBackward, [x_node, g_node, b_node, s_node], state, y),
        None => finish_act(ActBackward, [x_node, g_node, b_node], state, y),
    };
    (out, mean, var)
}

/// Records [`ActBackward`] over `nodes` (the input, γ, β and, when there is one, the skip).
fn finish_act<const N: usize>(
    op: ActBackward,
    nodes: [burn::backend::autodiff::ops::NodeGuard; N],
    state: ActState,
    y: FlexTensor,
) -> AdTensor
where
    ActBackward: Backward<Flex, N, State = ActState>,
{
    match op.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

#[derive(Debug, Clone)]
struct ActState {
    bn: BatchNormState,
    /// The op's output, for the ReLU's mask; `None` without a ReLU.
    out: Option<FlexTensor>,
}

#[derive(Debug)]
struct ActBackward;

impl<const N: usize> Backward<Flex, N> for ActBackward {
    type State = ActState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let mut next = || parents.next().flatten();
        let (node_x, node_gamma, node_beta, node_skip) = (next(), next(), next(), next());
        let dy = grads.consume::<Flex>(&ops.node);
        let ActState { bn: s, out } = ops.state;
        let [_, channels, h, w] = s.dims;
        let out = out.as_ref().map(dense);
        let g = act_backward(
            &dense(&s.x),
            &dense(&dy),
            out.as_deref(),
            channels,
            h * w,
            (&s.mean, &s.inv_std, &s.gamma),
            (node_x.is_some(), node_skip.is_some()),
        );
        if let (Some(node), Some(dx)) = (node_x, g.dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, s.dims));
        }
        if let (Some(node), Some(dskip)) = (node_skip, g.dskip) {
            grads.register::<Flex>(node.id, flex_tensor(dskip, s.dims));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(g.dgamma, [channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(g.dbeta, [channels]));
        }
    }
}

/// What BatchNorm's backward needs: the input, γ and the batch statistics.
#[derive(Debug, Clone)]
struct BatchNormState {
    dims: [usize; 4],
    x: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
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

/// Sums `f(x[i], y[i], z[i])` over three equal slices, in sixteen f32 lanes, as f64: the lanes and the order of
/// [`paired_sum`], so a sum of `f(x, g(z, y))` here equals `paired_sum` over `x` and the values `g(z, y)`.
fn triple_sum(x: &[f32], y: &[f32], z: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f64 {
    let mut lanes = [0f32; 16];
    let (xc, yc, zc) = (x.chunks_exact(16), y.chunks_exact(16), z.chunks_exact(16));
    let (xr, yr, zr) = (xc.remainder(), yc.remainder(), zc.remainder());
    for ((a, b), c) in xc.zip(yc).zip(zc) {
        for i in 0..16 {
            lanes[i] += f(a[i], b[i], c[i]);
        }
    }
    let tail: f32 = xr.iter().zip(yr).zip(zr).map(|((a, b), c)| f(*a, *b, *c)).sum();
    lanes.iter().map(|v| f64::from(*v)).sum::<f64>() + f64::from(tail)
}

/// burn's ReLU (NaN passes through, as in PyTorch).
fn relu(v: f32) -> f32 {
    if v.is_nan() || v > 0.0 { v } else { 0.0 }
}

/// The gradient through burn's ReLU given its output `out`: `d` where the output is positive or NaN, else 0.
fn relu_gate(out: f32, d: f32) -> f32 {
    if out.is_nan() || out > 0.0 { d } else { 0.0 }
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

/// `relu?(x · scale[c] + shift[c] + skip)` over `[batch, channels, hw]`, in that order of operations.
fn apply_act(
    x: &[f32],
    skip: Option<&[f32]>,
    channels: usize,
    hw: usize,
    scale: &[f32],
    shift: &[f32],
    relu_on: bool,
) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    let image = (channels * hw).max(1);
    y.par_chunks_mut(image).zip(x.par_chunks(image)).enumerate().for_each(|(b, (y, x))| {
        for c in 0..channels {
            let (s, t) = (scale[c], shift[c]);
            let r = c * hw..(c + 1) * hw;
            let (y, x) = (&mut y[r.clone()], &x[r.clone()]);
            match (skip, relu_on) {
                (Some(skip), true) => {
                    for ((o, i), k) in y.iter_mut().zip(x).zip(&skip[b * image..][r.clone()]) {
                        *o = relu(i * s + t + k);
                    }
                }
                (Some(skip), false) => {
                    for ((o, i), k) in y.iter_mut().zip(x).zip(&skip[b * image..][r.clone()]) {
                        *o = i * s + t + k;
                    }
                }
                (None, true) => {
                    for (o, i) in y.iter_mut().zip(x) {
                        *o = relu(i * s + t);
                    }
                }
                (None, false) => {
                    for (o, i) in y.iter_mut().zip(x) {
                        *o = i * s + t;
                    }
                }
            }
        }
    });
    y
}

/// The gradients of [`batch_norm_act`]'s training op.
struct ActGradients {
    dx: Option<Vec<f32>>,
    dskip: Option<Vec<f32>>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

/// The gradients of training-mode `relu?(bn(x) + skip)` given the output's gradient `dy` and, with a ReLU, the output
/// `out`: BatchNorm's backward of `dz` (`dy` through the ReLU's mask), and `dz` itself for the skip. `stats` is the
/// batch mean, `1 / σ` and γ; `want` whether `dx` and the skip's gradient are needed.
fn act_backward(
    x: &[f32],
    dy: &[f32],
    out: Option<&[f32]>,
    channels: usize,
    hw: usize,
    stats: (&[f32], &[f32], &[f32]),
    want: (bool, bool),
) -> ActGradients {
    let (mean, inv_std, gamma) = stats;
    let (want_dx, want_dskip) = want;
    let batch = x.len() / (channels * hw).max(1);
    let n = (batch * hw) as f64;
    let plane = |b: usize, c: usize| (b * channels + c) * hw..(b * channels + c + 1) * hw;
    // Σ dz and Σ dz · (x − μ) per channel, dz taken through the mask as it is read
    let sums: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let (mut s1, mut s2) = (0f64, 0f64);
            for b in 0..batch {
                let (xs, ds) = (&x[plane(b, c)], &dy[plane(b, c)]);
                match out {
                    Some(out) => {
                        let os = &out[plane(b, c)];
                        s1 += paired_sum(os, ds, relu_gate);
                        s2 += triple_sum(xs, ds, os, |xv, d, o| relu_gate(o, d) * (xv - m));
                    }
                    None => {
                        s1 += lane_sum(ds, |d| d);
                        s2 += paired_sum(xs, ds, |xv, d| d * (xv - m));
                    }
                }
            }
            (s1, s2)
        })
        .collect();
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dgamma: Vec<f32> = sums.iter().zip(inv_std).map(|(s, i)| (s.1 * f64::from(*i)) as f32).collect();
    let coefficients = dx_coefficients(gamma, inv_std, mean, &dgamma, &dbeta, n);
    let image = (channels * hw).max(1);
    let mut dx = if want_dx { vec![0f32; x.len()] } else { Vec::new() };
    let mut dskip = if want_dskip { vec![0f32; x.len()] } else { Vec::new() };
    fn per_image(v: &mut [f32], wanted: bool, image: usize, batch: usize) -> Vec<Option<&mut [f32]>> {
        if wanted { v.chunks_mut(image).map(Some).collect() } else { (0..batch).map(|_| None).collect() }
    }
    let (dx_images, dskip_images) =
        (per_image(&mut dx, want_dx, image, batch), per_image(&mut dskip, want_dskip, image, batch));
    if want_dx || want_dskip {
        dx_images.into_par_iter().zip(dskip_images).enumerate().for_each(|(b, (mut dx, mut dskip))| {
            for (c, &(k, a, t)) in coefficients.iter().enumerate() {
                let r = plane(b, c);
                let (xs, ds, os) = (&x[r.clone()], &dy[r.clone()], out.map(|o| &o[r.clone()]));
                let local = c * hw..(c + 1) * hw;
                let dx = dx.as_deref_mut().map(|v| &mut v[local.clone()]);
                let dskip = dskip.as_deref_mut().map(|v| &mut v[local]);
                act_dx_plane(xs, ds, os, dx, dskip, (k, a, t));
            }
        });
    }
    ActGradients { dx: want_dx.then_some(dx), dskip: want_dskip.then_some(dskip), dgamma, dbeta }
}

/// One plane of [`act_backward`]'s second pass: `dz` (`dy` through the mask of `out`, when there is one) into `dskip`,
/// and `k · dz + a · x + t` into `dx`.
fn act_dx_plane(
    x: &[f32],
    dy: &[f32],
    out: Option<&[f32]>,
    dx: Option<&mut [f32]>,
    dskip: Option<&mut [f32]>,
    (k, a, t): (f32, f32, f32),
) {
    match (out, dx, dskip) {
        (Some(out), Some(dx), Some(dskip)) => {
            for ((((o, s), xv), d), y) in dx.iter_mut().zip(dskip.iter_mut()).zip(x).zip(dy).zip(out) {
                let dz = relu_gate(*y, *d);
                *s = dz;
                *o = k * dz + a * xv + t;
            }
        }
        (Some(out), Some(dx), None) => {
            for (((o, xv), d), y) in dx.iter_mut().zip(x).zip(dy).zip(out) {
                *o = k * relu_gate(*y, *d) + a * xv + t;
            }
        }
        (Some(out), None, Some(dskip)) => {
            for ((s, d), y) in dskip.iter_mut().zip(dy).zip(out) {
                *s = relu_gate(*y, *d);
            }
        }
        (None, Some(dx), dskip) => {
            for ((o, xv), d) in dx.iter_mut().zip(x).zip(dy) {
                *o = k * d + a * xv + t;
            }
            if let Some(dskip) = dskip {
                dskip.copy_from_slice(dy);
            }
        }
        (None, None, Some(dskip)) => dskip.copy_from_slice(dy),
        (_, None, None) => {}
    }
}

/// `(k, a, b)` per channel for BatchNorm's input gradient `dx = k · dy + a · x + b`: `k = γ/σ`, `a = −k · dγ / (σ n)`,
/// `b = −k · dβ / n − a · μ`.
fn dx_coefficients(
    gamma: &[f32],
    inv_std: &[f32],
    mean: &[f32],
    dgamma: &[f32],
    dbeta: &[f32],
    n: f64,
) -> Vec<(f32, f32, f32)> {
    (0..gamma.len())
        .map(|c| {
            let k = f64::from(gamma[c]) * f64::from(inv_std[c]);
            let a = -k * f64::from(dgamma[c]) * f64::from(inv_std[c]) / n;
            let b = -k * f64::from(dbeta[c]) / n - a * f64::from(mean[c]);
            (k as f32, a as f32, b as f32)
        })
        .collect()
}
