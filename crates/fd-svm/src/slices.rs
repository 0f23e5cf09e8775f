//! How well discovered slices recover a planted group, as dcbench scores slice discovery (Eyuboglu et al., "Domino", ICLR 2022,
//! §5): each slice ranks the rows by a score (higher = more in the slice), and a planted group is matched by the slice, or the
//! complement of a slice (its ranking reversed), that recovers it best.
//!
//! - [`precision_at_k`]: the share of the group among the `k` highest-scored rows. Rows tied with the `k`-th score count by
//!   their expected share under a random order of the ties, so the figure does not depend on how ties fall.
//! - [`average_precision`]: scikit-learn's `average_precision_score`: `Σ_n (R_n - R_{n-1}) P_n` over the distinct scores from
//!   the highest, with `R` the recall and `P` the precision of the rows scored at or above each.
//! - [`best_match`]: the slice (or complement) with the highest value of a metric for a group.

/// The share of `in_group` among the `k` highest of `scores` (ties at the `k`-th score by their expected share); `None` when
/// `k` is 0 or exceeds the rows, or the lengths differ.
pub fn precision_at_k(scores: &[f64], in_group: &[bool], k: usize) -> Option<f64> {
    if k == 0 || k > scores.len() || scores.len() != in_group.len() {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let threshold = scores[order[k - 1]];
    let above = order.iter().take_while(|&&i| scores[i] > threshold).count();
    let hits_above = order[..above].iter().filter(|&&i| in_group[i]).count() as f64;
    let tied: Vec<usize> = order[above..].iter().copied().take_while(|&i| scores[i] == threshold).collect();
    let hits_tied = tied.iter().filter(|&&i| in_group[i]).count() as f64;
    let needed = (k - above) as f64;
    Some((hits_above + hits_tied * needed / tied.len() as f64) / k as f64)
}

/// scikit-learn's `average_precision_score(in_group, scores)`; `None` without any group row or when the lengths differ.
pub fn average_precision(scores: &[f64], in_group: &[bool]) -> Option<f64> {
    let positives = in_group.iter().filter(|&&g| g).count();
    if positives == 0 || scores.len() != in_group.len() {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut r = 0;
    while r < order.len() {
        // Every row at this score enters together: one threshold.
        let score = scores[order[r]];
        while r < order.len() && scores[order[r]] == score {
            tp += usize::from(in_group[order[r]]);
            seen += 1;
            r += 1;
        }
        let recall = tp as f64 / positives as f64;
        ap += (recall - last_recall) * (tp as f64 / seen as f64);
        last_recall = recall;
    }
    Some(ap)
}

/// The slice that best matches a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// The slice's index.
    pub slice: usize,
    /// Whether its complement (the ranking reversed) is the match.
    pub complement: bool,
    /// The metric's value.
    pub value: f64,
}

/// The slice of `slices` (each a score per row), or the complement of one, with the highest `metric` for `in_group`; the first
/// such on ties, a slice before its complement. `None` when no slice gives a value (NaN counts as none).
pub fn best_match(
    slices: &[Vec<f64>],
    in_group: &[bool],
    metric: impl Fn(&[f64], &[bool]) -> Option<f64>,
) -> Option<Match> {
    let mut best: Option<Match> = None;
    for (slice, scores) in slices.iter().enumerate() {
        let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
        for (complement, s) in [(false, scores.as_slice()), (true, negated.as_slice())] {
            if let Some(value) = metric(s, in_group).filter(|v| !v.is_nan())
                && best.is_none_or(|b| value > b.value)
            {
                best = Some(Match { slice, complement, value });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests;
