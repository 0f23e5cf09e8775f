//! Scoring captions with a class's SVM (method spec §2.2): `s_i = w · normalize((t_i - t_ref - mean) / std) + b`.
//!
//! The caption's text embedding minus the reference caption's is put through the *image* preprocessing and the class's SVM,
//! the paper's answer to the gap between text and image embeddings.

/// The image preprocessing statistics and one class's SVM, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct ClassScorer<'a> {
    /// Per-dimension mean of the training split's image embeddings.
    pub mean: &'a [f32],
    /// Per-dimension std of the training split's image embeddings.
    pub std: &'a [f32],
    /// Whether the preprocessing L2-normalises.
    pub normalize: bool,
    /// The SVM's normal vector in the preprocessed space.
    pub w: &'a [f64],
    /// The SVM's intercept.
    pub b: f64,
}

/// The score of every caption embedding (rows of `dim`) against the reference caption's embedding: low means hard.
pub fn score_captions(captions: &[f32], reference: &[f32], scorer: &ClassScorer<'_>) -> Vec<f64> {
    let dim = reference.len();
    assert!(dim > 0 && captions.len().is_multiple_of(dim), "{} values are not rows of {dim}", captions.len());
    assert!(scorer.mean.len() == dim && scorer.std.len() == dim && scorer.w.len() == dim, "dimensions disagree");
    captions
        .chunks_exact(dim)
        .map(|t| {
            let z: Vec<f64> =
                (0..dim).map(|k| f64::from((t[k] - reference[k] - scorer.mean[k]) / scorer.std[k])).collect();
            let norm =
                if scorer.normalize { z.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE) } else { 1.0 };
            z.iter().zip(scorer.w).map(|(v, w)| v / norm * w).sum::<f64>() + scorer.b
        })
        .collect()
}

/// The indices of the `k` lowest scores (the negative, hard captions, hardest first) and the `k` highest (positive, easiest first); ties keep caption order.
pub fn top_captions(scores: &[f64], k: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let negative = order.iter().take(k).copied().collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positive = order.iter().take(k).copied().collect();
    (negative, positive)
}

/// A reference embedding made from several rows (their mean): for the offline latent space, whose captions are ImageNet class
/// names, the reference of a CIFAR-10 class is the mean class vector of its ImageNet hyponyms.
pub fn mean_of_rows(rows: &[f32], dim: usize, which: &[usize]) -> Vec<f32> {
    assert!(dim > 0 && rows.len().is_multiple_of(dim), "{} values are not rows of {dim}", rows.len());
    assert!(!which.is_empty(), "a mean of no rows");
    let mut out = vec![0f64; dim];
    for &r in which {
        for (o, v) in out.iter_mut().zip(&rows[r * dim..(r + 1) * dim]) {
            *o += f64::from(*v);
        }
    }
    out.iter().map(|v| (v / which.len() as f64) as f32).collect()
}
