//! The embed stage as shards of a job ([`crate::stages::shard`]): a shard's rows in
//! `shards/embed-I-of-N/embeddings.safetensors`, indexed by their positions among the run's images; the merge joins them
//! in order and splits them back into the parts.

use anyhow::{Context, Result, bail};
use fd_data::shard::Shard;

use crate::artifacts::{EmbedPart, EmbedSummary, Embeddings, Version, embeddings_file};
use crate::run::Run;
use crate::stages::shard::Sharded;

/// A shard's file in its directory.
const FILE: &str = "embeddings.safetensors";

/// Embeds shard `shard` of the run's images.
pub(super) fn embed_shard(run: &Run, embedder: &fd_clip::Embedder, sharded: &Sharded, shard: Shard) -> Result<()> {
    sharded.run_shard(run, shard, |out, dir, slices| {
        let mut rows = Vec::new();
        let mut positions = Vec::new();
        for slice in slices.iter().filter(|s| !s.indices.is_empty()) {
            println!("embed: shard {shard}: {} {} images", slice.indices.len(), slice.part);
            slice.set.batches(slice.indices, embedder.batch_size(), |_, images| {
                rows.extend(embedder.embed_batch(&images));
                Ok(())
            })?;
            positions.extend(slice.positions.clone());
        }
        let name = format!("{dir}/{FILE}");
        let bytes = Embeddings { rows, dim: embedder.dim(), indices: positions }.to_safetensors();
        fd_data::write_atomic(&out.join(&name), &bytes)?;
        Ok(vec![name])
    })
}

/// Merges the finished shards into the embed stage's artifacts.
pub(super) fn embed_merge(run: &Run, sharded: Sharded) -> Result<()> {
    let finished = sharded.finished(run)?;
    let mut rows = Vec::new();
    let mut dim = None;
    for &shard in &finished.shards {
        let path = run.engine.dir().join(sharded.dir(shard)).join(FILE);
        let e = Embeddings::read_file(&path).with_context(|| format!("reading {}", path.display()))?;
        let (slices, _) = sharded.slices(run, shard)?;
        let expected: Vec<usize> = slices.iter().flat_map(|s| s.positions.clone()).collect();
        if e.indices != expected {
            bail!(
                "{}: holds {} rows, not the {} images of shard {shard}; {}",
                path.display(),
                e.indices.len(),
                expected.len(),
                sharded.redo(run, shard)
            );
        }
        if *dim.get_or_insert(e.dim) != e.dim {
            let redo = sharded.redo(run, shard);
            bail!("{}: rows of {} values, other shards' of {}; {redo}", path.display(), e.dim, dim.unwrap_or(0));
        }
        rows.extend(e.rows);
    }
    let dim = dim.expect("a finished shard");
    let (merged, count, seconds) = (finished.shards.len(), finished.count, finished.seconds);
    let Sharded { config, inputs, .. } = sharded;
    run.engine.run("embed", config, inputs, |out| {
        let prepared = run.prepared()?;
        let total = rows.len() / dim;
        let mut written = Vec::new();
        let mut summary = Vec::new();
        let mut offset = 0;
        for part in fd_data::SplitPart::ALL {
            let indices = prepared.images(part).1;
            let part_rows = rows[offset * dim..(offset + indices.len()) * dim].to_vec();
            offset += indices.len();
            let name = embeddings_file(part);
            let bytes = Embeddings { rows: part_rows, dim, indices: indices.to_vec() }.to_safetensors();
            fd_data::write_atomic(&out.join(&name), &bytes)?;
            let share = if total == 0 { 0.0 } else { seconds * indices.len() as f64 / total as f64 };
            summary.push(EmbedPart { part, images: indices.len(), seconds: share, cached: false });
            written.push(name);
        }
        println!("embed: merged {merged} shards of {count} ({total} images)");
        written.push(Run::write(out, &EmbedSummary { format_version: Version, dim, parts: summary })?);
        Ok(written)
    })?;
    Ok(())
}
