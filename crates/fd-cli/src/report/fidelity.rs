//! The fidelity table: each figure of a run beside the paper's value (method spec §7), `None` where the paper has no such number.

use serde::{Deserialize, Serialize};

use fd_svm::select::SelectionRule;

use super::{Setting, Summary};
use crate::config::RetrainMode;

/// One row of the fidelity table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidelityRow {
    /// What is measured.
    pub figure: String,
    /// Our value.
    pub ours: Option<f64>,
    /// The paper's value.
    pub paper: Option<f64>,
    /// Where the two differ in method, or where the paper's value comes from.
    pub note: String,
}

pub(super) fn row(
    figure: impl Into<String>,
    ours: Option<f64>,
    paper: Option<f64>,
    note: impl Into<String>,
) -> FidelityRow {
    FidelityRow { figure: figure.into(), ours, paper, note: note.into() }
}

/// The rows of `s` (its `fidelity` aside), with the architecture and space named as the config spells them.
pub(super) fn fidelity(s: &Summary, arch: &str, embedder: &str) -> Vec<FidelityRow> {
    let (paper_acc, paper_bal, paper_cv) = match s.setting {
        Setting::Superclass => (Some(0.6963), Some(0.713), None),
        Setting::Cifar10 => (Some(0.7905), Some(0.694), Some(0.667)),
        Setting::Attribute | Setting::Own => (None, None, None),
    };
    let source =
        if s.setting == Setting::Superclass { "paper: spurious CIFAR-100; ours: its CIFAR-10 analogue" } else { "" };
    let mut rows = vec![
        row(
            "classifier test accuracy",
            s.test_accuracy(),
            paper_acc,
            format!("paper: CIFAR ResNet-18, 35 epochs, batch 512; ours: {arch}. {source}"),
        ),
        row(
            "mean 2-fold CV balanced accuracy of the SVMs on val",
            Some(s.svm.mean_cv_balanced_accuracy),
            paper_cv,
            format!("paper: CLIP ViT-B/32 space; ours: {embedder}"),
        ),
        row("SVM balanced accuracy on test (all classes)", Some(s.svm.test_balanced_accuracy), paper_bal, source),
    ];
    for c in &s.svm.classes {
        rows.push(row(
            format!("SVM balanced accuracy on test, class {}", c.class),
            Some(c.test_balanced_accuracy),
            None,
            "the paper publishes no per-class test values",
        ));
    }
    rows.extend(caption_rows(s));
    rows.extend(planted_rows(s));
    rows.extend(intervention_rows(s));
    rows.extend(super::generated::rows(s));
    rows
}

fn caption_rows(s: &Summary) -> Vec<FidelityRow> {
    let k = s.captions.k;
    let cifar = s.setting == Setting::Cifar10 && k == 20;
    vec![
        row(
            format!("accuracy of the {k} test images nearest the hard caption (mean over classes)"),
            s.captions.hard_accuracy_mean,
            cifar.then_some(0.59),
            "paper: WordNet captions in CLIP space (0.65 with the simple captions); ours: the space's own vocabulary",
        ),
        row(
            format!("accuracy of the {k} test images nearest the easy caption (mean over classes)"),
            s.captions.easy_accuracy_mean,
            cifar.then_some(0.85),
            "",
        ),
        row("class accuracy on test (mean over classes)", s.captions.class_accuracy_mean, cifar.then_some(0.79), ""),
    ]
    .into_iter()
    .chain(s.names.as_ref().map(|n| {
        row(
            "classes whose failures have an image-attribute name verified on test",
            Some(n.verified_classes as f64),
            None,
            "the describe stage (no paper figure: the paper names failures with captions only)",
        )
    }))
    .collect()
}

fn planted_rows(s: &Summary) -> Vec<FidelityRow> {
    let Some(p) = &s.planted else { return Vec::new() };
    let sc = s.setting == Setting::Superclass;
    vec![
        row(
            "planted group among the top 10 per class, by SVM",
            p.svm.at(10),
            sc.then_some(0.68),
            "paper: read from a plot",
        ),
        row(
            "planted group among the top 10 per class, by confidence",
            p.confidence.at(10),
            sc.then_some(0.455),
            "paper: read from a plot",
        ),
        row("planted group among the top 100 per class, by SVM", p.svm.at(100), None, ""),
        row("planted group among the top 100 per class, by confidence", p.confidence.at(100), None, ""),
        row("planted group base rate per class", p.base_rate, sc.then_some(0.20), ""),
    ]
}

/// The paper's value for an intervention's figure (hard-caption or minority accuracy), where it has one.
fn paper_intervention(setting: Setting, rule: &str, k: Option<usize>) -> Option<f64> {
    match (setting, rule, k) {
        (Setting::Cifar10, "none", _) => Some(0.585),
        (Setting::Cifar10, "svm", Some(100)) => Some(0.695),
        (Setting::Cifar10, "random", Some(100)) => Some(0.675),
        (Setting::Cifar10, "confidence", Some(100)) => Some(0.66),
        (Setting::Superclass, "none", _) => Some(0.4345),
        (Setting::Superclass, "svm", Some(75)) => Some(0.519),
        (Setting::Superclass, "confidence", Some(75)) => Some(0.4985),
        (Setting::Superclass, "random", Some(75)) => Some(0.4915),
        _ => None,
    }
}

fn intervention_rows(s: &Summary) -> Vec<FidelityRow> {
    let planted = s.planted.is_some();
    let what = if planted { "minority test accuracy" } else { "hard-caption subpopulation accuracy" };
    let mut rows = Vec::new();
    // Each retraining run once from scratch; those under `[intervene] seeds`, last-layer ones and the control are the
    // repeated rows' (below).
    let once = |v: &&super::Intervention| {
        v.generated.is_none() && v.seed.is_none() && v.mode.is_none() && v.rule != Some(SelectionRule::Nothing)
    };
    for v in s.intervention.iter().filter(once) {
        let rule = v.rule.map_or("none", |r| r.name());
        let k = v.k.map_or(String::new(), |k| k.to_string());
        let (label, test_label) = if v.rule.is_none() {
            (format!("{what}, no intervention"), "test accuracy, no intervention".to_string())
        } else {
            (
                format!("{what} after adding {k} pool images per class by {rule}"),
                format!("test accuracy, {rule}, K = {k}"),
            )
        };
        let value = if planted { v.minority_accuracy } else { v.hard_caption_accuracy };
        rows.push(row(
            label,
            value,
            paper_intervention(s.setting, rule, v.k),
            "paper: one model per setting read from plots (10 runs on CIFAR-10); ours: one run",
        ));
        rows.push(row(test_label, v.test_accuracy, None, ""));
    }
    for g in &s.repeated {
        let (rule, n, scratch) = (g.rule.name(), g.seeds.len(), g.mode == RetrainMode::Scratch);
        let how = if scratch { "from scratch" } else { "last layer only" };
        let label = if g.rule == SelectionRule::Nothing {
            format!("{what}, nothing added, retrained {how}, mean of {n} seeds")
        } else {
            format!("{what} after adding {} pool images per class by {rule}, retrained {how}, mean of {n} seeds", g.k)
        };
        let spread = if planted { &g.minority_accuracy } else { &g.hard_caption_accuracy };
        // The paper's figures are means of from-scratch retrainings; its last-layer runs are the generative ones.
        let paper = if scratch { paper_intervention(s.setting, rule, Some(g.k)) } else { None };
        rows.push(row(
            label,
            spread.as_ref().map(|v| v.mean),
            paper,
            "paper: 10 runs, read from plots; ours: mean over seeds",
        ));
        let test = g.test_accuracy.as_ref().map(|v| v.mean);
        rows.push(row(
            format!("test accuracy, {rule}, K = {}, retrained {how}, mean of {n} seeds", g.k),
            test,
            None,
            "",
        ));
    }
    rows
}
