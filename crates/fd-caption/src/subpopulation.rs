//! A caption's subpopulation: the images of its class nearest the caption by cosine similarity of the raw embeddings (the paper's `order_descriptions_angle`).

/// The indices of `images` (rows of `caption.len()`) sorted by cosine similarity to `caption`, most similar first; the first `k`.
pub fn nearest_images(caption: &[f32], images: &[f32], k: usize) -> Vec<usize> {
    let dim = caption.len();
    assert!(dim > 0 && images.len().is_multiple_of(dim), "{} values are not rows of {dim}", images.len());
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    let c = norm(caption);
    let similarity: Vec<f64> = images
        .chunks_exact(dim)
        .map(|row| row.iter().zip(caption).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() / (norm(row) * c))
        .collect();
    let mut order: Vec<usize> = (0..similarity.len()).collect();
    order.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]));
    order.truncate(k);
    order
}
