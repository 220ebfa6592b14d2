"""Layering rules of ``repspace``, checked on the source with ``ast`` (the package is never imported).

Every import counts: module level, inside functions and methods, and under ``if TYPE_CHECKING:``.
Relative imports are resolved; ``from pkg import name`` imports ``pkg.name`` where that is a module,
else ``pkg``. External imports are named by their top-level package (``dask.distributed`` counts
as ``distributed``, which it re-exports).

1. ``repspace.kernels.*`` imports none of dask, distributed, xarray, zarr, tensorflow, matplotlib,
   sklearn, and from repspace only ``repspace.kernels.*``.
2. ``repspace.store.*`` imports from repspace only ``store``, ``kernels``, ``_version``; no
   tensorflow, matplotlib, distributed.
3. ``repspace.data.*`` and ``repspace.models.*`` import from repspace only ``data``, ``models``,
   ``store``, ``kernels``, ``cluster``, ``_version``, ``_quiet``, ``_checks`` (nothing from pipeline, plots, jobs, api);
   models may import data, data must not import models.
4. ``repspace.plots.*`` imports from repspace only ``plots``, ``store``, ``kernels``; no tensorflow.
5. ``repspace.pipeline.*`` imports nothing from ``repspace.jobs`` or ``repspace.api``.
6. Only ``repspace.cluster``, ``repspace.pipeline.*`` and ``repspace.models.*`` import ``distributed``,
   and the name ``LocalCluster`` (import, attribute or name) appears only in ``repspace/cluster.py``.
7. TensorFlow has one layer: only ``repspace.models.*`` uses it, by ``import tensorflow`` or through
   ``repspace._quiet``'s ``import_tensorflow`` (the quiet import, which alone may name it outside
   models); ``tensorflow_datasets`` (or ``import_tfds``) only ``repspace.data.tfds_loader``, the reader of
   datasets prepared by it. The analyses (``repspace.measures``, ``repspace.fusion``), kernels, data,
   store, pipeline and plots call into models for what needs TensorFlow. Likewise only ``repspace.models.*``
   imports ``onnx`` or ``onnxruntime`` (the ONNX encoders).
8. No import cycles among repspace modules, function-level imports included. Importing a package is
   an edge to its ``__init__``; importing ``a.b.c`` adds no edge to ``a.b``; edges from
   ``repspace/__init__.py`` into ``repspace`` are skipped. ``if TYPE_CHECKING:`` imports are left
   out of this check only, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "repspace"
TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def read_sources(root: Path = ROOT) -> dict[str, str]:
    """{dotted module name: source} for every ``.py`` file under the package directory ``root``."""
    names = {p: ".".join((root.name, *p.relative_to(root).with_suffix("").parts)) for p in root.rglob("*.py")}
    return {names[p].removesuffix(".__init__"): p.read_text(encoding="utf-8") for p in sorted(names)}


def _import_nodes(tree: ast.AST, type_checking: bool):
    """Import nodes anywhere in ``tree``; those under ``if TYPE_CHECKING:`` only if ``type_checking``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if not type_checking and isinstance(node, ast.If) and ast.unparse(node.test) in TYPE_CHECKING:
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _target(name: str, modules: set[str]) -> str:
    """The repspace module a dotted name refers to, or the external top-level package."""
    if name.split(".")[0] != "repspace":
        return "distributed" if name.split(".")[:2] == ["dask", "distributed"] else name.split(".")[0]
    while name not in modules and "." in name:  # ``import repspace.x.y`` where y is not a module
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str, source: str, modules: set[str], type_checking: bool = True) -> set[str]:
    """Repspace module names and external top-level packages that ``module`` imports (``modules``: all
    repspace module names, to tell submodules from attributes and packages from plain modules)."""
    package = module if any(m.startswith(module + ".") for m in modules) else module.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(source, filename=module), type_checking):
        if isinstance(node, ast.Import):
            found.update(_target(alias.name, modules) for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # from . / .. / ...: drop level - 1 trailing components of the package
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(_target(sub if sub in modules else base, modules))
    return found


def import_graph(sources: dict[str, str], type_checking: bool = True) -> dict[str, set[str]]:
    return {m: imports_of(m, src, set(sources), type_checking) for m, src in sources.items()}


def layer(name: str) -> str:
    """``kernels``, ``store``, ..., ``api``, ``cluster``, ``_version``; ``repspace`` for the root."""
    return name.split(".")[1] if name.startswith("repspace.") else name


def _check(graph, layers, allowed, banned=()):
    """(module, import) pairs: a module in ``layers`` imports a repspace layer not ``allowed``, or ``banned``."""
    return sorted((m, name) for m, names in graph.items() if layer(m) in layers for name in names
                  if (name.split(".")[0] == "repspace" and layer(name) not in allowed) or name in banned)


def rule_kernels(graph, sources):
    banned = {"dask", "distributed", "xarray", "zarr", "tensorflow", "matplotlib", "sklearn"}
    return _check(graph, {"kernels"}, {"kernels"}, banned)


def rule_store(graph, sources):
    return _check(graph, {"store"}, {"store", "kernels", "_version"}, {"tensorflow", "matplotlib", "distributed"})


def rule_data_models(graph, sources):
    allowed = {"data", "models", "store", "kernels", "cluster", "_version", "_quiet", "_checks"}
    return _check(graph, {"models"}, allowed) + _check(graph, {"data"}, allowed - {"models"})


def rule_plots(graph, sources):
    return _check(graph, {"plots"}, {"plots", "store", "kernels"}, {"tensorflow"})


def rule_pipeline(graph, sources):
    return [pair for pair in _check(graph, {"pipeline"}, set()) if layer(pair[1]) in {"jobs", "api"}]


def _identifiers(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            yield from (node.name.split(".")[-1], node.asname)
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Name):
            yield node.id


def rule_distributed(graph, sources):
    bad = [(m, "distributed") for m, names in graph.items()
           if "distributed" in names and m != "repspace.cluster" and layer(m) not in {"pipeline", "models"}]
    bad += [(m, "LocalCluster") for m, src in sources.items()
            if m != "repspace.cluster" and "LocalCluster" in set(_identifiers(ast.parse(src, filename=m)))]
    return sorted(bad)


TENSORFLOW = {"tensorflow": ("import_tensorflow", {"models"}, {"repspace._quiet"}),
              "tensorflow_datasets": ("import_tfds", set(), {"repspace._quiet", "repspace.data.tfds_loader"})}
"""{package: (the name of its quiet import in repspace._quiet, layers allowed it, modules allowed it)}."""


def rule_tensorflow(graph, sources):
    bad = []
    for package, (quiet, layers, modules) in TENSORFLOW.items():
        outside = {m for m in sources if layer(m) not in layers and m not in modules}
        bad += [(m, package) for m in outside if package in graph[m]]
        bad += [(m, quiet) for m in outside if quiet in set(_identifiers(ast.parse(sources[m], filename=m)))]
    return sorted(bad)


def rule_onnx(graph, sources):
    return sorted((m, name) for m, names in graph.items() if layer(m) != "models"
                  for name in names if name in {"onnx", "onnxruntime"})


def rule_no_cycles(graph, sources):
    """Every edge m -> n inside a cycle (n reaches m back), self-imports included; no TYPE_CHECKING edges."""
    runtime = import_graph(sources, type_checking=False)
    edges = {m: {n for n in names if n in runtime and (m, n) != ("repspace", "repspace")}
             for m, names in runtime.items()}

    def reach(start):
        seen, stack = set(), [start]
        while stack:
            for n in edges[stack.pop()] - seen:
                seen.add(n)
                stack.append(n)
        return seen

    reachable = {m: reach(m) for m in edges}
    return sorted((m, n) for m, names in edges.items() for n in names if m in reachable[n])


RULES = {f.__name__: f for f in (rule_kernels, rule_store, rule_data_models, rule_plots,
                                 rule_pipeline, rule_distributed, rule_tensorflow, rule_onnx, rule_no_cycles)}


def violations(sources: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """{rule name: offending (module, imported name) pairs} for a {module: source} mapping."""
    graph = import_graph(sources)
    return {name: rule(graph, sources) for name, rule in RULES.items()}


SOURCES = read_sources()


def _assert_clean(rule, message):
    found = RULES[rule](import_graph(SOURCES), SOURCES)
    assert not found, f"{message}; offending (module, import):\n" + "\n".join(f"  {m} -> {n}" for m, n in found)


def test_sources_found():
    assert {"repspace", "repspace.kernels", "repspace.store.core", "repspace.cluster"} <= set(SOURCES)


def test_kernels_are_pure():
    _assert_clean("rule_kernels", "kernels may import only kernels; no dask/distributed/xarray/zarr/tf/mpl/sklearn")


def test_store_is_low_level():
    _assert_clean("rule_store", "store may import only store, kernels, _version; no tensorflow/matplotlib/distributed")


def test_data_and_models_below_pipeline():
    _assert_clean("rule_data_models", "data/models may import only data, models, store, kernels, cluster, _version")


def test_plots_read_only_the_store():
    _assert_clean("rule_plots", "plots may import only plots, store, kernels; no tensorflow")


def test_pipeline_below_jobs_and_api():
    _assert_clean("rule_pipeline", "pipeline must not import repspace.jobs or repspace.api")


def test_distributed_only_where_tasks_are_submitted():
    _assert_clean("rule_distributed", "only cluster/pipeline/models import distributed; LocalCluster only in cluster")


def test_tensorflow_only_in_models():
    _assert_clean("rule_tensorflow", "only repspace.models uses tensorflow (tensorflow_datasets: data.tfds_loader)")


def test_onnxruntime_only_in_models():
    _assert_clean("rule_onnx", "only repspace.models imports onnx or onnxruntime")


def test_no_import_cycles():
    _assert_clean("rule_no_cycles", "import cycles among repspace modules (the edges inside each cycle)")


def _in_function(code: str) -> str:
    return f"\n\ndef _planted():\n    {code}\n"


def test_checker_finds_planted_violations():
    plant = {
        "repspace.kernels.information": "\nimport xarray\n",
        "repspace.kernels.montecarlo": "\nif TYPE_CHECKING:\n    import matplotlib.pyplot\n",
        "repspace.kernels.distances": _in_function("from . import similarity"),  # kernels/__init__ imports distances
        "repspace.store.core": _in_function("from ..pipeline import driver"),  # driver imports store -> store.core
        "repspace.data.base": _in_function("from ..models import zoo"),
        "repspace.plots.structure": _in_function("import tensorflow as tf"),
        "repspace.plots.latents": "\nimport repspace.plots.latents\nfrom dask.distributed import Client\n",
        "repspace.pipeline.stage": _in_function("from ..jobs import full_sweep"),  # full_sweep imports pipeline
        "repspace.pipeline.driver": "\nclass _P:\n    def m(self):\n        import distributed\n"
                                    "        return distributed.LocalCluster()\n",
        "repspace.fusion": _in_function("from ._quiet import import_tensorflow"),
        "repspace.measures": _in_function("import tensorflow.keras"),
        "repspace.data.dsprites": _in_function("from .. import _quiet\n    return _quiet.import_tfds()"),
        "repspace.store.channels": "\nimport tensorflow_datasets as tfds\n",
        "repspace.pipeline.stages.encode": _in_function("import onnxruntime as ort"),
        # Under TYPE_CHECKING: an import for rules 1-7, but no edge for the cycle check.
        "repspace.kernels._array": "\nif TYPE_CHECKING:\n    from . import montecarlo\n",
    }
    expected = {
        "rule_kernels": {("repspace.kernels.information", "xarray"), ("repspace.kernels.montecarlo", "matplotlib")},
        "rule_store": {("repspace.store.core", "repspace.pipeline.driver")},
        "rule_data_models": {("repspace.data.base", "repspace.models.zoo")},
        "rule_plots": {("repspace.plots.structure", "tensorflow")},
        "rule_pipeline": {("repspace.pipeline.stage", "repspace.jobs.full_sweep")},
        "rule_distributed": {("repspace.plots.latents", "distributed"), ("repspace.pipeline.driver", "LocalCluster")},
        "rule_tensorflow": {("repspace.fusion", "import_tensorflow"), ("repspace.measures", "tensorflow"),
                            ("repspace.data.dsprites", "import_tfds"), ("repspace.plots.structure", "tensorflow"),
                            ("repspace.store.channels", "tensorflow_datasets")},
        "rule_onnx": {("repspace.pipeline.stages.encode", "onnxruntime")},
        "rule_no_cycles": {("repspace.kernels.distances", "repspace.kernels"),
                           ("repspace.kernels", "repspace.kernels.distances"),
                           ("repspace.store.core", "repspace.pipeline.driver"),
                           ("repspace.pipeline.stage", "repspace.jobs.full_sweep"),
                           ("repspace.plots.latents", "repspace.plots.latents")},
    }
    found = violations({m: src + plant.get(m, "") for m, src in SOURCES.items()})
    for rule, pairs in expected.items():
        assert pairs <= set(found[rule]), f"{rule} missed {sorted(pairs - set(found[rule]))}"
    assert found["rule_kernels"] == sorted(expected["rule_kernels"])  # nothing else in kernels was flagged
    assert found["rule_tensorflow"] == sorted(expected["rule_tensorflow"])  # models and tfds_loader were not
    assert ("repspace.kernels._array", "repspace.kernels.montecarlo") not in found["rule_no_cycles"]


MAX_MODULE_LINES = 400
MAX_CONFIG_LINES = 250


def test_no_module_is_over_its_size():
    """A module over 400 lines is doing more than one thing (``pipeline/config.py``, the loader of every job's
    configuration from the registry, stays under 250)."""
    sizes = {name: source.count("\n") for name, source in SOURCES.items()}
    over = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"
    assert sizes["repspace.pipeline.config"] <= MAX_CONFIG_LINES, sizes["repspace.pipeline.config"]
