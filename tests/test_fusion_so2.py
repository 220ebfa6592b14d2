"""The fusion experiment on the circle as stages: values against fuse() and the learners called
directly; resumption counted; the job's figures and report."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from repspace.data.circle import circle_points, torn_learners
from repspace.fusion import continuity, fuse
from repspace.models.circle_vae import CircleVAEOptions, train_circle_vae
from repspace.pipeline import RunConfig, SO2Options, run
from repspace.pipeline.stages.so2 import learner_seed

pytestmark = pytest.mark.distributed

TORN = dict(learners="torn", n_points=40, sizes=(2, 4), repeats=2, similarities=("vi", "nmi"), fusion={"steps": 400})


def so2_config(tmp_path, **changes) -> RunConfig:
    return RunConfig(run_dir=str(tmp_path / "so2"), dashboard=False, stages=("so2_learners", "so2_fusion"),
                     so2=SO2Options(**{**TORN, **changes}))


def test_the_stages_equal_fuse_and_compute_only_what_changed(tmp_path, client):
    config = so2_config(tmp_path)
    report = run(config, client=client)
    assert report.stage("so2_learners").computed == 8 and report.stage("so2_fusion").computed == 8
    le = xr.open_zarr(config.store, group="so2_learners", consolidated=False).load()
    fu = xr.open_zarr(config.store, group="so2_fusion", consolidated=False).load()
    theta, _ = circle_points(40)
    np.testing.assert_allclose(le.theta.values, theta)
    for k in (0, 5):
        mu, lv = torn_learners(theta, 1, seed=learner_seed(0, k))
        np.testing.assert_array_equal(le.mu.values[k], mu[0, :, 0])
    # repeat 1 of size 4 fuses learners 4..7, seeded by run seed + repeat
    members = slice(4, 8)
    want = fuse(le.mu.values[members], le.logvar.values[members], dim=2, similarity="nmi", steps=400,
                record_every=20, seed=1)
    got = fu.sel(similarity="nmi", size=4, repeat=1)
    np.testing.assert_allclose(got.mu.values, want.mu.values, atol=1e-5)
    assert float(got.continuity) == pytest.approx(continuity(got.mu.values, got.logvar.values), rel=1e-12)
    assert float(got.nmi_mean) == pytest.approx(float(want.nmi.mean()), abs=1e-5)
    assert fu.attrs["complete"] is True and np.isfinite(fu.continuity.values).all()

    again = run(config, client=client)
    assert again.stage("so2_learners").computed == 0 and again.stage("so2_fusion").computed == 0
    longer = run(so2_config(tmp_path, fusion={"steps": 500}), client=client)
    assert longer.stage("so2_learners").computed == 0 and longer.stage("so2_fusion").computed == 8
    more = run(so2_config(tmp_path, fusion={"steps": 500}, repeats=3), client=client)
    assert more.stage("so2_learners").computed == 4 and more.stage("so2_fusion").computed == 4  # the new repeat
    with pytest.raises(ValueError, match="holds 12 learners, this run asks for 8"):
        run(so2_config(tmp_path, fusion={"steps": 500}), client=client)  # fewer repeats: refused, nothing written
    kept = xr.open_zarr(config.store, group="so2_fusion", consolidated=False)  # still whole and readable
    assert kept.sizes["repeat"] == 3 and kept.attrs["complete"] is True
    retrained = run(so2_config(tmp_path, fusion={"steps": 500}, repeats=3, learners="trained",
                               learner=CircleVAEOptions(steps=20, batch_size=16, hidden=(4,))).replace(stages=("so2_learners",)),
                    client=client)
    assert retrained.stage("so2_learners").computed == 12
    assert xr.open_zarr(config.store, group="so2_fusion", consolidated=False).attrs["complete"] is False  # stale


def test_trained_learners_in_tasks_equal_a_direct_training(tmp_path, client):
    config = so2_config(tmp_path, learners="trained", sizes=(2,), repeats=1,
                        learner=CircleVAEOptions(steps=60, batch_size=64, hidden=(16, 16)), fusion={"steps": 50}, similarities=("vi",))
    run(config, client=client)
    le = xr.open_zarr(config.store, group="so2_learners", consolidated=False).load()
    theta, _ = circle_points(40)
    mu, lv, losses = train_circle_vae(theta, CircleVAEOptions(hidden=(16, 16), steps=60, batch_size=64),
                                      seed=learner_seed(0, 1))
    np.testing.assert_allclose(le.mu.values[1], mu, atol=1e-5)
    np.testing.assert_allclose(le.logvar.values[1], lv, atol=1e-5)
    assert float(le.kl[1]) == pytest.approx(losses["kl"], rel=1e-4)
    with pytest.raises(RuntimeError, match="so2_fusion needs 4 learners on 40 points"):
        run(config.replace(stages=("so2_fusion",), so2=SO2Options(**{**TORN, "sizes": (4,), "repeats": 1})),
            client=client)


def test_refusals():
    with pytest.raises(ValueError, match="similarities must be some of"):
        SO2Options(similarities=("cka",))
    with pytest.raises(ValueError, match="learners must be"):
        SO2Options(learners="projections")
    with pytest.raises(ValueError, match="steps must be positive"):
        SO2Options(learner={"steps": 0})
    for bad in (-1.0, float("nan")):  # refused before any learner trains, not after
        with pytest.raises(ValueError, match="learning_rate must be a positive number"):
            SO2Options(fusion={"learning_rate": bad})
    with pytest.raises(ValueError, match="init_std must be 0 or more"):
        SO2Options(fusion={"init_std": -0.1})
    with pytest.raises(ValueError, match="fusion.similarity is not read here"):
        SO2Options(fusion={"similarity": "nmi"})


def test_the_fusion_sub_table_is_fuse_options_without_similarity(tmp_path):
    """[so2.fusion] holds fuse()'s options under fuse()'s names and defaults; errors name the key as written."""
    from repspace.fusion import FuseOptions
    from repspace.pipeline import load_config

    def toml(text):
        path = tmp_path / "so2.toml"
        path.write_text('stages = ["so2_learners", "so2_fusion"]\n[so2]\nlearners = "torn"\n' + text)
        return path

    o = load_config(toml("[so2.fusion]\nsteps = 300\n")).so2
    assert o.fusion == FuseOptions(steps=300)  # every other key at fuse()'s default (the paper's)
    assert load_config(toml("")).so2.fusion == FuseOptions()
    with pytest.raises(ValueError, match=r"\[so2.fusion\]: unknown keys \['similarity'\]"):
        load_config(toml('[so2.fusion]\nsimilarity = "nmi"\n'))
    with pytest.raises(ValueError, match=r"\[so2.fusion\] learning_rate must be a positive number, got -3"):
        load_config(toml("[so2.fusion]\nlearning_rate = -3.0\n"))
    with pytest.raises(ValueError, match=r"\[so2\]: unknown keys \['fusion_steps'\]"):
        load_config(toml("fusion_steps = 300\n"))
    recorded = load_config(toml("[so2.fusion]\nsteps = 300\n")).as_dict()
    assert "similarity" not in recorded["so2"]["fusion"]
    assert RunConfig(**recorded).so2 == o  # what provenance records reads back


def test_a_record_with_flat_fusion_keys_reads_as_the_sub_table():
    """Runs recorded before [so2.fusion] kept its keys flat in [so2]; repair and reruns read them as today's."""
    from repspace.fusion import FuseOptions
    from repspace.pipeline.repair import _upgrade

    old = {"so2": {"n_points": 40, "learners": "torn", "dim": 2, "fusion_steps": 300, "fusion_learning_rate": 2.0,
                   "init_std": 0.1, "dtype": "float64", "learner_steps": 50}}
    so2 = SO2Options(**_upgrade(old)["so2"])
    assert so2.fusion == FuseOptions(steps=300, learning_rate=2.0, init_std=0.1, dtype="float64")
    assert so2.learner.steps == 50 and so2.n_points == 40


def test_the_job_writes_figures_and_a_report(tmp_path, capsys):
    from repspace.jobs import fusion_so2

    run_dir = tmp_path / "job"
    code = fusion_so2.main(["--run-dir", str(run_dir), "--learners", "torn", "--n-points", "40", "--sizes", "2", "4",
                            "--repeats", "1", "--fusion-steps", "200", "--similarities", "vi", "--workers", "1",
                            "--no-dashboard"])
    assert code == 0
    out = capsys.readouterr().out
    assert "lighter than the paper's settings" in out and "fusion.steps 200 (the paper: 20000)" in out
    for name in ("so2_circles", "so2_continuity"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 10_000, name
    assert "Fusion on the circle" in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_fusing_more_trained_learners_heals_the_circle(tmp_path, client):
    """The job's default learners and fusions, two sizes, two repeats (about 2.5 minutes on 2 cores)."""
    config = so2_config(tmp_path, learners="trained", n_points=100, sizes=(2, 10), repeats=2, similarities=("vi",),
                        fusion={"steps": 6000})
    run(config, client=client)
    le = xr.open_zarr(config.store, group="so2_learners", consolidated=False).load()
    fu = xr.open_zarr(config.store, group="so2_fusion", consolidated=False).load()
    assert np.median(le.continuity.values) > 20  # a trained 1-D learner tears the circle
    c = fu.continuity.sel(similarity="vi").values  # (size, repeat)
    assert c[1].mean() < 4 and c[0].mean() > 3 * c[1].mean(), c
