"""The package runs from any folder: a wheel built from the source, installed where no checkout is on
the path, finds its job defaults and runs the offline default's first stage from an empty folder,
writing the run where the configuration's relative ``run_dir`` says, under that folder.

The wheel is built without build isolation (the test environment's setuptools), and installed
with ``--no-deps`` into a folder of its own that comes first on the path: nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: the build leaves build/ and *.egg-info where it runs, not in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "data", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "--disable-pip-version-check", "-w", str(out / "dist"), str(source)],
                           capture_output=True, text=True, cwd=out)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (out / "dist").glob("repspace-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for job in (ROOT / "jobs").glob("*.toml"):  # every job default the checkout has, and no other copy
        assert f"repspace/jobs/defaults/{job.name}" in names, f"{job.name} is not in the wheel"
    for weights in (ROOT / "repspace" / "models" / "shipped").glob("*.npz"):  # the offline default's models
        assert f"repspace/models/shipped/{weights.name}" in names, f"{weights.name} is not in the wheel"
    target = out / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q",
                              "--disable-pip-version-check", "--target", str(target), str(wheel)],
                             capture_output=True, text=True, cwd=out)
    assert install.returncode == 0, install.stderr[-3000:]
    return target


def run_there(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    env.pop("REPSPACE_DATA_DIR", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    done = run_there(installed, tmp_path, "-c", "import repspace, repspace.pipeline.config as c; "
                                                "print(repspace.__file__); print(c.DEFAULT_CONFIG)")
    assert done.returncode == 0, done.stderr
    module, default = done.stdout.split()
    assert Path(module).is_relative_to(installed) and Path(default).is_relative_to(installed)
    assert Path(default).is_file()
    found = run_there(installed, tmp_path, "-c", "from repspace.models.training import TrainConfig, model_grid; "
                      "from repspace.models.trainer import _model_config; from repspace.models.shipped import "
                      "shipped_model; c = TrainConfig.offline_default(); "
                      "print(shipped_model(_model_config(c, model_grid(c)[9]))['record']['model']['seed'])")
    assert found.returncode == 0 and found.stdout.split() == ["9"], found.stderr[-2000:]  # from the wheel's file


def test_the_default_runs_its_first_stage_from_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_there(installed, empty, "-m", "repspace.jobs.full_sweep", "--stages", "fingerprint", "--no-dashboard",
                     "--n-images", "20")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (empty / "runs" / "offline_default" / "store.zarr" / "fingerprint").is_dir()  # relative to the folder
    for job in ("compare_measures", "fusion_so2", "compare_latents"):
        helped = run_there(installed, empty, "-m", f"repspace.jobs.{job}", "--help")
        assert helped.returncode == 0 and str(installed) in helped.stdout.replace("\n", "").replace(" ", ""), \
            helped.stderr[-2000:]
