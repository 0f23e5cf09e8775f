//! Naming a failure direction by what its images look like: the image attributes and tags most over-represented among the images
//! the direction ranks hardest (or easiest) against the class as a whole, each then verified on held-out images.
//!
//! The candidates are predicates over images ("dark images", "against a blue background"), given on two splits: a discovery
//! split that the direction ranks (the extra pool) and a held-out one (test). On discovery, among the class's `n` images `b`
//! have the predicate and `a` of the `k` hardest do; the over-representation p-value is the exact hypergeometric probability of
//! `a` or more, and the lift is `(a / k) / (b / n)`. A name is kept when its share among the hardest is above the class's, and
//! names are ranked by p-value, then lift, and only the best of each family (one measure at several thresholds) is kept, and
//! of predicates that pick nearly the same discovery images only the best ranked. On held-out images, the classifier's accuracy on the class's images with the
//! predicate is compared with its accuracy on the class, as the caption check does ([`crate::check`]): for a hard name, the
//! exact probability of as few correct or fewer; for an easy name, of as many or more. A name is supported below the level.

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
    /// Its share among the hardest (or easiest) discovery images.
    pub share_top: f64,
    /// Its share among all the class's discovery images.
    pub share_class: f64,
    /// `share_top / share_class`.
    pub lift: f64,
    /// The over-representation p-value on discovery.
    pub p_value: f64,
    /// The held-out check of the images with the predicate.
    pub check: CaptionCheck,
}

/// A class's names: the hard side (what the failures look like) and the easy side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
/// classifier on its held-out images, and every candidate gives its predicate on both.
pub fn name_class(
    candidates: &[Candidate<'_>],
    decisions: &[f32],
    correct: &[bool],
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
                let with: Vec<usize> = (0..correct.len()).filter(|&i| c.held_out[i]).collect();
                let check = check_subset(correct, &with, config.level, hard);
                let name = AttributeName {
                    phrase: c.phrase.to_string(),
                    share_top,
                    share_class,
                    lift: share_top / share_class,
                    p_value: p_value.max(0.0),
                    check,
                };
                Some((name, c.family, c.discovery))
            })
            .collect();
        names.sort_by(|x, y| x.0.p_value.total_cmp(&y.0.p_value).then(y.0.lift.total_cmp(&x.0.lift)));
        // One name per family, and one per set of images: predicates that pick nearly the same discovery images
        // ("grayscale" and "saturation ≤ 0", Jaccard similarity at least [`SAME_IMAGES`]) are one name, the better ranked.
        let (mut families, mut sets) = (std::collections::BTreeSet::new(), Vec::<&[bool]>::new());
        let mut kept = Vec::new();
        for (name, family, flags) in names {
            let repeats = sets.iter().any(|s| jaccard(s, flags) >= SAME_IMAGES);
            if kept.len() < config.names && !repeats && families.insert(family) {
                sets.push(flags);
                kept.push(name);
            }
        }
        kept
    };
    ClassNames { top, hard: side(hardest, true), easy: side(easiest, false) }
}

/// Two predicates whose image sets overlap this much (intersection over union) name the same images.
pub const SAME_IMAGES: f64 = 0.9;

/// The intersection over the union of two sets of flags (1 for two empty sets).
fn jaccard(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if either == 0 { 1.0 } else { both as f64 / either as f64 }
}

#[cfg(test)]
mod tests;
