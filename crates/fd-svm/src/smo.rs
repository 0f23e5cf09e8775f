//! The SMO solver of libsvm for C-SVC, mirrored operation for operation, so that fd-svm stops where scikit-learn stops.
//!
//! Ported from scikit-learn's fork of libsvm (`sklearn/svm/src/libsvm/svm.cpp`: `Solver::Solve`, `select_working_set`,
//! `do_shrinking`, `be_shrunk`, `reconstruct_gradient`, `calculate_rho`, `solve_c_svc`), which is Fan, Chen and Lin's
//! second-order working-set selection (JMLR 6, 2005) with shrinking.
//! The precisions are libsvm's: kernel entries as f32 (`Qfloat`), the diagonal, gradients and multipliers as f64.
//! The only departure is where kernel values come from: a Gram matrix computed once per class ([`crate::kernel::Gram`])
//! where it fits the memory budget, libsvm's row cache ([`crate::kernel::RowCache`], the problem's) where it does not. Neither changes
//! a value; the dot products under them agree with scikit-learn's BLAS `ddot` only to rounding (see
//! [`crate::kernel::Gram::full`]).

use crate::kernel::{Gram, Row, RowCache};

const TAU: f64 = 1e-12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Lower,
    Upper,
    Free,
}

/// A binary C-SVC problem over rows of a Gram matrix: `y[k]` is +1 or -1, `c[k]` the box bound of row `rows[k]`.
#[derive(Debug)]
pub(crate) struct Problem<'a> {
    pub(crate) gram: &'a Gram,
    /// The kernel rows of this problem's rows, where the Gram matrix is not kept whole.
    pub(crate) cache: Option<&'a RowCache<'a>>,
    pub(crate) rows: Vec<usize>,
    pub(crate) y: Vec<i8>,
    pub(crate) c: Vec<f64>,
}

/// The dual solution: `alpha[k] * y[k]` per problem row (libsvm's `alpha` after `solve_c_svc`), the offset `rho`, and the iteration count.
#[derive(Debug, Clone)]
pub(crate) struct Solution {
    pub(crate) coef: Vec<f64>,
    pub(crate) rho: f64,
    pub(crate) iterations: usize,
    /// Where `rho` hangs on rounding, every intercept libsvm can return from this solution; see [`Solver::intercept_branches`].
    #[cfg(test)]
    pub(crate) branches: Option<Vec<f64>>,
}

struct Solver<'a> {
    gram: &'a Gram,
    cache: Option<&'a RowCache<'a>>,
    l: usize,
    active_size: usize,
    /// The kernel row of each solver position (libsvm swaps the kernel's `x` along with everything else): a row of the
    /// Gram matrix, or with the row cache a problem position.
    row: Vec<usize>,
    y: Vec<i8>,
    g: Vec<f64>,
    status: Vec<Status>,
    alpha: Vec<f64>,
    p: Vec<f64>,
    active_set: Vec<usize>,
    g_bar: Vec<f64>,
    c: Vec<f64>,
    qd: Vec<f64>,
    eps: f64,
    unshrink: bool,
}

impl<'a> Solver<'a> {
    /// `Q[i][k]` as libsvm's `Qfloat`, widened to f64.
    #[inline]
    fn q(&self, kernel_row: &[f32], i: usize, k: usize) -> f64 {
        let v = f64::from(kernel_row[self.row[k]]);
        if self.y[i] == self.y[k] { v } else { -v }
    }

    fn kernel_row(&self, i: usize) -> Row<'a> {
        let gram: &'a Gram = self.gram;
        match self.cache {
            Some(cache) => Row::Cached(cache.row(self.row[i])),
            None => Row::Borrowed(gram.full_row(self.row[i]).expect("a full Gram matrix without a row cache")),
        }
    }

    fn update_status(&mut self, i: usize) {
        self.status[i] = if self.alpha[i] >= self.c[i] {
            Status::Upper
        } else if self.alpha[i] <= 0.0 {
            Status::Lower
        } else {
            Status::Free
        };
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.row.swap(i, j);
        self.y.swap(i, j);
        self.g.swap(i, j);
        self.status.swap(i, j);
        self.alpha.swap(i, j);
        self.p.swap(i, j);
        self.active_set.swap(i, j);
        self.g_bar.swap(i, j);
        self.c.swap(i, j);
        self.qd.swap(i, j);
    }

    fn reconstruct_gradient(&mut self) {
        let (l, active) = (self.l, self.active_size);
        if active == l {
            return;
        }
        for j in active..l {
            self.g[j] = self.g_bar[j] + self.p[j];
        }
        let nr_free = (0..active).filter(|&j| self.status[j] == Status::Free).count();
        if nr_free * l > 2 * active * (l - active) {
            for i in active..l {
                let kr = self.kernel_row(i);
                let mut gi = self.g[i];
                for j in 0..active {
                    if self.status[j] == Status::Free {
                        gi += self.alpha[j] * self.q(&kr, i, j);
                    }
                }
                self.g[i] = gi;
            }
        } else {
            for i in 0..active {
                if self.status[i] == Status::Free {
                    let kr = self.kernel_row(i);
                    let alpha_i = self.alpha[i];
                    for j in active..l {
                        let q = self.q(&kr, i, j);
                        self.g[j] += alpha_i * q;
                    }
                }
            }
        }
    }

    /// Returns the working pair, or `None` when optimal within `eps`.
    fn select_working_set(&self) -> Option<(usize, usize)> {
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;
        for t in 0..self.active_size {
            if self.y[t] == 1 {
                if self.status[t] != Status::Upper && -self.g[t] >= gmax {
                    gmax = -self.g[t];
                    gmax_idx = Some(t);
                }
            } else if self.status[t] != Status::Lower && self.g[t] >= gmax {
                gmax = self.g[t];
                gmax_idx = Some(t);
            }
        }
        let i = gmax_idx?;
        let kr = self.kernel_row(i);
        let yi = f64::from(self.y[i]);
        for j in 0..self.active_size {
            // libsvm's `y[i] * Q_i[j]` with `Q_i[j]` = y_i y_j K_ij, written out.
            let yi_qij = yi * self.q(&kr, i, j);
            if self.y[j] == 1 {
                if self.status[j] != Status::Lower {
                    let grad_diff = gmax + self.g[j];
                    if self.g[j] >= gmax2 {
                        gmax2 = self.g[j];
                    }
                    if grad_diff > 0.0 {
                        let quad_coef = self.qd[i] + self.qd[j] - 2.0 * yi_qij;
                        let obj_diff = if quad_coef > 0.0 {
                            -(grad_diff * grad_diff) / quad_coef
                        } else {
                            -(grad_diff * grad_diff) / TAU
                        };
                        if obj_diff <= obj_diff_min {
                            gmin_idx = Some(j);
                            obj_diff_min = obj_diff;
                        }
                    }
                }
            } else if self.status[j] != Status::Upper {
                let grad_diff = gmax - self.g[j];
                if -self.g[j] >= gmax2 {
                    gmax2 = -self.g[j];
                }
                if grad_diff > 0.0 {
                    let quad_coef = self.qd[i] + self.qd[j] + 2.0 * yi_qij;
                    let obj_diff = if quad_coef > 0.0 {
                        -(grad_diff * grad_diff) / quad_coef
                    } else {
                        -(grad_diff * grad_diff) / TAU
                    };
                    if obj_diff <= obj_diff_min {
                        gmin_idx = Some(j);
                        obj_diff_min = obj_diff;
                    }
                }
            }
        }
        let j = gmin_idx?;
        if gmax + gmax2 < self.eps {
            return None;
        }
        Some((i, j))
    }

    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        match self.status[i] {
            Status::Upper => {
                if self.y[i] == 1 {
                    -self.g[i] > gmax1
                } else {
                    -self.g[i] > gmax2
                }
            }
            Status::Lower => {
                if self.y[i] == 1 {
                    self.g[i] > gmax2
                } else {
                    self.g[i] > gmax1
                }
            }
            Status::Free => false,
        }
    }

    fn do_shrinking(&mut self) {
        let mut gmax1 = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        for i in 0..self.active_size {
            let (g, s) = (self.g[i], self.status[i]);
            if self.y[i] == 1 {
                if s != Status::Upper && -g >= gmax1 {
                    gmax1 = -g;
                }
                if s != Status::Lower && g >= gmax2 {
                    gmax2 = g;
                }
            } else {
                if s != Status::Upper && -g >= gmax2 {
                    gmax2 = -g;
                }
                if s != Status::Lower && g >= gmax1 {
                    gmax1 = g;
                }
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.l;
        }
        let mut i = 0;
        while i < self.active_size {
            if self.be_shrunk(i, gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > i {
                    if !self.be_shrunk(self.active_size, gmax1, gmax2) {
                        self.swap_index(i, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            i += 1;
        }
    }

    fn calculate_rho(&self) -> f64 {
        let mut nr_free = 0usize;
        let (mut ub, mut lb, mut sum_free) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for i in 0..self.active_size {
            let y_g = f64::from(self.y[i]) * self.g[i];
            match self.status[i] {
                Status::Upper => {
                    if self.y[i] == -1 {
                        ub = ub.min(y_g);
                    } else {
                        lb = lb.max(y_g);
                    }
                }
                Status::Lower => {
                    if self.y[i] == 1 {
                        ub = ub.min(y_g);
                    } else {
                        lb = lb.max(y_g);
                    }
                }
                Status::Free => {
                    nr_free += 1;
                    sum_free += y_g;
                }
            }
        }
        if nr_free > 0 { sum_free / nr_free as f64 } else { (ub + lb) / 2.0 }
    }

    /// Every intercept libsvm can return from this solution when which one it returns is decided by rounding; `None` when not.
    ///
    /// `calculate_rho` averages `y_k G_k` over the free multipliers, and takes the midpoint `(ub + lb) / 2` of the bounds the
    /// bounded ones give when none is free. When every multiplier is on a bound in exact arithmetic (at small C, class-balanced weights make every
    /// multiplier end at its `C_i`), the last multiplier the solver moves is computed as a difference (`C_i - diff`, `sum - C_j`),
    /// and rounding decides whether it lands exactly on its bound or a few ulps short of it. Short of it, it is the one free
    /// multiplier and `rho = y_k G_k`, near ±1 at small C; on it, `rho` is the midpoint, near 0. Rounding also decides which
    /// multiplier moves last (a C one ulp apart changes the path). Both are optimal intercepts, and the predictions of the two
    /// can differ entirely (all one class against the SVM's ranking).
    ///
    /// At such a point (at most one free multiplier, and that one within rounding of a bound), this returns the midpoint with
    /// every multiplier on its bound, and `y_k G_k` of each multiplier `k` that could be the one free multiplier with libsvm's
    /// stopping test still met: with `k` free, `select_working_set`'s `Gmax + Gmax2` is `max(lb, y_k G_k) - min(ub, y_k G_k)`,
    /// which must stay below `eps`. Elsewhere (two or more free multipliers, or one well inside its box) the intercept is an
    /// average that rounding moves only in its last bits, and this returns `None`.
    #[cfg(test)]
    fn intercept_branches(&self) -> Option<Vec<f64>> {
        /// How far inside its box (relative to `C_i`) a multiplier may sit and still be "on its bound but for rounding":
        /// the residuals seen are below 1e-12, a genuinely free multiplier sits orders of magnitude further in.
        const ROUNDING: f64 = 1e-9;
        debug_assert_eq!(self.active_size, self.l, "the solver ends with every row active");
        let mut status = self.status.clone();
        let free: Vec<usize> = (0..self.l).filter(|&k| status[k] == Status::Free).collect();
        match free[..] {
            [] => {}
            [k] => {
                let (alpha, c) = (self.alpha[k], self.c[k]);
                status[k] = if c - alpha <= ROUNDING * c {
                    Status::Upper
                } else if alpha <= ROUNDING * c {
                    Status::Lower
                } else {
                    return None;
                };
            }
            _ => return None,
        }
        let y_g: Vec<f64> = (0..self.l).map(|k| f64::from(self.y[k]) * self.g[k]).collect();
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        for k in 0..self.l {
            match (status[k], self.y[k]) {
                (Status::Upper, -1) | (Status::Lower, 1) => ub = ub.min(y_g[k]),
                _ => lb = lb.max(y_g[k]),
            }
        }
        let mut branches = vec![(ub + lb) / 2.0];
        branches.extend(y_g.iter().copied().filter(|&v| lb.max(v) - ub.min(v) < self.eps));
        Some(branches)
    }

    /// Moves the pair `(i, j)` and updates the gradient, as the body of libsvm's main loop.
    fn step(&mut self, i: usize, j: usize) {
        let (c_i, c_j) = (self.c[i], self.c[j]);
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let q_ij = self.q(&self.kernel_row(i), i, j);
        if self.y[i] != self.y[j] {
            let mut quad_coef = self.qd[i] + self.qd[j] + 2.0 * q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (-self.g[i] - self.g[j]) / quad_coef;
            let diff = self.alpha[i] - self.alpha[j];
            self.alpha[i] += delta;
            self.alpha[j] += delta;
            if diff > 0.0 {
                if self.alpha[j] < 0.0 {
                    self.alpha[j] = 0.0;
                    self.alpha[i] = diff;
                }
            } else if self.alpha[i] < 0.0 {
                self.alpha[i] = 0.0;
                self.alpha[j] = -diff;
            }
            if diff > c_i - c_j {
                if self.alpha[i] > c_i {
                    self.alpha[i] = c_i;
                    self.alpha[j] = c_i - diff;
                }
            } else if self.alpha[j] > c_j {
                self.alpha[j] = c_j;
                self.alpha[i] = c_j + diff;
            }
        } else {
            let mut quad_coef = self.qd[i] + self.qd[j] - 2.0 * q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (self.g[i] - self.g[j]) / quad_coef;
            let sum = self.alpha[i] + self.alpha[j];
            self.alpha[i] -= delta;
            self.alpha[j] += delta;
            if sum > c_i {
                if self.alpha[i] > c_i {
                    self.alpha[i] = c_i;
                    self.alpha[j] = sum - c_i;
                }
            } else if self.alpha[j] < 0.0 {
                self.alpha[j] = 0.0;
                self.alpha[i] = sum;
            }
            if sum > c_j {
                if self.alpha[j] > c_j {
                    self.alpha[j] = c_j;
                    self.alpha[i] = sum - c_j;
                }
            } else if self.alpha[i] < 0.0 {
                self.alpha[i] = 0.0;
                self.alpha[j] = sum;
            }
        }
        let d_i = self.alpha[i] - old_i;
        let d_j = self.alpha[j] - old_j;
        {
            let (kr_i, kr_j) = (self.kernel_row(i), self.kernel_row(j));
            let (y_i, y_j) = (self.y[i], self.y[j]);
            for k in 0..self.active_size {
                let r = self.row[k];
                let yk = self.y[k];
                let qi = if y_i == yk { f64::from(kr_i[r]) } else { -f64::from(kr_i[r]) };
                let qj = if y_j == yk { f64::from(kr_j[r]) } else { -f64::from(kr_j[r]) };
                self.g[k] += qi * d_i + qj * d_j;
            }
        }
        let (ui, uj) = (self.status[i] == Status::Upper, self.status[j] == Status::Upper);
        self.update_status(i);
        self.update_status(j);
        for (idx, was_upper, c_idx) in [(i, ui, c_i), (j, uj, c_j)] {
            if was_upper != (self.status[idx] == Status::Upper) {
                let kr = self.kernel_row(idx);
                let sign = if was_upper { -1.0 } else { 1.0 };
                for k in 0..self.l {
                    let q = self.q(&kr, idx, k);
                    self.g_bar[k] += sign * (c_idx * q);
                }
            }
        }
    }
}

/// Solves `problem` to libsvm's stopping tolerance `eps`, with or without shrinking, as `Solver::Solve` does from `alpha = 0`.
pub(crate) fn solve(problem: &Problem<'_>, eps: f64, shrinking: bool) -> Solution {
    let l = problem.rows.len();
    let row = if problem.cache.is_some() { (0..l).collect() } else { problem.rows.clone() };
    let mut s = Solver {
        gram: problem.gram,
        cache: problem.cache,
        l,
        active_size: l,
        row,
        y: problem.y.clone(),
        g: vec![-1.0; l],
        status: vec![Status::Lower; l],
        alpha: vec![0.0; l],
        p: vec![-1.0; l],
        active_set: (0..l).collect(),
        g_bar: vec![0.0; l],
        c: problem.c.clone(),
        qd: problem.rows.iter().map(|&r| problem.gram.diagonal(r)).collect(),
        eps,
        unshrink: false,
    };
    for i in 0..l {
        s.update_status(i);
    }
    let mut iterations = 0usize;
    let mut counter = l.min(1000) + 1;
    loop {
        counter -= 1;
        if counter == 0 {
            counter = l.min(1000);
            if shrinking {
                s.do_shrinking();
            }
        }
        let (i, j) = match s.select_working_set() {
            Some(pair) => pair,
            None => {
                s.reconstruct_gradient();
                s.active_size = l;
                match s.select_working_set() {
                    Some(pair) => {
                        counter = 1;
                        pair
                    }
                    None => break,
                }
            }
        };
        iterations += 1;
        s.step(i, j);
    }
    let rho = s.calculate_rho();
    #[cfg(test)]
    let branches = s.intercept_branches();
    let mut coef = vec![0.0; l];
    for k in 0..l {
        let original = s.active_set[k];
        coef[original] = s.alpha[k] * f64::from(s.y[k]);
    }
    Solution {
        coef,
        rho,
        iterations,
        #[cfg(test)]
        branches,
    }
}
