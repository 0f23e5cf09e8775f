//! EfficientNet-Lite's inference kernels on channels-last activations (`[images, h, w, channels]`: a pixel's channels
//! are contiguous), as ONNX Runtime's CPU kernels lay them out. A 1 × 1 convolution is then one matrix product over
//! every pixel of a chunk of images (in [`crate::fused`], through [`crate::matmul::by_rows`]), and a depthwise convolution is
//! vectorised across channels whatever the size of its planes.
//!
//! The spatial kernels here ([`depthwise_relu6`], [`dense_relu6`]) run a task per image (or band of output rows): the
//! input rows a band reads are activated once each into a ring of `k` zero-padded rows (the layer before's bias and
//! ReLU6 applied as a row is copied in), so the taps need no bounds logic; then each output pixel is its bias, every tap
//! multiplied in and added (fused), and ReLU6. A pixel's sums run in a fixed order, so results do not depend on the
//! thread count. Vectors are the CPU's widest (AVX-512 or AVX2, picked at run time by `pulp`).

use rayon::prelude::*;

/// The shape of one spatial convolution over `channels` planes of `h × w` (the depthwise ones, and the stem's input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spatial {
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

/// The geometry's zero-padded input: rows and columns of the padded plane that outputs read.
fn padded(g: &Spatial) -> (usize, usize) {
    ((g.out_h - 1) * g.stride + g.k, (g.out_w - 1) * g.stride + g.k)
}

/// Bands of output rows per image: enough tasks for the threads when a chunk holds few images.
fn bands(g: &Spatial, images: usize) -> usize {
    (8 / images.max(1)).clamp(1, g.out_h.max(1))
}

/// `relu6(conv(act(x), weight) + bias)` per channel, channels-last: `x` is `[images, h, w, channels]`, `weight`
/// `[k, k, channels]` (tap-major, a tap's channels contiguous), `bias` `[channels]`; `act` is the identity, or with
/// `before = Some(b)` (the layer before's bias and activation, fused here) `relu6(x + b[c])`. Writes `[images, out_h,
/// out_w, channels]` into `out`.
pub(crate) fn depthwise_relu6(
    g: &Spatial,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    before: Option<&[f32]>,
    out: &mut [f32],
) {
    let c = g.channels;
    assert_eq!(weight.len(), g.k * g.k * c, "depthwise: one k×k filter per channel");
    assert_eq!(bias.len(), c, "depthwise: one bias per channel");
    assert!(before.is_none_or(|b| b.len() == c), "depthwise: one input bias per channel");
    let layer = Layer { g, cin: c, weight, bias, depthwise: true };
    layer.run(x, c, out, |image, r, dst| {
        // Row `r` of the input, activated.
        let src = &image[r * g.w * c..(r + 1) * g.w * c];
        match before {
            Some(b) => {
                for (d, s) in dst.chunks_exact_mut(c).zip(src.chunks_exact(c)) {
                    for ((d, &s), &b) in d.iter_mut().zip(s).zip(b) {
                        *d = (s + b).clamp(0.0, 6.0);
                    }
                }
            }
            None => dst.copy_from_slice(&src[..dst.len()]),
        }
    })
}

/// `relu6(conv(x, weight) + bias)` for a dense convolution of few input channels (EfficientNet's stem: 3), reading
/// `x` as `[images, g.channels, h, w]` (the network's input, channels first) and writing `[images, out_h, out_w, cout]`
/// into `out`. `weight` is `[k, k, g.channels, cout]`, `bias` `[cout]`.
pub(crate) fn dense_relu6(g: &Spatial, cout: usize, x: &[f32], weight: &[f32], bias: &[f32], out: &mut [f32]) {
    let cin = g.channels;
    assert_eq!(weight.len(), g.k * g.k * cin * cout, "dense: one k×k filter per output and input channel");
    assert_eq!(bias.len(), cout, "dense: one bias per output channel");
    let layer = Layer { g, cin, weight, bias, depthwise: false };
    let plane = g.h * g.w;
    layer.run(x, cout, out, |image, r, dst| {
        for (xi, d) in dst.chunks_exact_mut(cin).enumerate() {
            for (ci, d) in d.iter_mut().enumerate() {
                *d = image[ci * plane + r * g.w + xi];
            }
        }
    })
}

/// One spatial convolution layer over channels-last output.
struct Layer<'a> {
    g: &'a Spatial,
    /// Input channels (of a ring row's pixels).
    cin: usize,
    weight: &'a [f32],
    bias: &'a [f32],
    /// Spatial (an output channel reads its own input channel) or dense (every output channel reads every input).
    depthwise: bool,
}

impl Layer<'_> {
    /// Runs the layer over every image of `x` (`cin · h · w` values each, in whatever order `load` reads) into `out`
    /// (`[images, out_h, out_w, cout]`, every value written): `load(image, r, dst)` writes input row `r` of an image,
    /// `w · cin` values, activated, into `dst`.
    fn run(&self, x: &[f32], cout: usize, out: &mut [f32], load: impl Fn(&[f32], usize, &mut [f32]) + Sync) {
        let g = self.g;
        let per_image = self.cin * g.h * g.w;
        assert_eq!(x.len() % per_image.max(1), 0, "the input is not whole images");
        let images = x.len() / per_image.max(1);
        let row_out = g.out_w * cout;
        assert_eq!(out.len(), images * g.out_h * row_out, "the output is not the layer's");
        if out.is_empty() {
            return;
        }
        let bands = bands(g, images);
        let band_rows = g.out_h.div_ceil(bands);
        let (_, cols) = padded(g);
        let ring_row = cols * self.cin;
        let tasks: Vec<(usize, usize)> =
            (0..images).flat_map(|i| (0..g.out_h).step_by(band_rows).map(move |r| (i, r))).collect();
        let mut slices: Vec<&mut [f32]> = Vec::with_capacity(tasks.len());
        let mut rest = out;
        for &(_, r0) in &tasks {
            let rows = band_rows.min(g.out_h - r0);
            let (band, tail) = rest.split_at_mut(rows * row_out);
            slices.push(band);
            rest = tail;
        }
        slices.into_par_iter().zip(tasks).for_each_init(
            || vec![0f32; g.k * ring_row],
            |ring, (band, (image, r0))| {
                ring.fill(0.0);
                let image = &x[image * per_image..(image + 1) * per_image];
                let task = Band { layer: self, cout, image, r0, ring, band, load: &load };
                pulp::Arch::new().dispatch(task);
            },
        );
    }
}

/// One band of output rows of one image, compiled for the CPU's widest vectors: everything it calls is inlined into it.
struct Band<'a, L> {
    layer: &'a Layer<'a>,
    cout: usize,
    image: &'a [f32],
    /// The band's first output row.
    r0: usize,
    /// `k` padded input rows, padded row `p` in slot `p % k`.
    ring: &'a mut [f32],
    band: &'a mut [f32],
    load: &'a L,
}

impl<L: Fn(&[f32], usize, &mut [f32])> pulp::WithSimd for Band<'_, L> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Band { layer, cout, image, r0, ring, band, load } = self;
        let (g, cin, k, s) = (layer.g, layer.cin, layer.g.k, layer.g.stride);
        let (rows, cols) = padded(g);
        let ring_row = cols * cin;
        // The next padded row to load into the ring.
        let mut next = r0 * s;
        for (oy, out_row) in (r0..).zip(band.chunks_exact_mut(g.out_w * cout)) {
            while next < (oy * s + k).min(rows) {
                let slot = &mut ring[(next % k) * ring_row..(next % k + 1) * ring_row];
                match next.checked_sub(g.top).filter(|&r| r < g.h) {
                    Some(r) => {
                        // Columns `left..left + w` of the padded row, those the outputs read; the others stay zero.
                        let (from, to) = (g.left * cin, ((g.left + g.w).min(cols)) * cin);
                        load(image, r, &mut slot[from..to]);
                    }
                    None => slot.fill(0.0),
                }
                next += 1;
            }
            let rows_of = |ky: usize| {
                let slot = (oy * s + ky) % k;
                &ring[slot * ring_row..(slot + 1) * ring_row]
            };
            if layer.depthwise {
                depthwise_row(simd, layer, &rows_of, out_row);
            } else {
                for (ox, out) in out_row.chunks_exact_mut(cout).enumerate() {
                    dense_pixel(simd, layer, &rows_of, ox, out);
                }
            }
        }
    }
}

/// Channel vectors summed together in [`depthwise_block`] and [`dense_pixel`].
const BLOCK: usize = 4;

/// One output row of a depthwise layer: per channel, the bias, then tap `(ky, kx)` of every row in order. Pixels go in
/// pairs, each tap's weights loaded once for both; a pair's channels in blocks of [`BLOCK`] vectors, then single ones,
/// then the channels past the last whole vector, one at a time.
#[inline(always)]
fn depthwise_row<'r, S: pulp::Simd>(
    simd: S,
    layer: &Layer<'_>,
    rows_of: &impl Fn(usize) -> &'r [f32],
    out: &mut [f32],
) {
    let (g, c, lanes) = (layer.g, layer.cin, S::F32_LANES);
    let whole = c / lanes * lanes;
    let mut ox = 0;
    while ox + 2 <= g.out_w {
        depthwise_tile::<S, 2>(simd, layer, rows_of, ox, whole, out);
        ox += 2;
    }
    if ox < g.out_w {
        depthwise_tile::<S, 1>(simd, layer, rows_of, ox, whole, out);
    }
    for ox in 0..g.out_w {
        for ch in whole..c {
            let mut acc = layer.bias[ch];
            for ky in 0..g.k {
                let row = rows_of(ky);
                for kx in 0..g.k {
                    acc = layer.weight[(ky * g.k + kx) * c + ch].mul_add(row[(ox * g.stride + kx) * c + ch], acc);
                }
            }
            out[ox * c + ch] = acc.clamp(0.0, 6.0);
        }
    }
}

/// Pixels `ox..ox + P` of an output row, channels `0..whole` (whole vectors).
#[inline(always)]
fn depthwise_tile<'r, S: pulp::Simd, const P: usize>(
    simd: S,
    layer: &Layer<'_>,
    rows_of: &impl Fn(usize) -> &'r [f32],
    ox: usize,
    whole: usize,
    out: &mut [f32],
) {
    let lanes = S::F32_LANES;
    let mut c0 = 0;
    while c0 + BLOCK * lanes <= whole {
        depthwise_block::<S, P, BLOCK>(simd, layer, rows_of, ox, c0, out);
        c0 += BLOCK * lanes;
    }
    while c0 + lanes <= whole {
        depthwise_block::<S, P, 1>(simd, layer, rows_of, ox, c0, out);
        c0 += lanes;
    }
}

/// `V` channel vectors from `c0` of pixels `ox..ox + P`: their sums in registers across the taps.
#[inline(always)]
fn depthwise_block<'r, S: pulp::Simd, const P: usize, const V: usize>(
    simd: S,
    layer: &Layer<'_>,
    rows_of: &impl Fn(usize) -> &'r [f32],
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    let (g, c, lanes) = (layer.g, layer.cin, S::F32_LANES);
    let load = |v: &[f32], at: usize| S::as_simd_f32s(&v[at..at + lanes]).0[0];
    let bias: [S::f32s; V] = std::array::from_fn(|v| load(layer.bias, c0 + v * lanes));
    let mut acc = [bias; P];
    for ky in 0..g.k {
        let row = rows_of(ky);
        for kx in 0..g.k {
            let w_at = (ky * g.k + kx) * c + c0;
            let w: [S::f32s; V] = std::array::from_fn(|v| load(layer.weight, w_at + v * lanes));
            for (p, acc) in acc.iter_mut().enumerate() {
                let at = ((ox + p) * g.stride + kx) * c + c0;
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = simd.mul_add_f32s(w[v], load(row, at + v * lanes), *a);
                }
            }
        }
    }
    let (zero, six) = (simd.splat_f32s(0.0), simd.splat_f32s(6.0));
    for (p, acc) in acc.iter().enumerate() {
        for (v, &a) in acc.iter().enumerate() {
            let at = (ox + p) * c + c0 + v * lanes;
            S::as_mut_simd_f32s(&mut out[at..at + lanes]).0[0] = simd.min_f32s(simd.max_f32s(a, zero), six);
        }
    }
}

/// One output pixel of a dense layer of few input channels: per output channel, the bias, then every tap's input
/// channels in order.
#[inline(always)]
fn dense_pixel<'r, S: pulp::Simd>(
    simd: S,
    layer: &Layer<'_>,
    rows_of: &impl Fn(usize) -> &'r [f32],
    ox: usize,
    out: &mut [f32],
) {
    let (g, cin, cout, lanes) = (layer.g, layer.cin, out.len(), S::F32_LANES);
    let (zero, six) = (simd.splat_f32s(0.0), simd.splat_f32s(6.0));
    let vectors = cout / lanes;
    let mut c0 = 0;
    while c0 < vectors * lanes {
        let n = BLOCK.min(vectors - c0 / lanes);
        let mut acc = [zero; BLOCK];
        for (v, a) in acc.iter_mut().enumerate().take(n) {
            *a = S::as_simd_f32s(&layer.bias[c0 + v * lanes..c0 + (v + 1) * lanes]).0[0];
        }
        for ky in 0..g.k {
            let row = rows_of(ky);
            for kx in 0..g.k {
                let at = (ox * g.stride + kx) * cin;
                for (ci, &x) in row[at..at + cin].iter().enumerate() {
                    let w_at = ((ky * g.k + kx) * cin + ci) * cout + c0;
                    let (x, weights) = (simd.splat_f32s(x), S::as_simd_f32s(&layer.weight[w_at..w_at + n * lanes]).0);
                    for (a, &w) in acc.iter_mut().zip(weights) {
                        *a = simd.mul_add_f32s(w, x, *a);
                    }
                }
            }
        }
        let dst = S::as_mut_simd_f32s(&mut out[c0..c0 + n * lanes]).0;
        for (d, a) in dst.iter_mut().zip(acc) {
            *d = simd.min_f32s(simd.max_f32s(a, zero), six);
        }
        c0 += n * lanes;
    }
    for (co, o) in out.iter_mut().enumerate().skip(c0) {
        let mut acc = layer.bias[co];
        for ky in 0..g.k {
            let row = rows_of(ky);
            for kx in 0..g.k {
                let at = (ox * g.stride + kx) * cin;
                for (ci, &x) in row[at..at + cin].iter().enumerate() {
                    acc = layer.weight[((ky * g.k + kx) * cin + ci) * cout + co].mul_add(x, acc);
                }
            }
        }
        *o = acc.clamp(0.0, 6.0);
    }
}

/// Adds `bias` (`[channels]`) and, when given, `residual` (the same rows) to channels-last rows `y`.
pub(crate) fn add_bias(y: &mut [f32], bias: &[f32], residual: Option<&[f32]>) {
    let c = bias.len().max(1);
    match residual {
        Some(r) => {
            for (y, r) in y.chunks_exact_mut(c).zip(r.chunks_exact(c)) {
                for ((y, &r), &b) in y.iter_mut().zip(r).zip(bias) {
                    *y += b + r;
                }
            }
        }
        None => {
            for y in y.chunks_exact_mut(c) {
                for (y, &b) in y.iter_mut().zip(bias) {
                    *y += b;
                }
            }
        }
    }
}

/// Per image, the mean over its `pixels` of `relu6(y + bias)` (`y` channels-last, `[images, pixels, channels]`):
/// `[images, channels]`.
pub(crate) fn relu6_mean(y: &[f32], pixels: usize, bias: &[f32]) -> Vec<f32> {
    let c = bias.len();
    let per_image = (pixels * c).max(1);
    let mut out = vec![0f32; y.len() / per_image * c];
    out.par_chunks_mut(c.max(1)).zip(y.par_chunks(per_image)).for_each(|(out, image)| {
        for pixel in image.chunks_exact(c) {
            for ((o, &v), &b) in out.iter_mut().zip(pixel).zip(bias) {
                *o += (v + b).clamp(0.0, 6.0);
            }
        }
        out.iter_mut().for_each(|o| *o /= pixels as f32);
    });
    out
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    use super::*;

    /// `[n, c, h, w]` values as channels-last `[n, h, w, c]`.
    fn to_channels_last(t: Tensor<4>) -> Vec<f32> {
        t.permute([0, 2, 3, 1]).into_data().try_to_vec().unwrap()
    }

    /// TensorFlow's "SAME" padding (one more zero below and right than above and left at stride 2), as EfficientNet's.
    fn same(size: usize, out: usize, k: usize, stride: usize) -> (usize, usize) {
        let total = ((out - 1) * stride + k).saturating_sub(size);
        if stride == 1 { (total / 2, total / 2) } else { (total / 2, total - total / 2) }
    }

    /// Against burn's grouped convolution on the shapes EfficientNet uses: 3×3 and 5×5, stride 1 and 2, odd and even
    /// sizes, planes down to one pixel; channels that fill whole vectors and a remainder (37), and few images (bands).
    #[test]
    fn depthwise_matches_burns_grouped_convolution() {
        let device = Device::flex();
        for (k, stride, h, w, with_before, batch, channels) in [
            (3usize, 1usize, 7usize, 9usize, false, 2usize, 37usize),
            (3, 1, 16, 12, true, 1, 64),
            (5, 2, 17, 16, true, 3, 37),
            (5, 1, 8, 8, true, 2, 96),
            (3, 2, 8, 10, true, 20, 16),
            (5, 2, 9, 7, false, 2, 5),
            (3, 2, 9, 7, true, 1, 80),
            (3, 2, 2, 2, true, 9, 37),
            (5, 2, 1, 1, true, 4, 40),
            (3, 1, 1, 1, false, 2, 37),
        ] {
            let (out_h, out_w) = if stride == 1 { (h, w) } else { (h.div_ceil(2), w.div_ceil(2)) };
            let (ph, pw) = (same(h, out_h, k, stride), same(w, out_w, k, stride));
            let n = batch * channels * h * w;
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.731).sin() * 8.0).collect();
            let weight: Vec<f32> = (0..channels * k * k).map(|i| (i as f32 * 1.37).cos()).collect();
            let bias: Vec<f32> = (0..channels).map(|i| i as f32 * 0.3 - 0.5).collect();
            let before: Vec<f32> = (0..channels).map(|i| 1.5 - i as f32 * 0.7).collect();
            let g = Spatial { channels, h, w, k, stride, top: ph.0, left: pw.0, out_h, out_w };
            let input = Tensor::<4>::from_data(TensorData::new(x, [batch, channels, h, w]), &device);
            let filters = Tensor::<4>::from_data(TensorData::new(weight, [channels, 1, k, k]), &device);
            // The kernel's layouts: channels-last input, tap-major filters.
            let x_last = to_channels_last(input.clone());
            let taps: Vec<f32> = filters.clone().permute([2, 3, 1, 0]).into_data().try_to_vec().unwrap();
            let mut got = vec![f32::NAN; batch * out_h * out_w * channels];
            depthwise_relu6(&g, &x_last, &taps, &bias, with_before.then_some(before.as_slice()), &mut got);

            let input = if with_before {
                let b =
                    Tensor::<1>::from_data(TensorData::new(before, [channels]), &device).reshape([1, channels, 1, 1]);
                (input + b).clamp(0.0, 6.0)
            } else {
                input
            };
            let options = ConvOptions::new_with_padding([stride; 2], [ph, pw], [1, 1], channels);
            let bias = Tensor::from_data(TensorData::new(bias, [channels]), &device);
            let want = conv2d(input, filters, Some(bias), options).clamp(0.0, 6.0);
            assert_eq!(want.dims(), [batch, channels, out_h, out_w]);
            let want = to_channels_last(want);
            assert_eq!(got.len(), want.len());
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "k {k} stride {stride} {h}×{w}, {channels} channels: off by {err}");
        }
    }

    /// The dense kernel (EfficientNet's stem: 3 input channels, 3 × 3, stride 2, "SAME"), reading channels-first
    /// images, against burn's convolution; output channels of whole vectors and a remainder.
    #[test]
    fn dense_matches_burns_convolution() {
        let device = Device::flex();
        for (h, w, cout, batch) in [(9usize, 8usize, 5usize, 2usize), (6, 7, 32, 1), (16, 16, 37, 3)] {
            let (cin, k, stride) = (3, 3, 2);
            let (out_h, out_w) = (h.div_ceil(2), w.div_ceil(2));
            let (ph, pw) = (same(h, out_h, k, stride), same(w, out_w, k, stride));
            let x: Vec<f32> = (0..batch * cin * h * w).map(|i| (i as f32 * 0.377).sin() * 3.0).collect();
            let weight: Vec<f32> = (0..cout * cin * k * k).map(|i| (i as f32 * 0.91).cos()).collect();
            let bias: Vec<f32> = (0..cout).map(|i| 0.4 - i as f32 * 0.3).collect();
            let g = Spatial { channels: cin, h, w, k, stride, top: ph.0, left: pw.0, out_h, out_w };
            let filters = Tensor::<4>::from_data(TensorData::new(weight, [cout, cin, k, k]), &device);
            let taps: Vec<f32> = filters.clone().permute([2, 3, 1, 0]).into_data().try_to_vec().unwrap();
            let mut got = vec![f32::NAN; batch * out_h * out_w * cout];
            dense_relu6(&g, cout, &x, &taps, &bias, &mut got);
            let input = Tensor::<4>::from_data(TensorData::new(x, [batch, cin, h, w]), &device);
            let options = ConvOptions::new_with_padding([stride; 2], [ph, pw], [1, 1], 1);
            let bias = Tensor::from_data(TensorData::new(bias, [cout]), &device);
            let want = to_channels_last(conv2d(input, filters, Some(bias), options).clamp(0.0, 6.0));
            assert_eq!(got.len(), want.len());
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "{h}×{w}, {cout} outputs: off by {err}");
        }
    }

    #[test]
    fn biases_residuals_and_the_pooled_head() {
        // Two images of three pixels of two channels.
        let mut y = vec![1.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0, 0.5, 1.0, 2.0, -3.0];
        let residual: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let bias = [0.5, -1.0];
        let pooled = relu6_mean(&y, 3, &bias);
        // Image 0, channel 0: relu6(1.5), relu6(3.5), relu6(5.5); channel 1: relu6(-3), relu6(3), relu6(5).
        assert_eq!(pooled, vec![(1.5 + 3.5 + 5.5) / 3.0, 8.0 / 3.0, (0.0 + 1.0 + 2.5) / 3.0, (6.0 + 0.0 + 0.0) / 3.0]);
        add_bias(&mut y, &bias, Some(&residual));
        // The product's blocks, each finished with its first row: a bias and a residual, as the projection does.
        let (pixels, k, n) = (3000, 7, 5);
        let x: Vec<f32> = (0..pixels * k).map(|i| (i as f32 * 0.13).sin()).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let res: Vec<f32> = (0..pixels * n).map(|i| i as f32 * 1e-3).collect();
        let b = [0.1, 0.2, 0.3, 0.4, 0.5];
        let mut out = vec![f32::NAN; pixels * n];
        crate::matmul::by_rows(&x, &w, (k, n), &mut out, |block, first| {
            add_bias(block, &b, Some(&res[first * n..][..block.len()]))
        });
        for (p, row) in out.chunks_exact(n).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let sum: f32 = (0..k).map(|t| x[p * k + t] * w[t * n + j]).sum();
                let want = sum + b[j] + res[p * n + j];
                assert!((v - want).abs() < 1e-4, "pixel {p}, channel {j}: {v} against {want}");
            }
        }
        assert_eq!(&y[..4], &[1.5, -2.0, 5.5, 6.0]);
        add_bias(&mut y, &bias, None);
        assert_eq!(&y[10..], &[13.0, 6.0]);
    }
}
