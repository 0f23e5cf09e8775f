//! The embed stage: every part in the latent space, `embeddings_<part>.safetensors` and `embed.json`; or the user's own
//! embeddings (`[embeddings]`) brought into the same artifacts.
//!
//! Computed embeddings are also kept in the cache directory, keyed by the embed config, the weights, the embedder's code
//! revision ([`fd_clip::Embedder::revision`]) and, for a dataset in memory, by each image's pixels ([`store`]), so another
//! run over any of the same images (another model, a relabelled task, a planted setting that changed a few images) embeds
//! only the new ones; for a dataset on disk, by the part's file fingerprint.

mod sharded;
mod store;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use fd_data::{Images, Progress, SplitPart};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::artifacts::embeddings_file;
use crate::artifacts::{EmbedPart, EmbedSummary, Embeddings, Version};
use crate::config::ImportedEmbeddings;
use crate::progress::Bars;
use crate::run::Run;
use crate::stage::Sharding;
use crate::stages::shard::Sharded;

/// The embed stage's config sections and inputs (the embedder's weights).
fn key(run: &Run) -> Result<(serde_json::Value, BTreeMap<String, String>)> {
    let config = json!({"data": run.data_key()?, "embed": run.embed_keyed()?});
    Ok((config, BTreeMap::from([("embedder weights".to_string(), run.embed_weights_sha()?)])))
}

/// Embeds every part, or one shard of the images, or merges the finished shards.
pub(super) fn embed(run: &Run, sharding: Sharding) -> Result<()> {
    if let Some(imported) = &run.experiment.embeddings {
        if sharding != Sharding::Whole {
            bail!("[embeddings] brings the user's own embeddings into the run: there is nothing to shard or merge");
        }
        return import(run, imported);
    }
    let (config, inputs) = key(run)?;
    if sharding != Sharding::Whole {
        let embedder = run.embedder()?;
        // In the embedder's batches, as the whole stage embeds a part with an empty cache: a matrix product's last bits
        // can depend on the rows multiplied with a row (gemm's blocking follows a product's shape).
        let (revision, align) = (embedder.revision(), embedder.batch_size());
        let extra = json!({"revision": revision});
        let sharded = Sharded { stage: "embed", config, inputs, extra, align, parts: &SplitPart::ALL };
        return match sharding {
            Sharding::Shard(s) => sharded::embed_shard(run, &embedder, &sharded, s),
            _ => sharded::embed_merge(run, sharded),
        };
    }
    let keyed = run.embed_keyed()?;
    let weights_sha = inputs["embedder weights"].clone();
    let data_key = config["data"].clone();
    run.engine.run("embed", config, inputs, |out| {
        let embedder = run.embedder()?;
        let prepared = run.prepared()?;
        let cache = run.data_dir.join("embeddings");
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let mut written = Vec::new();
        let mut parts = Vec::new();
        let space = serde_json::to_vec(&json!({"embed": keyed, "weights": weights_sha, "revision": embedder.revision()}))?;
        let mut store_key = Sha256::new();
        store_key.update(&space);
        let mut store: Option<store::Store> = None;
        for part in SplitPart::ALL {
            let (set, indices) = prepared.images(part);
            let mut hasher = Sha256::new();
            hasher.update(&space);
            match set {
                Images::Memory(d) => indices.iter().for_each(|&i| hasher.update(d.image_bytes(i))),
                Images::Files(f) => {
                    hasher.update(serde_json::to_vec(&data_key["files"])?);
                    indices.iter().for_each(|&i| hasher.update(f.rows()[i].to_le_bytes()));
                }
            }
            let cached = cache.join(format!("{}.safetensors", fd_data::to_hex(&hasher.finalize())));
            let name = embeddings_file(part);
            let start = Instant::now();
            let store_dir = cache.join(format!("images-{}", fd_data::to_hex(&store_key.clone().finalize())));
            let (rows, embedded) = part_rows(&embedder, set, indices, &cached, &mut store, &store_dir)?;
            let bytes = Embeddings { rows, dim: embedder.dim(), indices: indices.to_vec() }.to_safetensors();
            fd_data::write_atomic(&out.join(&name), &bytes)?;
            let seconds = start.elapsed().as_secs_f64();
            if embedded == 0 {
                println!("embed: {part:<6} {} images from the cache {}", indices.len(), cache.display());
            } else {
                let rate = embedded as f64 / seconds;
                println!(
                    "embed: {part:<6} {} images, {embedded} embedded in {seconds:.1} s ({rate:.1} images/s), the rest from the cache",
                    indices.len()
                );
            }
            parts.push(EmbedPart { part, images: indices.len(), seconds, cached: embedded == 0 });
            written.push(name);
        }
        written.push(Run::write(out, &EmbedSummary { format_version: Version, dim: embedder.dim(), parts })?);
        Ok(written)
    })?;
    Ok(())
}

/// A part's rows and how many images were embedded now (the rest came from the cache): for a dataset in memory through the
/// per-image cache (a part cached whole by an earlier version joins it); for a dataset on disk through the part's cache file.
fn part_rows(
    embedder: &fd_clip::Embedder,
    set: &Images,
    indices: &[usize],
    cached: &std::path::Path,
    store: &mut Option<store::Store>,
    store_dir: &std::path::Path,
) -> Result<(Vec<f32>, usize)> {
    let bars = Bars::default();
    let embed = |todo: &[usize]| -> Result<Vec<f32>> {
        bars.start("embed images", todo.len() as u64);
        let mut rows = Vec::with_capacity(todo.len() * embedder.dim());
        set.batches(todo, embedder.batch_size(), |chunk, images| {
            rows.extend(embedder.embed_batch(&images));
            bars.advance(chunk.len() as u64);
            Ok(())
        })?;
        bars.finish();
        Ok(rows)
    };
    Ok(match set {
        Images::Memory(d) => {
            if store.is_none() {
                *store = Some(store::Store::open(store_dir)?);
            }
            let store = store.as_mut().expect("opened above");
            let keys: Vec<[u8; 32]> = indices.iter().map(|&i| store::image_key(d, i)).collect();
            let missing: Vec<usize> = (0..keys.len()).filter(|&k| store.get(&keys[k]).is_none()).collect();
            if !missing.is_empty() && cached.is_file() {
                // A part cached whole by an earlier version: its rows join the per-image cache.
                let bytes = std::fs::read(cached).with_context(|| format!("reading {}", cached.display()))?;
                let old =
                    Embeddings::from_safetensors(&bytes).with_context(|| format!("reading {}", cached.display()))?;
                if old.indices == indices {
                    store.add(&keys, &old.rows, old.dim)?;
                }
            }
            let still: Vec<usize> = missing.into_iter().filter(|&k| store.get(&keys[k]).is_none()).collect();
            let embedded = still.len();
            if !still.is_empty() {
                let todo: Vec<usize> = still.iter().map(|&k| indices[k]).collect();
                let rows = embed(&todo)?;
                let new_keys: Vec<[u8; 32]> = still.iter().map(|&k| keys[k]).collect();
                store.add(&new_keys, &rows, embedder.dim())?;
            }
            let rows = keys.iter().flat_map(|k| store.get(k).expect("every image is cached now").iter().copied());
            (rows.collect(), embedded)
        }
        Images::Files(_) if cached.is_file() => {
            let bytes = std::fs::read(cached).with_context(|| format!("reading {}", cached.display()))?;
            let old = Embeddings::from_safetensors(&bytes).with_context(|| format!("reading {}", cached.display()))?;
            (old.rows, 0)
        }
        Images::Files(_) => {
            let rows = embed(indices)?;
            let bytes = Embeddings { rows, dim: embedder.dim(), indices: indices.to_vec() }.to_safetensors();
            fd_data::write_atomic(cached, &bytes)?;
            (Embeddings::from_safetensors(&bytes)?.rows, indices.len())
        }
    })
}

/// Brings the user's image embeddings into the run: one row per image of the dataset's listing, in its order or keyed by index.
fn import(run: &Run, imported: &ImportedEmbeddings) -> Result<()> {
    let path = &imported.images;
    let mut inputs = BTreeMap::new();
    for file in std::iter::once(path).chain(&imported.paths) {
        let sha = run.engine.sha256(file).with_context(|| format!("reading [embeddings] {}", file.display()))?;
        inputs.insert(format!("embeddings {}", file.display()), sha);
    }
    run.engine.run("embed", json!({"data": run.data_key()?, "embeddings": imported}), inputs, |out| {
        let start = Instant::now();
        let prepared = run.prepared()?;
        let mut table = read_rows(path)?;
        if let Some(paths) = &imported.paths {
            let Images::Files(files) = &prepared.test else {
                bail!("[embeddings] paths name files of a dataset on disk ([data.dataset] name = \"folder\")");
            };
            table.2 = Some(rows_by_path(paths, files.listing(), table.0.len())?);
        }
        let (rows_of, dim) = (table.0, table.1);
        let mut written = Vec::new();
        let mut parts = Vec::new();
        for part in SplitPart::ALL {
            let (set, indices) = prepared.images(part);
            let Images::Files(files) = set else {
                bail!("imported embeddings key their rows by the dataset's files; use them with a dataset on disk ([data.dataset] name = \"folder\")");
            };
            let listing_len = files.listing().entries.len();
            if rows_of.len() != listing_len && table.2.is_none() {
                bail!(
                    "{}: {} rows for a dataset of {listing_len} images; give one row per image in the listing's order, or an `index` tensor",
                    path.display(),
                    rows_of.len()
                );
            }
            let mut rows = Vec::with_capacity(indices.len() * dim);
            for &i in indices {
                let listing_row = files.rows()[i];
                let r = match &table.2 {
                    None => listing_row,
                    Some(by_row) => by_row.get(&listing_row).copied().with_context(|| {
                        format!("{}: no row for image {}", path.display(), files.listing().entries[listing_row].path.display())
                    })?,
                };
                rows.extend_from_slice(&rows_of[r]);
            }
            let name = embeddings_file(part);
            fd_data::write_atomic(&out.join(&name), &Embeddings { rows, dim, indices: indices.to_vec() }.to_safetensors())?;
            println!("embed: {part:<6} {} imported embeddings of dimension {dim}", indices.len());
            parts.push(EmbedPart { part, images: indices.len(), seconds: start.elapsed().as_secs_f64(), cached: false });
            written.push(name);
        }
        written.push(Run::write(out, &EmbedSummary { format_version: Version, dim, parts })?);
        Ok(written)
    })?;
    Ok(())
}

/// Each listing index's row, from an `index` tensor: `[rows]` integers, each a listing index, none negative or repeated.
fn index_map(path: &std::path::Path, a: &fd_data::arrays::Array, rows: usize) -> Result<BTreeMap<usize, usize>> {
    let Some(ints) = a.integers().filter(|i| a.shape.len() == 1 && i.len() == rows) else {
        bail!(
            "{}: `index` must be a 1-D integer tensor of {rows} values (one per row), found shape {:?}",
            path.display(),
            a.shape
        );
    };
    let mut out = BTreeMap::new();
    for (r, &i) in ints.iter().enumerate() {
        let Ok(i) = usize::try_from(i) else { bail!("{}: row {r}: index {i} is negative", path.display()) };
        if out.insert(i, r).is_some() {
            bail!("{}: row {r}: index {i} appears twice", path.display());
        }
    }
    Ok(out)
}

/// Each listing index's row, from a file naming each row's image (one path a line, as the listing names it).
fn rows_by_path(
    file: &std::path::Path,
    listing: &fd_data::folder::Listing,
    rows: usize,
) -> Result<BTreeMap<usize, usize>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() != rows {
        bail!(
            "{}: {} paths for {rows} embedding rows; give one path a line, in the rows' order",
            file.display(),
            lines.len()
        );
    }
    let by_path: BTreeMap<&std::path::Path, usize> =
        listing.entries.iter().enumerate().map(|(k, e)| (e.path.as_path(), k)).collect();
    let mut out = BTreeMap::new();
    for (r, line) in lines.iter().enumerate() {
        let Some(&k) = by_path.get(std::path::Path::new(line)) else {
            bail!("{}: line {}: {line:?} is not an image of the dataset", file.display(), r + 1);
        };
        if out.insert(k, r).is_some() {
            bail!("{}: line {}: {line:?} appears twice", file.display(), r + 1);
        }
    }
    Ok(out)
}

/// The rows of an embeddings file (`.npy` or safetensors `embeddings`), its dimension, and, with an `index` tensor, each listing
/// index's row. A non-finite value is an error naming the row.
type Rows = (Vec<Vec<f32>>, usize, Option<BTreeMap<usize, usize>>);

/// Reads an embeddings file.
pub(super) fn read_rows(path: &std::path::Path) -> Result<Rows> {
    // One read of the file: the rows and, in a safetensors file, the `index` beside them.
    let (array, index) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        (fd_data::arrays::read_npy(path)?, None)
    } else {
        let mut tensors = fd_data::arrays::read_safetensors(path)?;
        let names: Vec<String> = tensors.keys().cloned().collect();
        let Some(rows) = tensors.remove("embeddings") else {
            bail!("{}: no tensor named \"embeddings\" (the file has {names:?})", path.display());
        };
        (rows, tensors.remove("index"))
    };
    let [n, dim] = array.shape[..] else {
        bail!("{}: embeddings must be a 2-D array [rows, dim], found shape {:?}", path.display(), array.shape);
    };
    if n == 0 || dim == 0 {
        bail!("{}: the embeddings are empty (shape {:?})", path.display(), array.shape);
    }
    let values = array.to_f32();
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        bail!("{}: row {} has a non-finite value ({}); embeddings must be finite", path.display(), k / dim, values[k]);
    }
    let rows = values.chunks(dim).map(<[f32]>::to_vec).collect();
    let index = index.map(|a| index_map(path, &a, n)).transpose()?;
    Ok((rows, dim, index))
}
