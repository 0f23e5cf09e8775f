//! The stage bodies, one module each, and the dispatcher. Each reads its inputs through [`Run`], keys itself by the config sections
//! and input hashes it uses, and lets the [`crate::engine::Engine`] decide whether it runs.

#![allow(clippy::print_stdout)]

mod caption;
mod describe;
mod discover;
mod embed;
mod evaluate;
mod fetch;
mod fit;
mod generate;
mod report;
mod retrain;
mod retrain_generated;
mod select;
mod shard;
mod train;

use anyhow::{Result, bail};

use crate::run::Run;
use crate::stage::{Sharding, Stage};

/// Runs one stage over a run, or one shard of it, or merges its shards (only the stages that [`Stage::shards`]).
pub fn run_stage_sharded(run: &Run, stage: Stage, sharding: Sharding) -> Result<()> {
    match (stage, sharding) {
        (_, Sharding::Whole) => run_stage(run, stage),
        (Stage::Embed, _) => embed::embed(run, sharding),
        (Stage::Evaluate, _) => evaluate::evaluate(run, sharding),
        (Stage::Select, _) => select::select(run, sharding),
        _ => bail!("stage {stage} runs whole: only {} take --shard and --merge", Stage::sharded_names()),
    }
}

/// Runs one stage over a run.
pub fn run_stage(run: &Run, stage: Stage) -> Result<()> {
    match stage {
        Stage::Fetch => fetch::fetch(run),
        Stage::Train => train::train(run),
        Stage::Evaluate => evaluate::evaluate(run, Sharding::Whole),
        Stage::Embed => embed::embed(run, Sharding::Whole),
        Stage::Fit => fit::fit(run),
        Stage::Discover => discover::discover(run),
        Stage::Caption => caption::caption(run),
        Stage::Describe => describe::describe(run),
        Stage::Generate => generate::generate(run),
        Stage::Select => select::select(run, Sharding::Whole),
        Stage::Retrain => retrain::retrain(run),
        Stage::Report => report::report(run),
    }
}
