//! The names' and the failure modes' figures of `summary.json`.

use serde::{Deserialize, Serialize};

/// The names from image attributes: per class its first hard name and whether it passed the held-out check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameFigures {
    /// Classes with names.
    pub named_classes: usize,
    /// Classes with at least one hard name that passed the held-out check.
    pub verified_classes: usize,
    /// Per named class: its first verified hard name (else its first hard name, unverified).
    pub classes: Vec<ClassTopName>,
}

/// The failure modes: per class how many and each one's held-out check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeFigures {
    /// Classes with several modes.
    pub split_classes: usize,
    /// Per class with an SVM: its modes' checks, hardest first (one, the paper's direction, when it has one mode).
    pub classes: Vec<ClassModeFigures>,
}

/// One class's modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassModeFigures {
    /// The class.
    pub class: u16,
    /// Each mode's check on its hardest test images.
    pub checks: Vec<fd_caption::check::CaptionCheck>,
}

pub(super) fn mode_figures(modes: &crate::artifacts::ModesFile) -> ModeFigures {
    ModeFigures {
        split_classes: modes.classes.iter().filter(|c| c.split).count(),
        classes: modes
            .classes
            .iter()
            .map(|c| ClassModeFigures { class: c.class, checks: c.modes.iter().map(|m| m.check.clone()).collect() })
            .collect(),
    }
}

/// One class's leading name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassTopName {
    /// The class.
    pub class: u16,
    /// Its leading hard name, if any.
    pub phrase: Option<String>,
    /// Whether it passed the held-out check.
    pub verified: bool,
}

pub(super) fn name_figures(names: &crate::artifacts::NamesFile) -> NameFigures {
    use crate::artifacts::NamesOutcome;
    let classes: Vec<ClassTopName> = names
        .classes
        .iter()
        .filter_map(|c| match &c.outcome {
            NamesOutcome::Named { names, .. } => {
                let top = names.top_verified().or(names.hard.first());
                Some(ClassTopName {
                    class: c.class,
                    phrase: top.map(|n| n.phrase.clone()),
                    verified: top.is_some_and(|n| n.check.supported),
                })
            }
            NamesOutcome::Skipped { .. } => None,
        })
        .collect();
    NameFigures {
        named_classes: classes.len(),
        verified_classes: classes.iter().filter(|c| c.verified).count(),
        classes,
    }
}
