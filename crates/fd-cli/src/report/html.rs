//! The report page: per class the hardest and easiest test images, the captions with their checks, the SVM's numbers, and plots.

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine;
use fd_caption::class::{ClassCaptions, CurvePoint};

use super::plot::{Series, esc, mean_curve, plot};
use super::{ReportInputs, Summary};

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

pub(super) fn fmt(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |x| format!("{x:.3}"))
}

fn points(curve: &[CurvePoint]) -> Vec<(f64, f64)> {
    curve.iter().map(|p| (p.k as f64, p.accuracy)).collect()
}

/// The report page.
pub fn html(inputs: &ReportInputs<'_>, summary: &Summary) -> String {
    let test = inputs.test;
    let correct: HashMap<usize, bool> = test.indices.iter().copied().zip(test.correct.iter().copied()).collect();
    let name = esc(&inputs.name);
    let mut h = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>failure directions: {name}</title><style>{STYLE}</style>\
         <script>{CHECK_SCRIPT}</script></head><body><h1>Failure directions: {name}</h1>"
    );
    let _ = write!(
        h,
        "<p>Classifier test accuracy {}; SVM mean CV balanced accuracy on val {}; SVM balanced accuracy on test {}. \
         Images: green frame = classified correctly, red = an error.</p>",
        fmt(summary.test_accuracy()),
        fmt(Some(summary.svm.mean_cv_balanced_accuracy)),
        fmt(Some(summary.svm.test_balanced_accuracy))
    );
    h.push_str("<h2>Fidelity to the paper</h2><table><tr><th>figure</th><th>ours</th><th>paper</th><th>note</th></tr>");
    for r in &summary.fidelity {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"note\">{}</td></tr>",
            esc(&r.figure),
            fmt(r.ours),
            fmt(r.paper),
            esc(&r.note)
        );
    }
    h.push_str("</table>");
    h.push_str(&overview_plots(inputs, summary));
    h.push_str(&intervention_table(summary));
    h.push_str(&super::repeated::html(&summary.repeated));
    h.push_str(&super::generated::table(summary));
    for class in 0..inputs.num_classes {
        h.push_str(&class_section(inputs, summary, class as u16, &correct));
    }
    let stages: Vec<String> = summary.stages.iter().map(|s| format!("{} {:.1} s", s.stage, s.seconds)).collect();
    let _ = write!(h, "<p class=\"note\">Stages: {}.</p></body></html>", esc(&stages.join(", ")));
    h
}

/// The caption-subpopulation plot over all classes and, for planted datasets, the planted group's share of the top K.
fn overview_plots(inputs: &ReportInputs<'_>, summary: &Summary) -> String {
    let captioned: Vec<&ClassCaptions> = inputs.captions.classes.iter().filter_map(|c| c.captions()).collect();
    let hard: Vec<Vec<(f64, f64)>> = captioned.iter().map(|c| points(&c.hard_curve)).collect();
    let easy: Vec<Vec<(f64, f64)>> = captioned.iter().map(|c| points(&c.easy_curve)).collect();
    let mut series: Vec<Series<'_>> =
        vec![("hard caption".into(), "#c33", mean_curve(&hard)), ("easy caption".into(), "#393", mean_curve(&easy))];
    if let Some(a) = summary.captions.class_accuracy_mean {
        let ks: Vec<f64> = series[0].2.iter().map(|p| p.0).collect();
        series.push(("class".into(), "#999", ks.iter().map(|&k| (k, a)).collect()));
    }
    let mut h = String::from("<div class=\"plots\">");
    h.push_str(&plot("Caption subpopulations (mean over classes)", "K nearest test images", "accuracy", &series, true));
    if let Some(p) = &summary.planted {
        let curve = |r: &fd_svm::metrics::Recovery| -> Vec<(f64, f64)> {
            r.curve.iter().map(|t| (t.k as f64, t.fraction)).collect()
        };
        let mut series: Vec<Series<'_>> =
            vec![("SVM".into(), "#c33", curve(&p.svm)), ("confidence".into(), "#36c", curve(&p.confidence))];
        if let Some(base) = p.base_rate {
            let ks: Vec<f64> = series[0].2.iter().map(|p| p.0).collect();
            series.push(("base rate".into(), "#999", ks.iter().map(|&k| (k, base)).collect()));
        }
        let title = "Planted group among the top K per class";
        h.push_str(&plot(title, "K hardest test images", "fraction planted", &series, true));
    }
    h.push_str("</div>");
    h
}

fn intervention_table(summary: &Summary) -> String {
    let mut h = String::from(
        "<h2>Pool intervention</h2><table><tr><th>selection</th><th>test accuracy</th>\
         <th>hard-caption subpopulation accuracy</th><th>on supported captions</th><th>minority accuracy</th></tr>",
    );
    for v in summary.intervention.iter().filter(|v| v.generated.is_none()) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.name()),
            fmt(v.test_accuracy),
            fmt(v.hard_caption_accuracy),
            fmt(v.supported_caption_accuracy),
            fmt(v.minority_accuracy)
        );
    }
    h.push_str("</table>");
    h
}

/// One class: the SVM's numbers, the hardest and easiest test images, the captions and their subpopulation.
fn class_section(inputs: &ReportInputs<'_>, summary: &Summary, class: u16, correct: &HashMap<usize, bool>) -> String {
    let test = inputs.test;
    let class_name = inputs.class_names.get(usize::from(class)).map_or("", String::as_str);
    let mut h = format!("<section><h2>{class}: {}</h2>", esc(class_name));
    if let Some(f) = summary.svm.classes.iter().find(|f| f.class == class) {
        let _ = write!(
            h,
            "<p>Classifier accuracy on test {}; SVM: C = {}, CV balanced accuracy on val {}, balanced accuracy on test {}{}</p>",
            fmt(Some(f.classifier_test_accuracy)),
            f.c.map_or("–".into(), |c| format!("{c:e}")),
            fmt(f.cv_balanced_accuracy),
            fmt(Some(f.test_balanced_accuracy)),
            f.skipped.as_deref().map_or(String::new(), |s| format!(" (skipped: {})", esc(s)))
        );
    }
    h.push_str(&names_block(inputs, class, correct));
    h.push_str(&modes_block(inputs, class, correct));
    let order = fd_svm::rank_within_class(inputs.decisions, &test.labels, class);
    let hardest: Vec<usize> = order.iter().take(20).map(|&r| test.indices[r]).collect();
    let easiest: Vec<usize> = order.iter().rev().take(20).map(|&r| test.indices[r]).collect();
    let _ = write!(
        h,
        "<h3>The 20 hardest test images (lowest SVM decision value)</h3>{}",
        strip(inputs.test_images, &hardest, correct)
    );
    let _ = write!(h, "<h3>The 20 easiest test images</h3>{}", strip(inputs.test_images, &easiest, correct));
    let captions = inputs.captions.classes.iter().find(|c| c.class == class).and_then(|c| c.captions());
    if let Some(c) = captions {
        h.push_str(&caption_table(c));
        let series: Vec<Series<'_>> = vec![
            ("hard caption".into(), "#c33", points(&c.hard_curve)),
            ("easy caption".into(), "#393", points(&c.easy_curve)),
        ];
        h.push_str(&plot(&format!("{class_name}: accuracy of the K nearest"), "K", "accuracy", &series, true));
        let _ = write!(
            h,
            "<h3>The test images nearest the hard caption “{}”</h3>{}",
            esc(&c.hard().caption),
            strip(inputs.test_images, &c.hard_subpopulation, correct)
        );
    }
    h.push_str("</section>");
    h
}

/// The class's failure modes when it has several: each one's check and its hardest test images.
fn modes_block(inputs: &ReportInputs<'_>, class: u16, correct: &HashMap<usize, bool>) -> String {
    let Some(entry) = inputs.modes.and_then(|m| m.classes.iter().find(|c| c.class == class && c.split)) else {
        return String::new();
    };
    let mut h = format!("<h3>{} failure modes (each its own direction, checked on test)</h3>", entry.modes.len());
    let captions =
        inputs.captions.classes.iter().find(|c| c.class == class).map(|c| c.modes.as_slice()).unwrap_or_default();
    let names = inputs.names.and_then(|n| n.classes.iter().find(|c| c.class == class)).map(|c| c.modes.as_slice());
    for (k, m) in entry.modes.iter().enumerate() {
        if let Some(first) = names.and_then(|n| n.get(k)).and_then(|n| n.top_verified()) {
            let _ = write!(
                h,
                "<p class=\"names\">Mode {}'s failures look like: <b>{}</b> (test accuracy {} against {}, p = {:.3})</p>",
                k + 1,
                esc(&first.phrase),
                fmt(Some(first.check.accuracy)),
                fmt(Some(first.check.class_accuracy)),
                first.check.p_value
            );
        }
        if let Some(c) = captions.get(k) {
            let hard = c.hard();
            let _ = write!(
                h,
                "<p>Mode {}'s hardest caption: “{}” (its {} nearest test images {} against {}, p = {:.3}{})</p>",
                k + 1,
                esc(&hard.caption),
                hard.check.k,
                fmt(Some(hard.check.accuracy)),
                fmt(Some(hard.check.class_accuracy)),
                hard.check.p_value,
                if hard.check.supported { "" } else { ", not verified" }
            );
        }
        let _ = write!(
            h,
            "<p>Mode {}: accuracy {} on its {} hardest test images against {} for the class (p = {:.3}{}); fitted on {} val errors</p>{}",
            k + 1,
            fmt(Some(m.check.accuracy)),
            m.check.k,
            fmt(Some(m.check.class_accuracy)),
            m.check.p_value,
            if m.check.supported { "" } else { ", not verified" },
            m.mode.errors,
            strip(inputs.test_images, &m.hardest, correct)
        );
    }
    h
}

/// The class's names from image attributes, verified ones first in words, then the table and the images of the first name.
fn names_block(inputs: &ReportInputs<'_>, class: u16, correct: &HashMap<usize, bool>) -> String {
    use crate::artifacts::NamesOutcome;
    let Some(entry) = inputs.names.and_then(|n| n.classes.iter().find(|c| c.class == class)) else {
        return String::new();
    };
    let NamesOutcome::Named { names, top_name_images } = &entry.outcome else { return String::new() };
    let verified: Vec<String> =
        names.hard.iter().filter(|n| n.check.supported).map(|n| format!("<b>{}</b>", esc(&n.phrase))).collect();
    let mut h = format!(
        "<p class=\"names\">What its failures look like (verified on test): {}</p>",
        if verified.is_empty() { "no name passed the held-out check".to_string() } else { verified.join(", ") }
    );
    h.push_str(
        "<table><tr><th>side</th><th>image attribute</th><th>share of the hardest / easiest</th><th>share of the class</th>\
         <th>lift</th><th title=\"how far the picked images moved from the class, in its standard deviations\">effect</th>\
         <th title=\"the classifier on the val images with it (where the direction was fit), against the class\">val accuracy with it</th>\
         <th>test accuracy with it</th><th>class</th><th>p</th><th></th></tr>",
    );
    for (side, list) in [("hard", &names.hard), ("easy", &names.easy)] {
        for n in list {
            let verdict = if n.check.supported { "" } else { "<span class=\"bad\">unsupported</span>" };
            let _ = write!(
                h,
                "<tr><td>{side}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{} ({} images)</td><td>{}</td><td>{:.3}</td><td>{verdict}</td></tr>",
                esc(&n.phrase),
                fmt(Some(n.share_top)),
                fmt(Some(n.share_class)),
                n.lift,
                n.effect,
                n.errors.as_ref().map_or("-".into(), |e| format!(
                    "{} vs {}",
                    fmt(Some(e.accuracy)),
                    fmt(Some(e.class_accuracy))
                )),
                fmt(Some(n.check.accuracy)),
                n.check.k,
                fmt(Some(n.check.class_accuracy)),
                n.check.p_value,
            );
        }
    }
    h.push_str("</table>");
    if let Some(first) = names.hard.first() {
        let _ = write!(
            h,
            "<h3>Test images that are “{}”</h3>{}",
            esc(&first.phrase),
            strip(inputs.test_images, top_name_images, correct)
        );
    }
    h
}

fn caption_table(c: &ClassCaptions) -> String {
    let mut h = String::from(
        "<table><tr><th>negative (hard) caption</th><th>score</th><th>accuracy of nearest</th><th>class</th><th>p</th><th></th>\
         <th>positive (easy) caption</th><th>score</th><th>accuracy of nearest</th></tr>",
    );
    for (n, p) in c.negative.iter().zip(&c.positive) {
        let supported = n.check.supported;
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.caption),
            fmt(Some(n.score)),
            fmt(Some(n.check.accuracy)),
            fmt(Some(n.check.class_accuracy)),
            fmt(Some(n.check.p_value)),
            if supported { "good" } else { "bad" },
            if supported { "supported" } else { "unsupported" },
            esc(&p.caption),
            fmt(Some(p.score)),
            fmt(Some(p.check.accuracy)),
        );
    }
    h.push_str("</table>");
    h
}

/// The long side of a thumbnail of an image from disk.
const THUMBNAIL: usize = 96;

/// Image `i` as the report shows it: a built-in dataset's as it is; one from disk resized to fit [`THUMBNAIL`] square (a grey
/// tile if it cannot be read).
fn thumbnail(set: &fd_data::Images, i: usize) -> fd_data::Image {
    let Ok(image) = set.image(i) else {
        return fd_data::Image::new(THUMBNAIL, THUMBNAIL, vec![128; THUMBNAIL * THUMBNAIL * 3]);
    };
    if matches!(set, fd_data::Images::Memory(_)) {
        return image;
    }
    // Every tile of a grid has one size: the image fitted inside a square, on grey.
    let scale = THUMBNAIL as f64 / image.height.max(image.width) as f64;
    let (h, w) = (
        ((image.height as f64 * scale).round() as usize).clamp(1, THUMBNAIL),
        ((image.width as f64 * scale).round() as usize).clamp(1, THUMBNAIL),
    );
    let small = fd_data::preprocess::resize_bilinear(&image, h, w);
    let (top, left) = ((THUMBNAIL - h) / 2, (THUMBNAIL - w) / 2);
    let mut data = vec![128; THUMBNAIL * THUMBNAIL * 3];
    for y in 0..h {
        let row = ((top + y) * THUMBNAIL + left) * 3;
        data[row..row + w * 3].copy_from_slice(&small.data[y * w * 3..(y + 1) * w * 3]);
    }
    fd_data::Image::new(THUMBNAIL, THUMBNAIL, data)
}

/// An image grid with a green frame around images the classifier got right and a red one around its errors, as a PNG data URI.
/// Images from disk are shown at most [`THUMBNAIL`] pixels on their long side; one that cannot be read is a grey tile.
fn strip(set: &fd_data::Images, indices: &[usize], correct: &HashMap<usize, bool>) -> String {
    let tiles: Vec<fd_data::Image> = indices
        .iter()
        .map(|&i| {
            let image = thumbnail(set, i);
            let (h, w) = (image.height, image.width);
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
    let tiles_small = tiles[0].width < 64;
    let grid = fd_data::image_grid(&tiles, 10, 2, [255, 255, 255]);
    let png = fd_data::encode_png(&grid);
    format!(
        "<img class=\"strip\" width=\"{}\" src=\"data:image/png;base64,{}\" alt=\"test images\">",
        // Small images (CIFAR-10's 32 pixels) are shown at twice their size.
        if tiles_small { grid.width * 2 } else { grid.width },
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}
