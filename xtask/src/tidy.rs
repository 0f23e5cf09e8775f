//! Tidy tests: the architecture rules of ARCHITECTURE.md, checked on the real workspace.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::{cargo, root};

/// The allowed `fd-*` edges, read from the `edges` block of ARCHITECTURE.md.
fn allowed_edges(architecture: &str) -> BTreeMap<String, Vec<String>> {
    let block = architecture
        .split("```edges\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has an ```edges block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (from, to) = line.split_once("->").unwrap_or_else(|| panic!("bad edge line {line:?}"));
            (from.trim().to_string(), to.split(',').map(|t| t.trim().to_string()).collect())
        })
        .collect()
}

/// Every `fd-*` dependency (of any kind) of every workspace package that the table does not allow, as `from -> to (kind)`.
fn layering_violations(metadata: &serde_json::Value, allowed: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for package in metadata["packages"].as_array().expect("cargo metadata lists packages") {
        let from = package["name"].as_str().unwrap();
        for dep in package["dependencies"].as_array().unwrap() {
            let to = dep["name"].as_str().unwrap();
            if !to.starts_with("fd-") {
                continue;
            }
            let ok = allowed.get(from).is_some_and(|targets| targets.iter().any(|t| t == to));
            if !ok {
                let kind = dep["kind"].as_str().unwrap_or("normal");
                out.push(format!("{from} -> {to} ({kind})"));
            }
        }
    }
    out
}

/// The packages in `tree` (the output of `cargo tree --prefix none`) whose names match a forbidden prefix.
fn forbidden_in_tree(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let mut hits: Vec<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| forbidden.iter().any(|f| *name == *f || name.starts_with(&format!("{f}-"))))
        .map(String::from)
        .collect();
    hits.sort();
    hits.dedup();
    hits
}

fn cargo_output(args: &[&str]) -> String {
    let out = Command::new(cargo()).args(args).current_dir(root()).output().expect("running cargo");
    assert!(out.status.success(), "cargo {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

#[test]
fn crates_depend_only_along_the_allowed_edges() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let allowed = allowed_edges(&architecture);
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo_output(&["metadata", "--format-version", "1", "--no-deps"])).unwrap();
    let violations = layering_violations(&metadata, &allowed);
    assert!(violations.is_empty(), "dependency edges not allowed by ARCHITECTURE.md:\n{}", violations.join("\n"));
}

#[test]
fn the_layering_check_catches_a_bad_edge() {
    let allowed = allowed_edges("```edges\nfd-model -> fd-data\n```");
    let metadata = serde_json::json!({"packages": [
        {"name": "fd-model", "dependencies": [{"name": "fd-data", "kind": null}]},
        {"name": "fd-svm", "dependencies": [{"name": "fd-data", "kind": "dev"}, {"name": "serde", "kind": null}]},
        {"name": "fd-data", "dependencies": [{"name": "fd-model", "kind": null}]},
    ]});
    assert_eq!(layering_violations(&metadata, &allowed), ["fd-svm -> fd-data (dev)", "fd-data -> fd-model (normal)"]);
}

const NO_TENSORS_OR_IMAGES: &[&str] = &["burn", "candle", "cubecl", "image", "png"];
const NO_ML: &[&str] = &["burn", "candle", "cubecl", "smartcore"];

#[test]
fn leaf_crates_stay_free_of_forbidden_dependencies() {
    for (krate, forbidden) in
        [("fd-svm", NO_TENSORS_OR_IMAGES), ("fd-caption", NO_TENSORS_OR_IMAGES), ("fd-data", NO_ML)]
    {
        // Parse the tree rather than trusting the exit code: `cargo tree -i` exits 0 when a dependency is dev-only.
        let tree = cargo_output(&["tree", "--package", krate, "--edges", "normal", "--prefix", "none"]);
        let hits = forbidden_in_tree(&tree, forbidden);
        assert!(hits.is_empty(), "{krate} must not depend on {hits:?}");
    }
}

#[test]
fn the_forbidden_check_catches_a_tensor_crate() {
    let tree = "fd-svm v0.0.0 (/x)\nburn-flex v0.22.1\nserde v1.0.0\npng v0.18.1\npngx v1.0.0\n";
    assert_eq!(forbidden_in_tree(tree, NO_TENSORS_OR_IMAGES), ["burn-flex", "png"]);
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_header() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! header: {missing:?}");
}

/// The files allowed `unsafe` (the workspace denies `unsafe_code`): fd-model's checked wrapper around `gemm`, and fd-cli's allocator setting.
const UNSAFE_ALLOWED: &[&str] = &["crates/fd-cli/src/alloc.rs", "crates/fd-model/src/ops/matmul.rs"];

/// The Rust files under `files` that lift the workspace's `unsafe_code` lint, relative to the root.
fn unsafe_allowances(files: &[std::path::PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("allow(unsafe_code)"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn unsafe_code_stays_in_the_one_audited_file() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    // This file names the attribute too; it allows nothing.
    let this = root().join("xtask/src/tidy.rs");
    files.retain(|f| *f != this);
    assert_eq!(unsafe_allowances(&files), UNSAFE_ALLOWED);
}
