"""Do the jackknife standard errors match the spread of the estimates over independent fingerprint sets?

A small, seeded version of ``benchmarks/coverage_errors.py`` on its synthetic ensemble only: K = 20
disjoint sets of N = 100 dSprites images (factors only, nothing rendered), two synthetic "models" of six
channels that are fixed functions of each image's factors (two strong at logvar -5, about 3.1-3.3 bits;
four weak at logvar -1 or 0, 0.1-0.2 bits), G = 10 jackknife groups per set.

For each value (channel or pair): ratio = sd of its K estimates / mean of its K reported SEs, and whether
value +- 1.96 SE covers its mean over the K sets. Exact errors from G = 10 groups (about 9 degrees of
freedom) would cover about 92% (Student's t), a little more against a mean over 20 sets.

Measured at this seed: I(U) median ratio 0.90, coverage 95.0%; NMI 0.79, 96.0%; VI 0.90, 95.4%. Over
seeds 0-29 of this same check: I(U) 0.76-1.08 and 89-98%; NMI 0.70-0.83 and 94.5-98%; VI 0.68-1.13 and
92-97%.
"""

from __future__ import annotations

import numpy as np

from repspace.data import load_dataset
from repspace.kernels import BlockOptions, PosteriorRows, jackknife_groups, pairwise_information

# (factor, gain, logvar): mu = sign * gain * m * z(factor), z the factor's class scaled to [-1, 1]
# (orientation: the cosine of its angle), sign and m ~ U(0.8, 1.2) drawn per model and channel
CHANNELS = (("posX", 2.0, -5.0), ("posY", 2.0, -5.0),
            ("posX", 1.0, 0.0), ("scale", 0.5, -1.0), ("orientation", 1.1, 0.0), ("shape", 0.8, 0.0))


def synthetic_posteriors(factors, names, sizes, sign, gain):
    """mu, logvar float32 (unit, image): every model's CHANNELS, models one after the other."""
    f = np.asarray(factors, np.float64)
    z = {name: f[:, k] / (size - 1) * 2.0 - 1.0 for k, (name, size) in enumerate(zip(names, sizes))}
    k = names.index("orientation")
    z["orientation"] = np.cos(2.0 * np.pi * f[:, k] / (sizes[k] - 1))
    mu = [sign[m, c] * gain[m, c] * g * z[factor] for m in range(len(sign)) for c, (factor, g, _) in enumerate(CHANNELS)]
    logvar = [np.full(len(f), lv) for _ in range(len(sign)) for _, _, lv in CHANNELS]
    return np.asarray(mu, np.float32), np.asarray(logvar, np.float32)


def spread_and_coverage(values, errors):
    """values, errors (set, value): median over values of sd / mean SE, and the fraction of intervals
    value +- 1.96 SE that cover the value's mean over the sets."""
    ratio = np.std(values, axis=0, ddof=1) / np.mean(errors, axis=0)
    covered = np.abs(values - values.mean(axis=0)) <= 1.96 * errors
    return float(np.median(ratio)), float(covered.mean())


def test_jackknife_errors_cover_the_spread_over_disjoint_fingerprint_sets():
    n_images, n_sets, n_groups, n_models = 100, 20, 10, 2
    ds = load_dataset("dsprites_procedural", image_size=32)
    rng = np.random.default_rng(0)
    sets = np.sort(rng.permutation(len(ds))[: n_images * n_sets].reshape(n_sets, n_images), axis=1)
    assert len(np.unique(sets)) == sets.size  # disjoint
    sign = rng.choice([-1.0, 1.0], size=(n_models, len(CHANNELS)))
    gain = rng.uniform(0.8, 1.2, size=(n_models, len(CHANNELS)))
    pairs = np.triu_indices(n_models * len(CHANNELS), 1)
    got = {name: [] for name in ("information", "information_se", "nmi", "nmi_se", "vi", "vi_se")}
    for rows in sets:
        mu, logvar = synthetic_posteriors(ds.factors(rows), ds.factor_names, ds.factor_sizes, sign, gain)
        result = pairwise_information(PosteriorRows(mu, logvar), groups=jackknife_groups(n_images, n_groups, seed=rng),
                                      options=BlockOptions(threads=1))
        nmi, vi, nmi_se, vi_se = result.nmi_vi_se()
        for name, value in (("information", result.information_a), ("information_se", result.information_se_a),
                            ("nmi", nmi[pairs]), ("nmi_se", nmi_se[pairs]), ("vi", vi[pairs]), ("vi_se", vi_se[pairs])):
            got[name].append(value)
    got = {name: np.asarray(v) for name, v in got.items()}
    mean_information = got["information"].mean(axis=0)
    strong = [0, 1, 6, 7]
    weak = np.delete(mean_information, strong)
    assert np.all(mean_information[strong] > 3.0)
    assert np.all((weak > 0.05) & (weak < 0.3)), weak
    assert all(np.all(np.isfinite(v)) for v in got.values())

    ratio, cover = spread_and_coverage(got["information"], got["information_se"])
    assert 0.7 <= ratio <= 1.4, ratio  # 0.90 here
    assert cover >= 0.85, cover  # 95.0% here

    # NMI: the jackknife is conservative, it overstates the spread by about a quarter (median ratio 0.79 at this
    # seed, 0.70-0.83 over seeds 0-29, never above 0.83; 0.75 in an earlier check on five channels), and its
    # intervals cover more than 95% (96.0% here). Asserted as found: coverage, and a ratio in [0.7, 1.0].
    ratio, cover = spread_and_coverage(got["nmi"], got["nmi_se"])
    assert 0.7 <= ratio <= 1.0, ratio
    assert cover >= 0.85, cover

    ratio, cover = spread_and_coverage(got["vi"], got["vi_se"])
    assert 0.7 <= ratio <= 1.4, ratio  # 0.90 here
    assert cover >= 0.85, cover  # 95.4% here
