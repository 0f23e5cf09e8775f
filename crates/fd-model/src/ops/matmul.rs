//! The one place fd-model calls `gemm`, through a safe wrapper that checks every index the multiplication can touch.
#![allow(unsafe_code)]

/// A matrix laid out in a slice: element `(i, j)` lives at `i * row_stride + j * col_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Mat {
    /// A dense row-major `rows × cols` matrix.
    pub(crate) fn row_major(rows: usize, cols: usize) -> Mat {
        Mat { rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The same storage read as the transpose.
    pub(crate) fn t(self) -> Mat {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// One past the largest offset the matrix reaches (0 when it is empty).
    fn span(self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, with `dst` dense row-major `lhs.rows × rhs.cols`; single-threaded (callers parallelise over images).
///
/// Panics when the shapes disagree or a view reaches past its slice.
pub(crate) fn matmul(dst: &mut [f32], accumulate: bool, lhs: &[f32], a: Mat, rhs: &[f32], b: Mat) {
    assert_eq!(a.cols, b.rows, "matmul: inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(a.span() <= lhs.len() && b.span() <= rhs.len(), "matmul: a view reaches past its slice");
    assert!(m * n <= dst.len(), "matmul: the destination is too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: the asserts above keep every offset gemm reads (i * row_stride + j * col_stride for i < rows, j < cols)
    // inside `lhs` and `rhs`, and every offset it writes (i * n + j) inside `dst`, which the exclusive borrow keeps
    // from aliasing the inputs. gemm runs on this thread only (Parallelism::None), so the views outlive the call.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            s(n),
            accumulate,
            lhs.as_ptr(),
            s(a.col_stride),
            s(a.row_stride),
            rhs.as_ptr(),
            s(b.col_stride),
            s(b.row_stride),
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], am: Mat, b: &[f32], bm: Mat) -> Vec<f32> {
        let mut out = vec![0.0; am.rows * bm.cols];
        for i in 0..am.rows {
            for j in 0..bm.cols {
                out[i * bm.cols + j] = (0..am.cols)
                    .map(|p| a[i * am.row_stride + p * am.col_stride] * b[p * bm.row_stride + j * bm.col_stride])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn matches_a_naive_product_with_transposed_views_and_accumulation() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..35).map(|i| (i as f32 * 0.91).cos()).collect();
        // a is 5×7 row-major; b is stored 5×7 and read as its 7×5 transpose.
        let (am, bm) = (Mat::row_major(5, 7), Mat::row_major(5, 7).t());
        let want = naive(&a, am, &b, bm);
        let mut got = vec![f32::NAN; 25];
        matmul(&mut got, false, &a, am, &b, bm);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        matmul(&mut got, true, &a, am, &b, bm);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - 2.0 * w).abs() < 1e-5, "{g} vs {}", 2.0 * w);
        }
    }
}
