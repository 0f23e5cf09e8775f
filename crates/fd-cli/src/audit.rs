//! `fd-cli audit`: the whole method on the user's own images and classifier, from flags alone (no config file). The flags become
//! an [`Experiment`], saved as `config.toml` in the run directory like any other, so a run started here can be continued or
//! changed with the staged commands.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use fd_data::preprocess::{Preprocess, Resize};
use fd_data::{DataConfig, DatasetConfig, FolderConfig, SplitConfig};

use crate::config::{Experiment, ImportedEmbeddings};

/// Flags of `fd-cli audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// An image folder: `DIR/<class>/<image>`, or `DIR/<split>/<class>/<image>` with splits train, val, extra, test.
    #[arg(long, conflicts_with = "manifest", required_unless_present = "manifest")]
    pub images: Option<PathBuf>,
    /// Or a CSV manifest: `path,label` and optional `split`, `group` and metadata columns, paths relative to the manifest.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// A classes file: one class name a line, in the label order the classifier uses (default: the names, sorted).
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// The classifier's predictions: CSV (`path` or `index`, `prediction`, and/or `prob_<class>` columns), `.npy` or safetensors.
    #[arg(long, conflicts_with = "onnx", required_unless_present = "onnx")]
    pub predictions: Option<PathBuf>,
    /// Or the classifier as an ONNX model taking [N, 3, H, W] images and giving [N, classes].
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// The ONNX model's input side in pixels.
    #[arg(long, default_value_t = 224)]
    pub input_size: usize,
    /// The ONNX model's per-channel input mean on the 0-1 scale (default ImageNet's).
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [0.485f32, 0.456, 0.406])]
    pub mean: Vec<f32>,
    /// The ONNX model's per-channel input std on the 0-1 scale (default ImageNet's).
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [0.229f32, 0.224, 0.225])]
    pub std: Vec<f32>,
    /// How images reach the ONNX model's input: paper (the whole image, bilinear) or canonical (short side, centre crop).
    #[arg(long, default_value = "paper")]
    pub resize: String,
    /// The ONNX model takes BGR channels.
    #[arg(long)]
    pub bgr: bool,
    /// Images per ONNX forward pass (an export that fixes its batch size gets exactly this many, the last batch padded).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Your own image embeddings (.npy [images, dim] in the listing's order, or safetensors `embeddings` [+ `index`]),
    /// instead of computing them.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// The image of each embedding row: one path a line (as the folder or manifest lists it), in the rows' order.
    #[arg(long, requires = "embeddings")]
    pub embedding_paths: Option<PathBuf>,
    /// Caption embeddings from the same model's text tower (with --caption-texts).
    #[arg(long, requires = "caption_texts", requires = "embeddings")]
    pub captions: Option<PathBuf>,
    /// The captions, one a line, in the caption embeddings' order.
    #[arg(long, requires = "captions")]
    pub caption_texts: Option<PathBuf>,
    /// The latent space computed here when no --embeddings: efficientnet-lite0 (offline), clip-vit-b32 (needs its weights),
    /// efficientnet-tiny or clip-tiny (tests).
    #[arg(long, default_value = "efficientnet-lite0")]
    pub embedder: String,
    /// The embedder's weight file (default: the cache directory's).
    #[arg(long)]
    pub embed_weights: Option<PathBuf>,
    /// The embedder's input side in pixels (CLIP's is fixed at 224).
    #[arg(long)]
    pub embed_size: Option<usize>,
    /// Leave out images that cannot be decoded (listed in the run directory's unreadable.tsv) instead of stopping.
    #[arg(long)]
    pub skip_unreadable: bool,
    /// Pick this many extra-pool images per class by each rule (SVM, confidence, random) for you to label.
    #[arg(long)]
    pub select: Option<usize>,
    /// The run directory (default `runs/audit-<name of the folder or manifest>`).
    #[arg(long)]
    pub run: Option<PathBuf>,
}

impl AuditArgs {
    /// The experiment the flags describe, validated; its paths are absolute, so the saved `config.toml` works from any directory.
    pub fn experiment(&self) -> Result<Experiment> {
        let this = self.absolute()?;
        this.experiment_as_given()
    }

    /// The same flags with every path made absolute (an existing file or folder, or relative to the current directory).
    fn absolute(&self) -> Result<AuditArgs> {
        let fix = |p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
            p.as_ref().map(|p| std::path::absolute(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))).transpose()
        };
        Ok(AuditArgs {
            images: fix(&self.images)?,
            manifest: fix(&self.manifest)?,
            classes: fix(&self.classes)?,
            predictions: fix(&self.predictions)?,
            onnx: fix(&self.onnx)?,
            embeddings: fix(&self.embeddings)?,
            embedding_paths: fix(&self.embedding_paths)?,
            captions: fix(&self.captions)?,
            caption_texts: fix(&self.caption_texts)?,
            embed_weights: fix(&self.embed_weights)?,
            ..self.clone()
        })
    }

    fn experiment_as_given(&self) -> Result<Experiment> {
        let resize = match self.resize.as_str() {
            "paper" => Resize::Paper,
            "canonical" => Resize::Canonical,
            other => bail!("--resize {other:?}: expected paper or canonical"),
        };
        let channels = |v: &[f32], flag: &str| -> Result<[f32; 3]> {
            v.try_into().map_err(|_| anyhow::anyhow!("--{flag} needs three values, got {v:?}"))
        };
        let classifier = fd_model::external::ClassifierConfig {
            predictions: self.predictions.clone(),
            onnx: self.onnx.clone(),
            input: Preprocess {
                size: self.input_size,
                mean: channels(&self.mean, "mean")?,
                std: channels(&self.std, "std")?,
                resize,
            },
            bgr: self.bgr,
            batch_size: self.batch_size,
        };
        let embedder: fd_clip::EmbedderKind = serde_json::from_value(serde_json::Value::String(self.embedder.clone()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "--embedder {:?}: expected efficientnet-lite0, clip-vit-b32, efficientnet-tiny or clip-tiny",
                    self.embedder
                )
            })?;
        let embed = fd_clip::EmbedConfig {
            embedder,
            image_size: self.embed_size.or(embedder.fixed_size()).unwrap_or(224),
            batch_size: 32,
            weights: self.embed_weights.clone(),
            text_weights: None,
            resize: Resize::Paper,
        };
        let experiment = Experiment {
            data: DataConfig {
                dataset: DatasetConfig::Folder(FolderConfig {
                    images: self.images.clone(),
                    manifest: self.manifest.clone(),
                    classes: self.classes.clone(),
                    image_size: 32,
                    skip_unreadable: self.skip_unreadable,
                    planted_groups: Vec::new(),
                }),
                split: SplitConfig::paper_cifar10(),
                planted: None,
            },
            classifier: Some(classifier),
            model: None,
            train: None,
            embed: self.embeddings.is_none().then_some(embed),
            embeddings: self.embeddings.clone().map(|images| ImportedEmbeddings {
                images,
                paths: self.embedding_paths.clone(),
                captions: self.captions.clone(),
                caption_texts: self.caption_texts.clone(),
            }),
            caption: None,
            svm: None,
            modes: None,
            intervene: self.select.map(|k| crate::config::InterveneConfig {
                k: vec![k],
                rules: fd_svm::select::SelectionRule::PAPER.to_vec(),
                seed: 0,
                seeds: Vec::new(),
                retrain: vec![crate::config::RetrainMode::Scratch],
            }),
            generate: None,
        };
        experiment.validate()?;
        Ok(experiment)
    }

    /// The run directory: `--run`, else `runs/audit-<name of the folder or manifest>`.
    pub fn run_dir(&self) -> PathBuf {
        self.run.clone().unwrap_or_else(|| {
            let source = self.images.as_ref().or(self.manifest.as_ref());
            let name = source.and_then(|p| p.file_stem()).map_or("data".into(), |n| n.to_string_lossy().into_owned());
            PathBuf::from("runs").join(format!("audit-{name}"))
        })
    }
}
