//! The stage engine: stamps, keys, and the `.partial/` rename, apart from what any stage computes.
//!
//! A stage is keyed by the sha256 of its name, the engine's version, the config sections it uses and the sha256 of every input.
//! A stage whose stamp (`stages/<stage>.json`) has the same key, and whose outputs are all on disk with the hashes the stamp
//! recorded, is skipped. Otherwise it writes into `.partial/<stage>/` and its outputs move into the run directory only once all
//! of them are complete, so an interruption never leaves a partial artifact in place of a finished one.
//!
//! Inputs are taken from the stamps of the stages that made them, and each is checked against the file on disk: a file edited
//! or damaged after its stage wrote it is an error naming the file and the stage that remakes it (and `reproduce` remakes it,
//! since that stage's own skip check sees the change first).

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::artifacts::Version;

/// Bumped when a stage's outputs change meaning or format, so old stamps stop matching.
const ENGINE_VERSION: u32 = 2;

/// What a finished stage leaves in `stages/<stage>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// The stamp's format.
    pub format_version: Version<1>,
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

/// How a file on disk differs from what a stamp recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mismatch {
    Missing,
    Changed,
}

/// How long a stage took in this process, and whether it was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The stage.
    pub stage: String,
    /// Seconds it took (when skipped: when it last ran).
    pub seconds: f64,
    /// Whether it was finished earlier and skipped now.
    pub skipped: bool,
}

/// The engine over one run directory: finished stages, their stamps, and file hashes computed at most once per file version.
#[derive(Debug)]
pub struct Engine {
    dir: PathBuf,
    /// sha256 by path, valid while the file's length and modification time stay the same.
    hashes: RefCell<HashMap<PathBuf, (u64, SystemTime, String)>>,
    /// Stages run or skipped in this process, in order.
    pub timings: RefCell<Vec<Timing>>,
}

impl Engine {
    /// The engine over run directory `dir`, which must exist.
    pub fn new(dir: &Path) -> Engine {
        Engine { dir: dir.to_path_buf(), hashes: RefCell::default(), timings: RefCell::default() }
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stamp_path(&self, stage: &str) -> PathBuf {
        self.dir.join("stages").join(format!("{stage}.json"))
    }

    /// The sha256 of a file, hashed once while it is unchanged.
    pub fn sha256(&self, path: &Path) -> Result<String> {
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let (len, modified) = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        if let Some((l, m, sha)) = self.hashes.borrow().get(path)
            && (*l, *m) == (len, modified)
        {
            return Ok(sha.clone());
        }
        let sha = fd_data::sha256_file(path)?;
        self.hashes.borrow_mut().insert(path.to_path_buf(), (len, modified, sha.clone()));
        Ok(sha)
    }

    /// The key a stage with `config` and `inputs` has (what its stamp records when it finished with them).
    pub fn key(&self, stage: &str, config: &Value, inputs: &BTreeMap<String, String>) -> Result<String> {
        key(stage, config, inputs)
    }

    /// The stamp of a finished stage, or an error saying which command makes it.
    pub fn finished(&self, stage: &str) -> Result<Stamp> {
        let path = self.stamp_path(stage);
        let command = stage.split('-').next().unwrap_or(stage);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{}: stage {stage:?} has not finished (run `fd-cli {command}` or `fd-cli reproduce` first)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a stamp of this version of fd-cli; run `fd-cli {command}` to redo the stage",
                path.display()
            )
        })
    }

    /// Whether the file at `rel` is missing or no longer has the hash `recorded`; `None` when it has.
    fn mismatch(&self, rel: &str, recorded: &str) -> Result<Option<Mismatch>> {
        let path = self.dir.join(rel);
        if !path.is_file() {
            return Ok(Some(Mismatch::Missing));
        }
        Ok((self.sha256(&path)? != recorded).then_some(Mismatch::Changed))
    }

    /// The first output of `stamp` whose file is missing or no longer has the hash the stamp recorded.
    pub fn changed_output(&self, stamp: &Stamp) -> Result<Option<(String, &'static str)>> {
        for (rel, sha) in &stamp.outputs {
            match self.mismatch(rel, sha)? {
                Some(Mismatch::Missing) => return Ok(Some((rel.clone(), "is missing"))),
                Some(Mismatch::Changed) => return Ok(Some((rel.clone(), "changed after the stage wrote it"))),
                None => {}
            }
        }
        Ok(None)
    }

    /// The outputs of finished `stages` that `only` keeps, by name, with their hashes, each checked against the file on disk.
    pub fn inputs(&self, stages: &[&str], only: impl Fn(&str) -> bool) -> Result<BTreeMap<String, String>> {
        let mut inputs = BTreeMap::new();
        for stage in stages {
            let stamp = self.finished(stage)?;
            for (name, sha) in stamp.outputs.into_iter().filter(|(name, _)| only(name)) {
                if let Some(m) = self.mismatch(&name, &sha)? {
                    let how = match m {
                        Mismatch::Changed => "changed after stage",
                        Mismatch::Missing => "is missing, though stage",
                    };
                    let command = stage.split('-').next().unwrap_or(stage);
                    bail!(
                        "{}: {how} {stage:?} wrote it (sha256 {sha} recorded); run `fd-cli {command}` or `fd-cli reproduce` to remake it",
                        self.dir.join(&name).display()
                    );
                }
                inputs.insert(name, sha);
            }
        }
        Ok(inputs)
    }

    /// Runs `work` unless a stamp with the same key and all its outputs, unchanged, is present; returns the stamp.
    /// `work` writes into the directory it is given and returns the relative paths it wrote.
    pub fn run(
        &self,
        stage: &str,
        config: Value,
        inputs: BTreeMap<String, String>,
        work: impl FnOnce(&Path) -> Result<Vec<String>>,
    ) -> Result<Stamp> {
        let key = key(stage, &config, &inputs)?;
        if let Ok(stamp) = self.finished(stage)
            && stamp.key == key
        {
            match self.changed_output(&stamp)? {
                None => {
                    println!("{stage}: unchanged, skipped");
                    self.record(stage, stamp.seconds, true);
                    return Ok(stamp);
                }
                Some((rel, how)) => println!("{stage}: {rel} {how}, so the stage runs again"),
            }
        }
        let partial = self.dir.join(".partial").join(stage);
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
            outputs.insert(rel.clone(), fd_data::sha256_file(&partial.join(rel))?);
        }
        self.commit(stage, &partial, &outputs)?;
        let stamp = Stamp { format_version: Version, stage: stage.to_string(), key, config, inputs, outputs, seconds };
        fd_data::write_atomic(&self.stamp_path(stage), &serde_json::to_vec_pretty(&stamp)?)?;
        std::fs::remove_dir_all(&partial).ok();
        println!("{stage}: done in {seconds:.1} s");
        self.record(stage, seconds, false);
        Ok(stamp)
    }

    /// Moves a stage's finished outputs from `partial` into the run directory, the old stamp removed first: from then until the
    /// new stamp lands, the stage counts as not finished.
    fn commit(&self, stage: &str, partial: &Path, outputs: &BTreeMap<String, String>) -> Result<()> {
        let path = self.stamp_path(stage);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        for (rel, sha) in outputs {
            let to = self.dir.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::rename(partial.join(rel), &to)
                .with_context(|| format!("moving {rel} into {}", self.dir.display()))?;
            // The next stage reads this file as an input: it need not hash it again.
            let meta = std::fs::metadata(&to).with_context(|| format!("reading {}", to.display()))?;
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            self.hashes.borrow_mut().insert(to, (meta.len(), modified, sha.clone()));
        }
        Ok(())
    }

    /// Records a stage's time.
    pub fn record(&self, stage: &str, seconds: f64, skipped: bool) {
        self.timings.borrow_mut().push(Timing { stage: stage.to_string(), seconds, skipped });
    }
}

/// A stage's key: the sha256 of its name, the engine's version, the stage's code revision (when not zero), its config
/// sections and its inputs.
fn key(stage: &str, config: &Value, inputs: &BTreeMap<String, String>) -> Result<String> {
    let mut keyed = json!({"stage": stage, "version": ENGINE_VERSION, "config": config, "inputs": inputs});
    let revision = crate::stage::Stage::from_name(stage).map_or(0, crate::stage::Stage::revision);
    if revision > 0 {
        keyed["revision"] = json!(revision);
    }
    Ok(fd_data::sha256_hex(serde_json::to_string(&keyed)?.as_bytes()))
}

#[cfg(test)]
mod tests;
