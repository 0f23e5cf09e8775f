//! fd-model's tests: the schedule formula, augmentation on fixed inputs, overfitting, determinism, evaluation artifacts,
//! devices, and PyTorch parity of the weights and forward pass (`fixtures/make_fixtures.py`).

use std::path::Path;

use burn::prelude::{Tensor, TensorData};
use fd_data::NoProgress;
use fd_data::synthetic::{SyntheticConfig, make_synthetic};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{
    Architecture, DeviceKind, Evaluation, ModelConfig, ResNet, TrainConfig, TrainSet, augment_image, device, evaluate,
    load, retrain_head, train, translate, triangular_lr,
};

#[test]
fn the_schedule_is_the_papers_triangle() {
    // 20 iterations per epoch, 35 epochs, peak 0.5 at epoch 5: np.interp(it, [0, 100, 700], [0, 1, 0]) * 0.5.
    let lr = |it| triangular_lr(it, 20, 35, 5.0, 0.5);
    assert_eq!(lr(0), 0.0);
    assert!((lr(50) - 0.25).abs() < 1e-12);
    assert!((lr(100) - 0.5).abs() < 1e-12);
    assert!((lr(400) - 0.25).abs() < 1e-12);
    assert!((lr(699) - 0.5 / 600.0).abs() < 1e-12);
    assert_eq!(lr(700), 0.0);
    assert!((triangular_lr(1, 3, 4, 2.5, 1.0) - 1.0 / 7.5).abs() < 1e-12);
}

fn image(h: usize, w: usize) -> Vec<u8> {
    (0..h * w * 3).map(|v| (v % 251) as u8).collect()
}

#[test]
fn translation_and_augmentation_on_fixed_inputs() {
    let src = image(3, 3);
    let mut shifted = src.clone();
    translate(&mut shifted, 3, 3, 1, -1, [9, 9, 9]);
    // Output (y, x) is source (y + 1, x - 1): column 0 and the last row are filled.
    let px =
        |img: &[u8], y: usize, x: usize| [img[(y * 3 + x) * 3], img[(y * 3 + x) * 3 + 1], img[(y * 3 + x) * 3 + 2]];
    assert_eq!(px(&shifted, 0, 0), [9, 9, 9]);
    assert_eq!(px(&shifted, 0, 1), px(&src, 1, 0));
    assert_eq!(px(&shifted, 1, 2), px(&src, 2, 1));
    assert_eq!(px(&shifted, 2, 1), [9, 9, 9]);

    let fill = [125, 123, 114];
    let run = |seed| {
        let mut img = image(32, 32);
        augment_image(&mut img, 32, 32, fill, &mut ChaCha8Rng::seed_from_u64(seed));
        img
    };
    assert_eq!(run(1), run(1));
    let outputs: Vec<Vec<u8>> = (0..20).map(run).collect();
    assert!(outputs.iter().any(|o| *o != outputs[0]), "augmentation never varies");
    for out in &outputs {
        // Somewhere a 4×4 square is the fill colour (the cutout).
        let found = (0..=28).any(|top| {
            (0..=28).any(|left| {
                (top..top + 4).all(|y| (left..left + 4).all(|x| out[(y * 32 + x) * 3..(y * 32 + x) * 3 + 3] == fill))
            })
        });
        assert!(found, "no cutout square");
    }
}

fn tiny_data() -> fd_data::Dataset {
    make_synthetic(&SyntheticConfig { classes: 4, train_per_class: 8, test_per_class: 2, size: 16, seed: 3 }).0
}

fn quick_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        peak_lr: 0.05,
        peak_epoch: 2.0,
        momentum: 0.9,
        weight_decay: 5e-4,
        augment: false,
        seed: 7,
    }
}

#[test]
fn a_tiny_model_overfits_a_few_dozen_images_deterministically() {
    let data = tiny_data();
    let indices: Vec<usize> = (0..data.len()).collect();
    let config = ModelConfig::cifar(Architecture::Tiny);
    let device = device(DeviceKind::Flex).unwrap();
    let set = TrainSet { dataset: &data, indices: &indices, weights: None };
    let (model, logs) = train(&config, 4, set, &quick_config(25), &device, &NoProgress).unwrap();
    assert_eq!(logs.len(), 25);
    let eval = evaluate(&model, &config, &data, &indices, 16, &device, &NoProgress);
    assert!(
        eval.accuracy() >= 0.9,
        "training accuracy {} after 25 epochs; losses {:?}",
        eval.accuracy(),
        logs.iter().map(|l| l.loss).collect::<Vec<_>>()
    );
    // The same seed gives the same network.
    let (again, _) = train(&config, 4, set, &quick_config(25), &device, &NoProgress).unwrap();
    assert_eq!(evaluate(&again, &config, &data, &indices, 16, &device, &NoProgress).logits, eval.logits);
    // The head alone is retrained: convolution weights stay as they were, the head moves.
    let weights = |m: &ResNet| -> (Vec<f32>, Vec<f32>) {
        (
            m.conv1.weight.val().into_data().try_to_vec().unwrap(),
            m.linear.weight.val().into_data().try_to_vec().unwrap(),
        )
    };
    let (conv_before, head_before) = weights(&model);
    // As the generative intervention runs it: the model saved, then read back on a plain device (no gradients tracked).
    let tmp = tempfile::NamedTempFile::new().unwrap();
    load::save_weights(&model, tmp.path()).unwrap();
    let loaded = load::load_weights(ResNet::new(Architecture::Tiny, 4, &device), tmp.path()).unwrap();
    let (retrained, _) = retrain_head(model, &config, set, &quick_config(3), &device, &NoProgress).unwrap();
    let (conv_after, head_after) = weights(&retrained);
    assert_eq!(conv_after, conv_before, "retrain_head changed the backbone");
    assert_ne!(head_after, head_before, "retrain_head did not train the head");
    let (from_file, _) = retrain_head(loaded, &config, set, &quick_config(3), &device, &NoProgress).unwrap();
    assert_eq!(weights(&from_file), (conv_after, head_after), "a model read from a file retrains the same");
}

#[test]
fn evaluation_artifacts_have_the_right_shapes_and_indices() {
    let data = tiny_data();
    let config = ModelConfig::cifar(Architecture::Tiny);
    let device = device(DeviceKind::Flex).unwrap();
    let model = ResNet::seeded(Architecture::Tiny, 4, &device, 1);
    let indices = [5, 0, 17, 3, 31];
    let e = evaluate(&model, &config, &data, &indices, 2, &device, &NoProgress);
    assert_eq!(e.indices, indices);
    assert_eq!((e.logits.len(), e.features.len(), e.num_classes, e.feature_dim), (20, 5 * 64, 4, 64));
    assert_eq!(e.labels, indices.map(|i| data.labels()[i]));
    for r in 0..5 {
        let row = &e.logits[r * 4..(r + 1) * 4];
        let exp: Vec<f32> = row.iter().map(|v| (v - row.iter().cloned().fold(f32::MIN, f32::max)).exp()).collect();
        let p = exp[usize::from(e.labels[r])] / exp.iter().sum::<f32>();
        assert!((p - e.confidence[r]).abs() < 1e-5);
        assert_eq!(e.correct[r], e.predicted[r] == e.labels[r]);
    }
    let st = e.to_safetensors();
    let parsed = safetensors::SafeTensors::deserialize(&st).unwrap();
    assert_eq!(parsed.tensor("features").unwrap().shape(), &[5, 64]);
    assert_eq!(parsed.tensor("indices").unwrap().data().len(), 5 * 8);
    // It reads back as written; cut short or relabelled, it is an error saying what was expected.
    assert_eq!(Evaluation::from_safetensors(&st).unwrap(), e);
    let cut = Evaluation::from_safetensors(&st[..st.len() - 9]).unwrap_err().to_string();
    assert!(cut.contains("it may be truncated"), "{cut}");
    let mut short = e.clone();
    short.labels.pop();
    let wrong = Evaluation::from_safetensors(&short.to_safetensors()).unwrap_err().to_string();
    assert!(wrong.contains("5 indices but [4, 5, 5, 5, 5, 5] rows"), "{wrong}");
    let mut foreign = e.clone();
    foreign.labels[0] = 9;
    let wrong = Evaluation::from_safetensors(&foreign.to_safetensors()).unwrap_err().to_string();
    assert!(wrong.contains("label 9 is not a class of the 4 logits"), "{wrong}");
    // A mismatched weight vector is an error, not a panic.
    let weights = [1.0f32; 3];
    let set = TrainSet { dataset: &data, indices: &indices, weights: Some(&weights) };
    let e = train(&config, 4, set, &quick_config(3), &device, &NoProgress).unwrap_err();
    assert_eq!(e.to_string(), "3 loss weights for 5 training images");
}

#[test]
fn asking_for_a_backend_that_is_not_built_is_an_error() {
    if cfg!(not(feature = "cuda")) {
        let e = device(DeviceKind::Cuda).unwrap_err().to_string();
        assert!(e.starts_with("device \"cuda\" is not available: this build has no CUDA backend"), "{e}");
    }
    if cfg!(not(feature = "vulkan")) {
        let e = device(DeviceKind::Vulkan).unwrap_err().to_string();
        assert!(e.contains("rebuild with `--features vulkan`"), "{e}");
    }
    assert_eq!("gpu".parse::<DeviceKind>().unwrap_err(), "unknown device \"gpu\" (expected flex, cuda or vulkan)");
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn read_f32(bytes: &[u8], name: &str) -> (Vec<f32>, Vec<usize>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(), t.shape().to_vec())
}

#[test]
fn pytorch_weights_load_and_give_pytorchs_logits() {
    let device = device(DeviceKind::Flex).unwrap();
    let model =
        load::load_weights(ResNet::new(Architecture::Tiny, 10, &device), &fixture("tiny_resnet.safetensors")).unwrap();
    let io = std::fs::read(fixture("tiny_io.safetensors")).unwrap();
    let (input, shape) = read_f32(&io, "input");
    let x = Tensor::<4>::from_data(TensorData::new(input, [shape[0], shape[1], shape[2], shape[3]]), &device);
    let features: Vec<f32> = model.features(x.clone()).into_data().try_to_vec().unwrap();
    let logits: Vec<f32> = model.forward(x).into_data().try_to_vec().unwrap();
    let max_err = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max_err(&features, &read_f32(&io, "features").0) < 1e-4);
    assert!(max_err(&logits, &read_f32(&io, "logits").0) < 1e-4, "{:?}", logits);

    // Our own files round-trip, with PyTorch's names.
    let tmp = std::env::temp_dir().join(format!("fd-model-{}.safetensors", std::process::id()));
    load::save_weights(&model, &tmp).unwrap();
    let bytes = std::fs::read(&tmp).unwrap();
    let names: Vec<String> =
        safetensors::SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(String::from).collect();
    assert!(names.contains(&"layer2.0.shortcut.0.weight".to_string()), "{names:?}");
    assert!(names.contains(&"layer2.0.shortcut.1.running_var".to_string()), "{names:?}");
    assert!(names.contains(&"bn1.weight".to_string()) && names.contains(&"linear.weight".to_string()), "{names:?}");
    let (w, shape) = read_f32(&bytes, "linear.weight");
    assert_eq!(shape, [10, 64]);
    assert_eq!(w.len(), 640);
    let back = load::load_weights(ResNet::new(Architecture::Tiny, 10, &device), &tmp).unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(read_f32(&io, "input").0, [4, 3, 32, 32]), &device);
    let again: Vec<f32> = back.forward(x).into_data().try_to_vec().unwrap();
    assert_eq!(again, logits);
    // The wrong architecture names the offending tensors.
    let e = load::load_weights(ResNet::new(Architecture::Resnet10Narrow, 10, &device), &tmp).unwrap_err().to_string();
    assert!(e.contains(r#"ShapeMismatch { path: "conv1.weight", expected: Shape { dims: [32, 3, 3, 3] }, found: Shape { dims: [8, 3, 3, 3] } }"#), "{e}");
    std::fs::remove_file(&tmp).unwrap();
    let e = load::load_weights(ResNet::new(Architecture::Tiny, 10, &device), Path::new("/nonexistent/w.safetensors"))
        .unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/w.safetensors: no such file"), "{e}");
}

/// A batch larger than one inference group runs as groups spread over threads (`ResNet::features`): every row is
/// still its own image's features, in order, equal bit for bit to the whole batch's; the first four are PyTorch's.
#[test]
fn grouped_inference_keeps_every_image_in_its_row() {
    let device = device(DeviceKind::Flex).unwrap();
    let model =
        load::load_weights(ResNet::new(Architecture::Tiny, 10, &device), &fixture("tiny_resnet.safetensors")).unwrap();
    let io = std::fs::read(fixture("tiny_io.safetensors")).unwrap();
    let (input, _) = read_f32(&io, "input");
    let image = 3 * 32 * 32;
    // 37 images (two full groups and a short one): the fixture's four, then scaled copies of them.
    let batch: Vec<f32> = (0..37)
        .flat_map(|i| input[(i % 4) * image..][..image].iter().map(move |v| v * (1.0 + 0.05 * (i / 4) as f32)))
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(batch.clone(), [37, 3, 32, 32]), &device);
    assert!(crate::ops::is_plain_flex(&x), "the grouped path applies");
    let grouped: Vec<f32> = model.features(x.clone()).into_data().try_to_vec().unwrap();
    // On 32 × 32 images, bit for bit the whole batch's features.
    let whole: Vec<f32> = model.features_of_group(x).into_data().try_to_vec().unwrap();
    assert!(grouped == whole, "grouped inference changed the features' rounding");
    let dim = grouped.len() / 37;
    let want = read_f32(&io, "features").0;
    for (g, w) in grouped[..4 * dim].iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "{g} vs PyTorch's {w}");
    }
    for i in 0..37 {
        let one =
            Tensor::<4>::from_data(TensorData::new(batch[i * image..][..image].to_vec(), [1, 3, 32, 32]), &device);
        let alone: Vec<f32> = model.features(one).into_data().try_to_vec().unwrap();
        for (g, a) in grouped[i * dim..][..dim].iter().zip(&alone) {
            assert!((g - a).abs() <= 1e-5 * (1.0 + a.abs()), "image {i}: {g} in the batch, {a} alone");
        }
    }
}
