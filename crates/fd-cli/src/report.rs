//! The report stage's work: `summary.json` (every figure the paper reports, beside the paper's value, method spec §7) and `report.html`
//! (static and self-contained: images as data URIs, plots as inline SVG, no script from elsewhere).

#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{Value, json};

use crate::pipeline::{Part, Pipeline, read_eval};

/// The top-K sizes of the planted-group figures.
pub const TOP_K: [usize; 7] = [5, 10, 20, 50, 100, 200, 500];

fn read_json(pipeline: &Pipeline, name: &str) -> Result<Value> {
    let path = pipeline.run.join(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Which of the paper's settings a config is the analogue of.
fn setting(pipeline: &Pipeline) -> &'static str {
    match &pipeline.experiment.data.planted {
        Some(fd_data::PlantedConfig::Superclass(_)) => "superclass",
        Some(_) => "attribute",
        None => "cifar10",
    }
}

/// Accuracy of an evaluation on some dataset indices.
fn accuracy_on(correct: &HashMap<usize, bool>, indices: &[usize]) -> Option<f64> {
    mean(indices.iter().filter_map(|i| correct.get(i)).map(|&c| f64::from(u8::from(c))))
}

/// What both the summary and the page read, loaded once.
#[derive(Debug)]
pub struct Inputs {
    /// `captions.json`.
    pub captions: Value,
    /// Test embeddings and the classifier's evaluation of them.
    pub test: Part,
    /// The SVM decision value of each test row (0 for a class without an SVM).
    pub decisions: Vec<f64>,
}

impl Inputs {
    /// Reads the run's captions, test part and directions.
    pub fn load(pipeline: &Pipeline) -> Result<Inputs> {
        let test = pipeline.part("test")?;
        let decisions = pipeline.directions()?.decision_values(&test.rows, &test.labels)?;
        Ok(Inputs { captions: read_json(pipeline, "captions.json")?, test, decisions })
    }
}

/// The numbers: classifier, SVMs, captions, planted groups, interventions, stage times, and the fidelity table.
pub fn summary(pipeline: &Pipeline, inputs: &Inputs, timings: &[(String, f64)]) -> Result<Value> {
    let evaluate = read_json(pipeline, "evaluate.json")?;
    let fit = read_json(pipeline, "fit.json")?;
    let Inputs { captions, test, decisions } = inputs;
    let caption_k = pipeline.experiment.caption.clone().unwrap_or_default().k;
    let classes: Vec<&Value> =
        captions.as_array().into_iter().flatten().filter(|c| c.get("skipped").is_none()).collect();
    let first_check = |c: &Value, side: &str, key: &str| c[side][0]["check"][key].as_f64().unwrap_or(f64::NAN);
    let hard = mean(classes.iter().map(|c| first_check(c, "negative", "accuracy")));
    let easy = mean(classes.iter().map(|c| first_check(c, "positive", "accuracy")));
    let class_acc = mean(classes.iter().map(|c| c["class_accuracy"].as_f64().unwrap_or(f64::NAN)));
    let supported = classes.iter().filter(|c| c["negative"][0]["check"]["supported"].as_bool() == Some(true)).count();

    let prepared = pipeline.prepared()?;
    let planted = prepared.groups.as_ref().map(|groups| {
        let in_group: Vec<bool> = test.indices.iter().map(|&i| groups.is_planted(groups.test[i])).collect();
        planted_figures(&test.labels, decisions, &test.confidence, &in_group, prepared.train.num_classes())
    });

    let minority: Option<Vec<usize>> = prepared
        .groups
        .as_ref()
        .map(|g| prepared.split.test.iter().copied().filter(|&i| g.is_planted(g.test[i])).collect::<Vec<usize>>());
    let per_class_hard = |correct: &HashMap<usize, bool>| {
        mean(classes.iter().filter_map(|c| {
            let idx: Vec<usize> =
                c["hard_subpopulation"].as_array()?.iter().filter_map(Value::as_u64).map(|i| i as usize).collect();
            accuracy_on(correct, &idx)
        }))
    };
    let figures = |indices: &[usize], right: &[bool]| {
        let correct: HashMap<usize, bool> = indices.iter().copied().zip(right.iter().copied()).collect();
        json!({
            "test_accuracy": mean(right.iter().map(|&c| f64::from(u8::from(c)))),
            "hard_caption_accuracy": per_class_hard(&correct),
            "minority_accuracy": minority.as_ref().and_then(|m| accuracy_on(&correct, m)),
        })
    };
    let mut intervention = json!({"none": figures(&test.indices, &test.correct)});
    if pipeline.experiment.intervene.is_some() {
        for (rule, by_k) in pipeline.selections()?.rules {
            for k in by_k.keys() {
                let path = pipeline.run.join(format!("retrain/{}-k{k}/eval_test.safetensors", rule.name()));
                if pipeline.finished(&format!("retrain-{}-k{k}", rule.name())).is_ok() {
                    let eval = read_eval(&path)?;
                    intervention[format!("{}-k{k}", rule.name())] = figures(&eval.indices, &eval.correct);
                }
            }
        }
    }

    let mut out = json!({
        "setting": setting(pipeline),
        "classifier": evaluate,
        "svm": fit,
        "captions": {
            "k": caption_k,
            "hard_accuracy_mean": hard,
            "easy_accuracy_mean": easy,
            "class_accuracy_mean": class_acc,
            "supported": supported,
            "captioned_classes": classes.len(),
        },
        "planted": planted,
        "intervention": intervention,
        "stages": timings.iter().map(|(s, t)| json!({"stage": s, "seconds": t})).collect::<Vec<_>>(),
    });
    out["fidelity"] = fidelity(&out, pipeline);
    Ok(out)
}

/// Per class, the fraction of the planted group among the K hardest test images by SVM decision and by confidence, averaged over the
/// classes that have planted test images; and the group's base rate.
fn planted_figures(labels: &[u16], decisions: &[f64], confidence: &[f64], in_group: &[bool], classes: usize) -> Value {
    let mut by_svm = vec![Vec::new(); TOP_K.len()];
    let mut by_conf = vec![Vec::new(); TOP_K.len()];
    let mut base = Vec::new();
    let mut auroc_svm = Vec::new();
    let mut auroc_conf = Vec::new();
    for class in 0..classes as u16 {
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if !rows.iter().any(|&i| in_group[i]) {
            continue;
        }
        let svm_order = fd_svm::rank_within_class(decisions, labels, class);
        let conf_order = fd_svm::rank_within_class(confidence, labels, class);
        for (j, &k) in TOP_K.iter().enumerate() {
            if k <= rows.len() {
                by_svm[j].push(fd_svm::metrics::fraction_in_top_k(&svm_order, in_group, k));
                by_conf[j].push(fd_svm::metrics::fraction_in_top_k(&conf_order, in_group, k));
            }
        }
        base.push(rows.iter().filter(|&&i| in_group[i]).count() as f64 / rows.len() as f64);
        let group: Vec<bool> = rows.iter().map(|&i| in_group[i]).collect();
        // Low decision values and low confidence should mean "planted": score with the negatives.
        auroc_svm.push(fd_svm::metrics::auroc(&rows.iter().map(|&i| -decisions[i]).collect::<Vec<_>>(), &group));
        auroc_conf.push(fd_svm::metrics::auroc(&rows.iter().map(|&i| -confidence[i]).collect::<Vec<_>>(), &group));
    }
    let curve = |v: &Vec<Vec<f64>>| -> Vec<Value> {
        TOP_K.iter().zip(v).filter_map(|(&k, f)| Some(json!({"k": k, "fraction": mean(f.iter().copied())?}))).collect()
    };
    let at = |v: &Vec<Vec<f64>>, k: usize| TOP_K.iter().position(|&x| x == k).and_then(|j| mean(v[j].iter().copied()));
    json!({
        "classes_with_planted_images": base.len(),
        "base_rate": mean(base.iter().copied()),
        "top10_svm": at(&by_svm, 10),
        "top10_confidence": at(&by_conf, 10),
        "top100_svm": at(&by_svm, 100),
        "top100_confidence": at(&by_conf, 100),
        "auroc_svm": mean(auroc_svm),
        "auroc_confidence": mean(auroc_conf),
        "svm_curve": curve(&by_svm),
        "confidence_curve": curve(&by_conf),
    })
}

/// The intervention entries in reading order: no intervention, then SVM, confidence and random, each by K.
fn intervention_order(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let rank = |name: &str| {
        let (rule, k) = name.split_once("-k").unwrap_or((name, "0"));
        let r = ["none", "svm", "confidence", "random"].iter().position(|x| *x == rule).unwrap_or(4);
        (r, k.parse::<usize>().unwrap_or(0))
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(name, _)| rank(name));
    entries
}

/// One row of the fidelity table.
fn row(figure: &str, ours: Option<f64>, paper: Option<f64>, note: &str) -> Value {
    json!({"figure": figure, "ours": ours, "paper": paper, "note": note})
}

/// Each figure beside the paper's value (method spec §7); `paper` is null where the paper has no such number.
fn fidelity(s: &Value, pipeline: &Pipeline) -> Value {
    let f = |v: &Value| v.as_f64();
    // Names as the config spells them ("resnet10-small", "efficientnet-lite0").
    let name =
        |v: serde_json::Result<Value>| v.ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "?".into());
    let arch = pipeline.experiment.model.as_ref().map_or("?".into(), |m| name(serde_json::to_value(m.architecture)));
    let embedder = pipeline.experiment.embed.as_ref().map_or("?".into(), |e| name(serde_json::to_value(e.embedder)));
    let mut rows = Vec::new();
    let setting = s["setting"].as_str().unwrap_or("");
    let (paper_acc, paper_bal, paper_cv) = match setting {
        "superclass" => (Some(0.6963), Some(0.713), None),
        "cifar10" => (Some(0.7905), Some(0.694), Some(0.667)),
        _ => (None, None, None),
    };
    let source = if setting == "superclass" { "paper: spurious CIFAR-100; ours: its CIFAR-10 analogue" } else { "" };
    rows.push(row(
        "classifier test accuracy",
        f(&s["classifier"]["test_accuracy"]),
        paper_acc,
        &format!("paper: CIFAR ResNet-18, 35 epochs, batch 512; ours: {arch}. {source}"),
    ));
    rows.push(row(
        "mean 2-fold CV balanced accuracy of the SVMs on val",
        f(&s["svm"]["mean_cv_balanced_accuracy"]),
        paper_cv,
        &format!("paper: CLIP ViT-B/32 space; ours: {embedder}"),
    ));
    rows.push(row(
        "SVM balanced accuracy on test (all classes)",
        f(&s["svm"]["test_balanced_accuracy"]),
        paper_bal,
        source,
    ));
    for c in s["svm"]["classes"].as_array().into_iter().flatten() {
        rows.push(row(
            &format!("SVM balanced accuracy on test, class {}", c["class"]),
            f(&c["test_balanced_accuracy"]),
            None,
            "the paper publishes no per-class test values",
        ));
    }
    let k = s["captions"]["k"].as_u64().unwrap_or(20);
    let cifar = setting == "cifar10" && k == 20;
    rows.push(row(
        &format!("accuracy of the {k} test images nearest the hard caption (mean over classes)"),
        f(&s["captions"]["hard_accuracy_mean"]),
        cifar.then_some(0.59),
        "paper: WordNet captions in CLIP space (0.65 with the simple captions); ours: the space's own vocabulary",
    ));
    rows.push(row(
        &format!("accuracy of the {k} test images nearest the easy caption (mean over classes)"),
        f(&s["captions"]["easy_accuracy_mean"]),
        cifar.then_some(0.85),
        "",
    ));
    rows.push(row(
        "class accuracy on test (mean over classes)",
        f(&s["captions"]["class_accuracy_mean"]),
        cifar.then_some(0.79),
        "",
    ));
    if !s["planted"].is_null() {
        let sc = setting == "superclass";
        rows.push(row(
            "planted group among the top 10 per class, by SVM",
            f(&s["planted"]["top10_svm"]),
            sc.then_some(0.68),
            "paper: read from a plot",
        ));
        rows.push(row(
            "planted group among the top 10 per class, by confidence",
            f(&s["planted"]["top10_confidence"]),
            sc.then_some(0.455),
            "paper: read from a plot",
        ));
        rows.push(row("planted group among the top 100 per class, by SVM", f(&s["planted"]["top100_svm"]), None, ""));
        rows.push(row(
            "planted group among the top 100 per class, by confidence",
            f(&s["planted"]["top100_confidence"]),
            None,
            "",
        ));
        rows.push(row("planted group base rate per class", f(&s["planted"]["base_rate"]), sc.then_some(0.20), ""));
    }
    let paper_intervention = |rule: &str, k: &str| -> Option<f64> {
        match (setting, rule, k) {
            ("cifar10", "none", _) => Some(0.585),
            ("cifar10", "svm", "100") => Some(0.695),
            ("cifar10", "random", "100") => Some(0.675),
            ("cifar10", "confidence", "100") => Some(0.66),
            ("superclass", "none", _) => Some(0.4345),
            ("superclass", "svm", "75") => Some(0.519),
            ("superclass", "confidence", "75") => Some(0.4985),
            ("superclass", "random", "75") => Some(0.4915),
            _ => None,
        }
    };
    if let Some(map) = s["intervention"].as_object() {
        let planted = !s["planted"].is_null();
        for (name, v) in intervention_order(map) {
            let (rule, k) = name.split_once("-k").unwrap_or((name.as_str(), ""));
            let what = if planted { "minority test accuracy" } else { "hard-caption subpopulation accuracy" };
            let value = if planted { f(&v["minority_accuracy"]) } else { f(&v["hard_caption_accuracy"]) };
            let label = if rule == "none" {
                format!("{what}, no intervention")
            } else {
                format!("{what} after adding {k} pool images per class by {rule}")
            };
            rows.push(row(
                &label,
                value,
                paper_intervention(rule, k),
                "paper: one model per setting read from plots (10 runs on CIFAR-10); ours: one run",
            ));
            rows.push(row(
                &format!(
                    "test accuracy, {}",
                    if rule == "none" { "no intervention".to_string() } else { format!("{rule}, K = {k}") }
                ),
                f(&v["test_accuracy"]),
                None,
                "",
            ));
        }
    }
    Value::Array(rows)
}

/// Prints the fidelity table.
pub fn print_table(summary: &Value) {
    let fmt = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
    println!("report: {:<78} {:>8} {:>8}", "figure", "ours", "paper");
    for r in summary["fidelity"].as_array().into_iter().flatten() {
        println!("report: {:<78} {:>8} {:>8}", r["figure"].as_str().unwrap_or(""), fmt(&r["ours"]), fmt(&r["paper"]));
    }
}

/// An image grid with a green frame around images the classifier got right and a red one around its errors, as a PNG data URI.
fn strip(set: &fd_data::Dataset, indices: &[usize], correct: &HashMap<usize, bool>) -> String {
    let tiles: Vec<fd_data::Image> = indices
        .iter()
        .map(|&i| {
            let image = set.image(i);
            let (h, w) = (set.height(), set.width());
            let color = match correct.get(&i) {
                Some(true) => [40, 160, 60],
                Some(false) => [200, 40, 40],
                None => [128, 128, 128],
            };
            let mut data = Vec::with_capacity((h + 4) * (w + 4) * 3);
            for y in 0..h + 4 {
                for x in 0..w + 4 {
                    let inside = (2..h + 2).contains(&y) && (2..w + 2).contains(&x);
                    data.extend(if inside { image.pixel(y - 2, x - 2) } else { color });
                }
            }
            fd_data::Image::new(h + 4, w + 4, data)
        })
        .collect();
    if tiles.is_empty() {
        return String::new();
    }
    let grid = fd_data::image_grid(&tiles, 10, 2, [255, 255, 255]);
    let png = fd_data::encode_png(&grid);
    format!(
        "<img class=\"strip\" width=\"{}\" src=\"data:image/png;base64,{}\" alt=\"test images\">",
        grid.width * 2,
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plot's series: its name, its colour and its points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// A line plot as inline SVG: each series is a name, a colour and its points; x on a log scale when `log_x`.
fn plot(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>], log_x: bool) -> String {
    let (w, h, l, r, t, b) = (420.0, 260.0, 50.0, 130.0, 28.0, 40.0);
    let points: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    if points.is_empty() {
        return String::new();
    }
    let tx = |x: f64| if log_x { x.max(1e-9).ln() } else { x };
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(tx(p.0)), b.max(tx(p.0))));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let sx = |x: f64| l + (tx(x) - x0) / (x1 - x0) * (w - l - r);
    let sy = |y: f64| t + (1.0 - y.clamp(0.0, 1.0)) * (h - t - b);
    let mut svg = format!(
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        (w - r + l) / 2.0,
        esc(title)
    );
    for y in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            "<line x1=\"{l}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{y:.2}</text>",
            x2 = w - r,
            yy = sy(y),
            tx = l - 4.0,
            ty = sy(y) + 3.0
        );
    }
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{x}</text>",
            sx(x),
            h - b + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
        (w - r + l) / 2.0,
        h - 6.0,
        esc(x_label),
        (h - b + t) / 2.0,
        (h - b + t) / 2.0,
        esc(y_label)
    );
    for (j, (name, color, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>", sx(x), sy(y));
        }
        let ly = t + 14.0 * j as f64 + 6.0;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
            w - r + 8.0,
            ly - 9.0,
            w - r + 22.0,
            ly,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn curve_points(v: &Value, key: &str) -> Vec<(f64, f64)> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p["k"].as_f64()?, p[key].as_f64()?))).collect()
}

/// Averages per-class curves point by point (over the classes that reach each K).
fn mean_curve(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let mut ks: Vec<f64> = curves.iter().flatten().map(|p| p.0).collect();
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    ks.iter()
        .filter_map(|&k| Some((k, mean(curves.iter().filter_map(|c| c.iter().find(|p| p.0 == k).map(|p| p.1)))?)))
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}\
th{background:#f3f3f3}.strip{image-rendering:pixelated;display:block;margin:4px 0 12px}\
section{border-top:2px solid #888;margin-top:28px}.plots{display:flex;flex-wrap:wrap;gap:12px}\
.bad{color:#b22}.good{color:#272}.note{color:#666;font-size:12px}";

/// A script that runs in the browser when the page loads and records whether every image decoded and every plot has marks,
/// so a headless browser's DOM dump (`tools/check_report.sh`) can tell a rendered report from a broken one.
const CHECK_SCRIPT: &str = "window.addEventListener('load',function(){var im=Array.from(document.images);\
var ok=im.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;\
var pl=Array.from(document.querySelectorAll('svg.plot')).filter(function(s){return s.querySelectorAll('polyline,rect').length>0&&s.getBoundingClientRect().width>0;}).length;\
var b=document.body;b.setAttribute('data-images',im.length);b.setAttribute('data-images-ok',ok);b.setAttribute('data-plots',pl);\
b.setAttribute('data-check',(im.length>0&&ok===im.length&&pl>0)?'ok':'fail');});";

/// The report page.
pub fn html(pipeline: &Pipeline, inputs: &Inputs, summary: &Value) -> Result<String> {
    let prepared = pipeline.prepared()?;
    let Inputs { captions, test, decisions } = inputs;
    let correct: HashMap<usize, bool> = test.indices.iter().copied().zip(test.correct.iter().copied()).collect();
    let fmt = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
    let name = pipeline.run.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>failure directions: {}</title><style>{STYLE}</style>\
         <script>{CHECK_SCRIPT}</script></head><body><h1>Failure directions: {}</h1>",
        esc(&name),
        esc(&name)
    );
    let _ = write!(
        h,
        "<p>Classifier test accuracy {}; SVM mean CV balanced accuracy on val {}; SVM balanced accuracy on test {}. \
         Images: green frame = classified correctly, red = an error.</p>",
        fmt(&summary["classifier"]["test_accuracy"]),
        fmt(&summary["svm"]["mean_cv_balanced_accuracy"]),
        fmt(&summary["svm"]["test_balanced_accuracy"])
    );
    h.push_str("<h2>Fidelity to the paper</h2><table><tr><th>figure</th><th>ours</th><th>paper</th><th>note</th></tr>");
    for r in summary["fidelity"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"note\">{}</td></tr>",
            esc(r["figure"].as_str().unwrap_or("")),
            fmt(&r["ours"]),
            fmt(&r["paper"]),
            esc(r["note"].as_str().unwrap_or(""))
        );
    }
    h.push_str("</table><div class=\"plots\">");
    let entries: Vec<&Value> =
        captions.as_array().into_iter().flatten().filter(|c| c.get("skipped").is_none()).collect();
    let hard: Vec<Vec<(f64, f64)>> = entries.iter().map(|c| curve_points(&c["hard_curve"], "accuracy")).collect();
    let easy: Vec<Vec<(f64, f64)>> = entries.iter().map(|c| curve_points(&c["easy_curve"], "accuracy")).collect();
    let class_acc = summary["captions"]["class_accuracy_mean"].as_f64();
    let mut series = vec![
        ("hard caption".to_string(), "#c33", mean_curve(&hard)),
        ("easy caption".to_string(), "#393", mean_curve(&easy)),
    ];
    if let Some(a) = class_acc {
        let ks: Vec<f64> = series[0].2.iter().map(|p| p.0).collect();
        series.push(("class".into(), "#999", ks.iter().map(|&k| (k, a)).collect()));
    }
    h.push_str(&plot("Caption subpopulations (mean over classes)", "K nearest test images", "accuracy", &series, true));
    if !summary["planted"].is_null() {
        let p = &summary["planted"];
        let mut series = vec![
            ("SVM".to_string(), "#c33", curve_points(&p["svm_curve"], "fraction")),
            ("confidence".to_string(), "#36c", curve_points(&p["confidence_curve"], "fraction")),
        ];
        if let Some(base) = p["base_rate"].as_f64() {
            let ks: Vec<f64> = series[0].2.iter().map(|p| p.0).collect();
            series.push(("base rate".into(), "#999", ks.iter().map(|&k| (k, base)).collect()));
        }
        h.push_str(&plot(
            "Planted group among the top K per class",
            "K hardest test images",
            "fraction planted",
            &series,
            true,
        ));
    }
    h.push_str("</div>");
    if let Some(map) = summary["intervention"].as_object() {
        h.push_str("<h2>Pool intervention</h2><table><tr><th>selection</th><th>test accuracy</th><th>hard-caption subpopulation accuracy</th><th>minority accuracy</th></tr>");
        for (k, v) in intervention_order(map) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k),
                fmt(&v["test_accuracy"]),
                fmt(&v["hard_caption_accuracy"]),
                fmt(&v["minority_accuracy"])
            );
        }
        h.push_str("</table>");
    }
    let fit_classes = summary["svm"]["classes"].as_array().cloned().unwrap_or_default();
    for (class, class_name) in prepared.train.class_names().iter().enumerate() {
        let _ = write!(h, "<section><h2>{class}: {}</h2>", esc(class_name));
        if let Some(f) = fit_classes.iter().find(|f| f["class"].as_u64() == Some(class as u64)) {
            let _ = write!(
                h,
                "<p>Classifier accuracy on test {}; SVM: C = {}, CV balanced accuracy on val {}, balanced accuracy on test {}{}</p>",
                fmt(&f["classifier_test_accuracy"]),
                f["c"].as_f64().map_or("–".into(), |c| format!("{c:e}")),
                fmt(&f["cv_balanced_accuracy"]),
                fmt(&f["test_balanced_accuracy"]),
                f["skipped"].as_str().map_or(String::new(), |s| format!(" (skipped: {})", esc(s)))
            );
        }
        let order = fd_svm::rank_within_class(decisions, &test.labels, class as u16);
        let hardest: Vec<usize> = order.iter().take(20).map(|&r| test.indices[r]).collect();
        let easiest: Vec<usize> = order.iter().rev().take(20).map(|&r| test.indices[r]).collect();
        let _ = write!(
            h,
            "<h3>The 20 hardest test images (lowest SVM decision value)</h3>{}",
            strip(&prepared.test, &hardest, &correct)
        );
        let _ = write!(h, "<h3>The 20 easiest test images</h3>{}", strip(&prepared.test, &easiest, &correct));
        if let Some(c) = entries.iter().find(|c| c["class"].as_u64() == Some(class as u64)) {
            h.push_str("<table><tr><th>negative (hard) caption</th><th>score</th><th>accuracy of nearest</th><th>class</th><th>p</th><th></th>\
                        <th>positive (easy) caption</th><th>score</th><th>accuracy of nearest</th></tr>");
            let neg = c["negative"].as_array().cloned().unwrap_or_default();
            let pos = c["positive"].as_array().cloned().unwrap_or_default();
            for (n, p) in neg.iter().zip(&pos) {
                let supported = n["check"]["supported"].as_bool() == Some(true);
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(n["caption"].as_str().unwrap_or("")),
                    fmt(&n["score"]),
                    fmt(&n["check"]["accuracy"]),
                    fmt(&n["check"]["class_accuracy"]),
                    fmt(&n["check"]["p_value"]),
                    if supported { "good" } else { "bad" },
                    if supported { "supported" } else { "unsupported" },
                    esc(p["caption"].as_str().unwrap_or("")),
                    fmt(&p["score"]),
                    fmt(&p["check"]["accuracy"]),
                );
            }
            h.push_str("</table>");
            let series = vec![
                ("hard caption".to_string(), "#c33", curve_points(&c["hard_curve"], "accuracy")),
                ("easy caption".to_string(), "#393", curve_points(&c["easy_curve"], "accuracy")),
            ];
            h.push_str(&plot(&format!("{class_name}: accuracy of the K nearest"), "K", "accuracy", &series, true));
            let subpop: Vec<usize> = c["hard_subpopulation"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(|i| i as usize)
                .collect();
            let _ = write!(
                h,
                "<h3>The test images nearest the hard caption “{}”</h3>{}",
                esc(neg.first().and_then(|n| n["caption"].as_str()).unwrap_or("")),
                strip(&prepared.test, &subpop, &correct)
            );
        }
        h.push_str("</section>");
    }
    let stages: Vec<String> = summary["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {:.1} s", s["stage"].as_str().unwrap_or(""), s["seconds"].as_f64().unwrap_or(0.0)))
        .collect();
    let _ = write!(h, "<p class=\"note\">Stages: {}.</p></body></html>", esc(&stages.join(", ")));
    Ok(h)
}
