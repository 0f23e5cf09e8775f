//! dcbench's slice metrics on examples worked by hand.

use super::*;

#[test]
fn precision_at_k_counts_ties_by_their_expected_share() {
    let scores = [0.9, 0.8, 0.8, 0.8, 0.1];
    let group = [true, true, false, false, true];
    // Top 1: the 0.9 row, in the group.
    assert_eq!(precision_at_k(&scores, &group, 1), Some(1.0));
    // Top 2: the 0.9 row and one of three rows tied at 0.8, one of which is in the group: (1 + 1/3) / 2.
    assert!((precision_at_k(&scores, &group, 2).unwrap() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
    // Top 4: every tied row is in: (1 + 1) / 4.
    assert_eq!(precision_at_k(&scores, &group, 4), Some(0.5));
    assert_eq!(precision_at_k(&scores, &group, 0), None);
    assert_eq!(precision_at_k(&scores, &group, 6), None);
}

#[test]
fn average_precision_is_scikit_learns() {
    // average_precision_score([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]) = 0.5 * 1 + 0.5 * 2/3 = 0.8333...
    let ap = average_precision(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]).unwrap();
    assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
    // With a tie at the top: average_precision_score([1, 0, 1], [0.5, 0.5, 0.1]) = 0.5 * 0.5 + 0.5 * 2/3.
    let ap = average_precision(&[0.5, 0.5, 0.1], &[true, false, true]).unwrap();
    assert!((ap - (0.25 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
    // A perfect ranking scores 1; no group row, no figure.
    assert_eq!(average_precision(&[3.0, 2.0, 1.0], &[true, true, false]), Some(1.0));
    assert_eq!(average_precision(&[3.0, 2.0], &[false, false]), None);
}

#[test]
fn the_best_match_may_be_a_slice_or_the_complement_of_one() {
    let group = [true, true, false, false, false, false];
    // Slice 0 ranks the group first; slice 1 ranks it last (its complement is perfect); slice 2 is noise.
    let slices = vec![
        vec![0.9, 0.8, 0.1, 0.2, 0.3, 0.0],
        vec![-5.0, -4.0, 1.0, 2.0, 3.0, 4.0],
        vec![0.5, 0.1, 0.5, 0.1, 0.5, 0.1],
    ];
    let p2 = |s: &[f64], g: &[bool]| precision_at_k(s, g, 2);
    // Slice 0 and slice 1's complement both reach 1; the first wins.
    assert_eq!(best_match(&slices, &group, p2), Some(Match { slice: 0, complement: false, value: 1.0 }));
    let best = best_match(&slices[1..], &group, average_precision).unwrap();
    assert_eq!((best.slice, best.complement, best.value), (0, true, 1.0));
    assert_eq!(best_match(&[], &group, average_precision), None);
}

#[test]
fn average_precision_matches_scikit_learn_on_rankings_with_ties() {
    // fixtures/make_slice_fixture.py: seeded scores with many ties (5 to 1,000 levels) and scikit-learn's value.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/slice_metrics.json");
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let scores: Vec<f64> = case["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let labels: Vec<bool> = case["labels"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        let ours = average_precision(&scores, &labels).unwrap();
        let theirs = case["ap"].as_f64().unwrap();
        assert!((ours - theirs).abs() < 1e-12, "{} rows: ours {ours}, scikit-learn {theirs}", scores.len());
    }
}
