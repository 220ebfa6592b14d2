"""The whole-latent-space job: against the core's mc_compare, against spaces sharing known
information (by quadrature), the groups' combined errors, resumability and store checks."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from repspace import kernels, store
from repspace.data import sample_indices
from repspace.models import ModelEntry
from repspace.pipeline import LatentsOptions, ModelsConfig, RunConfig, run
from repspace.pipeline.checks import ConfigurationRefused
from repspace.pipeline.stages.encode import DATASET_IMAGES_STREAM
from repspace.pipeline.stages.latents import group_models, model_seed, pair_seed, twice_seed
from repspace.store.latents import TERMS

from . import reference as ref


def write_latent_embeddings(path, mu, logvar, models, *, block=65536):
    """Whole latent spaces given as (model, image, latent), into ``dataset_embeddings``."""
    return store.write_posteriors(path, np.asarray(mu).transpose(0, 2, 1), np.asarray(logvar).transpose(0, 2, 1),
                                  models, group="dataset_embeddings", images_per_chunk=block)


def run_latents(path, client, *, seed=0, **latents):
    """The latents stage on the store at ``path``: (its report, the ``latents`` group)."""
    config = RunConfig(run_dir=str(path.parent), store_path=str(path), seed=seed, stages=("latents",), latents=latents,
                       dashboard=False)
    report = run(config, client=client).stage("latents")
    return report, xr.open_zarr(path, group="latents", consolidated=False)


def mixture_information_2d(mu, var, grid_points: int = 801) -> float:
    """I(U;X) in bits for a 2-D space of M diagonal-Gaussian posteriors, by quadrature on a grid.

    I = h(mixture) - mean_i h(N(mu_i, diag var_i)); the mixture density on the grid is
    (1/M) sum_i N(x; mu_i0, var_i0) N(y; mu_i1, var_i1).
    """
    mu, var = np.asarray(mu, np.float64), np.asarray(var, np.float64)
    sd = np.sqrt(var)
    axes, dens = [], []
    for k in range(2):
        t = np.linspace((mu[:, k] - 10 * sd[:, k]).min(), (mu[:, k] + 10 * sd[:, k]).max(), grid_points)
        axes.append(t[1] - t[0])
        dens.append(np.exp(-0.5 * ((t[None, :] - mu[:, k, None]) / sd[:, k, None]) ** 2) / (sd[:, k, None] * math.sqrt(2 * math.pi)))
    density = dens[0].T @ dens[1] / mu.shape[0]
    p = density[density > 0]
    h_mix = -np.sum(p * np.log2(p)) * axes[0] * axes[1]
    h_post = np.mean(np.sum(0.5 * np.log2(2 * math.pi * math.e * var), axis=1))
    return float(h_mix - h_post)


def known_comparison(mu_u, var_u, mu_v, var_v) -> tuple[float, float]:
    """NMI and VI of two 1-D spaces from quadrature values of the five informations."""
    iu, iv = ref.mixture_information_1d(mu_u, var_u, 20_001), ref.mixture_information_1d(mu_v, var_v, 20_001)
    suu = mixture_information_2d(np.c_[mu_u, mu_u], np.c_[var_u, var_u])
    svv = mixture_information_2d(np.c_[mu_v, mu_v], np.c_[var_v, var_v])
    juv = mixture_information_2d(np.c_[mu_u, mu_v], np.c_[var_u, var_v])
    nmi = (iu + iv - juv) / math.sqrt((2 * iu - suu) * (2 * iv - svv))
    return nmi, 2 * juv - suu - svv


def entries(n: int, *, family: str = "beta_vae", value: float = 1.0, dataset: str = "toy", start: int = 0):
    return [
        ModelEntry(name=f"{family}-{value:g}-{i}", path="", dataset=dataset, family=family, hyperparameter="beta",
                   hyperparameter_value=value, seed=i)
        for i in range(start, start + n)
    ]


def grid_spaces(m_a: int = 20, m_b: int = 10, seed: int = 0):
    """Images on an m_a x m_b grid of two independent factors; 1-D spaces: U reads factor a,
    a copy of U, W reads factor b (independent of U), N = U's means plus fixed noise."""
    rng = np.random.default_rng(seed)
    a, b = np.meshgrid(np.arange(m_a), np.arange(m_b), indexing="ij")
    a, b = a.ravel(), b.ravel()
    mu_u = 0.5 * a
    mu_w = 0.6 * b
    mu_n = mu_u + rng.normal(scale=0.4, size=mu_u.size)
    var = {"u": np.full(a.size, 0.09), "w": np.full(a.size, 0.12), "n": np.full(a.size, 0.16)}
    mu = np.stack([mu_u, mu_u, mu_w, mu_n])[:, :, None]
    logvar = np.log(np.stack([var["u"], var["u"], var["w"], var["n"]]))[:, :, None]
    return mu.astype(np.float32), logvar.astype(np.float32)


@pytest.fixture(scope="module")
def client(threads_client):
    return threads_client


# --- no cluster ---------------------------------------------------------------------------------


def test_image_subset_is_seeded_sorted_and_distinct():
    def select_images(n_total, n, seed):
        return sample_indices(n_total, n, seed, stream=DATASET_IMAGES_STREAM)

    a = select_images(1000, 100, 3)
    assert a.size == 100 and np.unique(a).size == 100 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, select_images(1000, 100, 3))
    assert not np.array_equal(a, select_images(1000, 100, 4))
    assert not np.array_equal(a, sample_indices(1000, 100, 3))  # not the fingerprint set of the same seed
    np.testing.assert_array_equal(select_images(5, None, 0), np.arange(5))
    with pytest.raises(ValueError, match="larger than"):
        select_images(5, 6, 0)


def test_seeds_depend_on_names_not_positions():
    assert pair_seed(0, "a", "b").generate_state(2).tolist() == pair_seed(0, "a", "b").generate_state(2).tolist()
    assert pair_seed(0, "a", "b").generate_state(2).tolist() != pair_seed(0, "b", "a").generate_state(2).tolist()
    assert pair_seed(0, "a", "b").generate_state(2).tolist() != pair_seed(1, "a", "b").generate_state(2).tolist()
    assert model_seed(0, "a").generate_state(2).tolist() != pair_seed(0, "a", "a").generate_state(2).tolist()


def test_config_validation():
    with pytest.raises(ValueError, match="n_samples"):
        LatentsOptions(n_samples=1)
    with pytest.raises(ValueError, match="dtype"):
        LatentsOptions(dtype="float16")
    with pytest.raises(ValueError, match="image_block"):
        LatentsOptions(image_block=0)
    with pytest.raises(ValueError, match="n_samples must be int"):
        LatentsOptions(n_samples="100")
    assert ModelsConfig(numbers=["1", 2]).numbers == ("1", "2")


def test_groups_share_dataset_family_and_value(tmp_path):
    models = entries(2, value=1.0) + entries(2, value=4.0) + entries(1, family="factor_vae", value=1.0)
    models += entries(1, value=1.0, start=5)
    mu = np.zeros((len(models), 4, 2), np.float32)
    lay = write_latent_embeddings(tmp_path / "s.zarr", mu, mu, models)
    valid = np.ones(len(models), bool)
    valid[1] = False
    groups = group_models(lay.models, valid)
    assert [g for _, g in groups] == [[0, 5], [2, 3], [4]]
    assert groups[1][0] == ("toy", "beta_vae", "beta", 4.0)


def test_precomputed_embeddings_are_checked(tmp_path):
    mu = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match="models for"):
        write_latent_embeddings(tmp_path / "a.zarr", mu, mu, ["m0"])
    bad = mu.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        write_latent_embeddings(tmp_path / "a.zarr", bad, mu, ["m0", "m1"])
    write_latent_embeddings(tmp_path / "b.zarr", mu, mu, ["m0", "m1"])
    with pytest.raises(store.StoreError, match="other images"):
        write_latent_embeddings(tmp_path / "b.zarr", np.zeros((1, 5, 3), np.float32), np.zeros((1, 5, 3), np.float32), ["m2"])


def test_compute_path_does_not_import_matplotlib():
    code = ("import sys, repspace.pipeline, repspace.pipeline.stages.latents, repspace.jobs.compare_latents; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shared_term_errors_cover_the_spread_of_seeded_repeats():
    """Eight spaces share each model's two terms among seven pairs: the group's combined error must
    match the spread of 20 repeats with other seeds, where errors that took the pairs for
    independent fall short."""
    rng = np.random.default_rng(0)
    m, n, samples = 100, 8, 300
    x = rng.uniform(-1, 1, size=(m, 2))
    spaces = [(x @ rng.normal(size=(2, 2)) + rng.normal(0, 0.1, (m, 2)), -2.5 + rng.normal(0, 0.2, (m, 2)))
              for _ in range(n)]
    twice = [(np.concatenate([a, a], 1), np.concatenate([b, b], 1)) for a, b in spaces]
    iu = np.triu_indices(n, 1)
    repeats = []
    for seed in range(20):
        def estimate(space, *key):
            return kernels.mc_information(*space, n_samples=samples,
                                          rng=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)))

        own = [estimate(s, 1, k) for k, s in enumerate(spaces)]
        two = [estimate(s, 2, k) for k, s in enumerate(twice)]
        joint, joint_se = np.full((n, n), np.nan), np.full((n, n), np.nan)
        for i, j in zip(*iu):
            e = estimate((np.concatenate([spaces[i][0], spaces[j][0]], 1),
                          np.concatenate([spaces[i][1], spaces[j][1]], 1)), 3, int(i), int(j))
            joint[i, j], joint_se[i, j] = e.bits, e.se
        g = kernels.combine_shared([e.bits for e in own], [e.se for e in own], [e.bits for e in two],
                                   [e.se for e in two], joint, joint_se)
        assert g.n_pairs == n * (n - 1) // 2
        naive = [kernels.inverse_variance_mean(getattr(g, q)[iu], getattr(g, f"{q}_se")[iu])[1] for q in ("nmi", "vi")]
        repeats.append((g.nmi_mean, g.nmi_mean_se, naive[0], g.vi_mean, g.vi_mean_se, naive[1]))
    r = np.array(repeats)
    for mean, se, naive in ((r[:, 0], r[:, 1], r[:, 2]), (r[:, 3], r[:, 4], r[:, 5])):
        spread, typical = mean.std(ddof=1), math.sqrt((se**2).mean())
        assert 0.6 < spread / typical < 1.35, (spread, typical)  # 20 repeats: the spread itself is known to ~16%
        assert (np.abs(mean - mean.mean()) < 2 * se).mean() >= 0.85  # coverage of about two standard errors
    vi_spread, vi_naive = r[:, 3].std(ddof=1), math.sqrt((r[:, 5] ** 2).mean())
    assert vi_spread / vi_naive > 1.3  # taking the pairs for independent would understate the error


# --- the job on a cluster -------------------------------------------------------------------------


@pytest.mark.distributed
def test_pairs_equal_mc_compare_called_directly(client, tmp_path):
    rng = np.random.default_rng(1)
    m = 300
    mu = rng.normal(size=(3, m, 3)).astype(np.float32)
    mu[1] = mu[0] + 0.3 * rng.normal(size=(m, 3))
    logvar = rng.normal(loc=-1.5, scale=0.3, size=(3, m, 3)).astype(np.float32)
    models = entries(3)
    write_latent_embeddings(tmp_path / "s.zarr", mu, logvar, models)
    options = kernels.MCOptions(sample_block=512, image_block=128)
    rep, ds = run_latents(tmp_path / "s.zarr", client, n_samples=1500, seed=7, sample_block=512, image_block=128,
                          scheme="pairs")
    assert (ds.attrs["n_models"], ds.attrs["n_images"], ds.sizes["group"], rep.computed) == (3, m, 1, 3 + 3 * 5)
    assert ds.attrs["complete"] is True and ds["vi"].attrs["units"] == "bits" and ds["information"].attrs["units"] == "bits"
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = models[i].name, models[j].name
            direct = kernels.mc_compare(mu[i], logvar[i], mu[j], logvar[j], n_samples=1500, seed=pair_seed(7, a, b),
                                        options=options)
            job = ds.sel(model_a=a, model_b=b)
            for name in ("nmi", "nmi_se", "vi", "vi_se"):
                np.testing.assert_allclose(float(job[name]), getattr(direct, name), rtol=1e-12)
                np.testing.assert_allclose(float(ds[name].sel(model_a=b, model_b=a)), getattr(direct, name), rtol=1e-12)
            five = (direct.information_a, direct.information_b, direct.information_twice_a, direct.information_twice_b, direct.joint_information)
            np.testing.assert_allclose(job["estimate"].sel(term=list(TERMS)).values, [e.bits for e in five], rtol=1e-12)
            np.testing.assert_allclose(job["estimate_se"].values, [e.se for e in five], rtol=1e-12)
        direct = kernels.mc_information(mu[i], logvar[i], n_samples=1500, rng=np.random.default_rng(model_seed(7, models[i].name)),
                                        options=options)
        np.testing.assert_allclose([float(ds["information"][i]), float(ds.information_se[i])], [direct.bits, direct.se], rtol=1e-12)
        np.testing.assert_allclose(float(ds.information_fraction[i]), direct.bits / math.log2(m), rtol=1e-12)
    assert np.isnan(ds.nmi.values.diagonal()).all()


@pytest.mark.distributed
def test_known_information_within_three_standard_errors(client, tmp_path):
    mu, logvar = grid_spaces()
    names = ["u", "copy", "independent", "noisy"]
    models = [ModelEntry(name=n, path="", dataset="grid", family="f", hyperparameter="h", hyperparameter_value=1.0)
              for n in names]
    write_latent_embeddings(tmp_path / "s.zarr", mu, logvar, models)
    _, ds = run_latents(tmp_path / "s.zarr", client, n_samples=4000, seed=3)
    ds = ds.load()
    var = np.exp(logvar[:, :, 0].astype(np.float64))
    mus = mu[:, :, 0].astype(np.float64)
    for i, name in enumerate(names):
        truth = ref.mixture_information_1d(mus[i], var[i], 20_001)
        assert abs(float(ds["information"][i]) - truth) < 3 * float(ds.information_se[i])
    for j, exact in ((1, (1.0, 0.0)), (2, (0.0, None)), (3, (None, None))):
        nmi_true, vi_true = known_comparison(mus[0], var[0], mus[j], var[j])
        if exact[0] is not None:  # the quadrature agrees with the exact values
            assert nmi_true == pytest.approx(exact[0], abs=2e-3)
        if exact[1] is not None:
            assert vi_true == pytest.approx(exact[1], abs=2e-3)
        pair = ds.sel(model_a="u", model_b=names[j])
        assert float(pair.nmi_se) > 0 and float(pair.vi_se) > 0
        assert abs(float(pair.nmi) - nmi_true) < 3 * float(pair.nmi_se), (names[j], float(pair.nmi), nmi_true)
        assert abs(float(pair.vi) - vi_true) < 3 * float(pair.vi_se), (names[j], float(pair.vi), vi_true)
    assert 0.2 < float(ds.nmi.sel(model_a="u", model_b="noisy")) < 0.9  # a noisy copy is in between


@pytest.mark.distributed
def test_group_means_are_inverse_variance_weighted_and_tighter(client, tmp_path):
    rng = np.random.default_rng(2)
    m = 250
    base = rng.normal(size=(m, 2))
    mu = np.stack([base + 0.3 * rng.normal(size=(m, 2)) for _ in range(4)] + [rng.normal(size=(m, 2))])
    logvar = np.full(mu.shape, -1.0)
    models = entries(4) + entries(1, value=2.0)
    write_latent_embeddings(tmp_path / "s.zarr", mu, logvar, models)
    ds = run_latents(tmp_path / "s.zarr", client, n_samples=1000, scheme="pairs")[1].load()
    assert ds.n_models.values.tolist() == [4, 1] and ds.n_pairs.values.tolist() == [6, 0]
    iu = np.triu_indices(4, 1)
    for q in ("nmi", "vi"):
        vals, errs = ds[q].values[:4, :4][iu], ds[f"{q}_se"].values[:4, :4][iu]
        mean, se = kernels.inverse_variance_mean(vals, errs)
        assert float(ds[f"{q}_mean"][0]) == pytest.approx(mean, rel=1e-12)
        assert float(ds[f"{q}_mean_se"][0]) == pytest.approx(se, rel=1e-12)
        assert se < errs.min()
        assert vals.min() <= mean <= vals.max()
        assert np.isnan(float(ds[f"{q}_mean"][1]))  # one model: no pair
    mean, se = kernels.inverse_variance_mean(ds.information_fraction.values[:4], ds.information_fraction_se.values[:4])
    assert float(ds.information_fraction_mean[0]) == pytest.approx(mean, rel=1e-12) and se < ds.information_fraction_se.values[:4].min()
    assert ds.model_group.values.tolist() == [0, 0, 0, 0, 1]
    assert ds.group_hyperparameter_value.values.tolist() == [1.0, 2.0]
    assert np.isnan(ds.nmi.sel(model_a=models[0].name, model_b=models[4].name))  # across groups: not compared


@pytest.mark.distributed
def test_shared_terms_equal_a_direct_computation_on_the_same_samples(client, tmp_path):
    rng = np.random.default_rng(1)
    m, n = 200, 4
    mu = rng.normal(size=(n, m, 2)).astype(np.float32)
    mu[1] = mu[0] + 0.3 * rng.normal(size=(m, 2))
    logvar = rng.normal(loc=-1.5, scale=0.3, size=(n, m, 2)).astype(np.float32)
    models = entries(n)
    write_latent_embeddings(tmp_path / "s.zarr", mu, logvar, models)
    options = kernels.MCOptions(sample_block=256, image_block=64)
    rep, ds = run_latents(tmp_path / "s.zarr", client, n_samples=800, seed=5, sample_block=256, image_block=64)
    ds = ds.load()
    assert rep.computed == 2 * n + n * (n - 1) // 2  # each model's two terms once, one estimate per pair

    def direct(mu_, lv_, seq):
        return kernels.mc_information(mu_, lv_, n_samples=800, rng=np.random.default_rng(seq), options=options)

    names = [e.name for e in models]
    own = [direct(mu[i], logvar[i], model_seed(5, names[i])) for i in range(n)]
    twice = [direct(np.concatenate([mu[i]] * 2, 1), np.concatenate([logvar[i]] * 2, 1), twice_seed(5, names[i]))
             for i in range(n)]
    joint, joint_se = np.full((n, n), np.nan), np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            base = pair_seed(5, names[i], names[j])
            seq = np.random.SeedSequence(base.entropy, spawn_key=base.spawn_key + (4,))  # the joint term's stream
            e = direct(np.concatenate([mu[i], mu[j]], 1), np.concatenate([logvar[i], logvar[j]], 1), seq)
            joint[i, j], joint_se[i, j] = e.bits, e.se
            np.testing.assert_allclose(ds["estimate"].values[i, j, 4], e.bits, rtol=1e-12)
            assert np.isnan(ds["estimate"].values[i, j, :4]).all()  # the pair's own terms are not estimated
    np.testing.assert_allclose(ds["information"].values, [e.bits for e in own], rtol=1e-12)
    np.testing.assert_allclose(ds["information_twice"].values, [e.bits for e in twice], rtol=1e-12)
    np.testing.assert_allclose(ds["information_twice_se"].values, [e.se for e in twice], rtol=1e-12)
    combined = kernels.combine_shared([e.bits for e in own], [e.se for e in own], [e.bits for e in twice],
                                      [e.se for e in twice], joint, joint_se)
    for name in ("nmi", "nmi_se", "vi", "vi_se"):
        np.testing.assert_allclose(ds[name].values, getattr(combined, name), rtol=1e-12)
    for q in ("nmi", "vi"):
        assert float(ds[f"{q}_mean"][0]) == pytest.approx(getattr(combined, f"{q}_mean"), rel=1e-12)
        assert float(ds[f"{q}_mean_se"][0]) == pytest.approx(getattr(combined, f"{q}_mean_se"), rel=1e-12)
    # each pair's NMI and VI are the five-term formulas on the shared estimates
    pair = kernels.propagate_nmi_vi(own[0], own[2], twice[0], twice[2], kernels.MCEstimate(joint[0, 2], joint_se[0, 2]))
    np.testing.assert_allclose([float(ds[k][0, 2]) for k in ("nmi", "nmi_se", "vi", "vi_se")], pair, rtol=1e-12)
    # the other scheme is refused on this store before any work
    with pytest.raises(ConfigurationRefused, match=r"scheme = 'shared' \(this run: 'pairs'\); use a new store"):
        run_latents(tmp_path / "s.zarr", client, n_samples=800, seed=5, sample_block=256, image_block=64,
                    scheme="pairs")


@pytest.mark.distributed
@pytest.mark.parametrize("scheme,first,grown", [("shared", 3 + 3 + 3, 1 + 1 + 3), ("pairs", 3 + 15, 1 + 3 * 5)])
def test_reruns_and_added_models_compute_only_what_is_missing(client, tmp_path, scheme, first, grown):
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(4, 200, 2)).astype(np.float32)
    logvar = np.full_like(mu, -1.0)
    models = entries(4)
    path = tmp_path / "s.zarr"
    write_latent_embeddings(path, mu[:3], logvar[:3], models[:3])
    done, before = run_latents(path, client, n_samples=500, scheme=scheme)
    before = before.load()
    assert done.computed == first
    assert run_latents(path, client, n_samples=500, scheme=scheme)[0].computed == 0
    # a lost estimate is recomputed, and only it, to the same value
    grp = store.open_run(path)["latents"]
    grp["estimate_done"][0, 2, 4] = 0
    again, _ = run_latents(path, client, n_samples=500, scheme=scheme)
    assert (again.computed, again.skipped) == (1, first - 1)
    after = xr.open_zarr(path, group="latents", consolidated=False).load()
    xr.testing.assert_equal(before[["nmi", "vi", "information"]], after[["nmi", "vi", "information"]])
    # a fourth model: its own estimates and its three pairs
    write_latent_embeddings(path, mu[3:], logvar[3:], models[3:])
    more, ds = run_latents(path, client, n_samples=500, scheme=scheme)
    ds = ds.load()
    assert (more.computed, ds.attrs["n_models"]) == (grown, 4)
    np.testing.assert_array_equal(ds.nmi.values[:3, :3], before.nmi.values)
    assert np.isfinite(ds.nmi.values[3, :3]).all()
    # other settings are refused before any work rather than mixed in
    with pytest.raises(ConfigurationRefused, match=r"made with n_samples = 500 \(this run: 600\); use a new store"):
        run_latents(path, client, n_samples=600, scheme=scheme)


@pytest.mark.distributed
def test_incomplete_models_are_left_out(client, tmp_path):
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(3, 100, 2)).astype(np.float32)
    path = tmp_path / "s.zarr"
    lay = write_latent_embeddings(path, mu, np.full_like(mu, -1.0), entries(3), block=40)
    lay.group["encoded"][1, 2] = 0
    with pytest.warns(UserWarning, match="left out"):
        _, ds = run_latents(path, client, n_samples=300)
    ds = ds.load()
    assert ds.attrs["n_models"] == 2 and list(json.loads(ds.attrs["failed_models"])) == [entries(3)[1].name]
    assert ds.model_group.values.tolist() == [0, -1, 0] and np.isnan(ds["information"].values[1])
    assert int(ds.n_pairs[0]) == 1
