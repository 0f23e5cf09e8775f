//! The user's classifier: predictions files in every format, keyed every way, into the same evaluation; the ONNX classifier
//! against PyTorch's logits (`fixtures/make_onnx_fixture.py`).

use std::path::{Path, PathBuf};

use super::*;
use crate::load::read_predictions;

fn names() -> Vec<String> {
    ["cat", "dog", "fox"].map(String::from).to_vec()
}

/// Four images of a listing: paths `img<i>.png`, labels 0, 1, 2, 0.
fn wanted(paths: &[PathBuf]) -> Vec<Wanted<'_>> {
    let labels = [0u16, 1, 2, 0];
    (0..4).map(|i| Wanted { index: 10 + i, row: i, path: &paths[i], label: labels[i] }).collect()
}

fn paths() -> Vec<PathBuf> {
    (0..4).map(|i| PathBuf::from(format!("img{i}.png"))).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn csv_predictions_by_path_by_index_and_in_order_give_the_same_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths();
    let by_path =
        write(dir.path(), "p.csv", b"path,prediction\nimg3.png,fox\nimg0.png,cat\nimg2.png,2\nimg1.png,cat\n");
    let by_index = write(dir.path(), "i.csv", b"index,prediction\n1,cat\n0,cat\n3,fox\n2,fox\n");
    let ordered = write(dir.path(), "o.csv", b"prediction\ncat\ncat\nfox\nfox\n");
    let evals: Vec<_> = [by_path, by_index, ordered]
        .iter()
        .map(|p| read_predictions(p, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap())
        .collect();
    let e = &evals[0];
    assert_eq!(e.indices, [10, 11, 12, 13]);
    assert_eq!(e.predicted, [0, 0, 2, 2]);
    assert_eq!(e.correct, [true, false, true, false]);
    // A bare prediction is certain: confidence 1 for the predicted class, 0 for the others.
    assert!((e.confidence[0] - 1.0).abs() < 1e-6 && e.confidence[1] < 1e-6);
    assert_eq!((e.feature_dim, e.features.len()), (0, 0));
    assert_eq!(evals[1], evals[0]);
    assert_eq!(evals[2], evals[0]);
}

#[test]
fn scores_give_confidences_probabilities_as_they_are_and_logits_through_softmax() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths();
    let probs = write(
        dir.path(),
        "probs.csv",
        b"prob_cat,prob_dog,prob_fox\n0.7,0.2,0.1\n0.5,0.3,0.2\n0.1,0.1,0.8\n0.2,0.6,0.2\n",
    );
    let e = read_predictions(&probs, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap();
    assert_eq!(e.predicted, [0, 0, 2, 1]);
    let expected = [0.7, 0.3, 0.8, 0.2];
    for (c, x) in e.confidence.iter().zip(expected) {
        assert!((c - x).abs() < 1e-6, "{:?}", e.confidence);
    }
    let logits = write(dir.path(), "l.csv", b"logit_cat,logit_dog,logit_fox\n1,0,0\n0,0,0\n0,0,3\n0,2,0\n");
    let e = read_predictions(&logits, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap();
    let soft = softmax(&[1.0, 0.0, 0.0]);
    assert!((e.confidence[0] - soft[0]).abs() < 1e-6);
    assert_eq!(e.logits[..3], [1.0, 0.0, 0.0]);
}

#[test]
fn npy_and_safetensors_predictions_read_as_csv_does() {
    use safetensors::{Dtype, tensor::TensorView};
    let dir = tempfile::tempdir().unwrap();
    let paths = paths();
    let csv = write(dir.path(), "o.csv", b"prediction\ncat\ncat\nfox\nfox\n");
    let reference = read_predictions(&csv, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap();
    // .npy: a 1-D int64 array of classes.
    let npy = fd_data::arrays::npy_i64(&[4], &[0, 0, 2, 2]);
    let p = write(dir.path(), "p.npy", &npy);
    assert_eq!(read_predictions(&p, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap(), reference);
    // safetensors: `predicted` keyed by `index`.
    let pred: Vec<u8> = [2i64, 0, 2, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let index: Vec<u8> = [3i64, 0, 2, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [
        ("predicted", TensorView::new(Dtype::I64, vec![4], &pred).unwrap()),
        ("index", TensorView::new(Dtype::I64, vec![4], &index).unwrap()),
    ];
    let p = write(dir.path(), "p.safetensors", &safetensors::serialize(tensors, None).unwrap());
    assert_eq!(read_predictions(&p, &names()).unwrap().evaluation(&wanted(&paths), 4, 3).unwrap(), reference);
}

#[test]
fn bad_predictions_are_errors_naming_the_file_and_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths();
    let error = |name: &str, bytes: &[u8]| -> String {
        let p = write(dir.path(), name, bytes);
        match read_predictions(&p, &names()) {
            Err(e) => e.to_string(),
            Ok(pred) => pred.evaluation(&wanted(&paths), 4, 3).unwrap_err().to_string(),
        }
    };
    let e = error("missing.csv", b"path,prediction\nimg0.png,cat\nimg1.png,cat\nimg2.png,cat\n");
    assert!(e.contains("missing.csv") && e.contains("no row for image img3.png"), "{e}");
    let e = error("twice.csv", b"path,prediction\nimg0.png,cat\nimg0.png,dog\n");
    assert!(e.contains("twice.csv") && e.contains("appears twice"), "{e}");
    let e = error("name.csv", b"prediction\ncat\nwolf\ncat\ncat\n");
    assert!(e.contains("name.csv") && e.contains("line 3") && e.contains("\"wolf\""), "{e}");
    let e = error("count.csv", b"prediction\ncat\ncat\n");
    assert!(e.contains("count.csv") && e.contains("2 rows for a dataset of 4"), "{e}");
    let e = error("cols.csv", b"prob_cat,prob_dog\n0.5,0.5\n");
    assert!(e.contains("cols.csv") && e.contains("prob_fox") || e.contains("2 of the 3 classes"), "{e}");
    let e = error("nan.csv", b"logit_cat,logit_dog,logit_fox\n1,0,0\nnan,0,0\n1,0,0\n1,0,0\n");
    assert!(e.contains("nan.csv") && e.contains("row 1") && e.contains("not finite"), "{e}");
    let e = error("none.csv", b"path,label\nimg0.png,cat\n");
    assert!(e.contains("none.csv") && e.contains("neither a `prediction` column"), "{e}");
    let e = error("x.txt", b"");
    assert!(e.contains("x.txt") && e.contains(".csv, .npy or .safetensors"), "{e}");
}

#[test]
fn the_onnx_classifier_matches_pytorch() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("tiny_classifier_reference.json")).unwrap()).unwrap();
    let size = reference["size"].as_u64().unwrap() as usize;
    let config = ClassifierConfig {
        predictions: None,
        onnx: Some(fixtures.join("tiny_classifier.onnx")),
        input: fd_data::preprocess::Preprocess {
            size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            resize: fd_data::preprocess::Resize::Paper,
        },
        bgr: false,
        batch_size: 4,
    };
    let model = crate::load::load_onnx_classifier(config.onnx.as_ref().unwrap(), &config).unwrap();
    // The generator's images: pixel (y, x, c) = (37 k + 11 y + 7 x + 53 c + y x) mod 256.
    let image = |k: usize| {
        let data = (0..size * size * 3)
            .map(|i| {
                let (y, x, c) = (i / (size * 3), (i / 3) % size, i % 3);
                ((37 * k + 11 * y + 7 * x + 53 * c + y * x) % 256) as u8
            })
            .collect();
        fd_data::Image::new(size, size, data)
    };
    let images: Vec<fd_data::Image> = (0..5).map(image).collect();
    // Two batches of different lengths through the symbolic batch dimension.
    let (mut logits, classes) = model.logits(&images[..3]).unwrap();
    logits.extend(model.logits(&images[3..]).unwrap().0);
    assert_eq!(classes, 3);
    let expected: Vec<f32> = reference["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect::<Vec<_>>())
        .collect();
    let max = logits.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max < 1e-4, "ONNX logits differ from PyTorch's by {max}: {logits:?} vs {expected:?}");
    // BGR swaps the channel planes: different logits for a coloured image.
    let bgr = crate::load::load_onnx_classifier(
        config.onnx.as_ref().unwrap(),
        &ClassifierConfig { bgr: true, ..config.clone() },
    )
    .unwrap();
    assert_ne!(bgr.logits(&images[..1]).unwrap().0, logits[..3]);
    // A file that is not ONNX is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "model.onnx", b"not a model");
    let e = crate::load::load_onnx_classifier(&bad, &config).unwrap_err().to_string();
    assert!(e.contains("model.onnx") && e.contains("cannot read the ONNX model"), "{e}");
}
