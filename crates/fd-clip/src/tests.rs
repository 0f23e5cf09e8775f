//! fd-clip's tests: EfficientNet-Lite against timm (tiny random weights here; the real weights when `FD_EFFNET_WEIGHTS` and
//! `FD_EFFNET_REFERENCE` point at them), preprocessing against torch, captions, and the ImageNet table.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::effnet::EffNetConfig;
use crate::imagenet::{cifar10_hyponyms, imagenet_classes};
use crate::{EmbedConfig, Embedder, EmbedderKind, Error, Preprocess, load, preprocess};

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

pub(crate) fn read(bytes: &[u8], name: &str) -> (Vec<f32>, Vec<usize>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let values = match t.dtype() {
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
        }
        safetensors::Dtype::U8 => t.data().iter().map(|&b| f32::from(b)).collect(),
        safetensors::Dtype::I64 => {
            t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
        }
        other => panic!("{name}: {other:?}"),
    };
    (values, t.shape().to_vec())
}

pub(crate) fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Runs `shape`'s network with `weights` on the reference file's inputs and compares features and logits.
fn check_against(shape: &EffNetConfig, weights: &Path, reference: &[u8], tolerance: f32) -> Vec<f32> {
    let device = Device::flex();
    let model = load::load_efficientnet(shape, weights, &device).unwrap();
    let (input, s) = read(reference, "input");
    let x = Tensor::<4>::from_data(TensorData::new(input, [s[0], s[1], s[2], s[3]]), &device);
    let features: Vec<f32> = model.features(x.clone()).into_data().try_to_vec().unwrap();
    // The embedder's path: every BatchNorm folded into its convolution.
    let fused: Vec<f32> = crate::fused::FusedEffNet::new(&model)
        .expect("EfficientNet-Lite folds")
        .features(x.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let logits: Vec<f32> = model.forward(x.clone()).into_data().try_to_vec().unwrap();
    let (f_ref, l_ref) = (read(reference, "features").0, read(reference, "logits").0);
    let scale = l_ref.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(max_err(&features, &f_ref) <= tolerance * scale, "features differ by {}", max_err(&features, &f_ref));
    assert!(max_err(&fused, &f_ref) <= tolerance * scale, "folded features differ by {}", max_err(&fused, &f_ref));
    // A batch of more than one chunk (the inputs repeated), image by image the same features.
    let n = s[0];
    let repeats = crate::fused::CHUNK / n + 2;
    let many = Tensor::cat(vec![x.clone(); repeats], 0);
    let many: Vec<f32> = crate::fused::FusedEffNet::new(&model)
        .expect("EfficientNet-Lite folds")
        .features(many)
        .into_data()
        .try_to_vec()
        .unwrap();
    for copy in many.chunks(fused.len()) {
        assert!(max_err(copy, &fused) <= 1e-6 * scale, "chunked features differ by {}", max_err(copy, &fused));
    }
    assert!(max_err(&logits, &l_ref) <= tolerance * scale, "logits differ by {}", max_err(&logits, &l_ref));
    logits
}

#[test]
fn tiny_efficientnet_matches_timm() {
    let io = std::fs::read(fixture("tiny_effnet_io.safetensors")).unwrap();
    check_against(&EffNetConfig::tiny(), &fixture("tiny_effnet.safetensors"), &io, 1e-5);
}

#[test]
fn bilinear_resize_matches_torch() {
    let io = std::fs::read(fixture("tiny_effnet_io.safetensors")).unwrap();
    let (pixels, shape) = read(&io, "image");
    let image = fd_data::Image::new(shape[0], shape[1], pixels.iter().map(|&v| v as u8).collect());
    let mut out = Vec::new();
    preprocess::push_chw(&image, &Preprocess::efficientnet(20), &mut out);
    let (expected, _) = read(&io, "resized");
    assert!(max_err(&out, &expected) < 1e-5, "{}", max_err(&out, &expected));
}

#[test]
fn captions_are_classifier_rows_and_unknown_ones_are_errors() {
    let config = EmbedConfig {
        embedder: EmbedderKind::EfficientnetLite0,
        image_size: 32,
        batch_size: 4,
        weights: None,
        text_weights: None,
        resize: crate::Resize::Paper,
    };
    let embedder =
        Embedder::efficientnet(&EffNetConfig::tiny(), &fixture("tiny_effnet.safetensors"), &config, &Device::flex())
            .unwrap();
    assert_eq!(embedder.dim(), 32);
    // The tiny network has 10 outputs: ImageNet classes 0..10 (tench, goldfish, ...).
    let rows = embedder.embed_texts(&["goldfish", "tench", "Carassius auratus"]).unwrap();
    let weights = std::fs::read(fixture("tiny_effnet.safetensors")).unwrap();
    let (fc, shape) = read(&weights, "_fc.weight");
    assert_eq!(shape, [10, 32]);
    assert_eq!(&rows[..32], &fc[32..64]);
    assert_eq!(&rows[32..64], &fc[..32]);
    assert_eq!(&rows[64..], &fc[32..64]);
    let e = embedder.embed_texts(&["a photo of a cat"]).unwrap_err();
    assert!(matches!(e, Error::UnknownCaption { .. }));
    assert!(e.to_string().starts_with("caption \"a photo of a cat\" is not in the ImageNet vocabulary"));
    let e =
        Embedder::efficientnet_lite0(Path::new("/nowhere/lite0.safetensors"), &config, &Device::flex()).unwrap_err();
    assert!(e.to_string().contains("run `cargo xtask fetch efficientnet-lite0`"), "{e}");
    let e = Embedder::efficientnet_lite0(&fixture("tiny_effnet.safetensors"), &config, &Device::flex()).unwrap_err();
    assert!(e.to_string().contains("ShapeMismatch"), "{e}");
}

#[test]
fn the_imagenet_table_and_the_cifar_map() {
    let classes = imagenet_classes();
    assert_eq!(classes.len(), 1000);
    assert_eq!((classes[281].wnid, classes[281].name, classes[281].cifar10), ("n02123045", "tabby", Some("cat")));
    assert_eq!((classes[0].wnid, classes[0].name, classes[0].cifar10), ("n01440764", "tench", None));
    let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    let sizes: Vec<usize> = cifar10_hyponyms(&names).iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 10, 59, 7, 3, 118, 3, 1, 12, 7]);
    let truck: Vec<&str> = cifar10_hyponyms(&names)[9].iter().map(|&k| classes[k].name).collect();
    assert_eq!(
        truck,
        ["fire engine", "garbage truck", "moving van", "pickup", "police van", "tow truck", "trailer truck"]
    );
}

/// With the real weights and the reference written by `make_fixtures.py --real`: features, logits and top-1 labels.
#[test]
fn real_lite0_matches_timm_when_the_weights_are_here() {
    let (Ok(weights), Ok(reference)) = (std::env::var("FD_EFFNET_WEIGHTS"), std::env::var("FD_EFFNET_REFERENCE"))
    else {
        return;
    };
    let reference = std::fs::read(reference).unwrap();
    let logits = check_against(&EffNetConfig::lite0(), Path::new(&weights), &reference, 1e-4);
    let top1: Vec<usize> = logits
        .chunks(1000)
        .map(|row| row.iter().enumerate().fold(0, |best, (k, &v)| if v > row[best] { k } else { best }))
        .collect();
    let expected: Vec<usize> = read(&reference, "top1").0.iter().map(|&v| v as usize).collect();
    assert_eq!(top1, expected);
}

#[test]
fn a_damaged_onnx_export_is_an_error_naming_the_file() {
    let good = std::fs::read(fixture("tiny_clip_vision.onnx")).unwrap();
    let dir = std::env::temp_dir().join(format!("fd-clip-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shape = crate::clip::ClipConfig { text: None, ..crate::clip::ClipConfig::tiny() };
    // Cut at several places: inside the header, inside a weight, near the end.
    for cut in [10, good.len() / 3, good.len() / 2, good.len() - 7] {
        let path = dir.join(format!("cut{cut}.onnx"));
        std::fs::write(&path, &good[..cut]).unwrap();
        let e = crate::load::load_clip_onnx(&shape, Some(&path), None, &Device::flex()).unwrap_err().to_string();
        assert!(e.contains(&format!("cut{cut}.onnx")), "{e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
