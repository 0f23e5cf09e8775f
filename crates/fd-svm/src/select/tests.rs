//! The selection rules on a hand-made pool.

use super::*;

#[test]
fn selection_rules_pick_the_lowest_per_class_or_a_seeded_sample() {
    let labels = [0, 1, 0, 1, 0, 1, 0, 1];
    let confidence = [0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.7, 0.6];
    let decisions = [3.0, -1.0, -2.0, 0.5, 1.0, 2.0, -0.5, 0.0];
    let pool = Pool { labels: &labels, decisions: &decisions, confidence: &confidence };
    // Class 0 is rows 0, 2, 4, 6 and class 1 rows 1, 3, 5, 7; picks are rows, class by class, hardest first.
    assert_eq!(select(&pool, 2, SelectionRule::Svm, 2, 0), [2, 6, 1, 7]);
    assert_eq!(select(&pool, 2, SelectionRule::Confidence, 2, 0), [2, 4, 1, 5]);
    // Asking for more than a class has gives all of it.
    assert_eq!(select(&pool, 2, SelectionRule::Svm, 10, 0), [2, 6, 4, 0, 1, 7, 3, 5]);
    let random = select(&pool, 2, SelectionRule::Random, 2, 0);
    assert_eq!(random.len(), 4);
    assert!(random[..2].iter().all(|&i| labels[i] == 0) && random[2..].iter().all(|&i| labels[i] == 1));
    // The same seed gives the same sample; the random rule does not depend on decisions or confidence.
    let flat = Pool { labels: &labels, decisions: &[0.0; 8], confidence: &[0.5; 8] };
    assert_eq!(select(&flat, 2, SelectionRule::Random, 2, 0), random);
    let others: Vec<Vec<usize>> = (1..8).map(|seed| select(&pool, 2, SelectionRule::Random, 2, seed)).collect();
    assert!(others.iter().any(|o| *o != random), "the seed changes the sample");
    // A class without an SVM (decision 0 everywhere) keeps pool order.
    assert_eq!(select(&flat, 2, SelectionRule::Svm, 3, 0), [0, 2, 4, 1, 3, 5]);
}
