//! The generate stage: images of each class's hardest and easiest captions, and of its reference caption, with Stable
//! Diffusion (`[generate]`; the paper's generative intervention, method spec §4.2): `generated/<class>/<kind>-<caption>-
//! <image>.png` and `generated.json` (every image's prompt, seed and settings).
//!
//! Images are drawn one at a time into `.generating/<hash of the settings and captions>/`, so an interrupted stage resumes
//! at the image it stopped on; when all are drawn they become the stage's outputs. Without the weights the stage stops
//! with `fd-cli fetch stable-diffusion`'s instructions, and every earlier artifact stays.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fd_data::Progress;
use serde_json::json;

use crate::artifacts::{CaptionsFile, GeneratedFile, GeneratedImage};
use crate::progress::Bars;
use crate::run::Run;

/// One prompt to draw: a class's hard or easy caption, or its reference caption.
struct Job {
    class: u16,
    kind: &'static str,
    slot: usize,
    prompt: String,
}

/// A caption as a prompt: a sentence stays as it is; a bare name (a closed vocabulary's, such as ImageNet's) becomes
/// "a photo of a <class> with a <name>" so that the class is drawn.
fn prompt(caption: &str, class: &str) -> String {
    if caption.contains(' ') { caption.to_string() } else { format!("a photo of a {class} with a {caption}") }
}

/// Every prompt: per captioned class, its `n` hardest captions, its `n` easiest and its reference caption.
fn jobs(captions: &CaptionsFile, n: usize) -> Vec<Job> {
    let mut out = Vec::new();
    for entry in &captions.classes {
        let (Some(c), crate::artifacts::CaptionOutcome::Captioned { reference, .. }) =
            (entry.captions(), &entry.outcome)
        else {
            continue;
        };
        for (kind, list) in [("hard", &c.negative), ("easy", &c.positive)] {
            for (slot, checked) in list.iter().take(n).enumerate() {
                out.push(Job { class: entry.class, kind, slot, prompt: prompt(&checked.caption, &entry.name) });
            }
        }
        let reference =
            if reference.contains(' ') { reference.clone() } else { format!("a photo of a {}", entry.name) };
        out.push(Job { class: entry.class, kind: "reference", slot: 0, prompt: reference });
    }
    out
}

/// Draws the images.
pub(super) fn generate(run: &Run) -> Result<()> {
    let Some(config) = &run.experiment.generate else {
        println!("generate: no [generate] section, nothing to do");
        return Ok(());
    };
    let inputs = run.engine.inputs(&["caption"], |n| n == "captions.json")?;
    let settings = json!({"generate": config});
    let hash = fd_data::sha256_hex(&serde_json::to_vec(&json!({"settings": settings, "inputs": inputs}))?);
    let cache = run.dir.join(".generating").join(&hash[..16]);
    run.engine.run("generate", settings, inputs, |out| {
        let captions: CaptionsFile = run.read()?;
        let jobs = jobs(&captions, config.captions);
        let device = run.device()?;
        let weights = crate::fetch::stable_diffusion_path(&run.data_dir, "unet");
        let dir = weights.parent().expect("a folder");
        let (pipeline, encoder) = fd_diffusion::load::load_generator(config, dir, &device).with_context(|| {
            format!(
                "loading Stable Diffusion; run `fd-cli fetch stable-diffusion` where a network is (it puts the weights in \
                 {}), or name the files in [generate]; earlier stages' artifacts are kept",
                dir.display()
            )
        })?;
        let settings = fd_diffusion::Settings {
            scheduler: config.scheduler,
            steps: config.steps,
            guidance: config.guidance,
            height: config.size,
            width: config.size,
        };
        let empty = encoder.encode(&[""])?;
        let latent_len = pipeline.latent_channels * (config.size / pipeline.downscale).pow(2);
        let bars = Bars::default();
        bars.start("generate", (jobs.len() * config.images_per_caption) as u64);
        let mut images = Vec::new();
        for job in &jobs {
            let text = encoder.encode(&[job.prompt.as_str()])?;
            let truncated = !text.truncated.is_empty();
            for n in 0..config.images_per_caption {
                let rel = format!("generated/{}/{}-{}-{n}.png", job.class, job.kind, job.slot);
                // Each caption's place within its class, so that more captions or images leave the others' noise alone.
                let place = match job.kind {
                    "hard" => job.slot,
                    "easy" => 1000 + job.slot,
                    _ => 2000,
                };
                let seed = config.image_seed(usize::from(job.class), place, n);
                let cached = cache.join(&rel);
                if !cached.is_file() {
                    let noise = fd_diffusion::gaussian_noise(seed, latent_len);
                    let image =
                        pipeline.generate(text.prompt(0), empty.prompt(0), text.tokens, &noise, &settings, &device)?;
                    write_png_atomic(&image.image, &cached)?;
                }
                copy(&cached, &out.join(&rel))?;
                images.push(GeneratedImage {
                    file: rel,
                    class: job.class,
                    kind: job.kind.to_string(),
                    caption: job.slot,
                    prompt: job.prompt.clone(),
                    truncated,
                    seed,
                });
                bars.advance(1);
            }
        }
        bars.finish();
        let mut written: Vec<String> = images.iter().map(|i| i.file.clone()).collect();
        let manifest = GeneratedFile { format_version: crate::artifacts::Version, settings: config.clone(), images };
        written.push(Run::write(out, &manifest)?);
        Ok(written)
    })?;
    // Every image is now an output of the stage; the drawing cache is no longer needed.
    std::fs::remove_dir_all(run.dir.join(".generating")).ok();
    Ok(())
}

/// Writes a PNG through a temporary file, so that an interrupted write never leaves a half image to resume from.
fn write_png_atomic(image: &fd_data::Image, path: &Path) -> Result<()> {
    let dir = path.parent().expect("a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial: PathBuf = dir.join(format!(".{}.part", path.file_name().expect("a name").to_string_lossy()));
    fd_data::write_png(image, &partial)?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to.parent().expect("a folder"))?;
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
