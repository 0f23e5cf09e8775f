//! Every shipped config parses, validates and survives a save-and-reload.

use std::path::Path;

use crate::config::{Experiment, load_experiment, to_toml};

#[test]
fn every_shipped_config_loads_and_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut seen = 0;
    let suite = std::fs::read_dir(dir.join("discover")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().chain(suite) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let experiment = load_experiment(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let reloaded: Experiment = toml::from_str(&to_toml(&experiment)).unwrap();
        assert_eq!(reloaded, experiment, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 4 + 12, "expected the shipped configs in {} and the discovery suite's", dir.display());
}

#[test]
fn an_svm_section_takes_the_papers_values_for_what_it_leaves_out() {
    let smoke =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml")).unwrap();
    let parse = |svm: &str| -> anyhow::Result<Experiment> {
        let e: Experiment = toml::from_str(&format!("{smoke}\n[svm]\n{svm}\n"))?;
        e.validate()?;
        Ok(e)
    };
    let e = parse("kernel_cache_mib = 4096").unwrap();
    assert_eq!(e.svm, Some(fd_svm::SvmConfig { kernel_cache_mib: 4096, ..fd_svm::SvmConfig::paper() }));
    let reloaded: Experiment = toml::from_str(&to_toml(&e)).unwrap();
    assert_eq!(reloaded, e);
    assert!(format!("{:#}", parse("kernel_cache_mib = 0").unwrap_err()).contains("kernel_cache_mib"));
    assert!(format!("{:#}", parse("folds = 1").unwrap_err()).contains("folds"));
    assert!(format!("{:#}", parse("cache = 1").unwrap_err()).contains("unknown field"));
}
