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

TORN = dict(learners="torn", n_points=40, sizes=(2, 4), repeats=2, similarities=("vi", "nmi"), fusion_steps=400)


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
    longer = run(so2_config(tmp_path, fusion_steps=500), client=client)
    assert longer.stage("so2_learners").computed == 0 and longer.stage("so2_fusion").computed == 8
    more = run(so2_config(tmp_path, fusion_steps=500, repeats=3), client=client)
    assert more.stage("so2_learners").computed == 4 and more.stage("so2_fusion").computed == 4  # the new repeat
    with pytest.raises(ValueError, match="holds 12 learners, this run asks for 8"):
        run(so2_config(tmp_path, fusion_steps=500), client=client)  # fewer repeats: refused, nothing written
    kept = xr.open_zarr(config.store, group="so2_fusion", consolidated=False)  # still whole and readable
    assert kept.sizes["repeat"] == 3 and kept.attrs["complete"] is True
    retrained = run(so2_config(tmp_path, fusion_steps=500, repeats=3, learners="trained",
                               learner=CircleVAEOptions(steps=20, batch_size=16, hidden=(4,))).replace(stages=("so2_learners",)),
                    client=client)
    assert retrained.stage("so2_learners").computed == 12
    assert xr.open_zarr(config.store, group="so2_fusion", consolidated=False).attrs["complete"] is False  # stale


def test_trained_learners_in_tasks_equal_a_direct_training(tmp_path, client):
    config = so2_config(tmp_path, learners="trained", sizes=(2,), repeats=1,
                        learner=CircleVAEOptions(steps=60, batch_size=64, hidden=(16, 16)), fusion_steps=50, similarities=("vi",))
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
        with pytest.raises(ValueError, match="fusion_learning_rate must be a positive number"):
            SO2Options(fusion_learning_rate=bad)
    with pytest.raises(ValueError, match="init_std must be 0 or more"):
        SO2Options(init_std=-0.1)


def test_the_job_writes_figures_and_a_report(tmp_path, capsys):
    from repspace.jobs import fusion_so2

    run_dir = tmp_path / "job"
    code = fusion_so2.main(["--run-dir", str(run_dir), "--learners", "torn", "--n-points", "40", "--sizes", "2", "4",
                            "--repeats", "1", "--fusion-steps", "200", "--similarities", "vi", "--workers", "1",
                            "--no-dashboard"])
    assert code == 0
    out = capsys.readouterr().out
    assert "lighter than the paper's settings" in out and "fusion_steps 200 (the paper: 20000)" in out
    for name in ("so2_circles", "so2_continuity"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 10_000, name
    assert "Fusion on the circle" in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_fusing_more_trained_learners_heals_the_circle(tmp_path, client):
    """The job's default learners and fusions, two sizes, two repeats (about 2.5 minutes on 2 cores)."""
    config = so2_config(tmp_path, learners="trained", n_points=100, sizes=(2, 10), repeats=2, similarities=("vi",),
                        fusion_steps=6000)
    run(config, client=client)
    le = xr.open_zarr(config.store, group="so2_learners", consolidated=False).load()
    fu = xr.open_zarr(config.store, group="so2_fusion", consolidated=False).load()
    assert np.median(le.continuity.values) > 20  # a trained 1-D learner tears the circle
    c = fu.continuity.sel(similarity="vi").values  # (size, repeat)
    assert c[1].mean() < 4 and c[0].mean() > 3 * c[1].mean(), c
