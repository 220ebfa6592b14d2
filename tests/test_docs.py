"""Documentation that runs: docstring examples (collected by pytest's --doctest-modules, see
pyproject.toml), the README's example and the dataset figure script."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules whose docstrings carry examples; --doctest-modules runs them, and a module that lost its
# examples would pass there silently, so their presence is checked here.
WITH_EXAMPLES = [
    "repspace.api",
    "repspace.data",
    "repspace.data.base",
    "repspace.data.procedural",
    "repspace.data.digits",
    "repspace.data.fingerprint",
    "repspace.data.synthetic_spaces",
    "repspace.kernels.bhattacharyya",
    "repspace.kernels.continuity",
    "repspace.kernels.distances",
    "repspace.kernels.measures",
    "repspace.kernels.optics",
    "repspace.measures",
    "repspace.fusion",
    "repspace.store.channels",
    "repspace.store.core",
    "repspace.plots.structure",
    "repspace.pipeline.stages.traversals",
    "repspace.pipeline.stages.structure",
    "repspace.kernels.jackknife",
    "repspace.kernels.stability",
    "repspace.kernels.null",
]


def test_doctests_are_collected_by_pytest():
    """The default test run collects the package's doctests (what pytest itself collects, not the config's text)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected = done.stdout.splitlines()
    for name in WITH_EXAMPLES:
        path = Path(importlib.import_module(name).__file__).relative_to(ROOT).as_posix()
        assert any(line == f"{path}::{name}" or line.startswith(f"{path}::{name}.") for line in collected), \
            f"no doctest of {name} collected"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_documented_modules_have_examples(name):
    module = importlib.import_module(name)
    examples = sum(len(t.examples) for t in doctest.DocTestFinder().find(module) if t.filename == module.__file__)
    assert examples >= 1, f"{name} has no docstring example"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert set(namespace["ds"].data_vars) == {"information", "information_twice", "joint_information", "nmi", "vi"}
    assert set(namespace["table"].data_vars) == {"nmi_bc", "vi_bc", "cka_linear"}
    assert namespace["agreement"].attrs["pairs"] == 36
    assert namespace["fused"].sizes == {"item": 60, "dim": 2, "member": 10, "step": 21}


def test_dataset_figure_script(tmp_path):
    script = ROOT / "docs" / "make_dataset_figure.py"
    spec = importlib.util.spec_from_file_location("make_dataset_figure", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows, labels = module.sample_rows()
    assert rows.shape == (5, 10) and len(labels) == 5
    out = module.main(["--out", str(tmp_path / "grid.png")])
    assert out.stat().st_size > 1000
