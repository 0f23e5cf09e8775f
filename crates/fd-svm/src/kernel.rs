//! The linear-kernel Gram matrix of one class, computed once and shared by every fold and every C.
//!
//! libsvm stores kernel values as `Qfloat` (`float`) and the diagonal `QD` as `double`; this module keeps the same precisions:
//! entries are dot products in f64 rounded to f32, the diagonal stays f64.

/// The Gram matrix `K[i][j] = x_i · x_j` of `n` rows.
#[derive(Debug, Clone)]
pub(crate) struct Gram {
    n: usize,
    values: Vec<f32>,
    diagonal: Vec<f64>,
}

/// Rows per register tile.
const TILE_I: usize = 4;
/// Columns per register tile.
const TILE_J: usize = 16;

impl Gram {
    /// Computes the Gram matrix of `rows` (row-major, `dim` columns).
    ///
    /// Each entry is summed in f64 over the dimensions in order, `sum += x_i[k] * x_j[k]` (products of f32 values are exact in f64).
    ///
    /// scikit-learn does not sum that way. Its dense `Kernel::dot` (`sklearn/svm/src/libsvm/svm.cpp`, scikit-learn 1.9.1,
    /// since scikit-learn PR #16530) is `blas_functions->dot(dim, px->values, 1, py->values, 1)`, which `_libsvm.pyx` sets to
    /// `sklearn.utils._cython_blas._dot[double]`: BLAS `ddot` from `scipy.linalg.cython_blas`, that is, the BLAS SciPy ships
    /// (OpenBLAS in the wheels), whose kernel is picked for the CPU at run time and sums in several SIMD accumulators.
    /// So these entries equal scikit-learn's only to rounding: in f64, most of them differ in the last bits (on the fixtures,
    /// 60 to 90 per cent of the entries, and most of the diagonal). The fixtures still match because the entries the solver
    /// reads are rounded to f32 (`Qfloat`), which absorbs those bits (none of the fixtures' entries checked differs after
    /// it), and the diagonal (`QD`, kept in f64) differs by an ulp or so, which moves the multipliers only at rounding level
    /// and changed none of the solver's choices on the fixtures: supports and iteration counts match exactly, the intercept and
    /// the decision values to the tests' tolerance.
    ///
    /// Speed comes from computing a tile of 4×16 entries at once in registers, one dimension after the other, over packed panels,
    /// and from computing only tiles that reach the upper triangle.
    pub(crate) fn new(rows: &[f32], dim: usize) -> Gram {
        let n = rows.len() / dim;
        let panels = n.div_ceil(TILE_J);
        // Panel p holds columns p*16..p*16+16 of the transposed input, dimension-major, zero-padded.
        let mut packed = vec![0f64; panels * dim * TILE_J];
        for (j, row) in rows.chunks_exact(dim).enumerate() {
            let (p, lane) = (j / TILE_J, j % TILE_J);
            for (k, &v) in row.iter().enumerate() {
                packed[(p * dim + k) * TILE_J + lane] = f64::from(v);
            }
        }
        let x: Vec<f64> = rows.iter().map(|&v| f64::from(v)).collect();
        let mut values = vec![0f32; n * n];
        let mut diagonal = vec![0f64; n];
        for i0 in (0..n).step_by(TILE_I) {
            let rows_in_tile = TILE_I.min(n - i0);
            let mut block = [[0f64; TILE_J]; TILE_I];
            for p in i0 / TILE_J..panels {
                tile(&x, dim, i0, rows_in_tile, &packed[p * dim * TILE_J..(p + 1) * dim * TILE_J], &mut block);
                for (b, acc) in block.iter().enumerate().take(rows_in_tile) {
                    let i = i0 + b;
                    for (lane, &v) in acc.iter().enumerate() {
                        let j = p * TILE_J + lane;
                        if j < i || j >= n {
                            continue;
                        }
                        if j == i {
                            diagonal[i] = v;
                        }
                        values[i * n + j] = v as f32;
                        values[j * n + i] = v as f32;
                    }
                }
            }
        }
        Gram { n, values, diagonal }
    }

    /// Row `i` as stored (f32).
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.n..(i + 1) * self.n]
    }

    /// `K[i][i]` in f64.
    pub(crate) fn diagonal(&self, i: usize) -> f64 {
        self.diagonal[i]
    }
}

/// Dot products of rows `i0..i0+rows_in_tile` of `x` with the 16 columns of one panel, each summed in dimension order.
///
/// Compiled for AVX-512, AVX2 and the baseline, chosen at run time; Rust never fuses the multiply and the add, and every lane
/// sums one entry in dimension order, so every version rounds as one in-order scalar loop does (upstream libsvm's dense loop;
/// scikit-learn's BLAS `ddot` differs, see [`Gram::new`]).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2", "aarch64+neon"))]
fn tile(x: &[f64], dim: usize, i0: usize, rows_in_tile: usize, panel: &[f64], out: &mut [[f64; TILE_J]; TILE_I]) {
    let mut acc = [[0f64; TILE_J]; TILE_I];
    let row = |b: usize| &x[(i0 + b.min(rows_in_tile - 1)) * dim..(i0 + b.min(rows_in_tile - 1) + 1) * dim];
    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
    for (k, column) in panel.chunks_exact(TILE_J).enumerate() {
        let a = [r0[k], r1[k], r2[k], r3[k]];
        for b in 0..TILE_I {
            for lane in 0..TILE_J {
                acc[b][lane] += a[b] * column[lane];
            }
        }
    }
    *out = acc;
}
