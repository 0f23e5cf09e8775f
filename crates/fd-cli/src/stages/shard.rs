//! Stages run as shards of a job: shard `I` of `N` works on a contiguous slice of the run's images (every part of the
//! job's, in [`SplitPart::ALL`] order, then by index, as [`fd_data::shard::Shard::range`] slices them, in units of the stage's
//! batch within each part, so that a shard runs the very batches the whole stage runs) and writes into
//! `shards/<stage>-I-of-N/`, as a stage of its own (`<stage>-shard-I-of-N`: written through `.partial/`, stamped,
//! skipped when rerun unchanged, so a preempted or failed shard is simply run again). Before a merge, [`Sharded::finished`]
//! checks the shards' stamps: every shard present, each made from this run's config, data and inputs, no overlap, no gap.
//! The stage's own merge then reads the files and writes the stage's artifacts under the stage's own key, so the later
//! stages, and `fd-cli reproduce`, take them as the unsharded stage's.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result, bail};
use fd_data::shard::{Shard, check_cover};
use fd_data::{Images, SplitPart};
use serde_json::{Value, json};

use crate::run::Run;

/// A stage that shards, keyed as the whole stage is.
pub(super) struct Sharded {
    /// The stage (`embed`, `evaluate`, `select`).
    pub(super) stage: &'static str,
    /// The whole stage's config sections.
    pub(super) config: Value,
    /// The whole stage's inputs.
    pub(super) inputs: BTreeMap<String, String>,
    /// What else a shard's key holds (the embedder's code revision: shards of one job may run different builds, and the
    /// merge takes only those that compute alike).
    pub(super) extra: Value,
    /// Images per unit of work within a part: the whole stage's batch, since a batch's composition can change the last
    /// bits of its results (the classifier's do change).
    pub(super) align: usize,
    /// The parts whose images the job shares out ([`SplitPart::ALL`] for embed and evaluate, the extra pool for
    /// select's scoring).
    pub(super) parts: &'static [SplitPart],
}

/// One part's share of a shard.
pub(super) struct Slice<'r> {
    /// The part.
    pub(super) part: SplitPart,
    /// The images its indices index.
    pub(super) set: &'r Images,
    /// The part's indices that fall in the shard, in order.
    pub(super) indices: &'r [usize],
    /// Their positions among all the run's images.
    pub(super) positions: Range<usize>,
}

/// The finished shards of a job, in order, and how long they took together.
pub(super) struct Finished {
    pub(super) shards: Vec<Shard>,
    pub(super) count: usize,
    pub(super) seconds: f64,
}

impl Sharded {
    /// Each part's slice of `shard` (every part of the job, empty slices too) in units of [`Sharded::align`] images, and
    /// the job's units in all.
    pub(super) fn slices<'r>(&self, run: &'r Run, shard: Shard) -> Result<(Vec<Slice<'r>>, usize)> {
        let prepared = run.prepared()?;
        let lens: Vec<usize> = self.parts.iter().map(|&p| prepared.images(p).1.len()).collect();
        let (ranges, total) = shard.part_ranges(&lens, self.align);
        let mut position = 0;
        let mut out = Vec::new();
        for (&part, range) in self.parts.iter().zip(ranges) {
            let (set, indices) = prepared.images(part);
            out.push(Slice {
                part,
                set,
                indices: &indices[range.clone()],
                positions: position + range.start..position + range.end,
            });
            position += indices.len();
        }
        Ok((out, total))
    }

    /// The stage of one shard.
    fn stage_of(&self, shard: Shard) -> String {
        format!("{}-shard-{}", self.stage, shard.slug())
    }

    /// A shard's directory, relative to the run directory.
    pub(super) fn dir(&self, shard: Shard) -> String {
        format!("shards/{}-{}", self.stage, shard.slug())
    }

    /// A shard's config: the whole stage's, with the shard and the extra key.
    fn config_of(&self, shard: Shard) -> Value {
        let mut config = self.config.clone();
        config["shard"] = json!(shard);
        config["extra"] = self.extra.clone();
        config
    }

    /// Runs shard `shard`: `work` writes into the stage's output directory (under [`Sharded::dir`]) from the shard's
    /// slices and returns the relative paths it wrote.
    pub(super) fn run_shard(
        &self,
        run: &Run,
        shard: Shard,
        work: impl FnOnce(&Path, &str, Vec<Slice<'_>>) -> Result<Vec<String>>,
    ) -> Result<()> {
        run.engine.run(&self.stage_of(shard), self.config_of(shard), self.inputs.clone(), |out| {
            let (slices, _) = self.slices(run, shard)?;
            let dir = self.dir(shard);
            std::fs::create_dir_all(out.join(&dir))
                .with_context(|| format!("creating {}", out.join(&dir).display()))?;
            work(out, &dir, slices)
        })?;
        Ok(())
    }

    /// The job's finished shards, checked: each made from this run's config, data and inputs, its files as its stage
    /// wrote them, and together every position once.
    pub(super) fn finished(&self, run: &Run) -> Result<Finished> {
        let stages = run.engine.dir().join("stages");
        let found = self.found(&stages)?;
        if found.is_empty() {
            bail!(
                "{}: no finished {} shards; run `fd-cli {} --shard I/N` for each I of a job of N first",
                stages.display(),
                self.stage,
                self.stage
            );
        }
        // The job size most shards share; any other is a stale shard, which the cover check names.
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        found.iter().for_each(|s| *counts.entry(s.count).or_default() += 1);
        let count = counts.iter().max_by_key(|(n, k)| (**k, **n)).map(|(n, _)| *n).expect("a shard was found");
        let mut seconds = 0.0;
        for &shard in &found {
            let stage = self.stage_of(shard);
            let stamp = run.engine.finished(&stage).map_err(|e| anyhow::anyhow!("{e:#}; {}", self.redo(run, shard)))?;
            if stamp.key != run.engine.key(&stage, &self.config_of(shard), &self.inputs)? {
                bail!(
                    "shard {shard} was made with another config, dataset or inputs than this run's (or another embedder \
                     version); {}",
                    self.redo(run, shard)
                );
            }
            seconds += stamp.seconds;
            if let Some((rel, how)) = run.engine.changed_output(&stamp)? {
                let path = run.engine.dir().join(rel);
                bail!("{}: {how} (shard {shard}); {}", path.display(), self.redo(run, shard));
            }
        }
        let (_, total) = self.slices(run, found[0])?;
        let cover: Vec<(String, Range<usize>)> =
            found.iter().map(|&s| (format!("{} ({s})", self.stamp_path(run, s).display()), s.range(total))).collect();
        let order = check_cover(total, &cover, count).with_context(|| format!("merging the {} shards", self.stage))?;
        Ok(Finished { shards: order.into_iter().map(|k| found[k]).collect(), count, seconds })
    }

    /// What to do about a shard that cannot be merged: remove its stamp (else a rerun is skipped as finished) and run it.
    pub(super) fn redo(&self, run: &Run, shard: Shard) -> String {
        format!(
            "remove {} and run `fd-cli {} --shard {shard}` again",
            self.stamp_path(run, shard).display(),
            self.stage
        )
    }

    /// A shard's stamp.
    fn stamp_path(&self, run: &Run, shard: Shard) -> std::path::PathBuf {
        run.engine.dir().join("stages").join(format!("{}.json", self.stage_of(shard)))
    }

    /// The shards whose stamps are in `stages`, by their names.
    fn found(&self, stages: &Path) -> Result<Vec<Shard>> {
        let prefix = format!("{}-shard-", self.stage);
        let mut found = Vec::new();
        let entries = std::fs::read_dir(stages).with_context(|| format!("reading {}", stages.display()))?;
        for entry in entries {
            let name = entry.with_context(|| format!("reading {}", stages.display()))?.file_name();
            let Some(slug) = name.to_str().and_then(|n| n.strip_prefix(&prefix)?.strip_suffix(".json")) else {
                continue;
            };
            let shard = slug.split_once("-of-").and_then(|(i, n)| Shard::new(i.parse().ok()?, n.parse().ok()?).ok());
            found.push(shard.with_context(|| format!("{}: not a shard's stamp", stages.join(&name).display()))?);
        }
        found.sort();
        Ok(found)
    }
}
