"""The paper's per-class SVM protocol in scikit-learn, timed, on data it also hands to fd-cli (run by `cargo xtask bench svm`).

Usage: python svm_reference.py --n 1000 --out DATA.safetensors [--classes 10 --dim 512 --seed 0 --reps 3]

Data (as ../shared/reference/svm_bench.py describes it): per class a CLIP-like centre and a planted unit direction;
rows are the centre plus anisotropic Gaussian noise, 20% labelled incorrect, half of those shifted along the planted
direction; rows L2-normalised; a separate train split gives the standardisation statistics.
Protocol: standardise with the train split's mean and unbiased std, L2-normalise; per class, for C in logspace(-6, 0, 7),
SVC(kernel='linear', class_weight='balanced'), mean 2-fold cross_val_score on balanced accuracy, refit, keep if strictly
better. Single process, as the paper runs it. Prints one JSON line: median seconds, per-class chosen C and CV score, peak RSS.
"""
import argparse
import json
import resource
import statistics
import time

import numpy as np
from safetensors.numpy import save_file
from sklearn.metrics import balanced_accuracy_score, make_scorer
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC


def make_data(classes, n, dim, n_train, seed, frac=0.2, delta=4.0, explained=0.5):
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    common /= np.linalg.norm(common)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    s = np.arange(1, dim + 1, dtype=np.float64) ** -0.5
    s /= np.sqrt((s ** 2).sum())
    mix = s[:, None] * q.T
    xs, ys, gts, trains = [], [], [], []
    for c in range(classes):
        centre = 2.0 * common + rng.normal(size=dim) / np.sqrt(dim)
        centre /= np.linalg.norm(centre)
        u = rng.normal(size=dim)
        u /= np.linalg.norm(u)

        def sample(m):
            x = centre[None, :] + rng.normal(size=(m, dim)) @ mix
            gt = np.ones(m, dtype=np.int64)
            idx = rng.permutation(m)[: int(round(frac * m))]
            gt[idx] = 0
            x[idx[: int(round(explained * len(idx)))]] -= delta / np.sqrt(dim) * u[None, :]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            return x.astype(np.float32), gt

        x, gt = sample(n)
        t, _ = sample(n_train // classes)
        xs.append(x); gts.append(gt); ys.append(np.full(n, c)); trains.append(t)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gts), np.concatenate(trains)


def protocol(z, y, gt, classes):
    out = []
    for c in range(classes):
        m = y == c
        best, best_c = -1.0, None
        for C in np.logspace(-6, 0, 7):
            clf = SVC(kernel="linear", C=C, class_weight="balanced")
            score = float(np.mean(cross_val_score(clf, z[m], gt[m], cv=2, scoring=make_scorer(balanced_accuracy_score))))
            clf.fit(z[m], gt[m])
            if score > best:
                best, best_c = score, float(C)
        out.append({"class": c, "c": best_c, "cv": best})
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    x, y, gt, train = make_data(a.classes, a.n, a.dim, 10_000, a.seed)
    save_file({"x": x, "labels": y.astype(np.int32), "correct": gt.astype(np.uint8), "train": train}, a.out)
    mean = train.mean(0)
    std = (train - mean).std(0, ddof=1)
    z = (x - mean) / std
    z = (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)
    times, result = [], None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        result = protocol(z, y, gt, a.classes)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(times), "runs": times, "classes": result,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
