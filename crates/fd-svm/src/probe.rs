//! A linear probe: multinomial logistic regression from embeddings to labels, fitted by smartcore, scored on held-out rows.
//!
//! It measures how much of the label an embedding space carries linearly (the offline latent space's sanity check).

use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use crate::error::{Error, Result, check_finite};
use crate::preprocess::fit_preprocessing;

/// Fits on `train` (rows of `dim`, standardised with their own statistics) with L2 penalty `alpha`, and returns the accuracy on `test`.
pub fn linear_probe_accuracy(
    train: &[f32],
    train_labels: &[u16],
    test: &[f32],
    test_labels: &[u16],
    dim: usize,
    alpha: f64,
) -> Result<f64> {
    assert_eq!(train.len(), train_labels.len() * dim, "train rows and labels differ");
    assert_eq!(test.len(), test_labels.len() * dim, "test rows and labels differ");
    check_finite("probe training embeddings", train, dim)?;
    check_finite("probe test embeddings", test, dim)?;
    let standardise = fit_preprocessing(train, dim, false)?;
    let matrix = |rows: &[f32]| -> Result<DenseMatrix<f64>> {
        let values: Vec<f64> = standardise.apply(rows).iter().map(|&v| f64::from(v)).collect();
        DenseMatrix::new(rows.len() / dim, dim, values, false).map_err(|e| Error::Invalid(format!("probe: {e}")))
    };
    let y: Vec<i32> = train_labels.iter().map(|&l| i32::from(l)).collect();
    let params = LogisticRegressionParameters::default().with_alpha(alpha);
    let model =
        LogisticRegression::fit(&matrix(train)?, &y, params).map_err(|e| Error::Invalid(format!("probe: {e}")))?;
    let predicted: Vec<i32> = model.predict(&matrix(test)?).map_err(|e| Error::Invalid(format!("probe: {e}")))?;
    let hits = predicted.iter().zip(test_labels).filter(|(p, t)| **p == i32::from(**t)).count();
    Ok(hits as f64 / test_labels.len().max(1) as f64)
}
