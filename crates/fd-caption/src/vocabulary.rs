//! Caption vocabularies and the template "a photo of a {adjective} {noun} {preposition}".

use serde::Deserialize;

/// One class's caption ingredients; `None` leaves a slot out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassVocabulary {
    /// Nouns.
    pub nouns: Vec<String>,
    /// Adjectives (with `None` for none).
    pub adjectives: Vec<Option<String>>,
    /// Prepositional phrases (with `None` for none).
    pub prepositions: Vec<Option<String>>,
}

/// A caption set: reference labels and per-class ingredients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// One label per class; the reference caption is `"a photo of a <label>"`.
    pub labels: Vec<String>,
    /// One entry per class.
    pub classes: Vec<ClassVocabulary>,
}

impl Vocabulary {
    /// Checks that the set fits a dataset of `classes` classes: one label and one entry per class, and every entry with at least one
    /// noun, adjective slot and preposition slot (captions are their product, so an empty part leaves a class with no caption).
    pub fn check(&self, classes: usize) -> Result<(), String> {
        if self.labels.len() != classes || self.classes.len() != classes {
            return Err(format!(
                "{} labels and {} class entries, but the dataset has {classes} classes; name a set made for this dataset",
                self.labels.len(),
                self.classes.len()
            ));
        }
        for (k, (label, class)) in self.labels.iter().zip(&self.classes).enumerate() {
            for (part, len) in [
                ("nouns", class.nouns.len()),
                ("adjectives", class.adjectives.len()),
                ("prepositions", class.prepositions.len()),
            ] {
                if len == 0 {
                    return Err(format!(
                        "class {k} ({label:?}) has no {part}, so it would have no caption; give it at least one (null means an empty slot for adjectives and prepositions)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How the article is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// "an" before a vowel sound's letter: "an old man", "an x-ray".
    Fixed,
    /// Always "a", as the paper's code writes it ("a photo of a old man"), for fidelity runs.
    Paper,
}

const SETS: &str = include_str!("../data/vocabularies.json");

/// The names of the built-in sets.
pub fn vocabulary_names() -> Vec<String> {
    let all: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(SETS).expect("the built-in vocabularies parse");
    all.into_keys().collect()
}

/// The paper's simple captions over any class names: each class's name as its noun and label, with `cifar10-simple`'s colours
/// and backgrounds (method spec §2.1).
pub fn simple(class_names: &[String]) -> Vocabulary {
    let base = vocabulary("cifar10-simple").expect("cifar10-simple is built in");
    let template = &base.classes[0];
    Vocabulary {
        labels: class_names.to_vec(),
        classes: class_names
            .iter()
            .map(|name| ClassVocabulary {
                nouns: vec![name.clone()],
                adjectives: template.adjectives.clone(),
                prepositions: template.prepositions.clone(),
            })
            .collect(),
    }
}

/// A built-in set by name: `cifar10-simple`, `cifar10-wordnet`, `cifar100-superclass`, `celeba`, `chestxray`, `imagenet`.
pub fn vocabulary(name: &str) -> Option<Vocabulary> {
    let mut all: std::collections::BTreeMap<String, Vocabulary> =
        serde_json::from_str(SETS).expect("the built-in vocabularies parse");
    all.remove(name)
}

fn article(next: &str, grammar: Grammar) -> &'static str {
    // Letters, not sounds: "x-ray" takes "an" (eks-ray) and so do vowels; "u" words like "unicorn" are rare in these sets.
    let first = next.chars().next().map(|c| c.to_ascii_lowercase());
    match (grammar, first) {
        (Grammar::Fixed, Some('a' | 'e' | 'i' | 'o' | 'x')) => "an",
        _ => "a",
    }
}

/// "a photo of a {ending}", the article agreeing with the ending's first word under [`Grammar::Fixed`].
pub fn caption(ending: &str, grammar: Grammar) -> String {
    format!("a photo of {} {ending}", article(ending, grammar))
}

/// The reference caption of `label`: `"a photo of a <label>"`.
pub fn reference_caption(label: &str, grammar: Grammar) -> String {
    caption(label, grammar)
}

/// Every caption of one class: nouns × adjectives × prepositions, noun-major, in the vocabulary's order.
pub fn class_captions(class: &ClassVocabulary, grammar: Grammar) -> Vec<String> {
    let mut out = Vec::with_capacity(class.nouns.len() * class.adjectives.len() * class.prepositions.len());
    for noun in &class.nouns {
        for adjective in &class.adjectives {
            for preposition in &class.prepositions {
                let ending: Vec<&str> =
                    [adjective.as_deref(), Some(noun.as_str()), preposition.as_deref()].into_iter().flatten().collect();
                out.push(caption(&ending.join(" "), grammar));
            }
        }
    }
    out
}
