//! fd-diffusion against diffusers: `fixtures/make_sd_fixtures.py` ran diffusers' own networks, schedulers and
//! `StableDiffusionPipeline` on random weights of the tiny shapes and saved their inputs and outputs.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::config::{UNetConfig, VaeConfig};
use crate::error::Error;
use crate::load::{canonical, load_unet, load_vae};
use crate::pipeline::{Pipeline, Settings, gaussian_noise, to_image};
use crate::scheduler::{Ddim, Pndm, ScheduleConfig, SchedulerKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// One tensor of the reference file, as f32 (integers converted) with its shape.
fn reference(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixture("tiny_sd_io.safetensors")).expect("the fixture is committed");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let t = file.tensor(name).unwrap_or_else(|_| panic!("{name} is in the fixture"));
    let data = match t.dtype() {
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
        safetensors::Dtype::I64 => {
            t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("eight bytes")) as f32).collect()
        }
        safetensors::Dtype::U8 => t.data().iter().map(|&v| f32::from(v)).collect(),
        other => panic!("{name}: unexpected dtype {other:?}"),
    };
    (data, t.shape().to_vec())
}

fn tensor4(name: &str, device: &Device) -> Tensor<4> {
    let (data, shape) = reference(name);
    Tensor::<4>::from_data(TensorData::new(data, [shape[0], shape[1], shape[2], shape[3]]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

/// The largest absolute difference, after checking the lengths agree.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn scale(a: &[f32]) -> f32 {
    a.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn device() -> Device {
    Device::flex()
}

#[test]
fn alphas_and_timesteps_are_diffusers() {
    let s = ScheduleConfig::sd_v1();
    let (alphas, _) = reference("alphas_cumprod");
    let ours = s.alphas_cumprod();
    assert!(max_diff(&ours, &alphas) <= 1e-6, "alphas differ by {}", max_diff(&ours, &alphas));
    for (steps, key, pndm) in [
        (50, "ddim_timesteps_50", false),
        (5, "ddim_timesteps_5", false),
        (50, "pndm_timesteps_50", true),
        (5, "pndm_timesteps_5", true),
    ] {
        let (want, _) = reference(key);
        let got: Vec<f32> = if pndm {
            Pndm::new(&s, steps).unwrap().timesteps().iter().map(|&t| t as f32).collect()
        } else {
            Ddim::new(&s, steps).unwrap().timesteps().iter().map(|&t| t as f32).collect()
        };
        assert_eq!(got, want, "{key}");
    }
}

#[test]
fn ddim_and_pndm_steps_are_diffusers() {
    let s = ScheduleConfig::sd_v1();
    let (sample, _) = reference("step_sample");
    let (outputs, _) = reference("step_outputs");
    let n = sample.len();
    for (kind, key) in [(SchedulerKind::Ddim, "ddim_steps_5"), (SchedulerKind::Pndm, "pndm_steps_5")] {
        let (want, shape) = reference(key);
        let mut scheduler = crate::Scheduler::new(kind, &s, 5).unwrap();
        let mut x = sample.clone();
        for (i, t) in scheduler.timesteps().into_iter().enumerate() {
            x = scheduler.step(&outputs[i * n..(i + 1) * n], t, &x).unwrap();
            let expected = &want[i * n..(i + 1) * n];
            let d = max_diff(&x, expected);
            assert!(d <= 1e-4 * scale(expected).max(1.0), "{key} step {i} (t = {t}) differs by {d}");
        }
        assert_eq!(shape[0], scheduler.timesteps().len());
    }
}

#[test]
fn a_step_rejects_a_nan_output_and_a_wrong_length() {
    let s = ScheduleConfig::sd_v1();
    let ddim = Ddim::new(&s, 10).unwrap();
    assert!(matches!(ddim.step(&[0.0, f32::NAN], 981, &[0.0, 0.0]), Err(Error::NotFinite { .. })));
    assert!(matches!(ddim.step(&[0.0], 981, &[0.0, 0.0]), Err(Error::Shape { .. })));
    assert!(matches!(Ddim::new(&s, 0), Err(Error::Config { .. })));
    assert!(matches!(Pndm::new(&s, 1001), Err(Error::Config { .. })));
}

#[test]
fn the_unet_from_an_fp16_file_is_diffusers_unet() {
    let d = device();
    let unet = load_unet(&UNetConfig::tiny(), &fixture("tiny_unet_fp16.safetensors"), &d).unwrap();
    let latents = tensor4("unet_latents", &d);
    let (context, shape) = reference("unet_context");
    let context = Tensor::<3>::from_data(TensorData::new(context, [shape[0], shape[1], shape[2]]), &d);
    for t in [981, 1] {
        let (want, _) = reference(&format!("unet_out_t{t}"));
        let got = values(unet.forward(latents.clone(), t as f32, &context));
        let diff = max_diff(&got, &want);
        assert!(diff <= 1e-4 * scale(&want).max(1.0), "UNet at t = {t} differs by {diff}");
    }
}

#[test]
fn the_vae_decodes_and_encodes_as_diffusers() {
    let d = device();
    let vae = load_vae(&VaeConfig::tiny(), &fixture("tiny_vae.safetensors"), &d).unwrap();
    let (want, _) = reference("vae_decoded");
    let got = values(vae.decode(tensor4("vae_latents", &d)));
    assert!(max_diff(&got, &want) <= 1e-4 * scale(&want).max(1.0), "decoder differs by {}", max_diff(&got, &want));
    let (mean, logvar) = vae.encode(tensor4("vae_image", &d)).expect("a full VAE has an encoder");
    for (got, key) in [(values(mean), "vae_mean"), (values(logvar), "vae_logvar")] {
        let (want, _) = reference(key);
        assert!(max_diff(&got, &want) <= 1e-4 * scale(&want).max(1.0), "{key} differs by {}", max_diff(&got, &want));
    }
}

fn tiny_pipeline(d: &Device) -> Pipeline {
    Pipeline {
        unet: load_unet(&UNetConfig::tiny(), &fixture("tiny_unet_fp16.safetensors"), d).unwrap(),
        vae: load_vae(&VaeConfig::tiny(), &fixture("tiny_vae.safetensors"), d).unwrap(),
        schedule: ScheduleConfig::sd_v1(),
        latent_channels: 4,
        downscale: VaeConfig::tiny().downscale(),
    }
}

#[test]
fn the_onnx_exports_load_to_the_same_networks() {
    let d = device();
    let unet = crate::load::load_unet_onnx(&UNetConfig::tiny(), &fixture("tiny_unet.onnx"), &d).unwrap();
    let latents = tensor4("unet_latents", &d);
    let (context, shape) = reference("unet_context");
    let context = Tensor::<3>::from_data(TensorData::new(context, [shape[0], shape[1], shape[2]]), &d);
    for t in [981, 1] {
        let (want, _) = reference(&format!("unet_out_t{t}"));
        let got = values(unet.forward(latents.clone(), t as f32, &context));
        assert!(
            max_diff(&got, &want) <= 1e-4 * scale(&want).max(1.0),
            "ONNX UNet at t = {t}: {}",
            max_diff(&got, &want)
        );
    }
    let vae = crate::load::load_vae_decoder_onnx(&VaeConfig::tiny(), &fixture("tiny_vae_decoder.onnx"), &d).unwrap();
    let (want, _) = reference("vae_decoded");
    let got = values(vae.decode(tensor4("vae_latents", &d)));
    assert!(max_diff(&got, &want) <= 1e-4 * scale(&want).max(1.0), "ONNX decoder differs by {}", max_diff(&got, &want));
    assert!(vae.encode(tensor4("vae_image", &d)).is_none(), "a decoder export cannot encode");
    // The decoder's export is not a UNet: the error names what is missing.
    let err = crate::load::load_unet_onnx(&UNetConfig::tiny(), &fixture("tiny_vae_decoder.onnx"), &d).unwrap_err();
    assert!(err.to_string().contains("time_embedding.linear_1.weight (expected shape [64, 16])"), "{err}");
}

#[test]
fn whole_pipelines_match_stable_diffusion_pipeline() {
    let d = device();
    let pipeline = tiny_pipeline(&d);
    let (cond, shape) = reference("pipe_cond");
    let (uncond, _) = reference("pipe_uncond");
    let (start, _) = reference("pipe_latents");
    for (name, scheduler, steps, guidance) in
        [("ddim", SchedulerKind::Ddim, 4, 7.5), ("pndm", SchedulerKind::Pndm, 3, 1.0)]
    {
        let settings = Settings { scheduler, steps, guidance, height: 16, width: 16 };
        let out = pipeline.generate(&cond, &uncond, shape[1], &start, &settings, &d).unwrap();
        let (final_latents, _) = reference(&format!("pipe_{name}_final"));
        let diff = max_diff(&out.latents, &final_latents);
        assert!(diff <= 1e-3 * scale(&final_latents).max(1.0), "{name}: final latents differ by {diff}");
        let (decoded, _) = reference(&format!("pipe_{name}_decoded"));
        assert!(
            max_diff(&out.decoded, &decoded) <= 1e-3,
            "{name}: decoded differs by {}",
            max_diff(&out.decoded, &decoded)
        );
        // 8-bit pixels: equal but for values on a rounding edge.
        let (u8s, _) = reference(&format!("pipe_{name}_u8"));
        let off = out.image.data.iter().zip(&u8s).filter(|(a, b)| (f32::from(**a) - **b).abs() > 1.0).count();
        assert_eq!(off, 0, "{name}: pixels more than one level apart");
        assert_eq!((out.image.height, out.image.width), (16, 16));
    }
    // The same seed gives the same image bit for bit; another seed another.
    let settings = Settings { scheduler: SchedulerKind::Ddim, steps: 2, guidance: 3.0, height: 16, width: 16 };
    let run = |seed: u64| {
        pipeline.generate(&cond, &uncond, shape[1], &gaussian_noise(seed, 4 * 8 * 8), &settings, &d).unwrap()
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a.latents, b.latents);
    assert_eq!(a.image, b.image);
    assert_ne!(a.latents, c.latents);
    // Bad input: NaN latents, a size the VAE cannot give, contexts that do not split into tokens.
    let mut nan = start.clone();
    nan[3] = f32::NAN;
    assert!(matches!(pipeline.generate(&cond, &uncond, shape[1], &nan, &settings, &d), Err(Error::NotFinite { .. })));
    let odd = Settings { height: 15, ..settings.clone() };
    assert!(matches!(pipeline.generate(&cond, &uncond, shape[1], &start, &odd, &d), Err(Error::Config { .. })));
    assert!(matches!(
        pipeline.generate(&cond, &uncond[1..], shape[1], &start, &settings, &d),
        Err(Error::Shape { .. })
    ));
}

/// fd-clip's tiny text shape, without its vision tower.
fn tiny_text() -> fd_clip::clip::ClipConfig {
    fd_clip::clip::ClipConfig { vision: None, ..fd_clip::clip::ClipConfig::tiny() }
}

#[test]
fn a_prompt_conditions_the_pipeline_as_in_diffusers() {
    let d = device();
    let config = tiny_text();
    let tower = fd_clip::load::load_text_tower(&config, &fixture("tiny_sd_text.safetensors"), &d).unwrap();
    let encoder = crate::PromptEncoder::new(&config, tower, &d).unwrap();
    // Ids: Stable Diffusion's padding (end of text, not 0), folded into the tiny vocabulary.
    let (ids, truncated) = encoder.ids(&["a photo of a white cat on the grass"]);
    let (want_ids, _) = reference("text_ids");
    assert_eq!(ids[0].iter().map(|&t| t as f32).collect::<Vec<_>>(), want_ids);
    assert!(truncated.is_empty());
    let text = encoder.encode(&["", "a photo of a white cat on the grass"]).unwrap();
    for (k, key) in [(0, "text_uncond"), (1, "text_cond")] {
        let (want, _) = reference(key);
        let diff = max_diff(text.prompt(k), &want);
        assert!(diff <= 1e-4 * scale(&want).max(1.0), "{key} differs by {diff}");
    }
    // One UNet step at the first timestep, without and with guidance.
    let pipeline = tiny_pipeline(&d);
    let (start, _) = reference("prompt_latents");
    let x = Tensor::<1>::from_data(TensorData::new(start.clone(), [start.len()]), &d).reshape([1, 4, 8, 8]);
    let context =
        Tensor::<1>::from_data(TensorData::new(text.values.clone(), [text.values.len()]), &d).reshape([2, 77, 32]);
    let first = crate::Ddim::new(&ScheduleConfig::sd_v1(), 4).unwrap().timesteps()[0];
    let eps = values(pipeline.unet.forward(x.repeat_dim(0, 2), first as f32, &context));
    let (u, c) = eps.split_at(eps.len() / 2);
    let guided: Vec<f32> = u.iter().zip(c).map(|(u, c)| u + 7.5 * (c - u)).collect();
    for (got, key) in [(u, "prompt_eps_uncond"), (c, "prompt_eps_cond"), (&guided[..], "prompt_eps_guided")] {
        let (want, _) = reference(key);
        assert!(max_diff(got, &want) <= 1e-4 * scale(&want).max(1.0), "{key} differs by {}", max_diff(got, &want));
    }
    // The whole pipeline from the prompt: the latents after four DDIM steps, the decoded image, the pixels.
    let settings = Settings { scheduler: SchedulerKind::Ddim, steps: 4, guidance: 7.5, height: 16, width: 16 };
    let out = pipeline.generate(text.prompt(1), text.prompt(0), 77, &start, &settings, &d).unwrap();
    let (steps, _) = reference("prompt_steps");
    let last = &steps[steps.len() - out.latents.len()..];
    assert!(
        max_diff(&out.latents, last) <= 1e-3 * scale(last).max(1.0),
        "latents differ by {}",
        max_diff(&out.latents, last)
    );
    let (decoded, _) = reference("prompt_decoded");
    let mean_abs = out.decoded.iter().zip(&decoded).map(|(a, b)| (a - b).abs()).sum::<f32>() / decoded.len() as f32;
    // The acceptance bound is 1/255 mean absolute on the image in 0-1, that is 2/255 on -1..1.
    assert!(mean_abs <= 2.0 / 255.0 && max_diff(&out.decoded, &decoded) <= 1e-3, "decoded differs: mean {mean_abs}");
    let (u8s, _) = reference("prompt_u8");
    assert!(out.image.data.iter().zip(&u8s).all(|(a, b)| (f32::from(*a) - b).abs() <= 1.0));
}

#[test]
fn padding_is_end_of_text_after_the_first_end_of_text() {
    assert_eq!(crate::text::pad_with_end_of_text(vec![49406, 320, 49407, 0, 0]), vec![49406, 320, 49407, 49407, 49407]);
    assert_eq!(crate::text::pad_with_end_of_text(vec![49406, 320, 321]), vec![49406, 320, 321]);
}

#[test]
fn gaussian_noise_is_standard_and_seeded() {
    let x = gaussian_noise(3, 20_000);
    let mean = x.iter().sum::<f32>() / x.len() as f32;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
    assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean}, variance {var}");
    assert_eq!(gaussian_noise(3, 5), x[..5]);
}

#[test]
fn pixels_are_rounded_from_minus_one_to_one() {
    // Three planes of one pixel each: -1 → 0, 0 → 128 (127.5 rounds up), 2 → 255 (clamped).
    let image = to_image(&[-1.0, 0.0, 2.0], 1, 1);
    assert_eq!(image.data, vec![0, 128, 255]);
}

#[test]
fn weights_that_do_not_fit_are_named() {
    let d = device();
    // The tiny VAE's file read as a VAE with wider blocks: shapes differ, and the error names the key and both shapes.
    let wider = VaeConfig { block_out_channels: vec![8, 24], norm_groups: 4, ..VaeConfig::tiny() };
    let err = load_vae(&wider, &fixture("tiny_vae.safetensors"), &d).unwrap_err().to_string();
    assert!(err.contains("tiny_vae.safetensors") && err.contains("has shape [16"), "{err}");
    assert!(err.contains("expected [24"), "{err}");
    // The UNet's file read as a VAE: its tensors are missing and the UNet's are unexpected.
    let err = load_vae(&VaeConfig::tiny(), &fixture("tiny_unet_fp16.safetensors"), &d).unwrap_err().to_string();
    assert!(
        err.contains("missing tensor encoder.conv_in.weight") && err.contains("unexpected tensor conv_in.weight"),
        "{err}"
    );
    assert!(err.contains("0 of another shape"), "{err}");
    // A missing file says how to get one.
    let err = load_unet(&UNetConfig::tiny(), Path::new("/nonexistent/unet.safetensors"), &d).unwrap_err().to_string();
    assert!(err.contains("fd-cli fetch stable-diffusion"), "{err}");
}

#[test]
fn old_and_new_attention_names_map_to_the_modules() {
    assert_eq!(
        canonical("decoder.mid_block.attentions.0.query.weight"),
        "decoder.mid_block.attentions.0.attention.to_q.weight"
    );
    assert_eq!(
        canonical("encoder.mid_block.attentions.0.proj_attn.bias"),
        "encoder.mid_block.attentions.0.attention.to_out.bias"
    );
    assert_eq!(
        canonical("decoder.mid_block.attentions.0.to_out.0.weight"),
        "decoder.mid_block.attentions.0.attention.to_out.weight"
    );
    assert_eq!(
        canonical("mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.weight"),
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.weight"
    );
    assert_eq!(
        canonical("up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj.weight"),
        "up_blocks.1.attentions.2.transformer_blocks.0.ff.proj.weight"
    );
    assert_eq!(
        canonical("down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.bias"),
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.out.bias"
    );
}

#[test]
fn the_listed_tensors_are_what_burn_store_saves_in_pytorch_form() {
    // The lazy listing the checks use against burn-store's own collection (which allocates every weight).
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
    let d = device();
    let unet = crate::UNet::new(&UNetConfig::tiny(), &d);
    let mut listed = crate::load::expected_tensors(&unet);
    let mut saved: Vec<(String, Vec<usize>)> = unet
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    listed.sort();
    saved.sort();
    assert_eq!(listed, saved);
}

#[test]
fn the_v1_shapes_have_v1_parameter_counts() {
    // diffusers' stable-diffusion-v1-5: UNet 859,520,964 parameters, VAE 83,653,863.
    let d = device();
    let unet = crate::UNet::new(&UNetConfig::sd_v1(), &d);
    assert_eq!(unet.num_params(), 859_520_964);
    let vae = crate::Vae::new(&VaeConfig::sd_v1(), &d);
    assert_eq!(vae.num_params(), 83_653_863);
}

/// Stable Diffusion v1's shapes with random weights, when `FD_SD_FULL` names the folder `make_sd_fixtures.py --full`
/// wrote (1.7 GB of UNet in float16; a few minutes on two cores). It prints the differences for the closing note.
#[test]
#[allow(clippy::print_stderr)]
fn v1_shapes_match_diffusers_when_asked() {
    let Some(dir) = std::env::var_os("FD_SD_FULL").map(PathBuf::from) else { return };
    let d = device();
    let bytes = std::fs::read(dir.join("v1_io.safetensors")).unwrap();
    let io = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |k: &str| -> (Vec<f32>, Vec<usize>) {
        let t = io.tensor(k).unwrap();
        (t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), t.shape().to_vec())
    };
    let as4 = |(v, s): (Vec<f32>, Vec<usize>)| Tensor::<4>::from_data(TensorData::new(v, [s[0], s[1], s[2], s[3]]), &d);
    let unet = load_unet(&UNetConfig::sd_v1(), &dir.join("unet_v1_fp16.safetensors"), &d).unwrap();
    let (context, s) = get("context");
    let context = Tensor::<3>::from_data(TensorData::new(context, [s[0], s[1], s[2]]), &d);
    let got = values(unet.forward(as4(get("latents")), 981.0, &context));
    let (want, _) = get("unet_out");
    let diff = max_diff(&got, &want);
    eprintln!("v1 UNet step: max difference {diff:e} (output scale {})", scale(&want));
    assert!(diff <= 1e-4 * scale(&want).max(1.0), "v1 UNet differs by {diff}");
    drop(unet);
    let vae = load_vae(&VaeConfig::sd_v1(), &dir.join("vae_v1.safetensors"), &d).unwrap();
    let got = values(vae.decode(as4(get("vae_latents"))));
    let (want, _) = get("vae_decoded");
    let diff = max_diff(&got, &want);
    eprintln!("v1 VAE decode: max difference {diff:e} (output scale {})", scale(&want));
    assert!(diff <= 1e-4 * scale(&want).max(1.0), "v1 VAE decoder differs by {diff}");
}
