"""One Stable Diffusion v1 UNet step on the CPU with diffusers (PyTorch), on the files
`crates/fd-diffusion/fixtures/make_sd_fixtures.py --full DIR` wrote (the same random weights fd-diffusion loads).

    python bench/diffusion_reference.py --dir DIR --steps 2 --threads 2

The step is the pipeline's: latents [2, 4, 64, 64] (guidance's batch of two, a 512x512 image), timestep 981, a
[2, 77, 768] text context, float32, torch.inference_mode. Prints one JSON object: seconds per step (median of --steps
after one warm-up step), the load time and the process's peak RSS.
"""

import argparse
import json
import resource
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    start = time.perf_counter()
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    unet.load_state_dict({k: v.float() for k, v in load_file(f"{args.dir}/unet_v1_fp16.safetensors").items()})
    load_s = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 64, 64, generator=gen)
    context = torch.randn(2, 77, 768, generator=gen)
    times = []
    with torch.inference_mode():
        for i in range(args.steps + 1):
            t0 = time.perf_counter()
            unet(latents, 981, encoder_hidden_states=context)
            if i > 0:
                times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds_per_step": statistics.median(times), "load_s": load_s, "peak_rss_mib": peak,
                      "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
