//! The one place fd-diffusion reads weights: diffusers' safetensors files (`unet/diffusion_pytorch_model.safetensors`,
//! `vae/diffusion_pytorch_model.safetensors`, fp16 or fp32; fp16 is loaded into f32).
//!
//! Names map onto the modules by [`RENAMES`]; both the current attention names of the VAE (`to_q`, `to_out.0`) and the
//! older ones (`query`, `proj_attn`) load. Every tensor is checked by name and shape before loading: a missing tensor, an
//! unexpected one or a shape that differs is an error naming the checkpoint's key and both shapes.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::Device;
use burn::prelude::Tensor;
use burn::store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;

use crate::config::{UNetConfig, VaeConfig};
use crate::error::{Error, Result};
use crate::unet::UNet;
use crate::vae::Vae;

/// diffusers' names to this crate's, applied in order (regular expressions, as burn-store's key remapping takes them).
pub const RENAMES: [(&str, &str); 8] = [
    (r"\.to_out\.0\.", ".to_out."),
    (r"\.ff\.net\.0\.proj\.", ".ff.proj."),
    (r"\.ff\.net\.2\.", ".ff.out."),
    // The VAE's mid-block attention, under its older names.
    (r"(mid_block\.attentions\.\d+)\.query\.", "$1.to_q."),
    (r"(mid_block\.attentions\.\d+)\.key\.", "$1.to_k."),
    (r"(mid_block\.attentions\.\d+)\.value\.", "$1.to_v."),
    (r"(mid_block\.attentions\.\d+)\.proj_attn\.", "$1.to_out."),
    // Its projections live in a nested `attention` here.
    (r"((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(to_q|to_k|to_v|to_out)\.", "$1.attention.$2."),
];

fn remapper() -> KeyRemapper {
    KeyRemapper::from_patterns(RENAMES.to_vec()).expect("the renames are valid regular expressions")
}

/// A checkpoint key under this crate's names.
pub fn canonical(key: &str) -> String {
    let mut name = key.to_string();
    for (pattern, replacement) in remapper().to_regex_pairs() {
        name = pattern.replace_all(&name, replacement.as_str()).into_owned();
    }
    name
}

/// Every tensor `module` holds, under PyTorch's parameter names and shapes (`weight`/`bias`, linear weights `[out, in]`),
/// read from the parameters' lazy shapes: listing v1's UNet allocates none of its 860 million weights.
pub fn expected_tensors<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut shapes = Shapes::default();
    module.visit(&mut shapes);
    shapes.out
}

/// A visitor collecting each float parameter's PyTorch name and shape.
#[derive(Default)]
struct Shapes {
    path: Vec<String>,
    containers: Vec<String>,
    out: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for Shapes {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let mut shape = param.lazy_shape().to_vec();
        let owner = self.containers.last().map_or("", String::as_str);
        let mut path = self.path.clone();
        match (owner, path.last().map(String::as_str)) {
            // burn's Linear holds [in, out]; PyTorch's [out, in].
            ("Struct:Linear", Some("weight")) => shape.reverse(),
            ("Struct:GroupNorm" | "Struct:LayerNorm", Some("gamma")) => {
                *path.last_mut().expect("a name") = "weight".into()
            }
            ("Struct:GroupNorm" | "Struct:LayerNorm", Some("beta")) => {
                *path.last_mut().expect("a name") = "bias".into()
            }
            _ => {}
        }
        self.out.push((path.join("."), shape));
    }
}

/// Checks the checkpoint's names and shapes against what `module` expects, naming the checkpoint's keys.
fn check<M: Module + ModuleSnapshot>(module: &M, path: &Path, what: &str) -> Result<()> {
    let err = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    // Only the header (a length, then JSON) is read here; the tensors are read when loading.
    let mut reader = std::io::BufReader::new(file);
    let mut len = [0u8; 8];
    std::io::Read::read_exact(&mut reader, &mut len).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 {
        return Err(err(format!("not a safetensors file (a header of {n} bytes)")));
    }
    let mut header = vec![0u8; n as usize];
    std::io::Read::read_exact(&mut reader, &mut header).map_err(|e| err(format!("truncated header: {e}")))?;
    let header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| err(format!("not a safetensors header: {e}")))?;
    let mut found: HashMap<String, (String, Vec<usize>)> = HashMap::new();
    for (key, info) in header.into_iter().filter(|(k, _)| k != "__metadata__") {
        let shape: Option<Vec<usize>> = info["shape"]
            .as_array()
            .and_then(|dims| dims.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
        let shape = shape.ok_or_else(|| err(format!("tensor {key} has no shape in the header")))?;
        found.insert(canonical(&key), (key, shape));
    }
    let wanted = expected_tensors(module);
    let (mut missing, mut reshaped) = (Vec::new(), Vec::new());
    for (name, shape) in &wanted {
        match found.get(name) {
            None => missing.push(format!("missing tensor {name} (expected shape {shape:?})")),
            Some((key, s)) if s != shape => reshaped.push(format!("tensor {key} has shape {s:?}, expected {shape:?}")),
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<String> = found
        .iter()
        .filter(|(c, _)| !wanted.iter().any(|(w, _)| w == *c))
        .map(|(_, (k, _))| format!("unexpected tensor {k}"))
        .collect();
    unexpected.sort();
    let counts =
        format!("{} missing, {} unexpected, {} of another shape", missing.len(), unexpected.len(), reshaped.len());
    // The first few of each kind, so that one kind cannot hide another.
    let problems: Vec<String> =
        [reshaped, missing, unexpected].into_iter().flat_map(|list| list.into_iter().take(4)).collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(err(format!("does not fit the {what} shape asked for ({counts}): {}", problems.join("; "))))
}

fn missing(path: &Path, what: &str) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        message: format!(
            "no such file; run `fd-cli fetch stable-diffusion` where a network is available, or copy the {what}'s \
             diffusion_pytorch_model.safetensors of stable-diffusion-v1-5 there"
        ),
    }
}

fn load_into<M: Module + ModuleSnapshot>(module: &mut M, path: &Path) -> Result<()> {
    let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
    let store = SafetensorsStore::from_file(path).with_from_adapter(adapter).remap(remapper());
    apply(module, store, path)
}

/// Applies `store` to `module`; an error or a missing tensor is an error naming `path`.
fn apply<M: Module + ModuleSnapshot>(module: &mut M, store: SafetensorsStore, path: &Path) -> Result<()> {
    let mut store = store.allow_partial(true);
    let result = module
        .load_from(&mut store)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut message: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        message.extend(result.missing.iter().map(|(k, _)| format!("missing tensor {k}")));
        return Err(Error::Weights { path: path.to_path_buf(), message: message.join("; ") });
    }
    Ok(())
}

/// Loads a UNet of `config`'s shape from a diffusers safetensors file.
pub fn load_unet(config: &UNetConfig, path: &Path, device: &Device) -> Result<UNet> {
    config.validate()?;
    if !path.is_file() {
        return Err(missing(path, "unet"));
    }
    let mut unet = UNet::new(config, device);
    check(&unet, path, "UNet")?;
    load_into(&mut unet, path)?;
    Ok(unet)
}

/// Loads a VAE of `config`'s shape from a diffusers safetensors file.
pub fn load_vae(config: &VaeConfig, path: &Path, device: &Device) -> Result<Vae> {
    config.validate()?;
    if !path.is_file() {
        return Err(missing(path, "vae"));
    }
    let mut vae = Vae::new(config, device);
    check(&vae, path, "VAE")?;
    load_into(&mut vae, path)?;
    Ok(vae)
}

/// A torch.onnx export's weights under diffusers' names. Named initializers keep their names; the exporter's anonymous
/// ones (`onnx::MatMul_2241`) are named by the module scope of the node that reads them (`/down_blocks.0/attentions.0/
/// transformer_blocks.0/attn1/to_q/MatMul` gives `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`): a
/// `MatMul`'s is a linear weight (stored `[in, out]`, transposed back), a `Mul`'s and an `Add`'s the weight and bias of a
/// GroupNorm (exported as an instance norm, a multiply and an add).
fn onnx_named(path: &Path) -> Result<Vec<(String, fd_clip::load::OnnxTensor)>> {
    let fd_clip::load::OnnxGraph { nodes, mut tensors } = fd_clip::load::read_onnx(path)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    let mut out = Vec::new();
    for node in &nodes {
        let scope: Vec<&str> = node.name.trim_start_matches('/').split('/').collect();
        let scope = scope[..scope.len().saturating_sub(1)].join(".");
        for input in node.inputs.iter().filter(|i| i.starts_with("onnx::")) {
            if scope.is_empty() {
                continue;
            }
            let named = match node.op_type.as_str() {
                "MatMul" => tensors
                    .remove(input)
                    .filter(|t| t.shape.len() == 2)
                    .map(|t| ("weight", fd_clip::load::transposed(&t))),
                "Mul" => tensors.remove(input).map(|t| ("weight", t)),
                "Add" => tensors.remove(input).map(|t| ("bias", t)),
                _ => None,
            };
            if let Some((what, t)) = named {
                out.push((format!("{scope}.{what}"), t));
            }
        }
    }
    out.extend(tensors.into_iter().filter(|(k, _)| !k.starts_with("onnx::")));
    Ok(out)
}

/// Loads `module` from a torch.onnx export: every tensor it expects must be found under its name behind one prefix
/// common to the file (an exporter's wrapper module adds one: `u.conv_in.weight`), of its shape or of its size with
/// trailing ones (a GroupNorm's `[C, 1, 1]`).
fn load_onnx_into<M: Module + ModuleSnapshot>(module: &mut M, path: &Path, what: &str) -> Result<()> {
    let err = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let found: HashMap<String, (String, fd_clip::load::OnnxTensor)> =
        onnx_named(path)?.into_iter().map(|(k, t)| (canonical(&k), (k, t))).collect();
    let wanted = expected_tensors(module);
    // The prefix under which most expected names are found.
    let mut prefixes: HashMap<&str, usize> = HashMap::new();
    for name in found.keys() {
        for (w, _) in &wanted {
            if let Some(p) = name.strip_suffix(w.as_str()).filter(|p| p.is_empty() || p.ends_with('.')) {
                *prefixes.entry(p).or_default() += 1;
            }
        }
    }
    let prefix = prefixes.into_iter().max_by_key(|&(p, n)| (n, std::cmp::Reverse(p.len()))).map_or("", |(p, _)| p);
    let mut views: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    let mut problems = Vec::new();
    for (name, shape) in wanted {
        match found.get(&format!("{prefix}{name}")) {
            None => problems.push(format!("missing tensor {prefix}{name} (expected shape {shape:?})")),
            Some((key, t)) => {
                let mut trimmed = t.shape.clone();
                while trimmed.len() > shape.len() && trimmed.last() == Some(&1) {
                    trimmed.pop();
                }
                if trimmed != shape {
                    problems.push(format!("tensor {key} has shape {:?}, expected {shape:?}", t.shape));
                    continue;
                }
                views.push((name, t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), shape));
            }
        }
    }
    if !problems.is_empty() {
        let more = if problems.len() > 8 { format!("; and {} more", problems.len() - 8) } else { String::new() };
        problems.truncate(8);
        return Err(err(format!("does not fit the {what} shape asked for: {}{more}", problems.join("; "))));
    }
    let tensors: Vec<(&str, safetensors::tensor::TensorView<'_>)> = views
        .iter()
        .map(|(n, bytes, shape)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .expect("the sizes were checked");
            (n.as_str(), view)
        })
        .collect();
    let bytes = safetensors::serialize(tensors, None).map_err(|e| err(e.to_string()))?;
    apply(module, SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter), path)
}

/// Loads a UNet of `config`'s shape from a torch.onnx export with the weights inside (as diffusers' ONNX conversion
/// script writes `unet/model.onnx` for models under 2 GB).
pub fn load_unet_onnx(config: &UNetConfig, path: &Path, device: &Device) -> Result<UNet> {
    config.validate()?;
    if !path.is_file() {
        return Err(missing(path, "unet"));
    }
    let mut unet = UNet::new(config, device);
    load_onnx_into(&mut unet, path, "UNet")?;
    Ok(unet)
}

/// Loads the VAE's decoder (and `post_quant_conv`) of `config`'s shape from a torch.onnx export of its decoding
/// (`vae_decoder/model.onnx`); the result cannot encode.
pub fn load_vae_decoder_onnx(config: &VaeConfig, path: &Path, device: &Device) -> Result<Vae> {
    config.validate()?;
    if !path.is_file() {
        return Err(missing(path, "vae_decoder"));
    }
    let mut vae = Vae::decoder_only(config, device);
    load_onnx_into(&mut vae, path, "VAE decoder")?;
    Ok(vae)
}

/// Checks that `path` is a diffusers UNet file of `config`'s shape (names and shapes), without loading it.
pub fn check_unet_file(config: &UNetConfig, path: &Path) -> Result<()> {
    config.validate()?;
    // Parameters are initialised lazily: building the module to list its tensors allocates none of them.
    check(&UNet::new(config, &Device::flex()), path, "UNet")
}

/// Checks that `path` is a diffusers VAE file of `config`'s shape (names and shapes), without loading it.
pub fn check_vae_file(config: &VaeConfig, path: &Path) -> Result<()> {
    config.validate()?;
    check(&Vae::new(config, &Device::flex()), path, "VAE")
}

/// The networks of a `[generate]` section: its files, or `default_dir`'s `unet.safetensors`, `vae.safetensors` and
/// `text_encoder.safetensors` (where `fd-cli fetch stable-diffusion` puts them).
pub fn load_generator(
    config: &crate::config::GenerateConfig,
    default_dir: &Path,
    device: &Device,
) -> Result<(crate::pipeline::Pipeline, crate::text::PromptEncoder)> {
    config.validate()?;
    let file = |given: &Option<std::path::PathBuf>, part: &str| {
        given.clone().unwrap_or_else(|| default_dir.join(format!("{part}.safetensors")))
    };
    let (unet_shape, vae_shape) = config.shapes();
    let text_shape = match config.preset {
        crate::config::Preset::SdV15 => fd_clip::clip::ClipConfig::vit_l14_text(),
        crate::config::Preset::Tiny => fd_clip::clip::ClipConfig { vision: None, ..fd_clip::clip::ClipConfig::tiny() },
    };
    let text_path = file(&config.text_encoder, "text_encoder");
    let tower = fd_clip::load::load_text_tower(&text_shape, &text_path, device)?;
    let encoder = crate::text::PromptEncoder::new(&text_shape, tower, device)?;
    let pipeline = crate::pipeline::Pipeline {
        unet: load_unet(&unet_shape, &file(&config.unet, "unet"), device)?,
        vae: load_vae(&vae_shape, &file(&config.vae, "vae"), device)?,
        schedule: crate::scheduler::ScheduleConfig::sd_v1(),
        latent_channels: vae_shape.latent_channels,
        downscale: vae_shape.downscale(),
    };
    Ok((pipeline, encoder))
}
