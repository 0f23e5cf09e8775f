//! The embed stage as shards of a job: each shard its own stamped stage, safe to rerun; the merge rejects a missing,
//! foreign or overlapping shard by name, and gives, bit for bit, what the unsharded stage gives.

use std::process::{Command, Output};

use super::{fd_cli, root, stage_lines, stderr_of_failure, stdout};

/// fd-cli as a Slurm array task would run it: the shard in the environment, not on the command line.
fn as_array_task(tmp: &std::path::Path, args: &[&str], id: &str, count: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fd-cli"))
        .args(args)
        .env("FD_DATA_DIR", tmp.join("cache"))
        .env("FD_LOG", "warn")
        .env("SLURM_ARRAY_TASK_ID", id)
        .env("SLURM_ARRAY_TASK_COUNT", count)
        .current_dir(root())
        .output()
        .expect("running fd-cli")
}

/// The key in a finished stage's stamp.
fn stage_key(run: &std::path::Path, stage: &str) -> serde_json::Value {
    let path = run.join(format!("stages/{stage}.json"));
    let stamp: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    stamp["key"].clone()
}

#[test]
fn sharded_embedding_merges_into_the_unsharded_result_and_rejects_bad_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, sharded) = (tmp.path().join("whole"), tmp.path().join("sharded"));
    let (whole_s, sharded_s) = (whole.to_str().unwrap(), sharded.to_str().unwrap());
    let config = "configs/smoke.toml";
    stdout(&fd_cli(tmp.path(), &["embed", "--config", config, "--run", whole_s]));

    let embed = |extra: &[&str]| {
        let mut args = vec!["embed", "--config", config, "--run", sharded_s];
        args.extend_from_slice(extra);
        fd_cli(tmp.path(), &args)
    };
    // Shards 0 and 2 of 3; the merge names the missing one.
    stdout(&embed(&["--shard", "0/3"]));
    let out = stdout(&as_array_task(tmp.path(), &["embed", "--config", config, "--run", sharded_s], "2", "3"));
    assert!(out.contains("shard 2/3, from the scheduler's environment"), "{out}");
    let err = stderr_of_failure(&embed(&["--merge"]));
    assert!(err.contains("shard 1/3 is missing"), "{err}");
    assert!(!sharded.join("embeddings_val.safetensors").exists(), "no merge without every shard");
    stdout(&embed(&["--shard", "1/3"]));
    // A shard run again is skipped: its stamp says it finished.
    let again = stdout(&embed(&["--shard", "1/3"]));
    assert_eq!(stage_lines(&again), ["embed-shard-1-of-3: unchanged, skipped"], "{again}");

    // A stale shard of another job size overlaps the others.
    stdout(&embed(&["--shard", "1/2"]));
    let err = stderr_of_failure(&embed(&["--merge"]));
    assert!(err.contains("overlap") && err.contains("(1/2)"), "{err}");
    std::fs::remove_file(sharded.join("stages/embed-shard-1-of-2.json")).unwrap();

    // A shard embedded under another config is foreign.
    let other = tmp.path().join("other.toml");
    let text = std::fs::read_to_string(root().join(config)).unwrap();
    std::fs::write(&other, text.replace("image_size = 32", "image_size = 24")).unwrap();
    let other_s = other.to_str().unwrap();
    stdout(&fd_cli(tmp.path(), &["embed", "--config", other_s, "--run", sharded_s, "--shard", "0/3"]));
    let err = stderr_of_failure(&embed(&["--merge"]));
    assert!(err.contains("embed-shard-0-of-3.json") && err.contains("another config"), "{err}");
    stdout(&embed(&["--shard", "0/3"]));

    // The merge: the embed stage's artifacts, equal to the unsharded stage's bit for bit, under its key.
    let out = stdout(&embed(&["--merge"]));
    assert!(out.contains("merged 3 shards of 3"), "{out}");
    for part in ["train", "val", "extra", "test"] {
        let name = format!("embeddings_{part}.safetensors");
        let (a, b) = (std::fs::read(whole.join(&name)).unwrap(), std::fs::read(sharded.join(&name)).unwrap());
        assert!(a == b, "{name}: the merged shards differ from the unsharded stage");
    }
    assert_eq!(stage_key(&whole, "embed"), stage_key(&sharded, "embed"));
    let rerun = stdout(&embed(&[]));
    assert_eq!(stage_lines(&rerun), ["embed: unchanged, skipped"], "{rerun}");
    // A stage that does not shard says so.
    let err =
        stderr_of_failure(&fd_cli(tmp.path(), &["fit", "--config", config, "--run", sharded_s, "--shard", "0/2"]));
    assert!(err.contains("only evaluate, embed, select take --shard"), "{err}");
}

#[test]
fn sharded_evaluation_merges_into_the_unsharded_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let stage = |name: &str, extra: &[&str]| {
        let mut args = vec![name, "--config", "configs/smoke.toml", "--run", run_s];
        args.extend_from_slice(extra);
        stdout(&fd_cli(tmp.path(), &args))
    };
    stage("train", &[]);
    stage("evaluate", &[]);
    let parts = ["train", "val", "extra", "test"];
    let read = |p: &str| std::fs::read(run.join(format!("eval_{p}.safetensors"))).unwrap();
    let whole: Vec<Vec<u8>> = parts.iter().map(|p| read(p)).collect();
    let key = |run: &std::path::Path| stage_key(run, "evaluate");
    let whole_key = key(&run);
    std::fs::remove_file(run.join("stages/evaluate.json")).unwrap();
    parts.iter().for_each(|p| std::fs::remove_file(run.join(format!("eval_{p}.safetensors"))).unwrap());
    // The smoke parts are smaller than a batch, one unit each: two shards of one part, one of two.
    for shard in ["0/3", "1/3", "2/3"] {
        stage("evaluate", &["--shard", shard]);
    }
    let out = stage("evaluate", &["--merge"]);
    assert!(out.contains("merged 3 shards of 3"), "{out}");
    for (p, bytes) in parts.iter().zip(&whole) {
        assert!(&read(p) == bytes, "eval_{p}: the merged shards differ from the unsharded stage");
    }
    assert_eq!(key(&run), whole_key, "the merge is the evaluate stage, under its own key");
    assert_eq!(stage_lines(&stage("evaluate", &[])), ["evaluate: unchanged, skipped"]);
}

#[test]
fn sharded_pool_scoring_picks_what_the_whole_select_stage_picks() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, config) = (tmp.path().join("run"), tmp.path().join("select.toml"));
    let (run_s, config_s) = (run.to_str().unwrap(), config.to_str().unwrap());
    // Every rule: the modes' scores come from the shards too, and the coreset reads the pool's rows at the merge.
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    let rules = r#"rules = ["none", "svm", "confidence", "random", "margin", "entropy", "coreset", "modes"]"#;
    std::fs::write(&config, smoke.replace("[intervene]\nk = [4]", &format!("[intervene]\nk = [4]\n{rules}"))).unwrap();
    let stage = |extra: &[&str]| {
        let mut args = vec!["select", "--config", config_s, "--run", run_s];
        args.extend_from_slice(extra);
        fd_cli(tmp.path(), &args)
    };
    let skip = "select,retrain,generate,report";
    stdout(&fd_cli(tmp.path(), &["reproduce", "--config", config_s, "--run", run_s, "--skip", skip]));
    stdout(&stage(&[]));
    let whole = std::fs::read(run.join("selections.json")).unwrap();
    let key = |run: &std::path::Path| stage_key(run, "select");
    let whole_key = key(&run);
    std::fs::remove_file(run.join("stages/select.json")).unwrap();
    std::fs::remove_file(run.join("selections.json")).unwrap();

    // Shards 0 and 1 of 3 (1 from the scheduler's environment); the merge names the missing one.
    let out = stdout(&stage(&["--shard", "0/3"]));
    assert!(out.contains("select: shard 0/3: scored"), "{out}");
    let out = stdout(&as_array_task(tmp.path(), &["select", "--config", config_s, "--run", run_s], "1", "3"));
    assert!(out.contains("shard 1/3, from the scheduler's environment"), "{out}");
    let err = stderr_of_failure(&stage(&["--merge"]));
    assert!(err.contains("shard 2/3 is missing"), "{err}");
    assert!(!run.join("selections.json").exists(), "no picks without every shard");
    stdout(&stage(&["--shard", "2/3"]));
    // A damaged shard is named, with what to do.
    let scores = run.join("shards/select-1-of-3/scores.safetensors");
    let bytes = std::fs::read(&scores).unwrap();
    std::fs::write(&scores, &bytes[..bytes.len() - 8]).unwrap();
    let err = stderr_of_failure(&stage(&["--merge"]));
    assert!(err.contains("select-1-of-3/scores.safetensors") && err.contains("select --shard 1/3"), "{err}");
    std::fs::write(&scores, &bytes).unwrap();

    // The merge picks exactly what the whole stage picked, under its key.
    let out = stdout(&stage(&["--merge"]));
    assert!(out.contains("select: merged 3 shards of 3"), "{out}");
    assert!(
        std::fs::read(run.join("selections.json")).unwrap() == whole,
        "the merged picks differ from the whole stage's"
    );
    assert_eq!(key(&run), whole_key, "the merge is the select stage, under its own key");
    assert_eq!(stage_lines(&stdout(&stage(&[]))), ["select: unchanged, skipped"]);
}
