//! `fd-cli audit` on a user's own images: a folder written here (sizes from 12 to 40 pixels, PNG and JPEG, grayscale and 16-bit
//! from the committed folder fixture), a predictions file, the committed ONNX classifier, and imported embeddings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{fails_naming, fd_cli, read_json, root, stdout};

const CLASSES: [&str; 3] = ["apple", "pear", "plum"];
const PER_CLASS: usize = 90;

/// One image of the dataset: its class, whether it is dark (the failure mode the predictions plant), and its file.
struct Item {
    class: usize,
    dark: bool,
    path: String,
}

/// Writes `root/<class>/<k>.png` (every 7th a copy of a fixture JPEG or 16-bit PNG instead) and returns the items, in the
/// folder reader's order (classes sorted, files sorted).
fn write_folder(root_dir: &Path) -> Vec<Item> {
    let fixture = root().join("crates/fd-data/fixtures/folder/images");
    let mut items = Vec::new();
    for (c, class) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(root_dir.join(class)).unwrap();
        for k in 0..PER_CLASS {
            let dark = k % 5 == 1 || k % 5 == 3;
            let (name, copied) = match k % 7 {
                3 => (format!("{k:03}.jpg"), Some("dog/g_photo.jpg")),
                5 => (format!("{k:03}.png"), Some("dog/e_16bit.png")),
                _ => (format!("{k:03}.png"), None),
            };
            let path = root_dir.join(class).join(&name);
            match copied {
                Some(f) => {
                    std::fs::copy(fixture.join(f), &path).unwrap();
                }
                None => {
                    let (h, w) = (12 + (k * 5) % 29, 12 + (k * 3) % 23);
                    let level = if dark { 20 } else { 200 };
                    let data = (0..h * w * 3).map(|i| (level + (i * (c + 3) + k) % 40) as u8).collect();
                    fd_data::write_png(&fd_data::Image::new(h, w, data), &path).unwrap();
                }
            }
            items.push(Item { class: c, dark: dark && copied.is_none(), path: format!("{class}/{name}") });
        }
    }
    items
}

/// The classifier's predictions: dark images wrong (the next class), all others right.
fn predicted(item: &Item) -> usize {
    if item.dark { (item.class + 1) % CLASSES.len() } else { item.class }
}

/// A `.npy` file of f32 rows.
fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    std::fs::write(path, fd_data::arrays::npy_f32(&[rows.len(), rows[0].len()], &rows.concat())).unwrap();
}

fn tiny_embedder() -> Vec<String> {
    let weights = root().join("crates/fd-clip/fixtures/tiny_effnet.safetensors");
    ["--embedder", "efficientnet-tiny", "--embed-size", "32", "--embed-weights", weights.to_str().unwrap()]
        .map(String::from)
        .to_vec()
}

fn audit(tmp: &Path, args: &[String]) -> std::process::Output {
    let mut all = vec!["audit".to_string()];
    all.extend_from_slice(args);
    fd_cli(tmp, &all.iter().map(String::as_str).collect::<Vec<_>>())
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn audit_runs_on_a_users_folder_with_predictions_onnx_and_imported_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("fruit");
    let items = write_folder(&images);
    let mut csv = String::from("path,prediction\n");
    for item in &items {
        let _ = writeln!(csv, "{},{}", item.path, CLASSES[predicted(item)]);
    }
    let preds = tmp.path().join("preds.csv");
    std::fs::write(&preds, &csv).unwrap();

    // Predictions and the tiny embedder: every stage, the report, and the evaluation the file says.
    let run = tmp.path().join("run-preds");
    let mut args = vec!["--images".into(), s(&images), "--predictions".into(), s(&preds), "--run".into(), s(&run)];
    args.extend(tiny_embedder());
    let out = stdout(&audit(tmp.path(), &args));
    assert!(out.contains("audit: report in"), "{out}");
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["setting"], "own");
    let dark_share = items.iter().filter(|i| i.dark).count() as f64 / items.len() as f64;
    let test_acc = summary["classifier"].as_array().unwrap().iter().find(|p| p["part"] == "test").unwrap()["accuracy"]
        .as_f64()
        .unwrap();
    assert!((test_acc - (1.0 - dark_share)).abs() < 0.1, "test accuracy {test_acc}, dark share {dark_share}");
    assert!(std::fs::read_to_string(run.join("report.html")).unwrap().contains("data:image/png;base64"));
    // Run again: every stage is finished and skipped.
    let again = stdout(&audit(tmp.path(), &args));
    assert!(again.contains("finished earlier, skipped now") && !again.contains("accuracy"), "{again}");

    // Imported embeddings that carry the failure (dark images apart), and a manifest with the ground-truth group: the SVM finds
    // the planted group.
    let mut manifest = String::from("path,label,group\n");
    let rows: Vec<Vec<f32>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let _ = writeln!(
                manifest,
                "{},{},{}",
                item.path,
                CLASSES[item.class],
                if item.dark { "dark" } else { "bright" }
            );
            let noise = |k: usize| ((i * 7919 + k * 104_729) % 1000) as f32 / 1000.0 - 0.5;
            vec![if item.dark { 2.0 } else { -2.0 } + noise(0), noise(1), noise(2), item.class as f32 + noise(3)]
        })
        .collect();
    // Inside the folder, so that its paths are the predictions file's.
    let manifest_path = images.join("fruit.csv");
    std::fs::write(&manifest_path, manifest).unwrap();
    let embeddings = tmp.path().join("emb.npy");
    write_npy(&embeddings, &rows);
    let run = tmp.path().join("run-emb");
    let args = [
        "--manifest",
        &s(&manifest_path),
        "--predictions",
        &s(&preds),
        "--embeddings",
        &s(&embeddings),
        "--run",
        &s(&run),
        "--select",
        "3",
    ]
    .map(String::from);
    stdout(&audit(tmp.path(), &args));
    let summary = read_json(&run.join("summary.json"));
    let auroc = summary["planted"]["svm"]["auroc"].as_f64().unwrap();
    assert!(
        auroc > 0.9,
        "the SVM should rank the dark images hardest: AUROC {auroc}; {}",
        std::fs::read_to_string(run.join("fit.json")).unwrap()
    );
    let selections = read_json(&run.join("selections.json"));
    assert_eq!(selections["rules"]["svm"]["3"].as_array().unwrap().len(), 9);
    // The describe stage names the failure from the images alone: dark images lead the hard names, verified on test, in
    // every class (their black backgrounds are the same evidence, so they follow the other pieces of evidence, if any).
    let names = read_json(&run.join("names.json"));
    for class in names["classes"].as_array().unwrap() {
        let hard = class["outcome"]["names"]["hard"].as_array().unwrap();
        let verified: Vec<&str> =
            hard.iter().filter(|n| n["check"]["supported"] == true).map(|n| n["phrase"].as_str().unwrap()).collect();
        assert!(verified.first().is_some_and(|p| p.starts_with("dark images (brightness ≤ ")), "{verified:?}");
        let phrases: Vec<&str> = hard.iter().map(|n| n["phrase"].as_str().unwrap()).collect();
        assert!(phrases[0].starts_with("dark images (brightness ≤ "), "{phrases:?}");
    }
    assert_eq!(summary["names"]["verified_classes"], 3);
    // The same rows in reverse, keyed by a paths file: the same directions.
    let reversed: Vec<Vec<f32>> = rows.iter().rev().cloned().collect();
    let (emb_rev, paths) = (tmp.path().join("emb_rev.npy"), tmp.path().join("paths.txt"));
    write_npy(&emb_rev, &reversed);
    std::fs::write(&paths, items.iter().rev().map(|i| format!("{}\n", i.path)).collect::<String>()).unwrap();
    let run_rev = tmp.path().join("run-emb-rev");
    let args = [
        "--manifest",
        &s(&manifest_path),
        "--predictions",
        &s(&preds),
        "--embeddings",
        &s(&emb_rev),
        "--embedding-paths",
        &s(&paths),
        "--run",
        &s(&run_rev),
    ]
    .map(String::from);
    stdout(&audit(tmp.path(), &args));
    let directions = |run: &Path| read_json(&run.join("directions.json"))["directions"].clone();
    assert_eq!(directions(&run), directions(&run_rev));

    // The committed ONNX classifier on the same folder.
    let run = tmp.path().join("run-onnx");
    let onnx = root().join("crates/fd-model/fixtures/tiny_classifier.onnx");
    let mut args = vec!["--images".into(), s(&images), "--onnx".into(), s(&onnx), "--input-size".into(), "16".into()];
    args.extend(["--run".into(), s(&run)]);
    args.extend(tiny_embedder());
    stdout(&audit(tmp.path(), &args));
    assert!(run.join("report.html").is_file());
}

#[test]
fn audit_bad_inputs_name_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("fruit");
    let items = write_folder(&images);
    let embed = tiny_embedder();
    let with = |extra: &[&str], run: &str| -> Vec<String> {
        let mut a: Vec<String> =
            vec!["audit".into(), "--images".into(), s(&images), "--run".into(), s(&tmp.path().join(run))];
        a.extend(extra.iter().map(|x| x.to_string()));
        a.extend(embed.iter().cloned());
        a
    };
    let call = |args: &[String], file: &str, also: &str| {
        fails_naming(tmp.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), file, also);
    };
    // A predictions file that misses an image.
    let short = tmp.path().join("short.csv");
    let mut csv = String::from("path,prediction\n");
    for item in &items[1..] {
        let _ = writeln!(csv, "{},{}", item.path, CLASSES[item.class]);
    }
    std::fs::write(&short, csv).unwrap();
    call(&with(&["--predictions", &s(&short)], "r1"), "short.csv", "no row for image");
    // A prediction that is not a class.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, format!("path,prediction\n{},banana\n", items[0].path)).unwrap();
    call(&with(&["--predictions", &s(&bad)], "r2"), "bad.csv", "line 2: prediction \"banana\"");
    // Embeddings with the wrong number of rows.
    let good = tmp.path().join("good.csv");
    let mut csv = String::from("path,prediction\n");
    for item in &items {
        let _ = writeln!(csv, "{},{}", item.path, CLASSES[item.class]);
    }
    std::fs::write(&good, csv).unwrap();
    let emb = tmp.path().join("emb.npy");
    write_npy(&emb, &vec![vec![0.5f32; 4]; items.len() - 3]);
    call(&with(&["--predictions", &s(&good), "--embeddings", &s(&emb)], "r3"), "emb.npy", "rows for a dataset of");
    // An `index` tensor that repeats a row.
    let indexed = tmp.path().join("indexed.safetensors");
    let n = items.len();
    let data: Vec<u8> = vec![0.5f32; n * 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut index: Vec<i64> = (0..n as i64).collect();
    index[5] = 4;
    let index: Vec<u8> = index.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [
        ("embeddings", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![n, 4], &data).unwrap()),
        ("index", safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![n], &index).unwrap()),
    ];
    std::fs::write(&indexed, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let args = ["--predictions", &s(&good), "--embeddings", &s(&indexed)];
    call(&with(&args, "r3c"), "indexed.safetensors", "row 5: index 4 appears twice");
    // A paths file that names an image the dataset does not have.
    let paths = tmp.path().join("paths.txt");
    let mut names: Vec<String> = items.iter().skip(3).map(|i| i.path.clone()).collect();
    names[1] = "apple/missing.png".into();
    std::fs::write(&paths, names.join("\n")).unwrap();
    let args = ["--predictions", &s(&good), "--embeddings", &s(&emb), "--embedding-paths", &s(&paths)];
    call(&with(&args, "r3b"), "paths.txt", "line 2: \"apple/missing.png\" is not an image of the dataset");
    // An ONNX model whose classes do not match the dataset's (the fixture has three; a two-class dataset).
    let two = tmp.path().join("two");
    for class in ["a", "b"] {
        let dir = two.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..45 {
            std::fs::copy(images.join("apple/000.png"), dir.join(format!("{k:02}.png"))).unwrap();
        }
    }
    let onnx = s(&root().join("crates/fd-model/fixtures/tiny_classifier.onnx"));
    let args: Vec<String> =
        ["audit", "--images", &s(&two), "--onnx", &onnx, "--input-size", "16", "--run", &s(&tmp.path().join("r4"))]
            .iter()
            .map(|x| x.to_string())
            .chain(embed.iter().cloned())
            .collect();
    call(&args, "tiny_classifier.onnx", "gives 3 outputs per image, the dataset has 2 classes");
    // A truncated image stops the run with its name; with --skip-unreadable it is left out and listed.
    let damaged: PathBuf = images.join("pear/011.png");
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    call(&with(&["--predictions", &s(&good)], "r5"), "011.png", "cannot decode the image");
    // Predictions keyed by order still line up: the unreadable image keeps its row, unused.
    let ordered = tmp.path().join("ordered.csv");
    let rows: String = items.iter().map(|i| format!("{}\n", CLASSES[i.class])).collect();
    std::fs::write(&ordered, format!("prediction\n{rows}")).unwrap();
    let run = tmp.path().join("r6");
    let out = fd_cli(
        tmp.path(),
        &with(&["--predictions", &s(&ordered), "--skip-unreadable"], "r6")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    stdout(&out);
    let accuracy =
        read_json(&run.join("evaluate.json"))["parts"].as_array().unwrap().iter().all(|p| p["accuracy"] == 1.0);
    assert!(accuracy, "every prediction is right, so every part's accuracy is 1");
    let listed = std::fs::read_to_string(run.join("unreadable.tsv")).unwrap();
    assert!(listed.contains("011.png") && listed.lines().count() == 1, "{listed}");
}

/// Real data (`FD_TEST_CIFAR10=1`, CIFAR-10 fetched): CIFAR-10 written out as an image folder and run through the folder path
/// gives the same split, the same classifier and evaluation, and bit-identical directions as the built-in path.
#[test]
fn cifar10_as_an_image_folder_gives_the_builtin_split_evaluation_and_directions() {
    if std::env::var("FD_TEST_CIFAR10").ok().as_deref() != Some("1") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = std::env::var("FD_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/failure-directions"));
    let cli = |args: &[&str]| {
        let mut all = vec!["--data-dir", data_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        stdout(&fd_cli(tmp.path(), &all))
    };
    let folder = tmp.path().join("cifar");
    cli(&["data", "export", "--layout", "folder", "--out", folder.to_str().unwrap()]);
    let weights = root().join("crates/fd-clip/fixtures/tiny_effnet.safetensors");
    let rest = format!(
        "[data.split]\nval_every = 5\npool_every = 4\nswap = true\n\n\
         [model]\narchitecture = \"tiny\"\nmean = [125.3, 123.0, 113.9]\nstd = [63.0, 62.1, 66.7]\ndevice = \"flex\"\n\n\
         [train]\nepochs = 1\nbatch_size = 256\npeak_lr = 0.1\npeak_epoch = 0.5\nmomentum = 0.9\nweight_decay = 5e-4\naugment = true\nseed = 0\n\n\
         [embed]\nembedder = \"efficientnet-tiny\"\nweights = {:?}\nimage_size = 32\nbatch_size = 256\n",
        weights.to_str().unwrap()
    );
    let builtin = tmp.path().join("builtin.toml");
    std::fs::write(&builtin, format!("[data.dataset]\nname = \"cifar10\"\n\n{rest}")).unwrap();
    let on_disk = tmp.path().join("folder.toml");
    std::fs::write(
        &on_disk,
        format!("[data.dataset]\nname = \"folder\"\nimages = {:?}\n\n{rest}", folder.to_str().unwrap()),
    )
    .unwrap();
    let runs = [tmp.path().join("run-builtin"), tmp.path().join("run-folder")];
    for (config, run) in [&builtin, &on_disk].iter().zip(&runs) {
        let (c, r) = (config.to_str().unwrap(), run.to_str().unwrap());
        cli(&["reproduce", "--config", c, "--run", r, "--skip", "caption,select,retrain,report"]);
    }
    let bytes = |run: &Path, f: &str| std::fs::read(run.join(f)).unwrap();
    // Each folder image's index in the built-in set: the folder lists a set's images by class, then by file name.
    let original = |set: &str| -> Vec<usize> {
        let mut out = Vec::new();
        let mut classes: Vec<_> = std::fs::read_dir(folder.join(set)).unwrap().map(|e| e.unwrap().path()).collect();
        classes.sort();
        for class in classes {
            let mut files: Vec<_> = std::fs::read_dir(&class).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            out.extend(files.iter().map(|f| f.file_stem().unwrap().to_str().unwrap().parse::<usize>().unwrap()));
        }
        out
    };
    let (train_index, test_index) = (original("train"), original("test"));
    // The same classifier, bit for bit (train holds the same images in the same order).
    // (Tensor by tensor: burn writes the header's metadata in a hash map's order.)
    let weights = |run: &Path| {
        let bytes = bytes(run, "model.safetensors");
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut all: Vec<(String, Vec<u8>)> = file.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
        all.sort();
        all
    };
    assert!(weights(&runs[0]) == weights(&runs[1]), "the classifiers differ");
    // The same split, image for image.
    let split = |run: &Path| {
        let eval = |part: &str| {
            fd_model::Evaluation::from_safetensors(&bytes(run, &format!("eval_{part}.safetensors"))).unwrap()
        };
        ["train", "val", "extra", "test"].map(eval)
    };
    let (a, b) = (split(&runs[0]), split(&runs[1]));
    let mut max = 0f32;
    for (p, name) in ["train", "val", "extra", "test"].iter().enumerate() {
        let index = if *name == "test" { &test_index } else { &train_index };
        let mut mapped: Vec<(usize, usize)> =
            b[p].indices.iter().enumerate().map(|(row, &i)| (index[i], row)).collect();
        mapped.sort_unstable();
        let mut builtin: Vec<(usize, usize)> = a[p].indices.iter().enumerate().map(|(row, &i)| (i, row)).collect();
        builtin.sort_unstable();
        assert_eq!(
            mapped.iter().map(|m| m.0).collect::<Vec<_>>(),
            builtin.iter().map(|m| m.0).collect::<Vec<_>>(),
            "{name}"
        );
        if *name == "train" || *name == "val" {
            let same_order: Vec<usize> = b[p].indices.iter().map(|&i| index[i]).collect();
            assert_eq!(same_order, a[p].indices, "{name} is in the same order");
        }
        // The same evaluation of each image.
        let k = a[p].num_classes;
        for (&(_, ra), &(_, rb)) in builtin.iter().zip(&mapped) {
            assert_eq!((a[p].labels[ra], a[p].predicted[ra]), (b[p].labels[rb], b[p].predicted[rb]), "{name}");
            let (x, y) = (&a[p].logits[ra * k..(ra + 1) * k], &b[p].logits[rb * k..(rb + 1) * k]);
            max = x.iter().zip(y).map(|(u, v)| (u - v).abs()).fold(max, f32::max);
        }
    }
    assert!(max < 1e-5, "logits differ by up to {max}");
    // The same val embeddings, row for row, and so bit-identical directions.
    let rows = |run: &Path| {
        let bytes = bytes(run, "embeddings_val.safetensors");
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        file.tensor("embeddings").unwrap().data().to_vec()
    };
    assert!(rows(&runs[0]) == rows(&runs[1]), "the val embeddings differ");
    let directions = |run: &Path| read_json(&run.join("directions.json"))["directions"].clone();
    assert_eq!(directions(&runs[0]), directions(&runs[1]), "directions differ");
    assert!(bytes(&runs[0], "directions.safetensors") == bytes(&runs[1], "directions.safetensors"));
}

#[test]
fn a_users_onnx_classifier_evaluates_in_shards_as_it_does_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("fruit");
    write_folder(&images);
    let run = tmp.path().join("run");
    let onnx = root().join("crates/fd-model/fixtures/tiny_classifier.onnx");
    let mut args = vec!["--images".into(), s(&images), "--onnx".into(), s(&onnx), "--input-size".into(), "16".into()];
    args.extend(["--batch-size".into(), "16".into(), "--run".into(), s(&run)]);
    args.extend(tiny_embedder());
    stdout(&audit(tmp.path(), &args));
    let parts = ["train", "val", "extra", "test"];
    let read = |p: &str| std::fs::read(run.join(format!("eval_{p}.safetensors"))).unwrap();
    let whole: Vec<Vec<u8>> = parts.iter().map(|p| read(p)).collect();
    let key = || read_json(&run.join("stages/evaluate.json"))["key"].clone();
    let whole_key = key();
    std::fs::remove_file(run.join("stages/evaluate.json")).unwrap();
    parts.iter().for_each(|p| std::fs::remove_file(run.join(format!("eval_{p}.safetensors"))).unwrap());
    let run_s = s(&run);
    for shard in ["0/3", "1/3", "2/3"] {
        stdout(&fd_cli(tmp.path(), &["evaluate", "--run", &run_s, "--shard", shard]));
    }
    let out = stdout(&fd_cli(tmp.path(), &["evaluate", "--run", &run_s, "--merge"]));
    assert!(out.contains("merged 3 shards of 3"), "{out}");
    for (p, bytes) in parts.iter().zip(&whole) {
        assert!(&read(p) == bytes, "eval_{p}: the ONNX classifier's merged shards differ from its whole evaluation");
    }
    assert_eq!(key(), whole_key);
}
