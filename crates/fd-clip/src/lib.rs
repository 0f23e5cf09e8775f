//! fd-clip: the joint image-text latent space.
//!
//! It will hold the OpenAI CLIP vision and text towers (ViT-B/32 for the pipeline, the ViT-L/14 text tower for Stable Diffusion), the BPE tokenizer, the paper's and CLIP's image preprocessing, and weight import from safetensors and ONNX files (§1.4 of the method spec).
//! It will depend on fd-data only, read weights through a single `load.rs`, and never read datasets or print.
//!
//! Nothing is implemented yet: this crate is a placeholder for the workspace layout, with no functions that pretend to work.
