//! The embed stage: every part in the latent space, `embeddings_<part>.safetensors` and `embed.json`.
//!
//! Embeddings are also kept in the cache directory, keyed by the images' pixels, the embed config and the weights, so another run
//! over the same images (another model, a relabelled task) reuses them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use fd_data::SplitPart;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::artifacts::embeddings_file;
use crate::artifacts::{EmbedPart, EmbedSummary, Embeddings, Version};
use crate::progress::Bars;
use crate::run::Run;

/// Embeds every part.
pub(super) fn embed(run: &Run) -> Result<()> {
    let keyed = run.embed_keyed()?;
    let weights_sha = run.embed_weights_sha()?;
    let config = json!({"data": run.experiment.data, "embed": keyed});
    let inputs = BTreeMap::from([("embedder weights".to_string(), weights_sha.clone())]);
    run.engine.run("embed", config, inputs, |out| {
        let embedder = run.embedder()?;
        let prepared = run.prepared()?;
        let cache = run.data_dir.join("embeddings");
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let mut written = Vec::new();
        let mut parts = Vec::new();
        for part in SplitPart::ALL {
            let (set, indices) = prepared.images(part);
            let mut hasher = Sha256::new();
            hasher.update(serde_json::to_vec(&json!({"embed": keyed, "weights": weights_sha}))?);
            for &i in indices {
                hasher.update(set.image_bytes(i));
            }
            let cached = cache.join(format!("{}.safetensors", fd_data::to_hex(&hasher.finalize())));
            let name = embeddings_file(part);
            let start = Instant::now();
            let from_cache = cached.is_file();
            if from_cache {
                std::fs::copy(&cached, out.join(&name)).with_context(|| format!("copying {}", cached.display()))?;
                println!("embed: {part:<6} {} images from the cache {}", indices.len(), cached.display());
            } else {
                let rows = embedder.embed_images(set, indices, &Bars::default());
                let seconds = start.elapsed().as_secs_f64();
                let bytes = Embeddings { rows, dim: embedder.dim(), indices: indices.to_vec() }.to_safetensors();
                fd_data::write_atomic(&out.join(&name), &bytes)?;
                fd_data::write_atomic(&cached, &bytes)?;
                let rate = indices.len() as f64 / seconds;
                println!("embed: {part:<6} {} images in {seconds:.1} s ({rate:.1} images/s)", indices.len());
            }
            let seconds = start.elapsed().as_secs_f64();
            parts.push(EmbedPart { part, images: indices.len(), seconds, cached: from_cache });
            written.push(name);
        }
        written.push(Run::write(out, &EmbedSummary { format_version: Version, dim: embedder.dim(), parts })?);
        Ok(written)
    })?;
    Ok(())
}
