//! The embed stage sharded: shard `I` of `N` embeds a contiguous slice of the run's images (every part, in
//! [`SplitPart::ALL`] order, then by index, as [`fd_data::shard::Shard::range`] slices them) into
//! `shards/embed-I-of-N.safetensors`, a stage of its own (`embed-shard-I-of-N`: atomic, stamped, skipped when rerun
//! unchanged, so a preempted or failed shard is simply run again). The merge checks the shards' stamps and files (every
//! shard present, made from this run's config, data and weights, no overlap, no gap) and writes the embed stage's
//! artifacts under the embed stage's own key, so the later stages, and `fd-cli reproduce`, take them as the embed stage's.

use std::collections::BTreeMap;
use std::ops::Range;

use anyhow::{Context, Result, bail};
use fd_data::shard::{Shard, check_cover};
use fd_data::{Images, SplitPart};
use serde_json::{Value, json};

use crate::artifacts::{EmbedPart, EmbedSummary, Embeddings, Version, embeddings_file};
use crate::run::Run;

/// The stage of one shard.
fn stage(shard: Shard) -> String {
    format!("embed-shard-{}", shard.slug())
}

/// A shard's artifact, relative to the run directory.
fn shard_file(shard: Shard) -> String {
    format!("shards/embed-{}.safetensors", shard.slug())
}

/// A shard's config: the embed stage's, with the shard and the embedder's code revision (shards of one job may run
/// different builds; the merge takes only those that embed alike).
fn shard_config(config: &Value, shard: Shard, revision: u32) -> Value {
    let mut config = config.clone();
    config["shard"] = json!(shard);
    config["revision"] = json!(revision);
    config
}

/// Each part's images, in the order the shards slice them.
fn parts(run: &Run) -> Result<Vec<(SplitPart, &Images, &[usize])>> {
    let prepared = run.prepared()?;
    Ok(SplitPart::ALL
        .into_iter()
        .map(|part| {
            let (set, indices) = prepared.images(part);
            (part, set, indices)
        })
        .collect())
}

/// Embeds shard `shard` of the run's images.
pub(super) fn embed_shard(run: &Run, shard: Shard, config: Value, inputs: BTreeMap<String, String>) -> Result<()> {
    let stage = stage(shard);
    let embedder = run.embedder()?;
    run.engine.run(&stage, shard_config(&config, shard, embedder.revision()), inputs, |out| {
        let parts = parts(run)?;
        let total: usize = parts.iter().map(|(_, _, indices)| indices.len()).sum();
        let range = shard.range(total);
        let mut rows = Vec::with_capacity(range.len() * embedder.dim());
        let mut offset = 0;
        for (part, set, indices) in parts {
            let mine = overlap(&range, offset..offset + indices.len());
            let todo = &indices[mine.start - offset..mine.end - offset];
            offset += indices.len();
            if todo.is_empty() {
                continue;
            }
            println!("embed: shard {shard}: {} {part} images", todo.len());
            set.batches(todo, embedder.batch_size(), |_, images| {
                rows.extend(embedder.embed_batch(&images));
                Ok(())
            })?;
        }
        let name = shard_file(shard);
        let bytes = Embeddings { rows, dim: embedder.dim(), indices: range.collect() }.to_safetensors();
        std::fs::create_dir_all(out.join("shards"))?;
        fd_data::write_atomic(&out.join(&name), &bytes)?;
        Ok(vec![name])
    })?;
    Ok(())
}

/// The positions `a` and `b` share (empty, at `b`'s start, when none).
fn overlap(a: &Range<usize>, b: Range<usize>) -> Range<usize> {
    let (start, end) = (a.start.max(b.start), a.end.min(b.end));
    if start < end { start..end } else { b.start..b.start }
}

/// The finished shards in the run directory, by their stamps' names.
fn found_shards(run: &Run) -> Result<Vec<Shard>> {
    let dir = run.engine.dir().join("stages");
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let name = entry.with_context(|| format!("reading {}", dir.display()))?.file_name();
        let Some(slug) = name.to_str().and_then(|n| n.strip_prefix("embed-shard-")?.strip_suffix(".json")) else {
            continue;
        };
        let shard = slug.split_once("-of-").and_then(|(i, n)| Shard::new(i.parse().ok()?, n.parse().ok()?).ok());
        found.push(shard.with_context(|| format!("{}: not a shard's stamp", dir.join(&name).display()))?);
    }
    found.sort();
    Ok(found)
}

/// Merges the finished shards into the embed stage's artifacts.
pub(super) fn embed_merge(run: &Run, config: Value, inputs: BTreeMap<String, String>) -> Result<()> {
    let found = found_shards(run)?;
    if found.is_empty() {
        bail!(
            "{}: no finished embed shards; run `fd-cli embed --shard I/N` for each I of a job of N first",
            run.engine.dir().join("stages").display()
        );
    }
    // The job size most shards share; any other is a stale shard, which the cover check names.
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    found.iter().for_each(|s| *counts.entry(s.count).or_default() += 1);
    let count = counts.iter().max_by_key(|(n, k)| (**k, **n)).map(|(n, _)| *n).expect("a shard was found");
    let mut seconds = 0.0;
    let revision = run.embedder()?.revision();
    for &shard in &found {
        let stamp = run.engine.finished(&stage(shard))?;
        if stamp.key != run.engine.key(&stage(shard), &shard_config(&config, shard, revision), &inputs)? {
            bail!(
                "{}: shard {shard} was embedded with another config, dataset, weights or fd-cli version than this run's; \
                 remove it and run `fd-cli embed --shard {shard}` again",
                run.engine.dir().join("stages").join(format!("{}.json", stage(shard))).display()
            );
        }
        seconds += stamp.seconds;
        // Checks that the shard's file is on disk as its stage wrote it.
        run.engine.inputs(&[&stage(shard)], |_| true)?;
    }
    let parts = parts(run)?;
    let total: usize = parts.iter().map(|(_, _, indices)| indices.len()).sum();
    let mut read = Vec::new();
    for &shard in &found {
        let path = run.engine.dir().join(shard_file(shard));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let e = Embeddings::from_safetensors(&bytes).with_context(|| format!("reading {}", path.display()))?;
        let range = shard.range(total);
        if e.indices.len() != range.len() || e.indices.iter().zip(range.clone()).any(|(&a, b)| a != b) {
            bail!(
                "{}: holds {} rows, not positions {}..{} of {total} that shard {shard} covers; run it again",
                path.display(),
                e.indices.len(),
                range.start,
                range.end
            );
        }
        read.push((format!("{} ({shard})", path.display()), range, e));
    }
    let cover: Vec<(String, Range<usize>)> = read.iter().map(|(n, r, _)| (n.clone(), r.clone())).collect();
    let order = check_cover(total, &cover, count).context("merging the embed shards")?;
    let dim = read[order[0]].2.dim;
    if let Some((name, _, e)) = read.iter().find(|(_, _, e)| e.dim != dim) {
        bail!("{name}: rows of {} values, other shards' of {dim}; run it again", e.dim);
    }
    let rows: Vec<f32> = order.iter().flat_map(|&k| read[k].2.rows.iter().copied()).collect();
    run.engine.run("embed", config, inputs, |out| {
        let mut written = Vec::new();
        let mut summary = Vec::new();
        let mut offset = 0;
        for (part, _, indices) in &parts {
            let part_rows = rows[offset * dim..(offset + indices.len()) * dim].to_vec();
            offset += indices.len();
            let name = embeddings_file(*part);
            let bytes = Embeddings { rows: part_rows, dim, indices: indices.to_vec() }.to_safetensors();
            fd_data::write_atomic(&out.join(&name), &bytes)?;
            let share = if total == 0 { 0.0 } else { seconds * indices.len() as f64 / total as f64 };
            summary.push(EmbedPart { part: *part, images: indices.len(), seconds: share, cached: false });
            written.push(name);
        }
        println!("embed: merged {} shards of {count} ({total} images)", order.len());
        written.push(Run::write(out, &EmbedSummary { format_version: Version, dim, parts: summary })?);
        Ok(written)
    })?;
    Ok(())
}
