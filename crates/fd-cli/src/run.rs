//! A run: the run directory, its config, the cache directory, and every artifact's typed reader and writer in one place.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fd_data::SplitPart;

use crate::artifacts::{DirectionsFile, Embeddings, JsonArtifact, Scored, Version, embeddings_file, eval_file};
use crate::config::{self, Experiment};
use crate::engine::Engine;

/// One run: a config, a run directory and the cache directory.
#[derive(Debug)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// The cache directory (datasets, weights, embeddings).
    pub data_dir: PathBuf,
    /// The resolved config.
    pub experiment: Experiment,
    /// The stage engine over the run directory.
    pub engine: Engine,
    prepared: OnceCell<fd_data::Prepared>,
    /// The sha256 of the embedder's weight files, hashed once (CLIP's is 600 MB).
    weights_sha: OnceCell<String>,
    /// The fingerprint of a folder dataset's files, taken once.
    files_sha: OnceCell<String>,
}

impl Run {
    /// A run over `dir`, which is created, with the resolved config saved in it.
    pub fn open(dir: &Path, data_dir: &Path, experiment: Experiment) -> Result<Run> {
        std::fs::create_dir_all(dir.join("stages")).with_context(|| format!("creating {}", dir.display()))?;
        fd_data::write_atomic(&dir.join("config.toml"), config::to_toml(&experiment).as_bytes())?;
        Ok(Run {
            dir: dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            experiment,
            engine: Engine::new(dir),
            prepared: OnceCell::new(),
            weights_sha: OnceCell::new(),
            files_sha: OnceCell::new(),
        })
    }

    /// The split (and planted groups) the config describes.
    pub fn prepared(&self) -> Result<&fd_data::Prepared> {
        if let Some(p) = self.prepared.get() {
            return Ok(p);
        }
        let p = fd_data::load_prepared(&self.data_dir, &self.experiment.data).with_context(|| {
            match &self.experiment.data.dataset {
                fd_data::DatasetConfig::Folder(_) => {
                    "reading the dataset on disk that [data.dataset] names".to_string()
                }
                _ => format!("loading data from {} (run `fd-cli fetch cifar10` first)", self.data_dir.display()),
            }
        })?;
        if !p.skipped.is_empty() {
            let list: String = p.skipped.iter().map(|(path, why)| format!("{}\t{why}\n", path.display())).collect();
            fd_data::write_atomic(&self.dir.join("unreadable.tsv"), list.as_bytes())?;
            tracing::warn!(images = p.skipped.len(), "left out unreadable images (listed in unreadable.tsv)");
        }
        Ok(self.prepared.get_or_init(|| p))
    }

    /// The `[data]` section as stage keys see it: a dataset on disk adds a fingerprint of its files (paths, labels, lengths and
    /// modification times), so that changed images rerun the stages that read them.
    pub fn data_key(&self) -> Result<serde_json::Value> {
        let mut key = serde_json::to_value(&self.experiment.data)?;
        if let fd_data::DatasetConfig::Folder(c) = &self.experiment.data.dataset {
            if self.files_sha.get().is_none() {
                let sha = c.listing()?.fingerprint()?;
                let _ = self.files_sha.set(sha);
            }
            key["files"] = self.files_sha.get().cloned().into();
        }
        Ok(key)
    }

    /// The side of the square images a classifier trained here sees (a built-in dataset's own; a folder dataset's `image_size`).
    pub fn classifier_size(&self) -> usize {
        match &self.experiment.data.dataset {
            fd_data::DatasetConfig::Folder(c) => c.image_size,
            _ => 32,
        }
    }

    /// The number of classes.
    pub fn num_classes(&self) -> Result<usize> {
        // The data already loaded knows; else the config (a dataset on disk by its listing alone, nothing decoded).
        match self.prepared.get() {
            Some(p) => Ok(p.train.num_classes()),
            None => Ok(self.experiment.data.class_names()?.len()),
        }
    }

    /// The device the config names.
    pub fn device(&self) -> Result<fd_model::Device> {
        let kind = self.experiment.model.as_ref().map_or(fd_model::DeviceKind::Flex, |m| m.device);
        Ok(fd_model::device(kind)?)
    }

    /// The `[model]` and `[train]` sections.
    pub fn model_sections(&self) -> Result<(&fd_model::ModelConfig, &fd_model::TrainConfig)> {
        match (&self.experiment.model, &self.experiment.train) {
            (Some(m), Some(t)) => Ok((m, t)),
            _ => bail!("the config needs [model] and [train] sections"),
        }
    }

    /// The `[embed]` section.
    pub fn embed_section(&self) -> Result<&fd_clip::EmbedConfig> {
        self.experiment.embed.as_ref().context("the config needs an [embed] section")
    }

    /// The `[embed]` section as stage keys see it: without the weights' paths, which the weights' hash stands for.
    pub fn embed_keyed(&self) -> Result<fd_clip::EmbedConfig> {
        let mut keyed = self.embed_section()?.clone();
        keyed.weights = None;
        keyed.text_weights = None;
        Ok(keyed)
    }

    /// The `[caption]` section, or its defaults.
    pub fn caption_config(&self) -> fd_caption::class::CaptionConfig {
        self.experiment.caption.clone().unwrap_or_default()
    }

    /// The embedder's weight file: the config's, else the cache directory's.
    pub fn embed_weights(&self) -> Result<PathBuf> {
        let config = self.embed_section()?;
        Ok(config
            .weights
            .clone()
            .unwrap_or_else(|| crate::fetch::default_embedder_weights(&self.data_dir, config.embedder)))
    }

    /// The sha256 of the embedder's weight files ("missing" while they are not there), computed once.
    pub fn embed_weights_sha(&self) -> Result<String> {
        if let Some(sha) = self.weights_sha.get() {
            return Ok(sha.clone());
        }
        let mut files = vec![self.embed_weights()?];
        files.extend(self.embed_section()?.text_weights.clone());
        // A missing file may yet be fetched, so only a real hash is kept.
        if !files.iter().all(|f| f.is_file()) {
            return Ok("missing".into());
        }
        let shas = files.iter().map(|f| self.engine.sha256(f)).collect::<Result<Vec<_>>>()?;
        Ok(self.weights_sha.get_or_init(|| shas.join("+")).clone())
    }

    /// The embedder, or an error saying how to get its weights.
    pub fn embedder(&self) -> Result<fd_clip::Embedder> {
        let config = self.embed_section()?;
        let weights = self.embed_weights()?;
        if !weights.is_file() {
            bail!(
                "{}: the embedder's weights are missing; run `cargo xtask fetch {}` (or `fd-cli fetch ...`) where a network is, \
                 or set `weights` in [embed]; earlier artifacts in {} are kept",
                weights.display(),
                if config.embedder.is_clip() { "clip" } else { "efficientnet-lite0" },
                self.dir.display()
            );
        }
        Ok(fd_clip::Embedder::from_config(config, &weights, &self.device()?)?)
    }

    /// The classifier saved at `rel` in the run directory.
    pub fn load_model(&self, rel: &str, device: &fd_model::Device) -> Result<fd_model::ResNet> {
        let (model_config, _) = self.model_sections()?;
        let fresh = fd_model::ResNet::new(model_config.architecture, self.num_classes()?, device);
        Ok(fd_model::load::load_weights(fresh, &self.dir.join(rel))?)
    }

    fn read_bytes(&self, rel: &str, stage: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(rel);
        std::fs::read(&path)
            .with_context(|| format!("reading {} (run `fd-cli {stage}` or `fd-cli reproduce` first)", path.display()))
    }

    /// A JSON artifact, checked against its format.
    pub fn read<T: JsonArtifact>(&self) -> Result<T> {
        let bytes = self.read_bytes(T::FILE, T::STAGE)?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not the {} that this fd-cli writes (damaged, or from another version); run `fd-cli {}` to remake it",
                self.dir.join(T::FILE).display(),
                T::FILE,
                T::STAGE
            )
        })
    }

    /// Writes a JSON artifact into a stage's output directory and returns its name.
    pub fn write<T: JsonArtifact>(out: &Path, value: &T) -> Result<String> {
        fd_data::write_atomic(&out.join(T::FILE), &serde_json::to_vec_pretty(value)?)?;
        Ok(T::FILE.into())
    }

    /// An evaluation the `evaluate` or a `retrain` stage wrote, at `rel`.
    pub fn read_eval(&self, rel: &str) -> Result<fd_model::Evaluation> {
        let bytes = self.read_bytes(rel, "evaluate")?;
        fd_model::Evaluation::from_safetensors(&bytes).with_context(|| {
            format!(
                "{}: not an evaluation this fd-cli wrote; run `fd-cli evaluate` to remake it",
                self.dir.join(rel).display()
            )
        })
    }

    /// Writes an evaluation at `rel` in a stage's output directory.
    pub fn write_eval(out: &Path, rel: &str, eval: &fd_model::Evaluation) -> Result<String> {
        fd_data::write_atomic(&out.join(rel), &eval.to_safetensors())?;
        Ok(rel.into())
    }

    /// A part's embeddings.
    pub fn read_embeddings(&self, part: SplitPart) -> Result<Embeddings> {
        let path = self.dir.join(embeddings_file(part));
        if !path.is_file() {
            bail!("reading {} (run `fd-cli embed` or `fd-cli reproduce` first)", path.display());
        }
        Embeddings::read_file(&path).with_context(|| {
            format!("{}: not embeddings this fd-cli wrote; run `fd-cli embed` to remake them", path.display())
        })
    }

    /// A part's embeddings joined with the classifier's evaluation of the same images.
    pub fn scored(&self, part: SplitPart) -> Result<Scored> {
        let embeddings = self.read_embeddings(part)?;
        let eval = self.read_eval(&eval_file(part))?;
        Scored::join(embeddings, eval).with_context(|| {
            format!("{} and {} disagree; run `fd-cli reproduce` to remake them", embeddings_file(part), eval_file(part))
        })
    }

    /// The fitted directions.
    pub fn directions(&self) -> Result<fd_svm::Directions> {
        Ok(self.read::<DirectionsFile>()?.directions)
    }

    /// Writes the directions (`directions.json` and `directions.safetensors`) into a stage's output directory.
    pub fn write_directions(out: &Path, directions: &fd_svm::Directions) -> Result<Vec<String>> {
        let file = DirectionsFile { format_version: Version, directions: directions.clone() };
        let json = Run::write(out, &file)?;
        fd_data::write_atomic(&out.join("directions.safetensors"), &directions.to_safetensors())?;
        Ok(vec![json, "directions.safetensors".into()])
    }
}
