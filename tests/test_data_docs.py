"""The examples in the data modules' docstrings run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "repspace.data",
    "repspace.data.base",
    "repspace.data.procedural",
    "repspace.data.digits",
    "repspace.data.fingerprint",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_dataset_figure_script(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "make_dataset_figure.py"
    spec = importlib.util.spec_from_file_location("make_dataset_figure", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows, labels = module.sample_rows()
    assert rows.shape == (5, 10) and len(labels) == 5
    out = module.main(["--out", str(tmp_path / "grid.png")])
    assert out.stat().st_size > 1000
