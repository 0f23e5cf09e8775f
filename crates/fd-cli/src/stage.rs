//! The stages of a run, in order: one enum drives `reproduce`'s stage list, the stage subcommands and the dispatcher
//! ([`crate::stages::run_stage`]).

/// A stage of the paper's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The dataset and the embedder's weights into the cache directory.
    Fetch,
    /// The classifier.
    Train,
    /// The classifier on every part.
    Evaluate,
    /// Every part in the latent space.
    Embed,
    /// The per-class SVMs.
    Fit,
    /// Several failure modes per class, and the discovery methods against planted groups.
    Discover,
    /// The directions' names.
    Caption,
    /// The directions named by image attributes.
    Describe,
    /// Images of the failure captions (the generative intervention).
    Generate,
    /// The pool images each rule picks.
    Select,
    /// A classifier retrained with each pick.
    Retrain,
    /// The summary and the page.
    Report,
}

impl Stage {
    /// Every stage, in the order `reproduce` runs them.
    pub const ALL: [Stage; 12] = [
        Stage::Fetch,
        Stage::Train,
        Stage::Evaluate,
        Stage::Embed,
        Stage::Fit,
        Stage::Discover,
        Stage::Caption,
        Stage::Describe,
        Stage::Generate,
        Stage::Select,
        Stage::Retrain,
        Stage::Report,
    ];

    /// The stage's name: its subcommand, its stamp's file name, its `--skip` value.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Embed => "embed",
            Stage::Fit => "fit",
            Stage::Discover => "discover",
            Stage::Caption => "caption",
            Stage::Describe => "describe",
            Stage::Generate => "generate",
            Stage::Select => "select",
            Stage::Retrain => "retrain",
            Stage::Report => "report",
        }
    }

    /// The stage's code revision, part of its key: bumped when the stage's code changes what it writes (a better naming
    /// rule, a new metric) though its config and inputs did not, so finished runs redo the stage (and the stages reading
    /// its outputs, whose inputs then changed), nothing else. Zero is left out of the key, so stamps written before
    /// revisions existed still match.
    pub fn revision(self) -> u32 {
        match self {
            // 4: sharpness, noise and object share relative to the contrast; each piece of evidence named by its largest effect.
            // 5: saturation and colourfulness at a standard contrast.
            // 6: names ranked by the classifier's errors on val too; 7: ranked by the direction again, val's check kept.
            // 8: names distinct in their class, then names shared by most classes, lead.
            Stage::Describe => 8,
            // 1: the hard-caption accuracy over the supported captions' classes.
            Stage::Report => 1,
            _ => 0,
        }
    }

    /// What the stage does and writes, as its subcommand's help says.
    pub fn about(self) -> &'static str {
        match self {
            Stage::Fetch => "Get the dataset and the embedder's weights into the cache directory",
            Stage::Train => "Train the classifier on the train split: model.safetensors, train_log.json",
            Stage::Evaluate => "Evaluate the classifier on every split: eval_<split>.safetensors, evaluate.json",
            Stage::Embed => "Embed every split in the latent space: embeddings_<split>.safetensors, embed.json",
            Stage::Fit => {
                "Fit the per-class SVMs on val and score test: directions.json, directions.safetensors, fit.json"
            }
            Stage::Discover => {
                "Find up to m failure modes per class, each checked on test: modes.json; with planted groups, every method against them: discover.json"
            }
            Stage::Caption => "Name each class's failure direction and check the names on test: captions.json",
            Stage::Describe => {
                "Name each class's failure by image attributes (brightness, blur, colours, background), checked on test: names.json"
            }
            Stage::Generate => {
                "Generate images of each class's hard, easy and reference captions with Stable Diffusion: generated/, generated.json"
            }
            Stage::Select => "Pick pool images per class by SVM, confidence and at random: selections.json",
            Stage::Retrain => "Retrain from scratch with each selection added: retrain/<rule>-k<K>/",
            Stage::Report => "Write summary.json (the fidelity table against the paper) and report.html",
        }
    }

    /// Whether `fd-cli <name> --run DIR` runs the stage alone. `fetch` has a subcommand of its own that names what to fetch
    /// (`fd-cli fetch cifar10`), which needs no run directory.
    pub fn has_stage_command(self) -> bool {
        self != Stage::Fetch
    }

    /// The stage named `name`.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The names of all stages, comma-separated, for messages.
    pub fn names() -> String {
        Stage::ALL.map(Stage::name).join(", ")
    }

    /// Whether the stage runs as shards of a job on a scheduler (`--shard I/N`, then `--merge`).
    pub fn shards(self) -> bool {
        matches!(self, Stage::Embed | Stage::Evaluate | Stage::Select)
    }

    /// The names of the stages that shard, for messages.
    pub fn sharded_names() -> String {
        Stage::ALL.into_iter().filter(|s| s.shards()).map(Stage::name).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a stage runs: whole, as one shard of a job on a scheduler, or as the merge of a job's finished shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharding {
    /// The whole stage in this process.
    Whole,
    /// One shard of the stage's work.
    Shard(fd_data::shard::Shard),
    /// The finished shards merged into the stage's artifacts.
    Merge,
}
