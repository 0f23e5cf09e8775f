//! The generative intervention in the report: each kind of generated image's last-layer retraining, as rows of the
//! intervention list, the fidelity table (beside the paper's §4.2 figures) and the page.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{FidelityRow, Intervention, Setting, Summary};

/// The generated images' own figures of one retraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedFigures {
    /// `hard`, `easy` or `reference`.
    pub kind: String,
    /// The original classifier's accuracy on all the generated images of the kind (the paper's 36.9% for hard).
    pub on_images: Option<f64>,
    /// The original classifier's accuracy on the held-out generated images (every fifth, not trained on).
    pub held_out_before: Option<f64>,
    /// The retrained classifier's accuracy on them.
    pub held_out_after: Option<f64>,
}

/// One finished last-layer retraining on generated images.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedRetrained {
    /// The generated images' figures.
    pub figures: GeneratedFigures,
    /// The test images' dataset indices.
    pub indices: Vec<usize>,
    /// Whether the retrained classifier got each right.
    pub correct: Vec<bool>,
}

/// The paper's CIFAR-10 figures for a kind (the original classifier on the generated images; test accuracy after),
/// method spec §4.2 (b).
fn paper(setting: Setting, kind: &str) -> (Option<f64>, Option<f64>) {
    match (setting, kind) {
        (Setting::Cifar10, "hard") => (Some(0.369), Some(0.7999)),
        (Setting::Cifar10, "easy") => (Some(0.676), Some(0.8006)),
        (Setting::Cifar10, "reference") => (Some(0.685), Some(0.8014)),
        _ => (None, None),
    }
}

/// Fidelity rows of the generated retrainings.
pub(super) fn rows(s: &Summary) -> Vec<FidelityRow> {
    let note = "paper: CIFAR-10, 100 images per class, mean of 15 retrainings; ours: one";
    let mut rows = Vec::new();
    for v in &s.intervention {
        let Some(g) = &v.generated else { continue };
        let kind = &g.kind;
        let (on_images, test) = paper(s.setting, kind);
        rows.push(super::fidelity::row(
            format!("original classifier's accuracy on {kind}-caption generated images"),
            g.on_images,
            on_images,
            note,
        ));
        rows.push(super::fidelity::row(
            format!("accuracy on held-out {kind}-caption generated images, before and after retraining (after)"),
            g.held_out_after,
            None,
            format!("before: {}", g.held_out_before.map_or("-".into(), |b| format!("{b:.3}"))),
        ));
        rows.push(super::fidelity::row(
            format!("test accuracy after retraining the last layer with {kind}-caption generated images"),
            v.test_accuracy,
            test,
            note,
        ));
        rows.push(super::fidelity::row(
            format!("hard-caption subpopulation accuracy after the {kind}-caption images"),
            v.hard_caption_accuracy,
            None,
            "",
        ));
    }
    rows
}

/// The page's table of the generative intervention (empty without one).
pub(super) fn table(summary: &Summary) -> String {
    let generated: Vec<&Intervention> = summary.intervention.iter().filter(|v| v.generated.is_some()).collect();
    if generated.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Generative intervention</h2><p>The last layer retrained on the train split plus the images generated from \
         each class's captions (method spec §4.2).</p><table><tr><th>images</th><th>original classifier on them</th>\
         <th>held-out generated, before</th><th>after</th><th>test accuracy after</th>\
         <th>hard-caption subpopulation accuracy after</th></tr>",
    );
    for v in generated {
        let g = v.generated.as_ref().expect("filtered");
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            super::plot::esc(&v.name()),
            super::html::fmt(g.on_images),
            super::html::fmt(g.held_out_before),
            super::html::fmt(g.held_out_after),
            super::html::fmt(v.test_accuracy),
            super::html::fmt(v.hard_caption_accuracy)
        );
    }
    h.push_str("</table>");
    h
}
