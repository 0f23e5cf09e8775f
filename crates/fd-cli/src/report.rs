//! The report: `summary.json` (every figure the paper reports, beside the paper's value, method spec §7) and `report.html`
//! (static and self-contained: images as data URIs, plots as inline SVG, no script from elsewhere). Everything here is computed from typed artifacts handed in as [`ReportInputs`]; nothing reads the run directory.

mod fidelity;
mod figures;
mod generated;
mod html;
mod plot;
mod repeated;

use std::collections::HashMap;

use fd_svm::metrics::{Recovery, finite_mean, planted_classes, planted_recovery};
use fd_svm::select::SelectionRule;

use crate::artifacts::RetrainKey;
use crate::config::RetrainMode;
use serde::{Deserialize, Serialize};

use crate::artifacts::{
    CaptionsFile, ClassFit, EvaluateSummary, FitSummary, JsonArtifact, PartAccuracy, Scored, Version,
};

pub use fidelity::FidelityRow;
pub use figures::{ClassModeFigures, ClassTopName, ModeFigures, NameFigures};
pub use generated::{GeneratedFigures, GeneratedRetrained};
pub use html::html;
pub use repeated::{Paired, Repeated, Spread};

/// The top-K sizes of the planted-group figures.
pub const TOP_K: [usize; 7] = [5, 10, 20, 50, 100, 200, 500];

/// Which of the paper's settings a config is the analogue of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// Plain CIFAR-10 (§3, §4).
    Cifar10,
    /// A superclass task with a rare subclass (the paper's spurious CIFAR-100).
    Superclass,
    /// A planted attribute.
    Attribute,
    /// The user's own dataset on disk (no paper figure to compare with; a `group` column gives planted figures).
    Own,
}

impl Setting {
    /// The setting of a dataset config.
    pub fn of(data: &fd_data::DataConfig) -> Setting {
        match (&data.dataset, &data.planted) {
            (fd_data::DatasetConfig::Folder(_), _) => Setting::Own,
            (_, Some(fd_data::PlantedConfig::Superclass(_))) => Setting::Superclass,
            (_, Some(_)) => Setting::Attribute,
            (_, None) => Setting::Cifar10,
        }
    }
}

/// One retrained classifier's test evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrained {
    /// Which retraining.
    pub key: crate::artifacts::RetrainKey,
    /// The test images' dataset indices.
    pub indices: Vec<usize>,
    /// Whether it got each right.
    pub correct: Vec<bool>,
}

/// What the report is made from, every piece typed.
#[derive(Debug, Clone)]
pub struct ReportInputs<'a> {
    /// The run's name (the run directory's).
    pub name: String,
    /// The paper's setting this run is the analogue of.
    pub setting: Setting,
    /// The classifier's architecture, as the config spells it.
    pub architecture: String,
    /// The latent space, as the config spells it.
    pub embedder: String,
    /// `evaluate.json`.
    pub classifier: &'a EvaluateSummary,
    /// `fit.json`.
    pub fit: &'a FitSummary,
    /// `captions.json`.
    pub captions: &'a CaptionsFile,
    /// `names.json`, when the describe stage ran.
    pub names: Option<&'a crate::artifacts::NamesFile>,
    /// The failure modes, when the discover stage ran.
    pub modes: Option<&'a crate::artifacts::ModesFile>,
    /// The caption subpopulations' size.
    pub caption_k: usize,
    /// The test part.
    pub test: &'a Scored,
    /// The SVM decision value of each test row (0 for a class without an SVM).
    pub decisions: &'a [f64],
    /// For planted datasets, whether each test row is in the planted group.
    pub planted: Option<&'a [bool]>,
    /// The number of classes.
    pub num_classes: usize,
    /// The class names.
    pub class_names: &'a [String],
    /// The test set the test part's dataset indices point into (for the page's images).
    pub test_images: &'a fd_data::Images,
    /// The retrained classifiers, in rule and K order.
    pub retrained: Vec<Retrained>,
    /// The last layers retrained on generated images.
    pub generated: Vec<GeneratedRetrained>,
    /// Each finished stage's time.
    pub stages: Vec<StageTime>,
}

/// A stage's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageTime {
    /// The stage.
    pub stage: String,
    /// Seconds.
    pub seconds: f64,
}

/// The SVMs' figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmFigures {
    /// The mean of the fitted classes' CV balanced accuracy on val.
    pub mean_cv_balanced_accuracy: f64,
    /// The SVMs' balanced accuracy on test.
    pub test_balanced_accuracy: f64,
    /// Per class.
    pub classes: Vec<ClassFit>,
}

/// The captions' figures, means over the captioned classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionFigures {
    /// The subpopulations' size.
    pub k: usize,
    /// The accuracy of the K test images nearest the hard caption.
    pub hard_accuracy_mean: Option<f64>,
    /// The same for the easy caption.
    pub easy_accuracy_mean: Option<f64>,
    /// The classifier's accuracy on the class.
    pub class_accuracy_mean: Option<f64>,
    /// Classes whose hard caption passed the held-out check.
    pub supported: usize,
    /// Classes with captions.
    pub captioned_classes: usize,
}

/// How well the SVM and, for comparison, low confidence rank the planted group first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantedFigures {
    /// Classes with planted test images (only they count).
    pub classes_with_planted_images: usize,
    /// The planted group's mean share of those classes.
    pub base_rate: Option<f64>,
    /// Ranked by SVM decision value.
    pub svm: Recovery,
    /// Ranked by the classifier's true-class confidence.
    pub confidence: Recovery,
}

/// One classifier's figures: the original (`rule` none) or a retrained one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intervention {
    /// The selection rule, `None` for no intervention.
    pub rule: Option<SelectionRule>,
    /// Images added per class.
    pub k: Option<usize>,
    /// Test accuracy.
    pub test_accuracy: Option<f64>,
    /// Accuracy on each class's hard-caption subpopulation, averaged over classes.
    pub hard_caption_accuracy: Option<f64>,
    /// The same over the classes whose hardest caption the caption stage's check supported (its subpopulation a
    /// significant failure); `None` when no class's is. Where most hardest captions are not failures (a latent space whose
    /// captions are class names of another dataset), this is the figure on which to compare rules, by their paired
    /// difference against random: the classes are chosen by the original classifier's errors on these very images, so
    /// any retraining's figure regresses upward from the original's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_caption_accuracy: Option<f64>,
    /// Accuracy on the planted group's test images.
    pub minority_accuracy: Option<f64>,
    /// For the generative intervention: the kind of generated image and the classifiers' accuracy on such images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedFigures>,
    /// The seed of `[intervene] seeds` it was retrained under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How it was retrained (absent: from scratch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RetrainMode>,
}

impl Intervention {
    /// `none`, `<rule>-k<K>` or `generated-<kind>`.
    pub fn name(&self) -> String {
        if let Some(g) = &self.generated {
            return format!("generated-{}", g.kind);
        }
        match (self.rule, self.k) {
            (Some(rule), Some(k)) => {
                let mode = self.mode.unwrap_or(RetrainMode::Scratch);
                crate::artifacts::RetrainKey { rule, k, seed: self.seed, mode }.name()
            }
            _ => "none".into(),
        }
    }
}

/// `summary.json`: every figure of the run, and the fidelity table against the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The format.
    pub format_version: Version<1>,
    /// The paper's setting this run is the analogue of.
    pub setting: Setting,
    /// The classifier's accuracy on every part.
    pub classifier: Vec<PartAccuracy>,
    /// The SVMs.
    pub svm: SvmFigures,
    /// The captions.
    pub captions: CaptionFigures,
    /// The planted group, for planted datasets.
    pub planted: Option<PlantedFigures>,
    /// The names from image attributes, when the describe stage ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<NameFigures>,
    /// The failure modes, when the discover stage ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<ModeFigures>,
    /// No intervention, then each retraining.
    pub intervention: Vec<Intervention>,
    /// The retrainings per mode, rule and K over their seeds: each figure's mean, spread and paired difference against
    /// random.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeated: Vec<Repeated>,
    /// Each finished stage's time.
    pub stages: Vec<StageTime>,
    /// Each figure beside the paper's.
    pub fidelity: Vec<FidelityRow>,
}

impl JsonArtifact for Summary {
    const FILE: &'static str = "summary.json";
    const STAGE: &'static str = "report";
}

impl Summary {
    /// The classifier's test accuracy.
    pub fn test_accuracy(&self) -> Option<f64> {
        self.classifier.iter().find(|p| p.part.is_test()).map(|p| p.accuracy)
    }
}

/// Accuracy on the images of `indices` that `correct` knows.
fn accuracy_on(correct: &HashMap<usize, bool>, indices: &[usize]) -> Option<f64> {
    finite_mean(indices.iter().filter_map(|i| correct.get(i)).map(|&c| f64::from(u8::from(c))))
}

/// The numbers: classifier, SVMs, captions, planted groups, interventions, stage times, and the fidelity table.
pub fn summary(inputs: &ReportInputs<'_>) -> Summary {
    let captioned: Vec<_> = inputs.captions.classes.iter().filter_map(|c| c.captions()).collect();
    let captions = CaptionFigures {
        k: inputs.caption_k,
        hard_accuracy_mean: finite_mean(captioned.iter().map(|c| c.hard().check.accuracy)),
        easy_accuracy_mean: finite_mean(captioned.iter().map(|c| c.easy().check.accuracy)),
        class_accuracy_mean: finite_mean(captioned.iter().map(|c| c.class_accuracy)),
        supported: captioned.iter().filter(|c| c.hard().check.supported).count(),
        captioned_classes: captioned.len(),
    };
    let test = inputs.test;
    let planted = inputs.planted.map(|in_group| {
        let (classes, base_rate) = planted_classes(&test.labels, in_group, inputs.num_classes);
        PlantedFigures {
            classes_with_planted_images: classes.len(),
            base_rate,
            svm: planted_recovery(inputs.decisions, &test.labels, in_group, &classes, &TOP_K),
            confidence: planted_recovery(&test.confidence, &test.labels, in_group, &classes, &TOP_K),
        }
    });
    let minority: Option<Vec<usize>> =
        inputs.planted.map(|g| test.indices.iter().zip(g).filter(|&(_, &planted)| planted).map(|(&i, _)| i).collect());
    let figures = |key: Option<RetrainKey>, indices: &[usize], right: &[bool]| {
        let correct: HashMap<usize, bool> = indices.iter().copied().zip(right.iter().copied()).collect();
        Intervention {
            rule: key.map(|k| k.rule),
            k: key.map(|k| k.k),
            seed: key.and_then(|k| k.seed),
            mode: key.map(|k| k.mode).filter(|&m| m != RetrainMode::Scratch),
            test_accuracy: finite_mean(right.iter().map(|&c| f64::from(u8::from(c)))),
            hard_caption_accuracy: finite_mean(
                captioned.iter().filter_map(|c| accuracy_on(&correct, &c.hard_subpopulation)),
            ),
            supported_caption_accuracy: finite_mean(
                captioned
                    .iter()
                    .filter(|c| c.hard().check.supported)
                    .filter_map(|c| accuracy_on(&correct, &c.hard_subpopulation)),
            ),
            minority_accuracy: minority.as_ref().and_then(|m| accuracy_on(&correct, m)),
            generated: None,
        }
    };
    let mut intervention = vec![figures(None, &test.indices, &test.correct)];
    intervention.extend(inputs.retrained.iter().map(|r| figures(Some(r.key), &r.indices, &r.correct)));
    intervention.extend(
        inputs
            .generated
            .iter()
            .map(|g| Intervention { generated: Some(g.figures.clone()), ..figures(None, &g.indices, &g.correct) }),
    );
    let repeated = repeated::repeated(&intervention);
    let mut summary = Summary {
        format_version: Version,
        setting: inputs.setting,
        classifier: inputs.classifier.parts.clone(),
        svm: SvmFigures {
            mean_cv_balanced_accuracy: inputs.fit.mean_cv_balanced_accuracy,
            test_balanced_accuracy: inputs.fit.test_balanced_accuracy,
            classes: inputs.fit.classes.clone(),
        },
        captions,
        planted,
        names: inputs.names.map(figures::name_figures),
        modes: inputs.modes.map(figures::mode_figures),
        intervention,
        repeated,
        stages: inputs.stages.clone(),
        fidelity: Vec::new(),
    };
    summary.fidelity = fidelity::fidelity(&summary, &inputs.architecture, &inputs.embedder);
    summary
}

/// The fidelity table as text, one row a line.
pub fn table(summary: &Summary) -> String {
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let mut out = format!("report: {:<78} {:>8} {:>8}\n", "figure", "ours", "paper");
    for r in &summary.fidelity {
        out.push_str(&format!("report: {:<78} {:>8} {:>8}\n", r.figure, fmt(r.ours), fmt(r.paper)));
    }
    out
}

#[cfg(test)]
mod tests;
