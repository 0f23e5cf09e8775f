//! One class's caption work (method spec §2.2 and §2.3): from the candidates' scores, the hardest (negative) and easiest (positive)
//! captions, each checked on held-out images, the accuracy of the images nearest the top captions against K, and those images.

use serde::{Deserialize, Serialize};

use crate::check::{CaptionCheck, check_caption};
use crate::score::top_captions;
use crate::subpopulation::nearest_images;

/// The subpopulation sizes of the accuracy-against-K curves.
pub const CURVE_K: [usize; 8] = [5, 10, 20, 50, 100, 200, 300, 500];

/// The `[caption]` section of an experiment config: how many captions to keep and how to check them on held-out images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionConfig {
    /// Images per caption subpopulation: the K held-out images of the class nearest the caption (the paper's 20).
    pub k: usize,
    /// Negative and positive captions kept per class.
    pub top: usize,
    /// The significance level of the held-out check.
    pub alpha: f64,
    /// The caption set for an open-vocabulary space (CLIP): one of the built-in sets ([`crate::vocabulary::vocabulary_names`],
    /// default `cifar10-simple`) or a `.json` file in the same format; a closed space (EfficientNet) always uses its own class names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<String>,
}

impl Default for CaptionConfig {
    fn default() -> CaptionConfig {
        CaptionConfig { k: 20, top: 5, alpha: 0.05, vocabulary: None }
    }
}

impl CaptionConfig {
    /// Checks the values once: k and top positive, alpha in (0, 1).
    pub fn check(&self) -> Result<(), String> {
        if self.k == 0 || self.top == 0 || !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!(
                "caption: k = {}, top = {}, alpha = {}: expected k, top > 0 and 0 < alpha < 1",
                self.k, self.top, self.alpha
            ));
        }
        Ok(())
    }
}

/// One class's candidates and held-out images, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct ClassInput<'a> {
    /// The candidate captions.
    pub captions: &'a [String],
    /// Their embeddings, `dim` values a caption.
    pub texts: &'a [f32],
    /// Their scores under the class's SVM (low = hard).
    pub scores: &'a [f64],
    /// The class's held-out image embeddings, `dim` values a row.
    pub images: &'a [f32],
    /// Whether the classifier got each of those images right.
    pub correct: &'a [bool],
    /// The dataset index of each of those images.
    pub ids: &'a [usize],
    /// The embedding dimension.
    pub dim: usize,
}

/// A caption with its score and its held-out check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckedCaption {
    /// The caption.
    pub caption: String,
    /// Its score under the class's SVM.
    pub score: f64,
    /// The held-out check of its nearest images.
    pub check: CaptionCheck,
}

/// The accuracy of the classifier on the K held-out images nearest a caption.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    /// K.
    pub k: usize,
    /// The accuracy on those K images.
    pub accuracy: f64,
}

/// One class's captions and their evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCaptions {
    /// The number of candidate captions.
    pub vocabulary_size: usize,
    /// The classifier's accuracy on the class's held-out images.
    pub class_accuracy: f64,
    /// The lowest-scoring captions, hardest first.
    pub negative: Vec<CheckedCaption>,
    /// The highest-scoring captions, easiest first.
    pub positive: Vec<CheckedCaption>,
    /// The accuracy of the images nearest the hardest caption, for each K of [`CURVE_K`] the class reaches.
    pub hard_curve: Vec<CurvePoint>,
    /// The same for the easiest caption.
    pub easy_curve: Vec<CurvePoint>,
    /// The dataset indices of the `k` held-out images nearest the hardest caption (the hard subpopulation).
    pub hard_subpopulation: Vec<usize>,
    /// The same for the easiest caption.
    pub easy_subpopulation: Vec<usize>,
}

impl ClassCaptions {
    /// The hardest caption.
    pub fn hard(&self) -> &CheckedCaption {
        &self.negative[0]
    }

    /// The easiest caption.
    pub fn easy(&self) -> &CheckedCaption {
        &self.positive[0]
    }
}

/// Names one class: the `config.top` lowest- and highest-scoring captions, each checked on its `config.k` nearest held-out images
/// at level `config.alpha`, the accuracy-against-K curves of the top two, and their subpopulations.
///
/// # Panics
/// When there is no caption, or the lengths disagree with `dim`: callers check vocabularies when they load them.
pub fn caption_class(input: &ClassInput<'_>, config: &CaptionConfig) -> ClassCaptions {
    let ClassInput { captions, texts, scores, images, correct, ids, dim } = *input;
    assert!(!captions.is_empty(), "a class needs at least one caption");
    assert!(
        texts.len() == captions.len() * dim && scores.len() == captions.len(),
        "captions, texts and scores disagree"
    );
    assert!(images.len() == correct.len() * dim && ids.len() == correct.len(), "images, flags and ids disagree");
    let (negative, positive) = top_captions(scores, config.top);
    let text = |t: usize| &texts[t * dim..(t + 1) * dim];
    let order = |t: usize| nearest_images(text(t), images, correct.len());
    let checked = |t: usize| CheckedCaption {
        caption: captions[t].clone(),
        score: scores[t],
        check: check_caption(correct, &order(t)[..config.k.min(correct.len())], config.alpha),
    };
    let curve = |t: usize| -> Vec<CurvePoint> {
        let order = order(t);
        CURVE_K
            .iter()
            .filter(|&&k| k <= order.len())
            .map(|&k| CurvePoint { k, accuracy: order[..k].iter().filter(|&&i| correct[i]).count() as f64 / k as f64 })
            .collect()
    };
    let subpopulation = |t: usize| -> Vec<usize> { order(t).iter().take(config.k).map(|&i| ids[i]).collect() };
    ClassCaptions {
        vocabulary_size: captions.len(),
        class_accuracy: correct.iter().filter(|&&c| c).count() as f64 / correct.len().max(1) as f64,
        negative: negative.iter().map(|&t| checked(t)).collect(),
        positive: positive.iter().map(|&t| checked(t)).collect(),
        hard_curve: curve(negative[0]),
        easy_curve: curve(positive[0]),
        hard_subpopulation: subpopulation(negative[0]),
        easy_subpopulation: subpopulation(positive[0]),
    }
}
