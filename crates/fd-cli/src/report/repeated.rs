//! Repeated interventions: per retraining mode, rule and K, each figure's mean and standard deviation over the seeds it was
//! retrained under, and its paired difference against the random rule under the same seed (same mode and K), with a 95%
//! percentile bootstrap interval of the mean difference. Pairing removes what a seed does to every rule alike (the
//! training's luck), so a difference can be told from noise with few seeds.

use std::collections::BTreeMap;

use fd_svm::select::SelectionRule;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::Intervention;
use crate::config::RetrainMode;

/// Bootstrap resamples of each interval.
pub const RESAMPLES: usize = 10_000;
/// The interval's coverage.
pub const LEVEL: f64 = 0.95;

/// One retraining's figures over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeated {
    /// How it was retrained.
    pub mode: RetrainMode,
    /// The rule.
    pub rule: SelectionRule,
    /// Images added per class.
    pub k: usize,
    /// The seeds it finished under (none: the run's own seed, once).
    pub seeds: Vec<Option<u64>>,
    /// Test accuracy.
    pub test_accuracy: Option<Spread>,
    /// Accuracy on the classes' hard-caption subpopulations.
    pub hard_caption_accuracy: Option<Spread>,
    /// The same over the classes whose hardest caption is a supported failure ([`Intervention::supported_caption_accuracy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_caption_accuracy: Option<Spread>,
    /// Accuracy on the planted group (worst-group accuracy on planted configs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minority_accuracy: Option<Spread>,
}

/// A figure over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (0 with one seed).
    pub sd: f64,
    /// The paired difference against random under the same seeds (none for random itself, or without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_random: Option<Paired>,
}

/// A paired difference: the mean of `rule − random` over the seeds both finished under, and its bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paired {
    /// Seeds in the pairing.
    pub pairs: usize,
    /// The mean difference.
    pub mean: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
}

/// The mean and the sample standard deviation (0 for fewer than two values); `None` for no value.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Some((mean, var.sqrt()))
}

/// The percentile bootstrap interval of the mean of `values` at `level`: the means of `resamples` samples drawn with
/// replacement (a ChaCha8 stream seeded by `seed`), cut at `(1 − level) / 2` and `(1 + level) / 2` (the order statistics
/// nearest those quantiles); `None` for no value.
pub fn bootstrap_interval(values: &[f64], resamples: usize, level: f64, seed: u64) -> Option<(f64, f64)> {
    if values.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = values.len();
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some((at((1.0 - level) / 2.0), at((1.0 + level) / 2.0)))
}

/// The paired differences `a[s] − b[s]` over the keys both have, in key order.
pub fn paired_differences<K: Ord + Copy>(a: &BTreeMap<K, f64>, b: &BTreeMap<K, f64>) -> Vec<f64> {
    a.iter().filter_map(|(s, x)| b.get(s).map(|y| x - y)).collect()
}

/// Groups the retrainings (those with a rule) by mode, rule and K; none when no retraining has a seed of
/// `[intervene] seeds` (each ran once).
pub(super) fn repeated(interventions: &[Intervention]) -> Vec<Repeated> {
    type Group<'a> = BTreeMap<Option<u64>, &'a Intervention>;
    if interventions.iter().all(|v| v.seed.is_none()) {
        return Vec::new();
    }
    let mut groups: BTreeMap<(RetrainMode, SelectionRule, usize), Group<'_>> = BTreeMap::new();
    for v in interventions.iter().filter(|v| v.generated.is_none()) {
        if let (Some(rule), Some(k)) = (v.rule, v.k) {
            let mode = v.mode.unwrap_or(RetrainMode::Scratch);
            groups.entry((mode, rule, k)).or_default().insert(v.seed, v);
        }
    }
    let spread = |group: &Group<'_>, random: Option<&Group<'_>>, figure: fn(&Intervention) -> Option<f64>| {
        let values: BTreeMap<Option<u64>, f64> = group.iter().filter_map(|(s, v)| Some((*s, figure(v)?))).collect();
        let (mean, sd) = mean_sd(&values.values().copied().collect::<Vec<_>>())?;
        let vs_random = random.and_then(|r| {
            let base: BTreeMap<Option<u64>, f64> = r.iter().filter_map(|(s, v)| Some((*s, figure(v)?))).collect();
            let d = paired_differences(&values, &base);
            let (low, high) = bootstrap_interval(&d, RESAMPLES, LEVEL, 0)?;
            Some(Paired { pairs: d.len(), mean: mean_sd(&d)?.0, low, high })
        });
        Some(Spread { mean, sd, vs_random })
    };
    groups
        .iter()
        .map(|(&(mode, rule, k), group)| {
            let random =
                (rule != SelectionRule::Random).then(|| groups.get(&(mode, SelectionRule::Random, k))).flatten();
            Repeated {
                mode,
                rule,
                k,
                seeds: group.keys().copied().collect(),
                test_accuracy: spread(group, random, |v| v.test_accuracy),
                hard_caption_accuracy: spread(group, random, |v| v.hard_caption_accuracy),
                supported_caption_accuracy: spread(group, random, |v| v.supported_caption_accuracy),
                minority_accuracy: spread(group, random, |v| v.minority_accuracy),
            }
        })
        .collect()
}

/// The colour of a rule's series.
fn colour(rule: SelectionRule) -> &'static str {
    match rule {
        SelectionRule::Nothing => "#999",
        SelectionRule::Svm => "#c33",
        SelectionRule::Confidence => "#36c",
        SelectionRule::Random => "#393",
        SelectionRule::Margin => "#c90",
        SelectionRule::Entropy => "#939",
        SelectionRule::Coreset => "#099",
        SelectionRule::Modes => "#f60",
    }
}

/// The repeated retrainings as a table (mean ± sd, and the paired difference against random with its interval) and, per
/// mode, a plot of the hard-caption subpopulation's accuracy against K with error bars; empty when no retraining has
/// several seeds.
pub(super) fn html(groups: &[Repeated]) -> String {
    use std::fmt::Write;

    use super::plot::{SpreadSeries, esc, plot_with_bars};
    if groups.iter().all(|g| g.seeds.len() < 2) {
        return String::new();
    }
    let cell = |s: &Option<Spread>| -> String {
        let Some(s) = s else { return "<td>-</td><td>-</td>".into() };
        let paired = s
            .vs_random
            .as_ref()
            .map_or("-".into(), |p| format!("{:+.4} [{:+.4}, {:+.4}] ({} seeds)", p.mean, p.low, p.high, p.pairs));
        format!("<td>{:.4} ± {:.4}</td><td>{}</td>", s.mean, s.sd, esc(&paired))
    };
    let mut h = String::from(
        "<h2>Repeated interventions</h2><p class=\"note\">Mean ± standard deviation over seeds; against random: the mean \
         paired difference under the same seeds and its 95% percentile bootstrap interval (with few seeds the interval is too \
         narrow: with two it is the range of the two differences).</p><table><tr><th>retraining</th>\
         <th>rule</th><th>K</th><th>seeds</th><th>test accuracy</th><th>against random</th>\
         <th>hard-caption accuracy</th><th>against random</th><th>supported captions' accuracy</th><th>against random</th>\
         <th>minority accuracy</th><th>against random</th></tr>",
    );
    for g in groups {
        let mode = serde_json::to_value(g.mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}</tr>",
            esc(&mode),
            g.rule.name(),
            g.k,
            g.seeds.len(),
            cell(&g.test_accuracy),
            cell(&g.hard_caption_accuracy),
            cell(&g.supported_caption_accuracy),
            cell(&g.minority_accuracy)
        );
    }
    h.push_str("</table><div class=\"plots\">");
    for mode in [RetrainMode::Scratch, RetrainMode::LastLayer] {
        let mut series: Vec<SpreadSeries<'_>> = Vec::new();
        for rule in SelectionRule::ALL {
            let pts: Vec<(f64, f64, f64)> = groups
                .iter()
                .filter(|g| g.mode == mode && g.rule == rule && g.k > 0)
                .filter_map(|g| g.hard_caption_accuracy.as_ref().map(|s| (g.k as f64, s.mean, s.sd)))
                .collect();
            if !pts.is_empty() {
                series.push((rule.name().to_string(), colour(rule), pts));
            }
        }
        let title = match mode {
            RetrainMode::Scratch => "Hard-caption accuracy, retrained from scratch",
            RetrainMode::LastLayer => "Hard-caption accuracy, last layer retrained",
        };
        h.push_str(&plot_with_bars(title, "K images added per class", "accuracy (± sd)", &series, true));
    }
    h.push_str("</div>");
    h
}
