"""Coverage of the jackknife standard errors of I(U), NMI and VI over disjoint fingerprint sets.

K disjoint fingerprint sets of N images each are drawn from the procedural dSprites dataset (one
permutation of its rows, cut into K slices, each sorted like a fingerprint set). Two ensembles are
encoded on every set: the trained encoders in ``--models-dir`` (skipped when the folder holds none),
and a synthetic ensemble whose posteriors are fixed functions of each image's dSprites factors (strong
channels at logvar -5, weak ones at logvar -1 or 0 carrying 0.05-0.3 bits, a collapsed one; a few
"models" with random sign and gain per channel). On each set ``pairwise_information`` with G jackknife
groups (seeded per set) gives I(U) per channel and NMI and VI of every pair of channels carrying at
least 0.01 bits (mean over the sets), each with its standard error.

For each value (a channel, or a pair) the spread of its K estimates (sd over sets) is divided by its
mean reported SE; the table gives the median and the 10-90% range of that ratio over the values, and
the fraction of the K x values intervals value +- 1.96 SE that cover the value's mean over the sets
(a stand-in for its expectation at this N; the estimators' bias against N -> infinity is not part of
this check). Channels are "faint" when their mean I(U) lies in [0.01, 0.05) bits, "weak" in [0.05, 0.3)
and "strong" from 0.3 bits; a pair takes the class of its less informative channel.

Two things set what to expect even from exact standard errors: a jackknife SE from G = 10 groups has
about 9 degrees of freedom, so value +- 1.96 SE covers about 92% (Student's t); and the mean over K
sets is itself off by sd / sqrt(K), which raises coverage by about half a point at K = 20.

    python benchmarks/coverage_errors.py [--models-dir data/models/offline] [--n-images 300] [--sets 20]
        [--groups 10] [--synthetic-models 4] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repspace.data import load_dataset
from repspace.kernels import BlockOptions, PosteriorRows, jackknife_groups, pairwise_information

INFORMATIVE_BITS = 0.01
WEAK_BITS = (0.05, 0.3)

# (factor, gain, logvar) of each channel of a synthetic model; mu = sign * gain * m * z(factor), with z the
# factor's class scaled to [-1, 1] (orientation: the cosine of its angle) and m ~ U(0.8, 1.2) per model
SYNTHETIC_CHANNELS: tuple[tuple[str, float, float], ...] = (
    ("posX", 2.0, -5.0), ("posY", 2.0, -5.0), ("scale", 1.5, -5.0),  # strong: 2.5-3.5 bits at N = 300
    ("posX", 1.0, 0.0), ("posY", 0.6, -1.0), ("posY", 0.75, 0.0), ("scale", 0.5, -1.0),  # weak: 0.05-0.3 bits
    ("orientation", 1.1, 0.0), ("shape", 0.8, 0.0),
    (None, 0.0, 0.0),  # collapsed: mu = 0, logvar = 0, no information
)


def disjoint_sets(length: int, n_images: int, n_sets: int, seed: int) -> np.ndarray:
    """Rows of ``n_sets`` disjoint fingerprint sets of ``n_images`` each: int64 (set, image), each row sorted."""
    if n_images * n_sets > length:
        raise ValueError(f"{n_sets} disjoint sets of {n_images} need {n_images * n_sets} images; "
                         f"the dataset has {length}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    return np.sort(rng.permutation(length)[: n_images * n_sets].reshape(n_sets, n_images), axis=1).astype(np.int64)


def scaled_factors(factors: np.ndarray, names: tuple[str, ...], sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Each factor's class (image,) scaled to [-1, 1]; orientation as the cosine of its angle."""
    f = np.asarray(factors, dtype=np.float64)
    z = {name: f[:, k] / (size - 1) * 2.0 - 1.0 for k, (name, size) in enumerate(zip(names, sizes))}
    if "orientation" in z:
        k = names.index("orientation")
        z["orientation"] = np.cos(2.0 * np.pi * f[:, k] / (sizes[k] - 1))
    return z


def synthetic_ensemble(n_models: int, seed: int) -> Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """A synthetic ensemble: returns encode(z) -> (mu, logvar) float32 (model, channel, image), with the models'
    random signs and gains fixed once from ``seed``."""
    rng = np.random.default_rng(seed)
    n_ch = len(SYNTHETIC_CHANNELS)
    sign = rng.choice([-1.0, 1.0], size=(n_models, n_ch))
    gain = rng.uniform(0.8, 1.2, size=(n_models, n_ch))

    def encode(z: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n = len(next(iter(z.values())))
        mu = np.zeros((n_models, n_ch, n))
        logvar = np.zeros((n_models, n_ch, n))
        for c, (factor, g, lv) in enumerate(SYNTHETIC_CHANNELS):
            if factor is not None:
                mu[:, c] = (sign[:, c] * gain[:, c] * g)[:, None] * z[factor][None, :]
            logvar[:, c] = lv
        return mu.astype(np.float32), logvar.astype(np.float32)

    return encode


def trained_ensemble(models_dir: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Encode ``images`` (n, H, W, 1) float32 with every model in ``models_dir``: mu, logvar float32
    (model, channel, image) and the model names."""
    from repspace.models import find_models, load_encoder

    mus, logvars, names = [], [], []
    for entry in find_models(models_dir):
        mu, logvar = load_encoder(entry.path)(images, batch_size=1024)
        mus.append(np.asarray(mu, np.float32).T)
        logvars.append(np.asarray(logvar, np.float32).T)
        names.append(entry.name)
    return np.stack(mus), np.stack(logvars), names


@dataclass
class Estimates:
    """Per set: I(U) (set, unit), NMI and VI (set, unit, unit), each with its jackknife SE."""

    information: np.ndarray
    information_se: np.ndarray
    nmi: np.ndarray
    nmi_se: np.ndarray
    vi: np.ndarray
    vi_se: np.ndarray


def estimate(posteriors: Callable[[int], tuple[np.ndarray, np.ndarray]], n_sets: int, n_groups: int, seed: int,
             threads: int) -> Estimates:
    """Run the kernel with jackknife groups on each set; ``posteriors(k)`` gives set k's mu, logvar (unit, image)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in Estimates.__dataclass_fields__}
    for k in range(n_sets):
        mu, logvar = posteriors(k)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(8, k)))
        groups = jackknife_groups(mu.shape[1], n_groups, seed=rng)
        got = pairwise_information(PosteriorRows(mu, logvar), groups=groups, options=BlockOptions(threads=threads))
        nmi, vi, nmi_se, vi_se = got.nmi_vi_se()
        for name, value in (("information", got.information_a), ("information_se", got.information_se_a),
                            ("nmi", nmi), ("nmi_se", nmi_se), ("vi", vi), ("vi_se", vi_se)):
            out[name].append(np.asarray(value, np.float64))
    return Estimates(**{name: np.stack(v) for name, v in out.items()})


def coverage(values: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values, errors (set, value): the ratio sd over sets / mean SE per value, and whether each interval
    value +- 1.96 SE covers the value's mean over the sets (set, value). Values with any NaN are left out."""
    ok = np.all(np.isfinite(values) & np.isfinite(errors), axis=0)
    values, errors = values[:, ok], errors[:, ok]
    ratio = np.std(values, axis=0, ddof=1) / np.mean(errors, axis=0)
    covered = np.abs(values - values.mean(axis=0)) <= 1.96 * errors
    return ratio, covered


def summarize(ensemble: str, est: Estimates) -> list[tuple]:
    """Rows (ensemble, quantity, class, values, ratio median, p10, p90, coverage, left out) of the table."""
    mean_i = est.information.mean(axis=0)
    keep = np.flatnonzero(mean_i >= INFORMATIVE_BITS)
    ia, ib = np.triu_indices(len(keep), 1)
    a, b = keep[ia], keep[ib]
    weaker = np.minimum(mean_i[a], mean_i[b])
    bounds = {"all": (INFORMATIVE_BITS, np.inf), "faint": (INFORMATIVE_BITS, WEAK_BITS[0]), "weak": WEAK_BITS,
              "strong": (WEAK_BITS[1], np.inf)}
    rows = []
    for quantity in ("I(U)", "NMI", "VI"):
        for cls, (lo, hi) in bounds.items():
            if quantity == "I(U)":
                units = keep[(mean_i[keep] >= lo) & (mean_i[keep] < hi)]
                values, errors = est.information[:, units], est.information_se[:, units]
            else:
                sel = (weaker >= lo) & (weaker < hi)
                v, e = (est.nmi, est.nmi_se) if quantity == "NMI" else (est.vi, est.vi_se)
                values, errors = v[:, a[sel], b[sel]], e[:, a[sel], b[sel]]
            if values.shape[1] == 0:
                continue
            ratio, covered = coverage(values, errors)
            left_out = values.shape[1] - ratio.size
            if ratio.size == 0:
                continue
            p10, p50, p90 = np.percentile(ratio, [10, 50, 90])
            rows.append((ensemble, quantity, cls, ratio.size, p50, p10, p90, covered.mean(), left_out))
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"{'ensemble':<10} {'quantity':<5} {'class':<7} {'values':>6}  {'sd/SE median':>12}  {'10-90%':>11}  "
          f"{'95% cover':>9}  left out")
    for ens, q, cls, n, p50, p10, p90, cov, left in rows:
        print(f"{ens:<10} {q:<5} {cls:<7} {n:>6}  {p50:>12.2f}  {p10:>5.2f}-{p90:<5.2f}  {cov:>8.1%}  "
              f"{left if left else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="data/models/offline", help="trained encoders (<n>/model/tfhub)")
    parser.add_argument("--n-images", type=int, default=300)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--synthetic-models", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()

    ds = load_dataset("dsprites_procedural", image_size=32)
    sets = disjoint_sets(len(ds), args.n_images, args.sets, args.seed)
    factors = ds.factors(sets.ravel()).reshape(args.sets, args.n_images, -1)
    print(f"{args.sets} disjoint sets of {args.n_images} dsprites_procedural images (32 x 32), "
          f"G = {args.groups} jackknife groups, seed {args.seed}")

    rows = []
    encode = synthetic_ensemble(args.synthetic_models, args.seed)
    per_set = [encode(scaled_factors(factors[k], ds.factor_names, ds.factor_sizes)) for k in range(args.sets)]
    t1 = time.perf_counter()
    est = estimate(lambda k: (per_set[k][0].reshape(-1, args.n_images), per_set[k][1].reshape(-1, args.n_images)),
                   args.sets, args.groups, args.seed, args.threads)
    print(f"synthetic: {args.synthetic_models} models x {len(SYNTHETIC_CHANNELS)} channels, "
          f"{int((est.information.mean(0) >= INFORMATIVE_BITS).sum())} informative; kernel {time.perf_counter() - t1:.1f} s")
    rows += summarize("synthetic", est)

    models_dir = Path(args.models_dir)
    if models_dir.is_dir():
        t1 = time.perf_counter()
        images = np.asarray(ds.images(sets.ravel()), dtype=np.float32)
        mu, logvar, names = trained_ensemble(models_dir, images)
        t2 = time.perf_counter()
        n_units = mu.shape[0] * mu.shape[1]
        mu = mu.reshape(n_units, args.sets, args.n_images)
        logvar = logvar.reshape(n_units, args.sets, args.n_images)
        est = estimate(lambda k: (np.ascontiguousarray(mu[:, k]), np.ascontiguousarray(logvar[:, k])),
                       args.sets, args.groups, args.seed, args.threads)
        print(f"trained: {len(names)} models from {models_dir}, {n_units} channels, "
              f"{int((est.information.mean(0) >= INFORMATIVE_BITS).sum())} informative; rendering and encoding "
              f"{t2 - t1:.1f} s, kernel {time.perf_counter() - t2:.1f} s")
        rows += summarize("trained", est)
    else:
        print(f"trained: no folder {models_dir}, skipped (train the offline default's models, or pass --models-dir)")

    print()
    print_table(rows)
    print(f"\nclasses by mean I(U) over the sets: faint [{INFORMATIVE_BITS}, {WEAK_BITS[0]}), weak [{WEAK_BITS[0]}, "
          f"{WEAK_BITS[1]}), strong from {WEAK_BITS[1]} bits; pairs among channels from {INFORMATIVE_BITS} bits, "
          "classed by their less informative channel")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
