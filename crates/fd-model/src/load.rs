//! Weights in and out, as safetensors with PyTorch's names, so a CIFAR ResNet trained in PyTorch loads here and ours loads there.
//!
//! PyTorch's `shortcut.0`/`shortcut.1` are this crate's `shortcut.conv`/`shortcut.bn`; burn-store's PyTorch adapters transpose linear weights and rename BatchNorm's `weight`/`bias` to `gamma`/`beta`.
//! PyTorch's `num_batches_tracked` counters are ignored when loading.

use std::path::Path;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::error::{Error, Result};
use crate::resnet::ResNet;

/// Writes `model`'s weights to `path` (atomically) with PyTorch's names and layouts.
pub fn save_weights(model: &ResNet, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"\.shortcut\.conv\.", ".shortcut.0.")
        .with_key_remapping(r"\.shortcut\.bn\.", ".shortcut.1.")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), message: format!("cannot write: {e}") })
}

/// Loads weights written by [`save_weights`] or by PyTorch's `safetensors.torch.save_file(model.state_dict())` into `model`,
/// which must have the same architecture; a missing, unexpected or mis-shaped tensor is an error naming it.
pub fn load_weights(model: ResNet, path: &Path) -> Result<ResNet> {
    if !path.is_file() {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            message: "no such file; train a model first (`fd-cli train`) or point the config at your weights".into(),
        });
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"\.shortcut\.0\.", ".shortcut.conv.")
        .with_key_remapping(r"\.shortcut\.1\.", ".shortcut.bn.")
        .allow_partial(true);
    let mut model = model;
    let result = model
        .load_from(&mut store)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), message: format!("{e}") })?;
    let unused: Vec<&String> = result.unused.iter().filter(|k| !k.ends_with("num_batches_tracked")).collect();
    if !result.errors.is_empty() || !result.missing.is_empty() || !unused.is_empty() {
        let mut message = Vec::new();
        message.extend(result.errors.iter().map(|e| format!("{e}")));
        message.extend(result.missing.iter().map(|(k, _)| format!("missing tensor {k}")));
        message.extend(unused.iter().map(|k| format!("unexpected tensor {k} (another architecture?)")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(model.no_grad())
}
