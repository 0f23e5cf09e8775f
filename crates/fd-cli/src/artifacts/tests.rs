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
