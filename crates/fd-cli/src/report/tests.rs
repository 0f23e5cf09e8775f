//! The report's figures on hand-built artifacts, with every expected value worked out by hand in the comments.

use fd_caption::check::CaptionCheck;
use fd_caption::class::{CheckedCaption, ClassCaptions, CurvePoint};

use super::*;
use crate::artifacts::{CaptionOutcome, ClassCaptionsEntry};

fn checked(caption: &str, accuracy: f64, supported: bool) -> CheckedCaption {
    let check =
        CaptionCheck { k: 3, accuracy, class_accuracy: 0.5, p_value: if supported { 0.01 } else { 0.5 }, supported };
    CheckedCaption { caption: caption.into(), score: -1.0, check }
}

fn class_captions(
    hard: f64,
    easy: f64,
    class_accuracy: f64,
    supported: bool,
    subpopulation: Vec<usize>,
) -> ClassCaptions {
    ClassCaptions {
        vocabulary_size: 2,
        class_accuracy,
        negative: vec![checked("a photo of a hard thing", hard, supported)],
        positive: vec![checked("a photo of an easy thing", easy, false)],
        hard_curve: vec![CurvePoint { k: 5, accuracy: hard }],
        easy_curve: vec![CurvePoint { k: 5, accuracy: easy }],
        hard_subpopulation: subpopulation,
        easy_subpopulation: vec![],
    }
}

struct Fixture {
    classifier: EvaluateSummary,
    fit: FitSummary,
    captions: CaptionsFile,
    test: Scored,
    decisions: Vec<f64>,
    planted: Vec<bool>,
    names: Vec<String>,
    images: fd_data::Images,
}

/// Two classes of six test rows each (dataset indices 100..112); rows 0, 1 and 6 are the planted group.
fn fixture() -> Fixture {
    let fit_class = |class| ClassFit {
        class,
        c: Some(0.1),
        cv_balanced_accuracy: Some(0.6),
        test_balanced_accuracy: 0.7,
        classifier_test_accuracy: 0.75,
        skipped: None,
    };
    let entry = |class: u16, captions| ClassCaptionsEntry {
        class,
        name: format!("class{class}"),
        outcome: CaptionOutcome::Captioned { reference: "ref".into(), captions },
        modes: Vec::new(),
    };
    Fixture {
        classifier: EvaluateSummary {
            format_version: Version,
            parts: vec![PartAccuracy { part: fd_data::SplitPart::Test, images: 12, accuracy: 0.75 }],
        },
        fit: FitSummary {
            format_version: Version,
            mean_cv_balanced_accuracy: 0.6,
            test_balanced_accuracy: 0.7,
            test_accuracy: 0.7,
            test_confusion: fd_svm::metrics::confusion(&[true], &[true]),
            fit_seconds: 0.1,
            classes: vec![fit_class(0), fit_class(1)],
        },
        captions: CaptionsFile {
            format_version: Version,
            classes: vec![
                entry(0, class_captions(0.0, 1.0, 4.0 / 6.0, true, vec![100, 102, 104])),
                entry(1, class_captions(0.5, 0.75, 5.0 / 6.0, false, vec![106, 107])),
            ],
        },
        test: Scored {
            rows: vec![0.0; 12],
            dim: 1,
            indices: (100..112).collect(),
            labels: [[0u16; 6], [1; 6]].concat(),
            correct: [false, false, true, true, true, true, false, true, true, true, true, true].to_vec(),
            confidence: vec![0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.6, 0.1, 0.2, 0.3, 0.4, 0.5],
        },
        decisions: vec![-2.0, 0.5, -1.0, 1.0, 2.0, 3.0, -3.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        planted: (0..12).map(|i| [0, 1, 6].contains(&i)).collect(),
        names: vec!["class0".into(), "class1".into()],
        images: fd_data::Dataset::new(
            2,
            2,
            vec![128; 112 * 12],
            [vec![0u16; 106], vec![1; 6]].concat(),
            vec!["class0".into(), "class1".into()],
        )
        .unwrap()
        .into(),
    }
}

fn inputs(f: &Fixture) -> ReportInputs<'_> {
    let retrained_correct = (100..112).map(|i| i != 101).collect();
    ReportInputs {
        name: "hand".into(),
        setting: Setting::Attribute,
        architecture: "tiny".into(),
        embedder: "efficientnet-tiny".into(),
        classifier: &f.classifier,
        fit: &f.fit,
        captions: &f.captions,
        names: None,
        modes: None,
        caption_k: 3,
        test: &f.test,
        decisions: &f.decisions,
        planted: Some(&f.planted),
        num_classes: 2,
        class_names: &f.names,
        test_images: &f.images,
        retrained: vec![Retrained {
            key: crate::artifacts::RetrainKey {
                rule: SelectionRule::Svm,
                k: 4,
                seed: None,
                mode: crate::config::RetrainMode::Scratch,
            },
            indices: (100..112).collect(),
            correct: retrained_correct,
        }],
        // Retrained on generated hard-caption images: 100 and 102 wrong.
        generated: vec![crate::report::GeneratedRetrained {
            figures: crate::report::GeneratedFigures {
                kind: "hard".into(),
                on_images: Some(0.25),
                held_out_before: Some(0.5),
                held_out_after: Some(0.75),
            },
            indices: (100..112).collect(),
            correct: (100..112).map(|i| i != 100 && i != 102).collect(),
        }],
        stages: vec![StageTime { stage: "fit".into(), seconds: 0.5 }],
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

#[test]
fn planted_figures_worked_by_hand() {
    let f = fixture();
    let s = summary(&inputs(&f));
    let p = s.planted.as_ref().unwrap();
    assert_eq!(p.classes_with_planted_images, 2);
    // Base rates 2/6 and 1/6.
    assert!(close(p.base_rate, 0.25));
    // By SVM, class 0 ranks rows 0, 2, 1, 3, 4, 5: two planted among the top 5 (0.4); class 1 ranks row 6 first (0.2).
    assert!(close(p.svm.at(5), 0.3));
    // No class has 10 rows.
    assert_eq!(p.svm.at(10), None);
    assert_eq!(p.svm.curve.len(), 1);
    // By confidence, class 0 ranks rows 1, 2, 5, 4, 3, 0 (one planted in the top 5); class 1 ranks row 6 last (none).
    assert!(close(p.confidence.at(5), 0.1));
    // AUROC of -decision: class 0 wins 7 of its 8 planted/other pairs, class 1 all 5; of -confidence: 4 of 8 and 0 of 5.
    assert!(close(p.svm.auroc, (7.0 / 8.0 + 1.0) / 2.0));
    assert!(close(p.confidence.auroc, 0.25));
}

#[test]
fn caption_and_intervention_figures_worked_by_hand() {
    let f = fixture();
    let s = summary(&inputs(&f));
    assert!(close(s.test_accuracy(), 0.75));
    let c = &s.captions;
    assert!(
        close(c.hard_accuracy_mean, 0.25) && close(c.easy_accuracy_mean, 0.875) && close(c.class_accuracy_mean, 0.75)
    );
    assert_eq!((c.supported, c.captioned_classes, c.k), (1, 2, 3));
    let [none, svm, generated] = &s.intervention[..] else { panic!("{:?}", s.intervention) };
    assert_eq!((none.name(), svm.name()), ("none".to_string(), "svm-k4".to_string()));
    // The generated hard-caption retraining: 10 of 12 right; the hard subpopulations 1/3 and 2/2 right.
    assert_eq!(generated.name(), "generated-hard");
    assert!(close(generated.test_accuracy, 10.0 / 12.0));
    assert!(generated.generated.as_ref().is_some_and(|g| g.on_images == Some(0.25) && g.held_out_after == Some(0.75)));
    assert!(close(generated.hard_caption_accuracy, (1.0 / 3.0 + 1.0) / 2.0));
    // Only class 0's hardest caption is supported: its subpopulation alone.
    assert!(close(generated.supported_caption_accuracy, 1.0 / 3.0));
    // 9 of 12 right; the hard subpopulations {100, 102, 104} and {106, 107} are 2/3 and 1/2 right; the planted 100, 101, 106 none.
    assert!(close(none.test_accuracy, 0.75));
    assert!(close(none.hard_caption_accuracy, (2.0 / 3.0 + 0.5) / 2.0));
    assert!(close(none.supported_caption_accuracy, 2.0 / 3.0));
    assert!(close(none.minority_accuracy, 0.0));
    // Retrained: only 101 wrong.
    assert!(close(svm.test_accuracy, 11.0 / 12.0) && close(svm.hard_caption_accuracy, 1.0));
    assert!(close(svm.supported_caption_accuracy, 1.0));
    assert!(close(svm.minority_accuracy, 2.0 / 3.0));
    let row = |figure: &str| s.fidelity.iter().find(|r| r.figure == figure).unwrap_or_else(|| panic!("{figure}"));
    assert!(close(row("minority test accuracy after adding 4 pool images per class by svm").ours, 2.0 / 3.0));
    assert!(close(row("test accuracy, svm, K = 4").ours, 11.0 / 12.0));
    assert!(close(row("original classifier's accuracy on hard-caption generated images").ours, 0.25));
    assert!(close(
        row("test accuracy after retraining the last layer with hard-caption generated images").ours,
        10.0 / 12.0
    ));
    assert!(close(row("planted group base rate per class").ours, 0.25));
    assert_eq!(row("planted group among the top 10 per class, by SVM").ours, None);
    assert_eq!(row("classifier test accuracy").paper, None, "a planted attribute has no paper value");
    // The summary is its own format: it reads back as written.
    let text = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), s);
    // A summary written before the supported captions' figure still reads, without it.
    let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
    old["intervention"].as_array_mut().unwrap().iter_mut().for_each(|v| {
        v.as_object_mut().unwrap().remove("supported_caption_accuracy");
    });
    let old: Summary = serde_json::from_value(old).unwrap();
    assert!(old.intervention.iter().all(|v| v.supported_caption_accuracy.is_none()));
}

#[test]
fn the_page_shows_every_class_s_images_captions_and_plots() {
    let f = fixture();
    let inputs = inputs(&f);
    let page = html(&inputs, &summary(&inputs));
    // Per class the hardest and easiest strips and the hard caption's subpopulation.
    assert_eq!(page.matches("src=\"data:image/png;base64,").count(), 2 * 3);
    // The overview, the planted plot, and one plot per class.
    assert_eq!(page.matches("<svg class=\"plot\"").count(), 4);
    assert_eq!(page.matches(">unsupported<").count(), 1);
    assert!(
        page.contains("<td>svm-k4</td><td>0.917</td><td>1.000</td><td>1.000</td><td>0.667</td>"),
        "the intervention table"
    );
    assert!(
        page.contains("<td>none</td><td>0.750</td><td>0.583</td><td>0.667</td><td>0.000</td>"),
        "the intervention table's columns in order"
    );
    assert!(page.contains("<h2>Generative intervention</h2>"));
    assert!(
        page.contains("<td>generated-hard</td><td>0.250</td><td>0.500</td><td>0.750</td><td>0.833</td><td>0.667</td>"),
        "the generated table"
    );
}

#[test]
fn mean_spread_and_the_bootstrap_interval_of_a_known_sample() {
    use super::repeated::{bootstrap_interval, mean_sd, paired_differences};
    let (mean, sd) = mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!((mean - 2.5).abs() < 1e-12 && (sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(mean_sd(&[0.7]), Some((0.7, 0.0)));
    assert_eq!(mean_sd(&[]), None);
    // A constant sample: every resample has its mean.
    assert_eq!(bootstrap_interval(&[0.25; 7], 1000, 0.95, 0), Some((0.25, 0.25)));
    // 30 ones in 100: the normal approximation gives 0.3 ± 1.96 sqrt(0.21 / 100) = [0.210, 0.390].
    let sample: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 10 < 3))).collect();
    let (low, high) = bootstrap_interval(&sample, 10_000, 0.95, 0).unwrap();
    assert!((0.20..0.225).contains(&low) && (0.375..0.40).contains(&high), "[{low}, {high}]");
    // Seeded: the same interval again; a narrower level gives a narrower interval.
    assert_eq!(bootstrap_interval(&sample, 10_000, 0.95, 0), Some((low, high)));
    let (l80, h80) = bootstrap_interval(&sample, 10_000, 0.8, 0).unwrap();
    assert!(l80 > low && h80 < high);
    // Paired differences over the keys both have.
    let a = std::collections::BTreeMap::from([(0, 0.7), (1, 0.8), (2, 0.9)]);
    let b = std::collections::BTreeMap::from([(0, 0.6), (2, 0.95), (3, 0.1)]);
    let d = paired_differences(&a, &b);
    assert!(d.len() == 2 && (d[0] - 0.1).abs() < 1e-12 && (d[1] + 0.05).abs() < 1e-12, "{d:?}");
}

#[test]
fn repeated_retrainings_are_grouped_by_mode_rule_and_k_and_paired_with_random_by_seed() {
    use crate::config::RetrainMode;
    let run = |rule, k, seed, mode, acc: f64| Intervention {
        rule: Some(rule),
        k: Some(k),
        test_accuracy: Some(acc),
        hard_caption_accuracy: Some(acc - 0.2),
        // Seed 1's retrainings lack the figure, and random's seed 0 (below): svm pairs with random at seed 2 alone.
        supported_caption_accuracy: (seed != 1).then_some(acc - 0.3),
        minority_accuracy: None,
        generated: None,
        seed: Some(seed),
        mode,
    };
    let last = Some(RetrainMode::LastLayer);
    let interventions = vec![
        // The original classifier: not a retraining.
        Intervention { rule: None, k: None, seed: None, mode: None, ..run(SelectionRule::Svm, 1, 0, None, 0.5) },
        run(SelectionRule::Svm, 100, 0, None, 0.80),
        run(SelectionRule::Svm, 100, 1, None, 0.82),
        run(SelectionRule::Svm, 100, 2, None, 0.84),
        Intervention { supported_caption_accuracy: None, ..run(SelectionRule::Random, 100, 0, None, 0.79) },
        run(SelectionRule::Random, 100, 1, None, 0.80),
        // Random's seed 2 has the supported figure only (no test accuracy): it pairs there and nowhere else.
        Intervention {
            test_accuracy: None,
            hard_caption_accuracy: None,
            ..run(SelectionRule::Random, 100, 2, None, 0.83)
        },
        // Last layer: its own group, never paired with a scratch retraining.
        run(SelectionRule::Svm, 100, 0, last, 0.70),
    ];
    let groups = super::repeated::repeated(&interventions);
    assert_eq!(groups.len(), 3, "{groups:?}");
    let svm = groups.iter().find(|g| g.rule == SelectionRule::Svm && g.mode == RetrainMode::Scratch).unwrap();
    assert_eq!(svm.seeds, [Some(0), Some(1), Some(2)]);
    let test = svm.test_accuracy.as_ref().unwrap();
    assert!((test.mean - 0.82).abs() < 1e-12 && (test.sd - 0.02).abs() < 1e-12, "{test:?}");
    // Paired on seeds 0 and 1 only (random has no seed 2): differences 0.01 and 0.02.
    let paired = test.vs_random.as_ref().unwrap();
    assert_eq!(paired.pairs, 2);
    assert!((paired.mean - 0.015).abs() < 1e-12, "{paired:?}");
    assert!(paired.low >= 0.01 - 1e-12 && paired.high <= 0.02 + 1e-12 && paired.low < paired.high, "{paired:?}");
    let supported = svm.supported_caption_accuracy.as_ref().unwrap();
    assert!((supported.mean - 0.52).abs() < 1e-12, "seeds 0 and 2: {supported:?}");
    // Keyed by seed: 0.54 − 0.53 at seed 2 (pairing by position would take svm's 0.50 against random's 0.53).
    let paired = supported.vs_random.as_ref().unwrap();
    assert!(paired.pairs == 1 && (paired.mean - 0.01).abs() < 1e-12, "{paired:?}");
    let random = groups.iter().find(|g| g.rule == SelectionRule::Random).unwrap();
    assert!(random.test_accuracy.as_ref().unwrap().vs_random.is_none());
    let svm_last = groups.iter().find(|g| g.mode == RetrainMode::LastLayer).unwrap();
    assert!(svm_last.test_accuracy.as_ref().unwrap().vs_random.is_none() && svm_last.minority_accuracy.is_none());
}
