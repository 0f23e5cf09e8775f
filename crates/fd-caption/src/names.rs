//! Naming a failure direction by what its images look like: the image attributes and tags most over-represented among the images
//! the direction ranks hardest (or easiest) against the class as a whole, each then verified on held-out images.
//!
//! The candidates are predicates over images ("dark images", "against a blue background"), given on two splits: a discovery
//! split that the direction ranks (the extra pool) and a held-out one (test). On discovery, among the class's `n` images `b`
//! have the predicate and `a` of the `k` hardest do; the over-representation p-value is the exact hypergeometric probability of
//! `a` or more, and the lift is `(a / k) / (b / n)`. A name is a candidate when its share among the hardest is above the
//! class's. Candidates are ranked by p-value, then lift, then regrouped by evidence (below); then, in that order, only the
//! first of each family (one measure at several thresholds) is kept, and of predicates that pick nearly the same discovery
//! images ([`SAME_IMAGES`]) only the first.
//!
//! Leading names: a p-value grows with the size of a group, so a mild shift over many images (the smoother half of a class's
//! frogs) outranks a small group the hardest images are made of (a few grayscale frogs). Two kinds of name therefore lead,
//! each significant ([`LEAD_P`]): names distinct in their class, whose hardest images moved at least [`DISTINCT_EFFECT`] of
//! the class's own spread; then, across classes ([`lead_with_shared`]), names of a family significant among the hardest of at
//! least [`SHARED_SHARE`] of the other classes: a failure of the model rather than of one class (a cue that misleads it
//! wherever it appears) reads as the same name in most classes, where a class's own natural failure does not. Measured on the
//! discovery suite's six attribute settings, the planted transform is the first verified name of 22 of the 23 classes where
//! it is a significant failure at seed 0 (where these rules were chosen) and of 20 of 22 at seed 1, against 17 and 15 by
//! rank alone; the CPU CIFAR-10 run's names are unchanged (BENCHMARKS.md).
//!
//! The classifier's errors where the direction was fit: when the labelled split the direction was fit on is given
//! (validation: its images carry the classifier's correct flags), each name also carries the check of the class's
//! labelled images with the predicate ([`AttributeName::errors`], computed as the held-out check), so a reader sees how
//! the classifier does on them before the test. It does not order the names: ranking by the larger of the two p-values
//! (an intersection-union test, the error half of what B2T ranks keywords by) named the planted transform first in 11 of
//! the 23 planted failures of the discovery suite's attribute settings at seed 0 against 17 for the p-value alone (Fisher's
//! product of the two: 15; the errors alone: 10): the natural failures that lead instead are larger failures on val too.
//!
//! Evidence: the p-value cannot tell apart predicates that explain the same hardest images (a low-contrast failure is also a
//! washed-out one). Taking the best-ranked candidate not yet grouped, its group is every ungrouped candidate whose hardest
//! images overlap its own by at least [`SAME_EVIDENCE`] (intersection over union) and that holds together with it over the
//! class at least [`SAME_CLASS_LIFT`] times as often as an independent predicate would (so two unrelated predicates that each
//! hold for nearly all the hardest stay apart); groups do not chain. Each group is led by its member of largest effect; the
//! leaders come first, in their groups' order, then every other candidate in rank order, so the first names are different
//! pieces of evidence. The effect, counted positive in the predicate's direction: for a threshold on a measure, the shift of
//! the median of the measure's logarithm among the hardest from the class's, in robust standard deviations of the class
//! (1.4826 × the median absolute deviation; the plain standard deviation when more than half the class shares one value);
//! for a yes/no predicate (a hue, a tag), the rise of its share in binomial standard deviations,
//! `(a / k - b / n) / sqrt(b / n (1 - b / n))`. The two scales differ (a rare tag held by all the hardest reaches several
//! units), but a rare tag rarely shares a group with a measure. A planted contrast change moves contrast by many of the
//! class's own spreads and saturation by fewer, so "low contrast" names it.
//!
//! On held-out images, the classifier's accuracy on the class's images with the predicate is compared with its accuracy on
//! the class, as the caption check does ([`crate::check`]): for a hard name, the exact probability of as few correct or
//! fewer; for an easy name, of as many or more. A name is supported below the level.

use serde::{Deserialize, Serialize};

use crate::check::{CaptionCheck, check_subset, hypergeometric_sf};

/// One candidate name: a phrase and, per image of the class, whether it has it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The phrase ("dark images").
    pub phrase: &'a str,
    /// Candidates of one family (one measure at several thresholds) compete: only the best of a family is kept.
    pub family: &'a str,
    /// On the discovery split, in the order of the decision values.
    pub discovery: &'a [bool],
    /// On the held-out split, in the order of its correct flags.
    pub held_out: &'a [bool],
    /// For a threshold on a measure, the measure's value on each discovery image (as `discovery`), from which the effect is
    /// measured; `None` for a yes/no predicate (a hue, a tag).
    pub values: Option<&'a [f32]>,
    /// On the labelled split the direction was fit on, in the order of [`name_class`]'s `labelled` flags; `None` when no
    /// such split is given.
    pub labelled: Option<&'a [bool]>,
}

/// How names are found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameConfig {
    /// The share of the class's discovery images taken as its hardest (and easiest).
    pub top_fraction: f64,
    /// At least this many images are taken.
    pub min_top: usize,
    /// Names kept per side.
    pub names: usize,
    /// The held-out check's significance level.
    pub level: f64,
}

impl Default for NameConfig {
    fn default() -> NameConfig {
        NameConfig { top_fraction: 0.1, min_top: 20, names: 5, level: 0.05 }
    }
}

/// One name of a direction, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeName {
    /// The phrase.
    pub phrase: String,
    /// Its family (one measure and side at any threshold: "low contrast"; a yes/no predicate's phrase): what
    /// [`lead_with_shared`] counts across classes.
    #[serde(default)]
    pub family: String,
    /// Its share among the hardest (or easiest) discovery images.
    pub share_top: f64,
    /// Its share among all the class's discovery images.
    pub share_class: f64,
    /// `share_top / share_class`.
    pub lift: f64,
    /// The over-representation p-value on discovery.
    pub p_value: f64,
    /// How far the picked images moved from the class, in the class's standard deviations (see the module's docs).
    #[serde(default)]
    pub effect: f64,
    /// The held-out check of the images with the predicate.
    pub check: CaptionCheck,
    /// The same check of the class's labelled images with the predicate (the split the direction was fit on): whether the
    /// classifier's errors concentrate there (see the module's docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<CaptionCheck>,
}

/// A class's names: the hard side (what the failures look like) and the easy side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassNames {
    /// Images taken as the hardest and as the easiest.
    pub top: usize,
    /// Names over-represented among the hardest, best first.
    pub hard: Vec<AttributeName>,
    /// Names over-represented among the easiest, best first.
    pub easy: Vec<AttributeName>,
}

impl ClassNames {
    /// The first hard name that passes the held-out check.
    pub fn top_verified(&self) -> Option<&AttributeName> {
        self.hard.iter().find(|n| n.check.supported)
    }
}

/// Names one class: `decisions` are the direction's values for the class's discovery images (low = hard), `correct` flags the
/// classifier on its held-out images, `labelled` (when given) on the class's images of the split the direction was fit on,
/// and every candidate gives its predicate on each. The first [`NameConfig::names`] of [`rank_class`] on each side; names
/// of several classes at once are [`rank_class`] for each, then [`lead_with_shared`].
pub fn name_class(
    candidates: &[Candidate<'_>],
    decisions: &[f32],
    correct: &[bool],
    labelled: Option<&[bool]>,
    config: &NameConfig,
) -> ClassNames {
    let mut names = rank_class(candidates, decisions, correct, labelled, config);
    names.hard.truncate(config.names);
    names.easy.truncate(config.names);
    names
}

/// Every name of one class on each side, best first (see the module's docs), distinct ones leading the hard side; not cut
/// to [`NameConfig::names`].
pub fn rank_class(
    candidates: &[Candidate<'_>],
    decisions: &[f32],
    correct: &[bool],
    labelled: Option<&[bool]>,
    config: &NameConfig,
) -> ClassNames {
    let n = decisions.len();
    let top = ((config.top_fraction * n as f64).round() as usize).max(config.min_top).min(n / 2);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| decisions[a].total_cmp(&decisions[b]).then(a.cmp(&b)));
    let hardest = &order[..top];
    let easiest = &order[n - top..];
    let side = |picked: &[usize], hard: bool| -> Vec<AttributeName> {
        let mut names: Vec<(AttributeName, &str, &[bool])> = candidates
            .iter()
            .filter_map(|c| {
                assert_eq!(c.discovery.len(), n, "{}: one flag per discovery image", c.phrase);
                assert_eq!(c.held_out.len(), correct.len(), "{}: one flag per held-out image", c.phrase);
                let b = c.discovery.iter().filter(|&&x| x).count();
                let a = picked.iter().filter(|&&i| c.discovery[i]).count();
                let (share_top, share_class) = (a as f64 / top.max(1) as f64, b as f64 / n.max(1) as f64);
                if top == 0 || a == 0 || share_top <= share_class {
                    return None;
                }
                let p_value = hypergeometric_sf(a, n, b, top);
                if let Some(values) = c.values {
                    assert_eq!(values.len(), n, "{}: one value per discovery image", c.phrase);
                }
                let effect = match c.values {
                    Some(values) => measure_effect(values, c.discovery, picked),
                    None => (share_top - share_class) / (share_class * (1.0 - share_class)).sqrt().max(1e-9),
                };
                let with: Vec<usize> = (0..correct.len()).filter(|&i| c.held_out[i]).collect();
                let check = check_subset(correct, &with, config.level, hard);
                let errors = labelled.zip(c.labelled).map(|(right, flags)| {
                    assert_eq!(flags.len(), right.len(), "{}: one flag per labelled image", c.phrase);
                    let with: Vec<usize> = (0..right.len()).filter(|&i| flags[i]).collect();
                    check_subset(right, &with, config.level, hard)
                });
                let name = AttributeName {
                    phrase: c.phrase.to_string(),
                    family: c.family.to_string(),
                    share_top,
                    share_class,
                    lift: share_top / share_class,
                    p_value: p_value.max(0.0),
                    effect,
                    check,
                    errors,
                };
                Some((name, c.family, c.discovery))
            })
            .collect();
        names.sort_by(|x, y| x.0.p_value.total_cmp(&y.0.p_value).then(y.0.lift.total_cmp(&x.0.lift)));
        let names = by_evidence(names, picked);
        // One name per family, and one per set of images: predicates that pick nearly the same discovery images
        // ("grayscale" and "saturation ≤ 0", Jaccard similarity at least [`SAME_IMAGES`]) are one name, the better ranked.
        let (mut families, mut sets) = (std::collections::BTreeSet::new(), Vec::<&[bool]>::new());
        let mut kept = Vec::new();
        for (name, family, flags) in names {
            let repeats = sets.iter().any(|s| jaccard(s, flags) >= SAME_IMAGES);
            if !repeats && families.insert(family) {
                sets.push(flags);
                kept.push(name);
            }
        }
        kept
    };
    let mut hard = side(hardest, true);
    lead_with(&mut hard, |n| n.effect >= DISTINCT_EFFECT && n.p_value <= LEAD_P);
    ClassNames { top, hard, easy: side(easiest, false) }
}

/// A hard name whose hardest images moved this far from the class ([`AttributeName::effect`], in the class's robust
/// standard deviations) is distinct: it leads the class's names (with [`LEAD_P`]).
pub const DISTINCT_EFFECT: f64 = 1.0;

/// A name leads only if its over-representation p-value is at most this.
pub const LEAD_P: f64 = 1e-3;

/// A family significant ([`LEAD_P`]) among the hardest of at least this share of the other classes is shared.
pub const SHARED_SHARE: f64 = 0.6;

/// Moves the names that `leads` picks to the front, each side keeping its order.
fn lead_with(names: &mut Vec<AttributeName>, leads: impl Fn(&AttributeName) -> bool) {
    let (mut first, rest): (Vec<_>, Vec<_>) = std::mem::take(names).into_iter().partition(|n| leads(n));
    first.extend(rest);
    *names = first;
}

/// The names of several classes, each [`rank_class`]'s with its modes', put in their final order and cut to
/// [`NameConfig::names`]: on each hard side, the names distinct in their class ([`DISTINCT_EFFECT`]) first (those also
/// shared ahead of the others), then the names whose family is shared, over-represented among the hardest ([`LEAD_P`]) of
/// this class and of at least [`SHARED_SHARE`] of the other classes (counted on the classes' own names, not their
/// modes'), then the rest, each part in rank order. A failure of the model rather than of one class (a spurious cue planted in every class) reads as the
/// same name in most classes, where a class's own natural failure does not.
pub fn lead_with_shared(classes: &mut [ClassNames], modes: &mut [Vec<ClassNames>], config: &NameConfig) {
    let significant = |names: &ClassNames| -> std::collections::BTreeSet<String> {
        names.hard.iter().filter(|n| n.p_value <= LEAD_P).map(|n| n.family.clone()).collect()
    };
    let sets: Vec<_> = classes.iter().map(significant).collect();
    let others = classes.len().saturating_sub(1) as f64;
    let shared = |k: usize, family: &str| {
        let count = sets.iter().enumerate().filter(|(j, s)| *j != k && s.contains(family)).count();
        others > 0.0 && count as f64 >= SHARED_SHARE * others
    };
    let finish = |k: usize, names: &mut ClassNames| {
        lead_with(&mut names.hard, |n| n.p_value <= LEAD_P && shared(k, &n.family));
        lead_with(&mut names.hard, |n| n.effect >= DISTINCT_EFFECT && n.p_value <= LEAD_P);
        names.hard.truncate(config.names);
        names.easy.truncate(config.names);
    };
    for (k, names) in classes.iter_mut().enumerate() {
        finish(k, names);
    }
    for (k, class_modes) in modes.iter_mut().enumerate() {
        class_modes.iter_mut().for_each(|m| finish(k, m));
    }
}

/// Two predicates whose image sets overlap this much (intersection over union) name the same images.
pub const SAME_IMAGES: f64 = 0.9;

/// Two predicates are the same evidence when their hardest images overlap at least this much (intersection over union) and
/// they go together over the class ([`SAME_CLASS_LIFT`]).
pub const SAME_EVIDENCE: f64 = 0.6;
/// Two predicates go together over the class when they hold at once at least this many times as often as independent
/// predicates would (`n |A ∩ B| / (|A| |B|)`).
pub const SAME_CLASS_LIFT: f64 = 1.5;

/// Regroups names ranked by p-value by evidence (see the module's docs): each group's member of largest effect, in the
/// groups' order, then every other name in rank order.
fn by_evidence<'a, T>(
    names: Vec<(AttributeName, T, &'a [bool])>,
    picked: &[usize],
) -> Vec<(AttributeName, T, &'a [bool])> {
    let hits: Vec<Vec<bool>> = names.iter().map(|n| picked.iter().map(|&i| n.2[i]).collect()).collect();
    let mut grouped = vec![false; names.len()];
    let mut leaders = Vec::new();
    for seed in 0..names.len() {
        if grouped[seed] {
            continue;
        }
        let members: Vec<usize> = (seed..names.len())
            .filter(|&j| {
                !grouped[j]
                    && (j == seed
                        || jaccard(&hits[seed], &hits[j]) >= SAME_EVIDENCE
                            && co_lift(names[seed].2, names[j].2) >= SAME_CLASS_LIFT)
            })
            .collect();
        members.iter().for_each(|&j| grouped[j] = true);
        let lead =
            members.iter().copied().max_by(|&a, &b| names[a].0.effect.total_cmp(&names[b].0.effect).then(b.cmp(&a)));
        leaders.push(lead.unwrap_or(seed));
    }
    let order: Vec<usize> = leaders.iter().copied().chain((0..names.len()).filter(|j| !leaders.contains(j))).collect();
    let mut slots: Vec<Option<(AttributeName, T, &'a [bool])>> = names.into_iter().map(Some).collect();
    order.into_iter().filter_map(|j| slots[j].take()).collect()
}

/// The shift of the median of `log(v + ε)` over `picked` from the class's, in robust standard deviations of the class (1.4826
/// × the median absolute deviation), counted positive in the predicate's direction (down for a predicate that holds for low
/// values, whose images have a lower mean than the class's); ε is a hundredth of the class's median (or 1e-6), so zeros stay
/// finite.
fn measure_effect(values: &[f32], flags: &[bool], picked: &[usize]) -> f64 {
    let median = |v: &mut Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { 0.0 } else { 0.5 * (v[(v.len() - 1) / 2] + v[v.len() / 2]) }
    };
    let mut raw: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let eps = (0.01 * median(&mut raw)).max(1e-6);
    let logs: Vec<f64> = values.iter().map(|&v| (f64::from(v).max(0.0) + eps).ln()).collect();
    let center = median(&mut logs.clone());
    let mut spread = 1.4826 * median(&mut logs.iter().map(|l| (l - center).abs()).collect());
    if spread < 1e-9 {
        // More than half the class shares one value: the plain standard deviation, and no effect when all share it.
        let mean = logs.iter().sum::<f64>() / logs.len().max(1) as f64;
        spread = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len().max(1) as f64).sqrt();
        if spread < 1e-9 {
            return 0.0;
        }
    }
    let shift = median(&mut picked.iter().map(|&i| logs[i]).collect()) - center;
    let mean = |f: &dyn Fn(usize) -> bool| {
        let (sum, k) = (0..values.len()).filter(|&i| f(i)).fold((0.0, 0usize), |(s, k), i| (s + logs[i], k + 1));
        sum / k.max(1) as f64
    };
    let low = mean(&|i| flags[i]) < mean(&|_| true);
    if low { -shift / spread } else { shift / spread }
}

/// How many times as often two predicates hold together as independent ones would: `n |A ∩ B| / (|A| |B|)` (0 when one
/// never holds).
fn co_lift(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as f64;
    let (na, nb) = (a.iter().filter(|x| **x).count() as f64, b.iter().filter(|x| **x).count() as f64);
    if na == 0.0 || nb == 0.0 { 0.0 } else { a.len() as f64 * both / (na * nb) }
}

/// The intersection over the union of two sets of flags (1 for two empty sets).
fn jaccard(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if either == 0 { 1.0 } else { both as f64 / either as f64 }
}

#[cfg(test)]
mod tests;
