//! The linear-kernel values of one class: a Gram matrix computed once and shared by every fold and every C, or, for a
//! class whose Gram matrix would pass the memory budget, its rows, from which each problem (a fold, or the refit) keeps
//! libsvm's kernel-row cache, shared by every C.
//!
//! libsvm stores kernel values as `Qfloat` (`float`) and the diagonal `QD` as `double`; this module keeps the same precisions:
//! entries are dot products in f64 rounded to f32, the diagonal stays f64. Both ways compute every entry with the same
//! products summed in the same order, so they give the solver the same values, bit for bit, and the same fits.

use std::cell::RefCell;
use std::ops::Deref;
use std::rc::Rc;

/// The kernel values of one class's `n` rows: `K[i][j] = x_i · x_j`.
#[derive(Debug)]
pub(crate) struct Gram {
    n: usize,
    diagonal: Vec<f64>,
    store: Store,
}

#[derive(Debug)]
enum Store {
    /// Every entry, row-major.
    Full(Vec<f32>),
    /// The rows themselves (f64, row-major, `dim` columns), for [`RowCache`]s within `budget` bytes.
    Rows { x: Vec<f64>, dim: usize, budget: usize },
}

/// `n` rows of `dim` values packed in panels: panel p holds rows p*16..p*16+16 transposed, dimension-major, zero-padded.
fn pack<'r>(rows: impl Iterator<Item = &'r [f64]>, n: usize, dim: usize) -> Vec<f64> {
    let mut packed = vec![0f64; n.div_ceil(TILE_J) * dim * TILE_J];
    for (j, row) in rows.enumerate() {
        let (p, lane) = (j / TILE_J, j % TILE_J);
        for (k, &v) in row.iter().enumerate() {
            packed[(p * dim + k) * TILE_J + lane] = v;
        }
    }
    packed
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
    pub(crate) fn full(rows: &[f32], dim: usize) -> Gram {
        let n = rows.len() / dim;
        let panels = n.div_ceil(TILE_J);
        let x: Vec<f64> = rows.iter().map(|&v| f64::from(v)).collect();
        let packed = pack(x.chunks_exact(dim), n, dim);
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
        Gram { n, diagonal, store: Store::Full(values) }
    }

    /// The kernel of `rows` within `budget` bytes: the whole Gram matrix where its `n × n` f32 entries fit, otherwise the
    /// rows, for kernel rows computed as the solver asks for them and cached within the budget (scikit-learn's
    /// `cache_size`; [`RowCache`]).
    pub(crate) fn with_budget(rows: &[f32], dim: usize, budget: usize) -> Gram {
        let n = rows.len() / dim;
        if n.saturating_mul(n).saturating_mul(size_of::<f32>()) <= budget {
            return Gram::full(rows, dim);
        }
        tracing::debug!(rows = n, budget, "Gram matrix over budget: kernel-row cache");
        let x: Vec<f64> = rows.iter().map(|&v| f64::from(v)).collect();
        // Each diagonal entry summed in dimension order, as a tile sums it.
        let diagonal = x.chunks_exact(dim).map(|r| r.iter().fold(0f64, |s, &v| s + v * v)).collect();
        Gram { n, diagonal, store: Store::Rows { x, dim, budget } }
    }

    /// Whether every entry is stored (no row cache).
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        matches!(self.store, Store::Full(_))
    }

    /// Row `i` of the full matrix, `None` when only the rows are kept.
    pub(crate) fn full_row(&self, i: usize) -> Option<&[f32]> {
        match &self.store {
            Store::Full(values) => Some(&values[i * self.n..(i + 1) * self.n]),
            Store::Rows { .. } => None,
        }
    }

    /// `K[i][i]` in f64.
    pub(crate) fn diagonal(&self, i: usize) -> f64 {
        self.diagonal[i]
    }
}

/// A kernel row as the solver reads it: borrowed from the full matrix, or shared with the row cache.
pub(crate) enum Row<'a> {
    Borrowed(&'a [f32]),
    Cached(Rc<[f32]>),
}

impl Deref for Row<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Row::Borrowed(r) => r,
            Row::Cached(r) => r,
        }
    }
}

/// libsvm's kernel cache (`Cache` in `svm.cpp`) for one problem (a fold's training rows, or every row for the refit), kept
/// for every C the problem is solved at: kernel rows over the problem's rows, by problem position, the least recently
/// used evicted first once `capacity` rows are held (at least two: the working pair). libsvm computes a row over the
/// active rows only and starts a cache per solve; this one computes whole rows and serves all seven values of C.
#[derive(Debug)]
pub(crate) struct RowCache<'a> {
    /// The problem's rows, packed in panels (as [`Gram::full`] packs them).
    packed: Vec<f64>,
    /// The class's rows (f64, row-major), which the problem's `rows` index.
    x: &'a [f64],
    rows: Vec<usize>,
    dim: usize,
    capacity: usize,
    lru: RefCell<Lru>,
}

/// Cached rows in a doubly linked list, most recent first; index `l` is the list's head.
#[derive(Debug)]
struct Lru {
    rows: Vec<Option<Rc<[f32]>>>,
    prev: Vec<usize>,
    next: Vec<usize>,
    held: usize,
}

impl<'a> RowCache<'a> {
    /// The cache of the problem over `rows` (indices into the class's rows), if `gram` keeps rows rather than the matrix.
    pub(crate) fn new(gram: &'a Gram, rows: &[usize]) -> Option<RowCache<'a>> {
        let Store::Rows { x, dim, budget } = &gram.store else { return None };
        let (dim, l) = (*dim, rows.len());
        let packed = pack(rows.iter().map(|&r| &x[r * dim..(r + 1) * dim]), l, dim);
        let capacity = (budget / (l.max(1) * size_of::<f32>())).clamp(2, l.max(2));
        let lru = Lru { rows: vec![None; l], prev: vec![l; l + 1], next: vec![l; l + 1], held: 0 };
        Some(RowCache { packed, x, rows: rows.to_vec(), dim, capacity, lru: RefCell::new(lru) })
    }

    /// Kernel row `i` (problem position) over every problem position.
    pub(crate) fn row(&self, i: usize) -> Rc<[f32]> {
        let l = self.rows.len();
        let mut lru = self.lru.borrow_mut();
        if let Some(row) = lru.rows[i].clone() {
            lru.unlink(i);
            lru.push_front(i, l);
            return row;
        }
        if lru.held == self.capacity {
            let oldest = lru.prev[l];
            lru.unlink(oldest);
            lru.rows[oldest] = None;
            lru.held -= 1;
        }
        let mut values = vec![0f32; l];
        let r = self.rows[i];
        row_dots(&self.x[r * self.dim..(r + 1) * self.dim], &self.packed, self.dim, &mut values);
        let row: Rc<[f32]> = values.into();
        lru.rows[i] = Some(row.clone());
        lru.held += 1;
        lru.push_front(i, l);
        row
    }
}

impl Lru {
    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn push_front(&mut self, i: usize, head: usize) {
        let first = self.next[head];
        self.next[i] = first;
        self.prev[i] = head;
        self.prev[first] = i;
        self.next[head] = i;
    }
}

/// Panels computed together: their sums stay in registers across the dimensions.
const PANELS: usize = 4;

/// One kernel row: `out[j] = x · row_j` for every row `j` of the packed panels, each summed in dimension order (as
/// [`tile`] sums it, so the values are the full matrix's), rounded to f32.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2", "aarch64+neon"))]
fn row_dots(x: &[f64], packed: &[f64], dim: usize, out: &mut [f32]) {
    let panel = dim * TILE_J;
    for (group, out) in packed.chunks(panel * PANELS).zip(out.chunks_mut(TILE_J * PANELS)) {
        let mut acc = [[0f64; TILE_J]; PANELS];
        let used = group.len() / panel;
        for (k, &a) in x.iter().enumerate() {
            for (p, acc) in acc.iter_mut().enumerate().take(used) {
                let column = &group[p * panel + k * TILE_J..p * panel + (k + 1) * TILE_J];
                for lane in 0..TILE_J {
                    acc[lane] += a * column[lane];
                }
            }
        }
        for (o, v) in out.iter_mut().zip(acc.iter().flatten()) {
            *o = *v as f32;
        }
    }
}

/// Dot products of rows `i0..i0+rows_in_tile` of `x` with the 16 columns of one panel, each summed in dimension order.
///
/// Compiled for AVX-512, AVX2 and the baseline, chosen at run time; Rust never fuses the multiply and the add, and every lane
/// sums one entry in dimension order, so every version rounds as one in-order scalar loop does (upstream libsvm's dense loop;
/// scikit-learn's BLAS `ddot` differs, see [`Gram::full`]).
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
