//! The held-out check: on images the SVM never saw, is the classifier really worse on a caption's nearest images than on its class?
//!
//! Among the class's `n` held-out images, `c` are classified correctly. If the caption meant nothing, its `k` nearest images would be a
//! random `k`-subset, and the number correct among them would follow the hypergeometric distribution. The p-value is the exact
//! probability of as few correct as observed, or fewer; a caption is supported when it is below the level asked for.

use serde::{Deserialize, Serialize};

/// The outcome of the held-out check for one caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionCheck {
    /// Images looked at (the caption's nearest).
    pub k: usize,
    /// The classifier's accuracy on them.
    pub accuracy: f64,
    /// Its accuracy on the whole class, on the same held-out split.
    pub class_accuracy: f64,
    /// P(at most that many correct in a random subset of `k`): small means the caption's images really are harder.
    pub p_value: f64,
    /// Whether `p_value` is below the level.
    pub supported: bool,
}

/// Checks a caption: `correct` flags the class's held-out images (the classifier right or wrong), `nearest` indexes the caption's nearest ones.
pub fn check_caption(correct: &[bool], nearest: &[usize], level: f64) -> CaptionCheck {
    check_subset(correct, nearest, level, true)
}

/// The check of a subset either way: with `harder`, P(as few correct as observed or fewer), as [`check_caption`]; without,
/// P(as many correct or more), for a subset that should be easier than its class.
pub fn check_subset(correct: &[bool], subset: &[usize], level: f64, harder: bool) -> CaptionCheck {
    let n = correct.len();
    let c = correct.iter().filter(|&&x| x).count();
    let k = subset.len();
    let hits = subset.iter().filter(|&&i| correct[i]).count();
    let p_value = match (harder, hits) {
        (true, _) => hypergeometric_cdf(hits, n, c, k),
        (false, _) => hypergeometric_sf(hits, n, c, k),
    };
    CaptionCheck {
        k,
        accuracy: hits as f64 / k.max(1) as f64,
        class_accuracy: c as f64 / n.max(1) as f64,
        p_value,
        supported: k > 0 && p_value < level,
    }
}

fn ln_choose(n: usize, r: usize) -> f64 {
    if r > n {
        return f64::NEG_INFINITY;
    }
    // Sums of logarithms are exact enough at these sizes (thousands) and need no gamma function.
    let r = r.min(n - r);
    (0..r).map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln()).sum()
}

/// P(X <= x) for X ~ Hypergeometric(population `n`, successes `c`, draws `k`).
pub fn hypergeometric_cdf(x: usize, n: usize, c: usize, k: usize) -> f64 {
    assert!(c <= n && k <= n, "a hypergeometric needs c <= n and k <= n");
    let total = ln_choose(n, k);
    let low = k.saturating_sub(n - c);
    (low..=x.min(k).min(c)).map(|j| (ln_choose(c, j) + ln_choose(n - c, k - j) - total).exp()).sum::<f64>().min(1.0)
}

/// P(X >= x) for X ~ Hypergeometric(population `n`, successes `c`, draws `k`), summed from the upper tail itself: `1 - cdf`
/// loses every digit below about 1e-16, so tiny p-values (which rank names) would tie at rounding noise.
pub fn hypergeometric_sf(x: usize, n: usize, c: usize, k: usize) -> f64 {
    assert!(c <= n && k <= n, "a hypergeometric needs c <= n and k <= n");
    let total = ln_choose(n, k);
    let (low, high) = (x.max(k.saturating_sub(n - c)), k.min(c));
    if low > high {
        return 0.0;
    }
    let logs: Vec<f64> = (low..=high).map(|j| ln_choose(c, j) + ln_choose(n - c, k - j) - total).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (top + logs.iter().map(|l| (l - top).exp()).sum::<f64>().ln()).exp().min(1.0)
}
