"""Every CLI's --help lists the choices it accepts and its defaults; an unknown choice gets a
one-line error that lists the valid ones."""

from __future__ import annotations

import importlib

import pytest

from repspace.data import DATASETS
from repspace.measures import MEASURES
from repspace.models.training import TRAINABLE_FAMILIES

JOBS = ["full_sweep", "compare_latents", "compare_measures", "fingerprint", "train_ensemble", "download_models"]


def help_text(job: str, capsys) -> str:
    module = importlib.import_module(f"repspace.jobs.{job}")
    entry = module.main if job in ("full_sweep", "download_models", "compare_measures") else module.parse_args
    with pytest.raises(SystemExit):
        entry(["--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("job", ["full_sweep", "compare_latents", "fingerprint", "train_ensemble"])
def test_help_lists_the_datasets(job, capsys):
    text = help_text(job, capsys)
    assert all(name in text for name in DATASETS), job
    assert "default" in text


def test_help_lists_families_stages_and_defaults(capsys):
    text = help_text("train_ensemble", capsys)
    assert all(f in text for f in TRAINABLE_FAMILIES) and "default: 10000" in text
    text = help_text("full_sweep", capsys)
    assert "encode_dataset" in text and "traversals" in text and "offline default: 300" in text
    text = help_text("compare_latents", capsys)
    assert "default: 20000" in text and "default: 2000" in text
    text = help_text("compare_measures", capsys)
    assert all(m in text for m in MEASURES) and "latents" in text and "channels" in text
    assert "default: 2000; the paper: 10000" in text
    from repspace.jobs.download_models import DownloadConfig

    text = help_text("download_models", capsys)
    assert f"downloads at once (default {DownloadConfig.workers})" in text
    assert f"resumes per model after a cut (default {DownloadConfig.retries})" in text


@pytest.mark.parametrize("job,argv,says,lists", [
    ("fingerprint", ["--store", "x.zarr", "--dataset", "mnistt"], "invalid choice", DATASETS),
    ("compare_latents", ["--store", "x.zarr", "--dataset", "mnistt"], "invalid choice", DATASETS),
    ("train_ensemble", ["--families", "beta_vae,gamma_vae"], "unknown families", TRAINABLE_FAMILIES),
    ("compare_measures", ["--measures", "cka"], "invalid choice", MEASURES),
])
def test_an_unknown_choice_names_the_valid_ones(job, argv, says, lists, capsys):
    module = importlib.import_module(f"repspace.jobs.{job}")
    with pytest.raises(SystemExit):
        (module.build_parser().parse_args if job == "compare_measures" else module.parse_args)(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert says in err, err
    missing = [name for name in lists if name not in err]
    assert not missing, f"{job}: the error does not name {missing}: {err}"
