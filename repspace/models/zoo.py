"""The disentanglement_lib model zoo: model numbers, configs and train.gin files.

The unsupervised study of disentanglement_lib trained 10,800 models, numbered
``n = 1800 * dataset + 300 * family + 50 * hyperparameter + seed``. A model's own
``model/results/gin/train.gin`` states the config it was really trained with; where that
file exists it wins over the index (with a warning when the two disagree).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "DATASETS",
    "FAMILIES",
    "HYPERPARAMETERS",
    "N_ZOO_MODELS",
    "ModelInfo",
    "ModelInfoWarning",
    "format_train_gin",
    "model_info_from_gin",
    "parse_gin",
    "parse_model_numbers",
    "read_model_info",
    "zoo_model_info",
]

#: Datasets in the order of the sweep (color_dsprites at 1800, noisy_dsprites at 3600).
DATASETS: tuple[str, ...] = (
    "dsprites_full",
    "color_dsprites",
    "noisy_dsprites",
    "scream_dsprites",
    "smallnorb",
    "cars3d",
)

#: Model families in the order of the sweep.
FAMILIES: tuple[str, ...] = (
    "beta_vae",
    "factor_vae",
    "dip_vae_i",
    "dip_vae_ii",
    "beta_tc_vae",
    "annealed_vae",
)

#: family -> (hyperparameter name, the six values of the sweep).
HYPERPARAMETERS: dict[str, tuple[str, tuple[float, ...]]] = {
    "beta_vae": ("beta", (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)),
    "factor_vae": ("gamma", (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)),
    "dip_vae_i": ("lambda_od", (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)),
    "dip_vae_ii": ("lambda_od", (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)),
    "beta_tc_vae": ("beta", (1.0, 2.0, 4.0, 6.0, 8.0, 10.0)),
    "annealed_vae": ("c_max", (5.0, 10.0, 25.0, 50.0, 75.0, 100.0)),
}

N_SEEDS = 50
N_PER_FAMILY = 6 * N_SEEDS
N_PER_DATASET = len(FAMILIES) * N_PER_FAMILY
N_ZOO_MODELS = len(DATASETS) * N_PER_DATASET

#: family -> (gin configurable of ``model.model``, gin key of its hyperparameter).
_GIN_MODEL = {
    "beta_vae": ("vae", "vae.beta"),
    "factor_vae": ("factor_vae", "factor_vae.gamma"),
    "dip_vae_i": ("dip_vae", "dip_vae.lambda_od"),
    "dip_vae_ii": ("dip_vae", "dip_vae.lambda_od"),
    "beta_tc_vae": ("beta_tc_vae", "beta_tc_vae.beta"),
    "annealed_vae": ("annealed_vae", "annealed_vae.c_max"),
}

ZOO_SOURCE = "disentanglement_lib"


class ModelInfoWarning(UserWarning):
    """A model's train.gin disagrees with what its number says."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a trained model is.

    Attributes
    ----------
    number : int or None
        The model's number (its directory name), None when unknown.
    dataset : str
        Dataset it was trained on, e.g. ``"dsprites_full"``.
    family : str
        Model family, one of :data:`FAMILIES` (or another name for models of our own).
    hyperparameter_name : str
        e.g. ``"beta"``.
    hyperparameter_value : float
    seed : int
        The random seed of the training run (``model.random_seed``).
    source : str
        ``"disentanglement_lib"`` for the zoo, ``"repspace"`` for models trained here.
    """

    number: int | None
    dataset: str
    family: str
    hyperparameter_name: str
    hyperparameter_value: float
    seed: int
    source: str = ZOO_SOURCE

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def zoo_model_info(n: int) -> ModelInfo:
    """Config of zoo model number ``n`` as the disentanglement_lib sweep defines it.

    Parameters
    ----------
    n : int
        Model number, 0 <= n < 10800.

    Examples
    --------
    >>> zoo_model_info(0)
    ModelInfo(number=0, dataset='dsprites_full', family='beta_vae', hyperparameter_name='beta', hyperparameter_value=1.0, seed=0, source='disentanglement_lib')
    >>> info = zoo_model_info(7750)
    >>> info.dataset, info.family, info.hyperparameter_name, info.hyperparameter_value, info.seed
    ('smallnorb', 'factor_vae', 'gamma', 100.0, 0)
    """
    n = int(n)
    if not 0 <= n < N_ZOO_MODELS:
        raise ValueError(f"zoo model numbers run from 0 to {N_ZOO_MODELS - 1}, got {n}")
    dataset = DATASETS[n // N_PER_DATASET]
    family = FAMILIES[(n % N_PER_DATASET) // N_PER_FAMILY]
    name, values = HYPERPARAMETERS[family]
    value = values[(n % N_PER_FAMILY) // N_SEEDS]
    return ModelInfo(n, dataset, family, name, value, n % N_SEEDS)


def zoo_model_number(dataset: str, family: str, hyperparameter_value: float, seed: int) -> int:
    """Inverse of :func:`zoo_model_info`.

    >>> zoo_model_number("smallnorb", "factor_vae", 100, 0)
    7750
    """
    name, values = HYPERPARAMETERS[family]
    return (
        DATASETS.index(dataset) * N_PER_DATASET
        + FAMILIES.index(family) * N_PER_FAMILY
        + values.index(float(hyperparameter_value)) * N_SEEDS
        + int(seed)
    )


def parse_model_numbers(spec: str | Iterable[str | int]) -> list[int]:
    """Model numbers from a spec such as ``"0-49,100,7750-7752"`` (ranges inclusive).

    >>> parse_model_numbers("0-2,10")
    [0, 1, 2, 10]
    >>> parse_model_numbers(["5", "3-4"])
    [3, 4, 5]
    """
    parts: list[str] = []
    items = [spec] if isinstance(spec, (str, int)) else list(spec)
    for item in items:
        parts.extend(p for p in str(item).replace(" ", "").split(",") if p)
    numbers: set[int] = set()
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ValueError(f"not a model number or range: {part!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"empty range: {part!r}")
        numbers.update(range(lo, hi + 1))
    return sorted(numbers)


# --- gin -------------------------------------------------------------------------


def _parse_gin_value(text: str):
    text = text.strip()
    if text.startswith("@"):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_gin(text: str) -> dict[str, object]:
    """Bindings of a gin config file as ``{"scope.name": value}``.

    Handles what disentanglement_lib's operative configs contain: comments, one binding
    per line, Python literals, ``@references`` and values continued over several lines
    inside brackets.

    >>> parse_gin("# c\\nmodel.random_seed = 3\\ndataset.name = 'smallnorb'\\nmodel.model = @vae()")
    {'model.random_seed': 3, 'dataset.name': 'smallnorb', 'model.model': '@vae()'}
    """
    bindings: dict[str, object] = {}
    key, buf, depth = None, "", 0
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if key is None:
            if "=" not in line:
                continue  # import statements, includes, macros without bindings
            left, right = line.split("=", 1)
            key, buf = left.strip(), right.strip()
        else:
            buf += " " + line.strip()
        depth = sum(buf.count(c) for c in "([{") - sum(buf.count(c) for c in ")]}")
        if depth <= 0:
            bindings[key] = _parse_gin_value(buf)
            key, buf = None, ""
    return bindings


def _gin_str(value) -> str:
    if isinstance(value, str) and value.startswith("@"):
        return value
    return repr(value)


def format_train_gin(info: ModelInfo, extra: Mapping[str, object] | None = None) -> str:
    """A train.gin-style text with the keys the zoo uses for ``info``.

    ``extra`` adds further bindings (e.g. ``model.training_steps``). The result reads back
    with :func:`model_info_from_gin`.
    """
    configurable, hp_key = _GIN_MODEL.get(info.family, (info.family, f"{info.family}.{info.hyperparameter_name}"))
    bindings: dict[str, object] = {
        "dataset.name": info.dataset,
        "model.name": info.family,
        "model.model": f"@{configurable}()",
        "model.random_seed": int(info.seed),
        hp_key: float(info.hyperparameter_value),
    }
    if info.family in ("dip_vae_i", "dip_vae_ii"):
        bindings["dip_vae.dip_type"] = info.family.rsplit("_", 1)[1]
    if info.source != ZOO_SOURCE:
        bindings["model.source"] = info.source
    if extra:
        bindings.update(extra)
    groups: dict[str, list[str]] = {}
    for k, v in bindings.items():
        groups.setdefault(k.split(".", 1)[0], []).append(f"{k} = {_gin_str(v)}")
    out = []
    for scope in sorted(groups):
        out += [f"# Parameters for {scope}:", "# " + "=" * 78, *sorted(groups[scope]), ""]
    return "\n".join(out)


def _family_from_gin(bindings: Mapping[str, object]) -> str | None:
    name = bindings.get("model.name")
    if isinstance(name, str) and name:
        return name
    ref = bindings.get("model.model")
    if not isinstance(ref, str):
        return None
    configurable = ref.lstrip("@").rstrip("()").split("/")[-1]
    if configurable == "dip_vae":
        dip_type = bindings.get("dip_vae.dip_type", "i")
        return f"dip_vae_{dip_type}"
    for family, (conf, _) in _GIN_MODEL.items():
        if conf == configurable:
            return family
    return configurable


def model_info_from_gin(bindings: Mapping[str, object], number: int | None = None) -> ModelInfo:
    """ModelInfo from parsed train.gin bindings (see :func:`parse_gin`).

    Raises ValueError when the bindings do not say dataset, family, hyperparameter and seed.
    """
    family = _family_from_gin(bindings)
    dataset = bindings.get("dataset.name")
    seed = bindings.get("model.random_seed")
    if family is None or dataset is None or seed is None:
        raise ValueError("train.gin lacks dataset.name, model.model/model.name or model.random_seed")
    if family in _GIN_MODEL:
        hp_name = HYPERPARAMETERS[family][0]
        hp_key = _GIN_MODEL[family][1]
    else:
        hp_key = next((k for k in bindings if k.startswith(f"{family}.")), None)
        if hp_key is None:
            raise ValueError(f"train.gin names family {family!r} but no hyperparameter of it")
        hp_name = hp_key.split(".", 1)[1]
    if hp_key not in bindings:
        raise ValueError(f"train.gin lacks {hp_key}")
    return ModelInfo(
        number=number,
        dataset=str(dataset),
        family=family,
        hyperparameter_name=hp_name,
        hyperparameter_value=float(bindings[hp_key]),
        seed=int(seed),
        source=str(bindings.get("model.source", ZOO_SOURCE)),
    )


def _number_from_dir(model_dir: Path) -> int | None:
    try:
        return int(model_dir.name)
    except ValueError:
        return None


def read_model_info(model_dir: str | Path, number: int | None = None) -> ModelInfo | None:
    """What the model in ``model_dir`` (``<n>/`` holding ``model/``) is.

    The model's ``model/results/gin/train.gin`` is read when present and wins over the zoo
    index; a :class:`ModelInfoWarning` says where the two disagree. Without it the zoo index
    of ``number`` (default: the directory name, when it is an integer) is used; None when
    neither is known. Models trained by repspace carry ``model.source = 'repspace'`` and are
    not compared with the zoo index.
    """
    model_dir = Path(model_dir)
    if number is None:
        number = _number_from_dir(model_dir)
    from_index = None
    if number is not None and 0 <= number < N_ZOO_MODELS:
        from_index = zoo_model_info(number)
    gin_path = model_dir / "model" / "results" / "gin" / "train.gin"
    if not gin_path.is_file():
        return from_index
    from_gin = model_info_from_gin(parse_gin(gin_path.read_text()), number=number)
    if from_index is not None and from_gin.source == ZOO_SOURCE and from_gin != from_index:
        diffs = [
            f"{f.name} {getattr(from_index, f.name)!r} -> {getattr(from_gin, f.name)!r}"
            for f in dataclasses.fields(ModelInfo)
            if getattr(from_index, f.name) != getattr(from_gin, f.name)
        ]
        warnings.warn(
            f"{gin_path} disagrees with the zoo index of model {number} ({'; '.join(diffs)}); "
            "using train.gin",
            ModelInfoWarning,
            stacklevel=2,
        )
    return from_gin
