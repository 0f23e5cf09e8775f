//! The depthwise convolution of EfficientNet's inference path, with the activation before it, its folded BatchNorm's bias
//! and the ReLU6 after it in the same pass (burn flex's depthwise kernel cost half of an embedding; measured with
//! `cargo xtask bench embed`).
//!
//! Each plane is copied once into a zero-padded buffer split by column phase (`phase r` holds the padded columns
//! `r, r + s, r + 2s, …` for stride `s`), so every tap is a contiguous multiply-add over an output row that the compiler
//! vectorises, with no bounds logic at the borders. Planes run in parallel; a plane's sums run in a fixed order, so the
//! result does not depend on the thread count.

use rayon::prelude::*;

/// The shape of one depthwise convolution over `[batch, channels, h, w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Depthwise {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    /// The kernel's side.
    pub k: usize,
    pub stride: usize,
    /// Zero rows above and columns left of the input (the rest of the padding follows from the output size).
    pub top: usize,
    pub left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Depthwise {
    /// The phase buffers' rows and columns: padded row `y`, column `x` lives in phase `(y % s, x % s)` at row `y / s`,
    /// column `x / s`. Rows run past the last one read so that whole vectors past the end stay inside.
    fn phase_shape(&self) -> (usize, usize) {
        let reach = (self.k - 1) / self.stride;
        let cols = self.out_w + reach;
        (self.out_h + reach + 1, cols)
    }

    /// One phase buffer's length: its rows and columns, then a vector's worth of slack.
    fn phase_len(&self) -> usize {
        let (rows, cols) = self.phase_shape();
        rows * cols + MAX_LANES
    }
}

/// The widest vector, in f32 lanes (AVX-512).
const MAX_LANES: usize = 16;

/// The largest kernel: 5 × 5.
const MAX_TAPS: usize = 25;

/// `relu6(conv(act(x), weight) + bias)` per channel: `x` is `[batch, channels, h, w]`, `weight` `[channels, k, k]`,
/// `bias` `[channels]`; `act` is the identity, or with `before = Some(b)` (the layer before's bias and activation, fused
/// here) `relu6(x + b[c])`. Returns `[batch, channels, out_h, out_w]`.
pub(crate) fn depthwise_relu6(
    g: &Depthwise,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    before: Option<&[f32]>,
) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.out_h * g.out_w);
    assert_eq!(x.len() % plane_in.max(1), 0, "depthwise: the input is not whole planes");
    assert_eq!(weight.len(), g.channels * g.k * g.k, "depthwise: one k×k filter per channel");
    assert_eq!(bias.len(), g.channels, "depthwise: one bias per channel");
    assert!(g.k * g.k <= MAX_TAPS, "depthwise: kernels up to 5 × 5");
    assert!(before.is_none_or(|b| b.len() == g.channels), "depthwise: one input bias per channel");
    let planes = x.len() / plane_in.max(1);
    let mut out = vec![0f32; planes * plane_out];
    let (rows, cols) = g.phase_shape();
    let wide = (g.out_h * cols).div_ceil(MAX_LANES) * MAX_LANES;
    out.par_chunks_mut(plane_out.max(1)).enumerate().for_each_init(
        || (vec![0f32; g.stride * g.stride * g.phase_len()], vec![0f32; wide]),
        |(phases, wide), (p, o)| {
            debug_assert!(rows * cols < g.phase_len());
            let c = p % g.channels;
            let filter = &weight[c * g.k * g.k..(c + 1) * g.k * g.k];
            let x = &x[p * plane_in..(p + 1) * plane_in];
            let before = before.map(|b| b[c]);
            pulp::Arch::new().dispatch(Plane { g, x, before, phases, wide, filter, bias: bias[c], out: o });
        },
    );
    out
}

/// One plane's work, compiled for the CPU's widest vectors (AVX-512 or AVX2, picked at run time by `pulp`): everything
/// it calls is inlined into it, so the loops are vectorised for that instruction set.
struct Plane<'a> {
    g: &'a Depthwise,
    x: &'a [f32],
    /// The input's bias, when ReLU6 of the input plus it is what the convolution reads.
    before: Option<f32>,
    phases: &'a mut [f32],
    wide: &'a mut [f32],
    filter: &'a [f32],
    bias: f32,
    out: &'a mut [f32],
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        fill_phases(self.g, self.x, self.before, self.phases);
        plane(simd, self.g, self.phases, self.filter, self.bias, self.wide);
        // The wide rows hold `cols` outputs, of which the first `out_w` are the plane's.
        let cols = self.g.phase_shape().1;
        for (dst, src) in self.out.chunks_exact_mut(self.g.out_w).zip(self.wide.chunks(cols)) {
            dst.copy_from_slice(&src[..self.g.out_w]);
        }
    }
}

/// Copies one input plane into the zero-padded phase buffers.
#[inline(always)]
fn fill_phases(g: &Depthwise, x: &[f32], before: Option<f32>, phases: &mut [f32]) {
    let (s, cols, len) = (g.stride, g.phase_shape().1, g.phase_len());
    phases.fill(0.0);
    let act = |v: f32| match before {
        Some(b) => (v + b).clamp(0.0, 6.0),
        None => v,
    };
    for (y, src) in x.chunks_exact(g.w).enumerate() {
        let py = y + g.top;
        let row = py / s;
        for r in 0..s {
            // The input columns that land in column phase r: (xi + left) % s == r, at column (xi + left) / s.
            let first = (r + s - g.left % s) % s;
            let j0 = (first + g.left) / s;
            let at = ((py % s) * s + r) * len + row * cols;
            let dst = &mut phases[at..at + cols];
            if s == 1 {
                for (d, &v) in dst[j0..].iter_mut().zip(src) {
                    *d = act(v);
                }
            } else {
                for (d, &v) in dst[j0..].iter_mut().zip(src.iter().skip(first).step_by(s)) {
                    *d = act(v);
                }
            }
        }
    }
}

/// The plane's outputs over whole rows of `cols` (the columns past `out_w` are discarded later), a vector at a time: the
/// bias, every tap multiplied in and added (fused), ReLU6. Output `q = oy cols + ox` of tap `(ky, kx)` reads phase
/// `(ky % s, kx % s)` at `q + (ky / s) cols + kx / s`: contiguous in `q`, so every load is a whole vector.
#[inline(always)]
fn plane<S: pulp::Simd>(simd: S, g: &Depthwise, phases: &[f32], filter: &[f32], bias: f32, wide: &mut [f32]) {
    assert!(S::F32_LANES <= MAX_LANES && wide.len().is_multiple_of(S::F32_LANES));
    let (s, cols, len) = (g.stride, g.phase_shape().1, g.phase_len());
    let mut taps = [(0usize, 0f32); MAX_TAPS];
    for ky in 0..g.k {
        for kx in 0..g.k {
            let phase = (ky % s) * s + kx % s;
            taps[ky * g.k + kx] = (phase * len + (ky / s) * cols + kx / s, filter[ky * g.k + kx]);
        }
    }
    let taps = &taps[..g.k * g.k];
    let (zero, six, b) = (simd.splat_f32s(0.0), simd.splat_f32s(6.0), simd.splat_f32s(bias));
    let (vectors, _) = S::as_mut_simd_f32s(wide);
    for (i, dst) in vectors.iter_mut().enumerate() {
        let q = i * S::F32_LANES;
        let mut acc = b;
        for &(start, w) in taps {
            let v = S::as_simd_f32s(&phases[start + q..start + q + S::F32_LANES]).0[0];
            acc = simd.mul_add_f32s(simd.splat_f32s(w), v, acc);
        }
        *dst = simd.min_f32s(simd.max_f32s(acc, zero), six);
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    use super::*;

    /// Against burn's grouped convolution on the shapes EfficientNet uses: 3×3 and 5×5, stride 1 (symmetric padding) and
    /// stride 2 (TensorFlow "SAME": one more zero below and right than above and left), odd and even sizes.
    #[test]
    fn matches_burns_grouped_convolution() {
        let device = Device::flex();
        for (k, stride, h, w, with_before) in
            [(3usize, 1usize, 7usize, 9usize, false), (5, 1, 8, 8, true), (3, 2, 8, 10, true), (5, 2, 9, 7, false), (3, 2, 2, 2, true)]
        {
            let (batch, channels) = (2, 5);
            let (out_h, out_w) = if stride == 1 { (h, w) } else { (h.div_ceil(2), w.div_ceil(2)) };
            let pad = |size: usize, out: usize| {
                let total = ((out - 1) * stride + k).saturating_sub(size);
                if stride == 1 { (total / 2, total / 2) } else { (total / 2, total - total / 2) }
            };
            let (ph, pw) = (pad(h, out_h), pad(w, out_w));
            let n = batch * channels * h * w;
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.731).sin() * 8.0).collect();
            let weight: Vec<f32> = (0..channels * k * k).map(|i| (i as f32 * 1.37).cos()).collect();
            let bias: Vec<f32> = (0..channels).map(|i| i as f32 * 0.3 - 0.5).collect();
            let g = Depthwise { channels, h, w, k, stride, top: ph.0, left: pw.0, out_h, out_w };
            let before: Vec<f32> = (0..channels).map(|i| 1.5 - i as f32 * 0.7).collect();
            let got = depthwise_relu6(&g, &x, &weight, &bias, with_before.then_some(before.as_slice()));

            let input = Tensor::<4>::from_data(TensorData::new(x, [batch, channels, h, w]), &device);
            let input = if with_before {
                let b = Tensor::<1>::from_data(TensorData::new(before, [channels]), &device).reshape([1, channels, 1, 1]);
                (input + b).clamp(0.0, 6.0)
            } else {
                input
            };
            let filters = Tensor::<4>::from_data(TensorData::new(weight, [channels, 1, k, k]), &device);
            let options = ConvOptions::new_with_padding([stride; 2], [ph, pw], [1, 1], channels);
            let want = conv2d(input, filters, Some(Tensor::from_data(TensorData::new(bias, [channels]), &device)), options)
                .clamp(0.0, 6.0);
            assert_eq!(want.dims(), [batch, channels, out_h, out_w]);
            let want: Vec<f32> = want.into_data().try_to_vec().unwrap();
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "k {k} stride {stride} {h}×{w}: off by {err}");
        }
    }
}
