//! CLIP's vision tower for inference, on the flex CPU device: the residual stream kept as plain rows (`[images ×
//! tokens, width]`), the four large products per layer (queries, keys and values at once; the attention's output; the
//! MLP's two) through fd-clip's gemm wrapper a block of rows per task (the bias, QuickGELU or the residual applied to
//! each block while in cache, into buffers kept from batch to batch), and everything between them in fd-clip's own
//! passes: LayerNorm in one read and one write, the query, key and value biases added as the attention copies a head,
//! QuickGELU with a vectorised `exp`, and attention a head at a time in cache (scores, softmax and the weighted sum of
//! values, no transposed copies). burn's operations on tensors took 46% of the tower's time (`perf`: copies of reshaped
//! tensors, fresh pages, scalar `expf`; BENCHMARKS.md). [`crate::clip::VisionTransformer`] stays the loaded module,
//! name for name as transformers has it; the tests hold both to the same reference.
//!
//! The query's scale `1/√head_dim` is folded into the query weights and bias (exactly the reference's products when
//! the head width is a power of 4, as ViT-B/32's 64 is: a scale of 1/8). Rows and images run in parallel; each row's
//! and head's sums run in a fixed order, so the result does not depend on the thread count.

use burn::nn::LayerNorm;
use burn::prelude::*;
use rayon::prelude::*;

use crate::clip::{EncoderLayer, VisionTransformer};
use crate::scratch::{sized, with_kept};

/// CLIP's LayerNorm epsilon.
const EPS: f32 = 1e-5;

/// Rows per parallel task in the row-wise passes.
const ROWS: usize = 16;

/// A LayerNorm's scale and shift as plain values.
#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn new(norm: &LayerNorm) -> Norm {
        let values = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().expect("f32 LayerNorm parameters");
        let gamma = values(norm.gamma.val());
        let beta = norm.beta.as_ref().map_or_else(|| vec![0.0; gamma.len()], |b| values(b.val()));
        Norm { gamma, beta }
    }

    /// Each row of `x` (width `gamma.len()`) normalised into the same row of `out`.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let d = self.gamma.len();
        out.par_chunks_mut(d * ROWS).zip(x.par_chunks(d * ROWS)).for_each(|(out, x)| {
            pulp::Arch::new().dispatch(NormRows { x, out, gamma: &self.gamma, beta: &self.beta });
        });
    }
}

/// A linear layer: its weight `[in, out]` and its bias as plain values.
#[derive(Debug, Clone)]
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn new(weight: Tensor<2>, bias: Vec<f32>) -> Dense {
        Dense { weight: weight.into_data().try_into_vec::<f32>().expect("f32 weights"), bias }
    }

    /// `out = x · weight` (bias not added), a block of rows per task, each block then handed to `finish(block,
    /// first_row)` while in cache.
    fn product(&self, x: &[f32], out: &mut [f32], finish: impl Fn(&mut [f32], usize) + Sync) {
        let n = self.bias.len();
        crate::matmul::by_rows(x, &self.weight, (self.weight.len() / n.max(1), n), out, finish);
    }
}

/// A pass's buffers, reused layer after layer (each grows to the largest it holds).
#[derive(Default)]
struct Buffers {
    /// The residual stream's next value.
    next: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    hidden: Vec<f32>,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens = [&self.next, &self.normed, &self.qkv, &self.attended, &self.hidden].map(Vec::len);
        f.debug_struct("Buffers").field("lengths", &lens).finish()
    }
}

/// `out = y + bias + residual` row by row (`residual` the rows from `first` of the stream).
fn biased_sum(out: &mut [f32], bias: &[f32], residual: &[f32]) {
    let d = bias.len();
    for (o, r) in out.chunks_exact_mut(d).zip(residual.chunks_exact(d)) {
        for ((o, &r), &b) in o.iter_mut().zip(r).zip(bias) {
            *o += b + r;
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    norm1: Norm,
    /// Queries (scaled), keys and values at once: `[width, 3 × width]`.
    qkv: Dense,
    out: Dense,
    norm2: Norm,
    fc1: Dense,
    fc2: Dense,
}

impl Layer {
    fn new(layer: &EncoderLayer) -> Layer {
        let a = &layer.self_attn;
        let [width, _] = a.q_proj.weight.dims();
        let scale = (width as f64 / a.heads as f64).powf(-0.5);
        let bias = |l: &burn::nn::Linear| {
            let b = l.bias.as_ref().expect("CLIP's projections have biases").val();
            b.into_data().try_into_vec::<f32>().expect("f32 biases")
        };
        let dense = |l: &burn::nn::Linear| Dense::new(l.weight.val(), bias(l));
        let weight =
            Tensor::cat(vec![a.q_proj.weight.val().mul_scalar(scale), a.k_proj.weight.val(), a.v_proj.weight.val()], 1);
        let mut qkv_bias: Vec<f32> = bias(&a.q_proj).iter().map(|&b| (f64::from(b) * scale) as f32).collect();
        qkv_bias.extend(bias(&a.k_proj));
        qkv_bias.extend(bias(&a.v_proj));
        Layer {
            norm1: Norm::new(&layer.layer_norm1),
            qkv: Dense::new(weight, qkv_bias),
            out: dense(&a.out_proj),
            norm2: Norm::new(&layer.layer_norm2),
            fc1: dense(&layer.mlp.fc1),
            fc2: dense(&layer.mlp.fc2),
        }
    }

    /// One pre-LayerNorm encoder layer on the residual stream `x` (`images × tokens` rows), in place (through
    /// `buffers.next`, swapped in).
    fn forward(&self, x: &mut Vec<f32>, buffers: &mut Buffers, images: usize, heads: usize) {
        let d = self.norm1.gamma.len();
        let rows = x.len() / d;
        let Buffers { next, normed, qkv, attended, hidden } = buffers;
        let normed = sized(normed, rows * d);
        self.norm1.apply(x, normed);
        let qkv = sized(qkv, rows * 3 * d);
        self.qkv.product(normed, qkv, |_, _| {});
        let attended = sized(attended, rows * d);
        attention(qkv, &self.qkv.bias, images, heads, attended);
        // The attention's output plus its bias plus the stream, into the next stream.
        let (stream, bias) = (&x[..], &self.out.bias);
        self.out.product(attended, sized(next, rows * d), |block, first| {
            biased_sum(block, bias, &stream[first * d..first * d + block.len()]);
        });
        std::mem::swap(x, next);
        self.norm2.apply(x, normed);
        let hidden = sized(hidden, rows * self.fc1.bias.len());
        let fc1_bias = &self.fc1.bias;
        self.fc1.product(normed, hidden, |block, _| pulp::Arch::new().dispatch(QuickGelu { h: block, bias: fc1_bias }));
        let (stream, bias) = (&x[..], &self.fc2.bias);
        self.fc2.product(hidden, sized(next, rows * d), |block, first| {
            biased_sum(block, bias, &stream[first * d..first * d + block.len()]);
        });
        std::mem::swap(x, next);
    }
}

/// CLIP's vision tower and its projection, for inference.
#[derive(Debug)]
pub(crate) struct FusedVit {
    /// Kept from batch to batch (a call that finds them in use, from another thread, takes fresh ones).
    buffers: std::sync::Mutex<Buffers>,
    patch: burn::nn::conv::Conv2d,
    /// The patch embedding as one product, where the convolution is a plain patchify (see [`Patchify`]).
    patchify: Option<Patchify>,
    /// The class token plus the first position's embedding, then each patch position's: `[tokens, width]`.
    class: Vec<f32>,
    positions: Vec<f32>,
    pre: Norm,
    layers: Vec<Layer>,
    post: Norm,
    projection: Tensor<2>,
    heads: usize,
}

impl FusedVit {
    pub(crate) fn new(tower: &VisionTransformer, projection: &burn::nn::Linear) -> FusedVit {
        let values = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().expect("f32 embeddings");
        let positions = values(tower.embeddings.position_embedding.weight.val());
        let class: Vec<f32> = tower.embeddings.class_embedding.val().into_data().try_into_vec::<f32>().expect("f32");
        FusedVit {
            buffers: Default::default(),
            patch: tower.embeddings.patch_embedding.clone(),
            patchify: Patchify::new(&tower.embeddings.patch_embedding),
            class,
            positions,
            pre: Norm::new(&tower.pre_layrnorm),
            layers: tower.encoder.layers.iter().map(Layer::new).collect(),
            post: Norm::new(&tower.post_layernorm),
            projection: projection.weight.val(),
            heads: tower.encoder.layers.first().map_or(1, |l| l.self_attn.heads),
        }
    }

    /// Whether the patch embedding runs as one product ([`Patchify`]) rather than burn's convolution.
    pub(crate) fn patchifies(&self) -> bool {
        self.patchify.is_some()
    }

    /// Image embeddings `[batch, embed_dim]` from normalised pixels: [`crate::clip::Clip::image_embeds`] up to rounding.
    pub(crate) fn image_embeds(&self, pixels: Tensor<4>) -> Tensor<2> {
        let device = pixels.device();
        let (patches, [images, d, grid]) = match &self.patchify {
            Some(patchify) => patchify.apply(pixels),
            None => {
                // burn's convolution: `[images, d, gh, gw]`, to rows of `d` per patch.
                let patches = self.patch.forward(pixels);
                let [images, d, gh, gw] = patches.dims();
                let planes = patches.into_data().try_into_vec::<f32>().expect("f32 activations");
                let grid = gh * gw;
                let mut rows = vec![0f32; planes.len()];
                rows.par_chunks_mut(grid * d).zip(planes.par_chunks(d * grid)).for_each(|(rows, planes)| {
                    for (t, row) in rows.chunks_exact_mut(d).enumerate() {
                        for (c, v) in row.iter_mut().enumerate() {
                            *v = planes[c * grid + t];
                        }
                    }
                });
                (rows, [images, d, grid])
            }
        };
        let tokens = grid + 1;
        // The class token, then the patches, each plus its position's embedding.
        let mut stream = vec![0f32; images * tokens * d];
        stream.par_chunks_mut(tokens * d).zip(patches.par_chunks(d * grid)).for_each(|(x, p)| {
            for (t, row) in x.chunks_exact_mut(d).enumerate() {
                let position = &self.positions[t * d..(t + 1) * d];
                let token = if t == 0 { &self.class[..] } else { &p[(t - 1) * d..t * d] };
                for ((v, &token), &position) in row.iter_mut().zip(token).zip(position) {
                    *v = token + position;
                }
            }
        });
        let mut x = vec![0f32; stream.len()];
        self.pre.apply(&stream, &mut x);
        drop(stream);
        with_kept(&self.buffers, |buffers| {
            for layer in &self.layers {
                layer.forward(&mut x, buffers, images, self.heads);
            }
        });
        let pooled: Vec<f32> = x.chunks_exact(tokens * d).flat_map(|image| image[..d].iter().copied()).collect();
        let mut normed = vec![0f32; pooled.len()];
        self.post.apply(&pooled, &mut normed);
        let normed = Tensor::<2>::from_data(TensorData::new(normed, [images, d]), &device);
        normed.matmul(self.projection.clone())
    }
}

/// CLIP's patch embedding, a convolution whose stride is its kernel (no padding, bias, dilation or groups), as one
/// product: each patch's pixels gathered into a row `[channels · p · p]` (the weight's `(c, i, j)` order), times the
/// weight transposed, `[channels · p · p, width]`, a block of rows per task. burn's convolution took 5-10% of the
/// tower's time for the same sums.
#[derive(Debug, Clone)]
struct Patchify {
    /// The patch side `p`.
    size: usize,
    channels: usize,
    /// `[channels · p · p, width]`.
    weight: Vec<f32>,
    width: usize,
}

impl Patchify {
    fn new(conv: &burn::nn::conv::Conv2d) -> Option<Patchify> {
        let [width, channels, kh, kw] = conv.weight.dims();
        let plain = conv.stride == [kh, kw]
            && kh == kw
            && conv.bias.is_none()
            && conv.dilation == [1, 1]
            && conv.groups == 1
            && matches!(conv.padding, burn::nn::PaddingConfig2d::Valid);
        if !plain {
            return None;
        }
        let w = conv.weight.val().into_data().try_into_vec::<f32>().ok()?;
        let k = channels * kh * kw;
        let mut weight = vec![0f32; k * width];
        for (o, filter) in w.chunks_exact(k).enumerate() {
            for (r, &v) in filter.iter().enumerate() {
                weight[r * width + o] = v;
            }
        }
        Some(Patchify { size: kh, channels, weight, width })
    }

    /// The patches of `pixels` (`[images, channels, h, w]`) as rows of `width` values, patch-major within each image
    /// (row-major over the grid), and `[images, width, patches per image]`.
    fn apply(&self, pixels: Tensor<4>) -> (Vec<f32>, [usize; 3]) {
        let [images, channels, h, w] = pixels.dims();
        assert_eq!(channels, self.channels, "patch embedding: {channels} input channels, expected {}", self.channels);
        let p = self.size;
        let (gh, gw) = (h / p, w / p);
        let (grid, k) = (gh * gw, channels * p * p);
        let pixels = pixels.into_data().try_into_vec::<f32>().expect("f32 pixels");
        let mut cols = vec![0f32; images * grid * k];
        cols.par_chunks_mut(grid * k).zip(pixels.par_chunks(channels * h * w)).for_each(|(cols, image)| {
            for (t, row) in cols.chunks_exact_mut(k).enumerate() {
                let (py, px) = (t / gw, t % gw);
                for (ci, plane) in image.chunks_exact(h * w).enumerate() {
                    for i in 0..p {
                        let line = &plane[(py * p + i) * w + px * p..][..p];
                        row[(ci * p + i) * p..][..p].copy_from_slice(line);
                    }
                }
            }
        });
        let mut out = vec![0f32; images * grid * self.width];
        crate::matmul::by_rows(&cols, &self.weight, (k, self.width), &mut out, |_, _| {});
        (out, [images, self.width, grid])
    }
}

/// Self-attention over `qkv` (per row: scaled queries, keys, values, biases not yet added), writing each head's output into
/// its columns of `out` (`images × tokens` rows of `width`).
fn attention(qkv: &[f32], bias: &[f32], images: usize, heads: usize, out: &mut [f32]) {
    let d = bias.len() / 3;
    let tokens = out.len() / d / images.max(1);
    out.par_chunks_mut(tokens * d).zip(qkv.par_chunks(tokens * 3 * d)).for_each_init(
        || vec![0f32; 3 * tokens * (d / heads) + tokens],
        |scratch, (out, qkv)| pulp::Arch::new().dispatch(Heads { qkv, bias, heads, tokens, scratch, out }),
    );
}

/// `exp(x)` for every lane: `2^n e^r` with `n = round(x / ln 2)` and `r = x − n ln 2` (in two parts), `e^r` by Cephes'
/// polynomial (`expf`'s, within about 2 ulp); `x` is clamped to `[-87, 88]`, so the result is finite and normal.
#[inline(always)]
fn exp<S: pulp::Simd>(simd: S, x: S::f32s) -> S::f32s {
    let x = simd.min_f32s(simd.max_f32s(x, simd.splat_f32s(-87.0)), simd.splat_f32s(88.0));
    // Adding 1.5 × 2^23 rounds to an integer held in the low bits of the mantissa.
    let shifter = simd.splat_f32s(12_582_912.0);
    let t = simd.mul_add_f32s(x, simd.splat_f32s(std::f32::consts::LOG2_E), shifter);
    let n = simd.sub_f32s(t, shifter);
    let r = simd.mul_add_f32s(n, simd.splat_f32s(-0.693_359_4), x);
    let r = simd.mul_add_f32s(n, simd.splat_f32s(2.121_944_4e-4), r);
    let mut p = simd.splat_f32s(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = simd.mul_add_f32s(p, r, simd.splat_f32s(c));
    }
    let p = simd.mul_add_f32s(simd.mul_f32s(p, r), r, simd.add_f32s(r, simd.splat_f32s(1.0)));
    // 2^n: n + 127 in the exponent field (the shifter's own bits fall off the top).
    let bits = simd.add_u32s(simd.transmute_u32s_f32s(t), simd.splat_u32s(127));
    let scale = simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(bits, simd.splat_u32s(23)));
    simd.mul_f32s(p, scale)
}

/// Rows of LayerNorm: mean, then variance about it, then `(x − mean) / √(var + ε) · γ + β`.
struct NormRows<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
}

impl pulp::WithSimd for NormRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let d = self.gamma.len();
        let (gamma, gamma_tail) = S::as_simd_f32s(self.gamma);
        let (beta, beta_tail) = S::as_simd_f32s(self.beta);
        for (x, out) in self.x.chunks_exact(d).zip(self.out.chunks_exact_mut(d)) {
            let (head, tail) = S::as_simd_f32s(x);
            let sum = head.iter().fold(simd.splat_f32s(0.0), |a, &v| simd.add_f32s(a, v));
            let mean = (simd.reduce_sum_f32s(sum) + tail.iter().sum::<f32>()) / d as f32;
            let m = simd.splat_f32s(mean);
            let squares = head.iter().fold(simd.splat_f32s(0.0), |a, &v| {
                let c = simd.sub_f32s(v, m);
                simd.mul_add_f32s(c, c, a)
            });
            let var =
                (simd.reduce_sum_f32s(squares) + tail.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()) / d as f32;
            let rstd = 1.0 / (var + EPS).sqrt();
            let r = simd.splat_f32s(rstd);
            let (out_head, out_tail) = S::as_mut_simd_f32s(out);
            for (((o, &v), &g), &b) in out_head.iter_mut().zip(head).zip(gamma).zip(beta) {
                *o = simd.mul_add_f32s(simd.mul_f32s(simd.sub_f32s(v, m), r), g, b);
            }
            for (((o, &v), &g), &b) in out_tail.iter_mut().zip(tail).zip(gamma_tail).zip(beta_tail) {
                *o = (v - mean) * rstd * g + b;
            }
        }
    }
}

/// QuickGELU with the bias, over whole rows.
struct QuickGelu<'a> {
    h: &'a mut [f32],
    bias: &'a [f32],
}

impl pulp::WithSimd for QuickGelu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (one, k) = (simd.splat_f32s(1.0), simd.splat_f32s(-1.702));
        let d = self.bias.len();
        let (bias, bias_tail) = S::as_simd_f32s(self.bias);
        for row in self.h.chunks_exact_mut(d) {
            let (head, tail) = S::as_mut_simd_f32s(row);
            for (h, &b) in head.iter_mut().zip(bias) {
                let v = simd.add_f32s(*h, b);
                *h = simd.div_f32s(v, simd.add_f32s(one, exp(simd, simd.mul_f32s(k, v))));
            }
            for (h, &b) in tail.iter_mut().zip(bias_tail) {
                let v = *h + b;
                *h = v / (1.0 + (-1.702 * v).exp());
            }
        }
    }
}

/// One image's attention, head by head: the head's queries, keys and values copied out with their biases, then per query
/// the scores against every key, their softmax and the weighted sum of the values.
struct Heads<'a> {
    qkv: &'a [f32],
    bias: &'a [f32],
    heads: usize,
    tokens: usize,
    scratch: &'a mut [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Heads<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (n, d) = (self.tokens, self.bias.len() / 3);
        let hd = d / self.heads;
        let (q, rest) = self.scratch.split_at_mut(n * hd);
        let (k, rest) = rest.split_at_mut(n * hd);
        let (v, scores) = rest.split_at_mut(n * hd);
        for head in 0..self.heads {
            for (which, dst) in [&mut *q, &mut *k, &mut *v].into_iter().enumerate() {
                let at = which * d + head * hd;
                let bias = &self.bias[at..at + hd];
                for (t, row) in dst.chunks_exact_mut(hd).enumerate() {
                    let src = &self.qkv[t * 3 * d + at..t * 3 * d + at + hd];
                    row.iter_mut().zip(src).zip(bias).for_each(|((o, s), b)| *o = s + b);
                }
            }
            for (i, query) in q.chunks_exact(hd).enumerate() {
                for (s, key) in scores.iter_mut().zip(k.chunks_exact(hd)) {
                    *s = dot(simd, query, key);
                }
                softmax(simd, scores);
                let o = &mut self.out[i * d + head * hd..i * d + (head + 1) * hd];
                o.fill(0.0);
                for (&p, value) in scores.iter().zip(v.chunks_exact(hd)) {
                    axpy(simd, p, value, o);
                }
            }
        }
    }
}

#[inline(always)]
fn dot<S: pulp::Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let ((ah, at), (bh, bt)) = (S::as_simd_f32s(a), S::as_simd_f32s(b));
    let sum = ah.iter().zip(bh).fold(simd.splat_f32s(0.0), |acc, (&x, &y)| simd.mul_add_f32s(x, y, acc));
    simd.reduce_sum_f32s(sum) + at.iter().zip(bt).map(|(x, y)| x * y).sum::<f32>()
}

/// `y += a x`.
#[inline(always)]
fn axpy<S: pulp::Simd>(simd: S, a: f32, x: &[f32], y: &mut [f32]) {
    let ((xh, xt), (yh, yt)) = (S::as_simd_f32s(x), S::as_mut_simd_f32s(y));
    let s = simd.splat_f32s(a);
    yh.iter_mut().zip(xh).for_each(|(y, &x)| *y = simd.mul_add_f32s(s, x, *y));
    yt.iter_mut().zip(xt).for_each(|(y, x)| *y += a * x);
}

/// The softmax of `s` in place, every element through the vectorised [`exp`] (the tail by a partial vector).
#[inline(always)]
fn softmax<S: pulp::Simd>(simd: S, s: &mut [f32]) {
    let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let m = simd.splat_f32s(max);
    let mut sum = 0f32;
    for chunk in s.chunks_mut(S::F32_LANES) {
        let e = exp(simd, simd.sub_f32s(simd.partial_load_f32s(chunk), m));
        simd.partial_store_f32s(chunk, e);
        sum += chunk.iter().sum::<f32>();
    }
    let inv = 1.0 / sum;
    s.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patch embedding as one product equals burn's convolution, patch for patch (a grid that leaves a margin, as
    /// a stride does), and any other convolution keeps burn's.
    #[test]
    fn patchify_is_the_strided_convolution() {
        use burn::nn::PaddingConfig2d;
        use burn::nn::conv::Conv2dConfig;
        let device = Device::flex();
        device.seed(3);
        let conv = Conv2dConfig::new([2, 5], [4, 4]).with_stride([4, 4]).with_bias(false).init(&device);
        let x = Tensor::<4>::random([3, 2, 13, 10], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let want: Vec<f32> = conv.forward(x.clone()).into_data().try_to_vec().unwrap(); // [3, 5, 3, 2]
        let (got, shape) = Patchify::new(&conv).expect("a plain patchify").apply(x);
        assert_eq!(shape, [3, 5, 6]);
        for (b, c, t) in (0..3).flat_map(|b| (0..5).flat_map(move |c| (0..6).map(move |t| (b, c, t)))) {
            let (g, w) = (got[(b * 6 + t) * 5 + c], want[(b * 5 + c) * 6 + t]);
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "image {b}, channel {c}, patch {t}: {g} vs {w}");
        }
        let padded = Conv2dConfig::new([2, 5], [4, 4])
            .with_stride([4, 4])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(&device);
        let overlapping = Conv2dConfig::new([2, 5], [4, 4]).with_stride([2, 2]).with_bias(false).init(&device);
        let biased = Conv2dConfig::new([2, 5], [4, 4]).with_stride([4, 4]).init(&device);
        assert!([padded, overlapping, biased].iter().all(|c| Patchify::new(c).is_none()));
    }

    /// The vectorised `exp` against std's over the range the tower uses, relative error within 4 ulp.
    #[test]
    fn vectorised_exp_matches_std() {
        struct Exp<'a>(&'a mut [f32]);
        impl pulp::WithSimd for Exp<'_> {
            type Output = ();
            fn with_simd<S: pulp::Simd>(self, simd: S) {
                for chunk in self.0.chunks_mut(S::F32_LANES) {
                    let e = exp(simd, simd.partial_load_f32s(chunk));
                    simd.partial_store_f32s(chunk, e);
                }
            }
        }
        let inputs: Vec<f32> = (0..20_001).map(|i| -86.0 + 174.0 * i as f32 / 20_000.0).collect();
        let mut got = inputs.clone();
        pulp::Arch::new().dispatch(Exp(&mut got));
        for (&x, &e) in inputs.iter().zip(&got) {
            let want = f64::from(x).exp();
            let err = ((f64::from(e) - want) / want).abs();
            assert!(err < 4.0 * f64::from(f32::EPSILON), "exp({x}) = {e}, want {want} (relative error {err:e})");
        }
    }
}
