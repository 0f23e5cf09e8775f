//! The selection rules on a hand-made pool.

use super::*;

#[test]
fn selection_rules_pick_the_lowest_per_class_or_a_seeded_sample() {
    let labels = [0, 1, 0, 1, 0, 1, 0, 1];
    let confidence = [0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.7, 0.6];
    let decisions = [3.0, -1.0, -2.0, 0.5, 1.0, 2.0, -0.5, 0.0];
    let pool = Pool {
        labels: &labels,
        decisions: &decisions,
        confidence: &confidence,
        probabilities: &[],
        space: None,
        modes: &[],
    };
    // Class 0 is rows 0, 2, 4, 6 and class 1 rows 1, 3, 5, 7; picks are rows, class by class, hardest first.
    assert_eq!(select(&pool, 2, SelectionRule::Svm, 2, 0).unwrap(), [2, 6, 1, 7]);
    assert_eq!(select(&pool, 2, SelectionRule::Confidence, 2, 0).unwrap(), [2, 4, 1, 5]);
    // Asking for more than a class has gives all of it.
    assert_eq!(select(&pool, 2, SelectionRule::Svm, 10, 0).unwrap(), [2, 6, 4, 0, 1, 7, 3, 5]);
    let random = select(&pool, 2, SelectionRule::Random, 2, 0).unwrap();
    assert_eq!(random.len(), 4);
    assert!(random[..2].iter().all(|&i| labels[i] == 0) && random[2..].iter().all(|&i| labels[i] == 1));
    // The same seed gives the same sample; the random rule does not depend on decisions or confidence.
    let flat = Pool {
        labels: &labels,
        decisions: &[0.0; 8],
        confidence: &[0.5; 8],
        probabilities: &[],
        space: None,
        modes: &[],
    };
    assert_eq!(select(&flat, 2, SelectionRule::Random, 2, 0).unwrap(), random);
    let others: Vec<Vec<usize>> =
        (1..8).map(|seed| select(&pool, 2, SelectionRule::Random, 2, seed).unwrap()).collect();
    assert!(others.iter().any(|o| *o != random), "the seed changes the sample");
    // The control picks nothing, at any K.
    assert!(select(&pool, 2, SelectionRule::Nothing, 3, 0).unwrap().is_empty());
    // A class without an SVM (decision 0 everywhere) keeps pool order.
    assert_eq!(select(&flat, 2, SelectionRule::Svm, 3, 0).unwrap(), [0, 2, 4, 1, 3, 5]);
}

#[test]
fn margin_and_entropy_rank_by_the_classifier_s_uncertainty() {
    // Three classes. Row 0 sure, row 1 torn between two classes, row 2 spread over all three, row 3 a tie of three.
    let probabilities = [0.9, 0.05, 0.05, 0.45, 0.45, 0.1, 0.5, 0.3, 0.2, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];
    let m = margins(&probabilities, 3);
    let expected = [0.85, 0.0, 0.2, 0.0];
    assert!(m.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{m:?}");
    let e = entropies(&probabilities, 3);
    let h = |p: &[f64]| -p.iter().map(|p| p * p.ln()).sum::<f64>();
    assert!((e[0] - h(&[0.9, 0.05, 0.05])).abs() < 1e-12 && (e[3] - 3f64.ln()).abs() < 1e-12, "{e:?}");
    assert!(e[3] > e[2] && e[2] > e[1] && e[1] > e[0]);
    // A zero probability adds nothing (0 ln 0 = 0), and one class has margin 1.
    assert_eq!(entropies(&[1.0, 0.0], 2), [0.0]);
    assert_eq!(margins(&[1.0, 1.0], 1), [1.0, 1.0]);
    // The rules (three classes): all four rows in class 0; margin picks the smallest gaps (ties keep pool order), entropy the largest.
    let labels = [0u16; 4];
    let flat = [0.0; 4];
    let pool = Pool {
        labels: &labels,
        decisions: &flat,
        confidence: &flat,
        probabilities: &probabilities,
        space: None,
        modes: &[],
    };
    assert_eq!(select(&pool, 3, SelectionRule::Margin, 3, 0).unwrap(), [1, 3, 2]);
    assert_eq!(select(&pool, 3, SelectionRule::Entropy, 2, 0).unwrap(), [3, 2]);
    // Without probabilities (or with the wrong count) the rules are an error naming what they need.
    let bare = Pool { probabilities: &probabilities[..9], ..pool };
    let err = select(&bare, 3, SelectionRule::Margin, 3, 0).unwrap_err().to_string();
    assert!(err.contains("margin rule needs the classifier's probabilities"), "{err}");
    // A NaN probability (from non-finite logits) is an error naming its row, not a first pick.
    let mut broken = probabilities;
    broken[7] = f64::NAN;
    let err =
        select(&Pool { probabilities: &broken, ..pool }, 3, SelectionRule::Entropy, 2, 0).unwrap_err().to_string();
    assert!(err.contains("row 2, class 1"), "{err}");
}

#[test]
fn the_coreset_covers_the_points_farthest_from_what_is_labelled() {
    // Points on a line at 0, 1, 2, 3, 10 and 11; one labelled point at 0. The farthest is 11; then, with 11 a center, 3
    // (3 from 0; 10 is 1 from 11); then 1, 2 and 10 are each 1 from a center, and the tie goes to the earliest, 1.
    let candidates = [0.0f32, 1.0, 2.0, 3.0, 10.0, 11.0];
    assert_eq!(k_center_greedy(&candidates, &[0.0], 1, 3), [5, 3, 1]);
    // Asking for more than there are gives every candidate once.
    let all = k_center_greedy(&candidates, &[0.0], 1, 10);
    let mut sorted = all.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2, 3, 4, 5]);
    // Without centers the first pick is the farthest from the mean (4.5): 11.
    assert_eq!(k_center_greedy(&candidates, &[], 1, 1), [5]);
    // In two dimensions, over more than eight lanes: the corners of a square around a labelled center, the nearest last.
    let dim = 9;
    let point = |x: f32, y: f32| -> Vec<f32> { [x, y].into_iter().chain([0.0; 7]).collect() };
    let square: Vec<f32> = [point(5.0, 5.0), point(-5.0, 5.0), point(0.5, 0.0), point(-5.0, -6.0)].concat();
    assert_eq!(k_center_greedy(&square, &point(0.0, 0.0), dim, 4), [3, 0, 1, 2]);
    // Through `select`: per class, from that class's labelled rows only.
    let labels = [0u16, 0, 1, 1];
    let pool_rows = [1.0f32, 5.0, 1.0, 5.0];
    let flat = [0.0; 4];
    let space = Space { dim: 1, pool: &pool_rows, labelled: &[5.0, 0.0], labelled_labels: &[0, 1] };
    let pool = Pool {
        labels: &labels,
        decisions: &flat,
        confidence: &flat,
        probabilities: &[],
        space: Some(space),
        modes: &[],
    };
    // Class 0's labelled point is at 5, so row 0 (at 1) is farthest; class 1's at 0, so row 3 (at 5).
    assert_eq!(select(&pool, 2, SelectionRule::Coreset, 1, 0).unwrap(), [0, 3]);
    let without = Pool { space: None, ..pool };
    assert!(select(&without, 2, SelectionRule::Coreset, 1, 0).unwrap_err().to_string().contains("coreset"));
    let nan = Space { pool: &[1.0, f32::NAN, 1.0, 5.0], ..space };
    let err = select(&Pool { space: Some(nan), ..pool }, 2, SelectionRule::Coreset, 1, 0).unwrap_err().to_string();
    assert!(err.contains("row 1"), "{err}");
}

#[test]
fn turns_split_the_budget_across_orders_without_repeats() {
    // Each order takes one item a turn; an item already taken is passed over; the first orders take the remainder.
    let orders = [vec![4, 1, 2, 3], vec![4, 3, 5, 1], vec![9]];
    assert_eq!(take_in_turns(&orders, 5), [4, 3, 9, 1, 5]);
    assert_eq!(take_in_turns(&orders, 2), [4, 3]);
    // Exhausted orders stop the turns: every distinct item, once.
    assert_eq!(take_in_turns(&orders, 100), [4, 3, 9, 1, 5, 2]);
    assert!(take_in_turns(&orders, 0).is_empty());
    assert_eq!(take_in_turns(&[vec![7, 8]], 1), [7]);
}

#[test]
fn the_modes_rule_gives_each_mode_its_share_of_the_budget() {
    // Class 0 (rows 0-5) has two modes: mode 0 ranks rows 0, 1, 2 hardest, mode 1 rows 5, 4. Class 1 (rows 6-8) has one
    // mode, which is the SVM's ranking; class 2 (row 9) has none (no SVM): pool order.
    let labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
    let decisions = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, -1.0, 1.0, 0.0];
    let modes: Vec<Vec<f64>> = vec![
        vec![-3.0, 5.0],
        vec![-2.0, 6.0],
        vec![-1.0, 7.0],
        vec![1.0, 3.0],
        vec![2.0, -1.0],
        vec![3.0, -2.0],
        vec![2.0],
        vec![-1.0],
        vec![1.0],
        vec![],
    ];
    let flat = [0.5; 10];
    let pool = Pool {
        labels: &labels,
        decisions: &decisions,
        confidence: &flat,
        probabilities: &[],
        space: None,
        modes: &modes,
    };
    assert_eq!(select(&pool, 3, SelectionRule::Modes, 3, 0).unwrap(), [0, 5, 1, 7, 8, 6, 9]);
    // With one mode the rule is the SVM rule.
    let svm = select(&pool, 3, SelectionRule::Svm, 2, 0).unwrap();
    assert_eq!(select(&pool, 3, SelectionRule::Modes, 2, 0).unwrap()[2..], svm[2..]);
    // Missing, ragged or non-finite values are errors naming the row.
    let err = select(&Pool { modes: &[], ..pool }, 3, SelectionRule::Modes, 1, 0).unwrap_err().to_string();
    assert!(err.contains("modes rule"), "{err}");
    let mut ragged = modes.clone();
    ragged[3] = vec![1.0];
    let err = select(&Pool { modes: &ragged, ..pool }, 3, SelectionRule::Modes, 1, 0).unwrap_err().to_string();
    assert!(err.contains("row 3"), "{err}");
    let mut nan = modes.clone();
    nan[7][0] = f64::NAN;
    let err = select(&Pool { modes: &nan, ..pool }, 3, SelectionRule::Modes, 1, 0).unwrap_err().to_string();
    assert!(err.contains("row 7"), "{err}");
}
