//! The stage mechanics: skip when unchanged, rerun when a key or an output changes, never leave a partial artifact, and notice an
//! input that changed after its stage wrote it.

use std::cell::Cell;

use super::*;

fn engine(dir: &Path) -> Engine {
    std::fs::create_dir_all(dir.join("stages")).unwrap();
    Engine::new(dir)
}

fn write(out: &Path, rel: &str, text: &str) -> Result<Vec<String>> {
    let path = out.join(rel);
    std::fs::create_dir_all(path.parent().unwrap())?;
    std::fs::write(path, text)?;
    Ok(vec![rel.into()])
}

#[test]
fn a_stage_is_skipped_when_unchanged_and_redone_when_its_key_or_an_output_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(tmp.path());
    let calls = Cell::new(0);
    let work = |out: &Path, text: &str| -> Result<Vec<String>> {
        calls.set(calls.get() + 1);
        write(out, "sub/a.txt", text)
    };
    let first = e.run("demo", json!({"x": 1}), BTreeMap::new(), |o| work(o, "one")).unwrap();
    assert_eq!(first.outputs["sub/a.txt"], fd_data::sha256_hex(b"one"));
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "one");
    e.run("demo", json!({"x": 1}), BTreeMap::new(), |o| work(o, "two")).unwrap();
    assert_eq!(calls.get(), 1, "same key: skipped");
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "one");
    let inputs = || BTreeMap::from([("upstream".to_string(), "abc".to_string())]);
    e.run("demo", json!({"x": 1}), inputs(), |o| work(o, "three")).unwrap();
    assert_eq!(calls.get(), 2, "another input: redone");
    // A missing output makes the stage run again even with the same key.
    std::fs::remove_file(tmp.path().join("sub/a.txt")).unwrap();
    e.run("demo", json!({"x": 1}), inputs(), |o| work(o, "four")).unwrap();
    assert_eq!(calls.get(), 3);
    // So does an output damaged after the stage wrote it (here cut short, as a full disk or a killed copy leaves it).
    std::fs::write(tmp.path().join("sub/a.txt"), "fo").unwrap();
    e.run("demo", json!({"x": 1}), inputs(), |o| work(o, "five")).unwrap();
    assert_eq!(calls.get(), 4);
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "five");
}

#[test]
fn a_failing_stage_leaves_the_finished_artifacts_and_stamp_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(tmp.path());
    let stamp = e.run("demo", json!(1), BTreeMap::new(), |out| write(out, "a.txt", "finished")).unwrap();
    // The next attempt writes half its output and fails, as an interruption would.
    let err = e
        .run("demo", json!(2), BTreeMap::new(), |out| {
            std::fs::write(out.join("a.txt"), "half")?;
            bail!("interrupted")
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("stage demo: interrupted"), "{err:#}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(), "finished");
    assert_eq!(e.finished("demo").unwrap(), stamp);
    // The next run starts the stage afresh: the partial directory is cleared first.
    let seen = e
        .run("demo", json!(2), BTreeMap::new(), |out| {
            assert!(!out.join("a.txt").exists(), "a stale partial file survived");
            write(out, "a.txt", "redone")
        })
        .unwrap();
    assert_ne!(seen.key, stamp.key);
    assert_eq!(std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(), "redone");
    assert!(!tmp.path().join(".partial/demo").exists());
}

#[test]
fn an_input_changed_after_its_stage_wrote_it_is_an_error_naming_the_file_and_the_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(tmp.path());
    e.run("evaluate", json!(1), BTreeMap::new(), |out| write(out, "eval_test.safetensors", "logits")).unwrap();
    let inputs = e.inputs(&["evaluate"], |_| true).unwrap();
    assert_eq!(inputs["eval_test.safetensors"], fd_data::sha256_hex(b"logits"));
    std::fs::write(tmp.path().join("eval_test.safetensors"), "log").unwrap();
    let err = format!("{:#}", e.inputs(&["evaluate"], |_| true).unwrap_err());
    assert!(
        err.contains("eval_test.safetensors: changed after stage \"evaluate\" wrote it")
            && err.contains("fd-cli evaluate"),
        "{err}"
    );
    std::fs::remove_file(tmp.path().join("eval_test.safetensors")).unwrap();
    let err = format!("{:#}", e.inputs(&["evaluate"], |_| true).unwrap_err());
    assert!(err.contains("is missing, though stage \"evaluate\" wrote it"), "{err}");
    // A stage that never ran is named with the command that runs it; so is a retraining.
    let err = format!("{:#}", e.inputs(&["retrain-svm-k4"], |_| true).unwrap_err());
    assert!(err.contains("stage \"retrain-svm-k4\" has not finished (run `fd-cli retrain`"), "{err}");
    // A damaged stamp is not a finished stage.
    std::fs::write(tmp.path().join("stages/evaluate.json"), "{\"stage\": \"evaluate\"").unwrap();
    let err = format!("{:#}", e.finished("evaluate").unwrap_err());
    assert!(err.contains("evaluate.json: not a stamp of this version of fd-cli"), "{err}");
}

#[test]
fn a_stage_revision_changes_only_that_stages_key_and_revision_zero_keeps_old_stamps() {
    let (config, inputs) = (json!({"x": 1}), BTreeMap::from([("a".to_string(), "h".to_string())]));
    // Revision 0 (every stage but those bumped): the key is the one written before revisions existed.
    let old = |stage: &str| {
        let keyed = json!({"stage": stage, "version": ENGINE_VERSION, "config": config, "inputs": inputs});
        fd_data::sha256_hex(serde_json::to_string(&keyed).unwrap().as_bytes())
    };
    assert_eq!(crate::stage::Stage::Fit.revision(), 0);
    assert_eq!(key("fit", &config, &inputs).unwrap(), old("fit"));
    assert_eq!(key("demo", &config, &inputs).unwrap(), old("demo"));
    // A bumped stage's key differs from its revision-0 key, so its old stamps stop matching.
    assert!(crate::stage::Stage::Describe.revision() > 0);
    assert_ne!(key("describe", &config, &inputs).unwrap(), old("describe"));
}
