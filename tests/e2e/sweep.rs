//! The repeated intervention: every selection rule under several seeds, retrained from scratch and the last layer only,
//! one stage each, then the report's means, spreads and paired intervals.

use super::{fd_cli, read_json, root, stage_lines, stdout};

/// The smoke config's `[intervene]` with every rule, `seeds` and both retraining modes.
fn sweep_config(seeds: &str) -> String {
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    let rules = r#"rules = ["none", "svm", "confidence", "random", "margin", "entropy", "coreset"]"#;
    smoke.replace(
        "[intervene]\nk = [4]",
        &format!("[intervene]\nk = [4]\n{rules}\nseeds = [{seeds}]\nretrain = [\"scratch\", \"last-layer\"]"),
    )
}

#[test]
fn every_rule_is_retrained_under_each_seed_both_ways_and_reported_with_paired_intervals() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, config) = (tmp.path().join("run"), tmp.path().join("sweep.toml"));
    let (run_s, config_s) = (run.to_str().unwrap(), config.to_str().unwrap());
    std::fs::write(&config, sweep_config("0, 1")).unwrap();
    let out = stdout(&fd_cli(tmp.path(), &["reproduce", "--config", config_s, "--run", run_s]));
    let retrains: Vec<String> = stage_lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("retrain-"))
        .map(|l| l.replace(": running", ""))
        .collect();
    // 7 rules (the control once, at K = 0) x 2 seeds x 2 modes.
    assert_eq!(retrains.len(), 28, "{retrains:?}");
    for stage in ["retrain-none-k0-s0", "retrain-svm-k4-s1", "retrain-coreset-k4-s0-last", "retrain-random-k4-s1-last"]
    {
        assert!(retrains.iter().any(|r| r == stage), "{stage} in {retrains:?}");
    }

    // The picks: 4 pool images per class by every rule; the control none; random differs between seeds.
    let selections = read_json(&run.join("selections.json"));
    for rule in ["svm", "confidence", "random", "margin", "entropy", "coreset"] {
        let picked = selections["rules"][rule]["4"].as_array().unwrap();
        assert_eq!(picked.len(), 16, "{rule}");
        let mut unique = picked.clone();
        unique.sort_by_key(|v| v.as_u64());
        unique.dedup();
        assert_eq!(unique.len(), 16, "{rule} picks each image once");
    }
    assert_eq!(selections["rules"]["none"]["0"], serde_json::json!([]));
    assert_ne!(selections["seeded"]["0"]["random"]["4"], selections["seeded"]["1"]["random"]["4"]);
    assert_ne!(selections["rules"]["margin"]["4"], selections["rules"]["coreset"]["4"]);

    // The last layer: the paper's 15 epochs; from scratch, the run's 2; different seeds, different classifiers.
    let epochs =
        |name: &str| read_json(&run.join(format!("retrain/{name}/train_log.json")))["epochs"].as_array().unwrap().len();
    assert_eq!((epochs("svm-k4-s0-last"), epochs("svm-k4-s0")), (15, 2));
    let model = |name: &str| std::fs::read(run.join(format!("retrain/{name}/model.safetensors"))).unwrap();
    assert_ne!(model("none-k0-s0"), model("none-k0-s1"));

    // The summary: one group per mode and rule, over both seeds, paired with random under the same seeds.
    let summary = read_json(&run.join("summary.json"));
    let groups = summary["repeated"].as_array().unwrap();
    assert_eq!(groups.len(), 14, "{groups:?}");
    for g in groups {
        assert_eq!(g["seeds"], serde_json::json!([0, 1]), "{g}");
        let test = &g["test_accuracy"];
        assert!(test["sd"].as_f64().unwrap() >= 0.0, "{g}");
        let paired = &test["vs_random"];
        if g["rule"] == "random" || g["rule"] == "none" {
            assert!(paired.is_null(), "{g}");
        } else {
            assert_eq!(paired["pairs"], 2, "{g}");
            let (low, mean, high) =
                (paired["low"].as_f64().unwrap(), paired["mean"].as_f64().unwrap(), paired["high"].as_f64().unwrap());
            assert!(low <= mean && mean <= high, "{g}");
        }
        // The planted smoke config also gives the planted group's accuracy.
        assert!(g["minority_accuracy"]["mean"].is_number(), "{g}");
    }
    // The fidelity table: one row a rule and mode over the seeds (the paper's value only beside from-scratch means), no
    // row per seed.
    let figures: Vec<&serde_json::Value> = summary["fidelity"].as_array().unwrap().iter().collect();
    let of = |needle: &str| figures.iter().filter(|r| r["figure"].as_str().unwrap().contains(needle)).count();
    assert_eq!(of("mean of 2 seeds"), 28, "{figures:?}");
    assert_eq!(of("pool images per class by svm, retrained from scratch, mean of 2 seeds"), 1);
    let single = "minority test accuracy after adding 4 pool images per class by svm";
    assert!(figures.iter().all(|r| r["figure"] != single), "{figures:?}");
    assert_eq!(of(single), 2, "the from-scratch mean and the last-layer mean");
    assert!(figures.iter().all(|r| !r["figure"].as_str().unwrap().contains("last layer") || r["paper"].is_null()));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // One error bar a rule with images added (six) and mode (two), at the one K.
    assert!(html.contains("Repeated interventions"));
    assert_eq!(html.matches("class=\"bar\"").count(), 12, "error bars");

    // A third seed: only its retrainings (and select, report) run; the first two seeds' are kept.
    std::fs::write(&config, sweep_config("0, 1, 2")).unwrap();
    let out = stdout(&fd_cli(tmp.path(), &["reproduce", "--config", config_s, "--run", run_s]));
    let running: Vec<String> = stage_lines(&out).into_iter().filter(|l| l.ends_with(": running")).collect();
    assert!(running.iter().filter(|l| l.starts_with("retrain-")).all(|l| l.contains("-s2")), "{running:?}");
    assert_eq!(running.iter().filter(|l| l.starts_with("retrain-")).count(), 14, "{running:?}");
    let groups = read_json(&run.join("summary.json"))["repeated"].as_array().unwrap().clone();
    assert!(groups.iter().all(|g| g["seeds"] == serde_json::json!([0, 1, 2])));
}
