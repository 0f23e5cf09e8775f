//! `fd-cli bench pool`: the select stage's core (read the pool's embeddings, score them, pick) and the fit stage's data on
//! a synthetic pool, for their time and peak memory at a million rows.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::peak_rss_mib;

/// Classes of the synthetic pool.
const POOL_CLASSES: usize = 10;

/// Writes a pool of `rows` × `dim` seeded embeddings, row `i` of class `i % 10`, as the embed stage writes a part.
pub(super) fn write(path: &Path, rows: usize, dim: usize) -> Result<()> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values = (0..rows * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let bytes = crate::artifacts::Embeddings { rows: values, dim, indices: (0..rows).collect() }.to_safetensors();
    fd_data::write_atomic(path, &bytes)?;
    println!("{}", serde_json::json!({"written": path.display().to_string(), "bytes": bytes.len()}));
    Ok(())
}

/// Reads the pool as the select stage does, scores it under one random direction a class (the preprocessing fitted on
/// its first 10,000 rows) and picks `k` a class by the SVM rule.
pub(super) fn select(path: &Path, k: usize) -> Result<()> {
    let start = Instant::now();
    let e = crate::artifacts::Embeddings::read_file(path).with_context(|| format!("reading {}", path.display()))?;
    let read_s = start.elapsed().as_secs_f64();
    let (dim, n) = (e.dim, e.indices.len());
    let labels: Vec<u16> = (0..n).map(|i| (i % POOL_CLASSES) as u16).collect();
    let preprocessing = fd_svm::fit_preprocessing(&e.rows[..n.min(10_000) * dim], dim, true)?;
    let classes = (0..POOL_CLASSES as u16)
        .map(|class| {
            let w = (0..dim).map(|j| ((j * 31 + usize::from(class) * 17) % 97) as f64 / 97.0 - 0.5).collect();
            let svm = fd_svm::LinearSvm { w, b: 0.0, iterations: 0, support: 0 };
            let (c, cv_scores) = (1.0, vec![0.5]);
            fd_svm::ClassOutcome::Fitted(fd_svm::ClassSvm {
                class,
                c,
                cv_score: 0.5,
                cv_scores,
                rows: 0,
                errors: 0,
                svm,
            })
        })
        .collect();
    let config = fd_svm::SvmConfig::paper();
    let directions = fd_svm::Directions { preprocessing, config, classes };
    let decisions = directions.decision_values(&e.rows, &labels)?;
    let confidence = vec![0.5; n];
    let pool = fd_svm::select::Pool {
        labels: &labels,
        decisions: &decisions,
        confidence: &confidence,
        probabilities: &[],
        space: None,
        modes: &[],
    };
    let picked = fd_svm::select::select(&pool, POOL_CLASSES, fd_svm::select::SelectionRule::Svm, k, 0)?;
    let json = serde_json::json!({
        "rows": n,
        "dim": dim,
        "picked": picked.len(),
        "read_s": read_s,
        "seconds": start.elapsed().as_secs_f64(),
        "rows_mib": (n * dim * 4) as f64 / (1 << 20) as f64,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
    Ok(())
}

/// Reads the pool as the fit stage reads val and fits its SVMs (the preprocessing on its first 10,000 rows, every fifth
/// row wrong) with a tolerance that stops each solve at once: the peak is the fit's data (rows, their preprocessed
/// copies, each class's rows in f64 and a fold's packed), the kernel rows aside, which `kernel_cache_mib` bounds.
pub(super) fn fit(path: &Path) -> Result<()> {
    let start = Instant::now();
    let e = crate::artifacts::Embeddings::read_file(path).with_context(|| format!("reading {}", path.display()))?;
    let (dim, n) = (e.dim, e.indices.len());
    let labels: Vec<u16> = (0..n).map(|i| (i % POOL_CLASSES) as u16).collect();
    let correct: Vec<bool> = (0..n).map(|i| !(i / POOL_CLASSES).is_multiple_of(5)).collect();
    let train = e.rows[..n.min(10_000) * dim].to_vec();
    let input = fd_svm::FitInput {
        train: &train,
        rows: &e.rows,
        dim,
        labels: &labels,
        correct: &correct,
        num_classes: POOL_CLASSES,
    };
    let config = fd_svm::SvmConfig { tolerance: 1e9, ..fd_svm::SvmConfig::paper() };
    let directions = fd_svm::fit_directions(&input, &config, 2)?;
    let fitted = directions.classes.iter().filter(|c| matches!(c, fd_svm::ClassOutcome::Fitted(_))).count();
    let json = serde_json::json!({
        "rows": n,
        "dim": dim,
        "fitted": fitted,
        "seconds": start.elapsed().as_secs_f64(),
        "rows_mib": (n * dim * 4) as f64 / (1 << 20) as f64,
        "kernel_cache_mib": config.kernel_cache_mib,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{json}");
    Ok(())
}
