"""Every option is checked before any work, in every job; a refusal names the key and where its value came from
(the file, or the command-line flag and the file it overrides); nothing is coerced silently."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path

import numpy as np
import pytest

from repspace.pipeline import load_config
from repspace.pipeline.config import DEFAULT_CONFIG, RunConfig, job_defaults
from repspace.pipeline.options import table_classes


def _toml(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with its contents' hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_work(monkeypatch):
    """Any job that gets as far as running stages, training or drawing a fingerprint set fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the job started work although its options are refused")

    import repspace.jobs._run as run_module
    import repspace.jobs.fingerprint as fingerprint_job
    import repspace.jobs.train_ensemble as train_job

    monkeypatch.setattr(run_module, "run", refuse)
    monkeypatch.setattr(train_job, "train_ensemble", refuse)
    monkeypatch.setattr(fingerprint_job, "build_fingerprint", refuse)


def _float_keys() -> list[tuple[str | None, str]]:
    """(table or None for the top level, key) of every float option of a run TOML."""
    keys = [(None, f.name) for f in dataclasses.fields(RunConfig)
            if f.name != "options" and float in typing.get_args(typing.get_type_hints(RunConfig)[f.name]) + (
                typing.get_type_hints(RunConfig)[f.name],)]
    for table, cls in table_classes().items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            sub = hints[f.name]
            if dataclasses.is_dataclass(sub):
                keys += [(f"{table}.{f.name}", g.name) for g in dataclasses.fields(sub)
                         if typing.get_type_hints(sub)[g.name] is float]
            elif sub is float:
                keys.append((table, f.name))
    from repspace.models import TrainConfig
    keys += [("models.train", f.name) for f in dataclasses.fields(TrainConfig)
             if typing.get_type_hints(TrainConfig)[f.name] is float]
    return keys


FLOAT_KEYS = [k for k in _float_keys() if k not in {("so2", "fusion_learning_rate"), ("so2", "init_std")}]


def test_every_float_option_is_found():
    assert (None, "info_threshold") in FLOAT_KEYS and ("models.train", "learning_rate") in FLOAT_KEYS
    assert ("so2.learner", "learning_rate") in FLOAT_KEYS and ("structure", "null_level") in FLOAT_KEYS


def _refused_option(tmp_path: Path, table: str | None, key: str, value: str) -> tuple[Path, str]:
    """A file setting ``key = value`` (in ``[table]``, or at the top when None), and the error that refuses it."""
    path = _toml(tmp_path, f"{key} = {value}\n" if table is None else f"[{table}]\n{key} = {value}\n")
    with pytest.raises(ValueError) as err:
        load_config(path)
    return path, str(err.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("table,key", FLOAT_KEYS, ids=[f"{t or 'top'}.{k}" for t, k in FLOAT_KEYS])
def test_a_number_that_is_not_finite_is_refused_naming_the_key_and_file(tmp_path, table, key, value):
    path, msg = _refused_option(tmp_path, table, key, value)
    prefix = f"{path}: " + (f"[{table}] " if table else "")
    assert msg.startswith(prefix) and key in msg and " must " in msg and msg.endswith(value), msg
    if table is not None:
        assert f"[{table}] {key}" in msg


def test_nan_info_threshold_flag_on_a_finished_run_is_refused_and_changes_nothing(tmp_path, no_work, capsys):
    from repspace.jobs import full_sweep

    run_dir = tmp_path / "run"
    (run_dir / "store.zarr").mkdir(parents=True)
    (run_dir / "store.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    before = _snapshot(run_dir)
    assert full_sweep.main(["--run-dir", str(run_dir), "--info-threshold", "nan"]) == 2
    msg = capsys.readouterr().err
    assert f"--info-threshold (a command-line flag, over {DEFAULT_CONFIG})" in msg and "info_threshold" in msg, msg
    assert _snapshot(run_dir) == before


def test_nan_info_threshold_in_the_file_names_the_file(tmp_path, no_work, capsys):
    from repspace.jobs import full_sweep

    path = _toml(tmp_path, DEFAULT_CONFIG.read_text().replace("info_threshold = 0.01", "info_threshold = nan"))
    assert full_sweep.main(["--config", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    msg = capsys.readouterr().err
    assert f"{path}: info_threshold" in msg and "flag" not in msg, msg
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text,expected", [
    ('models = "/data/models"\n', "models must be a table ([models] and its keys), got '/data/models' (str)"),
    ('[models]\ntrain = 3\n', "[models] train must be a table"),
    ('[models.train]\nseeds = 5\n', "[models.train] seeds must be a list, got 5 (int)"),
    ('[models.train]\nseeds = [0, 1.5]\n', "[models.train] seeds must be a list of integers; item 1 is 1.5"),
    ('[models.train]\nfamilies = "beta_vae"\n', "[models.train] families must be a list, got 'beta_vae' (str)"),
    ('[models.train]\nhyperparameters = { beta_vae = "16" }\n', "hyperparameters.beta_vae must be a list"),
    ('[models.train]\nmlp_hidden = "128"\n', "[models.train] mlp_hidden must be a list"),
    ('[models.train]\nstep = 10000\n', "[models.train] unknown keys ['step'] (step: did you mean steps?); known: ['annealed_gamma', "),
    ('stages = "structure"\n', "stages must be a list, got 'structure' (str)"),
    ('pair_measures = "nmi"\n', "pair_measures must be a list, got 'nmi' (str)"),
    ('[so2]\nlearner = 3\n', "[so2] learner must be a table, got 3 (int)"),
    ('[measures]\nmeasures = "cka_linear"\n', "[measures] measures must be a list"),
    ('[fusion]\nchannels = "0/1"\n', "[fusion] channels must be a list"),
])
def test_a_wrong_shape_says_what_is_wrong(tmp_path, text, expected):
    _refused_at_load(tmp_path, text, expected)


def test_so2_sizes_as_a_string_are_refused_not_read_as_digits(tmp_path):
    path = _toml(tmp_path, job_defaults("fusion_so2.toml").read_text().replace("sizes = [2, 3, 5, 10, 20]",
                                                                               'sizes = "20"'))
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert f"{path}: [so2] sizes must be a list, got '20' (str)" in str(err.value)
    with pytest.raises(ValueError, match=r"\[so2\] sizes must be a list of integers; item 0 is 2.5"):
        load_config(_toml(tmp_path, "[so2]\nsizes = [2.5]\n"))


@pytest.mark.parametrize("text,expected", [
    ("[so2]\nsizes = [2, 3, 3]\n", "[so2] sizes must list each value once; 3 is listed more than once"),
    ('[so2]\nsimilarities = ["vi", "vi"]\n', "[so2] similarities must list each value once; 'vi'"),
    ('[fusion]\nmembers = "list"\nchannels = ["m0/1", "m0/2", "m0/1"]\n',
     "[fusion] channels must name each channel once; 'm0/1' is listed more than once"),
    ('[models.train]\nseeds = [0, 1, 1]\n', "[models.train] seeds must not repeat"),
])
def test_duplicates_are_refused_naming_them(tmp_path, text, expected):
    _refused_at_load(tmp_path, text, expected)


def _refused_at_load(tmp_path, text, expected):
    """The file with ``text`` is refused before any work, the message naming the file and saying ``expected``."""
    path = _toml(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), str(err.value)


@pytest.mark.parametrize("table,key,value", [
    ("models.train", "learning_rate", "-1"), ("models.train", "pool_size", "-1"), ("models.train", "workers", "0"),
    ("models.train", "steps_per_call", "0"), ("models.train", "image_size", "0"), ("models.train", "seeds", "[-1]"),
    ("models.train", "annealed_gamma", "-1.0"), ("models.train", "mlp_hidden", "[0]"),
    ("models.train", "hyperparameters", "{ factor_vae = [1.0] }"),
    (None, "image_size", "0"), (None, "seed", "-1"), (None, "n_images", "0"),
])
def test_out_of_range_options_are_refused_at_load(tmp_path, table, key, value):
    path, msg = _refused_option(tmp_path, table, key, value)
    assert msg.startswith(f"{path}: " + (f"[{table}] " if table else "")) and key in msg, msg


def _job_toml(tmp_path: Path, job_file: str, table: str, key: str, value: str) -> Path:
    """The job's own configuration with ``key`` of ``[table]`` set to ``value`` (appended as its own table when
    the file does not write that table)."""
    text = job_defaults(job_file).read_text()
    header = f"[{table}]\n"
    if header in text:
        lines = [ln for ln in text.splitlines(keepends=True)]
        start = lines.index(header)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        body = [ln for ln in lines[start + 1:end] if not ln.startswith(f"{key} =")]
        text = "".join(lines[:start + 1] + [f"{key} = {value}\n"] + body + lines[end:])
    else:
        text += f"\n{header}{key} = {value}\n"
    return _toml(tmp_path, text, job_file)


@pytest.mark.parametrize("job,job_file,table,key,value", [
    ("full_sweep", "offline_default.toml", "models.train", "learning_rate", "-1"),
    ("full_sweep", "offline_default.toml", "structure", "null_level", "nan"),
    ("compare_measures", "compare_measures.toml", "measures.classifier", "learning_rate", "-1"),
    ("compare_measures", "compare_measures.toml", "measures", "shape_alpha", "nan"),
    ("fusion_so2", "fusion_so2.toml", "so2.learner", "learning_rate", "-1"),
    ("fusion_so2", "fusion_so2.toml", "so2.learner", "hidden", '"256"'),
    ("compare_latents", "compare_latents.toml", "latents", "n_samples", "-1"),
])
def test_every_job_refuses_bad_options_in_its_file_before_any_work(tmp_path, no_work, capsys, job, job_file, table,
                                                                    key, value):
    import importlib

    path = _job_toml(tmp_path, job_file, table, key, value)
    module = importlib.import_module(f"repspace.jobs.{job}")
    run_dir = tmp_path / "run"
    assert module.main(["--config", str(path), "--run-dir", str(run_dir)]) == 2
    msg = capsys.readouterr().err
    assert f"{path}: [{table}] {key}" in msg and "flag" not in msg, msg
    assert not run_dir.exists()


@pytest.mark.parametrize("job,argv,flag,over", [
    ("full_sweep", ["--n-images", "0"], "--n-images", DEFAULT_CONFIG),
    ("full_sweep", ["--train-steps", "0"], "--train-steps", DEFAULT_CONFIG),
    ("full_sweep", ["--error-groups", "1"], "--error-groups", DEFAULT_CONFIG),
    ("fusion_so2", ["--n-points", "1"], "--n-points", job_defaults("fusion_so2.toml")),
    ("fusion_so2", ["--sizes", "2", "2"], "--sizes", job_defaults("fusion_so2.toml")),
    ("fusion_so2", ["--learner-steps", "0"], "--learner-steps", job_defaults("fusion_so2.toml")),
    ("compare_measures", ["--shape-alpha", "nan"], "--shape-alpha", job_defaults("compare_measures.toml")),
    ("compare_measures", ["--classifier-learning-rate", "-1"], "--classifier-learning-rate",
     job_defaults("compare_measures.toml")),
    ("compare_latents", ["--n-samples", "1"], "--n-samples", job_defaults("compare_latents.toml")),
    ("compare_latents", ["--image-size", "0"], "--image-size", job_defaults("compare_latents.toml")),
])
def test_a_bad_flag_is_blamed_on_the_flag_not_the_file(tmp_path, no_work, capsys, job, argv, flag, over):
    import importlib

    module = importlib.import_module(f"repspace.jobs.{job}")
    run_dir = tmp_path / "run"
    assert module.main(["--run-dir", str(run_dir), *argv]) == 2
    msg = capsys.readouterr().err
    assert f"{flag} (a command-line flag, over {over}): " in msg, msg
    assert not run_dir.exists()


def test_train_ensemble_names_the_flag_or_the_json_file(tmp_path, no_work, capsys):
    from repspace.jobs import train_ensemble

    dest = tmp_path / "models"
    assert train_ensemble.main(["--dest", str(dest), "--lr", "-1"]) == 2
    msg = capsys.readouterr().err
    assert "--lr (a command-line flag, over the offline default): learning_rate must be a positive number" in msg, msg
    assert train_ensemble.main(["--dest", str(dest), "--lr", "nan"]) == 2
    assert "--lr (a command-line flag, over the offline default): learning_rate must be a positive number, got nan" in \
        capsys.readouterr().err
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"seeds": 5}))
    assert train_ensemble.main(["--dest", str(dest), "--config", str(config)]) == 2
    assert f"{config}: seeds must be a list, got 5 (int)" in capsys.readouterr().err
    config.write_text(json.dumps({"learning_rate": 0.001, "step": 10}))
    assert train_ensemble.main(["--dest", str(dest), "--config", str(config)]) == 2
    assert f"{config}: unknown keys ['step']" in capsys.readouterr().err
    assert not dest.exists()


def test_fingerprint_job_refuses_bad_flags_before_drawing(tmp_path, no_work, capsys):
    from repspace.jobs import fingerprint

    store = tmp_path / "fp.zarr"
    assert fingerprint.main(["--store", str(store), "-n", "0"]) == 2
    assert "-n (a command-line flag): n must be an integer of at least 1, got 0" in capsys.readouterr().err
    assert fingerprint.main(["--store", str(store), "--seed", "-1"]) == 2
    assert "--seed (a command-line flag): seed must be an integer of at least 0" in capsys.readouterr().err
    assert not store.exists()


def test_n_channels_that_the_store_contradicts_is_refused_before_any_work(tmp_path):
    from repspace.pipeline import run
    from repspace.store.embeddings import DATASET, write_posteriors

    store = tmp_path / "run" / "store.zarr"
    rng = np.random.default_rng(0)
    write_posteriors(store, rng.normal(size=(2, 10, 6)), rng.normal(size=(2, 10, 6)) - 2, ["a", "b"], group=DATASET,
                     images={"dataset": "dsprites_procedural", "image_size": 32})
    before = _snapshot(store)
    config = RunConfig(run_dir=str(tmp_path / "run"), n_channels=7, stages=("latents",))
    with pytest.raises(ValueError) as err:
        run(config)
    msg = str(err.value)
    assert "n_channels = 7" in msg and "10 channels" in msg and str(store) in msg and "dataset_embeddings" in msg, msg
    assert _snapshot(store) == before


def test_n_channels_that_the_store_contradicts_ends_the_job_as_refused(tmp_path, monkeypatch, capsys):
    """The store's refusals come before any work, as an option's: exit 2, the status line, no cluster."""
    from repspace.jobs import compare_latents
    from repspace.pipeline import driver
    from repspace.store.embeddings import DATASET, write_posteriors

    rng = np.random.default_rng(0)
    store = tmp_path / "run" / "store.zarr"
    write_posteriors(store, rng.normal(size=(2, 10, 6)), rng.normal(size=(2, 10, 6)) - 2, ["a", "b"], group=DATASET,
                     images={"dataset": "dsprites_procedural", "image_size": 32})
    config = _toml(tmp_path, "n_channels = 7\n")
    monkeypatch.setattr(driver, "connect", _no_cluster)
    assert compare_latents.main(["--run-dir", str(tmp_path / "run"), "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "status: configuration refused", out
    assert "n_channels = 7" in err, err


def _no_cluster(*args, **kwargs):
    raise AssertionError("a cluster was started although the run is refused")


@pytest.mark.parametrize("source", ["directory", "posteriors"])
def test_a_models_folder_that_does_not_hold_the_models_is_refused_before_any_work(tmp_path, monkeypatch, capsys,
                                                                                   source):
    from repspace.jobs import full_sweep
    from repspace.pipeline import driver

    monkeypatch.setattr(driver, "connect", _no_cluster)
    (tmp_path / "empty").mkdir()
    for folder, says in ((tmp_path / "nowhere", "does not exist"), (tmp_path / "empty", "no models in")):
        argv = ["--run-dir", str(tmp_path / "run"), "--models-source", source, "--models-dir", str(folder)]
        assert full_sweep.main(argv) == 2
        out, err = capsys.readouterr()
        assert out.strip().splitlines()[-1] == "status: configuration refused", out
        assert "--models-dir" in err and str(folder) in err and says in err and source in err, err
        assert not (tmp_path / "run").exists()  # nothing written


def _store_listing(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """(the models folder, the run's store) of a store whose models group lists ``n`` models 0, 1, ... in that
    folder (which is not made)."""
    from repspace.store import open_run
    from repspace.store.models import write_models

    models = tmp_path / "models" / "offline"
    store = tmp_path / "run" / "store.zarr"
    write_models(open_run(store).require_group("models"),
                 [{"name": str(k), "path": str(models / str(k))} for k in range(n)])
    return models, store


def test_a_mistyped_models_folder_beside_the_run_s_models_is_refused(tmp_path, monkeypatch, capsys):
    """source = trained fills a missing folder; where the run's models already lie elsewhere, that is a typo."""
    from repspace.jobs import full_sweep
    from repspace.pipeline import driver
    models, store = _store_listing(tmp_path, 3)
    before = _snapshot(store)
    monkeypatch.setattr(driver, "connect", _no_cluster)
    mistyped = tmp_path / "models" / "ofline"
    assert full_sweep.main(["--run-dir", str(tmp_path / "run"), "--models-dir", str(mistyped)]) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "status: configuration refused", out
    assert "--models-dir" in err and str(mistyped) in err and f"3 models in {models}" in err, err
    assert not mistyped.exists() and _snapshot(store) == before


def test_an_empty_models_folder_other_than_the_run_s_is_refused(tmp_path, monkeypatch, capsys):
    """An existing empty folder would get the ten models trained again, named as those the store holds: they
    would be left out of the run silently (its results stay those of the store's models)."""
    from repspace.jobs import full_sweep
    from repspace.pipeline import driver
    models, store = _store_listing(tmp_path, 10)
    before = _snapshot(store)
    monkeypatch.setattr(driver, "connect", _no_cluster)
    other = tmp_path / "other"
    other.mkdir()
    assert full_sweep.main(["--run-dir", str(tmp_path / "run"), "--models-dir", str(other)]) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "status: configuration refused", out
    assert f"holds 10 models in {models} (0, 1, 2, 3, 4 ...)" in err and f"--models-dir {models}" in err, err
    assert not any(other.iterdir()) and _snapshot(store) == before
    # models of other numbers in another folder are new models of the run, not a conflict
    from repspace.pipeline.stages import models as stage

    stage.check(load_config(None, run_dir=tmp_path / "run", models={"dir": str(other), "numbers": ["10-12"]}))


def test_models_of_the_same_names_in_another_folder_are_refused(tmp_path, monkeypatch, capsys):
    """The store's results are those of the models at the paths it recorded; a folder of models with the same
    names elsewhere (retrained, swapped) is refused, the recorded folder itself is not."""
    from repspace.jobs import full_sweep
    from repspace.models import write_posterior_file
    from repspace.pipeline import driver
    from repspace.pipeline.stages import models as stage
    from repspace.store import open_run
    from repspace.store.models import write_models

    rng = np.random.default_rng(0)
    images = {"dataset": "dsprites_procedural", "image_size": 32}
    folders = {}
    for folder in ("first", "second"):
        folders[folder] = [write_posterior_file(tmp_path / folder / f"m{k}.npz", rng.normal(size=(20, 3)),
                                                rng.normal(size=(20, 3)), dataset_index=np.arange(20), images=images)
                           for k in range(2)]
    store = tmp_path / "run" / "store.zarr"
    write_models(open_run(store).require_group("models"),
                 [{"name": p.stem, "path": str(p.resolve())} for p in folders["first"]])
    monkeypatch.setattr(driver, "connect", _no_cluster)
    argv = ["--run-dir", str(tmp_path / "run"), "--models-source", "posteriors"]
    assert full_sweep.main([*argv, "--models-dir", str(tmp_path / "second")]) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "status: configuration refused", out
    assert f"holds 2 models in {(tmp_path / 'first').resolve()} (m0, m1)" in err, err
    stage.check(load_config(None, run_dir=tmp_path / "run",
                            models={"source": "posteriors", "dir": str(tmp_path / "first")}))


def test_a_fingerprint_set_that_the_store_holds_otherwise_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from repspace.data import FingerprintConfig, build_fingerprint
    from repspace.jobs import full_sweep
    from repspace.pipeline import driver
    from repspace.pipeline.stages import fingerprint as stage

    store = tmp_path / "run" / "store.zarr"
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=20, seed=0, store=store, image_size=32))
    before = _snapshot(store)
    monkeypatch.setattr(driver, "connect", _no_cluster)
    assert full_sweep.main(["--run-dir", str(tmp_path / "run"), "--n-images", "30", "--seed", "0"]) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "status: configuration refused", out
    assert f"the store {store} holds a fingerprint set drawn with n_images = 20 (this run: 30), and" in err, err
    assert _snapshot(store) == before
    stage.check(load_config(None, run_dir=tmp_path / "run", n_images=20, seed=0))  # the same set: no refusal


def test_a_run_folder_that_is_a_file_is_refused(tmp_path, monkeypatch, capsys):
    from repspace.jobs import full_sweep
    from repspace.pipeline import driver

    monkeypatch.setattr(driver, "connect", _no_cluster)
    (tmp_path / "notes.txt").write_text("a file")
    for run_dir in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        assert full_sweep.main(["--run-dir", str(run_dir)]) == 2
        out, err = capsys.readouterr()
        assert out.strip().splitlines()[-1] == "status: configuration refused", out
        assert err.strip() == (f"error: {tmp_path / 'notes.txt'} is a file, not a folder: the run's store would be "
                               f"{run_dir / 'store.zarr'} (--run-dir or --store names a folder)"), err
    assert (tmp_path / "notes.txt").read_text() == "a file"


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, bool, "U3"])
def test_posteriors_that_are_not_real_numbers_are_refused(tmp_path, dtype):
    from repspace.models import write_posterior_file
    from repspace.store.embeddings import DATASET, write_posteriors

    good = np.zeros((2, 3, 4), np.float32)
    bad = (np.zeros((2, 3, 4)) + (1j if np.dtype(dtype).kind == "c" else 0)).astype(dtype)
    store = tmp_path / "store.zarr"
    with pytest.raises(ValueError) as err:
        write_posteriors(store, good, bad, ["a", "b"], group=DATASET, images={"dataset": "dsprites_procedural"})
    assert f"write_posteriors: logvar has dtype {np.dtype(dtype)}" in str(err.value)
    assert not store.exists()
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError) as err:
        write_posterior_file(path, bad[0].T, good[0].T, dataset_index=np.arange(4),
                             images={"dataset": "dsprites_procedural", "image_size": 32})
    assert f"posterior file {path}: mean has dtype {np.dtype(dtype)}" in str(err.value)
    assert not path.exists()


@pytest.mark.parametrize("dtype", [np.complex64, bool])
def test_posterior_files_of_other_dtypes_are_refused_when_read(tmp_path, dtype):
    from repspace.models import open_posteriors

    path = tmp_path / "m.npz"
    mean = (np.ones((4, 3)) + (1j if np.dtype(dtype).kind == "c" else 0)).astype(dtype)
    np.savez(path, mean=mean, logvar=np.zeros((4, 3), np.float32), dataset_index=np.arange(4),
             images_id=np.str_("x"), images=np.str_("{}"))
    with pytest.raises(ValueError) as err:
        open_posteriors(path)
    assert f"posterior file {path}: mean has dtype {np.dtype(dtype)}" in str(err.value)
