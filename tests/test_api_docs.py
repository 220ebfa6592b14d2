"""The public API's docstring examples run as written."""

import doctest

import repspace.api
import repspace.pipeline.structure


def test_docstring_examples_run():
    for module in (repspace.api, repspace.pipeline.structure):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(repspace.api).attempted >= 4


def test_readme_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
    assert set(namespace["ds"].data_vars) == {"information", "information_twice", "joint_information", "nmi", "vi"}
