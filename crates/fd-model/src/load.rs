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

/// Reads a classifier's predictions: one row per image, with the predicted class, per-class scores, or both.
/// - CSV with a header: an optional `path` (relative to the dataset's root) or `index` (into the dataset's listing) column to key
///   rows (without one, rows follow the listing's order); a `prediction` column (a class name or number); and/or one score
///   column per class, `prob_<class>` (probabilities) or `logit_<class>` (logits).
/// - `.npy`: a 1-D integer array of predicted classes, or a 2-D array `[images, classes]` of scores (probabilities when every
///   row is non-negative and sums to 1, else logits), in the listing's order.
/// - safetensors: `predicted` `[N]` and/or `probs` or `logits` `[N, classes]`, and optionally `index` `[N]`.
pub fn read_predictions(path: &Path, class_names: &[String]) -> Result<crate::external::Predictions> {
    use crate::external::{Predictions, RowKeys, ScoreKind, are_probabilities};
    let bad = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let class = |v: i64, row: usize| -> Result<u16> {
        u16::try_from(v)
            .ok()
            .filter(|&c| usize::from(c) < class_names.len())
            .ok_or_else(|| bad(format!("row {row}: predicted class {v} is out of range (0..{})", class_names.len())))
    };
    // Scores without a name saying what they are: probabilities when every row is a distribution, else logits.
    let scored = |scores: Vec<f32>, kind: Option<ScoreKind>| {
        let guess =
            if are_probabilities(&scores, class_names.len()) { ScoreKind::Probabilities } else { ScoreKind::Logits };
        Some((scores, kind.unwrap_or(guess)))
    };
    match ext.as_str() {
        "csv" => read_predictions_csv(path, class_names),
        "npy" | "safetensors" => {
            let arrays = if ext == "npy" {
                let a = fd_data::arrays::read_npy(path).map_err(|e| bad(e.to_string()))?;
                let name = if a.shape.len() == 1 { "predicted" } else { "scores" };
                std::collections::BTreeMap::from([(name.to_string(), a)])
            } else {
                fd_data::arrays::read_safetensors(path).map_err(|e| bad(e.to_string()))?
            };
            let predicted = match arrays.get("predicted") {
                Some(a) => {
                    let ints = a.integers().filter(|_| a.shape.len() == 1).ok_or_else(|| {
                        bad(format!("predicted classes must be a 1-D integer array, found shape {:?}", a.shape))
                    })?;
                    Some(ints.iter().enumerate().map(|(r, &v)| class(v, r)).collect::<Result<Vec<u16>>>()?)
                }
                None => None,
            };
            let score_array = ["scores", "probs", "logits"].iter().find_map(|n| arrays.get(*n).map(|a| (*n, a)));
            let (scores, num_classes) = match score_array {
                Some((name, a)) => {
                    let [_, classes] = a.shape[..] else {
                        return Err(bad(format!(
                            "scores must be a 2-D array [images, classes], found shape {:?}",
                            a.shape
                        )));
                    };
                    let kind = match name {
                        "probs" => Some(ScoreKind::Probabilities),
                        "logits" => Some(ScoreKind::Logits),
                        _ => None,
                    };
                    if classes != class_names.len() {
                        return Err(bad(format!(
                            "scores have {classes} columns, the dataset has {} classes ({})",
                            class_names.len(),
                            class_names.join(", ")
                        )));
                    }
                    (scored(a.to_f32(), kind), classes)
                }
                None => (None, class_names.len()),
            };
            let rows = match (&predicted, &scores) {
                (Some(p), Some((s, _))) if p.len() * num_classes != s.len() => {
                    return Err(bad(format!("{} predictions but {} score rows", p.len(), s.len() / num_classes)));
                }
                (Some(p), _) => p.len(),
                (None, Some((s, _))) => s.len() / num_classes,
                (None, None) => {
                    return Err(bad("no predictions: expected `predicted`, `probs` or `logits` tensors".into()));
                }
            };
            let keys = match arrays.get("index") {
                Some(a) => {
                    let ints = a.integers().filter(|i| a.shape.len() == 1 && i.len() == rows).ok_or_else(|| {
                        bad(format!("`index` must be a 1-D integer array of {rows} values, found shape {:?}", a.shape))
                    })?;
                    RowKeys::Index(ints.iter().map(|&i| usize::try_from(i).unwrap_or(usize::MAX)).collect())
                }
                None => RowKeys::Order,
            };
            Ok(Predictions { path: path.to_path_buf(), keys, predicted, scores, num_classes, rows })
        }
        _ => Err(bad("expected a .csv, .npy or .safetensors file of predictions".into())),
    }
}

fn read_predictions_csv(path: &Path, class_names: &[String]) -> Result<crate::external::Predictions> {
    use crate::external::{Predictions, RowKeys, ScoreKind};
    let bad = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read the CSV ({e})")))?;
    let header: Vec<String> =
        reader.headers().map_err(|e| bad(format!("cannot read the header ({e})")))?.iter().map(String::from).collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let score_columns = |prefix: &str| -> Option<Vec<usize>> {
        let cols: Vec<Option<usize>> = class_names.iter().map(|c| column(&format!("{prefix}{c}"))).collect();
        cols.iter().any(Option::is_some).then(|| cols.iter().flatten().copied().collect())
    };
    let (score_cols, kind) = match (score_columns("prob_"), score_columns("logit_")) {
        (Some(c), _) => (Some(c), ScoreKind::Probabilities),
        (None, Some(c)) => (Some(c), ScoreKind::Logits),
        (None, None) => (None, ScoreKind::Logits),
    };
    if let Some(cols) = &score_cols
        && cols.len() != class_names.len()
    {
        return Err(bad(format!(
            "score columns for {} of the {} classes; give one `prob_<class>` (or `logit_<class>`) column for each of: {}",
            cols.len(),
            class_names.len(),
            class_names.join(", ")
        )));
    }
    let prediction_col = column("prediction");
    if prediction_col.is_none() && score_cols.is_none() {
        return Err(bad(format!(
            "the header {header:?} has neither a `prediction` column nor `prob_<class>`/`logit_<class>` columns"
        )));
    }
    let (path_col, index_col) = (column("path"), column("index"));
    let (mut paths, mut indices, mut predicted, mut scores) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let get = |k: usize| record.get(k).unwrap_or("").trim();
        if let Some(k) = path_col {
            paths.push(std::path::PathBuf::from(get(k)));
        } else if let Some(k) = index_col {
            indices.push(
                get(k).parse::<usize>().map_err(|_| bad(format!("line {line}: index {:?} is not a number", get(k))))?,
            );
        }
        if let Some(k) = prediction_col {
            let v = get(k);
            let c = class_names
                .iter()
                .position(|c| c == v)
                .or_else(|| v.parse::<usize>().ok())
                .filter(|&c| c < class_names.len());
            let c = c.ok_or_else(|| {
                bad(format!(
                    "line {line}: prediction {v:?} is neither a class name ({}) nor a class number",
                    class_names.join(", ")
                ))
            })?;
            predicted.push(c as u16);
        }
        if let Some(cols) = &score_cols {
            for &k in cols {
                let v = get(k);
                scores.push(v.parse::<f32>().map_err(|_| bad(format!("line {line}: score {v:?} is not a number")))?);
            }
        }
    }
    let rows = if prediction_col.is_some() { predicted.len() } else { scores.len() / class_names.len().max(1) };
    if rows == 0 {
        return Err(bad("the file has no rows".into()));
    }
    let keys = if path_col.is_some() {
        RowKeys::Path(paths)
    } else if index_col.is_some() {
        RowKeys::Index(indices)
    } else {
        RowKeys::Order
    };
    Ok(Predictions {
        path: path.to_path_buf(),
        keys,
        predicted: prediction_col.map(|_| predicted),
        scores: score_cols.map(|_| (scores, kind)),
        num_classes: class_names.len(),
        rows,
    })
}

/// Reads the user's ONNX classifier at `path` and prepares it for `config`'s input (see [`crate::onnx::OnnxClassifier`]).
pub fn load_onnx_classifier(
    path: &Path,
    config: &crate::external::ClassifierConfig,
) -> Result<crate::onnx::OnnxClassifier> {
    let bytes = std::fs::read(path).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        message: format!("cannot read the ONNX model: {e}"),
    })?;
    crate::onnx::OnnxClassifier::from_bytes(&bytes, path, config)
}
