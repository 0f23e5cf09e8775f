//! The sharded evaluate, embed and select stages on a real scheduler (`FD_TEST_SLURM=1`): a single-node Slurm from Debian's
//! packages (`tools/slurm_local.sh`), the repository's job array and merge (`jobs/slurm/submit.sh`) on the smoke config,
//! and the merged evaluations, embeddings and picks against an unsharded run, bit for bit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{fd_cli, root, stdout};

/// The local Slurm, stopped when dropped (also when the test fails).
struct Slurm {
    dir: PathBuf,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new(root().join("tools/slurm_local.sh")).arg("stop").arg(&self.dir).status();
    }
}

/// `scontrol show job ID`'s JobState.
fn job_state(conf: &Path, id: &str) -> String {
    let out = Command::new("scontrol").args(["show", "job", id]).env("SLURM_CONF", conf).output().expect("scontrol");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).unwrap_or("UNKNOWN").to_string()
}

/// Submits the array of 3 shards of `stages` and its merge through `jobs/slurm/submit.sh` (smoke config, run `run`) and
/// waits for the merge to complete.
fn submit_and_wait(tmp: &Path, conf: &Path, run: &Path, stages: &str) {
    let submitted = Command::new(root().join("jobs/slurm/submit.sh"))
        .arg("3")
        .env("SLURM_CONF", conf)
        .env("FD_CLI", env!("CARGO_BIN_EXE_fd-cli"))
        .env("FD_CONFIG", root().join("configs/smoke.toml"))
        .env("FD_RUN", run)
        .env("FD_DATA_DIR", tmp.join("cache"))
        .env("FD_LOG", "warn")
        .env("FD_STAGES", stages)
        .current_dir(root())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&submitted.stdout).into_owned();
    assert!(submitted.status.success(), "sbatch: {said}{}", String::from_utf8_lossy(&submitted.stderr));
    let merge = said.rsplit("merge: ").next().unwrap().trim().to_string();
    let start = Instant::now();
    loop {
        match job_state(conf, &merge).as_str() {
            "COMPLETED" => break,
            s @ ("FAILED" | "CANCELLED" | "TIMEOUT" | "NODE_FAIL" | "OUT_OF_MEMORY") => {
                let logs: String = std::fs::read_dir(run)
                    .map(|d| d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
                    .unwrap_or_default();
                panic!("merge job {merge} ({stages}): {s}\n{logs}");
            }
            s => assert!(start.elapsed() < Duration::from_secs(300), "merge job {merge} still {s} after 300 s"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn slurm_runs_the_arrays_and_the_merges_give_the_unsharded_evaluations_embeddings_and_picks() {
    // Opt-in: where `tools/slurm_local.sh install` has run (CI does).
    if std::env::var_os("FD_TEST_SLURM").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slurm");
    let started = Command::new(root().join("tools/slurm_local.sh")).arg("start").arg(&dir).output().unwrap();
    let _slurm = Slurm { dir: dir.clone() };
    assert!(started.status.success(), "starting Slurm: {}", String::from_utf8_lossy(&started.stderr));
    let conf = dir.join("slurm.conf");

    let (run, whole) = (tmp.path().join("run"), tmp.path().join("whole"));
    let (run_s, whole_s) = (run.to_str().unwrap(), whole.to_str().unwrap());
    for dir in [run_s, whole_s] {
        stdout(&fd_cli(tmp.path(), &["train", "--config", "configs/smoke.toml", "--run", dir]));
    }
    let submit = |stages: &str| submit_and_wait(tmp.path(), &conf, &run, stages);
    submit("evaluate embed");
    for (stage, shard) in ["evaluate", "embed"].iter().flat_map(|s| (0..3).map(move |i| (s, i))) {
        assert!(run.join(format!("stages/{stage}-shard-{shard}-of-3.json")).is_file(), "{stage} shard {shard} stamped");
    }

    for stage in ["evaluate", "embed"] {
        stdout(&fd_cli(tmp.path(), &[stage, "--config", "configs/smoke.toml", "--run", whole_s]));
    }
    for part in ["train", "val", "extra", "test"] {
        for name in [format!("embeddings_{part}.safetensors"), format!("eval_{part}.safetensors")] {
            let (a, b) = (std::fs::read(whole.join(&name)).unwrap(), std::fs::read(run.join(&name)).unwrap());
            assert!(a == b, "{name}: Slurm's merged shards differ from the unsharded stage");
        }
    }

    // Scoring the pool: after the fit stage, the select stage's array and merge, against the whole stage's picks.
    let skip = "select,retrain,generate,report";
    for dir in [run_s, whole_s] {
        stdout(&fd_cli(tmp.path(), &["reproduce", "--config", "configs/smoke.toml", "--run", dir, "--skip", skip]));
    }
    submit("select");
    (0..3).for_each(|i| assert!(run.join(format!("stages/select-shard-{i}-of-3.json")).is_file(), "select shard {i}"));
    stdout(&fd_cli(tmp.path(), &["select", "--config", "configs/smoke.toml", "--run", whole_s]));
    let picks = |dir: &Path| std::fs::read(dir.join("selections.json")).unwrap();
    assert!(picks(&whole) == picks(&run), "Slurm's merged pool scores picked other images than the whole stage");
}
