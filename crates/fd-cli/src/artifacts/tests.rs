//! Artifact formats: versions, unknown keys and damaged embeddings are errors that say what was expected.

use super::*;

#[test]
fn a_json_artifact_of_another_version_or_with_unknown_keys_is_refused() {
    let summary = EvaluateSummary {
        format_version: Version,
        parts: vec![PartAccuracy { part: SplitPart::Test, images: 80, accuracy: 0.5 }],
    };
    let text = serde_json::to_string(&summary).unwrap();
    assert_eq!(text, r#"{"format_version":1,"parts":[{"part":"test","images":80,"accuracy":0.5}]}"#);
    assert_eq!(serde_json::from_str::<EvaluateSummary>(&text).unwrap(), summary);
    let e = serde_json::from_str::<EvaluateSummary>(&text.replace(":1,", ":2,")).unwrap_err().to_string();
    assert!(e.contains("format version 2, expected 1"), "{e}");
    let e = serde_json::from_str::<EvaluateSummary>(&text.replace("\"images\"", "\"imgs\"")).unwrap_err().to_string();
    assert!(e.contains("unknown field `imgs`"), "{e}");
    let e = serde_json::from_str::<EvaluateSummary>(r#"{"parts":[]}"#).unwrap_err().to_string();
    assert!(e.contains("missing field `format_version`"), "{e}");
}

#[test]
fn embeddings_round_trip_and_a_damaged_file_is_an_error() {
    let e = Embeddings { rows: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dim: 3, indices: vec![7, 9] };
    let bytes = e.to_safetensors();
    assert_eq!(Embeddings::from_safetensors(&bytes).unwrap(), e);
    let cut = Embeddings::from_safetensors(&bytes[..bytes.len() - 5]).unwrap_err().to_string();
    assert!(cut.contains("it may be truncated"), "{cut}");
    let other = fd_svm::select::SelectionRule::Svm.name().as_bytes().to_vec();
    assert!(Embeddings::from_safetensors(&other).is_err());
}

#[test]
fn embeddings_read_from_a_file_in_one_pass_as_from_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // More rows than one read block (1 MiB), so the values cross blocks.
    let (n, dim) = (1500, 200);
    let rows: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let e = Embeddings { rows, dim, indices: (0..n).map(|i| i * 3 + 1).collect() };
    let path = tmp.path().join("e.safetensors");
    let bytes = e.to_safetensors();
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Embeddings::read_file(&path).unwrap(), e);
    // A slice reads its rows and only them: across a block boundary, at either end, and empty.
    for range in [0..1, 700..1400, 1499..1500, 0..n, 800..800] {
        let part = Embeddings::read_rows(&path, Some(range.clone())).unwrap();
        let want = Embeddings {
            rows: e.rows[range.start * dim..range.end * dim].to_vec(),
            dim,
            indices: e.indices[range.clone()].to_vec(),
        };
        assert_eq!(part, want, "{range:?}");
    }
    let err = format!("{:#}", Embeddings::read_rows(&path, Some(1400..1501)).unwrap_err());
    assert!(err.contains("rows 1400..1501 asked of a file of 1500 rows"), "{err}");
    for cut in [bytes.len() - 5, 100, 6] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = format!("{:#}", Embeddings::read_file(&path).unwrap_err());
        assert!(err.contains("truncated"), "{cut}: {err}");
    }
    // Another safetensors file: an evaluation has no `embeddings`.
    let eval = fd_model::external::empty_evaluation(3, 0);
    std::fs::write(&path, eval.to_safetensors()).unwrap();
    let err = format!("{:#}", Embeddings::read_file(&path).unwrap_err());
    assert!(err.contains("no tensor \"embeddings\""), "{err}");
}

#[test]
fn joining_needs_the_same_images_in_the_same_order() {
    let e = Embeddings { rows: vec![0.0; 4], dim: 2, indices: vec![3, 4] };
    let eval = |indices: Vec<usize>| fd_model::Evaluation {
        labels: vec![0; indices.len()],
        logits: vec![0.0; indices.len()],
        num_classes: 1,
        predicted: vec![0; indices.len()],
        confidence: vec![1.0; indices.len()],
        correct: vec![true; indices.len()],
        features: vec![],
        feature_dim: 0,
        indices,
    };
    assert_eq!(Scored::join(e.clone(), eval(vec![3, 4])).unwrap().confidence, [1.0, 1.0]);
    let err = Scored::join(e, eval(vec![4, 3])).unwrap_err().to_string();
    assert!(err.contains("do not list the same images in the same order"), "{err}");
}
