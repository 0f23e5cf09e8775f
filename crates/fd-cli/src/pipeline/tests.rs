//! The stage mechanics (skip when unchanged, rerun when a key changes, never leave a partial artifact) and the selection rules.

use std::cell::Cell;

use super::*;

fn part(labels: Vec<u16>, confidence: Vec<f64>) -> Part {
    let n = labels.len();
    Part {
        rows: vec![0.0; n],
        dim: 1,
        indices: (0..n).map(|i| 100 + i).collect(),
        labels,
        correct: vec![true; n],
        confidence,
    }
}

fn pipeline(dir: &Path) -> Pipeline {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml")).unwrap();
    let experiment: Experiment = toml::from_str(&text).unwrap();
    Pipeline::new(dir, dir, experiment).unwrap()
}

#[test]
fn selection_rules_pick_the_lowest_per_class_or_a_seeded_sample() {
    let labels = vec![0, 1, 0, 1, 0, 1, 0, 1];
    let extra = part(labels.clone(), vec![0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.7, 0.6]);
    let decisions = [3.0, -1.0, -2.0, 0.5, 1.0, 2.0, -0.5, 0.0];
    let config = |k: Vec<usize>, seed| InterveneConfig { k, rules: all(), seed };
    fn all() -> Vec<SelectionRule> {
        vec![SelectionRule::Svm, SelectionRule::Confidence, SelectionRule::Random]
    }
    let s = select(&extra, &decisions, 2, &config(vec![2, 10], 0));
    // Class 0 is rows 0, 2, 4, 6 and class 1 rows 1, 3, 5, 7; picks are dataset indices (100 + row), class by class.
    assert_eq!(s.rules[&SelectionRule::Svm][&2], [102, 106, 101, 107]);
    assert_eq!(s.rules[&SelectionRule::Confidence][&2], [102, 104, 101, 105]);
    // Asking for more than a class has gives all of it.
    assert_eq!(s.rules[&SelectionRule::Svm][&10].len(), 8);
    let random = &s.rules[&SelectionRule::Random][&2];
    assert_eq!(random.len(), 4);
    assert!(random[..2].iter().all(|&i| labels[i - 100] == 0) && random[2..].iter().all(|&i| labels[i - 100] == 1));
    // The same seed gives the same sample; the random rule does not depend on decisions or confidence.
    let again = select(&extra, &[0.0; 8], 2, &config(vec![2], 0));
    assert_eq!(&again.rules[&SelectionRule::Random][&2], random);
    let others: Vec<Vec<usize>> = (1..8)
        .map(|seed| select(&extra, &decisions, 2, &config(vec![2], seed)).rules[&SelectionRule::Random][&2].clone())
        .collect();
    assert!(others.iter().any(|o| o != random), "the seed changes the sample");
}

#[test]
fn a_stage_is_skipped_when_unchanged_and_redone_when_its_key_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let calls = Cell::new(0);
    let work = |out: &Path, text: &str| -> Result<Vec<String>> {
        calls.set(calls.get() + 1);
        std::fs::create_dir_all(out.join("sub"))?;
        std::fs::write(out.join("sub/a.txt"), text)?;
        Ok(vec!["sub/a.txt".into()])
    };
    let first = p.stage("demo", json!({"x": 1}), BTreeMap::new(), |o| work(o, "one")).unwrap();
    assert_eq!(first.outputs["sub/a.txt"], sha256_hex(b"one"));
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "one");
    p.stage("demo", json!({"x": 1}), BTreeMap::new(), |o| work(o, "two")).unwrap();
    assert_eq!(calls.get(), 1, "same key: skipped");
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "one");
    let inputs = BTreeMap::from([("upstream".to_string(), "abc".to_string())]);
    p.stage("demo", json!({"x": 1}), inputs, |o| work(o, "three")).unwrap();
    assert_eq!(calls.get(), 2, "another input: redone");
    assert_eq!(std::fs::read_to_string(tmp.path().join("sub/a.txt")).unwrap(), "three");
    // A missing output makes the stage run again even with the same key.
    std::fs::remove_file(tmp.path().join("sub/a.txt")).unwrap();
    let inputs = BTreeMap::from([("upstream".to_string(), "abc".to_string())]);
    p.stage("demo", json!({"x": 1}), inputs, |o| work(o, "four")).unwrap();
    assert_eq!(calls.get(), 3);
}

#[test]
fn a_failing_stage_leaves_the_finished_artifacts_and_stamp_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let ok = |out: &Path| -> Result<Vec<String>> {
        std::fs::write(out.join("a.txt"), "finished")?;
        Ok(vec!["a.txt".into()])
    };
    let stamp = p.stage("demo", json!(1), BTreeMap::new(), ok).unwrap();
    // The next attempt writes half its output and fails, as an interruption would.
    let err = p
        .stage("demo", json!(2), BTreeMap::new(), |out| {
            std::fs::write(out.join("a.txt"), "half")?;
            bail!("interrupted")
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("stage demo: interrupted"), "{err:#}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(), "finished");
    assert_eq!(p.finished("demo").unwrap(), stamp);
    // The next run starts the stage afresh: the partial directory is cleared first.
    let seen = p
        .stage("demo", json!(2), BTreeMap::new(), |out| {
            assert!(!out.join("a.txt").exists(), "a stale partial file survived");
            std::fs::write(out.join("a.txt"), "redone")?;
            Ok(vec!["a.txt".into()])
        })
        .unwrap();
    assert_ne!(seen.key, stamp.key);
    assert_eq!(std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(), "redone");
    assert!(!tmp.path().join(".partial/demo").exists());
}
