//! The Domino-style mixture on synthetic embeddings whose answer is known.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Domino, DominoConfig, jacobi};
use crate::slices::{best_match, precision_at_k};

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// 400 right rows around the origin (predicted probability 0.9), 50 wrong rows around 5·e0 and 50 around 5·e1 (0.2).
fn data(rng: &mut ChaCha8Rng, dim: usize) -> (Vec<f32>, Vec<f64>, Vec<usize>) {
    let (mut rows, mut prob, mut group) = (Vec::new(), Vec::new(), Vec::new());
    for (g, n, axis, p) in [(0usize, 400usize, None, 0.9), (1, 50, Some(0), 0.2), (2, 50, Some(1), 0.2)] {
        for _ in 0..n {
            rows.extend((0..dim).map(|d| (normal(rng) + if Some(d) == axis { 5.0 } else { 0.0 }) as f32));
            prob.push(p);
            group.push(g);
        }
    }
    (rows, prob, group)
}

#[test]
fn the_mixture_finds_both_error_clusters_on_held_out_rows() {
    let dim = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (rows, prob, _) = data(&mut rng, dim);
    let (test, test_prob, test_group) = data(&mut rng, dim);
    let config = DominoConfig { pca: 8, ..DominoConfig::default() };
    let correct: Vec<bool> = prob.iter().map(|&p| p > 0.5).collect();
    let model = Domino::fit(&rows, dim, &prob, &correct, &config).expect("fits");
    assert_eq!(model.slices.len(), 3);
    let scores = model.slice_scores(&test, &test_prob).expect("scores");
    for g in [1, 2] {
        let in_group: Vec<bool> = test_group.iter().map(|&x| x == g).collect();
        let m = best_match(&scores, &in_group, |s, g| precision_at_k(s, g, 25)).expect("a match");
        assert!(m.value >= 0.9 && !m.complement, "group {g}: {m:?}");
    }
}

#[test]
fn bad_input_is_an_error() {
    let config = DominoConfig::default();
    assert!(Domino::fit(&[0.0; 10], 5, &[0.5, 0.5], &[true, false], &config).is_err(), "too few rows");
    assert!(Domino::fit(&[0.0; 9], 5, &[0.5, 0.5], &[true, false], &config).is_err(), "wrong length");
    let mut rows = vec![0f32; 5 * 40];
    rows[7] = f32::NAN;
    assert!(Domino::fit(&rows, 5, &[0.5; 40], &[true; 40], &config).unwrap_err().to_string().contains("row 1"));
}

#[test]
fn jacobi_diagonalises_a_symmetric_matrix() {
    let mut a = vec![vec![4.0, 1.0, 0.5], vec![1.0, 3.0, 0.2], vec![0.5, 0.2, 1.0]];
    let original = a.clone();
    let (values, v) = jacobi(&mut a);
    for j in 0..3 {
        for i in 0..3 {
            let av: f64 = (0..3).map(|k| original[i][k] * v[k][j]).sum();
            assert!((av - values[j] * v[i][j]).abs() < 1e-9, "A v = λ v fails at ({i}, {j})");
        }
    }
    assert!((values.iter().sum::<f64>() - 8.0).abs() < 1e-9, "the trace is kept");
}
