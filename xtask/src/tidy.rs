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

/// The files allowed `unsafe` (the workspace denies `unsafe_code`): fd-model's and fd-clip's checked wrappers around
/// `gemm`, and fd-cli's allocator setting.
const UNSAFE_ALLOWED: &[&str] =
    &["crates/fd-cli/src/alloc.rs", "crates/fd-clip/src/matmul.rs", "crates/fd-model/src/ops/matmul.rs"];

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

/// The lines of the functions in `text` longer than `max` lines, as `name (lines)`: a `fn` runs from its line to the first line
/// after it that closes a brace at the same indentation.
fn long_functions(text: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature =
            ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "].iter().find_map(|p| trimmed.strip_prefix(p));
        let Some(rest) = signature else { continue };
        if trimmed.ends_with(';') || (trimmed.contains('{') && trimmed.ends_with('}')) {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            let length = end + 2;
            if length > max {
                let name = rest.split(['(', '<']).next().unwrap_or(rest);
                out.push(format!("{name} ({length} lines)"));
            }
        }
    }
    out
}

/// The top-level module each `crate::name` path in the code of `text` names (comments and doc links aside).
fn crate_imports(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| {
            l.match_indices("crate::")
                .filter(|(i, _)| !l[..*i].ends_with('$'))
                .map(|(i, _)| l[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
        })
        .filter(|m| !m.is_empty())
        .collect()
}

/// A cycle in a module graph, if any, as the modules along it.
fn import_cycle(graph: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            return Some(path[start..].iter().cloned().chain([node.to_string()]).collect());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn fd_cli_stays_small_and_its_modules_import_one_way() {
    let src = root().join("crates/fd-cli/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(&src).unwrap();
        let lines = text.lines().count();
        if lines > 400 {
            problems.push(format!("{}: {lines} lines (at most 400)", rel.display()));
        }
        for f in long_functions(&text, 80) {
            problems.push(format!("{}: fn {f} (at most 80)", rel.display()));
        }
        // A file belongs to its top-level module: `report/html.rs` to `report`.
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let imports: Vec<String> = crate_imports(&text).into_iter().filter(|m| *m != top).collect();
        graph.entry(top).or_default().extend(imports);
    }
    assert!(problems.is_empty(), "fd-cli outgrew its limits:\n{}", problems.join("\n"));
    assert_eq!(import_cycle(&graph), None, "an import circle among fd-cli's modules");
}

#[test]
fn the_size_and_cycle_checks_can_fail() {
    let long =
        format!("fn a() {{\n{}}}\n    pub fn b(\n        x: u8,\n    ) {{\n    }}\nfn c();\n", "    x;\n".repeat(81));
    assert_eq!(long_functions(&long, 80), ["a (83 lines)"]);
    assert_eq!(long_functions(&long, 100), Vec::<String>::new());
    let imports = crate_imports(
        "use crate::run::Run;\nuse crate::{x};\nlet y = crate::report::html(); $crate::z\n/// [`crate::stage`]",
    );
    assert_eq!(imports.into_iter().collect::<Vec<_>>(), ["report", "run"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(import_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        import_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
