//! CLIP against Hugging Face transformers (tiny random weights here, ViT-B/32 shapes when `FD_CLIP_FULL` names the directory
//! `fixtures/make_clip_fixtures.py --full` wrote), and the tokenizer against open_clip.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::clip::ClipConfig;
use crate::fused_vit::FusedVit;
use crate::tests::{fixture, max_err, read};
use crate::tokenize::ClipTokenizer;
use crate::{Error, Preprocess, load, preprocess};

/// The tiny model's id for a real token id (the generator maps them the same way).
fn tiny_id(t: usize) -> usize {
    ClipConfig::fold_id(t, 1000)
}

#[test]
fn tokenizer_matches_open_clip_on_every_reference_caption() {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("tokenizer_reference.json")).unwrap()).unwrap();
    let captions: Vec<&str> = reference["captions"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(captions.len() >= 30);
    let tokenized = ClipTokenizer::new(77).tokenize(&captions);
    let mut wrong = Vec::new();
    for (k, expected) in reference["ids"].as_array().unwrap().iter().enumerate() {
        let expected: Vec<usize> = expected.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let got: Vec<usize> = tokenized.ids[k].iter().copied().filter(|&t| t != 0).collect();
        assert_eq!(tokenized.ids[k].len(), 77);
        if got != expected {
            wrong.push(format!("{:?}: got {got:?}, expected {expected:?}", captions[k]));
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ:\n{}", wrong.len(), captions.len(), wrong.join("\n"));
    // The two over-long captions were cut, and said so.
    let n = captions.len();
    assert_eq!(tokenized.truncated, [n - 2, n - 1]);
    assert_eq!(tokenized.ids[n - 1][76], 49407);
}

/// Image and text embeddings of the model at `weights` against the reference file, through the paper's preprocessing and the tokenizer.
/// Returns the largest errors seen: image (paper preprocessing), image (canonical), text, then both images through the
/// fused inference path ([`FusedVit`]).
fn check(
    model: &crate::clip::Clip,
    config: &ClipConfig,
    io: &[u8],
    map: impl Fn(usize) -> usize,
    tolerance: f32,
) -> [f32; 5] {
    let device = Device::flex();
    let size = config.vision.as_ref().unwrap().image_size;
    // Preprocessing: the paper's bilinear resize and CLIP's normalisation, against torch.
    let (images, s) = read(io, "images");
    let preprocessed = |p: Preprocess| {
        let n = s[1] * s[2] * 3;
        let mut pixels = Vec::new();
        for k in 0..s[0] {
            let image = fd_data::Image::new(s[1], s[2], images[k * n..(k + 1) * n].iter().map(|&v| v as u8).collect());
            preprocess::push_chw(&image, &p, &mut pixels);
        }
        pixels
    };
    let (paper, _) = read(io, "paper_pixels");
    let pixels = preprocessed(Preprocess::clip_paper(size));
    assert!(max_err(&pixels, &paper) < 1e-5, "pixels differ by {}", max_err(&pixels, &paper));
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [s[0], 3, size, size]), &device);
    let got: Vec<f32> = model.image_embeds(x.clone()).unwrap().into_data().try_to_vec().unwrap();
    let (expected, _) = read(io, "image_embeds");
    let image_err = max_err(&got, &expected);
    assert!(image_err <= tolerance, "image embeddings differ by {image_err}");
    // The inference path the embedder runs on the flex device, to the same reference.
    let fused = FusedVit::new(model.vision_model.as_ref().unwrap(), model.visual_projection.as_ref().unwrap());
    let got: Vec<f32> = fused.image_embeds(x).into_data().try_to_vec().unwrap();
    let fused_err = max_err(&got, &expected);
    assert!(fused_err <= tolerance, "the fused tower's image embeddings differ by {fused_err}");
    // CLIP's canonical preprocessing (Pillow's bicubic, centre crop), against torchvision on PIL images.
    let (canonical, _) = read(io, "canonical_pixels");
    let pixels = preprocessed(Preprocess::clip_canonical(size));
    assert!(max_err(&pixels, &canonical) < 1e-5, "canonical pixels differ by {}", max_err(&pixels, &canonical));
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [s[0], 3, size, size]), &device);
    let got: Vec<f32> = model.image_embeds(x.clone()).unwrap().into_data().try_to_vec().unwrap();
    let (expected, _) = read(io, "canonical_image_embeds");
    let canonical_err = max_err(&got, &expected);
    assert!(canonical_err <= tolerance, "canonical image embeddings differ by {canonical_err}");
    let got: Vec<f32> = fused.image_embeds(x).into_data().try_to_vec().unwrap();
    let fused_canonical_err = max_err(&got, &expected);
    assert!(fused_canonical_err <= tolerance, "the fused tower's canonical embeddings differ by {fused_canonical_err}");
    // Text: the tokenizer's ids (mapped for the tiny vocabulary) are the reference's, and the embeddings match.
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("tokenizer_reference.json")).unwrap()).unwrap();
    let captions: Vec<&str> = reference["captions"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let ids: Vec<Vec<usize>> = ClipTokenizer::new(77)
        .tokenize(&captions)
        .ids
        .into_iter()
        .map(|row| row.into_iter().map(&map).collect())
        .collect();
    let (expected_ids, _) = read(io, "input_ids");
    assert_eq!(ids.iter().flatten().map(|&i| i as f32).collect::<Vec<_>>(), expected_ids);
    let got: Vec<f32> = model.text_embeds(&ids, &device).unwrap().into_data().try_to_vec().unwrap();
    let (expected, _) = read(io, "text_embeds");
    let text_err = max_err(&got, &expected);
    assert!(text_err <= tolerance, "text embeddings differ by {text_err}");
    [image_err, canonical_err, text_err, fused_err, fused_canonical_err]
}

/// The model in `dir` named `name`, loaded from its Hugging Face safetensors and from its two ONNX exports, checked both ways.
/// Returns the largest errors (image, canonical image, text) of each loader.
fn check_both_loaders(
    config: &ClipConfig,
    dir: &Path,
    name: &str,
    map: impl Fn(usize) -> usize + Copy,
) -> serde_json::Value {
    let device = Device::flex();
    let io = std::fs::read(dir.join(format!("{name}_io.safetensors"))).unwrap();
    let model = load::load_clip(config, &dir.join(format!("{name}.safetensors")), &device).unwrap();
    let safetensors = check(&model, config, &io, map, 1e-4);
    let (vision, text) = (dir.join(format!("{name}_vision.onnx")), dir.join(format!("{name}_text.onnx")));
    let model = load::load_clip_onnx(config, Some(&vision), Some(&text), &device).unwrap();
    let onnx = check(&model, config, &io, map, 1e-4);
    let order = ["image", "image (canonical)", "text", "image (fused)", "image (canonical, fused)"];
    serde_json::json!({"max_abs_error": {"safetensors": safetensors, "onnx": onnx}, "order": order})
}

#[test]
fn tiny_clip_matches_transformers_through_safetensors_and_onnx() {
    check_both_loaders(&ClipConfig::tiny(), &fixture(""), "tiny_clip", tiny_id);
}

#[test]
fn full_size_vit_b32_matches_transformers_when_asked() {
    let Some(dir) = std::env::var_os("FD_CLIP_FULL").map(PathBuf::from) else { return };
    let errors = check_both_loaders(&ClipConfig::vit_b32(), &dir, "vit_b32", |t| t);
    // The figures for the record, next to the files they came from.
    std::fs::write(dir.join("parity.json"), errors.to_string()).unwrap();
}

#[test]
fn an_onnx_export_of_another_shape_is_an_error_naming_the_key_and_both_shapes() {
    let mut wider = ClipConfig::tiny();
    wider.vision.as_mut().unwrap().mlp_width = 96;
    let vision = fixture("tiny_clip_vision.onnx");
    let e = load::load_clip_onnx(&wider, Some(&vision), Some(&fixture("tiny_clip_text.onnx")), &Device::flex())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("tensor vision_model.encoder.layers.0.mlp.fc1.weight has shape [64, 32], expected [96, 32]"),
        "{e}"
    );
    let e = load::load_clip_onnx(&ClipConfig::tiny(), Some(&vision), None, &Device::flex()).unwrap_err();
    assert!(e.to_string().contains("no ONNX file"), "{e}");
}

#[test]
fn a_checkpoint_of_another_shape_is_an_error_naming_the_key_and_both_shapes() {
    let device = Device::flex();
    let mut wider = ClipConfig::tiny();
    wider.text.as_mut().unwrap().mlp_width = 128;
    let e = load::load_clip(&wider, &fixture("tiny_clip.safetensors"), &device).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("tensor text_model.encoder.layers.0.mlp.fc1.weight has shape [64, 32], expected [128, 32]"),
        "{message}"
    );
    assert!(message.contains("tiny_clip.safetensors"), "{message}");
    let e = load::load_clip(&ClipConfig::vit_b32(), &fixture("tiny_clip.safetensors"), &device).unwrap_err();
    let message = e.to_string();
    assert!(message.contains("has shape [32, 32], expected [768, 768]") && message.contains("more"), "{message}");
    let e = load::load_clip(&ClipConfig::tiny(), &fixture("no_such.safetensors"), &device).unwrap_err();
    assert!(matches!(e, Error::Weights { .. }) && e.to_string().contains("cargo xtask fetch clip"), "{e}");
    // A text-only shape loads the text tower of a full checkpoint and ignores the vision tower.
    let mut text_only = ClipConfig::tiny();
    text_only.vision = None;
    let model = load::load_clip(&text_only, &fixture("tiny_clip.safetensors"), &device).unwrap();
    assert!(model.vision_model.is_none() && model.text_model.is_some());
}

#[test]
fn vit_l14_text_tower_matches_transformers_when_asked() {
    let Some(dir) = std::env::var_os("FD_CLIP_L14_TEXT").map(PathBuf::from) else { return };
    let device = Device::flex();
    let config = ClipConfig::vit_l14_text();
    let model = load::load_clip(&config, &dir.join("vit_l14_text.safetensors"), &device).unwrap();
    let io = std::fs::read(dir.join("vit_l14_text_io.safetensors")).unwrap();
    let (ids, shape) = read(&io, "input_ids");
    let ids: Vec<Vec<usize>> = ids.chunks(shape[1]).map(|r| r.iter().map(|&v| v as usize).collect()).collect();
    let got: Vec<f32> = model.text_embeds(&ids, &device).unwrap().into_data().try_to_vec().unwrap();
    let (expected, _) = read(&io, "text_embeds");
    let embeds_err = max_err(&got, &expected);
    let hidden = model.text_model.as_ref().unwrap().hidden_states(&ids, &device);
    let got: Vec<f32> = hidden.into_data().try_to_vec().unwrap();
    let (expected, _) = read(&io, "last_hidden_state");
    let hidden_err = max_err(&got, &expected);
    std::fs::write(
        dir.join("parity.json"),
        format!("{{\"text_embeds\": {embeds_err}, \"last_hidden_state\": {hidden_err}}}"),
    )
    .unwrap();
    assert!(embeds_err <= 1e-4 && hidden_err <= 1e-4, "text embeddings {embeds_err}, hidden states {hidden_err}");
}

/// The embedder runs the fused tower on the flex device (revision 3), in batches of any size, to transformers' embeddings.
#[test]
fn the_clip_embedder_runs_the_fused_tower_to_the_reference() {
    let config = ClipConfig::tiny();
    let size = config.vision.as_ref().unwrap().image_size;
    let io = std::fs::read(fixture("tiny_clip_io.safetensors")).unwrap();
    let (images, s) = read(&io, "images");
    let n = s[1] * s[2] * 3;
    let images: Vec<fd_data::Image> = (0..s[0])
        .map(|k| fd_data::Image::new(s[1], s[2], images[k * n..(k + 1) * n].iter().map(|&v| v as u8).collect()))
        .collect();
    let embed = crate::EmbedConfig {
        embedder: crate::EmbedderKind::ClipTiny,
        image_size: size,
        batch_size: 2,
        weights: None,
        text_weights: None,
        resize: preprocess::Resize::Paper,
    };
    let embedder = crate::Embedder::clip(&config, &fixture("tiny_clip.safetensors"), &embed, &Device::flex()).unwrap();
    assert_eq!(embedder.revision(), 4, "the flex device runs the fused tower, its patch embedding as one product");
    let (expected, _) = read(&io, "image_embeds");
    let whole = embedder.embed_batch(&images);
    assert!(max_err(&whole, &expected) <= 1e-4, "embeddings differ by {}", max_err(&whole, &expected));
    let one: Vec<f32> = images.iter().flat_map(|i| embedder.embed_batch(std::slice::from_ref(i))).collect();
    assert!(max_err(&one, &whole) <= 1e-6, "an image alone and in a batch differ by {}", max_err(&one, &whole));
}
