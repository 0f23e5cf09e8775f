//! A 2-D convolution and its two gradients on plain NCHW `f32` slices: im2col into a buffer each thread keeps from
//! call to call ([`Kept`]), one single-threaded `gemm` per task, tasks spread over rayon's pool.
//!
//! - forward: `y [c_out, n] = w [c_out, k] · cols [k, n]` with the channel-major [`im2col`], each task's output passed
//!   through an optional [`Epilogue`] (BatchNorm, skip, ReLU) while it is still in cache;
//! - input gradient: `dcols [k, n] = wᵀ · dy [c_out, n]`, then [`col2im`] adds it back onto the pixels;
//! - weight gradient: `dw [c_out, k] += dy [c_out, n] · cols_t [n, k]` with the pixel-major [`im2col_t`].
//!
//! A task covers enough images that its matrix has at least [`MIN_COLUMNS`] columns, so the late, small feature maps
//! still give `gemm` wide products. The weight gradient sums per-group partials in a fixed order over a fixed number
//! of groups, so results do not depend on the thread count or on scheduling.

use rayon::iter::Either;
use rayon::prelude::*;

use super::matmul::{Mat, matmul};

/// The fewest output columns (images × output pixels) one task multiplies at once.
pub(crate) const MIN_COLUMNS: usize = 256;
/// The weight gradient is summed over this many groups of tasks, whatever the thread count.
const GROUPS: usize = 8;

/// The shapes of one convolution: input `[batch, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`, symmetric zero
/// padding, no dilation, one group, no bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
}

impl Geometry {
    /// The output height and width; `None` when the kernel does not fit the padded input or a size is zero.
    pub(crate) fn out_hw(&self) -> Option<[usize; 2]> {
        let side = |n: usize, k: usize, s: usize, p: usize| {
            (n + 2 * p >= k && s > 0 && k > 0).then(|| (n + 2 * p - k) / s + 1)
        };
        Some([side(self.h, self.kh, self.stride[0], self.pad[0])?, side(self.w, self.kw, self.stride[1], self.pad[1])?])
    }

    fn ho(&self) -> usize {
        self.out_hw().expect("checked when the geometry was built")[0]
    }

    fn wo(&self) -> usize {
        self.out_hw().expect("checked when the geometry was built")[1]
    }

    fn hw_out(&self) -> usize {
        self.ho() * self.wo()
    }

    /// Rows of the im2col matrix: `c_in · kh · kw`.
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn in_image(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_image(&self) -> usize {
        self.c_out * self.hw_out()
    }

    /// Images per task.
    fn images_per_task(&self) -> usize {
        MIN_COLUMNS.div_ceil(self.hw_out().max(1)).clamp(1, self.batch.max(1))
    }

    /// Input elements.
    pub(crate) fn x_len(&self) -> usize {
        self.batch * self.in_image()
    }

    /// Weight elements.
    pub(crate) fn w_len(&self) -> usize {
        self.c_out * self.k()
    }

    /// Output elements.
    pub(crate) fn y_len(&self) -> usize {
        self.batch * self.out_image()
    }
}

/// The range of output positions `o` whose input position `o · stride + offset - pad` lies in `0..n`.
fn valid(out: usize, n: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
    let (stride, shift) = (stride as isize, offset as isize - pad as isize);
    // o · stride + shift >= 0  and  o · stride + shift <= n - 1
    let lo = if shift >= 0 { 0 } else { (-shift + stride - 1) / stride };
    let hi = if n as isize - 1 - shift < 0 { 0 } else { (n as isize - 1 - shift) / stride + 1 };
    let (lo, hi) = (lo.clamp(0, out as isize) as usize, hi.clamp(0, out as isize) as usize);
    (lo, hi.max(lo))
}

/// One kernel tap `(ci, i, j)`: its row of the channel-major im2col matrix, and the output rows `ys` and columns `xs`
/// whose input pixel lies inside the image (the rest read padding).
struct Tap {
    row: usize,
    ci: usize,
    i: usize,
    j: usize,
    ys: std::ops::Range<usize>,
    xs: std::ops::Range<usize>,
}

fn taps(g: &Geometry) -> impl Iterator<Item = Tap> + '_ {
    let (ho, wo) = (g.ho(), g.wo());
    (0..g.c_in).flat_map(move |ci| {
        (0..g.kh).flat_map(move |i| {
            let (y_lo, y_hi) = valid(ho, g.h, g.stride[0], i, g.pad[0]);
            (0..g.kw).map(move |j| {
                let (x_lo, x_hi) = valid(wo, g.w, g.stride[1], j, g.pad[1]);
                Tap { row: (ci * g.kh + i) * g.kw + j, ci, i, j, ys: y_lo..y_hi, xs: x_lo..x_hi }
            })
        })
    })
}

/// Writes the im2col matrix of `images` consecutive images of `x` into `cols`: `[k, images · hw_out]`, row
/// `(ci · kh + i) · kw + j`, column `image · hw_out + oy · wo + ox`.
fn im2col(g: &Geometry, x: &[f32], images: usize, cols: &mut [f32]) {
    let (wo, hw) = (g.wo(), g.hw_out());
    let n = images * hw;
    let [sh, sw] = g.stride;
    let same_size = g.stride == [1, 1] && wo == g.w;
    for t in taps(g) {
        let row = &mut cols[t.row * n..][..n];
        for image in 0..images {
            let plane = &x[(image * g.c_in + t.ci) * g.h * g.w..][..g.h * g.w];
            let out = &mut row[image * hw..][..hw];
            out[..t.ys.start * wo].fill(0.0);
            out[t.ys.end * wo..].fill(0.0);
            if same_size {
                shifted_rows(g, &t, plane, out);
                continue;
            }
            for oy in t.ys.clone() {
                let dst = &mut out[oy * wo..][..wo];
                dst[..t.xs.start].fill(0.0);
                dst[t.xs.end..].fill(0.0);
                if t.xs.is_empty() {
                    continue;
                }
                let line = &plane[(oy * sh + t.i - g.pad[0]) * g.w..][..g.w];
                let src = &line[t.xs.start * sw + t.j - g.pad[1]..];
                if sw == 1 {
                    dst[t.xs.clone()].copy_from_slice(&src[..t.xs.len()]);
                } else {
                    for (d, s) in dst[t.xs.clone()].iter_mut().zip(src.iter().step_by(sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

/// [`im2col`]'s rows `t.ys` of tap `t` for a stride-1 convolution whose output is as wide as its input: output pixel
/// `p = oy · w + ox` reads input pixel `p + (i - pad) · w + (j - pad)`, so the rows are one shifted copy of the plane,
/// and then the columns whose input lies past the left or right edge (which the copy took from the neighbouring row)
/// are set to zero: the same values as row by row, in one copy instead of a copy and two fills per row.
fn shifted_rows(g: &Geometry, t: &Tap, plane: &[f32], out: &mut [f32]) {
    let w = g.w;
    let shift = (t.i as isize - g.pad[0] as isize) * w as isize + (t.j as isize - g.pad[1] as isize);
    let (start, end) = (t.ys.start * w, t.ys.end * w);
    // Output pixels whose shifted index lies inside the plane; the few outside are border columns, zeroed below.
    let lo = start.max((-shift).max(0) as usize).min(end);
    let hi = end.min((plane.len() as isize - shift).max(0) as usize).max(lo);
    if lo < hi {
        out[lo..hi].copy_from_slice(&plane[(lo as isize + shift) as usize..(hi as isize + shift) as usize]);
    }
    for oy in t.ys.clone() {
        let line = &mut out[oy * w..][..w];
        line[..t.xs.start.min(w)].fill(0.0);
        line[t.xs.end.max(t.xs.start)..].fill(0.0);
    }
}

/// The adjoint of [`im2col`]: adds each entry of `cols` back onto the input pixel it was read from, in `dx`
/// (`images` consecutive images, which the caller zeroes).
fn col2im(g: &Geometry, cols: &[f32], images: usize, dx: &mut [f32]) {
    let (wo, hw) = (g.wo(), g.hw_out());
    let n = images * hw;
    let [sh, sw] = g.stride;
    for t in taps(g).filter(|t| !t.xs.is_empty()) {
        let row = &cols[t.row * n..][..n];
        for image in 0..images {
            let plane = &mut dx[(image * g.c_in + t.ci) * g.h * g.w..][..g.h * g.w];
            let col = &row[image * hw..][..hw];
            for oy in t.ys.clone() {
                let line = &mut plane[(oy * sh + t.i - g.pad[0]) * g.w..][..g.w];
                let dst = &mut line[t.xs.start * sw + t.j - g.pad[1]..];
                let src = &col[oy * wo + t.xs.start..oy * wo + t.xs.end];
                if sw == 1 {
                    for (d, s) in dst[..src.len()].iter_mut().zip(src) {
                        *d += *s;
                    }
                } else {
                    for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                        *d += *s;
                    }
                }
            }
        }
    }
}

/// The im2col matrix in pixel-major order, for the weight gradient: `cols_t` is `[images · hw_out, kh · kw · c_in]`,
/// row `image · hw_out + oy · wo + ox`, column `(i · kw + j) · c_in + ci`. `x_t` is scratch for the images in
/// `[h, w, c_in]` order, so that each kernel tap copies `c_in` contiguous values.
///
/// gemm multiplies `dy [c_out, n] · cols_t [n, k]` at full speed, where the transposed view of [`im2col`]'s matrix
/// (both operands contiguous along `n`) ran ten times slower for the early layers' small outputs (16 × 144 × 1024).
fn im2col_t(g: &Geometry, x: &[f32], images: usize, x_t: &mut [f32], cols_t: &mut [f32]) {
    let (ho, wo, k) = (g.ho(), g.wo(), g.k());
    let (hw_in, c) = (g.h * g.w, g.c_in);
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    for image in 0..images {
        let src = &x[image * g.in_image()..][..g.in_image()];
        let dst = &mut x_t[image * g.in_image()..][..g.in_image()];
        for ci in 0..c {
            for (q, v) in src[ci * hw_in..][..hw_in].iter().enumerate() {
                dst[q * c + ci] = *v;
            }
        }
    }
    let taps = g.kw * c;
    for image in 0..images {
        let xt = &x_t[image * g.in_image()..][..g.in_image()];
        for oy in 0..ho {
            for ox in 0..wo {
                let row = &mut cols_t[((image * ho + oy) * wo + ox) * k..][..k];
                let x0 = (ox * sw) as isize - pw as isize;
                let whole_row = x0 >= 0 && x0 as usize + g.kw <= g.w;
                for i in 0..g.kh {
                    let out = &mut row[i * taps..][..taps];
                    let iy = (oy * sh + i) as isize - ph as isize;
                    if iy < 0 || iy as usize >= g.h {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &xt[iy as usize * g.w * c..][..g.w * c];
                    if whole_row {
                        out.copy_from_slice(&line[x0 as usize * c..][..taps]);
                        continue;
                    }
                    for j in 0..g.kw {
                        let ix = x0 + j as isize;
                        let tap = &mut out[j * c..][..c];
                        if ix < 0 || ix as usize >= g.w {
                            tap.fill(0.0);
                        } else {
                            tap.copy_from_slice(&line[ix as usize * c..][..c]);
                        }
                    }
                }
            }
        }
    }
}

/// What [`forward`] does to each output value as it is written, while the task's output is still in cache: BatchNorm's
/// inference affine map `y · scale[c] + shift[c]`, then the skip connection's value added, then the ReLU.
pub(crate) struct Epilogue<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    /// `[batch, c_out, ho, wo]`, like the output.
    pub skip: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Writes the plane `dst` from the convolution's values `src`: channel `c` of image `image`.
    fn write(&self, g: &Geometry, image: usize, c: usize, src: &[f32], dst: &mut [f32]) {
        let (s, t, relu) = (self.scale[c], self.shift[c], self.relu);
        let pairs = dst.iter_mut().zip(src);
        match self.skip {
            Some(skip) => {
                let at = (image * g.c_out + c) * g.hw_out();
                for ((o, v), r) in pairs.zip(&skip[at..at + src.len()]) {
                    let v = *v * s + t + r;
                    *o = if relu { v.max(0.0) } else { v };
                }
            }
            None => {
                for (o, v) in pairs {
                    let v = *v * s + t;
                    *o = if relu { v.max(0.0) } else { v };
                }
            }
        }
    }

    /// Applies the map in place to whole output images, the first of them image `first`.
    fn apply(&self, g: &Geometry, first: usize, y: &mut [f32]) {
        let hw = g.hw_out();
        for (i, image) in y.chunks_exact_mut(g.out_image()).enumerate() {
            for (c, plane) in image.chunks_exact_mut(hw).enumerate() {
                let (s, t, relu) = (self.scale[c], self.shift[c], self.relu);
                match self.skip {
                    Some(skip) => {
                        let at = ((first + i) * g.c_out + c) * hw;
                        for (o, r) in plane.iter_mut().zip(&skip[at..at + hw]) {
                            let v = *o * s + t + r;
                            *o = if relu { v.max(0.0) } else { v };
                        }
                    }
                    None => {
                        for o in plane.iter_mut() {
                            let v = *o * s + t;
                            *o = if relu { v.max(0.0) } else { v };
                        }
                    }
                }
            }
        }
    }
}

/// The convolution of `x` (`[batch, c_in, h, w]`) with `w` (`[c_out, c_in, kh, kw]`): `[batch, c_out, ho, wo]`, each
/// value passed through `epilogue` when there is one.
pub(crate) fn forward(g: &Geometry, x: &[f32], w: &[f32], epilogue: Option<&Epilogue<'_>>) -> Vec<f32> {
    assert_eq!((x.len(), w.len()), (g.x_len(), g.w_len()), "conv forward: slice lengths do not match the geometry");
    if let Some(e) = epilogue {
        assert!(e.scale.len() == g.c_out && e.shift.len() == g.c_out, "conv forward: one scale and shift per channel");
        assert!(e.skip.is_none_or(|s| s.len() == g.y_len()), "conv forward: the skip has the output's shape");
    }
    if g.y_len() == 0 {
        return Vec::new();
    }
    let (k, hw, per) = (g.k(), g.hw_out(), g.images_per_task());
    let mut y = vec![0f32; g.y_len()];
    let weight = Mat::row_major(g.c_out, k);
    y.par_chunks_mut(per * g.out_image()).enumerate().for_each(|(task, y)| {
        with_kept(|kept| {
            let (cols, product) = (sized(&mut kept.0, k * per * hw), sized(&mut kept.1, g.c_out * per * hw));
            let images = y.len() / g.out_image();
            let n = images * hw;
            im2col(g, &x[task * per * g.in_image()..][..images * g.in_image()], images, cols);
            if images == 1 {
                matmul(y, false, w, weight, cols, Mat::row_major(k, n));
                if let Some(e) = epilogue {
                    e.apply(g, task * per, y);
                }
                return;
            }
            matmul(product, false, w, weight, cols, Mat::row_major(k, n));
            // [c_out, images · hw] back to [images, c_out, hw]
            for image in 0..images {
                for co in 0..g.c_out {
                    let (src, dst) =
                        (&product[co * n + image * hw..][..hw], &mut y[(image * g.c_out + co) * hw..][..hw]);
                    match epilogue {
                        Some(e) => e.write(g, task * per + image, co, src, dst),
                        None => dst.copy_from_slice(src),
                    }
                }
            }
        })
    });
    y
}

/// Scratch space of one group of tasks in the backward pass: this thread's kept buffers, and the group's weight
/// gradient (zeroed: it accumulates).
struct Scratch<'k> {
    x_t: &'k mut [f32],
    cols_t: &'k mut [f32],
    dcols: &'k mut [f32],
    dy: &'k mut [f32],
    dw: Vec<f32>,
}

/// Four buffers each rayon thread keeps from call to call, for the im2col matrices and the products: fresh ones cost
/// their pages' zeroing (or a memset) on every call. Every kernel writes each value it reads, so what a buffer held
/// before never shows.
#[derive(Default)]
struct Kept(Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

thread_local! {
    static KEPT: std::cell::RefCell<Kept> = std::cell::RefCell::new(Kept::default());
}

/// `f` on this thread's kept buffers, or on fresh ones when they are already in use on this thread.
fn with_kept<R>(f: impl FnOnce(&mut Kept) -> R) -> R {
    KEPT.with(|kept| match kept.try_borrow_mut() {
        Ok(mut kept) => f(&mut kept),
        Err(_) => f(&mut Kept::default()),
    })
}

/// `v`'s first `len` values, grown (with zeros) to hold them.
fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// The gradients of the convolution with respect to `x` and `w` (each only when asked for), given the gradient `dy`
/// of its output.
pub(crate) fn backward(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(
        (x.len(), w.len(), dy.len()),
        (g.x_len(), g.w_len(), g.y_len()),
        "conv backward: slice lengths do not match the geometry"
    );
    let (k, hw, per) = (g.k(), g.hw_out(), g.images_per_task());
    let tasks = g.batch.div_ceil(per);
    let tasks_per_group = tasks.div_ceil(GROUPS).max(1);
    let groups = tasks.div_ceil(tasks_per_group);
    let images_per_group = tasks_per_group * per;
    let mut dx = if want_dx { vec![0f32; g.x_len()] } else { Vec::new() };
    if (!want_dx && !want_dw) || g.batch == 0 {
        return (want_dx.then_some(dx), want_dw.then(|| vec![0f32; g.w_len()]));
    }
    let weight = Mat::row_major(g.c_out, k);

    let group_backward = |group: usize, mut dx: Option<&mut [f32]>, kept: &mut Kept| -> Vec<f32> {
        let Kept(x_t, cols_t, dcols, dy_kept) = kept;
        let mut s = Scratch {
            x_t: sized(x_t, if want_dw { per * g.in_image() } else { 0 }),
            cols_t: sized(cols_t, if want_dw { k * per * hw } else { 0 }),
            dcols: sized(dcols, if want_dx { k * per * hw } else { 0 }),
            dy: sized(dy_kept, if per > 1 { g.c_out * per * hw } else { 0 }),
            dw: vec![0f32; if want_dw { g.w_len() } else { 0 }],
        };
        let first_image = group * images_per_group;
        let last_image = (first_image + images_per_group).min(g.batch);
        for start in (first_image..last_image).step_by(per) {
            let images = per.min(last_image - start);
            let n = images * hw;
            let dy_task = &dy[start * g.out_image()..][..images * g.out_image()];
            // dy as [c_out, images · hw]
            let dyc: &[f32] = if images == 1 {
                dy_task
            } else {
                for image in 0..images {
                    for co in 0..g.c_out {
                        s.dy[co * n + image * hw..][..hw]
                            .copy_from_slice(&dy_task[(image * g.c_out + co) * hw..][..hw]);
                    }
                }
                &s.dy[..g.c_out * n]
            };
            let dy_mat = Mat::row_major(g.c_out, n);
            if want_dw {
                im2col_t(g, &x[start * g.in_image()..][..images * g.in_image()], images, s.x_t, s.cols_t);
                // dw [c_out, (i, j, ci)] += dy [c_out, n] · cols_t [n, k]
                matmul(&mut s.dw, true, dyc, dy_mat, s.cols_t, Mat::row_major(n, k));
            }
            if let Some(dx) = dx.as_deref_mut() {
                // dcols [k, n] = wᵀ [k, c_out] · dy [c_out, n]
                matmul(s.dcols, false, w, weight.t(), dyc, dy_mat);
                let offset = (start - first_image) * g.in_image();
                col2im(g, &s.dcols[..k * n], images, &mut dx[offset..][..images * g.in_image()]);
            }
        }
        s.dw
    };
    let work = |group: usize, dx: Option<&mut [f32]>| -> Vec<f32> { with_kept(|kept| group_backward(group, dx, kept)) };

    let chunks = if want_dx {
        Either::Left(dx.par_chunks_mut(images_per_group * g.in_image()).enumerate().map(|(i, c)| (i, Some(c))))
    } else {
        Either::Right((0..groups).into_par_iter().map(|i| (i, None)))
    };
    let partials: Vec<Vec<f32>> = chunks.map(|(group, dx)| work(group, dx)).collect();
    let dw = want_dw.then(|| {
        let mut partials = partials.into_iter();
        let mut dw = partials.next().expect("at least one group");
        for p in partials {
            for (a, b) in dw.iter_mut().zip(&p) {
                *a += *b;
            }
        }
        // [c_out, (i, j, ci)] to the weight's [c_out, ci, i, j]
        let mut out = vec![0f32; g.w_len()];
        for co in 0..g.c_out {
            for ci in 0..g.c_in {
                for t in 0..g.kh * g.kw {
                    out[(co * g.c_in + ci) * g.kh * g.kw + t] = dw[(co * g.kh * g.kw + t) * g.c_in + ci];
                }
            }
        }
        out
    });
    (want_dx.then_some(dx), dw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook convolution, for checking.
    fn naive(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let [ho, wo] = g.out_hw().unwrap();
        let mut y = vec![0f32; g.y_len()];
        for b in 0..g.batch {
            for co in 0..g.c_out {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = 0f32;
                        for ci in 0..g.c_in {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy = (oy * g.stride[0] + i) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + j) as isize - g.pad[1] as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                        acc += x[((b * g.c_in + ci) * g.h + iy as usize) * g.w + ix as usize]
                                            * w[((co * g.c_in + ci) * g.kh + i) * g.kw + j];
                                    }
                                }
                            }
                        }
                        y[((b * g.c_out + co) * ho + oy) * wo + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + 1.0) * seed).sin()).collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    fn geometries() -> Vec<Geometry> {
        let g = |batch, c_in, h, w, c_out, k, s, p| Geometry {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh: k,
            kw: k,
            stride: [s, s],
            pad: [p, p],
        };
        vec![
            g(3, 2, 5, 5, 4, 3, 1, 1),
            g(5, 3, 7, 6, 2, 3, 2, 1),
            g(2, 4, 6, 6, 3, 1, 2, 0),
            g(40, 2, 4, 4, 3, 3, 1, 1),  // several images per task, a short last task
            g(3, 2, 16, 16, 3, 3, 1, 1), // one image per task, three tasks
            Geometry { kh: 5, pad: [1, 1], ..g(2, 2, 7, 6, 3, 3, 1, 1) }, // as wide as the input, not as tall
            g(2, 3, 6, 5, 2, 5, 1, 2),   // a 5 × 5 kernel: two border columns each side
            g(1, 1, 3, 3, 1, 3, 1, 0),
            g(2, 2, 1, 1, 3, 3, 1, 1), // a 1×1 image: the border taps read only padding
            Geometry { kh: 3, kw: 1, stride: [1, 2], pad: [1, 0], ..g(2, 2, 5, 7, 3, 3, 1, 1) },
        ]
    }

    /// The im2col matrix, both ways it is built (row by row, and one shifted copy for stride-1 convolutions as wide as
    /// their input), is exactly the definition's.
    #[test]
    fn im2col_is_the_definition() {
        for g in geometries() {
            let (ho, wo) = (g.ho(), g.wo());
            let x = values(g.x_len(), 0.7);
            let images = g.batch;
            let n = images * ho * wo;
            let mut want = vec![0f32; g.k() * n];
            for (ci, i, j) in (0..g.c_in).flat_map(|c| (0..g.kh).flat_map(move |i| (0..g.kw).map(move |j| (c, i, j)))) {
                for (b, oy, ox) in (0..images).flat_map(|b| (0..ho).flat_map(move |y| (0..wo).map(move |x| (b, y, x))))
                {
                    let iy = (oy * g.stride[0] + i) as isize - g.pad[0] as isize;
                    let ix = (ox * g.stride[1] + j) as isize - g.pad[1] as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                        let row = (ci * g.kh + i) * g.kw + j;
                        want[row * n + (b * ho + oy) * wo + ox] =
                            x[((b * g.c_in + ci) * g.h + iy as usize) * g.w + ix as usize];
                    }
                }
            }
            let mut cols = vec![f32::NAN; g.k() * n];
            im2col(&g, &x, images, &mut cols);
            assert!(cols.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?}");
        }
    }

    #[test]
    fn forward_matches_the_textbook_convolution() {
        for g in geometries() {
            let (x, w) = (values(g.x_len(), 0.7), values(g.w_len(), 1.3));
            close(&forward(&g, &x, &w, None), &naive(&g, &x, &w), 1e-5);
            // With the epilogue: the affine map per channel, the skip, the ReLU, against the same on the textbook output.
            let (scale, shift) = (values(g.c_out, 0.43), values(g.c_out, 0.61));
            let skip = values(g.y_len(), 0.17);
            for (skip, relu) in [(None, false), (Some(&skip[..]), true), (Some(&skip[..]), false), (None, true)] {
                let e = Epilogue { scale: &scale, shift: &shift, skip, relu };
                let want: Vec<f32> = naive(&g, &x, &w)
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let c = i / g.hw_out() % g.c_out;
                        let v = v * scale[c] + shift[c] + skip.map_or(0.0, |s| s[i]);
                        if relu { v.max(0.0) } else { v }
                    })
                    .collect();
                close(&forward(&g, &x, &w, Some(&e)), &want, 1e-5);
            }
        }
    }

    /// The gradients are the adjoints of the forward map: <dy, conv(x, w)> is linear in x and in w, so its
    /// derivative in x is dx and in w is dw; checked against the textbook convolution of basis directions.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_map() {
        for g in geometries() {
            let (x, w, dy) = (values(g.x_len(), 0.7), values(g.w_len(), 1.3), values(g.y_len(), 0.29));
            let (dx, dw) = backward(&g, &x, &w, &dy, true, true);
            let (dx, dw) = (dx.unwrap(), dw.unwrap());
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum::<f64>();
            let mut want_dx = vec![0f32; g.x_len()];
            for (i, v) in want_dx.iter_mut().enumerate() {
                let mut e = vec![0f32; g.x_len()];
                e[i] = 1.0;
                *v = dot(&dy, &naive(&g, &e, &w)) as f32;
            }
            let mut want_dw = vec![0f32; g.w_len()];
            for (i, v) in want_dw.iter_mut().enumerate() {
                let mut e = vec![0f32; g.w_len()];
                e[i] = 1.0;
                *v = dot(&dy, &naive(&g, &x, &e)) as f32;
            }
            close(&dx, &want_dx, 1e-4);
            close(&dw, &want_dw, 1e-4);
            let (only_dx, none) = backward(&g, &x, &w, &dy, true, false);
            assert_eq!((only_dx.as_deref(), none), (Some(&dx[..]), None));
            let (none, only_dw) = backward(&g, &x, &w, &dy, false, true);
            assert_eq!((none, only_dw.as_deref()), (None, Some(&dw[..])));
        }
    }
}
