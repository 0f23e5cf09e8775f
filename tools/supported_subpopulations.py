"""The repeated interventions' hard-caption accuracy restricted to the classes whose hardest caption is a significant failure.

Usage: python tools/supported_subpopulations.py RUN_DIR [--k K]

`summary.json`'s hard-caption accuracy averages every captioned class's subpopulation (the K test images nearest its
hardest caption), including classes whose hardest caption the caption stage's own check did not support (the
subpopulation not significantly less accurate than the class, p > alpha). This script reads the run's `captions.json`,
keeps the classes whose hardest caption is supported, and gives, for each retraining mode and rule under every seed
found in `retrain/`, the accuracy on those classes' subpopulations: mean, sd, and the mean paired difference against
random under the same seed with its 95% percentile bootstrap interval (10,000 resamples), as the report does.
Needs numpy and safetensors (the reference venv). Reads only; writes nothing.
"""
import argparse
import json
import os
import re

import numpy as np
from safetensors.numpy import load_file


def correct_by_index(path):
    t = load_file(path)
    return dict(zip(t["indices"].tolist(), t["correct"].tolist()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--resamples", type=int, default=10_000)
    args = ap.parse_args()
    captions = json.load(open(os.path.join(args.run, "captions.json")))
    kept = []
    for c in captions["classes"]:
        found = c["outcome"].get("captions")
        if not found or not found.get("negative"):
            continue
        if found["negative"][0]["check"]["supported"]:
            kept.append((c["name"], found["hard_subpopulation"]))
    if not kept:
        raise SystemExit(f"{args.run}/captions.json: no class's hardest caption is supported; nothing to measure")
    images = [i for _, sub in kept for i in sub]
    print(f"classes whose hardest caption is supported: {', '.join(n for n, _ in kept)} ({len(images)} test images)")

    def accuracy(path):
        m = correct_by_index(path)
        return float(np.mean([m[i] for i in images]))

    print(f"before any intervention: {accuracy(os.path.join(args.run, 'eval_test.safetensors')):.4f}")
    pattern = re.compile(r"^(?P<rule>[a-z]+)-k(?P<k>\d+)-s(?P<seed>\d+)(?P<last>-last)?$")
    runs = {}
    for name in sorted(os.listdir(os.path.join(args.run, "retrain"))):
        m = pattern.match(name)
        path = os.path.join(args.run, "retrain", name, "eval_test.safetensors")
        if not m or not os.path.exists(path):
            continue
        mode = "last-layer" if m["last"] else "scratch"
        runs.setdefault((mode, m["rule"], int(m["k"])), {})[int(m["seed"])] = accuracy(path)
    rng = np.random.default_rng(0)
    print("| retraining | rule | K | seeds | accuracy | vs random |")
    print("|---|---|---|---|---|---|")
    for (mode, rule, k), by_seed in sorted(runs.items()):
        v = np.array(list(by_seed.values()))
        sd = f"{v.std(ddof=1):.4f}" if len(v) > 1 else "-"
        random = runs.get((mode, "random", k), {})
        paired = [by_seed[s] - random[s] for s in by_seed if s in random]
        versus = "-"
        if rule not in ("none", "random") and len(paired) > 1:
            d = np.array(paired)
            boot = rng.choice(d, (args.resamples, len(d))).mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
            versus = f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"
        print(f"| {mode} | {rule} | {k} | {len(v)} | {v.mean():.4f} ± {sd} | {versus} |")


if __name__ == "__main__":
    main()
