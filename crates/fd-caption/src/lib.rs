//! fd-caption: words for each failure direction.
//!
//! It will build the paper's candidate caption vocabularies from templates, score caption text embeddings with a class's SVM direction, and check each caption on held-out images (§2 of the method spec).
//! It takes plain data (text embeddings as `&[f32]` rows, a direction, preprocessing statistics), depends on no `fd-*` crate, runs no network and does no I/O.
//!
//! Nothing is implemented yet: this crate is a placeholder for the workspace layout, with no functions that pretend to work.
