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
