//! The describe stage's artifact: `names.json`, each class's failure (and each failure mode) named by image attributes.

use serde::{Deserialize, Serialize};

use super::{JsonArtifact, Version};

/// `names.json`: each class's failure named by image attributes (fd-caption's `names`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamesFile {
    /// The format.
    pub format_version: Version<1>,
    /// How names were found.
    pub config: fd_caption::names::NameConfig,
    /// The split the directions ranked (extra, or val when the pool is empty).
    pub discovery: fd_data::SplitPart,
    /// One entry per class.
    pub classes: Vec<ClassNamesEntry>,
}
json_artifact!(NamesFile, "names.json", "describe");

/// One class's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassNamesEntry {
    /// The class.
    pub class: u16,
    /// Its name.
    pub name: String,
    /// The names, or why there are none.
    pub outcome: NamesOutcome,
    /// When the class has several failure modes (`modes.json`), each mode's names, in the modes' order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<fd_caption::names::ClassNames>,
}

/// A class's names or the reason it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NamesOutcome {
    /// Named: the hard and easy names, and the test images carrying the first hard name (dataset indices).
    Named {
        /// The names.
        names: fd_caption::names::ClassNames,
        /// Test images with the first hard name's predicate.
        top_name_images: Vec<usize>,
    },
    /// Not named, and why.
    Skipped {
        /// The reason.
        reason: String,
    },
}
