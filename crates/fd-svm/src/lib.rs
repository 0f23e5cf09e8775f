//! fd-svm: the per-class failure directions.
//!
//! It will fit, per class, a class-balanced linear SVM that predicts from an embedding whether the classifier got the image right, choose C by 2-fold cross-validation on balanced accuracy, and score and rank every image by its decision value (§1.5 and §1.6 of the method spec).
//! It takes and returns plain data (`&[f32]` rows with a `dim`, `&[bool]` flags, class ids), depends on no `fd-*` crate, on no tensor framework and on no image crate, and does no I/O.
//!
//! Nothing is implemented yet: this crate is a placeholder for the workspace layout, with no functions that pretend to work.
