//! Scoring captions with a class's SVM (method spec §2.2): `s_i = w · normalize((t_i - t_ref - mean) / std) + b`.
//!
//! The caption's text embedding minus the reference caption's ([`caption_deltas`]) is put through the *image* preprocessing and the
//! class's SVM, the paper's answer to the gap between text and image embeddings. The SVM side is fd-svm's own
//! (`Directions::class_decisions`); this module makes the rows and reads the scores.

/// The caption embeddings (rows of `reference.len()`) minus the reference caption's embedding: the rows §2.2 puts through the class's
/// SVM, image preprocessing and all (`fd_svm::Directions::class_decisions`), so captions and images are scored by one code path.
pub fn caption_deltas(captions: &[f32], reference: &[f32]) -> Vec<f32> {
    let dim = reference.len();
    assert!(dim > 0 && captions.len().is_multiple_of(dim), "{} values are not rows of {dim}", captions.len());
    captions.chunks_exact(dim).flat_map(|t| t.iter().zip(reference).map(|(t, r)| t - r)).collect()
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
