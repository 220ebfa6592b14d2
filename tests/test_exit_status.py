"""Every job that runs stages exits with a documented status and ends with one ``status:`` line.

0 everything done; 1 an error, or no usable model; 2 the configuration or flags refused before any work;
3 finished with models left out; 4 a stage wrote nothing it should have.
"""

from __future__ import annotations

import numpy as np
import pytest

from repspace.data import FingerprintConfig, build_fingerprint
from repspace.jobs import compare_latents, compare_measures, full_sweep, fusion_so2
from repspace.models import write_posterior_file

from .test_pipeline import N_IMAGES, synthetic_posteriors

pytestmark = pytest.mark.distributed


def posterior_run(tmp_path, n_models: int, *, nan: tuple[int, ...] = (), flat: bool = False):
    """A run folder with its fingerprint set, and a folder of one posterior file per model (those in ``nan``
    hold a NaN, so they are left out; ``flat``: every channel carries next to nothing)."""
    run_dir = tmp_path / "run"
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32,
                                        store=run_dir / "store.zarr"))
    mu, logvar, _ = synthetic_posteriors(n_models)
    if flat:
        mu, logvar = mu[:, 2:3].repeat(3, axis=1), logvar[:, 2:3].repeat(3, axis=1)
    for m in range(n_models):
        mean = mu[m].T.copy()
        if m in nan:
            mean[4, 1] = np.nan
        write_posterior_file(tmp_path / "files" / f"m{m}.npz", mean, logvar[m].T, store=run_dir / "store.zarr")
    return run_dir


def sweep(run_dir, client, *stages: str) -> list[str]:
    return ["--run-dir", str(run_dir), "--models-source", "posteriors", "--models-dir",
            str(run_dir.parent / "files"), "--n-images", str(N_IMAGES), "--image-size", "32", "--error-groups", "0",
            "--scheduler-address", client.scheduler.address, "--stages", *stages]


def last_line(out: str) -> str:
    return out.rstrip("\n").splitlines()[-1]


def test_the_table_is_in_the_readme():
    from pathlib import Path

    from repspace.jobs._run import EXIT_STATUSES

    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text[text.index("## Exit statuses"):]
    for code, meaning in EXIT_STATUSES.items():
        assert f"| {code} |" in section and meaning in section, (code, meaning)


def test_a_run_with_everything_done_exits_0(tmp_path, client, capsys):
    run_dir = posterior_run(tmp_path, 3)
    assert full_sweep.main(sweep(run_dir, client, "models", "encode", "channels", "pairs")) == 0
    out, err = capsys.readouterr()
    assert last_line(out) == "status: ok", out
    assert "error" not in err


def test_models_left_out_exit_3_saying_how_many_and_where(tmp_path, client, capsys):
    run_dir = posterior_run(tmp_path, 3, nan=(1,))
    with pytest.warns(UserWarning, match="m1"):
        code = full_sweep.main(sweep(run_dir, client, "models", "encode", "channels", "pairs"))
    out, err = capsys.readouterr()
    assert code == 3, err
    line = last_line(out)
    assert line.startswith("status: 1 of 3 models left out (named above; report: ") and "store.zarr" in line, line
    assert "m1: " in out and "NaN or infinite values" in out  # the summary above names it, with why


def test_no_usable_model_exits_1(tmp_path, client, capsys):
    run_dir = posterior_run(tmp_path, 2, nan=(0, 1))
    with pytest.warns(UserWarning, match="m0"):
        code = full_sweep.main(sweep(run_dir, client, "models", "encode", "channels"))
    out, err = capsys.readouterr()
    assert code == 1
    assert last_line(out) == "status: no usable model"
    assert "error: none of the 2 models could be encoded (group embeddings); the first: m0:" in err


def test_an_error_exits_1_with_one_line(tmp_path, client, capsys):
    run_dir = posterior_run(tmp_path, 2)
    code = full_sweep.main(sweep(run_dir, client, "structure"))  # needs channels and pairs, never run here
    out, err = capsys.readouterr()
    assert code == 1
    assert last_line(out) == "status: error (see the line above)"
    assert err.strip().splitlines()[-1] == ("error: 'structure' needs the 'channels' group, which this store lacks: "
                                            "run the stage that writes it first")


def test_a_stage_that_wrote_nothing_exits_4(tmp_path, client, capsys):
    run_dir = posterior_run(tmp_path, 3, flat=True)  # no channel carries info_threshold bits: nothing to pair
    code = full_sweep.main(sweep(run_dir, client, "models", "encode", "channels", "pairs", "structure"))
    out, err = capsys.readouterr()
    assert code == 4, err
    assert last_line(out) == "status: 2 stage(s) wrote nothing: pairs, structure"
    assert "error: pairs: no channel carries 0.01 bits or more (info_threshold): no pair computed" in err
    assert "error: structure: no channel above 0.01 bits to order" in err


@pytest.mark.parametrize("job,argv,says", [
    (full_sweep, ["--pair-block-units", "0"], "pair_block_units must be positive"),
    (compare_measures, ["--store", "{tmp}/nothing/store.zarr"], "no run store at"),
    (compare_latents, ["--store", "{tmp}/y.zarr", "--n-samples", "1"], "n_samples"),
    (fusion_so2, ["--n-points", "1"], "n_points"),
])
def test_refused_flags_exit_2_before_any_work(tmp_path, capsys, job, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert job.main(["--run-dir", str(tmp_path / "run"), *argv] if job is not compare_latents
                    and job is not compare_measures else argv) == 2
    out, err = capsys.readouterr()
    assert last_line(out) == "status: configuration refused"
    assert err.startswith("error: ") and says in err, err
    assert not (tmp_path / "run").exists()  # nothing ran


def test_an_interrupted_run_exits_130_keeping_its_finished_blocks(tmp_path, client, monkeypatch, capsys):
    """Ctrl-C during a stage: one line, the status line, exit 130; the rerun computes only what was left."""
    from repspace.pipeline import driver

    run_dir = posterior_run(tmp_path, 3)
    assert full_sweep.main(sweep(run_dir, client, "models", "encode", "channels")) == 0
    run_stage = driver._run_stage

    def interrupted(stage, ctx):
        if stage.name == "pairs":
            raise KeyboardInterrupt
        return run_stage(stage, ctx)

    monkeypatch.setattr(driver, "_run_stage", interrupted)
    capsys.readouterr()
    assert full_sweep.main(sweep(run_dir, client, "channels", "pairs")) == 130
    out, err = capsys.readouterr()
    assert last_line(out) == "status: interrupted", out
    assert err.strip().splitlines()[-1] == ("interrupted: the finished blocks are kept; run the same command again "
                                            "to resume"), err
    monkeypatch.undo()
    assert full_sweep.main(sweep(run_dir, client, "channels", "pairs")) == 0
    out, _ = capsys.readouterr()
    assert last_line(out) == "status: ok"


@pytest.mark.parametrize("job,argv", [(full_sweep, ["--stages", "fingerprints"]), (compare_latents, ["--bogus"]),
                                      (compare_measures, ["--spaces", "nowhere"]), (fusion_so2, ["--seed", "x"])])
def test_a_flag_argparse_refuses_ends_with_the_status_line_and_exit_2(job, argv, capsys):
    with pytest.raises(SystemExit) as caught:
        job.main(argv)
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert last_line(out) == "status: configuration refused", out
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "--help lists the flags" in err, err
