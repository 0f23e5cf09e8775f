//! The one place fd-clip calls `gemm`: a dense row-major product into a slice the caller owns, through a safe wrapper
//! that checks every length the multiplication touches. EfficientNet's 1 × 1 convolutions and CLIP's vision tower's
//! products run through it a block of rows per task ([`by_rows`]), so a layer's output is written once, in place, with
//! its bias (and activation, and residual) added while still in cache (burn's matmul allocated, zeroed and copied each
//! output, a third of an embedding's time; BENCHMARKS.md).
#![allow(unsafe_code)]

/// `dst [m, n] = lhs [m, k] · rhs [k, n]`, every matrix dense and row-major; single-threaded (callers parallelise over
/// rows).
///
/// Panics when a slice is shorter than its matrix.
pub(crate) fn matmul(dst: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) {
    let fits = |len: usize, a: usize, b: usize| a.checked_mul(b).is_some_and(|need| len >= need);
    assert!(
        fits(lhs.len(), m, k) && fits(rhs.len(), k, n) && fits(dst.len(), m, n),
        "matmul: a slice is shorter than its matrix"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: the assert keeps every offset gemm reads (i * k + j of `lhs` for i < m, j < k; i * n + j of `rhs` for
    // i < k, j < n) inside its slice and every offset it writes (i * n + j for i < m, j < n) inside `dst`, which the
    // exclusive borrow keeps from aliasing the inputs. gemm runs on this thread only (Parallelism::None), so the slices
    // outlive the call. With `read_dst` false, gemm never reads `dst`'s previous values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            s(n),
            false,
            lhs.as_ptr(),
            1,
            s(k),
            rhs.as_ptr(),
            1,
            s(n),
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Blocks a product is cut into, whatever the thread count (enough for 8 threads).
const BLOCKS: usize = 8;

/// `out [rows, n] = x [rows, k] · w [k, n]` a block of rows per parallel task (each task packs `w` itself, so blocks are
/// as large as an even share allows), each block then handed to `finish(block, first_row)` while still in cache.
pub(crate) fn by_rows(
    x: &[f32],
    w: &[f32],
    (k, n): (usize, usize),
    out: &mut [f32],
    finish: impl Fn(&mut [f32], usize) + Sync,
) {
    use rayon::prelude::*;
    let rows = x.len() / k.max(1);
    assert!(x.len() == rows * k && out.len() == rows * n, "by_rows: the operands are not [rows, k] and [rows, n]");
    // BLOCKS blocks (or fewer of at least 32 rows: gemm's kernels want width; at most 2048: the block stays in cache),
    // whatever the thread count: gemm's summation order depends on a product's shape, so a row's values depend on the
    // rows multiplied with it, but never on the threads.
    let block = rows.div_ceil(BLOCKS).clamp(32, 2048);
    out.par_chunks_mut((block * n).max(1)).zip(x.par_chunks((block * k).max(1))).enumerate().for_each(
        |(i, (out, x))| {
            matmul(out, x, w, x.len() / k.max(1), k, n);
            finish(out, i * block);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_of_odd_shapes_matches_the_sums() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        // Stale values in the destination must not leak into the product.
        let mut dst = vec![f32::NAN; m * n + 3];
        matmul(&mut dst, &a, &b, m, k, n);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                assert!((dst[i * n + j] - want).abs() < 1e-5, "({i}, {j}): {} against {want}", dst[i * n + j]);
            }
        }
        assert!(dst[m * n..].iter().all(|v| v.is_nan()), "past the product, nothing is written");
    }
}
