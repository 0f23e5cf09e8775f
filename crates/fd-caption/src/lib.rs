//! fd-caption: words for each failure direction (method spec §2), and evidence for them.
//!
//! - [`vocabulary`]: the paper's caption sets as data (`data/vocabularies.json`, made by `data/make_vocabularies.py`), and the template builder with correct "a"/"an" (the paper's output without the fix stays available).
//! - [`score`]: §2.2's scoring: subtract the reference caption's embedding (the image preprocessing and the class's SVM are fd-svm's, applied by the caller); the hardest (negative) and easiest (positive) captions.
//! - [`class`]: one class's caption work: the top captions with their checks, accuracy against K, the caption subpopulations; and the `[caption]` config.
//! - [`subpopulation`]: the images nearest a caption by cosine similarity.
//! - [`check`]: the held-out check no peer makes: is the model really worse on the images nearest a caption, on a split the SVM never saw?
//!   An exact hypergeometric p-value answers it, and a caption whose images are not harder than the class is flagged as unsupported.
//!
//! Invariants: plain data in (embeddings as `&[f32]` rows with a `dim`, scores), values out; no `fd-*` crate, no tensor framework, no I/O.
//! Broken contracts are asserts; a vocabulary or config that a user wrote is checked by [`vocabulary::Vocabulary::check`] and [`class::CaptionConfig::check`], which say what is wrong.

pub mod check;
pub mod class;
pub mod names;
pub mod score;
pub mod subpopulation;
pub mod vocabulary;

#[cfg(test)]
mod tests;
