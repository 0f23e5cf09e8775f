//! The paper's learning-rate schedule (method spec §1.2): a per-iteration triangle from 0 up to the peak at `peak_epoch` and back to 0 at the end, `np.interp(it, [0, peak_epoch * ipe, epochs * ipe], [0, 1, 0])`; the first step uses LR 0.

/// The learning rate of iteration `iteration` (0-based) of `epochs * iterations_per_epoch`.
pub fn triangular_lr(
    iteration: usize,
    iterations_per_epoch: usize,
    epochs: usize,
    peak_epoch: f64,
    peak_lr: f64,
) -> f64 {
    let t = iteration as f64;
    let peak = peak_epoch * iterations_per_epoch as f64;
    let end = (epochs * iterations_per_epoch) as f64;
    // np.interp clamps outside the end points.
    let factor = if t <= 0.0 {
        0.0
    } else if t < peak {
        t / peak
    } else if t < end {
        (end - t) / (end - peak)
    } else {
        0.0
    };
    peak_lr * factor
}
