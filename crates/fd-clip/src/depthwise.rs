//! The depthwise convolution of EfficientNet's inference path (and a dense one for few input channels, the stem), with
//! the previous layer's bias and activation, this layer's bias and the ReLU6 after it in the same pass (burn flex's
//! depthwise kernel took half of an embedding; `cargo xtask bench embed`, BENCHMARKS.md).
//!
//! Each plane is copied once into zero-padded buffers split by row and column phase (for stride `s`, padded row `y` and
//! column `x` live in phase `(y % s, x % s)` at row `y / s`, column `x / s`). An output row is then computed over `cols`
//! columns (those past `out_w` are discarded), so the input of every tap is contiguous: each output vector is a sum of
//! whole-vector fused multiply-adds with no bounds logic at the borders. Planes run in parallel; a plane's sums run in a
//! fixed order, so the result does not depend on the thread count. Output planes of at most [`SMALL_OUT`] pixels (the
//! last blocks: 3 × 3 at 96 pixels) are vectorised across channels instead ([`across_channels`]), with the same sums in
//! the same order.

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

    /// One phase buffer's length: its rows and columns, then a block of vectors' worth of slack.
    fn phase_len(&self) -> usize {
        let (rows, cols) = self.phase_shape();
        rows * cols + BLOCK * MAX_LANES
    }

    /// A task's scratch, zeroed: the phase buffers of `inputs` planes, and one plane's wide rows (`out_h` rows of
    /// `cols`, rounded up to whole vectors).
    fn scratch(&self, inputs: usize) -> (Vec<f32>, Vec<f32>) {
        let wide = (self.out_h * self.phase_shape().1).div_ceil(MAX_LANES) * MAX_LANES;
        (vec![0f32; inputs * self.stride * self.stride * self.phase_len()], vec![0f32; wide])
    }
}

/// The widest vector, in f32 lanes (AVX-512).
const MAX_LANES: usize = 16;

/// Vectors computed together in [`plane`].
const BLOCK: usize = 4;

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
    assert!(before.is_none_or(|b| b.len() == g.channels), "depthwise: one input bias per channel");
    if plane_out > 0 && plane_out <= SMALL_OUT && x.len().is_multiple_of((g.channels * plane_in).max(1)) {
        across_channels(g, x, weight, bias, before)
    } else {
        along_rows(g, x, weight, bias, before)
    }
}

/// [`depthwise_relu6`] a plane at a time, vectorised along its rows (see the module's docs).
fn along_rows(g: &Depthwise, x: &[f32], weight: &[f32], bias: &[f32], before: Option<&[f32]>) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.out_h * g.out_w);
    let planes = x.len() / plane_in.max(1);
    let mut out = vec![0f32; planes * plane_out];
    // Planes go to the threads in groups of at least PER_TASK outputs: a 4 × 4 plane alone is too little work to send.
    let group = PER_TASK.div_ceil(plane_out.max(1)).max(1);
    out.par_chunks_mut(plane_out.max(1) * group).enumerate().for_each_init(
        || g.scratch(1),
        |(phases, wide), (i, out)| {
            let first = i * group;
            let x = &x[first * plane_in..(first * plane_in + out.len() / plane_out.max(1) * plane_in)];
            pulp::Arch::new().dispatch(Planes { g, first, x, weight, bias, before, phases, wide, out });
        },
    );
    out
}

/// Outputs per parallel task, at least.
const PER_TASK: usize = 4096;

/// Output planes of at most this many pixels go through [`across_channels`]: a row of a 3 × 3 output fills 3 of a
/// vector's 16 lanes in [`plane`].
const SMALL_OUT: usize = 64;

/// [`depthwise_relu6`] for small planes, vectorised across channels instead of along rows: a vector's lanes are
/// neighbouring channels of one pixel. Per image and group of lanes, the group's planes are interleaved into one
/// zero-padded buffer (`[row][column][lane]`), then each output pixel is the bias and every tap's fused multiply-add, in
/// the order [`plane`] adds them, so the two paths give the same values bit for bit.
fn across_channels(g: &Depthwise, x: &[f32], weight: &[f32], bias: &[f32], before: Option<&[f32]>) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.out_h * g.out_w);
    let per_image = g.channels * plane_in;
    let mut out = vec![0f32; x.len() / plane_in.max(1) * plane_out];
    let (rows, cols) = ((g.out_h - 1) * g.stride + g.k, (g.out_w - 1) * g.stride + g.k);
    out.par_chunks_mut((g.channels * plane_out).max(1)).zip(x.par_chunks(per_image.max(1))).for_each_init(
        || (vec![0f32; rows * cols * MAX_LANES], vec![0f32; plane_out * MAX_LANES], vec![0f32; g.k * g.k * MAX_LANES]),
        |(padded, pixels, taps), (out, x)| {
            let task = Across { g, x, weight, bias, before, padded, pixels, taps, out };
            pulp::Arch::new().dispatch(task);
        },
    );
    out
}

/// One image of [`across_channels`], compiled like [`Planes`].
struct Across<'a> {
    g: &'a Depthwise,
    x: &'a [f32],
    weight: &'a [f32],
    bias: &'a [f32],
    before: Option<&'a [f32]>,
    /// The group's padded input, `[row][column][lane]`.
    padded: &'a mut [f32],
    /// The group's outputs, `[pixel][lane]`.
    pixels: &'a mut [f32],
    /// The group's filters, `[tap][lane]`.
    taps: &'a mut [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Across<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (g, lanes, kk) = (self.g, S::F32_LANES, self.g.k * self.g.k);
        let (plane_in, plane_out) = (g.h * g.w, g.out_h * g.out_w);
        let cols = (g.out_w - 1) * g.stride + g.k;
        let rows = (g.out_h - 1) * g.stride + g.k;
        let (zero, six) = (simd.splat_f32s(0.0), simd.splat_f32s(6.0));
        for c0 in (0..g.channels).step_by(lanes) {
            let n = lanes.min(g.channels - c0);
            let padded = &mut self.padded[..rows * cols * lanes];
            padded.fill(0.0);
            self.taps[..kk * lanes].fill(0.0);
            let mut b = [0f32; MAX_LANES];
            for l in 0..n {
                let c = c0 + l;
                b[l] = self.bias[c];
                let act = |v: f32| match self.before {
                    Some(before) => (v + before[c]).clamp(0.0, 6.0),
                    None => v,
                };
                let src = &self.x[c * plane_in..(c + 1) * plane_in];
                for (y, row) in src.chunks_exact(g.w).enumerate().filter(|(y, _)| y + g.top < rows) {
                    let at = (y + g.top) * cols;
                    for (xi, &v) in row.iter().enumerate().take(cols.saturating_sub(g.left)) {
                        padded[(at + xi + g.left) * lanes + l] = act(v);
                    }
                }
                for (t, &w) in self.weight[c * kk..(c + 1) * kk].iter().enumerate() {
                    self.taps[t * lanes + l] = w;
                }
            }
            let b = simd.partial_load_f32s(&b[..lanes]);
            let taps = S::as_simd_f32s(&self.taps[..kk * lanes]).0;
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let mut acc = b;
                    for ky in 0..g.k {
                        let at = ((oy * g.stride + ky) * cols + ox * g.stride) * lanes;
                        let inputs = S::as_simd_f32s(&padded[at..at + g.k * lanes]).0;
                        for (&v, &w) in inputs.iter().zip(&taps[ky * g.k..(ky + 1) * g.k]) {
                            acc = simd.mul_add_f32s(w, v, acc);
                        }
                    }
                    let p = oy * g.out_w + ox;
                    let dst = &mut S::as_mut_simd_f32s(&mut self.pixels[p * lanes..(p + 1) * lanes]).0[0];
                    *dst = simd.min_f32s(simd.max_f32s(acc, zero), six);
                }
            }
            for l in 0..n {
                let dst = &mut self.out[(c0 + l) * plane_out..(c0 + l + 1) * plane_out];
                for (p, d) in dst.iter_mut().enumerate() {
                    *d = self.pixels[p * lanes + l];
                }
            }
        }
    }
}

/// A run of planes, compiled for the CPU's widest vectors (AVX-512 or AVX2, picked at run time by `pulp`): everything
/// it calls is inlined into it, so the loops are vectorised for that instruction set.
struct Planes<'a> {
    g: &'a Depthwise,
    /// The index of the first plane (batch-major, so its channel is `first % channels`).
    first: usize,
    x: &'a [f32],
    weight: &'a [f32],
    bias: &'a [f32],
    before: Option<&'a [f32]>,
    phases: &'a mut [f32],
    wide: &'a mut [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Planes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let g = self.g;
        let kk = g.k * g.k;
        let mut tap_list = Vec::with_capacity(kk);
        let planes = self.x.chunks_exact(g.h * g.w).zip(self.out.chunks_exact_mut(g.out_h * g.out_w));
        for (j, (x, out)) in planes.enumerate() {
            let c = (self.first + j) % g.channels;
            fill_phases(g, x, self.before.map(|b| b[c]), self.phases);
            tap_list.clear();
            taps(g, &self.weight[c * kk..(c + 1) * kk], 0, &mut tap_list);
            plane(simd, &tap_list, self.phases, self.bias[c], self.wide);
            narrow(g, self.wide, out);
        }
    }
}

/// Copies the plane's outputs out of the wide rows, which hold `cols` outputs of which the first `out_w` are the plane's.
#[inline(always)]
fn narrow(g: &Depthwise, wide: &[f32], out: &mut [f32]) {
    let cols = g.phase_shape().1;
    for (dst, src) in out.chunks_exact_mut(g.out_w).zip(wide.chunks(cols)) {
        dst.copy_from_slice(&src[..g.out_w]);
    }
}

/// `relu6(conv(x, weight) + bias)` for a dense convolution of few input channels (EfficientNet's stem: 3), every output
/// channel summing the taps of every input channel: `x` is `[batch, g.channels, h, w]`, `weight` `[cout, g.channels, k,
/// k]`, `bias` `[cout]`. Returns `[batch, cout, out_h, out_w]`.
pub(crate) fn dense_relu6(g: &Depthwise, cout: usize, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (cin, plane_in, plane_out) = (g.channels, g.h * g.w, g.out_h * g.out_w);
    assert_eq!(x.len() % (cin * plane_in).max(1), 0, "dense: the input is not whole images");
    assert_eq!(weight.len(), cout * cin * g.k * g.k, "dense: one k×k filter per output and input channel");
    assert_eq!(bias.len(), cout, "dense: one bias per output channel");
    let images = x.len() / (cin * plane_in).max(1);
    let mut out = vec![0f32; images * cout * plane_out];
    out.par_chunks_mut((cout * plane_out).max(1)).zip(x.par_chunks(cin * plane_in)).for_each_init(
        || g.scratch(cin),
        |(phases, wide), (out, x)| pulp::Arch::new().dispatch(Dense { g, x, weight, bias, phases, wide, out }),
    );
    out
}

/// One image of [`dense_relu6`], compiled like [`Planes`].
struct Dense<'a> {
    g: &'a Depthwise,
    x: &'a [f32],
    weight: &'a [f32],
    bias: &'a [f32],
    phases: &'a mut [f32],
    wide: &'a mut [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Dense<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let g = self.g;
        let (kk, per_input) = (g.k * g.k, g.stride * g.stride * g.phase_len());
        for (x, phases) in self.x.chunks_exact(g.h * g.w).zip(self.phases.chunks_exact_mut(per_input)) {
            fill_phases(g, x, None, phases);
        }
        let mut tap_list = Vec::with_capacity(g.channels * kk);
        for (co, out) in self.out.chunks_exact_mut(g.out_h * g.out_w).enumerate() {
            tap_list.clear();
            for ci in 0..g.channels {
                let filter = &self.weight[(co * g.channels + ci) * kk..][..kk];
                taps(g, filter, ci * per_input, &mut tap_list);
            }
            plane(simd, &tap_list, self.phases, self.bias[co], self.wide);
            narrow(g, self.wide, out);
        }
    }
}

/// Copies one input plane into the zero-padded phase buffers.
#[inline(always)]
fn fill_phases(g: &Depthwise, x: &[f32], before: Option<f32>, phases: &mut [f32]) {
    // No zeroing: the buffers start at zero, and every plane of one call writes the same interior positions.
    let (s, cols, len) = (g.stride, g.phase_shape().1, g.phase_len());
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
            } else if s == 2 {
                // Every other input column, as pairs (vectorises better than a stepped iterator).
                let src = &src[first..];
                let dst = &mut dst[j0..];
                for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                    *d = act(pair[0]);
                }
                if src.len() % 2 == 1 && src.len() / 2 < dst.len() {
                    dst[src.len() / 2] = act(src[src.len() - 1]);
                }
            } else {
                for (d, &v) in dst[j0..].iter_mut().zip(src.iter().skip(first).step_by(s)) {
                    *d = act(v);
                }
            }
        }
    }
}

/// Each tap of a `k × k` filter reading phase buffers that start at `base`: where its input starts for output 0, and its
/// weight. Output `q = oy cols + ox` of tap `(ky, kx)` reads phase `(ky % s, kx % s)` at `q + (ky / s) cols + kx / s`:
/// contiguous in `q`, so every load is a whole vector.
#[inline(always)]
fn taps(g: &Depthwise, filter: &[f32], base: usize, taps: &mut Vec<(usize, f32)>) {
    let (s, cols, len) = (g.stride, g.phase_shape().1, g.phase_len());
    for ky in 0..g.k {
        for kx in 0..g.k {
            let phase = (ky % s) * s + kx % s;
            taps.push((base + phase * len + (ky / s) * cols + kx / s, filter[ky * g.k + kx]));
        }
    }
}

/// The plane's outputs over whole rows of `cols` (the columns past `out_w` are discarded later), a block of vectors at a
/// time: the bias, every tap multiplied in and added (fused), ReLU6.
#[inline(always)]
fn plane<S: pulp::Simd>(simd: S, taps: &[(usize, f32)], phases: &[f32], bias: f32, wide: &mut [f32]) {
    assert!(S::F32_LANES <= MAX_LANES && wide.len().is_multiple_of(S::F32_LANES));
    let (zero, six, b) = (simd.splat_f32s(0.0), simd.splat_f32s(6.0), simd.splat_f32s(bias));
    let (vectors, _) = S::as_mut_simd_f32s(wide);
    // BLOCK vectors of outputs at a time, their sums kept in registers across the taps; then the rest one at a time.
    let done = vectors.len() / BLOCK * BLOCK;
    let mut blocks = vectors.chunks_exact_mut(BLOCK);
    for (i, dst) in blocks.by_ref().enumerate() {
        let q = i * BLOCK * S::F32_LANES;
        let mut acc = [b; BLOCK];
        for &(start, w) in taps {
            let src = S::as_simd_f32s(&phases[start + q..start + q + BLOCK * S::F32_LANES]).0;
            let (src, w) = (&src[..BLOCK], simd.splat_f32s(w));
            for (a, &v) in acc.iter_mut().zip(src) {
                *a = simd.mul_add_f32s(w, v, *a);
            }
        }
        for (d, a) in dst.iter_mut().zip(acc) {
            *d = simd.min_f32s(simd.max_f32s(a, zero), six);
        }
    }
    for (i, dst) in blocks.into_remainder().iter_mut().enumerate() {
        let q = (done + i) * S::F32_LANES;
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
        for (k, stride, h, w, with_before) in [
            (3usize, 1usize, 7usize, 9usize, false),
            (3, 1, 16, 12, true),
            (5, 2, 17, 16, true),
            (5, 1, 8, 8, true),
            (3, 2, 8, 10, true),
            (5, 2, 9, 7, false),
            (3, 2, 9, 7, true),
            (3, 2, 2, 2, true),
            (5, 2, 1, 1, true),
            (3, 1, 1, 1, false),
        ] {
            // Enough planes of the small sizes that they go to several parallel tasks (PER_TASK outputs each); and more
            // channels than a vector has lanes, for the path across channels (37: two whole groups and a part).
            let (batch, channels) = if h * w <= 4 { (300, 5) } else { (2, 37) };
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
            let before_of = with_before.then_some(before.as_slice());
            let got = depthwise_relu6(&g, &x, &weight, &bias, before_of);
            // Both paths, whatever the size picks: the same values bit for bit.
            let rows = along_rows(&g, &x, &weight, &bias, before_of);
            let across = across_channels(&g, &x, &weight, &bias, before_of);
            assert!(rows == across && got == rows, "k {k} stride {stride} {h}×{w}: the two paths differ");

            let input = Tensor::<4>::from_data(TensorData::new(x, [batch, channels, h, w]), &device);
            let input = if with_before {
                let b =
                    Tensor::<1>::from_data(TensorData::new(before, [channels]), &device).reshape([1, channels, 1, 1]);
                (input + b).clamp(0.0, 6.0)
            } else {
                input
            };
            let filters = Tensor::<4>::from_data(TensorData::new(weight, [channels, 1, k, k]), &device);
            let options = ConvOptions::new_with_padding([stride; 2], [ph, pw], [1, 1], channels);
            let want =
                conv2d(input, filters, Some(Tensor::from_data(TensorData::new(bias, [channels]), &device)), options)
                    .clamp(0.0, 6.0);
            assert_eq!(want.dims(), [batch, channels, out_h, out_w]);
            let want: Vec<f32> = want.into_data().try_to_vec().unwrap();
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "k {k} stride {stride} {h}×{w}: off by {err}");
        }
    }

    /// The dense kernel (EfficientNet's stem: 3 input channels, 3 × 3, stride 2, "SAME") against burn's convolution.
    #[test]
    fn dense_matches_burns_convolution() {
        let device = Device::flex();
        for (h, w) in [(9usize, 8usize), (6, 7)] {
            let (batch, cin, cout, k, stride) = (2, 3, 5, 3, 2);
            let (out_h, out_w) = (h.div_ceil(2), w.div_ceil(2));
            let pad = |size: usize, out: usize| {
                let total = ((out - 1) * stride + k).saturating_sub(size);
                (total / 2, total - total / 2)
            };
            let (ph, pw) = (pad(h, out_h), pad(w, out_w));
            let x: Vec<f32> = (0..batch * cin * h * w).map(|i| (i as f32 * 0.377).sin() * 3.0).collect();
            let weight: Vec<f32> = (0..cout * cin * k * k).map(|i| (i as f32 * 0.91).cos()).collect();
            let bias: Vec<f32> = (0..cout).map(|i| 0.4 - i as f32 * 0.3).collect();
            let g = Depthwise { channels: cin, h, w, k, stride, top: ph.0, left: pw.0, out_h, out_w };
            let got = dense_relu6(&g, cout, &x, &weight, &bias);
            let input = Tensor::<4>::from_data(TensorData::new(x, [batch, cin, h, w]), &device);
            let filters = Tensor::<4>::from_data(TensorData::new(weight, [cout, cin, k, k]), &device);
            let options = ConvOptions::new_with_padding([stride; 2], [ph, pw], [1, 1], 1);
            let bias = Tensor::from_data(TensorData::new(bias, [cout]), &device);
            let want: Vec<f32> =
                conv2d(input, filters, Some(bias), options).clamp(0.0, 6.0).into_data().try_to_vec().unwrap();
            assert_eq!(got.len(), want.len());
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "{h}×{w}: off by {err}");
        }
    }
}
