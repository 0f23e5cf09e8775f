//! Choosing the burn device from a config value, without panics.
//!
//! burn 0.22 panics (exit code 101) when a CUDA or Vulkan device finds no driver, and `Device::default()` picks a GPU whenever one is compiled in without probing the hardware.
//! So fd-model never calls `Device::default()`: the device is named in the config, a backend that was not compiled in is an error, and a GPU device is probed under `catch_unwind` before use.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The backends fd-model can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// burn's pure-Rust CPU backend, always compiled in.
    Flex,
    /// NVIDIA GPUs through burn-cuda (cargo feature `cuda`).
    Cuda,
    /// Any Vulkan GPU through wgpu (cargo feature `vulkan`).
    Vulkan,
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "flex" | "cpu" => Ok(DeviceKind::Flex),
            "cuda" => Ok(DeviceKind::Cuda),
            "vulkan" => Ok(DeviceKind::Vulkan),
            _ => Err(format!("unknown device {s:?} (expected flex, cuda or vulkan)")),
        }
    }
}

/// The device of `kind`, or an error saying why it cannot be had.
pub fn device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Flex => Ok(Device::flex()),
        DeviceKind::Cuda => cuda(),
        DeviceKind::Vulkan => vulkan(),
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    probe("cuda", || Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(Error::Device {
        name: "cuda".into(),
        reason: "this build has no CUDA backend; rebuild with `--features cuda` (burn-cuda's build script downloads LLVM, so it needs a network)".into(),
    })
}

#[cfg(feature = "vulkan")]
fn vulkan() -> Result<Device> {
    probe("vulkan", || Device::vulkan(Default::default()))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan() -> Result<Device> {
    Err(Error::Device {
        name: "vulkan".into(),
        reason: "this build has no Vulkan backend; rebuild with `--features vulkan`".into(),
    })
}

/// Creates a GPU device and runs one tiny operation on it, turning burn's panic on a missing driver into an error.
///
/// burn reports a missing driver by panicking, on its device thread and then on this one. While the probe runs, a
/// panic hook records those messages instead of printing them (with backtraces) to stderr; the error carries the
/// first, which names the cause. The previous hook is back in place before this returns.
#[cfg(any(feature = "cuda", feature = "vulkan"))]
fn probe(name: &str, make: impl FnOnce() -> Device + std::panic::UnwindSafe) -> Result<Device> {
    use std::sync::Mutex;
    static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    fn text(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        MESSAGES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(text(info.payload()));
    }));
    let result = std::panic::catch_unwind(|| {
        let device = make();
        let x = burn::tensor::Tensor::<1>::ones([1], &device);
        let _ = x.into_data();
        device
    });
    std::panic::set_hook(previous);
    let messages = std::mem::take(&mut *MESSAGES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    result.map_err(|e| Error::Device {
        name: name.into(),
        reason: format!(
            "no usable driver ({}); install the GPU's driver, or set `device = \"flex\"` in [model] to train on the CPU",
            messages.into_iter().next().unwrap_or_else(|| text(&*e))
        ),
    })
}
