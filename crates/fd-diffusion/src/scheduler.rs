//! The DDIM and PNDM schedulers as diffusers computes them for Stable Diffusion v1: scaled-linear betas, "leading"
//! timestep spacing with an offset of 1, `set_alpha_to_one = false`, epsilon prediction, no clipping.
//!
//! Both work on plain `f32` latents (a few tens of thousands of values), so a step is the same on any device and the
//! arithmetic is the reference's: alphas are computed in `f32` as torch computes them (`torch.linspace` on the square
//! roots, squared, then a cumulative product), and each step's coefficients in `f32`.
//!
//! DDIM: Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12 with η = 0 (diffusers' `DDIMScheduler.step`).
//! PNDM: Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds", its linear multistep (PLMS)
//! part only (`skip_prk_steps = true`, Stable Diffusion's setting), as diffusers' `PNDMScheduler.step_plms`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The noise schedule of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Training timesteps (1000).
    pub train_timesteps: usize,
    /// The first beta (0.00085).
    pub beta_start: f64,
    /// The last beta (0.012).
    pub beta_end: f64,
    /// Added to every inference timestep (1 for Stable Diffusion v1).
    pub steps_offset: usize,
}

impl ScheduleConfig {
    /// Stable Diffusion v1's schedule (`scheduler/scheduler_config.json` of v1-4 and v1-5).
    pub fn sd_v1() -> ScheduleConfig {
        ScheduleConfig { train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, steps_offset: 1 }
    }

    /// The cumulative products of `1 - beta` for the scaled-linear betas: `beta_t = linspace(√start, √end)_t²`.
    pub fn alphas_cumprod(&self) -> Vec<f32> {
        let n = self.train_timesteps;
        let (a, b) = (self.beta_start.sqrt() as f32, self.beta_end.sqrt() as f32);
        let mut prod = 1.0f32;
        (0..n)
            .map(|i| {
                let root = linspace_at(a, b, n, i);
                prod *= 1.0 - root * root;
                prod
            })
            .collect()
    }

    pub(crate) fn validate(&self, steps: usize) -> Result<()> {
        if steps == 0 || steps > self.train_timesteps {
            return Err(Error::Config {
                message: format!("inference steps must lie in 1..={}, got {steps}", self.train_timesteps),
            });
        }
        if !(self.beta_start > 0.0 && self.beta_end > self.beta_start && self.beta_end < 1.0) {
            return Err(Error::Config {
                message: format!(
                    "betas must satisfy 0 < start < end < 1, got {} and {}",
                    self.beta_start, self.beta_end
                ),
            });
        }
        Ok(())
    }
}

/// `torch.linspace(a, b, n)[i]` in `f32`: torch steps from the start for the first half and back from the end for the
/// second, so both ends are exact.
fn linspace_at(a: f32, b: f32, n: usize, i: usize) -> f32 {
    if n == 1 {
        return a;
    }
    let step = (b - a) / (n - 1) as f32;
    if i < n / 2 { a + step * i as f32 } else { b - step * (n - 1 - i) as f32 }
}

fn check_len(sample: &[f32], output: &[f32]) -> Result<()> {
    if sample.len() != output.len() {
        return Err(Error::Shape {
            message: format!("the model output has {} values, the sample {}", output.len(), sample.len()),
        });
    }
    if let Some(i) = output.iter().position(|v| !v.is_finite()) {
        return Err(Error::NotFinite { what: format!("the model output (value {i})") });
    }
    Ok(())
}

/// DDIM with η = 0: deterministic, as Stable Diffusion's pipelines run it.
#[derive(Debug, Clone)]
pub struct Ddim {
    alphas_cumprod: Vec<f32>,
    timesteps: Vec<usize>,
    step_ratio: usize,
}

impl Ddim {
    /// The schedule for `steps` inference steps: `t_i = i · (T / steps) + offset`, from the last down.
    pub fn new(config: &ScheduleConfig, steps: usize) -> Result<Ddim> {
        config.validate(steps)?;
        let step_ratio = config.train_timesteps / steps;
        let timesteps = (0..steps).rev().map(|i| i * step_ratio + config.steps_offset).collect();
        Ok(Ddim { alphas_cumprod: config.alphas_cumprod(), timesteps, step_ratio })
    }

    /// The timesteps the model is called at, in order.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// The sample one step earlier, from the model's noise prediction at `timestep`.
    pub fn step(&self, output: &[f32], timestep: usize, sample: &[f32]) -> Result<Vec<f32>> {
        check_len(sample, output)?;
        let alpha = self.alpha(timestep)?;
        // `set_alpha_to_one = false`: past the first training step, the first alpha.
        let alpha_prev = match timestep.checked_sub(self.step_ratio) {
            Some(p) => self.alpha(p)?,
            None => self.alphas_cumprod[0],
        };
        let (root_beta, root_alpha) = ((1.0 - alpha).sqrt(), alpha.sqrt());
        let (root_prev, root_rest) = (alpha_prev.sqrt(), (1.0 - alpha_prev).sqrt());
        // x0 = (x - √β ε) / √α; x_prev = √α_prev x0 + √(1 - α_prev) ε, in diffusers' order of operations.
        Ok(sample
            .iter()
            .zip(output)
            .map(|(x, e)| root_prev * ((x - root_beta * e) / root_alpha) + root_rest * e)
            .collect())
    }

    fn alpha(&self, t: usize) -> Result<f32> {
        self.alphas_cumprod.get(t).copied().ok_or_else(|| Error::Config {
            message: format!("timestep {t} is past the {} training timesteps", self.alphas_cumprod.len()),
        })
    }
}

/// PNDM's linear multistep method, the scheduler of Stable Diffusion v1's own pipelines. It keeps the last four noise
/// predictions, so one instance serves one generation, called at each of [`Pndm::timesteps`] in order.
#[derive(Debug, Clone)]
pub struct Pndm {
    alphas_cumprod: Vec<f32>,
    timesteps: Vec<usize>,
    step_ratio: usize,
    ets: Vec<Vec<f32>>,
    counter: usize,
    cur_sample: Option<Vec<f32>>,
}

impl Pndm {
    /// The schedule for `steps` inference steps: the DDIM timesteps with the second-to-last repeated (steps + 1 calls),
    /// as diffusers' `set_timesteps` gives them with `skip_prk_steps`.
    pub fn new(config: &ScheduleConfig, steps: usize) -> Result<Pndm> {
        config.validate(steps)?;
        let step_ratio = config.train_timesteps / steps;
        let base: Vec<usize> = (0..steps).map(|i| i * step_ratio + config.steps_offset).collect();
        let mut plms: Vec<usize> = base[..steps - 1].to_vec();
        if steps >= 2 {
            plms.push(base[steps - 2]);
        }
        plms.push(base[steps - 1]);
        plms.reverse();
        Ok(Pndm {
            alphas_cumprod: config.alphas_cumprod(),
            timesteps: plms,
            step_ratio,
            ets: Vec::new(),
            counter: 0,
            cur_sample: None,
        })
    }

    /// The timesteps the model is called at, in order.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// One PLMS step: the sample one step earlier, from the model's noise prediction at `timestep`.
    pub fn step(&mut self, output: &[f32], timestep: usize, sample: &[f32]) -> Result<Vec<f32>> {
        check_len(sample, output)?;
        let (mut timestep, mut prev) = (timestep as i64, timestep as i64 - self.step_ratio as i64);
        if self.counter != 1 {
            if self.ets.len() > 3 {
                self.ets.remove(0);
            }
            self.ets.push(output.to_vec());
        } else {
            prev = timestep;
            timestep += self.step_ratio as i64;
        }
        let e = &self.ets;
        let n = e.len();
        // Σ_j w_j ε_{n-1-j}, then divided (or multiplied) as diffusers writes each formula.
        let weighted = |weights: &[f32], finish: &dyn Fn(f32) -> f32| -> Vec<f32> {
            (0..output.len())
                .map(|k| finish(weights.iter().enumerate().map(|(j, w)| w * e[n - 1 - j][k]).sum::<f32>()))
                .collect()
        };
        let mut sample = sample.to_vec();
        let output: Vec<f32> = match (n, self.counter) {
            (1, 0) => {
                self.cur_sample = Some(sample.clone());
                output.to_vec()
            }
            (1, 1) => {
                sample = self.cur_sample.take().unwrap_or(sample);
                output.iter().zip(&e[0]).map(|(o, p)| (o + p) / 2.0).collect()
            }
            (2, _) => weighted(&[3.0, -1.0], &|v| v / 2.0),
            (3, _) => weighted(&[23.0, -16.0, 5.0], &|v| v / 12.0),
            _ => weighted(&[55.0, -59.0, 37.0, -9.0], &|v| (1.0 / 24.0) * v),
        };
        let prev_sample = self.prev_sample(&sample, timestep, prev, &output)?;
        self.counter += 1;
        Ok(prev_sample)
    }

    /// Formula (9) of the PNDM paper: `x_prev = √(α_prev/α) x - (α_prev - α) ε / (α √(1-α_prev) + √(α (1-α) α_prev))`.
    fn prev_sample(&self, sample: &[f32], t: i64, prev: i64, output: &[f32]) -> Result<Vec<f32>> {
        let at = |t: i64| {
            usize::try_from(t).ok().and_then(|t| self.alphas_cumprod.get(t).copied()).ok_or_else(|| Error::Config {
                message: format!("timestep {t} is outside the {} training timesteps", self.alphas_cumprod.len()),
            })
        };
        let alpha = at(t)?;
        let alpha_prev = if prev >= 0 { at(prev)? } else { self.alphas_cumprod[0] };
        let (beta, beta_prev) = (1.0 - alpha, 1.0 - alpha_prev);
        let sample_coeff = (alpha_prev / alpha).sqrt();
        let denom = alpha * beta_prev.sqrt() + (alpha * beta * alpha_prev).sqrt();
        let gap = alpha_prev - alpha;
        Ok(sample.iter().zip(output).map(|(x, e)| sample_coeff * x - gap * e / denom).collect())
    }
}

/// Either scheduler, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// [`Ddim`] (the paper's: 50 steps).
    Ddim,
    /// [`Pndm`].
    Pndm,
}

/// A scheduler of either kind, stepping the same way.
#[derive(Debug, Clone)]
pub enum Scheduler {
    /// DDIM.
    Ddim(Ddim),
    /// PNDM.
    Pndm(Pndm),
}

impl Scheduler {
    /// A fresh scheduler of `kind` for `steps` inference steps.
    pub fn new(kind: SchedulerKind, config: &ScheduleConfig, steps: usize) -> Result<Scheduler> {
        Ok(match kind {
            SchedulerKind::Ddim => Scheduler::Ddim(Ddim::new(config, steps)?),
            SchedulerKind::Pndm => Scheduler::Pndm(Pndm::new(config, steps)?),
        })
    }

    /// The timesteps the model is called at, in order.
    pub fn timesteps(&self) -> Vec<usize> {
        match self {
            Scheduler::Ddim(s) => s.timesteps().to_vec(),
            Scheduler::Pndm(s) => s.timesteps().to_vec(),
        }
    }

    /// One step.
    pub fn step(&mut self, output: &[f32], timestep: usize, sample: &[f32]) -> Result<Vec<f32>> {
        match self {
            Scheduler::Ddim(s) => s.step(output, timestep, sample),
            Scheduler::Pndm(s) => s.step(output, timestep, sample),
        }
    }
}
